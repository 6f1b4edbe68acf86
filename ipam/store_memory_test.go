package ipam

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refStore is the obviously correct Store: a map behind a mutex, values
// kept as given. The MemoryStore must be indistinguishable from it.
type refStore struct {
	mu  sync.Mutex
	rev uint64
	m   map[string]memEntry
}

func newRefStore() *refStore { return &refStore{m: map[string]memEntry{}} }

func (s *refStore) Get(ctx context.Context, keys ...string) ([]KV, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]KV, len(keys))
	for i, k := range keys {
		e := s.m[k]
		out[i] = KV{Key: k, Value: e.val, Revision: e.rev}
	}
	return out, nil
}

func (s *refStore) Scan(ctx context.Context, prefix string) iter.Seq2[KV, error] {
	return func(yield func(KV, error) bool) {
		s.mu.Lock()
		var kvs []KV
		for k, e := range s.m {
			if strings.HasPrefix(k, prefix) {
				kvs = append(kvs, KV{Key: k, Value: e.val, Revision: e.rev})
			}
		}
		s.mu.Unlock()
		slices.SortFunc(kvs, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
		for _, kv := range kvs {
			if !yield(kv, nil) {
				return
			}
		}
	}
}

func (s *refStore) Commit(ctx context.Context, txn Txn) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range txn.Conds {
		if s.m[c.Key].rev != c.Revision {
			return 0, &ConflictError{Key: c.Key}
		}
	}
	s.rev++
	for _, op := range txn.Ops {
		if op.Delete {
			delete(s.m, op.Key)
		} else {
			s.m[op.Key] = memEntry{rev: s.rev, val: op.Value}
		}
	}
	return s.rev, nil
}

func (s *refStore) Close() error { return nil }

// storeScript drives a differential run from bytes (a fuzz input or a
// seeded random source): every choice takes the next byte.
type storeScript struct {
	b []byte
	i int
}

func (s *storeScript) pick(n int) int {
	if s.i >= len(s.b) {
		return 0
	}
	v := int(s.b[s.i]) % n
	s.i++
	return v
}

func (s *storeScript) done() bool { return s.i >= len(s.b) }

// scriptKeys are keys of every family, in the forms the allocator writes
// and in near-misses that must stay plain keys.
func scriptKeys() []string {
	ks := []string{"a", "p/x", poolsetKey, keyPrefix + "junk", keyPrefix + "pool/a/b", keyPrefix + "owner/p/",
		keyPrefix + "page/p/0000000000000000/0000000000000000000000000000000A",
		keyPrefix + "page/p/0000000000000000/00", keyPrefix + "owner/q"}
	for _, name := range []string{"p", "q"} {
		ks = append(ks, poolKey(name), quarantineKey(name), fifoKey(name), cursorKey(name))
		for epoch := uint64(0); epoch < 2; epoch++ {
			for idx := uint64(0); idx < 3; idx++ {
				ks = append(ks, pageKey(pagesPrefix(name, epoch), CountOf(idx)))
			}
		}
		for _, o := range []string{"o", "o/2", "pod-3", "ö"} {
			ks = append(ks, ownerKey(name, o))
		}
	}
	return ks
}

func scriptValues() [][]byte {
	pg := newPage(7)
	pg.set(3)
	pg.set(900)
	one := encodeOwner([]leaseEntry{newLeaseEntry(netip.MustParseAddr("10.0.0.9"), 4, 1234)})
	zero := encodeOwner([]leaseEntry{newLeaseEntry(netip.MustParseAddr("10.0.0.9"), 0, 1)})
	v6 := encodeOwner([]leaseEntry{newLeaseEntry(netip.MustParseAddr("2001:db8::5"), 9, -5)})
	three := encodeOwner([]leaseEntry{
		newLeaseEntry(netip.MustParseAddr("10.0.0.1"), 1, 1),
		newLeaseEntry(netip.MustParseAddr("10.0.0.2"), 2, 2),
		newLeaseEntry(netip.MustParseAddr("10.0.0.3"), 3, 3)})
	badVersion := append([]byte{9}, one[1:]...)
	return [][]byte{nil, {}, []byte("x"), pg, make([]byte, pageSize), []byte(strings.Repeat("z", pageSize)),
		one, zero, v6, three, badVersion, one[:20]}
}

