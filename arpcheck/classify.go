package arpcheck

import (
	"bytes"
	"net"
	"net/netip"
)

// Phase is where an address stands in its RFC 5227 life, which decides which
// frames conflict with it.
type Phase uint8

const (
	// PhaseProbing: the address is being checked and not yet used. Any use of it
	// conflicts, and so does another host probing for it at the same time.
	PhaseProbing Phase = iota
	// PhaseAnnounced: the address has been announced and is in use by us. Only
	// another host claiming it as its sender address conflicts; probes for it
	// are someone else's questions, which the owner answers (RFC 5227 §2.4).
	PhaseAnnounced
)

// Verdict is what Classify decided about one frame.
type Verdict uint8

// Verdicts of Classify.
const (
	// Unrelated: the frame says nothing about the address.
	Unrelated Verdict = iota
	// Own: the frame came from us (our MAC, one of the caller's own MACs, or our
	// own DAD nonce looped back) and is ignored.
	Own
	// Mismatch: a probe whose Ethernet source differs from its ARP sender
	// hardware address, ignored as RFC 5227 §2.1.1 asks.
	Mismatch
	// Conflict: another host uses the address (it is the ARP sender IP, the
	// source of a neighbour solicitation, or the target of an advertisement).
	Conflict
	// SimultaneousProbe: another host probes for the address while we do.
	SimultaneousProbe
)

// String returns the verdict's name, e.g. "simultaneous-probe".
func (v Verdict) String() string {
	switch v {
	case Unrelated:
		return "unrelated"
	case Own:
		return "own"
	case Mismatch:
		return "mismatch"
	case Conflict:
		return "conflict"
	case SimultaneousProbe:
		return "simultaneous-probe"
	}
	return "verdict(?)"
}

// Check is what Classify compares a frame against: one address of ours and
// how we stand with it.
type Check struct {
	Addr  netip.Addr
	Phase Phase
	// MAC is our interface's hardware address.
	MAC net.HardwareAddr
	// OwnMACs are further hardware addresses that are ours (VRRP virtual MACs,
	// bond members); frames from them are never conflicts.
	OwnMACs []net.HardwareAddr
	// Nonce is the RFC 7527 nonce of our IPv6 DAD solicitations.
	Nonce [6]byte
}

func (c *Check) isOwn(mac net.HardwareAddr) bool {
	if len(mac) == 0 {
		return false
	}
	if bytes.Equal(mac, c.MAC) {
		return true
	}
	for _, m := range c.OwnMACs {
		if bytes.Equal(mac, m) {
			return true
		}
	}
	return false
}

// Classify decides whether frame f conflicts with address c.Addr. It is a pure
// function of its inputs: it keeps no state and never blocks or allocates.
//
// The rules are RFC 5227's (IPv4) and RFC 4862/7527's (IPv6):
//   - frames from our MAC or one of c.OwnMACs, and DAD solicitations carrying
//     our nonce, are Own;
//   - an ARP request or reply whose sender IP is the address is a Conflict in
//     every phase; so is a neighbour solicitation from the address and a
//     neighbour advertisement for it;
//   - while PhaseProbing, a broadcast ARP probe (sender 0.0.0.0) for the address, or a
//     DAD solicitation from :: for it without our nonce, is a SimultaneousProbe,
//     unless the probe's Ethernet source differs from its ARP sender (Mismatch);
//   - once PhaseAnnounced, probes for the address are Unrelated: answering them is the
//     owner's job, and treating them as conflicts loses addresses (dhcpcd#480).
func Classify(c *Check, f *Frame) Verdict {
	if !c.Addr.IsValid() {
		return Unrelated
	}
	if c.isOwn(f.EthSrc) || c.isOwn(f.SenderMAC) {
		return Own
	}
	switch f.Op {
	case OpARPRequest, OpARPReply:
		if !c.Addr.Is4() {
			return Unrelated
		}
		if f.SenderIP == c.Addr {
			return Conflict
		}
		if c.Phase == PhaseProbing && f.Op == OpARPRequest && f.SenderIP == ipv4Zero && f.TargetIP == c.Addr &&
			bytes.Equal(f.EthDst, broadcastMAC) {
			if !bytes.Equal(f.EthSrc, f.SenderMAC) {
				return Mismatch
			}
			return SimultaneousProbe
		}
	case OpNeighborAdvert:
		if c.Addr.Is6() && f.TargetIP == c.Addr {
			return Conflict
		}
	case OpNeighborSolicit:
		if !c.Addr.Is6() {
			return Unrelated
		}
		if f.SenderIP == c.Addr {
			return Conflict
		}
		if f.SenderIP.IsUnspecified() && f.TargetIP == c.Addr {
			if f.HasNonce && f.Nonce == c.Nonce {
				return Own
			}
			if c.Phase == PhaseProbing {
				return SimultaneousProbe
			}
		}
	}
	return Unrelated
}
