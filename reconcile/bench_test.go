package reconcile

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/addrguard/addrguard/internal/cputime"
	"github.com/stretchr/testify/require"
)

// vvPair returns two vectors over n actors: equal but for the last actor, where
// b is ahead (a full walk for Compare, a worst case for its early exit).
func vvPair(n int) (VV, VV) {
	var ea, eb []Entry
	for i := range n {
		a := fmt.Sprintf("node-%03d#%d", i, i%4)
		ea = append(ea, Entry{a, uint64(100 + i)})
		eb = append(eb, Entry{strings.Clone(a), uint64(100 + i)}) // as decoded elsewhere: no shared bytes

	}
	eb[n-1].Counter++
	return NewVV(ea...), NewVV(eb...)
}

var sizes = []int{3, 16, 128}

// cpuMeter measures the process's CPU time (user + system) over a benchmark
// loop. On a shared machine it shows the work done apart from the time spent
// waiting for a core, which inflates ns/op.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := cputime.Self()
	return cpuMeter{t, ok}
}

// report adds the CPU time per op, divided by units, as "cpu-ns/"+unit.
func (m cpuMeter) report(b *testing.B, units float64, unit string) {
	if t, ok := cputime.Self(); ok && m.ok && b.N > 0 {
		b.ReportMetric(float64(t-m.start)/float64(b.N)/units, "cpu-ns/"+unit)
	}
}

