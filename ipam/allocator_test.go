package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go4.org/netipx"
)

var ctx = context.Background()

func TestAllocateSequentialIdempotent(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		a, _ := p.newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("10.100.0.0/24"), Gateway: addr("10.100.0.1"),
			Reserved: []netipx.IPRange{mustRange(t, "10.100.0.3-10.100.0.4")}})
		l1, err := a.Allocate(ctx, "p", "pod-1")
		require.NoError(t, err)
		assert.Equal(t, addr("10.100.0.2"), l1.Addr)
		assert.Equal(t, "p", l1.Pool)
		assert.NotZero(t, l1.Generation)
		again, err := a.Allocate(ctx, "p", "pod-1")
		require.NoError(t, err)
		assert.Equal(t, l1, again, "same owner, same lease")
		l2, err := a.Allocate(ctx, "p", "pod-2")
		require.NoError(t, err)
		assert.Equal(t, addr("10.100.0.5"), l2.Addr, "skips gateway and reserved")
		got, err := a.Lookup(ctx, "p", "pod-2")
		require.NoError(t, err)
		assert.Equal(t, []Lease{l2}, got)
		verifyOK(t, a)
	})
}

func TestAllocateNIdempotentAndAtomic(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		a, st := p.newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("192.0.2.0/28")}) // 14 usable
		ls, err := a.AllocateN(ctx, "p", "job", 5)
		require.NoError(t, err)
		require.Len(t, ls, 5)
		more, err := a.AllocateN(ctx, "p", "job", 8)
		require.NoError(t, err)
		assert.Equal(t, ls, more[:5], "existing leases first")
		keys := st.Len()
		_, err = a.AllocateN(ctx, "p", "other", 7) // only 6 left
		require.ErrorIs(t, err, ErrExhausted)
		assert.Equal(t, keys, st.Len(), "nothing written")
		s, err := a.Stats(ctx, "p")
		require.NoError(t, err)
		assert.Equal(t, "8", s.Allocated.String())
		assert.Equal(t, "6", s.Free.String())
		_, err = a.AllocateN(ctx, "p", "job", 0)
		assert.Error(t, err)
		verifyOK(t, a)
	})
}

func TestAllocateAddr(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		a, _ := p.newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/24"), Gateway: addr("10.0.0.1"),
			Reserved: []netipx.IPRange{mustRange(t, "10.0.0.100")}})
		l, err := a.AllocateAddr(ctx, "p", "a", addr("::ffff:10.0.0.50"))
		require.NoError(t, err)
		assert.Equal(t, addr("10.0.0.50"), l.Addr, "IPv4-mapped form normalized")
		again, err := a.AllocateAddr(ctx, "p", "a", addr("10.0.0.50"))
		require.NoError(t, err)
		assert.Equal(t, l, again)
		tests := []struct {
			addr string
			err  error
		}{
			{"10.0.0.50", ErrAlreadyAllocated},
			{"10.0.0.1", ErrReserved},
			{"10.0.0.0", ErrReserved},
			{"10.0.0.255", ErrReserved},
			{"10.0.0.100", ErrReserved},
			{"10.0.1.5", ErrNotInPool},
			{"2001:db8::1", ErrNotInPool},
		}
		for _, tt := range tests {
			_, err := a.AllocateAddr(ctx, "p", "b", addr(tt.addr))
			assert.ErrorIs(t, err, tt.err, tt.addr)
			assert.Contains(t, err.Error(), tt.addr)
		}
		// The owner "a" may hold several addresses; Allocate returns the first.
		_, err = a.AllocateAddr(ctx, "p", "a", addr("10.0.0.60"))
		require.NoError(t, err)
		first, err := a.Allocate(ctx, "p", "a")
		require.NoError(t, err)
		assert.Equal(t, l, first)
		_, err = a.Allocate(ctx, "nope", "a")
		assert.ErrorIs(t, err, ErrUnknownPool)
		_, err = a.Allocate(ctx, "p", "")
		assert.Error(t, err)
		verifyOK(t, a)
	})
}

func TestStaleReleaseAfterReallocation(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		a, _ := p.newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("192.0.2.0/30")}) // .1 .2
		old, err := a.Allocate(ctx, "p", "pod-a")
		require.NoError(t, err)
		require.NoError(t, a.Release(ctx, old))
		// Same address, same owner name, again: a new generation.
		re, err := a.Allocate(ctx, "p", "pod-a")
		require.NoError(t, err)
		require.Equal(t, old.Addr, re.Addr)
		require.Greater(t, re.Generation, old.Generation)
		assert.ErrorIs(t, a.Release(ctx, old), ErrStaleLease, "the stale lease must not free the new one")
		// Re-allocated to another owner.
		require.NoError(t, a.Release(ctx, re))
		other, err := a.Allocate(ctx, "p", "pod-b")
		require.NoError(t, err)
		require.Equal(t, old.Addr, other.Addr)
		assert.ErrorIs(t, a.Release(ctx, re), ErrStaleLease)
		assert.ErrorIs(t, a.Release(ctx, Lease{Pool: "p", Owner: "pod-b", Addr: other.Addr, Generation: other.Generation + 1}), ErrStaleLease)
		held, err := a.Lookup(ctx, "p", "pod-b")
		require.NoError(t, err)
		assert.Equal(t, []Lease{other}, held)
		verifyOK(t, a)
	})
}

