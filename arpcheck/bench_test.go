package arpcheck_test

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/arpcheck/arpchecktest"
	"github.com/addrguard/addrguard/internal/cputime"
	"github.com/addrguard/addrguard/internal/testnet"
)

func BenchmarkParseFrame(b *testing.B) {
	frame := arpcheck.AppendARPReply(nil, peerMAC, addr10, ourMAC, netip.IPv4Unspecified())
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := arpcheck.ParseFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	f, _ := arpcheck.ParseFrame(arpcheck.AppendARPReply(nil, peerMAC, addr10, ourMAC, netip.IPv4Unspecified()))
	c := &arpcheck.Check{Addr: addr10, MAC: ourMAC}
	b.ReportAllocs()
	for b.Loop() {
		if arpcheck.Classify(c, &f) != arpcheck.Conflict {
			b.Fatal("not a conflict")
		}
	}
}

// mallocs counts heap allocations while f runs.
func mallocs(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.Mallocs - m0.Mallocs
}

// The prober's own cost, without a kernel: a /22 on the in-memory segment,
// RFC timing on the fake clock, three holders.
func BenchmarkProbeInMemory(b *testing.B) {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	defer n.Close()
	for i, a := range []string{"10.0.0.10", "10.0.1.77", "10.0.3.200"} {
		n.AddHolder(arpchecktest.MAC(10+i), arpchecktest.HostOptions{}, netip.MustParseAddr(a))
	}
	p, _, err := n.NewProber("eth0", ourMAC, arpcheck.Options{Timing: arpcheck.RFC, Rate: arpcheck.Unlimited, Rand: rand.NewPCG(1, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	prefix := netip.MustParsePrefix("10.0.0.0/22")
	addrs := 0
	b.ReportAllocs()
	var allocs uint64
	for b.Loop() {
		inUse := 0
		allocs += mallocs(func() {
			err = p.ProbePrefix(context.Background(), prefix, arpcheck.BatchOptions{}, func(r arpcheck.Result) {
				addrs++
				if r.Status == arpcheck.InUse {
					inUse++
				}
			})
		})
		if err != nil || inUse != 3 {
			b.Fatalf("err %v, %d in use", err, inUse)
		}
		n.ResetLog()
	}
	b.ReportMetric(float64(addrs)/b.Elapsed().Seconds(), "addrs/s")
	b.ReportMetric(float64(allocs)/float64(addrs), "allocs/addr")
}

// The claim for arpchecktest: a 7 s RFC 5227 probe of 10,000
// addresses on the fake clock (three holders, Unlimited rate) runs in
// milliseconds. cpu-ms/op is the process's user+system CPU time per run, less
// sensitive to a shared machine than ns/op.
func BenchmarkTenThousandRFC(b *testing.B) {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	defer n.Close()
	holders := []string{"10.0.0.5", "10.0.20.7", "10.0.39.1"}
	for i, a := range holders {
		n.AddHolder(arpchecktest.MAC(100+i), arpchecktest.HostOptions{}, netip.MustParseAddr(a))
	}
	p, _, err := n.NewProber("eth0", ourMAC, arpcheck.Options{Timing: arpcheck.RFC, Rate: arpcheck.Unlimited, Rand: rand.NewPCG(1, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const count = 10000
	addrs := func(yield func(netip.Addr) bool) {
		a := netip.MustParseAddr("10.0.0.1")
		for range count {
			if !yield(a) {
				return
			}
			a = a.Next()
		}
	}
	b.ReportAllocs()
	var cpu, protocol time.Duration
	for b.Loop() {
		inUse, start, cpu0 := 0, n.Clock().Now(), cpuNow()
		err := p.ProbeAll(context.Background(), addrs, arpcheck.BatchOptions{}, func(r arpcheck.Result) {
			if r.Status == arpcheck.InUse {
				inUse++
			}
		})
		cpu += cpuNow() - cpu0
		protocol += n.Clock().Now().Sub(start)
		if err != nil || inUse != len(holders) {
			b.Fatalf("err %v, %d in use", err, inUse)
		}
		n.ResetLog()
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(protocol.Seconds()/float64(b.N), "protocol-s/op")
}

// One free and one held address probed one at a time on the RFC schedule, as
// a controller under test does: the cost of a call, not of a batch.
func BenchmarkProbeOne(b *testing.B) {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	defer n.Close()
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
	p, _, err := n.NewProber("eth0", ourMAC, arpcheck.Options{Timing: arpcheck.RFC, Rand: rand.NewPCG(1, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ReportAllocs()
	for b.Loop() {
		free, _ := p.Probe(context.Background(), addr11)
		held, _ := p.Probe(context.Background(), addr10)
		if free.Status != arpcheck.Free || held.Status != arpcheck.InUse {
			b.Fatalf("%v, %v", free, held)
		}
		n.ResetLog()
	}
}

// A /20 at DefaultRate with Fast timing on the fake clock: 12,282 frames, far
// more than the burst, wait for the rate limit. cpu-ms/op is the scheduler's
// cost of holding them back.
func BenchmarkRateLimitedPrefix(b *testing.B) {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	defer n.Close()
	p, _, err := n.NewProber("eth0", ourMAC, arpcheck.Options{Timing: arpcheck.Fast, Rand: rand.NewPCG(1, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	prefix := netip.MustParsePrefix("10.0.0.0/20")
	b.ReportAllocs()
	var cpu, protocol time.Duration
	for b.Loop() {
		free, start, cpu0 := 0, n.Clock().Now(), cpuNow()
		err := p.ProbePrefix(context.Background(), prefix, arpcheck.BatchOptions{}, func(r arpcheck.Result) {
			if r.Status == arpcheck.Free {
				free++
			}
		})
		cpu += cpuNow() - cpu0
		protocol += n.Clock().Now().Sub(start)
		if err != nil || free != 4094 {
			b.Fatalf("err %v, %d free", err, free)
		}
		n.ResetLog()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
	b.ReportMetric(protocol.Seconds()/float64(b.N), "protocol-s/op")
}

// lan is the shared topology of the peer comparison: host 0 probes, hosts 1-3
// hold one address each of 192.0.2.0/24.
type lan struct {
	hosts []*testnet.Host
	held  map[netip.Addr]string // address: holder MAC
}

var lanHeld = []string{"192.0.2.10", "192.0.2.77", "192.0.2.200"}

func newLAN(b *testing.B) *lan {
	hosts := testnet.Switch(b, 4)
	l := &lan{hosts: hosts, held: map[netip.Addr]string{}}
	for i, a := range lanHeld {
		if err := hosts[i+1].AddAddr(netip.MustParsePrefix(a+"/24"), "nodad"); err != nil {
			b.Fatal(err)
		}
		l.held[netip.MustParseAddr(a)] = hosts[i+1].MAC.String()
	}
	return l
}

// BenchmarkLAN runs arpcheck, iputils arping -D and arp-scan on the same
// namespaces, in one run, over 192.0.2.0/24 with three holders. ns/op is the
// wall time to decide the whole /24 (for arping -D sequential: 8 addresses).
func BenchmarkLAN(b *testing.B) {
	testnet.Require(b)
	l := newLAN(b)
	prefix := netip.MustParsePrefix("192.0.2.0/24")

	// The goal: the /24 decided in one probe window, ≤ 0.5 s with Fast
	// timing (whose window is 200 ms). cpu-ms/op is the process's CPU time.
	b.Run("arpcheck-fast", func(b *testing.B) {
		p := proberIn(b, l.hosts[0], arpcheck.Options{Timing: arpcheck.Fast})
		var allocs uint64
		var cpu, longest time.Duration
		addrs := 0
		for b.Loop() {
			found := map[netip.Addr]string{}
			var err error
			cpu0 := cpuNow()
			allocs += mallocs(func() {
				err = p.ProbePrefix(context.Background(), prefix, arpcheck.BatchOptions{}, func(r arpcheck.Result) {
					addrs++
					longest = max(longest, r.Decided.Sub(r.Started))
					if r.Status == arpcheck.InUse {
						found[r.Addr] = r.Holders[0].MAC.String()
					} else if r.Status != arpcheck.Free {
						b.Errorf("%v", r)
					}
				})
			})
			cpu += cpuNow() - cpu0
			if err != nil || !maps.Equal(found, l.held) {
				b.Fatalf("err %v, found %v, want %v", err, found, l.held)
			}
		}
		b.ReportMetric(float64(addrs)/b.Elapsed().Seconds(), "addrs/s")
		b.ReportMetric(float64(allocs)/float64(addrs), "allocs/addr")
		b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
		b.ReportMetric(float64(longest.Microseconds())/1e3, "ms-longest-addr")
		b.ReportMetric(float64(p.Stats().KernelDrops), "drops")
	})

	// The goal: the first conflict reported within 10 ms of the reply
	// arriving. The reply's arrival is the kernel's receive timestamp on a
	// packet socket of the benchmark's own, beside the prober's; the report is
	// the moment the callback runs. ms-reply-to-report is the mean, and
	// ms-reply-to-report-max the worst, over the runs; ms-reply-to-read is the
	// part before the prober's reader had the frame (Holder.FirstSeen).
	//
	// With StopOnConflict the first conflict is reported at once. Without it
	// (stream) every InUse verdict waits Timing.Linger (5.7 ms with Fast) for
	// further holders; stream-linger0 sets Linger to 0.
	noLinger := arpcheck.Fast
	noLinger.Linger = 0
	for _, tc := range []struct {
		name   string
		timing arpcheck.Timing
		stop   bool
	}{
		{"stop", arpcheck.Fast, true},
		{"stream", arpcheck.Fast, false},
		{"stream-linger0", noLinger, false},
	} {
		b.Run("arpcheck-first-conflict-"+tc.name, func(b *testing.B) {
			p := proberIn(b, l.hosts[0], arpcheck.Options{Timing: tc.timing})
			watch := watchReplies(b, l.hosts[0])
			var toReport, toRead, worst time.Duration
			for b.Loop() {
				watch.reset()
				since := time.Now()
				var first arpcheck.Result
				var reported time.Time
				err := p.ProbePrefix(context.Background(), prefix, arpcheck.BatchOptions{StopOnConflict: tc.stop}, func(r arpcheck.Result) {
					if r.Status == arpcheck.InUse && reported.IsZero() {
						reported, first = time.Now(), r
					}
				})
				if err != nil || reported.IsZero() {
					b.Fatalf("err %v, no conflict reported", err)
				}
				arrived, ok := watch.first(first.Addr, since)
				if !ok {
					b.Fatalf("no reply from %s seen arriving", first.Addr)
				}
				d := reported.Sub(arrived)
				toReport += d
				worst = max(worst, d)
				toRead += first.Holders[0].FirstSeen.Sub(arrived)
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
			b.ReportMetric(ms(toReport)/float64(b.N), "ms-reply-to-report")
			b.ReportMetric(ms(worst), "ms-reply-to-report-max")
			b.ReportMetric(ms(toRead)/float64(b.N), "ms-reply-to-read")
		})
	}

	// iputils arping -D, one address at a time as it works: 3 holders and 5
	// free addresses.
	b.Run("arping-D-sequential", func(b *testing.B) {
		if _, err := exec.LookPath("arping"); err != nil {
			b.Skip("arping not installed (apt-get install iputils-arping)")
		}
		sample := []string{"192.0.2.10", "192.0.2.77", "192.0.2.200", "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"}
		for b.Loop() {
			dup := 0
			for _, a := range sample {
				if arpingD(b, l.hosts[0], a) {
					dup++
				}
			}
			if dup != 3 {
				b.Fatalf("arping -D found %d duplicates, want 3", dup)
			}
		}
		b.ReportMetric(float64(len(sample)*b.N)/b.Elapsed().Seconds(), "addrs/s")
	})

	// arping -D for all 254 addresses at once, 254 processes.
	b.Run("arping-D-parallel", func(b *testing.B) {
		if _, err := exec.LookPath("arping"); err != nil {
			b.Skip("arping not installed (apt-get install iputils-arping)")
		}
		addrs := slices.Collect(arpcheck.Hosts(prefix))
		for b.Loop() {
			var mu sync.Mutex
			var wg sync.WaitGroup
			dup := 0
			for _, a := range addrs {
				wg.Go(func() {
					if arpingD(b, l.hosts[0], a.String()) {
						mu.Lock()
						dup++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if dup != 3 {
				b.Fatalf("arping -D found %d duplicates, want 3", dup)
			}
		}
		b.ReportMetric(float64(len(addrs)*b.N)/b.Elapsed().Seconds(), "addrs/s")
	})

	// arp-scan at its defaults (256 kbit/s, 500 ms timeout, 2 tries), with
	// sender IP 0.0.0.0 so that it sends probes like the others.
	b.Run("arp-scan", func(b *testing.B) {
		if _, err := exec.LookPath("arp-scan"); err != nil {
			b.Skip("arp-scan not installed (apt-get install arp-scan)")
		}
		for b.Loop() {
			out, err := l.hosts[0].Run("arp-scan", "-I", "eth0", "--arpspa=0.0.0.0", "-q", "-x", prefix.String())
			if err != nil {
				b.Fatalf("arp-scan: %v", err)
			}
			found := 0
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				f := strings.Fields(line)
				if len(f) >= 2 && l.held[netip.MustParseAddr(f[0])] == f[1] {
					found++
				}
			}
			if found != 3 {
				b.Fatalf("arp-scan found %d holders, want 3:\n%s", found, out)
			}
		}
		b.ReportMetric(float64(254*b.N)/b.Elapsed().Seconds(), "addrs/s")
	})
}

// arpingD runs arping -D for one address and reports a duplicate (exit 1).
func arpingD(b *testing.B, h *testnet.Host, addr string) bool {
	out, err := h.Command(context.Background(), "arping", "-D", "-q", "-I", "eth0", "-c", "1", "-w", "1", addr).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return true
	}
	b.Errorf("arping -D %s: %v: %s", addr, err, out)
	return false
}

// cpuNow is the process's CPU time so far (0 where the platform does not
// report it: the CPU metrics then read 0).
func cpuNow() time.Duration {
	d, _ := cputime.Self()
	return d
}
