package pcapscan

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	ipX  = ip4("192.0.2.10")
	ipC  = ip4("192.0.2.30")
	ipGW = ip4("192.0.2.1")
	ipR1 = ip4("203.0.113.7")
	ipR2 = ip4("203.0.113.8")
)

const ms = time.Millisecond

func TestARPConflictPatterns(t *testing.T) {
	tests := []struct {
		name     string
		build    func(c *capture)
		severity Severity
		detail   string
		frames   []uint64
	}{
		{
			name: "two answers to one request",
			build: func(c *capture) {
				c.add(0, arpFrame(1, macC, ipC, ipX, mac{}))
				c.add(1*ms, arpFrame(2, macA, ipX, ipC, macC))
				c.add(2*ms, arpFrame(2, macB, ipX, ipC, macC))
			},
			severity: Critical, detail: "two answers to one request", frames: []uint64{2, 3},
		},
		{
			name: "flip-flop",
			build: func(c *capture) {
				c.add(0, arpFrame(2, macA, ipX, ipC, macC))
				c.add(10*time.Second, arpFrame(2, macB, ipX, ipC, macC))
				c.add(20*time.Second, arpFrame(2, macA, ipX, ipC, macC))
			},
			severity: Critical, detail: "flip-flop", frames: []uint64{1, 2, 3},
		},
		{
			name: "gratuitous ARP from a second host",
			build: func(c *capture) {
				c.add(0, arpFrame(2, macA, ipX, ipC, macC))
				c.add(30*time.Second, arpFrame(1, macB, ipX, ipX, mac{}))
			},
			severity: Warning, detail: "gratuitous ARP from a second host", frames: []uint64{1, 2},
		},
		{
			name: "moved once",
			build: func(c *capture) {
				c.add(0, arpFrame(1, macA, ipX, ipC, mac{}))
				c.add(60*time.Second, arpFrame(1, macB, ipX, ipC, mac{}))
				c.add(70*time.Second, arpFrame(1, macB, ipX, ipC, mac{}))
			},
			severity: Info, detail: "address moved", frames: []uint64{1, 2, 3},
		},
		{
			name: "second answer after the reply window",
			build: func(c *capture) {
				c.add(0, arpFrame(1, macC, ipC, ipX, mac{}))
				c.add(1*ms, arpFrame(2, macA, ipX, ipC, macC))
				c.add(3*time.Second, arpFrame(2, macB, ipX, ipC, macC))
			},
			severity: Info, detail: "address moved", frames: []uint64{2, 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCapture(t)
			tt.build(c)
			got := ofKind(c.scan(Options{}), ARPConflict)
			require.Len(t, got, 1)
			f := got[0]
			assert.Equal(t, tt.severity, f.Severity, f.Detail)
			assert.Contains(t, f.Detail, tt.detail)
			assert.Equal(t, ipX, f.IP)
			assert.Equal(t, []string{"02:00:00:00:00:0a", "02:00:00:00:00:0b"}, macStrings(f))
			assert.Equal(t, tt.frames, f.Frames)
			require.Len(t, f.Evidence, 2)
			assert.Equal(t, f.MACs[0], f.Evidence[0].MAC)
			assert.Equal(t, c.frames[f.Frames[0]-1].Time, f.First)
			assert.Equal(t, c.frames[f.Frames[len(f.Frames)-1]-1].Time, f.Last)
			assert.Equal(t, time.UTC, f.First.Location())
		})
	}
}

func TestARPConflictOutsideWindowOrVLAN(t *testing.T) {
	c := newCapture(t)
	c.add(0, arpFrame(2, macA, ipX, ipC, macC))
	c.add(6*time.Minute, arpFrame(2, macB, ipX, ipC, macC)) // beyond the 5-minute window
	assert.Empty(t, ofKind(c.scan(Options{}), ARPConflict))
	// The same two claims count together with a longer window.
	assert.Len(t, ofKind(c.scan(Options{Window: 10 * time.Minute}), ARPConflict), 1)

	c = newCapture(t)
	c.add(0, eth(bcast, macA, etherARP, arpMsg(1, macA, ipX, mac{}, ipC), 10))
	c.add(ms, eth(bcast, macB, etherARP, arpMsg(1, macB, ipX, mac{}, ipC), 20))
	assert.Empty(t, c.scan(Options{}), "one address on two VLANs is two addresses")
	c.add(2*ms, eth(bcast, macC, etherARP, arpMsg(1, macC, ipX, mac{}, ipC), 100, 20))
	c.add(3*ms, eth(bcast, macA, etherARP, arpMsg(1, macA, ipX, mac{}, ipC), 20))
	got := ofKind(c.scan(Options{}), ARPConflict)
	require.Len(t, got, 1, "QinQ 100/20 is another segment than plain VLAN 20")
	assert.Equal(t, uint16(20), got[0].VLAN)
	assert.Equal(t, []uint64{2, 4}, got[0].Frames)
}

