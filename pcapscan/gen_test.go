package pcapscan

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// The benchmark input: a generated capture of mixed LAN traffic. TCP flows
// (HTTP requests with request IDs, bulk data, acknowledgements, a few
// retransmissions, handshakes and closes), DNS over UDP, pings, ARP, IPv6 and
// two VLANs, with a few anomalies (a retry storm, an address claimed twice) so
// that the finding paths run too. It is deterministic: one seed, one file.

// genVersion names the generator in the cached file's name; bump it when the
// output changes.
const genVersion = 1

type genHost struct {
	ip   netip.Addr
	mac  mac
	vlan uint16
}

type genFlow struct {
	c, s       int // host indexes
	cport      uint16
	sport      uint16
	cseq, sseq uint32
	left       int // segments before it closes
	lastLen    int
	lastDir    int
	v6         bool
}

type generator struct {
	rng   *rand.Rand
	w     *Writer
	t     time.Time
	hosts []genHost
	flows []genFlow
	ipid  uint16
	reqID uint64
	pkts  int
	bytes int64
}

func newGenerator(w *Writer) *generator {
	g := &generator{rng: rand.New(rand.NewPCG(1, 2)), w: w, t: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)}
	for i := range 600 {
		h := genHost{ip: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 10}), mac: mac{0x02, 0x42, 0, 0, byte(i >> 8), byte(i)}}
		switch i % 10 {
		case 7:
			h.vlan = 10
		case 8:
			h.vlan = 20
		}
		g.hosts = append(g.hosts, h)
	}
	g.flows = make([]genFlow, 2048)
	for i := range g.flows {
		g.newFlow(&g.flows[i], false)
	}
	return g
}

func (g *generator) emit(data []byte) error {
	g.t = g.t.Add(time.Duration(500+g.rng.IntN(1500)) * time.Microsecond)
	g.pkts++
	g.bytes += int64(16 + len(data))
	return g.w.WritePacket(g.t, data, 0)
}

func (g *generator) frame(src, dst int, etype uint16, payload []byte) []byte {
	s, d := g.hosts[src], g.hosts[dst]
	if s.vlan != 0 {
		return eth(d.mac, s.mac, etype, payload, s.vlan)
	}
	return eth(d.mac, s.mac, etype, payload)
}

func (g *generator) v6addr(h int) netip.Addr {
	a := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(h), 14: byte(h >> 8)}
	return netip.AddrFrom16(a)
}

func (g *generator) ipPacket(src, dst int, v6 bool, proto uint8, payload []byte) []byte {
	g.ipid++
	if v6 {
		return g.frame(src, dst, etherIPv6, ipv6(g.v6addr(src), g.v6addr(dst), 64, proto, payload))
	}
	return g.frame(src, dst, etherIPv4, ipv4(g.hosts[src].ip, g.hosts[dst].ip, 64, g.ipid, proto, payload))
}

// pair picks two hosts on one VLAN.
func (g *generator) pair() (int, int) {
	for {
		a, b := g.rng.IntN(len(g.hosts)), g.rng.IntN(len(g.hosts))
		if a != b && g.hosts[a].vlan == g.hosts[b].vlan {
			return a, b
		}
	}
}

func (g *generator) newFlow(f *genFlow, handshake bool) error {
	c, s := g.pair()
	*f = genFlow{c: c, s: s, cport: uint16(20000 + g.rng.IntN(40000)), sport: 443,
		cseq: g.rng.Uint32(), sseq: g.rng.Uint32(), left: 50 + g.rng.IntN(300), v6: g.rng.IntN(20) == 0}
	if g.rng.IntN(3) == 0 {
		f.sport = 80
	}
	if !handshake {
		return nil
	}
	for _, step := range []struct {
		dir   int
		flags uint8
	}{{0, tcpSYN}, {1, tcpSYN | tcpACK}, {0, tcpACK}} {
		if err := g.segment(f, step.dir, step.flags, nil); err != nil {
			return err
		}
		if step.flags&tcpSYN != 0 {
			if step.dir == 0 {
				f.cseq++
			} else {
				f.sseq++
			}
		}
	}
	// The request, with a request ID; one in 2000 is retried by the client
	// from new ports, a small retry storm.
	g.reqID++
	id := fmt.Sprintf("%016x-%08x", g.reqID*0x9e3779b97f4a7c15, g.reqID)
	req := fmt.Appendf(nil, "GET /api/v1/items/%d HTTP/1.1\r\nHost: svc.example\r\nUser-Agent: bench\r\nX-Request-ID: %s\r\nAccept: application/json\r\n\r\n", g.reqID, id)
	if g.reqID%2000 == 0 {
		for range 3 {
			port := uint16(20000 + g.rng.IntN(40000))
			p := tcpSeg(port, f.sport, g.rng.Uint32(), 1, tcpACK|tcpPSH, req)
			if err := g.emit(g.ipPacket(f.c, f.s, f.v6, protoTCP, p)); err != nil {
				return err
			}
		}
	}
	return g.data(f, 0, req)
}