var scriptPrefixes = []string{"", "ipam/", keyPrefix, "ipam/v1/p", poolPrefix, pagePrefix, pagePrefix + "p/",
	pagesPrefix("p", 0), pagesPrefix("p", 1) + "00000000000000000000000000000001", ownerPrefix, ownersPrefix("p"),
	ownersPrefix("p") + "o", ownersPrefix("q") + "o/", ownerKey("p", "o/2"), "a", "q", keyPrefix + "quarantine/"}

// runStoreScript applies one script to a MemoryStore and to refStore and
// requires the same answers from both, revisions included.
func runStoreScript(t *testing.T, script []byte) {
	ctx := context.Background()
	ms, ref := NewMemoryStore(), newRefStore()
	keys, vals := scriptKeys(), scriptValues()
	s := &storeScript{b: script}
	for step := 0; !s.done() && step < 500; step++ {
		switch s.pick(3) {
		case 0: // commit
			var txn Txn
			for n := s.pick(3); n > 0; n-- {
				k := keys[s.pick(len(keys))]
				kvs, _ := ref.Get(ctx, k)
				rev := kvs[0].Revision
				if s.pick(4) == 0 {
					rev += uint64(1 + s.pick(2))
				}
				txn.Conds = append(txn.Conds, Cond{Key: k, Revision: rev})
			}
			seen := map[string]bool{}
			for n := 1 + s.pick(3); n > 0; n-- {
				k := keys[s.pick(len(keys))]
				if seen[k] {
					continue
				}
				seen[k] = true
				if s.pick(4) == 0 {
					txn.Ops = append(txn.Ops, Op{Key: k, Delete: true})
				} else {
					txn.Ops = append(txn.Ops, Op{Key: k, Value: vals[s.pick(len(vals))]})
				}
			}
			r1, e1 := ms.Commit(ctx, txn)
			r2, e2 := ref.Commit(ctx, txn)
			require.Equal(t, r2, r1, "step %d: revision of %+v", step, txn)
			require.Equal(t, e2, e1, "step %d: %+v", step, txn)
		case 1: // get
			var ks []string
			for n := 1 + s.pick(3); n > 0; n-- {
				ks = append(ks, keys[s.pick(len(keys))])
			}
			g1, err := ms.Get(ctx, ks...)
			require.NoError(t, err)
			g2, _ := ref.Get(ctx, ks...)
			requireSameKVs(t, g2, g1, "step %d: get %q", step, ks)
		default: // scan
			p := scriptPrefixes[s.pick(len(scriptPrefixes))]
			c1, err := collect(ctx, ms, p)
			require.NoError(t, err)
			c2, _ := collect(ctx, ref, p)
			requireSameKVs(t, c2, c1, "step %d: scan %q", step, p)
		}
	}
	e1, e2 := VerifyStore(ctx, ms), VerifyStore(ctx, ref)
	require.Equal(t, fmt.Sprint(e2), fmt.Sprint(e1), "VerifyStore")
	n := 0
	for range ref.m {
		n++
	}
	require.Equal(t, n, ms.Len())
}

func requireSameKVs(t *testing.T, want, got []KV, msg string, args ...any) {
	t.Helper()
	require.Len(t, got, len(want), append([]any{msg}, args...)...)
	for i := range want {
		require.Equal(t, want[i].Key, got[i].Key, append([]any{msg}, args...)...)
		require.Equal(t, want[i].Revision, got[i].Revision, append([]any{msg + " key %q"}, append(args, want[i].Key)...)...)
		require.True(t, bytes.Equal(want[i].Value, got[i].Value), append([]any{msg + " key %q: value %x, want %x"}, append(args, want[i].Key, got[i].Value, want[i].Value)...)...)
	}
}

