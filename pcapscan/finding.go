package pcapscan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind names what a finding shows. The values are part of the API and of the
// JSON output.
type Kind string

// Finding kinds.
const (
	// ARPConflict: one IPv4 address claimed in ARP sender fields by two or
	// more MACs on one segment within Options.Window.
	ARPConflict Kind = "arp-conflict"
	// DADProbeAnswered: an RFC 5227 ARP probe (sender 0.0.0.0) or an IPv6
	// DAD neighbour solicitation (source ::) got an answer from another MAC.
	DADProbeAnswered Kind = "dad-probe-answered"
	// IPMACConflict: one on-link source IP seen in IP traffic from two or
	// more MACs, after removing routed packets and capture duplicates.
	IPMACConflict Kind = "ip-mac-conflict"
	// EchoMultiResponder: one ICMP echo target answered from two or more MACs.
	EchoMultiResponder Kind = "echo-multi-responder"
	// ARPSpoof: a MAC took over an address another MAC held; notably the
	// next hop, when IP traffic for the same remote hosts moves to the new MAC.
	ARPSpoof Kind = "arp-spoof"
	// RequestIDRepeat: one request ID seen Options.RequestIDRepeats times or
	// more within Options.RequestIDWindow: a retry storm.
	RequestIDRepeat Kind = "request-id-repeat"
	// TCPRestart: a new SYN on a 4-tuple that carried data and was not
	// closed with FIN.
	TCPRestart Kind = "tcp-restart"
	// TCPSeqRegression: sequence numbers going backwards beyond what
	// retransmission explains.
	TCPSeqRegression Kind = "tcp-seq-regression"
	// TCPRetransmissions: a flow's retransmission count, capture duplicates
	// removed.
	TCPRetransmissions Kind = "tcp-retransmissions"
	// RogueDHCP: DHCP offers or acks from two or more server identifiers on
	// one segment.
	RogueDHCP Kind = "rogue-dhcp"
	// DHCPDecline: a client declined an address because it found it in use.
	DHCPDecline Kind = "dhcp-decline"
)

// Kinds lists every kind, in the order of the documentation.
var Kinds = []Kind{ARPConflict, DADProbeAnswered, IPMACConflict, EchoMultiResponder, ARPSpoof,
	RequestIDRepeat, TCPRestart, TCPSeqRegression, TCPRetransmissions, RogueDHCP, DHCPDecline}

// Severity ranks findings. Its text form ("info", "warning", "critical") is used
// in JSON.
type Severity uint8

// Severities, in increasing order.
const (
	Info Severity = iota
	Warning
	Critical
)

// String returns "info", "warning" or "critical".
func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Critical:
		return "critical"
	}
	return "severity(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "info":
		*s = Info
	case "warning":
		*s = Warning
	case "critical":
		*s = Critical
	default:
		return fmt.Errorf("severity %q: want info, warning or critical", b)
	}
	return nil
}

// Flow is a TCP connection's two ends: the client (the side that sent the first
// SYN, or the first packet seen) and the server.
type Flow struct {
	Client netip.AddrPort // the side that opened the connection
	Server netip.AddrPort // the side it connected to
}

// String returns "A:port-B:port" (IPv6 addresses in brackets).
func (f Flow) String() string {
	if !f.Client.IsValid() {
		return ""
	}
	return f.Client.String() + "-" + f.Server.String()
}

// Event is one piece of evidence a MAC left: what it did, when, in which frame.
type Event struct {
	Time  time.Time `json:"time"`  // capture time of the frame
	Frame uint64    `json:"frame"` // frame number, from 1
	// What is one of "arp-request", "arp-reply", "arp-gratuitous", "arp-probe",
	// "ip-source", "echo-reply", "na" (IPv6 neighbour advertisement),
	// "ns-probe" (IPv6 DAD probe), "next-hop" (carried routed traffic),
	// "dhcp-offer", "dhcp-ack", "dhcp-decline".
	What string `json:"what"`
}