func TestReleaseOwnerAndAddr(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		a, _ := p.newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/24")})
		ls, err := a.AllocateN(ctx, "p", "vm-1", 3)
		require.NoError(t, err)
		l4, err := a.Allocate(ctx, "p", "vm-2")
		require.NoError(t, err)
		got, err := a.ReleaseOwner(ctx, "p", "vm-1")
		require.NoError(t, err)
		assert.Equal(t, ls, got)
		got, err = a.ReleaseOwner(ctx, "p", "vm-1")
		require.NoError(t, err)
		assert.Empty(t, got)
		l, err := a.LeaseOf(ctx, "p", l4.Addr)
		require.NoError(t, err)
		assert.Equal(t, l4, l)
		rel, err := a.ReleaseAddr(ctx, "p", l4.Addr)
		require.NoError(t, err)
		assert.Equal(t, l4, rel)
		_, err = a.ReleaseAddr(ctx, "p", l4.Addr)
		assert.ErrorIs(t, err, ErrNotAllocated)
		_, err = a.ReleaseAddr(ctx, "p", addr("10.9.9.9"))
		assert.ErrorIs(t, err, ErrNotInPool)
		s, err := a.Stats(ctx, "p")
		require.NoError(t, err)
		assert.True(t, s.Allocated.IsZero())
		verifyOK(t, a)
	})
}

// The Kubernetes #109927 shape: a pool made of several sub-ranges must
// allocate every address of every sub-range exactly once, then report
// exhaustion, and never return an address twice.
func TestExhaustionAcrossSubRanges(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		for _, strat := range []Strategy{Sequential, RoundRobin, Random, FIFO} {
			t.Run(string(strat), func(t *testing.T) {
				spec := PoolSpec{Name: "p", Strategy: strat,
					Subnet: prefix("10.0.0.0/22"), Gateway: addr("10.0.0.1"), RangeStart: addr("10.0.0.10"), RangeEnd: addr("10.0.3.20"),
					Reserved: []netipx.IPRange{mustRange(t, "10.0.0.64/26"), mustRange(t, "10.0.1.0-10.0.2.250"), mustRange(t, "10.0.3.5")},
					Extra:    []Range{{Subnet: prefix("10.0.8.0/30")}, {Subnet: prefix("10.0.9.0/24"), RangeStart: addr("10.0.9.250")}}}
				a, _ := p.newAlloc(t, Options{}, spec)
				p, err := Compile(spec)
				require.NoError(t, err)
				size, _ := p.Size().Uint64()
				require.Greater(t, len(p.Allocatable().Ranges()), 4)
				seen := map[netip.Addr]bool{}
				for i := 0; i < int(size); i++ {
					l, err := a.Allocate(ctx, "p", fmt.Sprintf("o%d", i))
					require.NoError(t, err, "allocation %d of %d", i, size)
					require.False(t, seen[l.Addr], "duplicate %s", l.Addr)
					require.True(t, p.Contains(l.Addr), "%s not allocatable", l.Addr)
					seen[l.Addr] = true
				}
				_, err = a.Allocate(ctx, "p", "one-more")
				require.ErrorIs(t, err, ErrExhausted)
				var ee *ExhaustedError
				require.True(t, errors.As(err, &ee))
				s, err := a.Stats(ctx, "p")
				require.NoError(t, err)
				assert.True(t, s.Free.IsZero())
				assert.InDelta(t, 1.0, s.Utilization, 1e-12)
				verifyOK(t, a)
			})
		}
	})
}

func TestRoundRobinContinuesAfterLast(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		spec := PoolSpec{Name: "p", Subnet: prefix("192.0.2.0/29"), Strategy: RoundRobin} // .1-.6
		a, st := p.newAlloc(t, Options{}, spec)
		l1, _ := a.Allocate(ctx, "p", "a")
		l2, _ := a.Allocate(ctx, "p", "b")
		require.NoError(t, a.Release(ctx, l1))
		l3, err := a.Allocate(ctx, "p", "c")
		require.NoError(t, err)
		assert.Equal(t, addr("192.0.2.3"), l3.Addr, "after the last allocated, not the first free")
		// The position is in the store: a second allocator (another process)
		// continues from it.
		b, err := p.other(ctx, st, Options{Rand: &seq{}})
		require.NoError(t, err)
		l4, err := b.Allocate(ctx, "p", "d")
		require.NoError(t, err)
		assert.Equal(t, addr("192.0.2.4"), l4.Addr)
		for _, o := range []string{"e", "f"} {
			_, err := b.Allocate(ctx, "p", o)
			require.NoError(t, err)
		}
		l7, err := b.Allocate(ctx, "p", "g") // wraps to the freed .1
		require.NoError(t, err)
		assert.Equal(t, addr("192.0.2.1"), l7.Addr)
		_ = l2
		verifyOK(t, b)
	})
}

