package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go4.org/netipx"
)

// checkSummaries recomputes a pool's summaries from its pages and compares
// them with those kept: taken, the open set and nonOpen, the full tree, and
// lowFree's promise that every ordinal below it is taken. It takes the pool
// lock.
func checkSummaries(t testing.TB, a *Allocator, pool string) {
	t.Helper()
	ps, err := a.locked(context.Background(), pool)
	require.NoError(t, err)
	defer ps.mu.Unlock()
	var taken, nonOpen Count
	open := map[Count]bool{}
	for i := (Count{}); i.Cmp(ps.npages) < 0; i = i.add64(1) {
		n, c := 0, ps.capacity(i)
		if st := ps.pages[i]; st != nil && st.val != nil {
			require.NoError(t, checkPage(st.val, c), "page %v", i)
			n = st.val.taken()
		}
		taken = taken.add64(uint64(n))
		if n > 0 && n < c {
			open[i] = true
		} else {
			nonOpen = nonOpen.add64(uint64(n))
		}
		assert.Equal(t, n == c, ps.full.isFull(i), "page %v (%d of %d taken): full tree", i, n, c)
	}
	assert.Equal(t, taken, ps.taken, "taken")
	assert.Equal(t, nonOpen, ps.nonOpen, "nonOpen")
	assert.Len(t, ps.open.list, len(open), "open pages")
	for _, i := range ps.open.list {
		assert.True(t, open[i], "page %v listed open", i)
	}
	for o := (Count{}); o.Cmp(ps.lowFree) < 0; o = o.add64(1) {
		st := ps.pages[o.rsh(pageShift)]
		if !assert.True(t, st != nil && st.val != nil && st.val.has(int(o.lo&(pageSlots-1))), "ordinal %v below lowFree %v is free", o, ps.lowFree) {
			break
		}
	}
}

// countFastPath counts the allocations the fast path completes while the
// test runs (no other test may run in parallel with it).
func countFastPath(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	testFastPath = func() { n.Add(1) }
	t.Cleanup(func() { testFastPath = nil })
	return &n
}

// TestFastPathSameAsExclusive runs one seeded sequence of operations on a
// Sequential pool twice, with and without the fast path, and requires the
// same results: every lease (address, generation, time), every error, every
// level event, the final stats and the store's every key, value and
// revision. The pool is small, with a reserved range across a page
// boundary and low thresholds, so that pages go from empty and to full and
// the level changes, which the fast path hands to the exclusive one.
func TestFastPathSameAsExclusive(t *testing.T) {
	if !fastPathOK {
		t.Skip("no fast path on this platform (byte order or word size)")
	}
	type result struct {
		log    []string
		events []LevelEvent
		stats  Stats
		kvs    []KV
		fast   int64

		newOwners int
	}
	run := func(off bool) result {
		fastPathOff, fastPathAlways = off, !off
		defer func() { fastPathOff, fastPathAlways = false, false }()
		hits := countFastPath(t)
		var r result
		clk := newFakeClock()
		spec := PoolSpec{Name: "p", Subnet: prefix("10.1.0.0/22"), Gateway: addr("10.1.0.1"),
			Reserved: []netipx.IPRange{mustRange(t, "10.1.1.250-10.1.2.5")}, Warn: 0.3, Critical: 0.5}
		a, st := newAlloc(t, Options{Clock: clk.Now, OnLevel: func(e LevelEvent) { r.events = append(r.events, e) }}, spec)
		rng := rand.New(rand.NewPCG(7, 11))
		var live []Lease
		for step := range 6000 {
			clk.Advance(time.Millisecond)
			var (
				got []Lease
				err error
			)
			// Every 1,800 steps, 1,200 fill the pool to about 60 % and
			// 600 mostly release, so that the level goes up and down.
			k := rng.IntN(20)
			if step%1800 >= 1200 && rng.IntN(10) < 8 {
				k = 13
			}
			switch {
			case k < 11 || len(live) == 0: // a new owner
				r.newOwners++
				var l Lease
				l, err = a.Allocate(ctx, "p", fmt.Sprint("o", step))
				got = []Lease{l}
			case k < 13: // an owner that holds a lease: the same one
				var l Lease
				l, err = a.Allocate(ctx, "p", live[rng.IntN(len(live))].Owner)
				got = []Lease{l}
			case k < 18:
				i := rng.IntN(len(live))
				err = a.Release(ctx, live[i])
				live = slices.Delete(live, i, i+1)
			case k < 19:
				got, err = a.AllocateN(ctx, "p", fmt.Sprint("n", step), 1+rng.IntN(5))
			default:
				var l Lease
				l, err = a.AllocateAddr(ctx, "p", fmt.Sprint("a", step), addr(fmt.Sprintf("10.1.%d.%d", rng.IntN(4), rng.IntN(256))))
				got = []Lease{l}
			}
			if err == nil {
				for _, l := range got {
					if !slices.ContainsFunc(live, func(x Lease) bool { return x.Addr == l.Addr }) {
						live = append(live, l)
					}
				}
			}
			r.log = append(r.log, fmt.Sprintf("%d: %v %v", step, got, err))
			if step%500 == 0 {
				verifyOK(t, a)
				checkSummaries(t, a, "p")
			}
		}
		verifyOK(t, a)
		checkSummaries(t, a, "p")
		var err error
		r.stats, err = a.Stats(ctx, "p")
		require.NoError(t, err)
		for kv, err := range st.Scan(ctx, "") {
			require.NoError(t, err)
			r.kvs = append(r.kvs, kv)
		}
		r.fast = hits.Load()
		return r
	}
	fast, slow := run(false), run(true)
	assert.Zero(t, slow.fast)
	// Most new owners' allocations take the fast path; the rest (empty
	// pages, full pages, level changes) the exclusive one.
	assert.Greater(t, fast.fast, int64(fast.newOwners/3), "allocations on the fast path of %d for new owners", fast.newOwners)
	require.Equal(t, len(slow.log), len(fast.log))
	for i := range slow.log {
		require.Equal(t, slow.log[i], fast.log[i])
	}
	assert.Greater(t, len(slow.events), 6, "level events")
	assert.Equal(t, slow.events, fast.events)
	assert.Equal(t, slow.stats, fast.stats)
	assert.Equal(t, slow.kvs, fast.kvs)
}

