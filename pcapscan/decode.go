package pcapscan

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// The decoders below are small pure functions over byte slices: each checks every
// length before reading, fills a caller-owned struct and reports whether the
// bytes held what it decodes. None allocates; all are fuzzed.

// ipaddr is an IP address as 16 bytes, IPv4 mapped into IPv6 (::ffff:a.b.c.d).
// Unlike netip.Addr it holds no pointer, so tables full of addresses cost the
// garbage collector nothing and are written without write barriers. The zero
// value is "no address" (and ::, which is never a valid source).
type ipaddr [16]byte

func ipv4At(b []byte) ipaddr {
	var a ipaddr
	a[10], a[11] = 0xff, 0xff
	copy(a[12:], b[:4])
	return a
}

func toIP(n netip.Addr) ipaddr {
	if !n.IsValid() {
		return ipaddr{}
	}
	return n.As16()
}

func (a ipaddr) is4() bool {
	return binary.LittleEndian.Uint64(a[:8]) == 0 && binary.LittleEndian.Uint32(a[8:12]) == 0xffff0000
}

func (a ipaddr) isZero() bool { return a == ipaddr{} }

// netip returns the address as a netip.Addr (IPv4 as a 4-byte address).
func (a ipaddr) netip() netip.Addr {
	if a.isZero() {
		return netip.Addr{}
	}
	n := netip.AddrFrom16(a)
	if a.is4() {
		return n.Unmap()
	}
	return n
}

// unspecified reports 0.0.0.0 or ::.
func (a ipaddr) unspecified() bool { return a.isZero() || a == ipaddr{10: 0xff, 11: 0xff} }

// unicast reports whether a can be a host's own address: not unspecified,
// multicast or the IPv4 limited broadcast.
func (a ipaddr) unicast() bool {
	if a.unspecified() {
		return false
	}
	if a.is4() {
		return a[12] < 224
	}
	return a[0] != 0xff
}

// mac is an Ethernet address as a comparable value.
type mac [6]byte

func (m mac) isMulticast() bool { return m[0]&1 != 0 }

// segment identifies one broadcast domain in a capture: the capture interface
// (pcapng interface, or Linux ifindex for SLL2) and the VLAN tags.
type segment struct {
	ifindex uint32 // Linux ifindex from an SLL2 header, 0 otherwise
	iface   uint16 // pcapng interface index
	vlan    uint16 // innermost 802.1Q VLAN ID, 0 when untagged
	outer   uint16 // outer (service) VLAN ID for QinQ, 0 otherwise
}