func TestDADProbeAnswered(t *testing.T) {
	c := newCapture(t)
	zero := netip.IPv4Unspecified()
	c.add(0, arpFrame(1, macB, zero, ipX, mac{}))
	c.add(5*ms, arpFrame(2, macA, ipX, zero, macB))
	got := c.scan(Options{})
	d := ofKind(got, DADProbeAnswered)
	require.Len(t, d, 1)
	assert.Equal(t, Critical, d[0].Severity)
	assert.Equal(t, ipX, d[0].IP)
	assert.Equal(t, []string{"02:00:00:00:00:0a", "02:00:00:00:00:0b"}, macStrings(d[0]))
	assert.Equal(t, []uint64{1, 2}, d[0].Frames)

	// Unanswered probes, and an answer after the probe window, are fine.
	c = newCapture(t)
	c.add(0, arpFrame(1, macB, zero, ipX, mac{}))
	c.add(time.Second, arpFrame(1, macB, zero, ipX, mac{}))
	c.add(10*time.Second, arpFrame(1, macA, ipX, ipC, mac{}))
	assert.Empty(t, ofKind(c.scan(Options{}), DADProbeAnswered))

	// Two hosts probing for one address at once: each answers the other.
	c = newCapture(t)
	c.add(0, arpFrame(1, macA, zero, ipX, mac{}))
	c.add(500*ms, arpFrame(1, macB, zero, ipX, mac{}))
	d = ofKind(c.scan(Options{}), DADProbeAnswered)
	require.Len(t, d, 1)
	assert.Equal(t, []string{"02:00:00:00:00:0a", "02:00:00:00:00:0b"}, macStrings(d[0]))
	assert.Equal(t, []uint64{1, 2}, d[0].Frames)

	// IPv6 DAD: NS from :: answered by an NA for the target.
	c = newCapture(t)
	target := netip.MustParseAddr("2001:db8::10")
	ns := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, target.AsSlice()...)
	na := append([]byte{136, 0, 0, 0, 0x20, 0, 0, 0}, target.AsSlice()...)
	c.add(0, eth(mac{0x33, 0x33, 0xff, 0, 0, 0x10}, macB, etherIPv6,
		ipv6(netip.IPv6Unspecified(), netip.MustParseAddr("ff02::1:ff00:10"), 255, protoICMPv6, ns)))
	c.add(3*ms, eth(mac{0x33, 0x33, 0, 0, 0, 1}, macA, etherIPv6,
		ipv6(netip.MustParseAddr("fe80::a"), netip.MustParseAddr("ff02::1"), 255, protoICMPv6, na)))
	d = ofKind(c.scan(Options{}), DADProbeAnswered)
	require.Len(t, d, 1)
	assert.Equal(t, target, d[0].IP)
	assert.Contains(t, d[0].Detail, "IPv6")
}

func TestIPMACConflict(t *testing.T) {
	c := newCapture(t)
	c.add(0, eth(macC, macA, etherIPv4, ipv4(ipX, ipC, 64, 1, protoUDP, udpDgram(1000, 53, []byte("a")))))
	c.add(ms, eth(macC, macB, etherIPv4, ipv4(ipX, ipC, 64, 9, protoUDP, udpDgram(1000, 53, []byte("b")))))
	c.add(2*ms, eth(macC, macA, etherIPv4, ipv4(ipX, ipC, 64, 2, protoUDP, udpDgram(1000, 53, []byte("c")))))
	got := ofKind(c.scan(Options{}), IPMACConflict)
	require.Len(t, got, 1)
	assert.Equal(t, Critical, got[0].Severity)
	assert.Equal(t, []uint64{1, 2, 3}, got[0].Frames)
	assert.Equal(t, 3, got[0].Count)
}

