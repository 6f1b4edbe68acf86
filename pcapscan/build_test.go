package pcapscan

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Frame builders for tests and the benchmark generator. They write correct
// headers (lengths, IHL, data offsets); checksums are left zero, which the
// scanner does not check.

var (
	macA  = mac{0x02, 0, 0, 0, 0, 0x0a}
	macB  = mac{0x02, 0, 0, 0, 0, 0x0b}
	macC  = mac{0x02, 0, 0, 0, 0, 0x0c}
	macGW = mac{0x02, 0, 0, 0, 0, 0x01}
	bcast = mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func ip4(s string) netip.Addr { return netip.MustParseAddr(s) }

// eth builds an Ethernet frame, with 802.1Q tags (outermost first) when vlans
// are given.
func eth(dst, src mac, etype uint16, payload []byte, vlans ...uint16) []byte {
	b := make([]byte, 0, 18+4*len(vlans)+len(payload))
	b = append(b, dst[:]...)
	b = append(b, src[:]...)
	for i, v := range vlans {
		tpid := uint16(etherVLAN)
		if i == 0 && len(vlans) > 1 {
			tpid = etherQinQ
		}
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, v)
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, payload...)
}

func arpMsg(op uint16, sha mac, spa netip.Addr, tha mac, tpa netip.Addr) []byte {
	b := []byte{0, 1, 8, 0, 6, 4, 0, byte(op)}
	b = append(b, sha[:]...)
	b = append(b, spa.AsSlice()...)
	b = append(b, tha[:]...)
	return append(b, tpa.AsSlice()...)
}

// arpFrame builds an ARP frame: requests are broadcast unless dst is given.
func arpFrame(op uint16, sha mac, spa, tpa netip.Addr, tha mac) []byte {
	dst := bcast
	if op == 2 || tha != (mac{}) {
		dst = tha
	}
	return eth(dst, sha, etherARP, arpMsg(op, sha, spa, tha, tpa))
}

func ipv4(src, dst netip.Addr, ttl uint8, id uint16, proto uint8, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(b[4:], id)
	b[6] = 0x40
	b[8], b[9] = ttl, proto
	copy(b[12:16], src.AsSlice())
	copy(b[16:20], dst.AsSlice())
	return append(b, payload...)
}

func ipv6(src, dst netip.Addr, hops uint8, proto uint8, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6], b[7] = proto, hops
	copy(b[8:24], src.AsSlice())
	copy(b[24:40], dst.AsSlice())
	return append(b, payload...)
}

func tcpSeg(sport, dport uint16, seq, ack uint32, flags uint8, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12] = 5 << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 65535)
	return append(b, payload...)
}

func udpDgram(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func icmpEcho(typ uint8, id, seq uint16) []byte {
	b := []byte{typ, 0, 0, 0, 0, 0, 0, 0, 'p', 'i', 'n', 'g'}
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	return b
}

func dhcpMsg(op, msgType uint8, xid uint32, chaddr mac, yiaddr, server, requested netip.Addr) []byte {
	b := make([]byte, 240)
	b[0], b[1], b[2] = op, 1, 6
	binary.BigEndian.PutUint32(b[4:], xid)
	if yiaddr.IsValid() {
		copy(b[16:20], yiaddr.AsSlice())
	}
	copy(b[28:34], chaddr[:])
	binary.BigEndian.PutUint32(b[236:], 0x63825363)
	b = append(b, 53, 1, msgType)
	if server.IsValid() {
		b = append(b, 54, 4)
		b = append(b, server.AsSlice()...)
	}
	if requested.IsValid() {
		b = append(b, 50, 4)
		b = append(b, requested.AsSlice()...)
	}
	return append(b, 255)
}

// capture accumulates frames and renders them as a pcap file.
type capture struct {
	t      testing.TB
	start  time.Time
	frames []Packet
}

func newCapture(t testing.TB) *capture {
	return &capture{t: t, start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// add appends a frame at offset at from the capture's start.
func (c *capture) add(at time.Duration, data []byte) {
	c.frames = append(c.frames, Packet{Data: data, Length: len(data), Time: c.start.Add(at),
		LinkType: LinkEthernet, Frame: uint64(len(c.frames) + 1)})
}

func (c *capture) pcap() []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkEthernet, 0)
	require.NoError(c.t, err)
	for _, p := range c.frames {
		require.NoError(c.t, w.WritePacket(p.Time, p.Data, p.Length))
	}
	require.NoError(c.t, w.Flush())
	return buf.Bytes()
}

// scan runs a scanner with o over the capture and returns the findings.
func (c *capture) scan(o Options) []Finding {
	c.t.Helper()
	var out []Finding
	require.NoError(c.t, New(o).Scan(bytes.NewReader(c.pcap()), func(f Finding) { out = append(out, f) }))
	return out
}

func ofKind(fs []Finding, k Kind) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Kind == k {
			out = append(out, f)
		}
	}
	return out
}

func kinds(fs []Finding) []Kind {
	var out []Kind
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func macStrings(f Finding) []string {
	var out []string
	for _, m := range f.MACs {
		out = append(out, m.String())
	}
	return out
}

func readerOf(c *capture) *bytes.Reader { return bytes.NewReader(c.pcap()) }
