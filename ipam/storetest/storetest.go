// Package storetest checks that an ipam.Store keeps the contract the
// Allocator relies on: conditions on absent and present keys, all-or-nothing
// multi-key commits, deletes, store-wide increasing revisions, Scan in key
// order from one snapshot, the key a *ipam.ConflictError names, and context
// cancellation. Run it from the tests of a Store implementation:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) ipam.Store { return mystore.New(...) })
//	}
package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/addrguard/addrguard/ipam"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keysets name the keys the cases use: plain ones, and ones of a pool's
// record families (which a store may treat specially, as the MemoryStore
// does), in the layout documented on ipam.Store.
var keysets = map[string]func(string) string{
	"plain": func(k string) string { return "t/" + k },
	"pool": func(k string) string {
		switch k {
		case "a":
			return "ipam/v1/pool/pool"
		case "b":
			return "ipam/v1/cursor/pool"
		case "c":
			return "ipam/v1/fifo/pool"
		case "q":
			return "ipam/v1/quarantine/pool"
		}
		return "ipam/v1/owner/pool/" + k
	},
}

// Run runs every case on a fresh store from open for each. open may
// register cleanups with t; Run closes the store itself.
func Run(t *testing.T, open func(t *testing.T) ipam.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s ipam.Store, k func(string) string)
	}{
		{"CompareAndSwap", compareAndSwap},
		{"ConflictNamesFirstFailingKey", conflictKey},
		{"RevisionsIncrease", revisionsIncrease},
		{"ScanOrderAndSnapshot", scanSnapshot},
		{"ScanMany", scanMany},
		{"GetMany", getMany},
		{"Cancelled", cancelled},
	}
	for ks, k := range keysets {
		for _, c := range cases {
			t.Run(ks+"/"+c.name, func(t *testing.T) {
				s := open(t)
				defer s.Close()
				c.fn(t, s, k)
			})
		}
	}
	t.Run("Closed", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Close())
		_, err := s.Get(context.Background(), "t/a")
		assert.Error(t, err, "Get on a closed store")
		_, err = s.Commit(context.Background(), ipam.Txn{Ops: []ipam.Op{{Key: "t/a", Value: []byte("1")}}})
		assert.Error(t, err, "Commit on a closed store")
	})
}

func scan(t *testing.T, s ipam.Store, prefix string) []string {
	t.Helper()
	var out []string
	for kv, err := range s.Scan(context.Background(), prefix) {
		require.NoError(t, err)
		out = append(out, kv.Key+"="+string(kv.Value))
	}
	return out
}