// MACEvidence is what one MAC did for the finding's address: a lane of a
// per-address timeline. Events holds at most 8 events, the first 4 and the
// latest 4; Count counts all. A finding itemises at most 4 MACs.
type MACEvidence struct {
	MAC    net.HardwareAddr // the MAC this lane is about
	First  time.Time        // its first evidence
	Last   time.Time        // its last evidence
	Count  int              // all its evidence packets, kept in Events or not
	Events []Event          // the first and the latest events, in frame order
}

// Finding is one anomaly. Fields that do not apply to a kind are zero: IP for
// flow findings without address, Flow for address findings, RequestID except
// for request-id-repeat.
type Finding struct {
	Kind     Kind     // what was found; see the Kind constants
	Severity Severity // how bad it is, by the pattern seen
	// First and Last are the capture times of the first and last evidence.
	First, Last time.Time
	// Count is the number of evidence packets (claims, answers, requests,
	// retransmissions...), not bounded by the Frames list.
	Count int
	// IP is the address in question: the contested address, the DHCP server
	// identifier, the declined address, or the client for flow findings.
	IP netip.Addr
	// Addrs lists other addresses involved (other DHCP servers, remote hosts
	// whose next hop moved, the server of a retry storm), at most 8.
	Addrs []netip.Addr
	// MACs are the hardware addresses involved, sorted.
	MACs []net.HardwareAddr
	// VLAN is the innermost 802.1Q VLAN ID (0 untagged); OuterVLAN the
	// service tag of a QinQ frame.
	VLAN, OuterVLAN uint16
	// Interface is the pcapng interface index the evidence came from.
	Interface int
	// RequestID is the repeated request ID.
	RequestID string
	// Flow is the TCP connection, for tcp-* and request-id-repeat findings.
	Flow Flow
	// Frames are frame numbers of evidence (from 1, as Wireshark counts), in
	// order: for address findings those of the events kept in Evidence, for
	// flow and request-ID findings the first 8.
	Frames []uint64
	// Evidence holds one entry per MAC, in the order of MACs.
	Evidence []MACEvidence
	// Detail says in words which pattern was seen.
	Detail string
}

// String returns the finding as one line of text.
func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", f.First.UTC().Format(time.RFC3339Nano), f.Severity, f.Kind)
	if f.IP.IsValid() {
		fmt.Fprintf(&b, " ip=%s", f.IP)
	}
	if len(f.MACs) > 0 {
		b.WriteString(" macs=")
		writeList(&b, f.MACs, net.HardwareAddr.String)
	}
	if f.VLAN != 0 {
		fmt.Fprintf(&b, " vlan=%d", f.VLAN)
	}
	if f.RequestID != "" {
		fmt.Fprintf(&b, " request_id=%q", f.RequestID)
	}
	if f.Flow.Client.IsValid() {
		fmt.Fprintf(&b, " flow=%s", f.Flow)
	}
	fmt.Fprintf(&b, " count=%d", f.Count)
	if len(f.Frames) > 0 {
		b.WriteString(" frames=")
		writeList(&b, f.Frames, func(n uint64) string { return strconv.FormatUint(n, 10) })
	}
	if f.Detail != "" {
		fmt.Fprintf(&b, " (%s)", f.Detail)
	}
	return b.String()
}

// writeList writes the items comma-separated.
func writeList[T any](b *strings.Builder, items []T, str func(T) string) {
	for i, x := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(str(x))
	}
}