func TestRandomSpreadsAndStaysCompact(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		a, _ := p.newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("2001:db8::/64"), Strategy: Random})
		ls, err := a.AllocateN(ctx, "p", "bulk", 5000)
		require.NoError(t, err)
		seen := map[netip.Addr]bool{}
		pages := map[Count]bool{}
		ps, err := a.state("p")
		require.NoError(t, err)
		for _, l := range ls {
			require.False(t, seen[l.Addr])
			seen[l.Addr] = true
			o, ok := ps.pool.ordinal(l.Addr)
			require.True(t, ok)
			pages[o.rsh(pageShift)] = true
		}
		// Random pages across the /64 …
		lo, hi := ls[0].Addr, ls[0].Addr
		for _, l := range ls {
			if l.Addr.Less(lo) {
				lo = l.Addr
			}
			if hi.Less(l.Addr) {
				hi = l.Addr
			}
		}
		span := addrToCount(hi).Sub(addrToCount(lo))
		assert.Greater(t, span.Float64(), float64(uint64(1)<<60), "addresses spread over the /64")
		// … but few of them: pages are filled to about half before new ones open.
		assert.Less(t, len(pages), 5000/pageSlots*3+3)
		verifyOK(t, a)
	})
}

func TestFIFOCooldown(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		clk := newFakeClock()
		a, _ := p.newAlloc(t, Options{Clock: clk.Now}, PoolSpec{Name: "p", Subnet: prefix("192.0.2.0/29"), Strategy: FIFO, Cooldown: time.Minute}) // .1-.6
		var ls []Lease
		for i := 0; i < 4; i++ {
			l, err := a.Allocate(ctx, "p", fmt.Sprint("o", i))
			require.NoError(t, err)
			ls = append(ls, l)
		}
		require.NoError(t, a.Release(ctx, ls[1])) // .2 released first
		clk.Advance(time.Second)
		require.NoError(t, a.Release(ctx, ls[0])) // then .1
		// Never-used addresses first.
		l, err := a.Allocate(ctx, "p", "n1")
		require.NoError(t, err)
		assert.Equal(t, addr("192.0.2.5"), l.Addr)
		l, err = a.Allocate(ctx, "p", "n2")
		require.NoError(t, err)
		assert.Equal(t, addr("192.0.2.6"), l.Addr)
		// Only cooling addresses are left.
		_, err = a.Allocate(ctx, "p", "n3")
		var ee *ExhaustedError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 2, ee.CoolingDown)
		clk.Advance(time.Minute - time.Second/2) // .2 has cooled, .1 not yet
		l, err = a.Allocate(ctx, "p", "n3")
		require.NoError(t, err)
		assert.Equal(t, addr("192.0.2.2"), l.Addr, "oldest release first")
		_, err = a.Allocate(ctx, "p", "n4")
		require.ErrorIs(t, err, ErrExhausted)
		clk.Advance(time.Second)
		l, err = a.Allocate(ctx, "p", "n4")
		require.NoError(t, err)
		assert.Equal(t, addr("192.0.2.1"), l.Addr)
		verifyOK(t, a)
	})
}

func TestVerifierQuarantines(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		bad := map[netip.Addr]bool{addr("10.0.0.1"): true, addr("10.0.0.2"): true}
		var calls []netip.Addr
		var mu sync.Mutex
		verifier := func(ctx context.Context, pool string, a netip.Addr) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, a)
			if bad[a] {
				return fmt.Errorf("arp: %s answered by 02:00:00:00:00:01", a)
			}
			return nil
		}
		a, _ := p.newAlloc(t, Options{Verifier: verifier}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/29")})
		l, err := a.Allocate(ctx, "p", "x")
		require.NoError(t, err)
		assert.Equal(t, addr("10.0.0.3"), l.Addr)
		assert.Equal(t, []netip.Addr{addr("10.0.0.1"), addr("10.0.0.2"), addr("10.0.0.3")}, calls)
		s, err := a.Stats(ctx, "p")
		require.NoError(t, err)
		assert.Equal(t, "2", s.Quarantined.String())
		assert.Equal(t, "1", s.Allocated.String())
		assert.Equal(t, "3", s.Free.String())
		q, err := a.Quarantined(ctx, "p")
		require.NoError(t, err)
		require.Len(t, q, 2)
		assert.Contains(t, q[0].Reason, "answered by")
		_, err = a.AllocateAddr(ctx, "p", "y", addr("10.0.0.1"))
		assert.ErrorIs(t, err, ErrNotVerified)
		ls, err := a.AllocateN(ctx, "p", "z", 3)
		require.NoError(t, err)
		assert.Len(t, ls, 3)
		verifyOK(t, a)
		// Unquarantine returns the address to the free set.
		bad[addr("10.0.0.1")] = false
		require.NoError(t, a.Unquarantine(ctx, "p", addr("10.0.0.1")))
		l, err = a.AllocateAddr(ctx, "p", "y", addr("10.0.0.1"))
		require.NoError(t, err)
		assert.Equal(t, addr("10.0.0.1"), l.Addr)
		assert.ErrorIs(t, a.Unquarantine(ctx, "p", addr("10.0.0.1")), ErrNotAllocated)
		verifyOK(t, a)
	})
}