func TestIPMACConflictSuppression(t *testing.T) {
	// A routed copy (TTL 63 behind a router) and the same packet seen on both
	// sides of a router (same IP ID, TTL one lower, other MAC) are no conflict.
	c := newCapture(t)
	p := ipv4(ipX, ipC, 64, 77, protoUDP, udpDgram(1000, 53, []byte("q")))
	c.add(0, eth(macC, macA, etherIPv4, p))
	c.add(ms, eth(macC, macB, etherIPv4, ipv4(ipX, ipC, 63, 77, protoUDP, udpDgram(1000, 53, []byte("q")))))
	c.add(2*ms, eth(macC, macGW, etherIPv4, ipv4(ipX, ipC, 61, 1234, protoUDP, udpDgram(1000, 53, []byte("r")))))
	// An exact copy from the same MAC (captured twice).
	c.add(2*ms+10, eth(macC, macA, etherIPv4, p))
	sc := New(Options{})
	var got []Finding
	require.NoError(t, sc.Scan(readerOf(c), func(f Finding) { got = append(got, f) }))
	assert.Empty(t, got)
	assert.Equal(t, uint64(2), sc.Stats().Duplicates)
}

func TestEchoMultiResponder(t *testing.T) {
	c := newCapture(t)
	c.add(0, eth(bcast, macC, etherIPv4, ipv4(ipC, ipX, 64, 1, protoICMP, icmpEcho(8, 7, 1))))
	c.add(ms, eth(macC, macA, etherIPv4, ipv4(ipX, ipC, 64, 100, protoICMP, icmpEcho(0, 7, 1))))
	c.add(2*ms, eth(macC, macB, etherIPv4, ipv4(ipX, ipC, 64, 200, protoICMP, icmpEcho(0, 7, 1))))
	got := c.scan(Options{})
	e := ofKind(got, EchoMultiResponder)
	require.Len(t, e, 1)
	assert.Equal(t, Critical, e[0].Severity)
	assert.Equal(t, []uint64{2, 3}, e[0].Frames)
	assert.Equal(t, "echo-reply", e[0].Evidence[0].Events[0].What)
	assert.Len(t, ofKind(got, IPMACConflict), 1)

	// Different echoes answered by different MACs: a warning.
	c = newCapture(t)
	c.add(0, eth(macC, macA, etherIPv4, ipv4(ipX, ipC, 64, 100, protoICMP, icmpEcho(0, 7, 1))))
	c.add(time.Second, eth(macC, macB, etherIPv4, ipv4(ipX, ipC, 64, 200, protoICMP, icmpEcho(0, 7, 2))))
	e = ofKind(c.scan(Options{}), EchoMultiResponder)
	require.Len(t, e, 1)
	assert.Equal(t, Warning, e[0].Severity)
}

// gatewayTakeover builds the pattern of the public arppoison capture: traffic
// to remote hosts through the gateway's MAC, a MAC claiming the gateway's
// address, then the same traffic through that MAC.
func gatewayTakeover(c *capture, flaps bool) {
	victim := ip4("192.0.2.107")
	for i, r := range []netip.Addr{ipR1, ipR2} {
		at := time.Duration(i) * 10 * ms
		c.add(at, eth(macGW, macC, etherIPv4, ipv4(victim, r, 64, uint16(i), protoUDP, udpDgram(5000, 53, nil))))
		c.add(at+ms, eth(macC, macGW, etherIPv4, ipv4(r, victim, 57, uint16(i), protoUDP, udpDgram(53, 5000, nil))))
	}
	c.add(time.Second, eth(macC, macA, etherARP, arpMsg(2, macA, ipGW, macC, victim))) // unsolicited
	for i, r := range []netip.Addr{ipR1, ipR2} {
		at := 2*time.Second + time.Duration(i)*10*ms
		c.add(at, eth(macA, macC, etherIPv4, ipv4(victim, r, 64, uint16(10+i), protoUDP, udpDgram(5000, 53, nil))))
		c.add(at+ms, eth(macC, macA, etherIPv4, ipv4(r, victim, 57, uint16(10+i), protoUDP, udpDgram(53, 5000, nil))))
		if flaps {
			c.add(at+2*ms, eth(macC, macGW, etherIPv4, ipv4(r, victim, 57, uint16(20+i), protoUDP, udpDgram(53, 5000, nil))))
		}
	}
}