type jsonEvidence struct {
	MAC    string    `json:"mac"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	Count  int       `json:"count"`
	Events []Event   `json:"events,omitempty"`
}

type jsonFinding struct {
	Kind      Kind           `json:"kind"`
	Severity  Severity       `json:"severity"`
	First     time.Time      `json:"first"`
	Last      time.Time      `json:"last"`
	Count     int            `json:"count"`
	IP        string         `json:"ip"`
	Addrs     []string       `json:"addrs,omitempty"`
	MACs      []string       `json:"macs"`
	VLAN      uint16         `json:"vlan"`
	OuterVLAN uint16         `json:"outer_vlan,omitempty"`
	Interface int            `json:"interface,omitempty"`
	RequestID string         `json:"request_id"`
	Flow      string         `json:"flow"`
	Frames    []uint64       `json:"frames"`
	Evidence  []jsonEvidence `json:"evidence,omitempty"`
	Detail    string         `json:"detail,omitempty"`
}

// MarshalJSON writes the finding as one JSON object with fields kind, severity,
// first, last (RFC 3339 with nanoseconds), count, ip, addrs, macs (sorted,
// colon-separated hex), vlan, outer_vlan, interface, request_id, flow
// ("A:port-B:port"), frames, evidence and detail.
func (f Finding) MarshalJSON() ([]byte, error) {
	j := jsonFinding{Kind: f.Kind, Severity: f.Severity, First: f.First.UTC(), Last: f.Last.UTC(),
		Count: f.Count, VLAN: f.VLAN, OuterVLAN: f.OuterVLAN, Interface: f.Interface,
		RequestID: f.RequestID, Flow: f.Flow.String(), Frames: f.Frames, Detail: f.Detail,
		MACs: make([]string, len(f.MACs))}
	if f.IP.IsValid() {
		j.IP = f.IP.String()
	}
	for _, a := range f.Addrs {
		j.Addrs = append(j.Addrs, a.String())
	}
	for i, m := range f.MACs {
		j.MACs[i] = m.String()
	}
	if j.Frames == nil {
		j.Frames = []uint64{}
	}
	for _, e := range f.Evidence {
		je := jsonEvidence{MAC: e.MAC.String(), First: e.First.UTC(), Last: e.Last.UTC(), Count: e.Count, Events: e.Events}
		for i := range je.Events {
			je.Events[i].Time = je.Events[i].Time.UTC()
		}
		j.Evidence = append(j.Evidence, je)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *Finding) UnmarshalJSON(b []byte) error {
	var j jsonFinding
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Finding{Kind: j.Kind, Severity: j.Severity, First: j.First, Last: j.Last, Count: j.Count,
		VLAN: j.VLAN, OuterVLAN: j.OuterVLAN, Interface: j.Interface, RequestID: j.RequestID,
		Frames: j.Frames, Detail: j.Detail}
	var err error
	if j.IP != "" {
		if f.IP, err = netip.ParseAddr(j.IP); err != nil {
			return fmt.Errorf("finding ip: %w", err)
		}
	}
	for _, s := range j.Addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("finding addrs: %w", err)
		}
		f.Addrs = append(f.Addrs, a)
	}
	for _, s := range j.MACs {
		m, err := net.ParseMAC(s)
		if err != nil {
			return fmt.Errorf("finding macs: %w", err)
		}
		f.MACs = append(f.MACs, m)
	}
	if j.Flow != "" {
		c, s, ok := strings.Cut(j.Flow, "-")
		if !ok {
			return fmt.Errorf("finding flow %q: want A:port-B:port", j.Flow)
		}
		if f.Flow.Client, err = netip.ParseAddrPort(c); err != nil {
			return fmt.Errorf("finding flow %q: %w", j.Flow, err)
		}
		if f.Flow.Server, err = netip.ParseAddrPort(s); err != nil {
			return fmt.Errorf("finding flow %q: %w", j.Flow, err)
		}
	}
	for _, je := range j.Evidence {
		m, err := net.ParseMAC(je.MAC)
		if err != nil {
			return fmt.Errorf("finding evidence mac: %w", err)
		}
		f.Evidence = append(f.Evidence, MACEvidence{MAC: m, First: je.First, Last: je.Last, Count: je.Count, Events: je.Events})
	}
	return nil
}

// sortMACs orders the finding's MACs (and their evidence alongside).
func (f *Finding) sortMACs() {
	if len(f.Evidence) == len(f.MACs) && len(f.Evidence) > 0 {
		slices.SortFunc(f.Evidence, func(a, b MACEvidence) int { return bytes.Compare(a.MAC, b.MAC) })
		for i := range f.Evidence {
			f.MACs[i] = f.Evidence[i].MAC
		}
		return
	}
	slices.SortFunc(f.MACs, func(a, b net.HardwareAddr) int { return bytes.Compare(a, b) })
}

// unixTime converts nanoseconds since the epoch to a UTC time.
func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