func TestThresholdEventsWithHysteresis(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		var evs []LevelEvent
		a, _ := p.newAlloc(t, Options{OnLevel: func(e LevelEvent) { evs = append(evs, e) }, Hysteresis: 0.05},
			PoolSpec{Name: "p", Subnet: prefix("192.0.2.0/31"), Extra: []Range{{Subnet: prefix("192.0.2.64/27")}}, Warn: 0.5, Critical: 0.8}) // 2+30 = 32
		var ls []Lease
		for i := 0; i < 26; i++ { // 81.25 %
			l, err := a.Allocate(ctx, "p", fmt.Sprint(i))
			require.NoError(t, err)
			ls = append(ls, l)
		}
		require.Len(t, evs, 2)
		assert.Equal(t, LevelOK, evs[0].From)
		assert.Equal(t, LevelWarn, evs[0].To)
		assert.Equal(t, "16", evs[0].Stats.Allocated.String(), "warn at 50 %")
		assert.Equal(t, LevelCritical, evs[1].To)
		assert.Equal(t, "26", evs[1].Stats.Allocated.String(), "critical at 80 %")
		// Down to 25/32 = 78 %: inside the hysteresis band, no event.
		require.NoError(t, a.Release(ctx, ls[25]))
		assert.Len(t, evs, 2)
		// 24/32 = 75 % is at the band's edge: still critical; 23/32 is below.
		require.NoError(t, a.Release(ctx, ls[24]))
		assert.Len(t, evs, 2)
		require.NoError(t, a.Release(ctx, ls[23]))
		require.Len(t, evs, 3)
		assert.Equal(t, LevelCritical, evs[2].From)
		assert.Equal(t, LevelWarn, evs[2].To)
		s, err := a.Stats(ctx, "p")
		require.NoError(t, err)
		assert.Equal(t, LevelWarn, s.Level)
	})
}

func TestSpecChangeReportsAffectedLeases(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		spec := PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/24"), Gateway: addr("10.0.0.1")}
		a, _ := p.newAlloc(t, Options{}, spec)
		ls, err := a.AllocateN(ctx, "p", "o", 10) // .2-.11
		require.NoError(t, err)
		changed := spec
		changed.Reserved = []netipx.IPRange{mustRange(t, "10.0.0.5-10.0.0.6")}
		_, err = a.AddPool(ctx, changed)
		var sce *SpecChangeError
		require.ErrorAs(t, err, &sce)
		assert.ErrorIs(t, err, ErrAlreadyAllocated)
		assert.Equal(t, []Lease{ls[3], ls[4]}, sce.Affected)
		// Nothing changed: both leases still hold, and the old spec is in force.
		specs, err := a.Pools(ctx)
		require.NoError(t, err)
		assert.Empty(t, specs[0].Reserved)
		// Cutting the range below allocated addresses is refused too.
		shrunk := spec
		shrunk.RangeStart = addr("10.0.0.8")
		_, err = a.AddPool(ctx, shrunk)
		require.ErrorAs(t, err, &sce)
		assert.Len(t, sce.Affected, 6)
		// Release them, and the change applies, carrying the other leases over.
		for _, l := range ls[3:5] {
			require.NoError(t, a.Release(ctx, l))
		}
		_, err = a.AddPool(ctx, changed)
		require.NoError(t, err)
		verifyOK(t, a)
		s, err := a.Stats(ctx, "p")
		require.NoError(t, err)
		assert.Equal(t, "8", s.Allocated.String())
		assert.Equal(t, "5", s.Reserved.String())
		for _, l := range append(ls[:3:3], ls[5:]...) {
			held, err := a.LeaseOf(ctx, "p", l.Addr)
			require.NoError(t, err)
			assert.Equal(t, l, held)
		}
		n, err := a.Allocate(ctx, "p", "new")
		require.NoError(t, err)
		assert.Equal(t, addr("10.0.0.12"), n.Addr)
		assert.Greater(t, n.Generation, ls[9].Generation)
		_, err = a.AllocateAddr(ctx, "p", "x", addr("10.0.0.5"))
		assert.ErrorIs(t, err, ErrReserved)
		// Growing the pool is always fine.
		grown := changed
		grown.Subnet = prefix("10.0.0.0/23")
		_, err = a.AddPool(ctx, grown)
		require.NoError(t, err)
		verifyOK(t, a)
		s, err = a.Stats(ctx, "p")
		require.NoError(t, err)
		assert.Equal(t, "9", s.Allocated.String())
	})
}

