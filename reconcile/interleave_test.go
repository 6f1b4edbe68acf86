package reconcile

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// store abstracts the two containers so each Riak client interleaving runs on
// both: a client writes a value with the context of its last read and gets back
// the stored values and the new context (Riak's return_body).
type store[T any] interface {
	write(ctx VV, v T) ([]T, VV)
	values() []T
}

type dvvStore[T any] struct{ s DVVSet[T] }

func (d *dvvStore[T]) write(ctx VV, v T) ([]T, VV) {
	d.s = must(NewDVVSetAt(ctx, v).UpdateWith(d.s, "vnode"))
	return d.s.Values(), d.s.Join()
}
func (d *dvvStore[T]) values() []T { return d.s.Values() }

type recordStore[T any] struct{ r Record[T] }

func (s *recordStore[T]) write(ctx VV, v T) ([]T, VV) {
	r, _, err := s.r.Put("vnode", Context{Clock: ctx}, Version[T]{Value: v})
	if err != nil {
		panic(err)
	}
	s.r = r
	return s.values(), r.Clock()
}
func (s *recordStore[T]) values() []T {
	var out []T
	for _, v := range s.r.Versions() {
		out = append(out, v.Value)
	}
	return out
}

func stores[T any]() map[string]func() store[T] {
	return map[string]func() store[T]{
		"dvvset": func() store[T] { return &dvvStore[T]{} },
		"record": func() store[T] { return &recordStore[T]{} },
	}
}

// TestSiblingExplosion ports riak_test's sibling_explosion: two clients take
// turns to fetch, resolve the siblings by set union, add their number and put
// back with the context the previous put returned. Each put has missed exactly
// the other client's last write, a perpetual race; with dotted version vectors
// the siblings stay at two and every write survives in their union.
func TestSiblingExplosion(t *testing.T) {
	for name, mk := range stores[[]int]() {
		t.Run(name, func(t *testing.T) {
			s := mk()
			type client struct {
				vals [][]int
				ctx  VV
				init []int
			}
			a, b := &client{init: []int{0}}, &client{init: []int{1}}
			const n = 100
			for cnt := n; cnt > 1; cnt-- {
				c := a
				if cnt%2 != 0 {
					c = b
				}
				var v []int
				if c.vals == nil {
					v = c.init // a new object: stored as it is
				} else {
					v = union(c.vals...)
					v = union(v, []int{cnt})
				}
				c.vals, c.ctx = s.write(c.ctx, v)
				require.LessOrEqual(t, len(s.values()), 2, "siblings after write %d", cnt)
			}
			got := s.values()
			assert.Len(t, got, 2)
			want := make([]int, n-1)
			for i := range want {
				want[i] = i
			}
			assert.Equal(t, want, union(got...), "every write survives in the union of the siblings")
		})
	}
}

func union(sets ...[]int) []int {
	var out []int
	for _, s := range sets {
		out = append(out, s...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestReadmeScenarios ports the two interleavings of the Dotted-Version-Vectors
// README, run there against Riak for 101 writes: (1) a client writes and reads
// while another client writes blindly; (2) two clients each write with the
// context of their own last read. With version vectors keyed by server both end
// with 101 siblings; with dotted version vectors with two, v101 and v100.
func TestReadmeScenarios(t *testing.T) {
	for name, mk := range stores[string]() {
		for _, sc := range []struct {
			name string
			ctx  func(i int, c1, c2 VV) (VV, int) // the context writer i uses, and which client's context to update
		}{
			{"scenario1", func(i int, c1, _ VV) (VV, int) {
				if i%2 == 1 {
					return c1, 1
				}
				return VV{}, 0 // another client, no causal information
			}},
			{"scenario2", func(i int, c1, c2 VV) (VV, int) {
				if i%2 == 1 {
					return c1, 1
				}
				return c2, 2
			}},
		} {
			t.Run(name+"/"+sc.name, func(t *testing.T) {
				s := mk()
				var c1, c2 VV
				maxSiblings := 0
				for i := 1; i <= 101; i++ {
					ctx, who := sc.ctx(i, c1, c2)
					_, next := s.write(ctx, fmt.Sprintf("v%d", i))
					switch who {
					case 1:
						c1 = next
					case 2:
						c2 = next
					}
					maxSiblings = max(maxSiblings, len(s.values()))
				}
				assert.ElementsMatch(t, []string{"v100", "v101"}, s.values())
				assert.LessOrEqual(t, maxSiblings, 3, "always two or three siblings")
			})
		}
	}
}
