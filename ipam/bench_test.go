package ipam

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/addrguard/addrguard/internal/cputime"
)

// benchPool returns an allocator whose pool "p" (subnet) is filled to fill
// (a fraction of its allocatable addresses), leaving room for chunk more.
func benchPool(b *testing.B, subnet string, fill float64, strat Strategy) (*Allocator, *Pool) {
	b.Helper()
	spec := PoolSpec{Name: "p", Subnet: prefix(subnet), Strategy: strat}
	a, err := NewWithOptions(context.Background(), NewMemoryStore(), Options{Rand: &seq{x: 1}}, spec)
	if err != nil {
		b.Fatal(err)
	}
	p, _ := Compile(spec)
	size, _ := p.Size().Uint64()
	want := int(float64(size) * fill)
	for done, i := 0, 0; done < want; i++ {
		n := min(want-done, 1<<16)
		if _, err := a.AllocateN(context.Background(), "p", "fill-"+strconv.Itoa(i), n); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	return a, p
}

var (
	benchMu     sync.Mutex
	benchPools  = map[string]*Allocator{}
	benchOwners []string
)

func owners(n int) []string {
	benchMu.Lock()
	defer benchMu.Unlock()
	for i := len(benchOwners); i < n; i++ {
		benchOwners = append(benchOwners, "pod-"+strconv.Itoa(i))
	}
	return benchOwners[:n]
}

// cachedPool keeps prefilled pools between the benchmark's b.N rounds.
func cachedPool(b *testing.B, subnet string, fill float64) *Allocator {
	key := fmt.Sprint(subnet, fill)
	benchMu.Lock()
	a := benchPools[key]
	benchMu.Unlock()
	if a == nil {
		a, _ = benchPool(b, subnet, fill, Sequential)
		benchMu.Lock()
		benchPools[key] = a
		benchMu.Unlock()
	}
	return a
}

// cpuMeter accumulates the process's CPU time (user + system, all threads,
// so the garbage collector's share counts) while a benchmark's timer runs.
// Other processes loading the machine inflate wall time but hardly this.
type cpuMeter struct {
	b     *testing.B
	at    time.Duration
	total time.Duration
	ok    bool // the platform reports CPU time
}

// meterCPU resets b's timer and starts measuring.
func meterCPU(b *testing.B) *cpuMeter {
	b.ResetTimer()
	at, ok := cputime.Self()
	return &cpuMeter{b: b, at: at, ok: ok}
}

// stop stops b's timer and the meter.
func (m *cpuMeter) stop() {
	m.b.StopTimer()
	now, _ := cputime.Self()
	m.total += now - m.at
}

// start restarts the meter and b's timer.
func (m *cpuMeter) start() {
	m.at, _ = cputime.Self()
	m.b.StartTimer()
}

// report stops the meter and reports cpu-ns per op (ops per b.N round).
func (m *cpuMeter) report(ops float64) {
	m.stop()
	if m.ok && m.b.N > 0 {
		m.b.ReportMetric(float64(m.total.Nanoseconds())/(float64(m.b.N)*ops), "cpu-ns/op")
	}
}

// BenchmarkAllocate measures Allocate (one lease per owner, committed to the
// memory store) on an empty pool and on 99 %-full /16 and /8 pools. The
// leases are released in chunks outside the timer, so the fill stays put.
//
// The chunk is how many owners a round churns through the owner index, so
// it sets the index's working set and with it the cache misses: the same
// 30,000 in every case but the 99 %-full /16, which has only 655 free
// addresses. (The /8 cases once churned 100,000 and so measured the owner
// count, not the pool; "empty-/8-100k-owners" keeps that figure.)
func BenchmarkAllocate(b *testing.B) {
	for _, c := range []struct {
		name   string
		subnet string
		fill   float64
		chunk  int
	}{
		{"empty-/16", "10.0.0.0/16", 0, 30000},
		{"99%-full-/16", "10.0.0.0/16", 0.99, 600},
		{"empty-/8", "10.0.0.0/8", 0, 30000},
		{"99%-full-/8", "10.0.0.0/8", 0.99, 30000},
		{"empty-/8-100k-owners", "10.0.0.0/8", 0, 100000},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			a := cachedPool(b, c.subnet, c.fill)
			own := owners(c.chunk)
			leases := make([]Lease, 0, c.chunk)
			b.ReportAllocs()
			cpu := meterCPU(b)
			for i := 0; i < b.N; {
				n := min(c.chunk, b.N-i)
				for j := 0; j < n; j++ {
					l, err := a.Allocate(ctx, "p", own[j])
					if err != nil {
						b.Fatal(err)
					}
					leases = append(leases, l)
				}
				i += n
				cpu.stop()
				for _, l := range leases {
					if err := a.Release(ctx, l); err != nil {
						b.Fatal(err)
					}
				}
				leases = leases[:0]
				cpu.start()
			}
			cpu.report(1)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "allocs/s")
		})
	}
}