// EtherTypes and protocol numbers the decoders use.
const (
	etherIPv4   = 0x0800
	etherARP    = 0x0806
	etherIPv6   = 0x86dd
	etherVLAN   = 0x8100
	etherQinQ   = 0x88a8
	etherQinQ91 = 0x9100

	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// frame is a decoded link layer.
type frame struct {
	seg            segment
	src, dst       mac
	hasSrc, hasDst bool
	etype          uint16
	payload        []byte
}

// decodeLink decodes the link-layer header of data for link type lt.
func decodeLink(lt LinkType, data []byte, f *frame) bool {
	switch lt {
	case LinkEthernet:
		return decodeEthernet(data, f)
	case LinkSLL:
		return decodeSLL(data, f)
	case LinkSLL2:
		return decodeSLL2(data, f)
	case LinkRaw, LinkIPv4, LinkIPv6:
		return decodeRawIP(data, f)
	case LinkNull, LinkLoop:
		return decodeNull(data, lt == LinkLoop, f)
	}
	return false
}

// decodeEthernet decodes an Ethernet II header and any 802.1Q / 802.1ad tags.
// 802.3 frames with a length field are decoded with etype 0.
func decodeEthernet(b []byte, f *frame) bool {
	if len(b) < 14 {
		return false
	}
	copy(f.dst[:], b[0:6])
	copy(f.src[:], b[6:12])
	f.hasSrc, f.hasDst = true, true
	return decodeTags(binary.BigEndian.Uint16(b[12:]), b[14:], f)
}

// decodeTags follows VLAN tags starting at etype and sets f.etype, f.payload and
// the VLAN fields of f.seg.
func decodeTags(etype uint16, rest []byte, f *frame) bool {
	var tags int
	for etype == etherVLAN || etype == etherQinQ || etype == etherQinQ91 {
		if len(rest) < 4 || tags == 4 {
			return false
		}
		id := binary.BigEndian.Uint16(rest) & 0x0fff
		if tags > 0 {
			f.seg.outer = f.seg.vlan
		}
		f.seg.vlan = id
		tags++
		etype = binary.BigEndian.Uint16(rest[2:])
		rest = rest[4:]
	}
	if etype < 0x0600 {
		etype = 0 // 802.3 length field: LLC follows
	}
	f.etype, f.payload = etype, rest
	return true
}

// decodeSLL decodes a Linux cooked v1 header (16 bytes): only the sender's
// address is present.
func decodeSLL(b []byte, f *frame) bool {
	if len(b) < 16 {
		return false
	}
	hatype, alen := binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint16(b[4:])
	if hatype == 1 && alen == 6 {
		copy(f.src[:], b[6:12])
		f.hasSrc = true
	}
	return decodeTags(binary.BigEndian.Uint16(b[14:]), b[16:], f)
}

// decodeSLL2 decodes a Linux cooked v2 header (20 bytes), which also names the
// interface; frames from different interfaces are different segments.
func decodeSLL2(b []byte, f *frame) bool {
	if len(b) < 20 {
		return false
	}
	f.seg.ifindex = binary.BigEndian.Uint32(b[4:])
	hatype, alen := binary.BigEndian.Uint16(b[8:]), b[11]
	if hatype == 1 && alen == 6 {
		copy(f.src[:], b[12:18])
		f.hasSrc = true
	}
	return decodeTags(binary.BigEndian.Uint16(b[0:]), b[20:], f)
}

// decodeRawIP decodes a frame that starts with an IP header.
func decodeRawIP(b []byte, f *frame) bool {
	if len(b) < 1 {
		return false
	}
	switch b[0] >> 4 {
	case 4:
		f.etype = etherIPv4
	case 6:
		f.etype = etherIPv6
	default:
		return false
	}
	f.payload = b
	return true
}

// decodeNull decodes the 4-byte address family of BSD loopback (host byte order,
// which is guessed) or OpenBSD loop (network byte order).
func decodeNull(b []byte, network bool, f *frame) bool {
	if len(b) < 4 {
		return false
	}
	af := binary.BigEndian.Uint32(b)
	if !network && af > 0xffff {
		af = binary.LittleEndian.Uint32(b)
	}
	switch af {
	case 2:
		f.etype = etherIPv4
	case 10, 24, 28, 30:
		f.etype = etherIPv6
	default:
		return false
	}
	f.payload = b[4:]
	return true
}

// arpPacket is an Ethernet/IPv4 ARP message.
type arpPacket struct {
	op       uint16
	sha, tha mac
	spa, tpa ipaddr
}

// decodeARP decodes an ARP message for IPv4 over Ethernet.
func decodeARP(b []byte, a *arpPacket) bool {
	if len(b) < 28 || binary.BigEndian.Uint16(b[0:]) != 1 || binary.BigEndian.Uint16(b[2:]) != etherIPv4 ||
		b[4] != 6 || b[5] != 4 {
		return false
	}
	a.op = binary.BigEndian.Uint16(b[6:])
	copy(a.sha[:], b[8:14])
	a.spa = ipv4At(b[14:18])
	copy(a.tha[:], b[18:24])
	a.tpa = ipv4At(b[24:28])
	return true
}

// ipPacket is a decoded IPv4 or IPv6 header.
type ipPacket struct {
	src, dst ipaddr
	ttl      uint8
	proto    uint8
	id       uint16 // IPv4 identification; 0 for IPv6
	later    bool   // a non-first fragment: no transport header
	payload  []byte // bounded by the header's length field
}

// decodeIPv4 decodes an IPv4 header. The payload is cut to the total length,
// which drops Ethernet padding.
func decodeIPv4(b []byte, p *ipPacket) bool {
	if len(b) < 20 || b[0]>>4 != 4 {
		return false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || total < ihl || len(b) < ihl {
		return false
	}
	if total > len(b) {
		total = len(b) // truncated by the snapshot length
	}
	p.id = binary.BigEndian.Uint16(b[4:])
	p.later = binary.BigEndian.Uint16(b[6:])&0x1fff != 0
	p.ttl, p.proto = b[8], b[9]
	p.src = ipv4At(b[12:16])
	p.dst = ipv4At(b[16:20])
	p.payload = b[ihl:total]
	return true
}

// decodeIPv6 decodes an IPv6 header and skips extension headers (at most 8).
func decodeIPv6(b []byte, p *ipPacket) bool {
	if len(b) < 40 || b[0]>>4 != 6 {
		return false
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	next := b[6]
	p.ttl, p.id, p.later = b[7], 0, false
	p.src = ipaddr(b[8:24])
	p.dst = ipaddr(b[24:40])
	rest := b[40:]
	if plen < len(rest) {
		rest = rest[:plen]
	}
	for range 8 {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(rest) < 8 {
				return false
			}
			n := (int(rest[1]) + 1) * 8
			if n > len(rest) {
				return false
			}
			next, rest = rest[0], rest[n:]
		case 44: // fragment
			if len(rest) < 8 {
				return false
			}
			if binary.BigEndian.Uint16(rest[2:])&0xfff8 != 0 {
				p.later = true
			}
			next, rest = rest[0], rest[8:]
		case 51: // authentication header
			if len(rest) < 8 {
				return false
			}
			n := (int(rest[1]) + 2) * 4
			if n > len(rest) {
				return false
			}
			next, rest = rest[0], rest[n:]
		default:
			p.proto, p.payload = next, rest
			return true
		}
	}
	return false
}

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// tcpSegment is a decoded TCP header.
type tcpSegment struct {
	sport, dport uint16
	seq, ack     uint32
	flags        uint8
	window       uint16
	wscale       int8 // window scale option, -1 when absent
	payload      []byte
}

// decodeTCP decodes a TCP header and the window-scale option.
func decodeTCP(b []byte, t *tcpSegment) bool {
	if len(b) < 20 {
		return false
	}
	off := int(b[12]>>4) * 4
	if off < 20 || off > len(b) {
		return false
	}
	t.sport, t.dport = binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:])
	t.seq, t.ack = binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])
	t.flags = b[13]
	t.window = binary.BigEndian.Uint16(b[14:])
	t.wscale = -1
	if t.flags&tcpSYN != 0 {
		opts := b[20:off]
		for len(opts) > 0 {
			kind := opts[0]
			if kind == 0 {
				break
			}
			if kind == 1 {
				opts = opts[1:]
				continue
			}
			if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
				break
			}
			if kind == 3 && opts[1] == 3 {
				t.wscale = int8(min(opts[2], 14))
			}
			opts = opts[opts[1]:]
		}
	}
	t.payload = b[off:]
	return true
}

