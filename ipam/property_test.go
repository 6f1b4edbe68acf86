package ipam

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
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

// TestPropertyAgainstModel runs random allocate / release / reserve /
// spec-change sequences against the model, checking Verify after every step.
func TestPropertyAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		strat := []Strategy{Sequential, RoundRobin, Random, FIFO}[seed%4]
		t.Run(fmt.Sprintf("seed%d-%s", seed, strat), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			spec := PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/26"), Gateway: addr("10.0.0.1"), Strategy: strat,
				Extra: []Range{{Subnet: prefix("10.0.1.0/28")}}}
			a, _ := newAlloc(t, Options{Rand: &seq{x: seed}}, spec)
			m := &model{held: map[netip.Addr]Lease{}, byOwner: map[string][]Lease{}}
			var history []Lease
			randAddr := func() netip.Addr {
				if r.IntN(4) == 0 {
					return countToAddr(CountOf(10<<24|1<<8|uint64(r.IntN(16))), true)
				}
				return countToAddr(CountOf(10<<24|uint64(r.IntN(64))), true)
			}
			for step := 0; step < 400; step++ {
				owner := fmt.Sprint("o", r.IntN(30))
				pool, err := Compile(spec)
				require.NoError(t, err)
				switch op := r.IntN(10); {
				case op < 4:
					l, err := a.Allocate(ctx, "p", owner)
					if prev := m.byOwner[owner]; len(prev) > 0 {
						require.NoError(t, err)
						require.Equal(t, prev[0], l, "idempotent")
						break
					}
					if errors.Is(err, ErrExhausted) {
						free := 0
						for ad := range allAddrs(pool) {
							if _, h := m.held[ad]; !h {
								free++
							}
						}
						require.Zero(t, free, "exhausted with free addresses")
						break
					}
					require.NoError(t, err)
					require.True(t, pool.Contains(l.Addr))
					_, dup := m.held[l.Addr]
					require.False(t, dup, "address %s handed out twice", l.Addr)
					m.add(l)
					history = append(history, l)
				case op == 4:
					ad := randAddr()
					l, err := a.AllocateAddr(ctx, "p", owner, ad)
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
				case op < 7 && len(history) > 0:
					l := history[r.IntN(len(history))]
					err := a.Release(ctx, l)
					if cur, ok := m.held[l.Addr]; ok && cur == l {
						require.NoError(t, err)
						m.remove(l)
					} else {
						require.ErrorIs(t, err, ErrStaleLease)
					}
				case op == 7:
					got, err := a.ReleaseOwner(ctx, "p", owner)
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
					_, err := a.AddPool(ctx, ns)
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
				s, err := a.Stats(ctx, "p")
				require.NoError(t, err)
				require.Equal(t, fmt.Sprint(len(m.held)), s.Allocated.String(), "step %d", step)
			}
		})
	}
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
	const workers, per = 16, 400
	a, st := newAlloc(t, Options{}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/16"), Strategy: Random})
	b, err := NewWithOptions(ctx, st, Options{Rand: &seq{x: 5}})
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
}