// TestFastPathRace: 16 goroutines on two allocators sharing a MemoryStore
// allocate from a small Sequential pool while they also release, allocate
// batches and read stats, and another goroutine verifies the store, so
// that fast and exclusive allocations interleave at every page boundary
// and level. Every address held is held once; at the end the store
// verifies, the summaries match the pages, the stats count what is held,
// and the level is the one the utilization calls for (no crossing was
// skipped).
//
// In "always" every eligible allocation tries the fast path; in "adaptive"
// (as in use) only those that find the pool lock taken.
func TestFastPathRace(t *testing.T) {
	if !fastPathOK {
		t.Skip("no fast path on this platform (byte order or word size)")
	}
	for _, always := range []bool{true, false} {
		t.Run(map[bool]string{true: "always", false: "adaptive"}[always], func(t *testing.T) {
			fastPathAlways = always
			defer func() { fastPathAlways = false }()
			testFastPathRace(t, always)
		})
	}
}

func testFastPathRace(t *testing.T, always bool) {
	hits := countFastPath(t)
	const workers, rounds = 16, 600
	spec := PoolSpec{Name: "p", Subnet: prefix("10.2.0.0/22"), Reserved: []netipx.IPRange{mustRange(t, "10.2.1.0/28")}, Warn: 0.5, Critical: 0.8}
	var events atomic.Int64
	a, st := newAlloc(t, Options{OnLevel: func(LevelEvent) { events.Add(1) }}, spec)
	b, err := NewWithOptions(ctx, st, Options{Rand: &seq{x: 3}})
	require.NoError(t, err)
	stopVerify := verifyAlong(t, st)
	var mu sync.Mutex
	held := map[netip.Addr]string{}
	hold := func(ls ...Lease) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range ls {
			if prev, dup := held[l.Addr]; dup && prev != l.Owner {
				t.Errorf("%s handed to %s and %s", l.Addr, prev, l.Owner)
			}
			held[l.Addr] = l.Owner
		}
	}
	drop := func(ls ...Lease) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range ls {
			delete(held, l.Addr)
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			al := []*Allocator{a, b}[w%2]
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []Lease
			for i := range rounds {
				owner := fmt.Sprintf("w%d-%d", w, i)
				switch k := rng.IntN(10); {
				case k < 6 || len(mine) == 0:
					l, err := al.Allocate(ctx, "p", owner)
					if errors.Is(err, ErrExhausted) {
						continue
					}
					if !assert.NoError(t, err) {
						return
					}
					hold(l)
					mine = append(mine, l)
				case k < 9:
					j := rng.IntN(len(mine))
					drop(mine[j])
					assert.NoError(t, al.Release(ctx, mine[j]))
					mine = slices.Delete(mine, j, j+1)
				default:
					if w%4 == 0 {
						ls, err := al.AllocateN(ctx, "p", owner, 3)
						if err == nil {
							hold(ls...)
							drop(ls...)
							_, err = al.ReleaseOwner(ctx, "p", owner)
							assert.NoError(t, err)
						}
					} else {
						_, err := al.Stats(ctx, "p")
						assert.NoError(t, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	assert.Positive(t, stopVerify())
	verifyOK(t, a)
	checkSummaries(t, a, "p")
	s, err := a.Stats(ctx, "p")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(len(held)), s.Allocated.String())
	if always {
		assert.Positive(t, hits.Load(), "allocations on the fast path")
	}

	// Fill to 90 % from 16 goroutines on one allocator, nearly all of it
	// on the fast path: the level must end where the utilization puts it.
	free := s.Free.Float64()
	need := int(free) - int(0.1*s.Total.Float64())
	var next atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)); i <= need; i = int(next.Add(1)) {
				l, err := a.Allocate(ctx, "p", fmt.Sprint("fill-", i))
				if !assert.NoError(t, err) {
					return
				}
				hold(l)
			}
		}()
	}
	wg.Wait()
	s, err = a.Stats(ctx, "p")
	require.NoError(t, err)
	assert.Equal(t, LevelCritical, s.Level, "utilization %.3f", s.Utilization)
	assert.Equal(t, levelFor(s.Utilization, s.Level, spec.Warn, spec.Critical, 0.02), s.Level)
	assert.Positive(t, events.Load())
	verifyOK(t, a)
	checkSummaries(t, a, "p")
}

