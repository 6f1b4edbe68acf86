package arpcheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ethernet"
)

// Op says what kind of frame a Frame is.
type Op uint8

// Frame kinds understood by ParseFrame.
const (
	// OpARPRequest is an ARP request: a question, a probe (sender IP 0.0.0.0) or
	// an announcement (sender IP equal to target IP).
	OpARPRequest Op = iota + 1
	// OpARPReply is an ARP reply.
	OpARPReply
	// OpNeighborSolicit is an ICMPv6 neighbour solicitation; from :: it is a
	// duplicate address detection probe.
	OpNeighborSolicit
	// OpNeighborAdvert is an ICMPv6 neighbour advertisement.
	OpNeighborAdvert
)

// String returns the operation's name, e.g. "arp-request".
func (o Op) String() string {
	switch o {
	case OpARPRequest:
		return "arp-request"
	case OpARPReply:
		return "arp-reply"
	case OpNeighborSolicit:
		return "neighbor-solicitation"
	case OpNeighborAdvert:
		return "neighbor-advertisement"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Frame is one parsed Ethernet frame carrying IPv4-over-Ethernet ARP or an ICMPv6
// neighbour solicitation or advertisement. Its hardware addresses are slices of
// the buffer given to ParseFrame: copy them to keep them after the buffer is
// reused.
type Frame struct {
	Op Op
	// EthSrc and EthDst are the Ethernet source and destination.
	EthSrc, EthDst net.HardwareAddr
	// SenderMAC is the ARP sender hardware address, or for NDP the source
	// (solicitation) or target (advertisement) link-layer address option; nil
	// when an NDP message carries none.
	SenderMAC net.HardwareAddr
	// SenderIP is the ARP sender protocol address or the IPv6 source address.
	SenderIP netip.Addr
	// TargetMAC is the ARP target hardware address; nil for NDP.
	TargetMAC net.HardwareAddr
	// TargetIP is the ARP target protocol address or the NDP target address.
	TargetIP netip.Addr
	// Nonce is the RFC 7527 nonce option of a solicitation (first 6 bytes), when
	// HasNonce is set.
	Nonce    [6]byte
	HasNonce bool
}

// IsProbe reports whether f is an RFC 5227 ARP probe (a request from 0.0.0.0)
// or an RFC 4862 DAD solicitation (from ::).
func (f *Frame) IsProbe() bool {
	switch f.Op {
	case OpARPRequest:
		return f.SenderIP == ipv4Zero
	case OpNeighborSolicit:
		return f.SenderIP == netip.IPv6Unspecified()
	}
	return false
}

// IsAnnouncement reports whether f is an ARP announcement (gratuitous ARP: a
// request or reply whose sender and target IP are the same).
func (f *Frame) IsAnnouncement() bool {
	return (f.Op == OpARPRequest || f.Op == OpARPReply) && f.SenderIP == f.TargetIP && f.SenderIP != ipv4Zero
}

// ErrMalformed is matched (errors.Is) by every error of ParseFrame about a frame
// that is not well-formed ARP or NDP.
var ErrMalformed = errors.New("malformed frame")

// ErrNotARP is returned by ParseFrame for a well-formed frame of another kind
// (IPv4, other ICMPv6 messages, non-Ethernet ARP): not an error of the frame,
// just not one the prober reads.
var ErrNotARP = errors.New("not an ARP or neighbour discovery frame")

// FrameError describes a malformed frame: which field, at which byte offset.
type FrameError struct {
	Field  string // e.g. "arp hardware length"
	Offset int    // byte offset of the field in the frame
	Msg    string
}

// Error names the field, its byte offset and what is wrong.
func (e *FrameError) Error() string {
	return fmt.Sprintf("frame byte %d: %s: %s", e.Offset, e.Field, e.Msg)
}

// Is makes errors.Is(err, ErrMalformed) true for every *FrameError.
func (e *FrameError) Is(target error) bool { return target == ErrMalformed }

var (
	ipv4Zero     = netip.IPv4Unspecified()
	broadcastMAC = net.HardwareAddr(ethernet.Broadcast)
	zeroMAC      = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

const (
	ethHeaderLen  = 14
	arpLen        = 28
	minFrameLen   = 60 // Ethernet minimum without FCS: short frames are padded
	ipv6HeaderLen = 40
	icmpv6NS      = 135
	icmpv6NA      = 136
	protoICMPv6   = 58
	optSourceLL   = 1
	optTargetLL   = 2
	optNonce      = 14
)

// ParseFrame parses an Ethernet frame holding IPv4-over-Ethernet ARP, or an IPv6
// ICMPv6 neighbour solicitation or advertisement. Frames of other kinds give
// ErrNotARP; truncated or inconsistent ones a *FrameError (errors.Is
// ErrMalformed). It does not allocate; the returned hardware addresses alias b.
func ParseFrame(b []byte) (Frame, error) {
	var f Frame
	if len(b) < ethHeaderLen {
		return f, &FrameError{Field: "ethernet header", Offset: 0, Msg: fmt.Sprintf("%d bytes, want %d", len(b), ethHeaderLen)}
	}
	f.EthDst, f.EthSrc = net.HardwareAddr(b[0:6:6]), net.HardwareAddr(b[6:12:12])
	switch ethernet.EtherType(binary.BigEndian.Uint16(b[12:14])) {
	case ethernet.EtherTypeARP:
		return f, parseARP(&f, b)
	case ethernet.EtherTypeIPv6:
		return f, parseNDP(&f, b)
	}
	return f, ErrNotARP
}

func parseARP(f *Frame, b []byte) error {
	a := b[ethHeaderLen:]
	if len(a) < 8 {
		return &FrameError{Field: "arp header", Offset: ethHeaderLen, Msg: fmt.Sprintf("%d bytes, want 8", len(a))}
	}
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != uint16(ethernet.EtherTypeIPv4) {
		return ErrNotARP
	}
	if a[4] != 6 {
		return &FrameError{Field: "arp hardware length", Offset: ethHeaderLen + 4, Msg: fmt.Sprintf("%d, want 6", a[4])}
	}
	if a[5] != 4 {
		return &FrameError{Field: "arp protocol length", Offset: ethHeaderLen + 5, Msg: fmt.Sprintf("%d, want 4", a[5])}
	}
	if len(a) < arpLen {
		return &FrameError{Field: "arp addresses", Offset: ethHeaderLen + 8, Msg: fmt.Sprintf("%d bytes, want %d", len(a)-8, arpLen-8)}
	}
	switch binary.BigEndian.Uint16(a[6:8]) {
	case 1:
		f.Op = OpARPRequest
	case 2:
		f.Op = OpARPReply
	default:
		return &FrameError{Field: "arp operation", Offset: ethHeaderLen + 6, Msg: fmt.Sprintf("%d, want 1 or 2", binary.BigEndian.Uint16(a[6:8]))}
	}
	f.SenderMAC = net.HardwareAddr(a[8:14:14])
	f.SenderIP = netip.AddrFrom4([4]byte(a[14:18]))
	f.TargetMAC = net.HardwareAddr(a[18:24:24])
	f.TargetIP = netip.AddrFrom4([4]byte(a[24:28]))
	return nil
}

func parseNDP(f *Frame, b []byte) error {
	ip := b[ethHeaderLen:]
	if len(ip) < ipv6HeaderLen {
		return &FrameError{Field: "ipv6 header", Offset: ethHeaderLen, Msg: fmt.Sprintf("%d bytes, want %d", len(ip), ipv6HeaderLen)}
	}
	if ip[0]>>4 != 6 {
		return &FrameError{Field: "ipv6 version", Offset: ethHeaderLen, Msg: fmt.Sprintf("%d, want 6", ip[0]>>4)}
	}
	if ip[6] != protoICMPv6 {
		return ErrNotARP
	}
	payloadLen := int(binary.BigEndian.Uint16(ip[4:6]))
	icmp := ip[ipv6HeaderLen:]
	if payloadLen > len(icmp) {
		return &FrameError{Field: "ipv6 payload length", Offset: ethHeaderLen + 4, Msg: fmt.Sprintf("%d, only %d bytes follow", payloadLen, len(icmp))}
	}
	icmp = icmp[:payloadLen] // drop Ethernet padding
	const icmpOff = ethHeaderLen + ipv6HeaderLen
	if len(icmp) < 1 {
		return &FrameError{Field: "icmpv6 type", Offset: icmpOff, Msg: "missing"}
	}
	switch icmp[0] {
	case icmpv6NS:
		f.Op = OpNeighborSolicit
	case icmpv6NA:
		f.Op = OpNeighborAdvert
	default:
		return ErrNotARP
	}
	if ip[7] != 255 {
		return &FrameError{Field: "ipv6 hop limit", Offset: ethHeaderLen + 7, Msg: fmt.Sprintf("%d, neighbour discovery needs 255", ip[7])}
	}
	if len(icmp) < 24 {
		return &FrameError{Field: "icmpv6 message", Offset: icmpOff, Msg: fmt.Sprintf("%d bytes, want at least 24", len(icmp))}
	}
	if icmp[1] != 0 {
		return &FrameError{Field: "icmpv6 code", Offset: icmpOff + 1, Msg: fmt.Sprintf("%d, want 0", icmp[1])}
	}
	f.SenderIP = netip.AddrFrom16([16]byte(ip[8:24]))
	f.TargetIP = netip.AddrFrom16([16]byte(icmp[8:24]))
	if f.TargetIP.IsMulticast() {
		return &FrameError{Field: "ndp target", Offset: icmpOff + 8, Msg: fmt.Sprintf("%s is multicast", f.TargetIP)}
	}
	opts := icmp[24:]
	for off := icmpOff + 24; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return &FrameError{Field: "ndp option", Offset: off, Msg: "truncated or zero length"}
		}
		n := int(opts[1]) * 8
		switch opts[0] {
		case optSourceLL, optTargetLL:
			if n == 8 && (opts[0] == optSourceLL) == (f.Op == OpNeighborSolicit) {
				f.SenderMAC = net.HardwareAddr(opts[2:8:8])
			}
		case optNonce:
			if f.Op == OpNeighborSolicit && n >= 8 {
				copy(f.Nonce[:], opts[2:8])
				f.HasNonce = true
			}
		}
		opts, off = opts[n:], off+n
	}
	if f.Op == OpNeighborSolicit && f.SenderIP.IsUnspecified() && f.SenderMAC != nil {
		return &FrameError{Field: "ndp source link-layer option", Offset: icmpOff + 24, Msg: "present in a solicitation from ::"}
	}
	return nil
}

// AppendProbe appends an RFC 5227 ARP probe for target from mac (sender IP
// 0.0.0.0, broadcast), padded to the Ethernet minimum of 60 bytes.
func AppendProbe(b []byte, mac net.HardwareAddr, target netip.Addr) []byte {
	return appendARP(b, 1, mac, ipv4Zero, zeroMAC, target)
}

// AppendAnnouncement appends an RFC 5227 ARP announcement (gratuitous ARP
// request, sender and target IP both addr) from mac, padded to 60 bytes.
func AppendAnnouncement(b []byte, mac net.HardwareAddr, addr netip.Addr) []byte {
	return appendARP(b, 1, mac, addr, zeroMAC, addr)
}

// AppendARPReply appends an ARP reply from mac saying it holds addr, unicast to
// the requester (toMAC, toIP), as a host answers a request or a probe (toIP
// 0.0.0.0), padded to 60 bytes.
func AppendARPReply(b []byte, mac net.HardwareAddr, addr netip.Addr, toMAC net.HardwareAddr, toIP netip.Addr) []byte {
	start := len(b)
	b = appendARP(b, 2, mac, addr, toMAC, toIP)
	copy(b[start:start+6], toMAC)
	return b
}

func appendARP(b []byte, op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	start := len(b)
	b = append(b, broadcastMAC...)
	b = append(b, sha...)
	b = binary.BigEndian.AppendUint16(b, uint16(ethernet.EtherTypeARP))
	b = append(b, 0, 1, 0x08, 0x00, 6, 4)
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, sha...)
	b = append(b, spa.AsSlice()...)
	b = append(b, tha...)
	b = append(b, tpa.AsSlice()...)
	for len(b)-start < minFrameLen {
		b = append(b, 0)
	}
	return b
}