func TestARPSpoofGatewayTakeover(t *testing.T) {
	c := newCapture(t)
	gatewayTakeover(c, false)
	got := c.scan(Options{})
	assert.Equal(t, []Kind{ARPSpoof}, kinds(got))
	f := got[0]
	assert.Equal(t, Critical, f.Severity)
	assert.Equal(t, ipGW, f.IP)
	assert.Equal(t, []string{"02:00:00:00:00:01", "02:00:00:00:00:0a"}, macStrings(f))
	assert.ElementsMatch(t, []netip.Addr{ipR1, ipR2}, f.Addrs)
	assert.Contains(t, f.Frames, uint64(5), "the claim")
	assert.Contains(t, f.Frames, uint64(6), "the first packet through the new MAC")

	// Traffic that keeps flapping between two MACs is two routers, not a
	// takeover.
	c = newCapture(t)
	gatewayTakeover(c, true)
	assert.Empty(t, ofKind(c.scan(Options{}), ARPSpoof))
}

func TestARPSpoofAddressTakeover(t *testing.T) {
	c := newCapture(t)
	c.add(0, arpFrame(1, macA, ipX, ipC, mac{}))   // A holds X
	c.add(ms, arpFrame(1, macB, ipR1, ipC, mac{})) // B holds its own address
	c.add(2*ms, arpFrame(2, macB, ipX, ipC, macC)) // and claims X
	got := ofKind(c.scan(Options{}), ARPSpoof)
	require.Len(t, got, 1)
	assert.Equal(t, Warning, got[0].Severity)
	assert.Equal(t, ipX, got[0].IP)
	assert.Equal(t, []string{"02:00:00:00:00:0a", "02:00:00:00:00:0b"}, macStrings(got[0]))
}

func httpGet(id string) []byte {
	return fmt.Appendf(nil, "GET /pay HTTP/1.1\r\nHost: svc\r\nx-request-id: %s\r\nAccept: */*\r\n\r\n", id)
}

// hostMAC gives each test address its own MAC.
func hostMAC(a netip.Addr) mac {
	switch a {
	case ipX:
		return macA
	case ipC:
		return macC
	}
	return macB
}

func tcpFrame(src, dst netip.Addr, sport, dport uint16, seq, ack uint32, flags uint8, payload []byte, id uint16) []byte {
	return eth(hostMAC(dst), hostMAC(src), etherIPv4, ipv4(src, dst, 64, id, protoTCP, tcpSeg(sport, dport, seq, ack, flags, payload)))
}

func TestRequestIDRepeat(t *testing.T) {
	c := newCapture(t)
	for i := range 4 {
		c.add(time.Duration(i)*time.Second, tcpFrame(ipC, ipX, uint16(40000+i), 80, 1000, 1, tcpACK|tcpPSH, httpGet("req-42"), uint16(i)))
	}
	c.add(5*time.Second, tcpFrame(ipC, ipX, 40010, 80, 1000, 1, tcpACK|tcpPSH, httpGet("req-43"), 10))
	got := c.scan(Options{})
	assert.Equal(t, []Kind{RequestIDRepeat}, kinds(got))
	f := got[0]
	assert.Equal(t, "req-42", f.RequestID)
	assert.Equal(t, 4, f.Count)
	assert.Equal(t, ipX, f.IP)
	assert.Equal(t, "192.0.2.30:40000-192.0.2.10:80", f.Flow.String())
	assert.Equal(t, []uint64{1, 2, 3, 4}, f.Frames)

	// Fewer than the threshold, or spread beyond the window: no finding.
	assert.Empty(t, c.scan(Options{RequestIDRepeats: 5}))
	assert.Empty(t, c.scan(Options{RequestIDWindow: 1500 * ms}))
	// Another header name.
	c = newCapture(t)
	for i := range 3 {
		c.add(time.Duration(i)*time.Second, tcpFrame(ipC, ipX, uint16(40000+i), 80, 1000, 1, tcpACK,
			[]byte("POST /x HTTP/1.1\r\nX-Correlation-Id: abc\r\n\r\n"), uint16(i)))
	}
	assert.Empty(t, c.scan(Options{}))
	assert.Len(t, c.scan(Options{RequestIDHeaders: []string{"X-Correlation-ID"}}), 1)
}

func TestRequestIDRetransmissionNotCounted(t *testing.T) {
	c := newCapture(t)
	for i := range 4 {
		// The same segment four times: TCP retransmissions, not retries.
		c.add(time.Duration(i)*time.Second, tcpFrame(ipC, ipX, 40000, 80, 1000, 1, tcpACK|tcpPSH, httpGet("r1"), uint16(i)))
	}
	got := c.scan(Options{})
	assert.Empty(t, ofKind(got, RequestIDRepeat))
	r := ofKind(got, TCPRetransmissions)
	require.Len(t, r, 1)
	assert.Equal(t, 3, r[0].Count)
}

