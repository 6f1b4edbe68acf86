package arpcheck_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/arpcheck/arpchecktest"
)

// On a real interface (as root, or with CAP_NET_RAW): is 192.0.2.10 free?
// Not run here; the examples below run the same calls on arpchecktest's
// in-memory segment.
func ExampleNew() {
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	p, err := arpcheck.New(ifi, arpcheck.Options{Timing: arpcheck.Fast})
	if err != nil {
		log.Fatal(err) // ErrNotARPable for lo; a permission error without CAP_NET_RAW
	}
	defer p.Close()
	res, err := p.Probe(context.Background(), netip.MustParseAddr("192.0.2.10"))
	if err != nil {
		log.Fatal(err) // Unknown verdicts always come with an error
	}
	fmt.Println(res) // "192.0.2.10 free" or "192.0.2.10 in use by 02:..."
}

func ExampleProber_Probe() {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	defer n.Close()
	n.AddHolder(arpchecktest.MAC(2), arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.10"))
	p, _, _ := n.NewProber("eth0", arpchecktest.MAC(1), arpcheck.Options{Timing: arpcheck.Fast})
	defer p.Close()

	for _, a := range []string{"192.0.2.10", "192.0.2.11"} {
		res, err := p.Probe(context.Background(), netip.MustParseAddr(a))
		fmt.Println(res, err, res.ProbesSent, "probes")
	}
	// Output:
	// 192.0.2.10 in use by 02:00:00:00:00:02 <nil> 1 probes
	// 192.0.2.11 free <nil> 3 probes
}

// A whole prefix at once over one socket, verdicts streamed as they are
// reached: conflicts come first, as soon as the holder answers.
func ExampleProber_ProbePrefix() {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	defer n.Close()
	n.AddHolder(arpchecktest.MAC(2), arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.5"))
	n.AddHolder(arpchecktest.MAC(3), arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("192.0.2.6"))
	p, _, _ := n.NewProber("eth0", arpchecktest.MAC(1), arpcheck.Options{Timing: arpcheck.Fast})
	defer p.Close()

	free := 0
	err := p.ProbePrefix(context.Background(), netip.MustParsePrefix("192.0.2.0/28"), arpcheck.BatchOptions{}, func(r arpcheck.Result) {
		if r.Status == arpcheck.Free {
			free++
			return
		}
		fmt.Println(r)
	})
	fmt.Println(free, "free, error:", err)
	// Unordered output:
	// 192.0.2.5 in use by 02:00:00:00:00:02,02:00:00:00:00:03
	// 192.0.2.6 in use by 02:00:00:00:00:03
	// 12 free, error: <nil>
}

// After a virtual IP moves to this host (ip addr add), Announce tells the
// neighbours: two gratuitous ARP requests, ANNOUNCE_INTERVAL apart.
func ExampleProber_Announce() {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	defer n.Close()
	p, _, _ := n.NewProber("eth0", arpchecktest.MAC(1), arpcheck.Options{Timing: arpcheck.RFC})
	defer p.Close()

	err := p.Announce(context.Background(), netip.MustParseAddr("192.0.2.20"))
	fmt.Println("announced:", err)
	for _, f := range n.Frames() {
		fmt.Println(f)
	}
	// Output:
	// announced: <nil>
	// 00:00:00.000000 eth0: arp-request 02:00:00:00:00:01 192.0.2.20 -> 00:00:00:00:00:00 192.0.2.20
	// 00:00:02.000000 eth0: arp-request 02:00:00:00:00:01 192.0.2.20 -> 00:00:00:00:00:00 192.0.2.20
}

// Claim takes an address the RFC 5227 way (probe, announce, defend) and holds
// it until its context ends; an address someone holds is refused.
func ExampleProber_Claim() {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	defer n.Close()
	n.AddHolder(arpchecktest.MAC(2), arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.10"))
	p, _, _ := n.NewProber("eth0", arpchecktest.MAC(1), arpcheck.Options{Timing: arpcheck.Fast})
	defer p.Close()

	err := p.Claim(context.Background(), netip.MustParseAddr("192.0.2.10"), arpcheck.ClaimOptions{})
	fmt.Println(errors.Is(err, arpcheck.ErrInUse), err)

	ctx, release := context.WithCancel(context.Background())
	err = p.Claim(ctx, netip.MustParseAddr("192.0.2.11"), arpcheck.ClaimOptions{
		Defend: arpcheck.DefendOnce,
		OnEvent: func(ev arpcheck.ClaimEvent) {
			fmt.Println(ev.Kind, ev.Addr)
			if ev.Kind == arpcheck.Claimed {
				// Configure the address here; it is defended from now on.
				// This example lets it go at once.
				release()
			}
		},
	})
	fmt.Println("released:", err)
	// Output:
	// true arpcheck: 192.0.2.10: address in use (held by 02:00:00:00:00:02)
	// claimed 192.0.2.11
	// released: <nil>
}

// Results marshal to JSON with MACs as text, for tools and dashboards.
func ExampleResult_json() {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := arpcheck.Result{Addr: netip.MustParseAddr("192.0.2.10"), Status: arpcheck.InUse, ProbesSent: 1, Reason: "answered",
		Holders: []arpcheck.Holder{{MAC: arpchecktest.MAC(2), EthSrc: arpchecktest.MAC(2), Kind: arpcheck.Answered, FirstSeen: at, LastSeen: at, Frames: 1}}}
	enc := json.NewEncoder(os.Stdout)
	_ = enc.Encode(r)
	// Output:
	// {"addr":"192.0.2.10","status":"in_use","holders":[{"mac":"02:00:00:00:00:02","kind":"answered","first_seen":"2026-01-01T00:00:00Z","last_seen":"2026-01-01T00:00:00Z","frames":1}],"reason":"answered","probes_sent":1}
}

// Classify is the conflict rule book as a pure function: the same frame is a
// conflict while probing and someone else's question once the address is ours.
func ExampleClassify() {
	us := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	probe := arpcheck.AppendProbe(nil, net.HardwareAddr{0x02, 0, 0, 0, 0, 2}, netip.MustParseAddr("192.0.2.10"))
	f, _ := arpcheck.ParseFrame(probe)
	for _, phase := range []arpcheck.Phase{arpcheck.PhaseProbing, arpcheck.PhaseAnnounced} {
		c := arpcheck.Check{Addr: netip.MustParseAddr("192.0.2.10"), Phase: phase, MAC: us}
		fmt.Println(arpcheck.Classify(&c, &f))
	}
	// Output:
	// simultaneous-probe
	// unrelated
}

func ExampleParseFrame() {
	b := arpcheck.AppendAnnouncement(nil, net.HardwareAddr{0x02, 0, 0, 0, 0, 7}, netip.MustParseAddr("198.51.100.4"))
	f, err := arpcheck.ParseFrame(b)
	fmt.Println(f.Op, f.SenderMAC, f.SenderIP, f.IsAnnouncement(), err)
	_, err = arpcheck.ParseFrame(b[:20])
	fmt.Println(err)
	// Output:
	// arp-request 02:00:00:00:00:07 198.51.100.4 true <nil>
	// frame byte 14: arp header: 6 bytes, want 8
}

func ExampleHosts() {
	for a := range arpcheck.Hosts(netip.MustParsePrefix("192.0.2.0/30")) {
		fmt.Println(a)
	}
	// Output:
	// 192.0.2.1
	// 192.0.2.2
}

func ExampleScaled() {
	t := arpcheck.Scaled(500 * time.Millisecond)
	fmt.Println(t.ProbeWait, t.ProbeMin, t.ProbeMax, t.AnnounceWait, t.Longest())
	// Output:
	// 71.428571ms 71.428571ms 142.857142ms 142.857145ms 500ms
}