// SolicitedNodeGroup returns the solicited-node multicast address of addr
// (ff02::1:ffXX:XXXX) and its Ethernet group (33:33:ff:XX:XX:XX).
func SolicitedNodeGroup(addr netip.Addr) (netip.Addr, net.HardwareAddr) {
	a := addr.As16()
	g := netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]})
	return g, multicastMAC(g)
}

func multicastMAC(group netip.Addr) net.HardwareAddr {
	g := group.As16()
	return net.HardwareAddr{0x33, 0x33, g[12], g[13], g[14], g[15]}
}

var allNodes = netip.MustParseAddr("ff02::1")

// AllNodes is the IPv6 all-nodes group ff02::1 and its Ethernet group
// 33:33:00:00:00:01, where advertisements answering DAD probes go.
func AllNodes() (netip.Addr, net.HardwareAddr) { return allNodes, multicastMAC(allNodes) }

// AppendDADSolicit appends an RFC 4862 duplicate address detection probe: a
// neighbour solicitation for target from :: to its solicited-node group, with
// the RFC 7527 nonce option.
func AppendDADSolicit(b []byte, mac net.HardwareAddr, target netip.Addr, nonce [6]byte) []byte {
	group, gmac := SolicitedNodeGroup(target)
	opt := [8]byte{optNonce, 1}
	copy(opt[2:], nonce[:])
	return appendNDP(b, gmac, mac, netip.IPv6Unspecified(), group, icmpv6NS, 0, target, opt[:])
}

