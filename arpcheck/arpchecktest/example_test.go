package arpchecktest_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/arpcheck/arpchecktest"
)

// pickFree stands for the code under test: a controller that hands out the
// first candidate address nobody on the link holds.
func pickFree(ctx context.Context, p *arpcheck.Prober, candidates []netip.Addr) (netip.Addr, error) {
	for _, a := range candidates {
		r, err := p.Probe(ctx, a)
		if err != nil {
			return netip.Addr{}, err
		}
		if r.Status == arpcheck.Free {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("all %d candidates in use", len(candidates))
}

// A test of your own controller: a segment where 192.0.2.10 is taken, the
// exact RFC 5227 schedule (several seconds per address) on the fake clock, and
// the frame log to check what the controller put on the wire. It runs in
// milliseconds, without root.
func Example() {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	defer n.Close()
	n.AddHolder(arpchecktest.MAC(2), arpchecktest.HostOptions{Name: "db-1"}, netip.MustParseAddr("192.0.2.10"))

	p, _, err := n.NewProber("eth0", arpchecktest.MAC(1), arpcheck.Options{Timing: arpcheck.RFC})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	start := n.Clock().Now()
	addr, err := pickFree(context.Background(), p, []netip.Addr{
		netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11"),
	})
	fmt.Println("picked", addr, err)
	fmt.Println("protocol time at least 4 s:", n.Clock().Now().Sub(start).Seconds() >= 4)
	for _, f := range n.Frames() {
		pf, _ := f.Parse()
		fmt.Println(f.From, pf.Op, "for", pf.TargetIP)
	}
	// Output:
	// picked 192.0.2.11 <nil>
	// protocol time at least 4 s: true
	// eth0 arp-request for 192.0.2.10
	// db-1 arp-reply for 0.0.0.0
	// eth0 arp-request for 192.0.2.11
	// eth0 arp-request for 192.0.2.11
	// eth0 arp-request for 192.0.2.11
}

// Impairments make the segment lossy, slow, duplicating or looped; the seed
// makes a lossy run repeatable.
func ExampleNetwork_Impair() {
	n := arpchecktest.NewNetwork(arpchecktest.Options{Seed: 1})
	defer n.Close()
	n.Impair(arpchecktest.Impairments{Echo: true})
	p, _, _ := n.NewProber("eth0", arpchecktest.MAC(1), arpcheck.Options{Timing: arpcheck.Fast})
	defer p.Close()
	r, _ := p.Probe(context.Background(), netip.MustParseAddr("192.0.2.20"))
	fmt.Println(r, "- own frames read back:", p.Stats().FramesRead)
	// Output:
	// 192.0.2.20 free - own frames read back: 3
}