// TestFastPathPageTransitions: the fast path takes exactly the allocations
// that leave a page neither empty before nor full after; the first address
// of a page (absent or emptied) and the last one go to the exclusive path,
// which updates the summaries.
func TestFastPathPageTransitions(t *testing.T) {
	if !fastPathOK {
		t.Skip("no fast path on this platform (byte order or word size)")
	}
	hits := countFastPath(t)
	fastPathAlways = true
	defer func() { fastPathAlways = false }()
	// 2,046 addresses: page 0 holds 1,024, page 1 the other 1,022.
	a, st := newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("10.3.0.0/21")})
	var page0 []Lease
	alloc := func(owner string, wantFast bool) Lease {
		t.Helper()
		before := hits.Load()
		l, err := a.Allocate(ctx, "p", owner)
		require.NoError(t, err)
		require.Equal(t, wantFast, hits.Load() > before, "%s got %s: fast path", owner, l.Addr)
		// The owner record and the page were written at one revision.
		kvs, err := st.Get(ctx, ownerKey("p", owner))
		require.NoError(t, err)
		pageRevs := map[uint64]bool{}
		for kv, err := range st.Scan(ctx, "ipam/v1/page/p/") {
			require.NoError(t, err)
			pageRevs[kv.Revision] = true
		}
		require.True(t, pageRevs[kvs[0].Revision], "%s: no page at the owner record's revision %d", owner, kvs[0].Revision)
		return l
	}
	page0 = append(page0, alloc("first", false)) // page 0 absent
	for i := range 1022 {
		page0 = append(page0, alloc(fmt.Sprint("o", i), true))
	}
	page0 = append(page0, alloc("last", false)) // page 0 full after
	assert.Equal(t, addr("10.3.4.0"), page0[len(page0)-1].Addr)
	checkSummaries(t, a, "p")
	alloc("page1-first", false)
	alloc("page1-second", true)
	l := alloc("page1-third", true)
	assert.Equal(t, addr("10.3.4.3"), l.Addr)
	// The same owner again: its lease, from the fast path's look-up.
	again, err := a.Allocate(ctx, "p", "page1-third")
	require.NoError(t, err)
	assert.Equal(t, l, again)
	for _, l := range page0 {
		require.NoError(t, a.Release(ctx, l))
	}
	checkSummaries(t, a, "p")
	l = alloc("page0-again", false) // page 0 present but empty before
	assert.Equal(t, addr("10.3.0.1"), l.Addr)
	l = alloc("page0-again-2", true)
	assert.Equal(t, addr("10.3.0.2"), l.Addr)
	checkSummaries(t, a, "p")
	verifyOK(t, a)
}