// udpDatagram is a decoded UDP header.
type udpDatagram struct {
	sport, dport uint16
	payload      []byte
}

// decodeUDP decodes a UDP header; the payload is cut to the UDP length.
func decodeUDP(b []byte, u *udpDatagram) bool {
	if len(b) < 8 {
		return false
	}
	u.sport, u.dport = binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:])
	n := int(binary.BigEndian.Uint16(b[4:]))
	if n < 8 {
		return false
	}
	if n > len(b) {
		n = len(b)
	}
	u.payload = b[8:n]
	return true
}

// icmpMessage is a decoded ICMP or ICMPv6 message: echo identifiers, and the
// target of an IPv6 neighbour solicitation or advertisement.
type icmpMessage struct {
	typ, code uint8
	id, seq   uint16
	csum      uint16
	target    ipaddr
}

// ICMP types the detectors use.
const (
	icmpEchoReply     = 0
	icmpEchoRequest   = 8
	icmp6EchoRequest  = 128
	icmp6EchoReply    = 129
	icmp6NeighborSol  = 135
	icmp6NeighborAdv  = 136
	icmp6TargetOffset = 8
)

// decodeICMP decodes the fixed part of an ICMP (v6 false) or ICMPv6 message.
func decodeICMP(b []byte, v6 bool, m *icmpMessage) bool {
	if len(b) < 8 {
		return false
	}
	m.typ, m.code = b[0], b[1]
	m.csum = binary.BigEndian.Uint16(b[2:])
	m.id, m.seq = binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	m.target = ipaddr{}
	if v6 && (m.typ == icmp6NeighborSol || m.typ == icmp6NeighborAdv) {
		if len(b) < icmp6TargetOffset+16 {
			return false
		}
		m.target = ipaddr(b[icmp6TargetOffset : icmp6TargetOffset+16])
	}
	return true
}