func handshake(c *capture, at time.Duration, isn uint32) {
	c.add(at, tcpFrame(ipC, ipX, 40000, 443, isn, 0, tcpSYN, nil, 1))
	c.add(at+ms, tcpFrame(ipX, ipC, 443, 40000, 9000, isn+1, tcpSYN|tcpACK, nil, 2))
	c.add(at+2*ms, tcpFrame(ipC, ipX, 40000, 443, isn+1, 9001, tcpACK, nil, 3))
}

func TestTCPRestart(t *testing.T) {
	tests := []struct {
		name  string
		close uint8 // flags of the closing segments, 0 for none
		want  int
	}{
		{"reset then reconnect", tcpRST | tcpACK, 1},
		{"reconnect on an open connection", 0, 1},
		{"reconnect after FIN both ways", tcpFIN | tcpACK, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCapture(t)
			handshake(c, 0, 100)
			c.add(10*ms, tcpFrame(ipC, ipX, 40000, 443, 101, 9001, tcpACK|tcpPSH, []byte("hello"), 4))
			if tt.close != 0 {
				c.add(20*ms, tcpFrame(ipC, ipX, 40000, 443, 106, 9001, tt.close, nil, 5))
				c.add(21*ms, tcpFrame(ipX, ipC, 443, 40000, 9001, 107, tt.close, nil, 6))
			}
			c.add(time.Second, tcpFrame(ipC, ipX, 40000, 443, 5000, 0, tcpSYN, nil, 7))
			got := ofKind(c.scan(Options{}), TCPRestart)
			require.Len(t, got, tt.want)
			if tt.want > 0 {
				assert.Equal(t, "192.0.2.30:40000-192.0.2.10:443", got[0].Flow.String())
				assert.Equal(t, []uint64{uint64(len(c.frames))}, got[0].Frames)
			}
		})
	}
	// A SYN sent again (a server that does not answer) is no restart: it is
	// a retransmission.
	c := newCapture(t)
	for i := range 4 {
		c.add(time.Duration(i)*time.Second, tcpFrame(ipC, ipX, 40000, 443, 100, 0, tcpSYN, nil, uint16(i+1)))
	}
	got := c.scan(Options{})
	require.Equal(t, []Kind{TCPRetransmissions}, kinds(got))
	assert.Equal(t, 3, got[0].Count)
	assert.Equal(t, []uint64{2, 3, 4}, got[0].Frames)
}

func TestTCPRetransmissionsSeverity(t *testing.T) {
	// Warning from a tenth of the flow's segments retransmitted, info below.
	for _, tt := range []struct {
		segments int
		want     Severity
	}{{10, Warning}, {27, Warning}, {28, Info}, {100, Info}} {
		c := newCapture(t)
		handshake(c, 0, 1000)
		seq := uint32(1001)
		for i := range tt.segments {
			c.add(time.Duration(10+i)*ms, tcpFrame(ipC, ipX, 40000, 443, seq, 9001, tcpACK, make([]byte, 100), uint16(10+i)))
			seq += 100
		}
		for i := range 3 {
			c.add(time.Duration(200+i)*ms, tcpFrame(ipC, ipX, 40000, 443, 1001, 9001, tcpACK, make([]byte, 100), uint16(300+i)))
		}
		r := ofKind(c.scan(Options{}), TCPRetransmissions)
		require.Len(t, r, 1, "%d segments", tt.segments)
		assert.Equal(t, tt.want, r[0].Severity, "3 of %d segments", tt.segments+3)
		assert.Equal(t, fmt.Sprintf("3 of %d segments retransmitted", tt.segments+3), r[0].Detail)
	}
}