// The MemoryStore keeps pools' keys decoded, but through the Store
// interface it answers exactly as a plain map would: values round-trip
// byte for byte, revisions and conflicts match, scans at every prefix
// granularity list the same keys.
func TestMemoryStoreMatchesReference(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			script := make([]byte, 3000)
			for i := range script {
				script[i] = byte(r.Uint32())
			}
			runStoreScript(t, script)
		})
	}
}

// Concurrent Store calls and allocations on one MemoryStore: every Scan is
// a consistent snapshot (VerifyStore finds nothing wrong mid-flight), and
// a Commit through the interface is seen by the allocators.
func TestMemoryStoreSnapshotsUnderAllocation(t *testing.T) {
	a, st := newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/20")}, PoolSpec{Name: "q", Subnet: prefix("10.1.0.0/20")})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool := []string{"p", "q"}[w%2]
			for i := 0; i < 300; i++ {
				owner := fmt.Sprintf("w%d-%d", w, i)
				if i%3 == 0 {
					_, err := a.AllocateN(ctx, pool, owner, 5)
					assert.NoError(t, err)
				} else {
					l, err := a.Allocate(ctx, pool, owner)
					if assert.NoError(t, err) && i%2 == 0 {
						assert.NoError(t, a.Release(ctx, l))
					}
				}
			}
		}()
	}
	stopVerify := verifyAlong(t, st)
	// Meanwhile an owner appears through the Store interface, taking an
	// address the way a generic allocator would: page and owner record in
	// one compare-and-swap. (The workers never get that far up the pool.)
	target := addr("10.0.15.200")
	pool, err := Compile(PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/20")})
	require.NoError(t, err)
	ord, _ := pool.ordinal(target)
	slot := int(ord.lo & (pageSlots - 1))
	for {
		kvs, err := st.Get(ctx, poolKey("p"))
		require.NoError(t, err)
		rec, err := decodePoolRecord(kvs[0].Value)
		require.NoError(t, err)
		pk, okey := pageKey(pagesPrefix("p", rec.Epoch), ord.rsh(pageShift)), ownerKey("p", "from-commit")
		g, err := st.Get(ctx, pk)
		require.NoError(t, err)
		pg := newPage(rec.GenFloor)
		if g[0].Revision != 0 {
			pg = append(pageBytes(nil), g[0].Value...)
		}
		require.False(t, pg.has(slot))
		gen := pg.set(slot)
		_, err = st.Commit(ctx, Txn{
			Conds: []Cond{{Key: poolKey("p"), Revision: kvs[0].Revision}, {Key: pk, Revision: g[0].Revision}, {Key: okey}},
			Ops:   []Op{{Key: pk, Value: pg}, {Key: okey, Value: encodeOwner([]leaseEntry{newLeaseEntry(target, gen, 1)})}}})
		if !errors.Is(err, ErrConflict) {
			require.NoError(t, err)
			break
		}
	}
	wg.Wait()
	checks := stopVerify()
	verifyOK(t, a)
	got, err := a.Lookup(ctx, "p", "from-commit")
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, target, got[0].Addr)
	_, err = a.AllocateAddr(ctx, "p", "someone-else", target)
	assert.ErrorIs(t, err, ErrAlreadyAllocated, "the allocator sees the commit")
	assert.Positive(t, checks)
}