// BenchmarkRelease measures Release of single leases.
func BenchmarkRelease(b *testing.B) {
	ctx := context.Background()
	a := cachedPool(b, "10.0.0.0/16", 0.5)
	const chunk = 1000
	own := owners(chunk)
	leases := make([]Lease, 0, chunk)
	b.ReportAllocs()
	cpu := meterCPU(b)
	for i := 0; i < b.N; {
		n := min(chunk, b.N-i)
		cpu.stop()
		for j := 0; j < n; j++ {
			l, err := a.Allocate(ctx, "p", own[j])
			if err != nil {
				b.Fatal(err)
			}
			leases = append(leases, l)
		}
		cpu.start()
		for _, l := range leases {
			if err := a.Release(ctx, l); err != nil {
				b.Fatal(err)
			}
		}
		leases = leases[:0]
		i += n
	}
	cpu.report(1)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "releases/s")
}

// BenchmarkAllocateParallel16 runs 16 goroutines allocating from one /8
// pool through one Allocator, each allocation for a new owner (b.N in
// all). In "steady" the owner index has held as many owners before (they
// were allocated and released before the timer starts), as in a pool whose
// pods come and go; in "growing" it grows from empty to b.N owners while
// timed, so it also measures that growth (rehashing, fresh memory, the
// garbage collector scanning it).
func BenchmarkAllocateParallel16(b *testing.B) {
	b.Run("churn-30k", benchParallel16Churn)
	for _, mode := range []string{"steady", "growing"} {
		b.Run(mode, func(b *testing.B) { benchParallel16(b, mode == "steady") })
	}
}

// benchParallel16Churn: 16 goroutines allocate from one /8 pool for the
// owners of a working set of 30,000, as BenchmarkAllocate does with one:
// each round they allocate for all of them (each a sixteenth, in one
// block, so that goroutines on different CPUs do not write leases next to
// each other's), then the leases are released outside the timer. The
// owner index keeps the same size whatever b.N is; in "steady" and
// "growing" it holds b.N owners, so their cost per allocation rises with
// the benchmark's duration.
func benchParallel16Churn(b *testing.B) {
	const chunk, workers = 30000, 16
	ctx := context.Background()
	a, _ := benchPool(b, "10.0.0.0/8", 0, Sequential)
	own := owners(chunk)
	leases := make([]Lease, chunk)
	var wg sync.WaitGroup
	b.ReportAllocs()
	runtime.GC()
	cpu := meterCPU(b)
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := w * n / workers; j < (w+1)*n/workers; j++ {
					l, err := a.Allocate(ctx, "p", own[j])
					if err != nil {
						b.Error(err)
						return
					}
					leases[j] = l
				}
			}()
		}
		wg.Wait()
		done += n
		cpu.stop()
		for _, l := range leases[:n] {
			if err := a.Release(ctx, l); err != nil {
				b.Fatal(err)
			}
		}
		cpu.start()
	}
	cpu.report(1)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "allocs/s")
}

