package pcapscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seedCaptures adds small captures to a fuzz corpus: built ones, the
// package's own recordings, and the public captures when present.
func seedCaptures(f *testing.F) {
	c := newCapture(f)
	gatewayTakeover(c, false)
	handshake(c, 3*time.Second, 7)
	c.add(4*time.Second, tcpFrame(ipC, ipX, 40000, 443, 8, 9001, tcpACK|tcpPSH, httpGet("seed"), 4))
	f.Add(c.pcap())
	le := binary.LittleEndian
	f.Add(pcapFile(le, true, 113, pcapRec{sec: 1, frac: 2e9, data: []byte("x")}))
	f.Add(pcapFile(binary.BigEndian, false, 1, pcapRec{caplen: 1 << 31, data: []byte("x")}))
	n := &ng{order: le}
	n.shb().idb(LinkEthernet, 0x80|10, 4).idb(LinkSLL2, 9, 0).
		epb(0, 1, eth(bcast, macA, etherARP, arpMsg(1, macA, ipX, mac{}, ipC))).
		spb([]byte("simple")).opb(1, 2, []byte("obsolete")).block(99, []byte("unknown"))
	f.Add(n.b)
	for _, pattern := range []string{"testdata/*.pcap", sharedPcap + "/*.pcap*"} {
		files, _ := filepath.Glob(pattern)
		for _, name := range files {
			if data, err := os.ReadFile(name); err == nil && len(data) < 1<<17 {
				f.Add(data)
			}
		}
	}
}

func FuzzReader(f *testing.F) {
	seedCaptures(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := NewReader(bytes.NewReader(data), ReaderOptions{MaxPacket: 4096})
		if err != nil {
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			return
		}
		var frame uint64
		for {
			p, err := rd.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				var fe *FormatError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, frame+1, fe.Frame)
				assert.LessOrEqual(t, fe.Offset, int64(len(data)))
				return
			}
			frame++
			require.Equal(t, frame, p.Frame)
			require.LessOrEqual(t, len(p.Data), 4096)
			require.True(t, p.Time.IsZero() || !p.Time.Before(time.Unix(0, 0)), "no negative time from unsigned fields")
		}
	})
}

func FuzzScan(f *testing.F) {
	seedCaptures(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := New(Options{TableSize: 16, MaxPacket: 4096})
		_ = sc.Scan(bytes.NewReader(data), func(fd Finding) {
			require.Contains(t, Kinds, fd.Kind)
			require.False(t, fd.Last.Before(fd.First), "%v", fd)
			require.Positive(t, fd.Count)
			out, err := json.Marshal(fd)
			require.NoError(t, err)
			var back Finding
			require.NoError(t, json.Unmarshal(out, &back))
			require.Equal(t, fd.Kind, back.Kind)
		})
	})
}

func FuzzDecodeLink(f *testing.F) {
	for _, lt := range []LinkType{LinkEthernet, LinkSLL, LinkSLL2, LinkRaw, LinkNull, LinkLoop, LinkIPv6} {
		f.Add(uint16(lt), eth(macB, macA, etherIPv4, ipv4(ipC, ipX, 64, 1, protoUDP, udpDgram(1, 2, nil)), 5, 6))
	}
	f.Fuzz(func(t *testing.T, lt uint16, data []byte) {
		var fr frame
		if decodeLink(LinkType(lt), data, &fr) {
			require.LessOrEqual(t, len(fr.payload), len(data))
		}
	})
}

func FuzzDecodeARP(f *testing.F) {
	f.Add(arpMsg(1, macA, ipX, mac{}, ipC))
	f.Fuzz(func(t *testing.T, data []byte) {
		var a arpPacket
		if decodeARP(data, &a) {
			require.True(t, a.spa.is4() && a.tpa.is4())
		}
	})
}

func FuzzDecodeIP(f *testing.F) {
	f.Add(ipv4(ipC, ipX, 64, 1, protoTCP, tcpSeg(1, 2, 3, 4, tcpACK, []byte("x"))))
	f.Add(ipv6(netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), 64, 0,
		[]byte{44, 0, 0, 0, 0, 0, 0, 1, 17, 1, 0, 0, 0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p ipPacket
		if decodeIPv4(data, &p) {
			require.LessOrEqual(t, len(p.payload), len(data)-20)
			require.True(t, p.src.is4())
		}
		if decodeIPv6(data, &p) {
			require.LessOrEqual(t, len(p.payload), len(data)-40)
			require.Equal(t, ipaddr(data[8:24]), p.src)
		}
	})
}

func FuzzDecodeTransport(f *testing.F) {
	syn := tcpSeg(1, 2, 3, 4, tcpSYN, nil)
	syn[12] = 6 << 4
	f.Add(append(syn, 3, 3, 20, 0))
	f.Add(udpDgram(67, 68, dhcpMsg(2, dhcpOffer, 1, macC, ipX, ipGW, netip.Addr{})))
	f.Add(icmpEcho(8, 1, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tc tcpSegment
		if decodeTCP(data, &tc) {
			require.LessOrEqual(t, len(tc.payload), len(data)-20)
			require.LessOrEqual(t, tc.wscale, int8(14))
		}
		var u udpDatagram
		if decodeUDP(data, &u) {
			require.LessOrEqual(t, len(u.payload), len(data)-8)
		}
		var m icmpMessage
		decodeICMP(data, true, &m)
		decodeICMP(data, false, &m)
	})
}

func FuzzDecodeDHCP(f *testing.F) {
	f.Add(dhcpMsg(2, dhcpAck, 1, macC, ipX, ipGW, netip.Addr{}))
	f.Add(dhcpMsg(1, dhcpDecline, 1, macC, netip.Addr{}, ipGW, ipX))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d dhcpMessage
		if decodeDHCP(data, &d) {
			require.NotZero(t, d.msgType)
		}
	})
}

func FuzzHTTPRequestHeader(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nX-Request-ID: a\r\n\r\n"))
	f.Add([]byte("POST /x HTTP/1.1\nx-request-id:   \n"))
	names := [][]byte{[]byte("x-request-id")}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, ok := httpRequestHeader(data, names)
		if ok {
			require.NotEmpty(t, v)
			require.True(t, bytes.Contains(data, v))
		}
	})
}

func FuzzFindingJSON(f *testing.F) {
	good, _ := json.Marshal(Finding{Kind: ARPConflict, IP: ipX, Flow: Flow{
		Client: netip.MustParseAddrPort("192.0.2.1:1"), Server: netip.MustParseAddrPort("[2001:db8::1]:2")}})
	f.Add(good)
	f.Add([]byte(`{"kind":"arp-conflict","severity":"bogus"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fd Finding
		if json.Unmarshal(data, &fd) == nil {
			_, err := json.Marshal(fd)
			require.NoError(t, err)
		}
	})
}