func TestTCPSeqRegressionAndRetransmissions(t *testing.T) {
	c := newCapture(t)
	handshake(c, 0, 1000)
	seq := uint32(1001)
	for i := range 4 {
		c.add(time.Duration(10+i)*ms, tcpFrame(ipC, ipX, 40000, 443, seq, 9001, tcpACK, make([]byte, 100), uint16(10+i)))
		seq += 100
	}
	// Out of order: a gap, then the gap filled. Not retransmissions.
	c.add(20*ms, tcpFrame(ipC, ipX, 40000, 443, seq+100, 9001, tcpACK, make([]byte, 100), 20))
	c.add(21*ms, tcpFrame(ipC, ipX, 40000, 443, seq, 9001, tcpACK, make([]byte, 100), 21))
	// A keep-alive.
	c.add(30*ms, tcpFrame(ipC, ipX, 40000, 443, seq+199, 9001, tcpACK, []byte{0}, 22))
	// Three retransmissions of the first segment.
	for i := range 3 {
		c.add(time.Duration(40+i)*ms, tcpFrame(ipC, ipX, 40000, 443, 1001, 9001, tcpACK, make([]byte, 100), uint16(30+i)))
	}
	// Data from before the connection started.
	c.add(50*ms, tcpFrame(ipC, ipX, 40000, 443, 500, 9001, tcpACK, make([]byte, 100), 40))
	got := c.scan(Options{})
	r := ofKind(got, TCPRetransmissions)
	require.Len(t, r, 1)
	assert.Equal(t, 3, r[0].Count)
	assert.Equal(t, []uint64{11, 12, 13}, r[0].Frames)
	assert.Equal(t, Warning, r[0].Severity)
	g := ofKind(got, TCPSeqRegression)
	require.Len(t, g, 1)
	assert.Equal(t, []uint64{14}, g[0].Frames)
}

func TestDHCP(t *testing.T) {
	srv1, srv2 := ip4("192.0.2.1"), ip4("192.0.2.66")
	offer := func(src mac, srv netip.Addr, xid uint32) []byte {
		return eth(bcast, src, etherIPv4, ipv4(srv, ip4("255.255.255.255"), 64, 1, protoUDP,
			udpDgram(67, 68, dhcpMsg(2, dhcpOffer, xid, macC, ipX, srv, netip.Addr{}))))
	}
	c := newCapture(t)
	c.add(0, offer(macA, srv1, 1))
	c.add(ms, offer(macB, srv2, 1))
	c.add(time.Second, eth(bcast, macC, etherIPv4, ipv4(netip.IPv4Unspecified(), ip4("255.255.255.255"), 64, 2, protoUDP,
		udpDgram(68, 67, dhcpMsg(1, dhcpDecline, 1, macC, netip.Addr{}, srv1, ipX)))))
	got := c.scan(Options{})
	require.ElementsMatch(t, []Kind{RogueDHCP, DHCPDecline}, kinds(got))
	got = append(ofKind(got, RogueDHCP), ofKind(got, DHCPDecline)...)
	assert.Equal(t, Critical, got[0].Severity, "both answered one transaction")
	assert.ElementsMatch(t, []netip.Addr{srv1, srv2}, got[0].Addrs)
	assert.Equal(t, srv2, got[0].IP)
	assert.Equal(t, []uint64{1, 2}, got[0].Frames)
	assert.Equal(t, ipX, got[1].IP)
	assert.Equal(t, []string{"02:00:00:00:00:0c"}, macStrings(got[1]))
	assert.Equal(t, Warning, got[1].Severity)

	c = newCapture(t)
	c.add(0, offer(macA, srv1, 1))
	c.add(10*time.Second, offer(macA, srv1, 2))
	assert.Empty(t, c.scan(Options{}))
}

func TestCleanLANHasNoFinding(t *testing.T) {
	c := newCapture(t)
	c.add(0, arpFrame(1, macC, ipC, ipX, mac{}))
	c.add(ms, arpFrame(2, macA, ipX, ipC, macC))
	c.add(2*ms, eth(macA, macC, etherIPv4, ipv4(ipC, ipX, 64, 1, protoICMP, icmpEcho(8, 1, 1))))
	c.add(3*ms, eth(macC, macA, etherIPv4, ipv4(ipX, ipC, 64, 1, protoICMP, icmpEcho(0, 1, 1))))
	handshake(c, 10*ms, 1)
	c.add(20*ms, tcpFrame(ipC, ipX, 40000, 443, 2, 9001, tcpACK|tcpPSH, httpGet("only-once"), 4))
	c.add(30*ms, tcpFrame(ipC, ipX, 40000, 443, 2+uint32(len(httpGet("only-once"))), 9001, tcpFIN|tcpACK, nil, 5))
	sc := New(Options{})
	var got []Finding
	require.NoError(t, sc.Scan(readerOf(c), func(f Finding) { got = append(got, f) }))
	assert.Empty(t, got)
	assert.Equal(t, uint64(len(c.frames)), sc.Stats().Packets)
	assert.Zero(t, sc.Stats().Undecoded)
}