func compareAndSwap(t *testing.T, s ipam.Store, k func(string) string) {
	ctx := context.Background()
	kvs, err := s.Get(ctx, k("a"), k("b"))
	require.NoError(t, err)
	assert.Equal(t, []ipam.KV{{Key: k("a")}, {Key: k("b")}}, kvs)
	// Create-if-absent.
	r1, err := s.Commit(ctx, ipam.Txn{Conds: []ipam.Cond{{Key: k("a")}}, Ops: []ipam.Op{{Key: k("a"), Value: []byte("1")}, {Key: k("p/x"), Value: []byte("x")}}})
	require.NoError(t, err)
	require.NotZero(t, r1)
	_, err = s.Commit(ctx, ipam.Txn{Conds: []ipam.Cond{{Key: k("a")}}, Ops: []ipam.Op{{Key: k("a"), Value: []byte("2")}}})
	var ce *ipam.ConflictError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, k("a"), ce.Key)
	assert.ErrorIs(t, err, ipam.ErrConflict)
	// All or nothing: one failing condition, nothing applied.
	_, err = s.Commit(ctx, ipam.Txn{Conds: []ipam.Cond{{Key: k("a"), Revision: r1}, {Key: k("b"), Revision: 5}}, Ops: []ipam.Op{{Key: k("a"), Value: []byte("3")}, {Key: k("c"), Value: []byte("c")}}})
	require.ErrorIs(t, err, ipam.ErrConflict)
	kvs, err = s.Get(ctx, k("a"), k("c"))
	require.NoError(t, err)
	assert.Equal(t, "1", string(kvs[0].Value))
	assert.Equal(t, r1, kvs[0].Revision)
	assert.Zero(t, kvs[1].Revision)
	assert.Nil(t, kvs[1].Value)
	// Compare-and-swap on the revision; every key put gets the new revision.
	r2, err := s.Commit(ctx, ipam.Txn{Conds: []ipam.Cond{{Key: k("a"), Revision: r1}}, Ops: []ipam.Op{{Key: k("a"), Value: []byte("4")}, {Key: k("p/y"), Value: []byte("y")}}})
	require.NoError(t, err)
	assert.Greater(t, r2, r1)
	kvs, err = s.Get(ctx, k("a"), k("p/y"), k("p/x"))
	require.NoError(t, err)
	assert.Equal(t, []uint64{r2, r2, r1}, []uint64{kvs[0].Revision, kvs[1].Revision, kvs[2].Revision})
	assert.Equal(t, "4", string(kvs[0].Value))
	// A stale revision fails.
	_, err = s.Commit(ctx, ipam.Txn{Conds: []ipam.Cond{{Key: k("a"), Revision: r1}}, Ops: []ipam.Op{{Key: k("a"), Value: []byte("5")}}})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, k("a"), ce.Key)
	// A condition on a present key's revision fails once it is deleted.
	_, err = s.Commit(ctx, ipam.Txn{Conds: []ipam.Cond{{Key: k("p/x"), Revision: r1}}, Ops: []ipam.Op{{Key: k("p/x"), Delete: true}}})
	require.NoError(t, err)
	kvs, err = s.Get(ctx, k("p/x"))
	require.NoError(t, err)
	assert.Zero(t, kvs[0].Revision)
	_, err = s.Commit(ctx, ipam.Txn{Conds: []ipam.Cond{{Key: k("p/x"), Revision: r1}}, Ops: []ipam.Op{{Key: k("p/x"), Value: []byte("again")}}})
	require.ErrorIs(t, err, ipam.ErrConflict)
	// ...and absence holds again.
	_, err = s.Commit(ctx, ipam.Txn{Conds: []ipam.Cond{{Key: k("p/x")}}, Ops: []ipam.Op{{Key: k("p/x"), Value: []byte("x2")}}})
	require.NoError(t, err)
	_, err = s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: k("p/z"), Value: []byte("z")}, {Key: k("q"), Value: []byte("q")}}})
	require.NoError(t, err)
	assert.Equal(t, []string{k("p/x") + "=x2", k("p/y") + "=y", k("p/z") + "=z"}, scan(t, s, k("p/")))
}

func conflictKey(t *testing.T, s ipam.Store, k func(string) string) {
	ctx := context.Background()
	r, err := s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: k("a"), Value: []byte("1")}, {Key: k("b"), Value: []byte("1")}, {Key: k("c"), Value: []byte("1")}}})
	require.NoError(t, err)
	for _, tc := range []struct {
		conds []ipam.Cond
		want  string
	}{
		{[]ipam.Cond{{Key: k("a"), Revision: r}, {Key: k("b"), Revision: r + 100}, {Key: k("c")}}, k("b")},
		{[]ipam.Cond{{Key: k("a"), Revision: r}, {Key: k("b"), Revision: r}, {Key: k("c")}}, k("c")},
		{[]ipam.Cond{{Key: k("p/absent"), Revision: r}, {Key: k("a")}}, k("p/absent")},
	} {
		_, err := s.Commit(ctx, ipam.Txn{Conds: tc.conds, Ops: []ipam.Op{{Key: k("a"), Value: []byte("2")}}})
		var ce *ipam.ConflictError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, tc.want, ce.Key)
	}
	kvs, err := s.Get(ctx, k("a"))
	require.NoError(t, err)
	assert.Equal(t, "1", string(kvs[0].Value))
}

func revisionsIncrease(t *testing.T, s ipam.Store, k func(string) string) {
	ctx := context.Background()
	var last uint64
	for i := 0; i < 20; i++ {
		key := k("a")
		if i%2 == 1 {
			key = k(fmt.Sprintf("p/%d", i))
		}
		r, err := s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: key, Value: []byte{byte(i)}}}})
		require.NoError(t, err)
		require.Greater(t, r, last, "commit %d", i)
		kvs, err := s.Get(ctx, key)
		require.NoError(t, err)
		require.Equal(t, r, kvs[0].Revision)
		last = r
	}
}