func TestRemoveAndRecreateKeepsGenerations(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		spec := PoolSpec{Name: "p", Subnet: prefix("192.0.2.0/30")}
		a, _ := p.newAlloc(t, Options{}, spec)
		l, err := a.Allocate(ctx, "p", "o")
		require.NoError(t, err)
		err = a.RemovePool(ctx, "p")
		require.ErrorIs(t, err, ErrAlreadyAllocated, "a pool with leases is not removed")
		require.NoError(t, a.Release(ctx, l))
		require.NoError(t, a.RemovePool(ctx, "p"))
		_, err = a.Allocate(ctx, "p", "o")
		require.ErrorIs(t, err, ErrUnknownPool)
		assert.ErrorIs(t, a.RemovePool(ctx, "p"), ErrUnknownPool)
		_, err = a.AddPool(ctx, spec)
		require.NoError(t, err)
		l2, err := a.Allocate(ctx, "p", "o")
		require.NoError(t, err)
		require.Equal(t, l.Addr, l2.Addr)
		assert.Greater(t, l2.Generation, l.Generation, "generation never reissued")
		assert.ErrorIs(t, a.Release(ctx, l), ErrStaleLease)
		verifyOK(t, a)
	})
}

func TestOverlapPolicy(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		p1 := PoolSpec{Name: "a", Subnet: prefix("10.0.0.0/24"), Cluster: "east"}
		p2 := PoolSpec{Name: "b", Subnet: prefix("10.0.0.128/25"), Cluster: "west"}
		a, _ := p.newAlloc(t, Options{}, p1)
		ovs, err := a.AddPool(ctx, p2)
		var oe *OverlapError
		require.ErrorAs(t, err, &oe)
		require.ErrorIs(t, err, ErrOverlap)
		require.Len(t, ovs, 1)
		assert.Equal(t, "10.0.0.129-10.0.0.254", ovs[0].RangeString(), "the /25's network address is not allocatable")
		assert.Equal(t, PoolRef{Name: "b", Cluster: "west"}, ovs[0].A)
		assert.Equal(t, PoolRef{Name: "a", Cluster: "east"}, ovs[0].B)
		_, err = a.Allocate(ctx, "b", "x")
		require.ErrorIs(t, err, ErrUnknownPool, "rejected pool not added")
		// Subnets that intersect but allocatable ranges that do not are fine.
		p3 := PoolSpec{Name: "c", Subnet: prefix("10.1.0.0/24"), RangeEnd: addr("10.1.0.99")}
		p4 := PoolSpec{Name: "d", Subnet: prefix("10.1.0.0/24"), RangeStart: addr("10.1.0.100")}
		_, err = a.AddPool(ctx, p3)
		require.NoError(t, err)
		ovs, err = a.AddPool(ctx, p4)
		require.NoError(t, err)
		assert.Empty(t, ovs)
		// Allow adds and reports.
		b, err := p.other(ctx, a.Store(), Options{Overlap: AllowOverlap})
		require.NoError(t, err)
		ovs, err = b.AddPool(ctx, p2)
		require.NoError(t, err)
		assert.Len(t, ovs, 1)
		la, err := b.AllocateAddr(ctx, "a", "x", addr("10.0.0.200"))
		require.NoError(t, err)
		_, err = b.AllocateAddr(ctx, "b", "y", la.Addr)
		require.NoError(t, err)
		// Verify catches the address with two owners across overlapping pools.
		err = b.Verify(ctx)
		var ve *VerifyError
		require.ErrorAs(t, err, &ve)
		assert.Contains(t, err.Error(), "also taken in overlapping pool")
	})
}

func TestReconcileTwoPasses(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		clk := newFakeClock()
		a, _ := p.newAlloc(t, Options{Clock: clk.Now}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/24")})
		dead := map[string]bool{"gone": true, "young": true}
		old1, _ := a.Allocate(ctx, "p", "gone")
		_, _ = a.Allocate(ctx, "p", "alive")
		_, _ = a.Allocate(ctx, "p", "flaky")
		clk.Advance(time.Hour)
		_, _ = a.Allocate(ctx, "p", "young")
		isLive := func(_ context.Context, l Lease) (bool, error) {
			if l.Owner == "flaky" {
				return false, errors.New("api timeout")
			}
			return !dead[l.Owner], nil
		}
		r, err := a.Reconcile(ctx, isLive, 10*time.Minute)
		require.NoError(t, err)
		assert.Equal(t, 3, r.Checked, "young lease skipped")
		assert.Equal(t, 1, r.Errors)
		require.Len(t, r.Suspects, 1)
		assert.Empty(t, r.Released, "one dead sighting is not enough")
		// Between passes the owner comes back with a new lease on the same
		// address: the suspect's generation no longer matches.
		require.NoError(t, a.Release(ctx, old1))
		renewed, err := a.AllocateAddr(ctx, "p", "gone", old1.Addr)
		require.NoError(t, err)
		r, err = a.Reconcile(ctx, isLive, 0)
		require.NoError(t, err)
		assert.Empty(t, r.Released)
		require.Len(t, r.Suspects, 2) // renewed lease and young, first sighting
		r, err = a.Reconcile(ctx, isLive, 0)
		require.NoError(t, err)
		require.Len(t, r.Released, 2)
		assert.Contains(t, r.Released, renewed)
		held, err := a.Lookup(ctx, "p", "alive")
		require.NoError(t, err)
		assert.Len(t, held, 1)
		verifyOK(t, a)
	})
}

