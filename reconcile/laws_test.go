package reconcile

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// reachableRecords simulates three replicas of one key under random writes
// (fresh, stale and blind contexts), deletes and pairwise syncs, and returns
// every record state that occurred: the states the laws must hold on.
func reachableRecords(rng *rand.Rand, steps int) []Record[string] {
	reps := make([]Record[string], 3)
	var ctxs []Context
	var pool []Record[string]
	for range steps {
		i := rng.IntN(len(reps))
		switch op := rng.IntN(10); {
		case op < 5:
			var ctx Context
			switch rng.IntN(3) {
			case 0:
				ctx = reps[i].Context()
			case 1:
				if len(ctxs) > 0 {
					ctx = ctxs[rng.IntN(len(ctxs))]
				}
			}
			v := Version[string]{
				Value:     fmt.Sprintf("v%d", rng.IntN(4)),
				Timestamp: Unix(int64(100+rng.IntN(5)), 0),
				Priority:  int64(rng.IntN(3)),
				Node:      fmt.Sprintf("n%d", i),
				Deleted:   rng.IntN(5) == 0,
			}
			r, _, err := reps[i].Put(fmt.Sprintf("n%d#0", i), ctx, v)
			if err != nil {
				panic(err)
			}
			reps[i] = r
		case op < 8:
			reps[i] = Sync(reps[i], reps[rng.IntN(len(reps))])
		default:
			ctxs = append(ctxs, reps[i].Context())
		}
		pool = append(pool, reps[i])
	}
	return pool
}

func encodeRecord(t testing.TB, r Record[string]) string {
	b, err := r.MarshalBinary()
	require.NoError(t, err)
	return string(b)
}

func TestRecordSyncLaws(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		pool := reachableRecords(rng, 120)
		for range 200 {
			a, b, c := pool[rng.IntN(len(pool))], pool[rng.IntN(len(pool))], pool[rng.IntN(len(pool))]
			ab := Sync(a, b)
			require.Equal(t, encodeRecord(t, ab), encodeRecord(t, Sync(b, a)), "seed %d: sync commutes", seed)
			require.Equal(t, encodeRecord(t, Sync(ab, c)), encodeRecord(t, Sync(a, Sync(b, c))), "seed %d: sync associates", seed)
			require.Equal(t, encodeRecord(t, a), encodeRecord(t, Sync(a, a)), "seed %d: sync is idempotent", seed)
			require.True(t, ab.Clock().Descends(a.Clock()) && ab.Clock().Descends(b.Clock()))
			// Nothing is invented: every version of the result comes from an input.
			for _, v := range ab.Versions() {
				require.True(t, slices.Contains(a.Versions(), v) || slices.Contains(b.Versions(), v))
			}
		}
	}
}

func TestRecordEncodingRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, r := range reachableRecords(rng, 400) {
		b, err := r.MarshalBinary()
		require.NoError(t, err)
		var back Record[string]
		require.NoError(t, back.UnmarshalBinary(b))
		require.True(t, r.Equal(back))
		require.Equal(t, r.Versions(), back.Versions())
		again, err := back.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, b, again, "canonical: re-encoding gives the same bytes")

		j, err := r.MarshalJSON()
		require.NoError(t, err)
		var fromJSON Record[string]
		require.NoError(t, fromJSON.UnmarshalJSON(j))
		require.True(t, r.Equal(fromJSON), "JSON round trip: %s", j)

		ctx := r.Context()
		cb, err := ctx.MarshalBinary()
		require.NoError(t, err)
		var cback Context
		require.NoError(t, cback.UnmarshalBinary(cb))
		require.Equal(t, ctx.Time, cback.Time)
		require.True(t, ctx.Clock.Equal(cback.Clock))
	}
}

// reachableDVVSets does the same for DVVSets, with LWW and Reconcile applied now
// and then as servers would (Reconcile fills the anonymous list).
func reachableDVVSets(rng *rand.Rand, steps int) []DVVSet[int] {
	reps := make([]DVVSet[int], 3)
	var ctxs []VV
	var pool []DVVSet[int]
	for range steps {
		i := rng.IntN(len(reps))
		switch op := rng.IntN(13); {
		case op < 5:
			var ctx VV
			switch rng.IntN(3) {
			case 0:
				ctx = reps[i].Join()
			case 1:
				if len(ctxs) > 0 {
					ctx = ctxs[rng.IntN(len(ctxs))]
				}
			}
			reps[i] = must(NewDVVSetAt(ctx, rng.IntN(50)).UpdateWith(reps[i], fmt.Sprint("s", i)))
		case op < 9:
			reps[i] = reps[i].Sync(reps[rng.IntN(len(reps))])
		case op < 10:
			reps[i] = reps[i].LWW(func(a, b int) bool { return a <= b })
		case op < 11: // a server-side reconciliation: the anonymous list
			reps[i] = reps[i].Reconcile(func(vs []int) int { return len(vs) * 100 })
		default:
			ctxs = append(ctxs, reps[i].Join())
		}
		pool = append(pool, reps[i])
	}
	return pool
}

func TestDVVSetSyncLaws(t *testing.T) {
	enc := func(s DVVSet[int]) string {
		b, err := AppendDVVSet(nil, s, nil)
		require.NoError(t, err)
		return string(b)
	}
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		pool := reachableDVVSets(rng, 120)
		for range 200 {
			a, b, c := pool[rng.IntN(len(pool))], pool[rng.IntN(len(pool))], pool[rng.IntN(len(pool))]
			require.Equal(t, enc(a.Sync(b)), enc(b.Sync(a)), "seed %d: sync commutes", seed)
			left, right := a.Sync(b).Sync(c), a.Sync(b.Sync(c))
			require.Equal(t, left.Entries(), right.Entries(), "seed %d: sync associates on histories and dotted values", seed)
			if len(a.anon)+len(b.anon)+len(c.anon) == 0 { // see TestDVVSetSyncAnonymousOrder
				require.Equal(t, enc(left), enc(right), "seed %d: sync associates", seed)
			}
			require.Equal(t, enc(a), enc(a.Sync(a)), "seed %d: sync is idempotent", seed)
			back, err := DecodeDVVSet[int]([]byte(enc(a)), nil)
			require.NoError(t, err)
			require.Equal(t, enc(a), enc(back), "encoding round trip")
			require.Equal(t, a.Entries(), back.Entries())
		}
	}
}
