package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go4.org/netipx"
)

// model is the obviously correct reference: who holds what.
type model struct {
	held    map[netip.Addr]Lease
	byOwner map[string][]Lease
}

func (m *model) add(l Lease) {
	m.held[l.Addr] = l
	m.byOwner[l.Owner] = append(m.byOwner[l.Owner], l)
}

func (m *model) remove(l Lease) {
	delete(m.held, l.Addr)
	ls := m.byOwner[l.Owner]
	for i := range ls {
		if ls[i] == l {
			m.byOwner[l.Owner] = append(ls[:i:i], ls[i+1:]...)
			break
		}
	}
	if len(m.byOwner[l.Owner]) == 0 {
		delete(m.byOwner, l.Owner)
	}
}

// TestPropertyAgainstModel runs random allocate / allocate-n / release /
// reserve / spec-change sequences against the model, with two allocators
// on one store taking turns, checking Verify after every step. Sequential
// allocations by an allocator working on the MemoryStore's own state are
// checked to be exactly the first free addresses.
func TestPropertyAgainstModel(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		for seed := uint64(1); seed <= 12; seed++ {
			strat := []Strategy{Sequential, RoundRobin, Random, FIFO}[seed%4]
			t.Run(fmt.Sprintf("seed%d-%s", seed, strat), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 99))
				spec := PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/26"), Gateway: addr("10.0.0.1"), Strategy: strat,
					Extra: []Range{{Subnet: prefix("10.0.1.0/28")}}}
				a, st := p.newAlloc(t, Options{Rand: &seq{x: seed}}, spec)
				b, err := p.other(ctx, st, Options{Rand: &seq{x: seed + 100}})
				require.NoError(t, err)
				m := &model{held: map[netip.Addr]Lease{}, byOwner: map[string][]Lease{}}
				var history []Lease
				randAddr := func() netip.Addr {
					if r.IntN(4) == 0 {
						return countToAddr(CountOf(10<<24|1<<8|uint64(r.IntN(16))), true)
					}
					return countToAddr(CountOf(10<<24|uint64(r.IntN(64))), true)
				}
				// firstFree returns the n lowest free addresses of the model.
				firstFree := func(pool *Pool, n int) []netip.Addr {
					var out []netip.Addr
					for ad := range allAddrs(pool) {
						if _, h := m.held[ad]; !h && len(out) < n {
							out = append(out, ad)
						}
					}
					return out
				}
				for step := 0; step < 400; step++ {
					owner := fmt.Sprint("o", r.IntN(30))
					pool, err := Compile(spec)
					require.NoError(t, err)
					al := a
					if r.IntN(3) == 0 {
						al = b
					}
					exact := strat == Sequential && al.mem != nil
					switch op := r.IntN(12); {
					case op < 4:
						l, err := al.Allocate(ctx, "p", owner)
						if prev := m.byOwner[owner]; len(prev) > 0 {
							require.NoError(t, err)
							require.Equal(t, prev[0], l, "idempotent")
							break
						}
						if errors.Is(err, ErrExhausted) {
							require.Empty(t, firstFree(pool, 1), "exhausted with free addresses")
							break
						}
						require.NoError(t, err)
						require.True(t, pool.Contains(l.Addr))
						_, dup := m.held[l.Addr]
						require.False(t, dup, "address %s handed out twice", l.Addr)
						if exact {
							require.Equal(t, firstFree(pool, 1), []netip.Addr{l.Addr}, "first free")
						}
						m.add(l)
						history = append(history, l)
					case op < 6:
						n := 1 + r.IntN(5)
						prev := m.byOwner[owner]
						ls, err := al.AllocateN(ctx, "p", owner, n)
						if len(prev) >= n {
							require.NoError(t, err)
							require.Equal(t, prev[:n], ls, "idempotent")
							break
						}
						want := firstFree(pool, n-len(prev))
						if len(want) < n-len(prev) {
							require.ErrorIs(t, err, ErrExhausted)
							break // nothing allocated: Verify and Stats below check it
						}
						require.NoError(t, err)
						require.Len(t, ls, n)
						if len(prev) > 0 {
							require.Equal(t, prev, ls[:len(prev)], "existing leases first, in order")
						}
						var got []netip.Addr
						for _, l := range ls[len(prev):] {
							require.True(t, pool.Contains(l.Addr))
							_, dup := m.held[l.Addr]
							require.False(t, dup, "address %s handed out twice", l.Addr)
							m.add(l)
							history = append(history, l)
							got = append(got, l.Addr)
						}
						if exact {
							require.Equal(t, want, got, "first free")
						}
					case op == 6:
						ad := randAddr()
						l, err := al.AllocateAddr(ctx, "p", owner, ad)
						switch {
						case !pool.Contains(ad):
							require.True(t, errors.Is(err, ErrReserved) || errors.Is(err, ErrNotInPool), "%v", err)
						case m.held[ad].Owner == owner:
							require.NoError(t, err)
							require.Equal(t, m.held[ad], l)
						case m.held[ad].Owner != "":
							require.ErrorIs(t, err, ErrAlreadyAllocated)
						default:
							require.NoError(t, err)
							m.add(l)
							history = append(history, l)
						}
					case op < 9 && len(history) > 0:
						l := history[r.IntN(len(history))]
						err := al.Release(ctx, l)
						if cur, ok := m.held[l.Addr]; ok && cur == l {
							require.NoError(t, err)
							m.remove(l)
						} else {
							require.ErrorIs(t, err, ErrStaleLease)
						}
					case op == 9:
						got, err := al.ReleaseOwner(ctx, "p", owner)
						require.NoError(t, err)
						require.ElementsMatch(t, m.byOwner[owner], got)
						for _, l := range got {
							m.remove(l)
						}
					default: // spec change: reserve or unreserve a small range
						ns := spec
						ns.Reserved = nil
						if r.IntN(3) > 0 {
							from := randAddr()
							to := from
							for i := r.IntN(4); i > 0 && to.Next().IsValid(); i-- {
								to = to.Next()
							}
							ns.Reserved = []netipx.IPRange{netipx.IPRangeFrom(from, to)}
						}
						if _, err := Compile(ns); err != nil {
							break // reserved range straddles the subnets
						}
						np, _ := Compile(ns)
						var lost []Lease
						for ad, l := range m.held {
							if !np.Contains(ad) {
								lost = append(lost, l)
							}
						}
						_, err := al.AddPool(ctx, ns)
						if len(lost) > 0 {
							var sce *SpecChangeError
							require.ErrorAs(t, err, &sce)
							require.ElementsMatch(t, lost, sce.Affected)
						} else {
							require.NoError(t, err)
							spec = ns
						}
					}
					verifyOK(t, a)
					for _, x := range []*Allocator{a, b} {
						require.NoError(t, x.Refresh(ctx, "p")) // a generic allocator's view may lag
						s, err := x.Stats(ctx, "p")
						require.NoError(t, err)
						require.Equal(t, fmt.Sprint(len(m.held)), s.Allocated.String(), "step %d", step)
					}
				}
			})
		}
	})
}