func TestStatsIPv6Exact(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		a, _ := p.newAlloc(t, Options{}, PoolSpec{Name: "v6", Subnet: prefix("2001:db8::/48"), Gateway: addr("2001:db8::1"),
			Reserved: []netipx.IPRange{mustRange(t, "2001:db8:0:1::/64")}})
		_, err := a.AllocateN(ctx, "v6", "o", 3)
		require.NoError(t, err)
		s, err := a.Stats(ctx, "v6")
		require.NoError(t, err)
		assert.Equal(t, "1208925819614629174706176", s.Total.String())
		assert.Equal(t, "18446744073709551618", s.Reserved.String()) // /64 + anycast + gateway
		assert.Equal(t, "3", s.Allocated.String())
		assert.Equal(t, "1208907372870555465154555", s.Free.String())
		l, err := a.AllocateAddr(ctx, "v6", "far", addr("2001:db8:0:ffff:ffff:ffff:ffff:ffff"))
		require.NoError(t, err)
		require.NoError(t, a.Release(ctx, l))
		verifyOK(t, a)
	})
}

func TestVerifyDetectsCorruption(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		tests := []struct {
			name    string
			corrupt func(t *testing.T, st *MemoryStore)
			msg     string
		}{
			{"lease outside pool", func(t *testing.T, st *MemoryStore) {
				put(t, st, ownerKey("p", "evil"), encodeOwner([]leaseEntry{newLeaseEntry(addr("10.0.1.9"), 1, 0)}))
			}, "not allocatable"},
			{"two owners", func(t *testing.T, st *MemoryStore) {
				put(t, st, ownerKey("p", "evil"), encodeOwner([]leaseEntry{newLeaseEntry(addr("10.0.0.1"), 1, 0)}))
			}, "already has an owner"},
			{"bit without owner", func(t *testing.T, st *MemoryStore) {
				kvs := scanAll(t, st, pagePrefix)
				pg := pageBytes(append([]byte(nil), kvs[0].Value...))
				pg.mark(200)
				put(t, st, kvs[0].Key, pg)
			}, "have no owner"},
			{"owner without bit", func(t *testing.T, st *MemoryStore) {
				put(t, st, ownerKey("p", "evil"), encodeOwner([]leaseEntry{newLeaseEntry(addr("10.0.0.200"), 1, 0)}))
			}, "page bit is clear"},
			{"bad count", func(t *testing.T, st *MemoryStore) {
				kvs := scanAll(t, st, pagePrefix)
				pg := pageBytes(append([]byte(nil), kvs[0].Value...))
				pg[4] = 99
				put(t, st, kvs[0].Key, pg)
			}, "counts 99 taken"},
			{"future generation", func(t *testing.T, st *MemoryStore) {
				put(t, st, ownerKey("p", "o"), encodeOwner([]leaseEntry{newLeaseEntry(addr("10.0.0.1"), 77, 0)}))
			}, "never issued"},
			{"stray key", func(t *testing.T, st *MemoryStore) { put(t, st, keyPrefix+"junk", []byte("x")) }, "unknown key"},
			{"stale epoch page", func(t *testing.T, st *MemoryStore) {
				put(t, st, pageKey(pagesPrefix("p", 7), Count{}), newPage(0))
			}, "epoch"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a, st := p.newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/24")})
				_, err := a.Allocate(ctx, "p", "o")
				require.NoError(t, err)
				verifyOK(t, a)
				tt.corrupt(t, st)
				err = a.Verify(ctx)
				require.ErrorIs(t, err, ErrCorrupt)
				assert.Contains(t, err.Error(), tt.msg)
			})
		}
	})
}

func put(t *testing.T, st Store, key string, v []byte) {
	t.Helper()
	kvs, err := st.Get(ctx, key)
	require.NoError(t, err)
	_, err = st.Commit(ctx, Txn{Conds: []Cond{{Key: key, Revision: kvs[0].Revision}}, Ops: []Op{{Key: key, Value: v}}})
	require.NoError(t, err)
}

func scanAll(t *testing.T, st Store, prefix string) []KV {
	t.Helper()
	kvs, err := collect(ctx, st, prefix)
	require.NoError(t, err)
	return kvs
}

// Two allocators (processes) releasing into one FIFO pool: neither
// overwrites the other's queue entries when their commits conflict.
func TestFIFOQueueSharedByAllocators(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		clk := newFakeClock()
		a, st := p.newAlloc(t, Options{Clock: clk.Now}, PoolSpec{Name: "p", Subnet: prefix("192.0.2.0/29"), Strategy: FIFO, Cooldown: time.Hour})
		b, err := p.other(ctx, st, Options{Clock: clk.Now, Rand: &seq{}})
		require.NoError(t, err)
		var ls []Lease
		for i := 0; i < 6; i++ {
			l, err := a.Allocate(ctx, "p", fmt.Sprint(i))
			require.NoError(t, err)
			ls = append(ls, l)
		}
		_, err = b.Stats(ctx, "p") // b caches the pool now
		require.NoError(t, err)
		require.NoError(t, a.Release(ctx, ls[0]))
		require.NoError(t, b.Release(ctx, ls[1])) // b's FIFO view is stale: conflict, re-read
		require.NoError(t, a.Release(ctx, ls[2]))
		_, err = b.Allocate(ctx, "p", "x")
		var ee *ExhaustedError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 3, ee.CoolingDown, "all three releases are queued")
		clk.Advance(2 * time.Hour)
		var got []netip.Addr
		for _, o := range []string{"x", "y", "z"} {
			l, err := b.Allocate(ctx, "p", o)
			require.NoError(t, err)
			got = append(got, l.Addr)
		}
		assert.Equal(t, []netip.Addr{ls[0].Addr, ls[1].Addr, ls[2].Addr}, got, "release order")
		verifyOK(t, b)
	})
}