func (g *generator) segment(f *genFlow, dir int, flags uint8, payload []byte) error {
	src, dst, sp, dp, seq, ack := f.c, f.s, f.cport, f.sport, f.cseq, f.sseq
	if dir == 1 {
		src, dst, sp, dp, seq, ack = f.s, f.c, f.sport, f.cport, f.sseq, f.cseq
	}
	return g.emit(g.ipPacket(src, dst, f.v6, protoTCP, tcpSeg(sp, dp, seq, ack, flags, payload)))
}

func (g *generator) data(f *genFlow, dir int, payload []byte) error {
	if err := g.segment(f, dir, tcpACK|tcpPSH, payload); err != nil {
		return err
	}
	if dir == 0 {
		f.cseq += uint32(len(payload))
	} else {
		f.sseq += uint32(len(payload))
	}
	f.lastLen, f.lastDir = len(payload), dir
	return nil
}

var genPayload = make([]byte, 1460)

// step emits one event: one to four packets.
func (g *generator) step() error {
	switch r := g.rng.IntN(1000); {
	case r < 800: // TCP
		f := &g.flows[g.rng.IntN(len(g.flows))]
		f.left--
		switch {
		case f.left <= 0:
			if err := g.segment(f, 0, tcpFIN|tcpACK, nil); err != nil {
				return err
			}
			f.cseq++
			if err := g.segment(f, 1, tcpFIN|tcpACK, nil); err != nil {
				return err
			}
			f.sseq++
			return g.newFlow(f, true)
		case r < 8 && f.lastLen > 0: // retransmit the last segment
			seq := &f.cseq
			if f.lastDir == 1 {
				seq = &f.sseq
			}
			*seq -= uint32(f.lastLen)
			return g.data(f, f.lastDir, genPayload[:f.lastLen])
		case r < 200:
			return g.segment(f, g.rng.IntN(2), tcpACK, nil)
		case r < 500:
			return g.data(f, 1, genPayload[:1460])
		default:
			return g.data(f, g.rng.IntN(2), genPayload[:100+g.rng.IntN(900)])
		}
	case r < 900: // DNS
		c, s := g.pair()
		q := udpDgram(uint16(1024+g.rng.IntN(60000)), 53, genPayload[:40+g.rng.IntN(40)])
		if err := g.emit(g.ipPacket(c, s, false, protoUDP, q)); err != nil {
			return err
		}
		return g.emit(g.ipPacket(s, c, false, protoUDP, udpDgram(53, binary.BigEndian.Uint16(q), genPayload[:80+g.rng.IntN(300)])))
	case r < 950: // ping
		c, s := g.pair()
		id, seq := uint16(g.rng.IntN(65536)), uint16(g.rng.IntN(65536))
		if err := g.emit(g.ipPacket(c, s, false, protoICMP, icmpEcho(8, id, seq))); err != nil {
			return err
		}
		return g.emit(g.ipPacket(s, c, false, protoICMP, icmpEcho(0, id, seq)))
	case r < 990: // ARP
		c, s := g.pair()
		hc, hs := g.hosts[c], g.hosts[s]
		if err := g.emit(g.frame(c, s, etherARP, arpMsg(1, hc.mac, hc.ip, mac{}, hs.ip))); err != nil {
			return err
		}
		return g.emit(g.frame(s, c, etherARP, arpMsg(2, hs.mac, hs.ip, hc.mac, hc.ip)))
	default: // an address claimed by a second MAC now and then
		c, s := g.pair()
		hc, hs := g.hosts[c], g.hosts[s]
		if g.rng.IntN(50) != 0 {
			return g.emit(g.frame(c, s, etherARP, arpMsg(1, hc.mac, hc.ip, mac{}, hs.ip)))
		}
		intruder := hc.mac
		intruder[1] = 0x99
		return g.emit(g.frame(c, s, etherARP, arpMsg(2, intruder, hs.ip, hc.mac, hc.ip)))
	}
}

// generateCapture writes a pcap of at least size bytes to w.
func generateCapture(w io.Writer, size int64) (packets int, err error) {
	pw, err := NewWriter(w, LinkEthernet, 0)
	if err != nil {
		return 0, err
	}
	g := newGenerator(pw)
	for g.bytes < size {
		if err := g.step(); err != nil {
			return g.pkts, err
		}
	}
	return g.pkts, pw.Flush()
}

// benchCapture returns the path of the generated capture of at least size
// bytes, cached under os.TempDir by generator version and size.
func benchCapture(size int64) (string, error) {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("pcapscan-bench-v%d-%dMB.pcap", genVersion, size>>20))
	if fi, err := os.Stat(path); err == nil && fi.Size() >= size {
		return path, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "pcapscan-bench-*.tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if _, err := generateCapture(bw, size); err != nil {
		tmp.Close()
		return "", err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}