func allAddrs(p *Pool) func(func(netip.Addr) bool) {
	return func(yield func(netip.Addr) bool) {
		for _, r := range p.Allocatable().Ranges() {
			for a := r.From(); a.Compare(r.To()) <= 0; a = a.Next() {
				if !yield(a) {
					return
				}
			}
		}
	}
}

// TestRaceStress: 16 goroutines on one pool (and a second allocator on the
// same store, as another process would be): every address unique.
func TestRaceStress(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		const workers, per = 16, 400
		a, st := p.newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/16"), Strategy: Random})
		b, err := p.other(ctx, st, Options{Rand: &seq{x: 5}})
		require.NoError(t, err)
		var mu sync.Mutex
		held := map[netip.Addr]string{}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				al := a
				if w%2 == 1 {
					al = b
				}
				for i := 0; i < per; i++ {
					owner := fmt.Sprintf("w%d-%d", w, i)
					l, err := al.Allocate(ctx, "p", owner)
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					if prev, dup := held[l.Addr]; dup {
						t.Errorf("%s handed to %s and %s", l.Addr, prev, owner)
					}
					held[l.Addr] = owner
					mu.Unlock()
					if i%4 == 0 {
						mu.Lock()
						delete(held, l.Addr)
						mu.Unlock()
						assert.NoError(t, al.Release(ctx, l))
					}
				}
			}()
		}
		wg.Wait()
		verifyOK(t, a)
		require.NoError(t, a.Refresh(ctx, "p"))
		s, err := a.Stats(ctx, "p")
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(len(held)), s.Allocated.String())
		assert.Equal(t, workers*per*3/4, len(held))
	})
}