// Every operation fails on a closed store and with a cancelled context,
// the idempotent ones included.
func TestClosedStoreAndCancelledContext(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		a, st := p.newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/24")})
		l, err := a.Allocate(ctx, "p", "held")
		require.NoError(t, err)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err = a.Allocate(cctx, "p", "held")
		assert.ErrorIs(t, err, context.Canceled, "idempotent allocate")
		_, err = a.Allocate(cctx, "p", "new")
		assert.ErrorIs(t, err, context.Canceled)
		_, err = a.AllocateN(cctx, "p", "new", 3)
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, a.Release(cctx, l), context.Canceled)
		require.NoError(t, st.Close())
		for name, op := range map[string]func() error{
			"allocate held": func() error { _, err := a.Allocate(ctx, "p", "held"); return err },
			"allocate new":  func() error { _, err := a.Allocate(ctx, "p", "new"); return err },
			"allocate addr": func() error { _, err := a.AllocateAddr(ctx, "p", "new", addr("10.0.0.9")); return err },
			"release":       func() error { return a.Release(ctx, l) },
		} {
			assert.ErrorIs(t, op(), errClosed, name)
		}
	})
}

// A spec change frozen in the pool record (the process changing it died
// before migrating the pages) is completed by the next operation on the
// pool, whichever it is, and no lease is lost.
func TestPendingChangeCompletedByNextOperation(t *testing.T) {
	for _, next := range []string{"allocate", "allocate-n", "release"} {
		t.Run(next, func(t *testing.T) {
			forPaths(t, func(t *testing.T, p testPath) {
				spec := PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/24")}
				a, st := p.newAlloc(t, Options{}, spec)
				held, err := a.AllocateN(ctx, "p", "held", 3)
				require.NoError(t, err)
				// Freeze a change reserving 10.0.0.4-10.0.0.20 as AddPool does.
				ns := spec
				ns.Reserved = []netipx.IPRange{mustRange(t, "10.0.0.4-10.0.0.20")}
				np, err := Compile(ns)
				require.NoError(t, err)
				kvs, err := st.Get(ctx, poolKey("p"))
				require.NoError(t, err)
				rec, err := decodePoolRecord(kvs[0].Value)
				require.NoError(t, err)
				epoch := rec.Epoch
				sj := specToJSON(&np.spec)
				rec.Pending = &pendingChange{Spec: &sj}
				put(t, st, poolKey("p"), encodePoolRecord(rec))

				switch next {
				case "allocate":
					l, err := a.Allocate(ctx, "p", "new")
					require.NoError(t, err)
					assert.Equal(t, addr("10.0.0.21"), l.Addr, "allocated under the new spec")
				case "allocate-n":
					ls, err := a.AllocateN(ctx, "p", "new", 2)
					require.NoError(t, err)
					assert.Equal(t, addr("10.0.0.21"), ls[0].Addr, "allocated under the new spec")
				case "release":
					require.NoError(t, a.Release(ctx, held[0]))
				}
				kvs, err = st.Get(ctx, poolKey("p"))
				require.NoError(t, err)
				rec, err = decodePoolRecord(kvs[0].Value)
				require.NoError(t, err)
				assert.Nil(t, rec.Pending, "change completed")
				assert.Equal(t, epoch+1, rec.Epoch)
				got, err := a.Lookup(ctx, "p", "held")
				require.NoError(t, err)
				if next == "release" {
					held = held[1:]
				}
				assert.Equal(t, held, got)
				verifyOK(t, a)
			})
		})
	}
}

