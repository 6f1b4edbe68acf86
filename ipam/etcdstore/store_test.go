package etcdstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/ipam/etcdstore/etcdtest"
	"github.com/addrguard/addrguard/ipam/storetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func TestStoreContract(t *testing.T) {
	c := startEtcd(t)
	storetest.Run(t, func(t *testing.T) ipam.Store {
		// A fresh prefix per case: one server, independent stores. A small
		// scan page exercises paging.
		return dial(t, c, Options{Prefix: "contract/" + t.Name() + "/", ScanPage: 100})
	})
}

// A stopped server is an error with context, and a cancelled context ends
// the wait even with no request timeout.
func TestServerDown(t *testing.T) {
	c := startEtcd(t)
	s := dial(t, c, Options{RequestTimeout: -1})
	_, err := s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: "k", Value: []byte("v")}}})
	require.NoError(t, err)
	c.Members[0].Stop()

	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = s.Get(cctx, "k")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "get", e.Op)
	assert.Equal(t, c.Endpoints()[0], e.Endpoints)
	assert.Contains(t, err.Error(), `etcdstore: get 1 key(s) from "addrguard/k" (endpoints `+c.Endpoints()[0]+`)`)

	cctx, cancel = context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = s.Commit(cctx, ipam.Txn{Conds: []ipam.Cond{{Key: "k"}}, Ops: []ipam.Op{{Key: "a", Value: []byte("1")}, {Key: "b", Delete: true}}})
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), `etcdstore: commit 2 op(s) from "addrguard/a"`)

	// With the request timeout, no caller deadline is needed. (A second
	// Store on the same client, which it does not own.)
	s2, err := New(s.Client(), Options{RequestTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer s2.Close()
	n := 0
	for kv, err := range s2.Scan(ctx, "") {
		n++
		require.ErrorIs(t, err, context.DeadlineExceeded, "%v", kv)
		assert.Contains(t, err.Error(), `etcdstore: scan prefix "addrguard/"`)
	}
	assert.Equal(t, 1, n)
	require.NoError(t, s2.Close())
	cctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = s.Get(cctx, "k") // s2's Close left the client open: still trying
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, c.Members[0].Restart())
	kvs, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v", string(kvs[0].Value))
}

// A transaction over the limit is refused before it is sent, and one over
// the cluster's own limit is reported as the same error.
func TestTxnTooLarge(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{MaxTxnOps: 16})
	ops := func(n int) []ipam.Op {
		var o []ipam.Op
		for i := 0; i < n; i++ {
			o = append(o, ipam.Op{Key: fmt.Sprint("k", i), Value: []byte("v")})
		}
		return o
	}
	s := dial(t, c, Options{MaxTxnOps: 8})
	assert.Equal(t, 8, s.MaxTxnOps())
	_, err := s.Commit(ctx, ipam.Txn{Ops: ops(9)})
	require.ErrorIs(t, err, ipam.ErrTxnTooLarge)
	assert.Contains(t, err.Error(), "9 operations, at most 8")
	_, err = s.Commit(ctx, ipam.Txn{Ops: ops(8)})
	require.NoError(t, err)

	s = dial(t, c, Options{}) // believes the default 128
	_, err = s.Commit(ctx, ipam.Txn{Ops: ops(20)})
	require.ErrorIs(t, err, ipam.ErrTxnTooLarge)
	assert.Contains(t, err.Error(), "--max-txn-ops")
	kvs, err := s.Get(ctx, "k19")
	require.NoError(t, err)
	assert.Zero(t, kvs[0].Revision)
}

// The watch reports puts and deletes after it starts, in order, and ends
// with an error when the history it needs is compacted away.
func TestWatch(t *testing.T) {
	c := startEtcd(t)
	s := dial(t, c, Options{})
	events := make(chan ipam.WatchEvent, 100)
	_, err := s.Watch(ctx, "w/", func(ev ipam.WatchEvent) { events <- ev })
	require.NoError(t, err)
	r1, err := s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: "w/a", Value: []byte("1")}, {Key: "x/other", Value: []byte("1")}}})
	require.NoError(t, err)
	r2, err := s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: "w/a", Delete: true}}})
	require.NoError(t, err)
	assert.Equal(t, ipam.WatchEvent{Key: "w/a", Value: []byte("1"), Revision: r1}, <-events)
	assert.Equal(t, ipam.WatchEvent{Key: "w/a", Revision: r2, Deleted: true}, <-events)

	// A stopped watch ends silently; the caller's context only bounds
	// the start.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan ipam.WatchEvent, 10)
	stop, err := s.Watch(cctx, "w/", func(ev ipam.WatchEvent) { done <- ev })
	require.NoError(t, err)
	cancel()
	_, err = s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: "w/b", Value: []byte("1")}}})
	require.NoError(t, err)
	assert.Equal(t, "w/b", (<-done).Key, "still streaming after the start's context ended")
	stop()
	_, err = s.Watch(cctx, "w/", func(ipam.WatchEvent) {})
	assert.ErrorIs(t, err, context.Canceled)

	// Closing the store ends every watch; a closed store refuses new ones.
	require.NoError(t, s.Close())
	_, err = s.Watch(ctx, "w/", func(ipam.WatchEvent) {})
	assert.ErrorIs(t, err, ErrClosed)
	select {
	case ev := <-done:
		t.Fatalf("event after stop: %+v", ev)
	default:
	}
}

// A scan whose snapshot revision is compacted away mid-way fails with
// context instead of mixing revisions.
func TestScanCompacted(t *testing.T) {
	c := startEtcd(t)
	s := dial(t, c, Options{ScanPage: 2})
	for i := 0; i < 5; i++ {
		_, err := s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: fmt.Sprint("s/", i), Value: []byte("v")}}})
		require.NoError(t, err)
	}
	var keys []string
	var scanErr error
	for kv, err := range s.Scan(ctx, "s/") {
		if err != nil {
			scanErr = err
			break
		}
		keys = append(keys, kv.Key)
		if len(keys) == 1 {
			r, err := s.Commit(ctx, ipam.Txn{Ops: []ipam.Op{{Key: "other", Value: []byte("v")}}})
			require.NoError(t, err)
			_, err = s.Client().Compact(ctx, int64(r))
			require.NoError(t, err)
		}
	}
	assert.Equal(t, []string{"s/0", "s/1"}, keys)
	require.ErrorIs(t, scanErr, rpctypes.ErrCompacted)
	assert.Contains(t, scanErr.Error(), "compacted during the scan")
}