func BenchmarkCompare(b *testing.B) {
	for _, n := range sizes {
		x, y := vvPair(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			var o Ordering
			cpu := startCPU()
			for b.Loop() {
				o = x.Compare(y)
			}
			cpu.report(b, 1, "op")
			if o != Before {
				b.Fatal(o)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkMerge merges concurrent vectors (each ahead on one actor), the case
// that allocates.
func BenchmarkMerge(b *testing.B) {
	for _, n := range sizes {
		x, y := vvPair(n)
		x = x.With(x.e[0].name(), x.e[0].counter+1)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				_ = x.Merge(y)
			}
			cpu.report(b, 1, "op")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// recordPair returns two records of one key whose clocks span n actors and
// which each hold one concurrent write: the anti-entropy case after a partition.
func recordPair(n int) (Record[string], Record[string]) {
	x, y := vvPair(n)
	base := Record[string]{clock: x.Meet(y)}
	a, _, _ := base.Put(x.e[0].name(), base.Context(), Version[string]{Value: "left", Timestamp: Unix(1, 0), Node: "A"})
	c, _, _ := base.Put(y.e[n-1].name(), base.Context(), Version[string]{Value: "right", Timestamp: Unix(2, 0), Node: "B"})
	return a, c
}

// BenchmarkSync merges two replicas' records with concurrent siblings, and
// (the common anti-entropy case) two equal records.
func BenchmarkSync(b *testing.B) {
	for _, n := range sizes {
		x, y := recordPair(n)
		b.Run(fmt.Sprintf("concurrent/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var r Record[string]
			cpu := startCPU()
			for b.Loop() {
				r = Sync(x, y)
			}
			cpu.report(b, 1, "op")
			if r.Len() != 2 {
				b.Fatal(r.Len())
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
		b.Run(fmt.Sprintf("equal/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			z := Sync(x, y)
			w := Sync(y, x)
			cpu := startCPU()
			for b.Loop() {
				_ = Sync(z, w)
			}
			cpu.report(b, 1, "op")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkSyncDVVSet is the same concurrent merge for the compact DVVSet.
func BenchmarkSyncDVVSet(b *testing.B) {
	for _, n := range sizes {
		x, y := vvPair(n)
		base := x.Meet(y)
		s1 := must(NewDVVSetAt(base, "left").Update(x.e[0].name()))
		s2 := must(NewDVVSetAt(base, "right").Update(y.e[n-1].name()))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				_ = s1.Sync(s2)
			}
			cpu.report(b, 1, "op")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// interleaving runs writes from clients through servers with asynchronous,
// lagging replication: each client writes with the context its last write
// returned (Riak's return_body) and now and then re-reads from a random server,
// merging what it reads into its session context (read-your-writes). A client's
// writes are therefore causally ordered, and after every write the test checks
// that no client has two live siblings: siblings never exceed the clients with a
// live concurrent write. It returns the largest sibling count and clock size.
func interleaving(tb testing.TB, seed uint64, writes, clients, servers int) (maxSiblings, maxEntries int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	clk := NewHLC(func() time.Time { return time.Unix(1700000000, 0) })
	reps := make([]*Replica[int], servers)
	for i := range reps {
		r, err := NewReplica[int](fmt.Sprintf("S%d", i), ReplicaOptions{Clock: clk, Limits: Limits{WarnSiblings: -1, MaxSiblings: -1}})
		require.NoError(tb, err)
		reps[i] = r
	}
	ctxs := make([]Context, clients)
	for w := range writes {
		c := rng.IntN(clients)
		if rng.IntN(4) == 0 {
			rec, _ := reps[rng.IntN(servers)].Get("k")
			rc := rec.Context()
			ctxs[c] = Context{Clock: ctxs[c].Clock.Merge(rc.Clock), Time: maxTime(ctxs[c].Time, rc.Time)}
		}
		s := reps[rng.IntN(servers)]
		if _, _, err := s.Put("k", ctxs[c], Version[int]{Value: c*1_000_000 + w}); err != nil {
			tb.Fatal(err)
		}
		rec, _ := s.Get("k")
		ctxs[c] = rec.Context()
		if rng.IntN(2) == 0 { // replicate to one other server, sometimes late
			reps[rng.IntN(servers)].Merge("k", rec)
		}
		seen := map[int]bool{}
		for _, v := range rec.Versions() {
			if seen[v.Value/1_000_000] {
				tb.Fatalf("write %d: client %d has two live siblings", w, v.Value/1_000_000)
			}
			seen[v.Value/1_000_000] = true
		}
		maxSiblings = max(maxSiblings, rec.Len())
		maxEntries = max(maxEntries, rec.Clock().Len())
	}
	return maxSiblings, maxEntries
}

func TestInterleavedWritesStayBounded(t *testing.T) {
	sib, entries := interleaving(t, 1, 10_000, 100, 3)
	require.LessOrEqual(t, sib, 100, "siblings never exceed the concurrent writers")
	require.LessOrEqual(t, entries, 3, "one clock entry per server")
	t.Logf("max siblings %d, max clock entries %d", sib, entries)
}

// BenchmarkInterleavedWrites: 10,000 interleaved writes from 100 clients
// through 3 servers; reports writes/s, the largest sibling count and the
// largest clock seen.
func BenchmarkInterleavedWrites(b *testing.B) {
	b.ReportAllocs()
	var sib, entries int
	cpu := startCPU()
	for b.Loop() {
		sib, entries = interleaving(b, 1, 10_000, 100, 3)
	}
	cpu.report(b, 10_000, "write")
	b.ReportMetric(10_000*float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64(sib), "max-siblings")
	b.ReportMetric(float64(entries), "max-vv-entries")
}

// BenchmarkResolve decides among 2 and 16 concurrent versions with LWW and
// renders the audit line.
func BenchmarkResolve(b *testing.B) {
	for _, n := range []int{2, 16} {
		var vs []Version[user]
		for i := range n {
			vs = append(vs, Version[user]{Dot: Dot{fmt.Sprintf("N%d#1", i), 1}, Timestamp: Unix(int64(1678812345+i), 0), Node: fmt.Sprintf("N%d", i), Value: user{"Alice", i}})
		}
		p := LWW[user]()
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				_ = p.Resolve(vs).Audit("user:1001")
			}
			cpu.report(b, 1, "op")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

// BenchmarkDecode decodes a vector's and a two-sibling record's canonical
// encoding, as a replica does with what a peer or a client sends.
func BenchmarkDecode(b *testing.B) {
	for _, n := range sizes {
		x, _ := vvPair(n)
		enc, err := x.MarshalBinary()
		require.NoError(b, err)
		b.Run(fmt.Sprintf("vv/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			var v VV
			cpu := startCPU()
			for b.Loop() {
				if err := v.UnmarshalBinary(enc); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, 1, "op")
		})
		r := Sync(recordPair(n))
		renc, err := r.MarshalBinary()
		require.NoError(b, err)
		b.Run(fmt.Sprintf("record/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(renc)))
			cpu := startCPU()
			for b.Loop() {
				if _, err := DecodeRecord[string](renc, nil); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, 1, "op")
		})
	}
}