func TestBoundedMemoryEvicts(t *testing.T) {
	// Far more addresses than the tables hold: entries are evicted, their
	// findings still come out, and the scan's memory is what New allocated.
	c := newCapture(t)
	const n = 3000
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		c.add(time.Duration(i)*ms, arpFrame(2, macA, ip, ipC, macC))
		c.add(time.Duration(i)*ms+1, arpFrame(2, macB, ip, ipC, macC))
	}
	sc := New(Options{TableSize: 64})
	var got []Finding
	require.NoError(t, sc.Scan(readerOf(c), func(f Finding) { got = append(got, f) }))
	assert.Len(t, ofKind(got, ARPConflict), n)
	assert.Positive(t, sc.Stats().Evicted)
	assert.LessOrEqual(t, sc.arp.len(), 64)
}

func TestTablesHoldTheirSize(t *testing.T) {
	// Addresses of one subnet, differing only in their last bytes, spread
	// over the whole table: a table of 4096 entries keeps 1000 of them for
	// minutes without evicting any, so that a second MAC showing up for each
	// a minute later is seen as a conflict with the first.
	c := newCapture(t)
	const n = 1000
	for round, m := range []mac{macA, macB} {
		for i := range n {
			ip := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
			at := time.Duration(round)*time.Minute + time.Duration(i)*ms
			c.add(at, eth(macC, m, etherIPv4, ipv4(ip, ipC, 64, uint16(i), protoUDP, udpDgram(1000, 53, []byte("q")))))
		}
	}
	sc := New(Options{})
	var got []Finding
	require.NoError(t, sc.Scan(readerOf(c), func(f Finding) { got = append(got, f) }))
	assert.Len(t, ofKind(got, IPMACConflict), n)
	assert.Zero(t, sc.Stats().Evicted)
}

func TestIPv6ConflictAndEcho(t *testing.T) {
	x6, c6 := netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8::30")
	reply := func(src mac, seq uint16) []byte {
		return eth(macC, src, etherIPv6, ipv6(x6, c6, 64, protoICMPv6, icmpEcho(icmp6EchoReply, 5, seq)))
	}
	c := newCapture(t)
	c.add(0, eth(bcast, macC, etherIPv6, ipv6(c6, x6, 64, protoICMPv6, icmpEcho(icmp6EchoRequest, 5, 1))))
	c.add(ms, reply(macA, 1))
	c.add(2*ms, reply(macB, 1))
	c.add(time.Second, reply(macA, 2))
	got := c.scan(Options{})
	assert.ElementsMatch(t, []Kind{EchoMultiResponder, IPMACConflict}, kinds(got))
	for _, f := range got {
		assert.Equal(t, x6, f.IP)
		assert.Equal(t, Critical, f.Severity, f.Kind)
		assert.Equal(t, []string{"02:00:00:00:00:0a", "02:00:00:00:00:0b"}, macStrings(f))
	}
}

func TestSLL2InterfacesAreSegments(t *testing.T) {
	// tcpdump -i any: one address seen from two MACs on two interfaces is two
	// links, not a conflict; on one interface it is.
	sll2 := func(ifindex uint32, src mac, payload []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, etherARP)
		b = append(b, 0, 0)
		b = binary.BigEndian.AppendUint32(b, ifindex)
		b = append(b, 0, 1, 1, 6)
		b = append(b, src[:]...)
		b = append(b, 0, 0)
		return append(b, payload...)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkSLL2, 0)
	require.NoError(t, err)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, w.WritePacket(at, sll2(3, macA, arpMsg(2, macA, ipX, macC, ipC)), 0))
	require.NoError(t, w.WritePacket(at.Add(ms), sll2(4, macB, arpMsg(2, macB, ipX, macC, ipC)), 0))
	require.NoError(t, w.WritePacket(at.Add(2*ms), sll2(4, macA, arpMsg(2, macA, ipX, macC, ipC)), 0))
	require.NoError(t, w.Flush())
	var got []Finding
	require.NoError(t, New(Options{}).Scan(&buf, func(f Finding) { got = append(got, f) }))
	require.Len(t, got, 1)
	assert.Equal(t, []uint64{2, 3}, got[0].Frames, "only the two claims on interface 4")
}