func scanSnapshot(t *testing.T, s ipam.Store, k func(string) string) {
	ctx := context.Background()
	var ops []ipam.Op
	for _, n := range []string{"p/c", "p/a", "p/b"} {
		ops = append(ops, ipam.Op{Key: k(n), Value: []byte(n)})
	}
	ops = append(ops, ipam.Op{Key: k("a"), Value: []byte("outside")})
	_, err := s.Commit(ctx, ipam.Txn{Ops: ops})
	require.NoError(t, err)
	var got []string
	first := true
	for kv, err := range s.Scan(ctx, k("p/")) {
		require.NoError(t, err)
		got = append(got, kv.Key)
		if first {
			// Writes during the scan are not seen by it.
			first = false
			_, err := s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: k("p/bb"), Value: []byte("new")}, {Key: k("p/c"), Delete: true}}})
			require.NoError(t, err)
		}
	}
	assert.Equal(t, []string{k("p/a"), k("p/b"), k("p/c")}, got)
	assert.Equal(t, []string{k("p/a") + "=p/a", k("p/b") + "=p/b", k("p/bb") + "=new"}, scan(t, s, k("p/")))
	// Breaking off early is fine.
	for range s.Scan(ctx, k("p/")) {
		break
	}
	assert.Empty(t, scan(t, s, k("p/none/")))
}

// scanMany scans more keys than a paging store reads at once.
func scanMany(t *testing.T, s ipam.Store, k func(string) string) {
	ctx := context.Background()
	const n = 1200
	var want []string
	for lo := 0; lo < n; lo += 100 {
		var ops []ipam.Op
		for i := lo; i < lo+100; i++ {
			key := k(fmt.Sprintf("p/%05d", i))
			ops = append(ops, ipam.Op{Key: key, Value: []byte{byte(i)}})
			want = append(want, key)
		}
		_, err := s.Commit(ctx, ipam.Txn{Ops: ops})
		require.NoError(t, err)
	}
	var got []string
	for kv, err := range s.Scan(ctx, k("p/")) {
		require.NoError(t, err)
		got = append(got, kv.Key)
		if len(got) == 600 {
			_, err := s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: k("p/99999"), Value: []byte("late")}}})
			require.NoError(t, err)
		}
	}
	assert.Equal(t, want, got)
}

// getMany reads more keys at once than a store may put in one request.
func getMany(t *testing.T, s ipam.Store, k func(string) string) {
	ctx := context.Background()
	var keys []string
	var ops []ipam.Op
	for i := 0; i < 300; i++ {
		key := k(fmt.Sprintf("p/%03d", i))
		keys = append(keys, key)
		if i%2 == 0 && len(ops) < 100 {
			ops = append(ops, ipam.Op{Key: key, Value: []byte(key)})
		}
	}
	r, err := s.Commit(ctx, ipam.Txn{Ops: ops})
	require.NoError(t, err)
	kvs, err := s.Get(ctx, keys...)
	require.NoError(t, err)
	require.Len(t, kvs, len(keys))
	for i, kv := range kvs {
		assert.Equal(t, keys[i], kv.Key)
		if i%2 == 0 && i < 200 {
			assert.Equal(t, r, kv.Revision, kv.Key)
			assert.Equal(t, keys[i], string(kv.Value))
		} else {
			assert.Zero(t, kv.Revision, kv.Key)
		}
	}
}

func cancelled(t *testing.T, s ipam.Store, k func(string) string) {
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Get(cctx, k("a"))
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.Get(cctx, k("a"), k("b"))
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.Commit(cctx, ipam.Txn{})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.Commit(cctx, ipam.Txn{Ops: []ipam.Op{{Key: k("a"), Value: []byte("1")}}})
	assert.ErrorIs(t, err, context.Canceled)
	var scanErr error
	for _, err := range s.Scan(cctx, k("p/")) {
		scanErr = err
	}
	assert.ErrorIs(t, scanErr, context.Canceled)
	kvs, err := s.Get(context.Background(), k("a"))
	require.NoError(t, err)
	assert.Zero(t, kvs[0].Revision, "a cancelled commit applied nothing")
}