// A sequential batch takes exactly the first free addresses, across pages,
// reserved gaps, already taken addresses and the pool's separate subnets;
// on a MemoryStore it is kept as runs, which read back (Lookup, the Store
// interface, a release from the middle) as the same leases.
func TestSequentialBatch(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		clk := newFakeClock()
		spec := PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/22"), Gateway: addr("10.0.0.1"),
			Reserved: []netipx.IPRange{mustRange(t, "10.0.1.10-10.0.1.20")},
			Extra:    []Range{{Subnet: prefix("192.0.2.0/28")}}}
		a, st := p.newAlloc(t, Options{Clock: clk.Now}, spec)
		pool, err := Compile(spec)
		require.NoError(t, err)
		taken := map[netip.Addr]bool{}
		for _, s := range []string{"10.0.0.7", "10.0.0.64", "10.0.0.65", "10.0.1.255", "10.0.3.254"} {
			_, err := a.AllocateAddr(ctx, "p", "pre", addr(s))
			require.NoError(t, err)
			taken[addr(s)] = true
		}
		var want []netip.Addr
		for ad := range allAddrs(pool) {
			if !taken[ad] && len(want) < 1030 {
				want = append(want, ad)
			}
		}
		require.Equal(t, addr("192.0.2.14"), want[len(want)-1], "the batch ends in the second subnet")
		ls, err := a.AllocateN(ctx, "p", "batch", len(want))
		require.NoError(t, err)
		got := make([]netip.Addr, len(ls))
		gens := map[uint64]bool{}
		for i, l := range ls {
			got[i] = l.Addr
			require.False(t, gens[l.Generation], "generation %d twice", l.Generation)
			gens[l.Generation] = true
			require.Equal(t, clk.Now().UTC(), l.Allocated)
		}
		require.Equal(t, want, got)
		_, err = a.Allocate(ctx, "p", "one-more")
		require.ErrorIs(t, err, ErrExhausted)
		back, err := a.Lookup(ctx, "p", "batch")
		require.NoError(t, err)
		require.Equal(t, ls, back)
		kvs, err := st.Get(ctx, ownerKey("p", "batch"))
		require.NoError(t, err)
		es, err := decodeOwner(kvs[0].Value)
		require.NoError(t, err)
		require.Len(t, es, len(ls))
		require.NoError(t, a.Release(ctx, ls[500]))
		back, err = a.Lookup(ctx, "p", "batch")
		require.NoError(t, err)
		require.Equal(t, append(slices.Clone(ls[:500]), ls[501:]...), back)
		again, err := a.AllocateN(ctx, "p", "batch", 3)
		require.NoError(t, err)
		require.Equal(t, ls[:3], again, "idempotent")
		verifyOK(t, a)
	})
}

// Single Sequential allocations take exactly the first free address while
// releases open holes behind the lowest free one, on earlier pages and on
// the page being filled, across reserved gaps, page boundaries and the
// pool's second subnet: the path that looks only at the page of the lowest
// free ordinal must agree with the full search whenever it answers.
func TestSequentialFirstFreeAcrossPages(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		spec := PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/21"), Gateway: addr("10.0.0.1"),
			Reserved: []netipx.IPRange{mustRange(t, "10.0.3.250-10.0.4.5")}, // across the first page's end
			Extra:    []Range{{Subnet: prefix("10.1.0.0/24")}}}
		a, _ := p.newAlloc(t, Options{Rand: &seq{x: 3}}, spec)
		pool, err := Compile(spec)
		require.NoError(t, err)
		var order []netip.Addr
		for ad := range allAddrs(pool) {
			order = append(order, ad)
		}
		held := map[netip.Addr]Lease{}
		firstFree := func() netip.Addr {
			for _, ad := range order {
				if _, ok := held[ad]; !ok {
					return ad
				}
			}
			return netip.Addr{}
		}
		r := rand.New(rand.NewPCG(7, 7))
		var leases []Lease // held, in the order the seeded source indexes
		n := 0
		for step := 0; step < 9000; step++ {
			if len(leases) > 0 && r.IntN(3) == 0 {
				// release one of the leases held, picked by the seeded source
				// (not by map order), so that a failure replays
				k := r.IntN(len(leases))
				pick := leases[k]
				leases[k] = leases[len(leases)-1]
				leases = leases[:len(leases)-1]
				require.NoError(t, a.Release(ctx, pick))
				delete(held, pick.Addr)
				continue
			}
			want := firstFree()
			l, err := a.Allocate(ctx, "p", fmt.Sprint("o", n))
			n++
			if !want.IsValid() {
				require.ErrorIs(t, err, ErrExhausted)
				continue
			}
			require.NoError(t, err)
			require.Equal(t, want, l.Addr, "step %d", step)
			held[l.Addr] = l
			leases = append(leases, l)
		}
		require.Greater(t, len(held), 2200, "the pool filled into its last page")
		verifyOK(t, a)
	})
}

// A full page whose lowest free ordinal lagged behind (every ordinal below
// it taken, some above it too) is skipped to the next page from that
// page's start: the address at slot 2 of the second page is found, not
// missed (which once made a pool with free addresses report ErrExhausted).
func TestSequentialNoFalseExhaustion(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		spec := PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/21")}
		a, _ := p.newAlloc(t, Options{}, spec)
		pool, err := Compile(spec)
		require.NoError(t, err)
		size, _ := pool.Size().Uint64()
		_, err = a.AllocateN(ctx, "p", "all", int(size))
		require.NoError(t, err)
		early, late := pool.addr(CountOf(5)), pool.addr(CountOf(pageSlots+2))
		for _, ad := range []netip.Addr{early, late} {
			_, err := a.ReleaseAddr(ctx, "p", ad)
			require.NoError(t, err)
		}
		l, err := a.Allocate(ctx, "p", "first")
		require.NoError(t, err)
		require.Equal(t, early, l.Addr)
		l, err = a.Allocate(ctx, "p", "second")
		require.NoError(t, err, "one address is still free")
		require.Equal(t, late, l.Addr)
		_, err = a.Allocate(ctx, "p", "third")
		require.ErrorIs(t, err, ErrExhausted)
		verifyOK(t, a)
	})
}
