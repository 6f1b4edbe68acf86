// Package arpcheck asks the link whether anyone already holds an address: RFC
// 5227 duplicate address detection for IPv4 (ARP probes and announcements) and
// RFC 4862 DAD for IPv6, over one raw socket, for many addresses at once. Package
// arpchecktest provides an in-memory network to test code built on it.
//
//	p, err := arpcheck.New(ifi, arpcheck.Options{Timing: arpcheck.Fast})
//	res, err := p.Probe(ctx, netip.MustParseAddr("192.0.2.10"))
//	if res.Status == arpcheck.InUse { fmt.Println("held by", res.Holders) }
//
// # Probing
//
// Probe checks one address, ProbeAll a sequence of them and ProbePrefix every
// host address of a prefix. Each address runs its own RFC 5227 schedule with its
// own jitter (Timing: RFC, Fast, Scaled or your own), all of them over one socket
// with one reader goroutine, one scheduler (a heap behind a single timer) and one
// token bucket for every frame sent (Rate: DefaultRate, Polite, Unlimited or your
// own). Replies reach their address through a map, so a /16 costs no more per
// reply than a single address. Verdicts stream to a callback as they are
// reached; BatchOptions.StopOnConflict ends a call at the first address in use.
//
// A Result is Free, InUse or Unknown. It names every holder that answered
// (Holder: its MAC, the Ethernet source if that differs, when it was first and
// last seen, whether it only probed, and a proxy-ARP hint when one MAC answered
// for many probed addresses), how many probes went out and when the verdict was
// reached. Results marshal to JSON for tools.
//
// # No silent success
//
// An address is Free only when all its probes left the socket, the listening
// time passed, every frame that arrived before then was read, the link was
// still up with carrier, and the socket dropped no frame meanwhile
// (Stats.KernelDrops). Everything else is Unknown and comes with an error: a
// cancelled context, ErrLinkDown (interface down, carrier lost), a send error
// after bounded retries on ENOBUFS (Claim's defences too), ErrNoProbeSent when
// an address was given up before its first probe. Loopback and NOARP interfaces
// give ErrNotARPable. The interface needs no IPv4 address.
//
// # Conflict rules
//
// Classify is the rule book as a pure function of a parsed Frame and a Check:
// while probing, any ARP packet from the address and any broadcast probe for it
// from another MAC (a simultaneous probe) is a conflict; once announced, only a
// packet from the address is. Our own frames, frames from Options.OwnMACs (VRRP,
// bonds), probes whose Ethernet source differs from their ARP sender and
// malformed frames are ignored. For IPv6, an advertisement for the address or a
// DAD solicitation from :: with another RFC 7527 nonce is a conflict; ours,
// looped back, carry our nonce and are ignored. Before its first solicitation
// an IPv6 probe joins the solicited-node group both on the socket and on the
// wire (an MLDv2 report), so that switches snooping MLD forward other hosts'
// probes for the address.
//
// # Announcing, claiming, watching
//
// Announce sends gratuitous ARP (or unsolicited neighbour advertisements), as a
// virtual IP that moved needs for its neighbours to learn the new MAC. Claim runs
// the whole RFC 5227 life of an address: probe, announce, then defend it with
// DefendNever, DefendOnce or DefendAlways, limited to one defence per
// DEFEND_INTERVAL, and rate limited after MAX_CONFLICTS. Monitor watches
// passively for an address claimed by two MACs, claims of your addresses and
// probes for them.
//
// # The socket
//
// New opens an AF_PACKET socket with a classic BPF filter attached before bind
// (Filter): only IPv4-over-Ethernet ARP and ICMPv6 neighbour solicitations and
// advertisements are queued, and frames the host sends are dropped in the
// kernel. NewFromTransport takes any Transport instead: a *packet.Conn from
// github.com/mdlayher/packet, or an arpchecktest endpoint. Time comes from
// Options.Clock, randomness from Options.Rand.
package arpcheck
