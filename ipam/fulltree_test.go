package ipam

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The radix summary must agree with a plain set of full pages.
func TestFullTreeMatchesSet(t *testing.T) {
	for _, npages := range []Count{CountOf(1), CountOf(64), CountOf(65), CountOf(5000), {hi: 1 << 50}} {
		tr := newFullTree(npages)
		full := map[Count]bool{}
		r := rand.New(rand.NewPCG(1, uint64(npages.lo)))
		pick := func() Count {
			if npages.hi > 0 {
				return Count{hi: r.Uint64N(4), lo: r.Uint64N(300)}
			}
			return CountOf(r.Uint64N(npages.lo))
		}
		for i := 0; i < 3000; i++ {
			idx := pick()
			f := r.IntN(3) > 0
			tr.set(idx, f)
			full[idx] = f
			q := pick()
			assert.Equal(t, full[q], tr.isFull(q))
			want := q
			for full[want] {
				want = want.add64(1)
			}
			got, ok := tr.next(q)
			if want.Cmp(npages) < 0 {
				require.True(t, ok)
				require.Equal(t, want, got, "next(%s)", q)
			} else if ok {
				require.GreaterOrEqual(t, got.Cmp(npages), 0)
			}
		}
	}
}

func TestFullTreeAllFull(t *testing.T) {
	tr := newFullTree(CountOf(4096))
	for i := uint64(0); i < 4096; i++ {
		tr.set(CountOf(i), true)
	}
	_, ok := tr.next(Count{})
	assert.False(t, ok)
	tr.set(CountOf(4000), false)
	got, ok := tr.next(CountOf(17))
	assert.True(t, ok)
	assert.Equal(t, CountOf(4000), got)
}
