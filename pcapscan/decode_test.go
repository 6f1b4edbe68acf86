package pcapscan

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeLink(t *testing.T) {
	ipPkt := ipv4(ipC, ipX, 64, 1, protoUDP, udpDgram(1, 2, nil))
	sll := func(hatype uint16, proto uint16) []byte {
		b := []byte{0, 0}
		b = binary.BigEndian.AppendUint16(b, hatype)
		b = binary.BigEndian.AppendUint16(b, 6)
		b = append(b, macA[:]...)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint16(b, proto)
		return append(b, ipPkt...)
	}
	sll2 := func(ifindex uint32) []byte {
		b := binary.BigEndian.AppendUint16(nil, etherIPv4)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint32(b, ifindex)
		b = append(b, 0, 1, 0, 6)
		b = append(b, macA[:]...)
		b = append(b, 0, 0)
		return append(b, ipPkt...)
	}
	tests := []struct {
		name    string
		lt      LinkType
		data    []byte
		ok      bool
		etype   uint16
		src     bool
		dst     bool
		seg     segment
		payload []byte
	}{
		{"ethernet", LinkEthernet, eth(macB, macA, etherIPv4, ipPkt), true, etherIPv4, true, true, segment{}, ipPkt},
		{"802.1Q", LinkEthernet, eth(macB, macA, etherIPv4, ipPkt, 42), true, etherIPv4, true, true, segment{vlan: 42}, ipPkt},
		{"QinQ", LinkEthernet, eth(macB, macA, etherIPv4, ipPkt, 100, 42), true, etherIPv4, true, true, segment{vlan: 42, outer: 100}, ipPkt},
		{"802.3 length field", LinkEthernet, eth(macB, macA, 46, make([]byte, 46)), true, 0, true, true, segment{}, make([]byte, 46)},
		{"short ethernet", LinkEthernet, make([]byte, 13), false, 0, false, false, segment{}, nil},
		{"truncated VLAN tag", LinkEthernet, eth(macB, macA, etherVLAN, []byte{0, 1}), false, 0, false, false, segment{}, nil},
		{"SLL", LinkSLL, sll(1, etherIPv4), true, etherIPv4, true, false, segment{}, ipPkt},
		{"SLL non-Ethernet address", LinkSLL, sll(772, etherIPv4), true, etherIPv4, false, false, segment{}, ipPkt},
		{"SLL2", LinkSLL2, sll2(7), true, etherIPv4, true, false, segment{ifindex: 7}, ipPkt},
		{"raw IPv4", LinkRaw, ipPkt, true, etherIPv4, false, false, segment{}, ipPkt},
		{"raw garbage", LinkRaw, []byte{0x20}, false, 0, false, false, segment{}, nil},
		{"IPv6 link type", LinkIPv6, ipv6(ip4("2001:db8::1"), ip4("2001:db8::2"), 64, 59, nil), true, etherIPv6, false, false, segment{}, nil},
		{"BSD null, host order", LinkNull, append([]byte{2, 0, 0, 0}, ipPkt...), true, etherIPv4, false, false, segment{}, ipPkt},
		{"OpenBSD loop", LinkLoop, append([]byte{0, 0, 0, 24}, ipPkt...), true, etherIPv6, false, false, segment{}, ipPkt},
		{"unknown link type", LinkType(147), ipPkt, false, 0, false, false, segment{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f frame
			ok := decodeLink(tt.lt, tt.data, &f)
			require.Equal(t, tt.ok, ok)
			if !ok {
				return
			}
			assert.Equal(t, tt.etype, f.etype)
			assert.Equal(t, tt.src, f.hasSrc)
			assert.Equal(t, tt.dst, f.hasDst)
			if tt.src {
				assert.Equal(t, macA, f.src)
			}
			assert.Equal(t, tt.seg, f.seg)
			if tt.payload != nil {
				assert.Equal(t, tt.payload, f.payload)
			}
		})
	}
}

func TestDecodeARP(t *testing.T) {
	var a arpPacket
	require.True(t, decodeARP(arpMsg(2, macA, ipX, macC, ipC), &a))
	assert.Equal(t, arpPacket{op: 2, sha: macA, spa: toIP(ipX), tha: macC, tpa: toIP(ipC)}, a)
	bad := arpMsg(1, macA, ipX, macC, ipC)
	bad[5] = 16 // IPv6-sized protocol addresses
	assert.False(t, decodeARP(bad, &a))
	assert.False(t, decodeARP(arpMsg(1, macA, ipX, macC, ipC)[:27], &a))
}