// TestRaceSameOwner: goroutines allocating for the same owners at once get
// one lease per owner (idempotency under concurrency) while batches and
// whole-owner releases interleave, and VerifyStore, run all along, never
// sees an address without its owner record or an owner record without its
// address.
func TestRaceSameOwner(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		const workers, owners = 8, 150
		a, st := p.newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/20")})
		b, err := p.other(ctx, st, Options{Rand: &seq{x: 9}})
		require.NoError(t, err)
		stopVerify := verifyAlong(t, st)
		got := make([][]Lease, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				al := []*Allocator{a, b}[w%2]
				got[w] = make([]Lease, owners)
				for i := range owners {
					l, err := al.Allocate(ctx, "p", fmt.Sprint("same-", i))
					if !assert.NoError(t, err) {
						return
					}
					got[w][i] = l
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 120 {
				al := []*Allocator{a, b}[i%2]
				o := fmt.Sprint("batch-", i%10)
				ls, err := al.AllocateN(ctx, "p", o, 1+i%7)
				if assert.NoError(t, err) {
					assert.Len(t, ls, 1+i%7)
				}
				if i%3 == 2 {
					_, err := al.ReleaseOwner(ctx, "p", o)
					assert.NoError(t, err)
				}
			}
		}()
		wg.Wait()
		checks := stopVerify()
		for i := range owners {
			for w := 1; w < workers; w++ {
				require.Equal(t, got[0][i], got[w][i], "owner same-%d", i)
			}
		}
		verifyOK(t, a)
		assert.Positive(t, checks)
	})
}

// TestRaceVerifier: with a Verifier, which runs with the pool's locks
// released, concurrent allocations from two allocators stay unique, no
// address failing verification is handed out, and every quarantined
// address is one that failed.
func TestRaceVerifier(t *testing.T) {
	forPaths(t, func(t *testing.T, p testPath) {
		bad := func(ad netip.Addr) bool { return ad.As4()[3]%5 == 0 }
		verifier := func(ctx context.Context, pool string, ad netip.Addr) error {
			runtime.Gosched()
			if bad(ad) {
				return fmt.Errorf("%s answered", ad)
			}
			return nil
		}
		a, st := p.newAlloc(t, Options{Verifier: verifier}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/22")})
		b, err := p.other(ctx, st, Options{Verifier: verifier, Rand: &seq{x: 3}})
		require.NoError(t, err)
		var mu sync.Mutex
		held := map[netip.Addr]string{}
		take := func(owner string, ls ...Lease) {
			mu.Lock()
			defer mu.Unlock()
			for _, l := range ls {
				assert.False(t, bad(l.Addr), "%s failed verification but was handed out", l.Addr)
				if prev, dup := held[l.Addr]; dup && prev != owner {
					t.Errorf("%s handed to %s and %s", l.Addr, prev, owner)
				}
				held[l.Addr] = owner
			}
		}
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				al := []*Allocator{a, b}[w%2]
				for i := range 40 {
					owner := fmt.Sprintf("w%d-%d", w, i)
					if i%4 == 0 {
						ls, err := al.AllocateN(ctx, "p", owner, 3)
						if assert.NoError(t, err) {
							take(owner, ls...)
						}
						continue
					}
					l, err := al.Allocate(ctx, "p", owner)
					if !assert.NoError(t, err) {
						return
					}
					take(owner, l)
					if i%3 == 0 {
						mu.Lock()
						delete(held, l.Addr)
						mu.Unlock()
						assert.NoError(t, al.Release(ctx, l))
					}
				}
			}()
		}
		wg.Wait()
		verifyOK(t, a)
		q, err := a.Quarantined(ctx, "p")
		require.NoError(t, err)
		require.NotEmpty(t, q)
		for _, e := range q {
			assert.True(t, bad(e.Addr), "%s quarantined but passed", e.Addr)
		}
	})
}
