package arpcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Status is the verdict on one address. The zero value is Unknown, so a result
// that was never decided can never read as free.
type Status uint8

// Statuses of a Result.
const (
	// Unknown: no verdict, because the call was cancelled, a frame could not be
	// sent, the link went down or frames were lost; Result.Reason says which.
	Unknown Status = iota
	// Free: every probe went out and nobody claimed or probed the address.
	Free
	// InUse: at least one other host holds or is probing for the address.
	InUse
)

var statusNames = [...]string{Unknown: "unknown", Free: "free", InUse: "in_use"}

// String returns "free", "in_use" or "unknown".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// MarshalText renders s as "free", "in_use" or "unknown".
func (s Status) MarshalText() ([]byte, error) {
	if int(s) >= len(statusNames) {
		return nil, fmt.Errorf("arpcheck: status %d: no such status", uint8(s))
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText parses what MarshalText writes.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if string(b) == n {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("arpcheck: status %q: want free, in_use or unknown", b)
}

// HolderKind says how a holder showed itself.
type HolderKind uint8

// Kinds of Holder.
const (
	// Answered: it sent an ARP reply or request from the address (or, for IPv6, an
	// advertisement for it or a solicitation from it).
	Answered HolderKind = iota + 1
	// Probing: it probed for the address while we did; neither may take it.
	Probing
)

// String returns "answered" or "probing".
func (k HolderKind) String() string {
	switch k {
	case Answered:
		return "answered"
	case Probing:
		return "probing"
	}
	return "unknown"
}

// Holder is one host that claimed an address.
type Holder struct {
	// MAC is the hardware address the host gave for itself (ARP sender, NDP
	// link-layer option); for an NDP message without one, its Ethernet source.
	MAC net.HardwareAddr
	// EthSrc is the frame's Ethernet source. It differs from MAC behind some
	// bridges, proxies and spoofers.
	EthSrc net.HardwareAddr
	Kind   HolderKind // answered, or only probed
	// FirstSeen and LastSeen are when the first and last frame from this holder
	// were read from the socket; Frames counts them.
	FirstSeen, LastSeen time.Time
	Frames              int
	// ProxyARP is set when this MAC had answered for at least ProxyHintMin
	// probed addresses of the same call by the time this verdict was reached:
	// likely a router doing proxy ARP rather than hosts that each hold an
	// address. Verdicts reached before that many answers do not have it.
	ProxyARP bool
}

// String renders the holder as its MAC, with " (probing)" for a host that only
// probed and the Ethernet source when it differs: "02:00:5e:00:00:01 via 02:...".
func (h Holder) String() string {
	s := h.MAC.String()
	if len(h.EthSrc) > 0 && !macEqual(h.EthSrc, h.MAC) {
		s += " via " + h.EthSrc.String()
	}
	if h.Kind == Probing {
		s += " (probing)"
	}
	return s
}

type holderJSON struct {
	MAC       string    `json:"mac"`
	EthSrc    string    `json:"eth_src,omitempty"`
	Kind      string    `json:"kind"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Frames    int       `json:"frames"`
	ProxyARP  bool      `json:"proxy_arp,omitempty"`
}

// MarshalJSON writes MACs as text ("02:00:5e:00:00:01"), not base64.
func (h Holder) MarshalJSON() ([]byte, error) {
	j := holderJSON{MAC: h.MAC.String(), Kind: h.Kind.String(), FirstSeen: h.FirstSeen, LastSeen: h.LastSeen,
		Frames: h.Frames, ProxyARP: h.ProxyARP}
	if !macEqual(h.EthSrc, h.MAC) {
		j.EthSrc = h.EthSrc.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (h *Holder) UnmarshalJSON(b []byte) error {
	var j holderJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	mac, err := net.ParseMAC(j.MAC)
	if err != nil {
		return fmt.Errorf("arpcheck: holder mac %q: %w", j.MAC, err)
	}
	*h = Holder{MAC: mac, EthSrc: mac, FirstSeen: j.FirstSeen, LastSeen: j.LastSeen, Frames: j.Frames, ProxyARP: j.ProxyARP}
	if j.EthSrc != "" {
		if h.EthSrc, err = net.ParseMAC(j.EthSrc); err != nil {
			return fmt.Errorf("arpcheck: holder eth_src %q: %w", j.EthSrc, err)
		}
	}
	switch j.Kind {
	case "answered":
		h.Kind = Answered
	case "probing":
		h.Kind = Probing
	case "unknown", "": // what the zero HolderKind marshals to
	default:
		return fmt.Errorf("arpcheck: holder kind %q: want answered or probing", j.Kind)
	}
	return nil
}

// Result is the verdict on one address. It marshals to JSON as
// {"addr","status","holders","reason","probes_sent","started","decided"}.
type Result struct {
	Addr   netip.Addr `json:"addr"`
	Status Status     `json:"status"`
	// Holders lists every host that claimed the address, in the order they were
	// first seen; empty unless Status is InUse.
	Holders []Holder `json:"holders,omitempty"`
	// Reason says why Status is Unknown, or names the first holder's kind of
	// conflict for InUse.
	Reason string `json:"reason,omitempty"`
	// ProbesSent counts the probes that left the socket for this address.
	ProbesSent int `json:"probes_sent"`
	// Started is when the first probe was sent (zero if none was), Decided when
	// the verdict was reached.
	Started time.Time `json:"started,omitzero"`
	Decided time.Time `json:"decided,omitzero"`
	// Err is the error behind an Unknown verdict, for errors.Is (ErrLinkDown,
	// context.Canceled, ...); nil otherwise. Reason holds its text.
	Err error `json:"-"`
}

// MACs returns the holders' MACs.
func (r Result) MACs() []net.HardwareAddr {
	out := make([]net.HardwareAddr, len(r.Holders))
	for i, h := range r.Holders {
		out[i] = h.MAC
	}
	return out
}

// String renders r as the arping example prints it: "ADDR free", "ADDR in use by
// MAC[,MAC...]" or "ADDR unknown: REASON".
func (r Result) String() string {
	switch r.Status {
	case Free:
		return r.Addr.String() + " free"
	case InUse:
		macs := make([]string, len(r.Holders))
		for i, h := range r.Holders {
			macs[i] = h.String()
		}
		return r.Addr.String() + " in use by " + strings.Join(macs, ",")
	}
	return r.Addr.String() + " unknown: " + r.Reason
}

// Errors callers branch on.
var (
	// ErrLinkDown: the interface is down or has no carrier.
	ErrLinkDown = errors.New("link down")
	// ErrNotARPable: the interface is loopback, has the NOARP flag or no
	// Ethernet address.
	ErrNotARPable = errors.New("interface does not do ARP")
	// ErrNoProbeSent: an address was given up before a single probe left the
	// socket; its Unknown verdict carries the reason.
	ErrNoProbeSent = errors.New("no probe sent")
	// ErrInUse: Claim found the address held by another host.
	ErrInUse = errors.New("address in use")
	// ErrAddressLost: Claim gave the address up after a conflict it would not or
	// could not defend.
	ErrAddressLost = errors.New("address lost to another host")
	// ErrBadAddress: the address cannot be probed (invalid, unspecified,
	// multicast, broadcast or loopback).
	ErrBadAddress = errors.New("address cannot be probed")
	// ErrBadOptions: inconsistent Options, Timing or Rate.
	ErrBadOptions = errors.New("bad options")
	// ErrClosed: the Prober was closed.
	ErrClosed = errors.New("prober closed")
)

// AddrError names an address that cannot be probed and why.
type AddrError struct {
	Addr netip.Addr
	// Index is the position of the address in the caller's sequence (from 0).
	Index int
	Err   error
}

// Error names the address, its position and the reason.
func (e *AddrError) Error() string {
	return fmt.Sprintf("arpcheck: address %d (%s): %v", e.Index, e.Addr, e.Err)
}

// Unwrap returns the reason, which matches ErrBadAddress.
func (e *AddrError) Unwrap() error { return e.Err }

// ConflictError is returned by Claim when the address is or became held by
// someone else (errors.Is ErrInUse or ErrAddressLost).
type ConflictError struct {
	Addr   netip.Addr
	Holder Holder
	Err    error // ErrInUse or ErrAddressLost
}

// Error names the address, the condition and the holder's MAC.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("arpcheck: %s: %v (held by %s)", e.Addr, e.Err, e.Holder.MAC)
}

// Unwrap returns ErrInUse or ErrAddressLost.
func (e *ConflictError) Unwrap() error { return e.Err }

func macEqual(a, b net.HardwareAddr) bool { return string(a) == string(b) }