// AppendUnsolicitedAdvert appends an RFC 4861 unsolicited neighbour
// advertisement of addr at mac to all nodes (ff02::1), override flag set, with
// the target link-layer address option: the IPv6 counterpart of an ARP
// announcement.
func AppendUnsolicitedAdvert(b []byte, mac net.HardwareAddr, addr netip.Addr) []byte {
	return AppendNeighborAdvert(b, mac, addr, addr, multicastMAC(allNodes), allNodes, false)
}

// AppendNeighborAdvert appends a neighbour advertisement from mac and src for
// target to dst (dstMAC), with the override flag, the solicited flag if
// solicited, and the target link-layer address option: how a host answers a
// solicitation (to ff02::1 when it came from ::).
func AppendNeighborAdvert(b []byte, mac net.HardwareAddr, src, target netip.Addr, dstMAC net.HardwareAddr, dst netip.Addr, solicited bool) []byte {
	opt := [8]byte{optTargetLL, 1}
	copy(opt[2:], mac)
	flags := byte(0x20)
	if solicited {
		flags |= 0x40
	}
	return appendNDP(b, dstMAC, mac, src, dst, icmpv6NA, flags, target, opt[:])
}

// AppendMLDReport appends an MLDv2 report from :: (RFC 3810, RFC 3590) saying
// that we listen to group: how a host joins a solicited-node group before DAD
// (RFC 4862 §5.4.2), so that switches snooping MLD forward other hosts' DAD
// probes for that address to us.
func AppendMLDReport(b []byte, mac net.HardwareAddr, group netip.Addr) []byte {
	dst := netip.MustParseAddr("ff02::16") // all MLDv2-capable routers
	b = append(b, multicastMAC(dst)...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, uint16(ethernet.EtherTypeIPv6))
	const mldLen = 8 + 20 // report header, one record without sources
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, 8+mldLen)
	b = append(b, 0, 1) // next header: hop-by-hop options; hop limit 1
	s, d, g := netip.IPv6Unspecified().As16(), dst.As16(), group.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = append(b, protoICMPv6, 0, 5, 2, 0, 0, 1, 0) // router alert (MLD), PadN
	icmpStart := len(b)
	b = append(b, 143, 0, 0, 0, 0, 0, 0, 1) // MLDv2 report, one record
	b = append(b, 4, 0, 0, 0)               // CHANGE_TO_EXCLUDE_MODE, no sources
	b = append(b, g[:]...)
	binary.BigEndian.PutUint16(b[icmpStart+2:], icmpv6Checksum(s, d, b[icmpStart:]))
	return b
}

func appendNDP(b []byte, dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, typ, flags byte, target netip.Addr, opt []byte) []byte {
	b = append(b, dstMAC...)
	b = append(b, srcMAC...)
	b = binary.BigEndian.AppendUint16(b, uint16(ethernet.EtherTypeIPv6))
	payload := 24 + len(opt)
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(payload))
	b = append(b, protoICMPv6, 255)
	s, d, t := src.As16(), dst.As16(), target.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	icmpStart := len(b)
	b = append(b, typ, 0, 0, 0, flags, 0, 0, 0)
	b = append(b, t[:]...)
	b = append(b, opt...)
	sum := icmpv6Checksum(s, d, b[icmpStart:])
	binary.BigEndian.PutUint16(b[icmpStart+2:], sum)
	return b
}

func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(p []byte) {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(p[i:]))
		}
		if len(p)%2 == 1 {
			sum += uint32(p[len(p)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += uint32(len(msg)) + protoICMPv6
	add(msg)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
