package reconcile

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVVCompare(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b []Entry
		want Ordering
	}{
		{"both empty", nil, nil, Equal},
		{"explicit zero equals missing", []Entry{{"a", 0}}, nil, Equal},
		{"zero entries on both sides", []Entry{{"a", 0}, {"b", 1}}, []Entry{{"b", 1}, {"c", 0}}, Equal},
		{"missing is zero, not unknown (GoVector)", []Entry{{"a", 1}}, []Entry{{"a", 1}, {"b", 0}}, Equal},
		{"empty before anything", nil, []Entry{{"a", 1}}, Before},
		{"descends", []Entry{{"a", 2}, {"b", 1}}, []Entry{{"a", 1}}, After},
		{"extra actor on the right", []Entry{{"a", 1}}, []Entry{{"a", 1}, {"b", 1}}, Before},
		{"disjoint actors", []Entry{{"a", 1}}, []Entry{{"b", 1}}, Concurrent},
		{"crossed counters", []Entry{{"a", 2}, {"b", 1}}, []Entry{{"a", 1}, {"b", 2}}, Concurrent},
		{"higher counter but missing actor", []Entry{{"a", 5}}, []Entry{{"a", 1}, {"b", 1}}, Concurrent},
		{"duplicates keep the max", []Entry{{"a", 1}, {"a", 3}}, []Entry{{"a", 3}}, Equal},
		{"order of entries is irrelevant", []Entry{{"b", 1}, {"a", 2}}, []Entry{{"a", 2}, {"b", 1}}, Equal},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := NewVV(c.a...), NewVV(c.b...)
			assert.Equal(t, c.want, a.Compare(b))
			assert.Equal(t, c.want == Equal, a.Equal(b))
			assert.Equal(t, c.want == After || c.want == Equal, a.Descends(b))
			assert.Equal(t, c.want == After, a.Dominates(b))
		})
	}
}

func TestVVOperations(t *testing.T) {
	v := NewVV(Entry{"b", 2}, Entry{"a", 1}, Entry{"c", 0})
	assert.Equal(t, 2, v.Len())
	assert.Equal(t, uint64(2), v.Get("b"))
	assert.Equal(t, uint64(0), v.Get("c"))
	assert.Equal(t, "{a:1, b:2}", v.String())
	assert.Equal(t, []Entry{{"a", 1}, {"b", 2}}, v.Entries())

	w := v.With("c", 5).With("a", 0)
	assert.Equal(t, "{b:2, c:5}", w.String())
	assert.Equal(t, "{a:1, b:2}", v.String(), "With must not change its receiver")
	assert.Equal(t, "{a:1, b:2, c:5}", v.Merge(w).String())
	assert.Equal(t, "{b:2}", v.Meet(w).String())
	assert.Equal(t, "{a:1}", v.Without("b").String())
	assert.Equal(t, "{}", v.Without("b").Without("a").String())
	assert.True(t, v.Covers(Dot{"b", 2}))
	assert.False(t, v.Covers(Dot{"b", 3}))
	assert.True(t, v.Covers(Dot{"z", 0}), "counter zero is covered by every vector")
	assert.Equal(t, "{a:1, b:3}", v.Add(Dot{"b", 3}).String())
	assert.Equal(t, v, v.Add(Dot{"b", 1}))
	assert.Equal(t, `{"odd name":1}`, NewVV(Entry{"odd name", 1}).String())

	var keys []string
	for a, n := range v.All() {
		keys = append(keys, a)
		if n == 1 {
			break
		}
	}
	assert.Equal(t, []string{"a"}, keys, "All stops when yield returns false")
}

func TestVVJSON(t *testing.T) {
	v := NewVV(Entry{"N2#1", 1}, Entry{"N1#1", 3})
	b, err := json.Marshal(v)
	require.NoError(t, err)
	assert.Equal(t, `{"N1#1":3,"N2#1":1}`, string(b))
	var back VV
	require.NoError(t, json.Unmarshal([]byte(`{"N2#1":1,"x":0,"N1#1":3}`), &back))
	assert.True(t, v.Equal(back))
	assert.Error(t, json.Unmarshal([]byte(`{"a":-1}`), &back))
}

// randomVV draws a vector over a small actor set, sometimes with explicit zero
// entries, which must not matter.
func randomVV(rng *rand.Rand) (VV, []Entry) {
	var e []Entry
	for _, a := range []string{"a", "b", "c", "d"} {
		switch rng.IntN(4) {
		case 0: // missing
		case 1:
			e = append(e, Entry{a, 0}) // explicit zero
		default:
			e = append(e, Entry{a, uint64(rng.IntN(3) + 1)})
		}
	}
	rng.Shuffle(len(e), func(i, j int) { e[i], e[j] = e[j], e[i] })
	return NewVV(e...), e
}

func TestVVLaws(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	flip := map[Ordering]Ordering{Equal: Equal, Before: After, After: Before, Concurrent: Concurrent}
	leq := func(x, y VV) bool { c := x.Compare(y); return c == Before || c == Equal }
	for i := 0; i < 3000; i++ {
		x, xe := randomVV(rng)
		y, _ := randomVV(rng)
		z, _ := randomVV(rng)
		require.Equal(t, Equal, x.Compare(x), "reflexive: %v", x)
		require.Equal(t, flip[x.Compare(y)], y.Compare(x), "antisymmetric: %v %v", x, y)
		if leq(x, y) && leq(y, z) {
			require.True(t, leq(x, z), "transitive: %v <= %v <= %v", x, y, z)
		}
		var nonzero []Entry
		for _, e := range xe {
			if e.Counter != 0 {
				nonzero = append(nonzero, e)
			}
		}
		require.Equal(t, Equal, x.Compare(NewVV(nonzero...)), "explicit zeros are irrelevant: %v", xe)
		require.Equal(t, x.Compare(y), NewVV(nonzero...).Compare(y))

		m := x.Merge(y)
		require.True(t, m.Equal(y.Merge(x)), "merge commutes")
		require.True(t, m.Merge(z).Equal(x.Merge(y.Merge(z))), "merge associates")
		require.True(t, x.Merge(x).Equal(x), "merge is idempotent")
		require.True(t, m.Descends(x) && m.Descends(y), "merge is an upper bound")
		if z.Descends(x) && z.Descends(y) {
			require.True(t, z.Descends(m), "merge is the least upper bound")
		}
		mt := x.Meet(y)
		require.True(t, x.Descends(mt) && y.Descends(mt), "meet is a lower bound")
		require.True(t, mt.Equal(y.Meet(x)))

		b, err := x.MarshalBinary()
		require.NoError(t, err)
		var back VV
		require.NoError(t, back.UnmarshalBinary(b))
		require.True(t, x.Equal(back), "binary round trip")
	}
}