func TestDecodeIP(t *testing.T) {
	var p ipPacket
	raw := ipv4(ipC, ipX, 63, 4242, protoTCP, []byte("payload"))
	padded := append(raw, 0, 0, 0, 0) // Ethernet padding
	require.True(t, decodeIPv4(padded, &p))
	assert.Equal(t, []byte("payload"), p.payload, "cut to the total length")
	assert.Equal(t, ipC, p.src.netip())
	assert.Equal(t, ipX, p.dst.netip())
	assert.Equal(t, uint8(63), p.ttl)
	assert.Equal(t, uint16(4242), p.id)
	assert.False(t, p.later)
	frag := ipv4(ipC, ipX, 64, 1, protoUDP, []byte("xx"))
	binary.BigEndian.PutUint16(frag[6:], 10)
	require.True(t, decodeIPv4(frag, &p))
	assert.True(t, p.later)
	assert.False(t, decodeIPv4(raw[:19], &p))
	badIHL := append([]byte(nil), raw...)
	badIHL[0] = 0x4f // 60-byte header in a 27-byte packet
	assert.False(t, decodeIPv4(badIHL, &p))

	// IPv6 with a hop-by-hop header and a fragment header before UDP.
	src, dst := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	ext := []byte{44, 0, 1, 4, 0, 0, 0, 0} // hop-by-hop, next = fragment
	ext = append(ext, protoUDP, 0, 0, 0, 0, 0, 0, 1)
	require.True(t, decodeIPv6(ipv6(src, dst, 64, 0, append(ext, udpDgram(1, 2, []byte("u"))...)), &p))
	assert.Equal(t, uint8(protoUDP), p.proto)
	assert.Equal(t, src, p.src.netip())
	assert.Equal(t, udpDgram(1, 2, []byte("u")), p.payload)
	assert.False(t, decodeIPv6(ipv6(src, dst, 64, 0, []byte{44, 0}), &p), "truncated extension header")
}

func TestDecodeTransport(t *testing.T) {
	var tc tcpSegment
	seg := tcpSeg(1234, 443, 100, 200, tcpSYN, nil)
	seg[12] = 7 << 4
	seg = append(seg, 1, 3, 3, 7, 0, 0, 0, 0) // NOP, window scale 7, padding
	require.True(t, decodeTCP(seg, &tc))
	assert.Equal(t, int8(7), tc.wscale)
	assert.Equal(t, uint16(1234), tc.sport)
	assert.Equal(t, uint32(100), tc.seq)
	assert.Empty(t, tc.payload)
	seg[12] = 15 << 4 // data offset beyond the segment
	assert.False(t, decodeTCP(seg, &tc))

	var u udpDatagram
	d := udpDgram(68, 67, []byte("dhcp"))
	require.True(t, decodeUDP(append(d, 0, 0), &u))
	assert.Equal(t, []byte("dhcp"), u.payload)
	binary.BigEndian.PutUint16(d[4:], 3)
	assert.False(t, decodeUDP(d, &u))

	var m icmpMessage
	require.True(t, decodeICMP(icmpEcho(0, 9, 10), false, &m))
	assert.Equal(t, icmpMessage{typ: 0, id: 9, seq: 10}, m)
	assert.False(t, decodeICMP([]byte{136, 0, 0, 0, 0, 0, 0, 0, 1}, true, &m), "NA without a target")
}

func TestDecodeDHCP(t *testing.T) {
	var d dhcpMessage
	require.True(t, decodeDHCP(dhcpMsg(2, dhcpAck, 77, macC, ipX, ipGW, netip.Addr{}), &d))
	assert.Equal(t, uint8(dhcpAck), d.msgType)
	assert.Equal(t, ipGW, d.serverID.netip())
	assert.Equal(t, ipX, d.yiaddr.netip())
	assert.Equal(t, macC, d.chaddr)
	assert.Equal(t, uint32(77), d.xid)
	msg := dhcpMsg(1, dhcpDecline, 1, macC, netip.Addr{}, netip.Addr{}, ipX)
	require.True(t, decodeDHCP(msg, &d))
	assert.Equal(t, ipX, d.requested.netip())
	msg[len(msg)-6] = 200 // option 50 claims more bytes than remain
	assert.True(t, decodeDHCP(msg, &d))
	assert.True(t, d.requested.isZero())
	assert.False(t, decodeDHCP(make([]byte, 240), &d), "no magic cookie")
}

func TestHTTPRequestHeader(t *testing.T) {
	names := [][]byte{[]byte("x-request-id"), []byte("x-correlation-id")}
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: abc-123\r\n\r\n", "abc-123", true},
		{"POST /x HTTP/1.1\r\nx-correlation-id:\t 9 \r\n\r\nbody", "9", true},
		{"GET / HTTP/1.1\nX-REQUEST-ID: lf-only\n\n", "lf-only", true},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nX-Request-ID: in-body", "", false},
		{"HTTP/1.1 200 OK\r\nX-Request-ID: response\r\n\r\n", "", false},
		{"GET / HTTP/1.1\r\nX-Request-ID:\r\n\r\n", "", false},
		{"get / HTTP/1.1\r\nX-Request-ID: lower-method\r\n\r\n", "", false},
		{"GET / HTTP/1.1\r\nX-Request-ID: cut", "cut", true},
	}
	for _, tt := range tests {
		v, ok := httpRequestHeader([]byte(tt.in), names)
		assert.Equal(t, tt.ok, ok, "%q", tt.in)
		assert.Equal(t, tt.want, string(v), "%q", tt.in)
	}
}