// dhcpMessage is the part of a DHCPv4 message the detectors use.
type dhcpMessage struct {
	op        uint8
	xid       uint32
	yiaddr    ipaddr
	chaddr    mac
	msgType   uint8
	serverID  ipaddr
	requested ipaddr
}

// DHCP message types.
const (
	dhcpOffer   = 2
	dhcpDecline = 4
	dhcpAck     = 5
)

// decodeDHCP decodes a BOOTP/DHCPv4 message and its message-type, server
// identifier and requested-address options.
func decodeDHCP(b []byte, d *dhcpMessage) bool {
	if len(b) < 240 || binary.BigEndian.Uint32(b[236:]) != 0x63825363 {
		return false
	}
	d.op = b[0]
	d.xid = binary.BigEndian.Uint32(b[4:])
	d.yiaddr = ipv4At(b[16:20])
	copy(d.chaddr[:], b[28:34])
	d.msgType, d.serverID, d.requested = 0, ipaddr{}, ipaddr{}
	opts := b[240:]
	for len(opts) > 0 {
		code := opts[0]
		if code == 0 {
			opts = opts[1:]
			continue
		}
		if code == 255 || len(opts) < 2 || int(opts[1])+2 > len(opts) {
			break
		}
		v := opts[2 : 2+int(opts[1])]
		switch {
		case code == 53 && len(v) == 1:
			d.msgType = v[0]
		case code == 54 && len(v) == 4:
			d.serverID = ipv4At(v)
		case code == 50 && len(v) == 4:
			d.requested = ipv4At(v)
		}
		opts = opts[2+len(v):]
	}
	return d.msgType != 0
}

// httpRequestHeader returns the value of the first header named in names (lower
// case) in an HTTP/1.x request that starts at the beginning of payload. Only the
// header block in payload is searched: requests split across segments are not
// reassembled.
func httpRequestHeader(payload []byte, names [][]byte) ([]byte, bool) {
	// A request line starts with an upper-case method and a space.
	i := 0
	for i < len(payload) && i < 16 && payload[i] >= 'A' && payload[i] <= 'Z' {
		i++
	}
	if i < 3 || i >= len(payload) || payload[i] != ' ' {
		return nil, false
	}
	rest := payload[i:]
	// Skip the request line.
	nl := bytes.IndexByte(rest, '\n')
	if nl < 0 {
		return nil, false
	}
	rest = rest[nl+1:]
	for len(rest) > 0 {
		nl = bytes.IndexByte(rest, '\n')
		line := rest
		if nl >= 0 {
			line, rest = rest[:nl], rest[nl+1:]
		} else {
			rest = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			break // end of headers
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		for _, name := range names {
			if equalFold(line[:colon], name) {
				v := trimSpace(line[colon+1:])
				if len(v) == 0 {
					return nil, false
				}
				return v, true
			}
		}
		if nl < 0 {
			break
		}
	}
	return nil, false
}

// equalFold compares an ASCII header name with a lower-case name.
func equalFold(b, lower []byte) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