func benchParallel16(b *testing.B, warm bool) {
	ctx := context.Background()
	a, _ := benchPool(b, "10.0.0.0/8", 0, Sequential)
	if b.N > 16_000_000 {
		b.Fatalf("b.N %d exceeds the /8", b.N)
	}
	// Owners are handed out in blocks, so that the goroutines do not
	// measure a shared counter bouncing between CPUs.
	const block = 64
	var next atomic.Int64
	own := owners(b.N + 16*block)
	if warm { // all at once, so that the index grows to b.N owners
		for _, o := range own[:b.N] {
			if _, err := a.Allocate(ctx, "p", o); err != nil {
				b.Fatal(err)
			}
		}
		for _, o := range own[:b.N] {
			if _, err := a.ReleaseOwner(ctx, "p", o); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	// The set-up's garbage is collected now, as testing does before every
	// benchmark, not by a collector running through the timed loop (which
	// stops goroutines in the middle of critical sections).
	runtime.GC()
	cpu := meterCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		i, end := 0, 0
		for pb.Next() {
			if i == end {
				i = int(next.Add(block)) - block
				end = i + block
			}
			if _, err := a.Allocate(ctx, "p", own[i]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	cpu.report(1)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "allocs/s")
}

// BenchmarkFillSlash8 fills a whole /8 (16,777,214 addresses) with
// AllocateN batches of 65,536 (one store transaction each), and reports
// the heap the full pool takes (store and allocator).
func BenchmarkFillSlash8(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	var total time.Duration
	var heap float64
	cpu := meterCPU(b)
	for i := 0; i < b.N; i++ {
		cpu.stop()
		a, p := benchPool(b, "10.0.0.0/8", 0, Sequential)
		size, _ := p.Size().Uint64()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		cpu.start()
		start := time.Now()
		for done, k := 0, 0; done < int(size); k++ {
			n := min(int(size)-done, 1<<16)
			if _, err := a.AllocateN(ctx, "p", "batch-"+strconv.Itoa(k), n); err != nil {
				b.Fatal(err)
			}
			done += n
		}
		total += time.Since(start)
		cpu.stop()
		if _, err := a.Allocate(ctx, "p", "x"); err == nil {
			b.Fatal("a full /8 allocated once more")
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
		runtime.KeepAlive(a)
		cpu.start()
	}
	cpu.report(1)
	b.ReportMetric(cpu.total.Seconds()/float64(b.N), "cpu-s/fill")
	b.ReportMetric(total.Seconds()/float64(b.N), "s/fill")
	b.ReportMetric(heap, "heap-MiB")
	b.ReportMetric(16777214*float64(b.N)/total.Seconds(), "allocs/s")
}

// BenchmarkRandomV6 allocates 1,000,000 addresses at random in a /64 and
// reports the heap they take (store and allocator together), both as one
// owner's batches and as one lease per owner.
func BenchmarkRandomV6(b *testing.B) {
	const total = 1_000_000
	for _, mode := range []string{"batches", "owner-per-lease"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			var heap float64
			b.ReportAllocs()
			cpu := meterCPU(b)
			for i := 0; i < b.N; i++ {
				cpu.stop()
				own := owners(total)
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				cpu.start()
				a, err := NewWithOptions(ctx, NewMemoryStore(), Options{Rand: &seq{x: 3}},
					PoolSpec{Name: "p", Subnet: prefix("2001:db8::/64"), Strategy: Random})
				if err != nil {
					b.Fatal(err)
				}
				if mode == "batches" {
					for k := 0; k < total/10000; k++ {
						if _, err := a.AllocateN(ctx, "p", own[k], 10000); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					for k := 0; k < total; k++ {
						if _, err := a.Allocate(ctx, "p", own[k]); err != nil {
							b.Fatal(err)
						}
					}
				}
				cpu.stop()
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				heap = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
				runtime.KeepAlive(a)
				cpu.start()
			}
			cpu.report(total)
			b.ReportMetric(heap, "heap-MiB")
			b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "allocs/s")
		})
	}
}

// BenchmarkOverlap10000 finds overlaps among 10,000 compiled pools (random
// /20-/26 subnets of 10.0.0.0/8, about one in ten overlapping another).
func BenchmarkOverlap10000(b *testing.B) {
	r := &seq{x: 11}
	pools := make([]*Pool, 10000)
	for i := range pools {
		bits := 20 + int(r.Uint64()%7)
		p, err := Compile(PoolSpec{Name: "p" + strconv.Itoa(i), Subnet: prefixFromCount(10<<24|(r.Uint64()%(1<<24)), bits),
			Gateway: addr("0.0.0.0")})
		if err != nil {
			// gateway placeholder: compile without it
			p, err = Compile(PoolSpec{Name: "p" + strconv.Itoa(i), Subnet: prefixFromCount(10<<24|(r.Uint64()%(1<<24)), bits)})
			if err != nil {
				b.Fatal(err)
			}
		}
		pools[i] = p
	}
	b.ReportAllocs()
	b.ResetTimer()
	var n int
	for i := 0; i < b.N; i++ {
		n = len(FindOverlaps(pools...))
	}
	b.ReportMetric(float64(n), "overlaps")
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/run")
}

// BenchmarkBolt measures allocations per second on a bbolt file (fsync on)
// one transaction per Allocate, and in AllocateN batches of 1,000.
func BenchmarkBolt(b *testing.B) {
	for _, c := range []struct {
		name      string
		batch     int
		exclusive bool
	}{
		{"single-shared", 1, false},
		{"single-exclusive", 1, true},
		{"batch1000-shared", 1000, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			st, err := OpenBolt(ctx, filepath.Join(b.TempDir(), "ipam.db"), BoltOptions{Exclusive: c.exclusive})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			a, err := New(ctx, st, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/8")})
			if err != nil {
				b.Fatal(err)
			}
			own := owners(max(b.N, 1))
			b.ReportAllocs()
			b.ResetTimer()
			if c.batch == 1 {
				for i := 0; i < b.N; i++ {
					if _, err := a.Allocate(ctx, "p", own[i]); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				for i, k := 0, 0; i < b.N; k++ {
					n := min(c.batch, b.N-i)
					if _, err := a.AllocateN(ctx, "p", own[k], n); err != nil {
						b.Fatal(err)
					}
					i += n
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "allocs/s")
		})
	}
}

// BenchmarkMutexFloor calibrates BenchmarkAllocateParallel16 on the
// machine at hand: 16 goroutines (as there) each doing `out` steps of
// arithmetic, then `in` steps under one sync.Mutex, with nothing else
// shared. It is the cost any design pays that holds one lock per
// operation, whatever the lock protects. With more goroutines than CPUs,
// once the lock is held long enough that holders collide, goroutines park
// and wake through the scheduler, and the operations on 2 CPUs can take
// longer than on 1 (see BENCHMARKS.md for the figures).
func BenchmarkMutexFloor(b *testing.B) {
	for _, c := range []struct{ in, out int }{{24, 240}, {48, 216}, {128, 136}} {
		b.Run(fmt.Sprintf("in-%d-out-%d", c.in, c.out), func(b *testing.B) {
			var mu sync.Mutex
			var shared uint64
			var sink atomic.Uint64
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
			cpu := meterCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				var x uint64
				for pb.Next() {
					x += spin(c.out)
					mu.Lock()
					shared += spin(c.in)
					mu.Unlock()
				}
				sink.Add(x)
			})
			cpu.report(1)
		})
	}
}

// spin does n dependent multiply-adds (about 1.1 ns each on the machine of
// BENCHMARKS.md) that the compiler cannot remove.
//
//go:noinline
func spin(n int) uint64 {
	x := uint64(n)
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

// BenchmarkCacheLineRoundTrip calibrates the 2-CPU figures of
// BenchmarkAllocateParallel16: two goroutines, each on a thread of its
// own, hand one cache line back and forth (ns/op is one round trip). On a
// virtual machine the figure changes with where the host runs the two
// vCPUs, and the parallel benchmarks' 2-CPU figures change with it (see
// BENCHMARKS.md).
func BenchmarkCacheLineRoundTrip(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs 2 CPUs")
	}
	var flag atomic.Int64
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for i := range int64(b.N) {
			for flag.Load() != 2*i+1 {
			}
			flag.Store(2*i + 2)
		}
		close(done)
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for i := range int64(b.N) {
		flag.Store(2*i + 1)
		for flag.Load() != 2*i+2 {
		}
	}
	<-done
}
