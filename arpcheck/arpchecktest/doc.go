// Package arpchecktest is an in-memory Ethernet segment with a fake clock and
// scripted hosts, for testing code that uses package arpcheck without root, raw
// sockets or waiting, as net/http/httptest is for HTTP.
//
//	n := arpchecktest.NewNetwork(arpchecktest.Options{})
//	defer n.Close()
//	n.AddHolder(arpchecktest.MAC(2), arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.10"))
//	p, _, err := n.NewProber("eth0", arpchecktest.MAC(1), arpcheck.Options{Timing: arpcheck.RFC})
//	res, err := p.Probe(ctx, netip.MustParseAddr("192.0.2.10")) // InUse, in microseconds
//
// The segment carries real frames, byte for byte what arpcheck would put on a
// wire, between Endpoints (each satisfies arpcheck.Transport, like the raw socket
// arpcheck.New opens) and scripted hosts:
//
//   - AddHolder: a host holding addresses and answering like Linux (probes
//     included, IPv6 DAD included);
//   - AddProber: another host probing for an address at the same time;
//   - AddAnnouncer: a host sending gratuitous ARP for an address;
//   - AddProxyARP: a router answering for a whole prefix;
//   - AddGarbage: a host answering with malformed frames (see Garbage).
//
// Impairments make the wire lossy, slow, duplicating or looped back (Echo); an
// endpoint's link can go down (SetLinkDown), lose its carrier (SetCarrier) or
// fail sends with ENOBUFS (FailSends), and a short queue (Options.QueueLen)
// drops frames the way a full socket buffer does. Every frame sent is in the log
// (Frames, FramesFrom), which WritePcap writes for tcpdump or Wireshark.
//
// # Time
//
// The network's Clock is fake and shared by the network and every Prober made
// with NewProber. It moves by itself whenever a Prober waits for one of its
// timers and every frame on the segment has been read and handled, so an RFC
// schedule of seven seconds takes microseconds and a test never sleeps; Probers
// pause it while they hand a verdict to their caller. A test that waits for the
// network alone (a scripted host's next announcement while a Claim defends, say)
// moves time with Clock.Advance; Clock.SetAuto(false) leaves all of it to the
// test.
package arpchecktest