// The owner index against a map: inserts, overwrites, removals, growth and
// tombstones.
func TestOwnerShardAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	sh := &ownerShard{seed: maphash.MakeSeed()}
	model := map[string]leaseEntry{}
	check := func(owner string) {
		t.Helper()
		h := maphash.String(sh.seed, owner)
		es, rev, p, err := sh.read(h, owner, nil)
		require.NoError(t, err)
		want, ok := model[owner]
		require.Equal(t, ok, p.found, owner)
		if ok {
			require.Equal(t, []leaseEntry{want}, es, owner)
			require.Equal(t, want.gen, rev, owner)
		} else {
			require.Empty(t, es)
		}
	}
	for i := 1; i <= 30000; i++ {
		owner := fmt.Sprint("o", r.IntN(4000))
		h := maphash.String(sh.seed, owner)
		switch r.IntN(5) {
		case 0, 1:
			e := newLeaseEntry(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint64(i), int64(i))
			require.True(t, sh.write(h, owner, ownerPos{}, uint64(i), nil, []leaseEntry{e}, nil, nil))
			model[owner] = e
		case 2: // the allocation fast path: read, then writeOne where read left it
			e := newLeaseEntry(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint64(i), int64(i))
			_, _, p, _ := sh.read(h, owner, nil)
			require.True(t, sh.room(p))
			sh.writeOne(h, owner, p, uint64(i), e)
			model[owner] = e
		default:
			_, _, p, _ := sh.read(h, owner, nil)
			require.True(t, sh.write(h, owner, p, uint64(i), nil, nil, nil, nil))
			delete(model, owner)
		}
		check(owner)
		check(fmt.Sprint("o", r.IntN(4000)))
	}
	require.Equal(t, len(model), sh.live)
	n := 0
	sh.each(func(slot uint32, s *ownerSlot) {
		n++
		require.Equal(t, model[s.owner()], s.one)
	})
	require.Equal(t, len(model), n)
	require.LessOrEqual(t, (sh.live+sh.tombs)*4, len(sh.index)*3, "index at most 3/4 used")
}

// Records of several leases are kept as entries and adopted without a
// copy; anything else a Commit writes round-trips as bytes.
func TestOwnerShardRecordForms(t *testing.T) {
	sh := &ownerShard{seed: maphash.MakeSeed()}
	h := maphash.String(sh.seed, "x")
	es := []leaseEntry{newLeaseEntry(addr("10.0.0.1"), 1, 1), newLeaseEntry(addr("10.0.0.2"), 2, 1)}
	require.True(t, sh.write(h, "x", ownerPos{}, 5, nil, nil, es, nil))
	got, rev, _, err := sh.read(h, "x", nil)
	require.NoError(t, err)
	assert.Equal(t, es, got)
	assert.Equal(t, uint64(5), rev)
	v, _ := sh.getBytes(h, "x")
	assert.Equal(t, encodeOwner(es), v)
	// One lease left: inline again.
	require.True(t, sh.write(h, "x", ownerPos{}, 6, es[1:], nil, nil, nil))
	assert.Empty(t, sh.aside)
	v, _ = sh.getBytes(h, "x")
	assert.Equal(t, encodeOwner(es[1:]), v)
	// Runs of a sequential batch, one split at a segment's end.
	runs := []leaseRun{{a16: addr("10.0.0.250").As16(), gen: 10, at: 3, n: 6}, {a16: addr("10.0.2.0").As16(), gen: 16, at: 3, n: 2}}
	require.True(t, sh.write(h, "x", ownerPos{}, 8, nil, nil, nil, runs))
	got, _, _, err = sh.read(h, "x", nil)
	require.NoError(t, err)
	var addrs []string
	for i, e := range got {
		addrs = append(addrs, e.addr().String())
		assert.Equal(t, uint64(10+i), e.gen)
	}
	assert.Equal(t, []string{"10.0.0.250", "10.0.0.251", "10.0.0.252", "10.0.0.253", "10.0.0.254", "10.0.0.255", "10.0.2.0", "10.0.2.1"}, addrs)
	v, _ = sh.getBytes(h, "x")
	assert.Equal(t, encodeOwner(got), v)
	// A malformed record is kept as given and reads as corrupt.
	sh.putBytes(h, "x", []byte{1, 2, 3}, 7)
	v, rev = sh.getBytes(h, "x")
	assert.Equal(t, []byte{1, 2, 3}, v)
	assert.Equal(t, uint64(7), rev)
	_, _, _, err = sh.read(h, "x", nil)
	assert.Error(t, err)
}
