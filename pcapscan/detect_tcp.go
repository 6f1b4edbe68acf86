package pcapscan

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// flowKey is a TCP 4-tuple in canonical order (a, pa sorts before b, pb).
type flowKey struct {
	a, b   ipaddr
	pa, pb uint16
}

func (k flowKey) hash() uint64 {
	return mix(hashAddr(hashAddr(0xf10, k.a), k.b), uint64(k.pa)<<16|uint64(k.pb))
}

// less orders two ends of a flow (as bytes.Compare would the addresses).
func less(x ipaddr, xp uint16, y ipaddr, yp uint16) bool {
	if a, b := binary.BigEndian.Uint64(x[:8]), binary.BigEndian.Uint64(y[:8]); a != b {
		return a < b
	}
	if a, b := binary.BigEndian.Uint64(x[8:]), binary.BigEndian.Uint64(y[8:]); a != b {
		return a < b
	}
	return xp < yp
}

// flowDir is the sequence-space state of one direction of a flow.
type flowDir struct {
	isn     uint32
	base    uint32 // first sequence number of data
	high    uint32 // highest sequence number sent, plus one
	holeLo  uint32 // a gap in what was seen (out-of-order data)
	holeHi  uint32
	maxWin  uint32 // largest window this side advertised, scaled when known
	wscale  int8
	hasISN  bool
	hasBase bool
	hole    bool
	fin     bool
	data    bool
	segs    uint32 // data segments
}

// flowEvents is a bounded record of one kind of event on a flow.
type flowEvents struct {
	count       uint32
	first, last int64
	frames      [8]uint64
}

func (e *flowEvents) add(ts int64, frame uint64) {
	if e.count == 0 {
		e.first, e.last = ts, ts
	}
	if int(e.count) < len(e.frames) {
		e.frames[e.count] = frame
	}
	e.count++
	e.first, e.last = min(e.first, ts), max(e.last, ts)
}

// flowState is what the scanner knows about one TCP connection.
// The fields every segment reads or writes come first, next to the table key.
type flowState struct {
	last        int64
	macs        [2]mac // source MAC of each direction, when the link has one
	client      int8   // direction index of the client, -1 unknown
	rst         bool
	d           [2]flowDir // [0]: from key.a, [1]: from key.b
	first       int64
	seg         segment
	restarts    flowEvents
	restartRST  uint32 // restarts after a RST
	regressions flowEvents
	retrans     flowEvents
}

func (f *flowState) lastSeen() int64 { return f.last }

// seqLT reports a < b in sequence space.
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }

func (s *Scanner) onTCP(p *Packet, ts int64) {
	t, k, dir := &s.tcp, s.fk, s.fdir // set by onIP
	fl := currentHashed(s, s.flows, k, s.fh, ts, s.flowDone)
	if fl.first == 0 {
		fl.first, fl.client, fl.seg = ts, -1, s.f.seg
	}
	fl.last = ts
	if s.f.hasSrc {
		fl.macs[dir] = s.f.src
	}
	d := &fl.d[dir]
	syn, ack := t.flags&tcpSYN != 0, t.flags&tcpACK != 0
	if syn {
		if !ack {
			s.onSYN(fl, d, dir, ts, p.Frame)
		} else if !d.hasISN || d.isn != t.seq {
			*d = flowDir{isn: t.seq, hasISN: true, base: t.seq + 1, high: t.seq + 1, hasBase: true, wscale: t.wscale}
		} else {
			fl.retrans.add(ts, p.Frame) // SYN-ACK sent again
		}
		if fl.client < 0 {
			fl.client = int8(dir)
			if ack {
				fl.client = int8(1 - dir)
			}
		}
		d.window(t, true)
		return
	}
	if fl.client < 0 {
		fl.client = int8(dir)
	}
	if t.flags&tcpRST != 0 {
		fl.rst = true
		return
	}
	d.window(t, fl.d[0].hasISN && fl.d[1].hasISN)
	n := uint32(len(t.payload))
	fin := t.flags&tcpFIN != 0
	if fin {
		d.fin = true
		n++
	}
	if n == 0 {
		return
	}
	seq := t.seq
	if !d.hasBase {
		d.base, d.high, d.hasBase = seq, seq+n, true
		d.note(len(t.payload))
		s.onPayload(fl, k, dir, ts, p.Frame)
		return
	}
	end := seq + n
	switch {
	case !seqLT(seq, d.high):
		if seq != d.high {
			d.holeLo, d.holeHi, d.hole = d.high, seq, true
		}
		d.high = end
		d.note(len(t.payload))
		s.onPayload(fl, k, dir, ts, p.Frame)
	case d.hole && !seqLT(seq, d.holeLo) && seqLT(seq, d.holeHi):
		// Filling a gap: out of order, not a retransmission.
		if seq == d.holeLo {
			d.holeLo = end
		}
		if !seqLT(d.holeLo, d.holeHi) {
			d.hole = false
		}
		d.note(len(t.payload))
		s.onPayload(fl, k, dir, ts, p.Frame)
	case n <= 1 && !fin && seq == d.high-1:
		// Keep-alive.
	case d.hasISN && seqLT(seq, d.isn+1) || d.high-seq > d.inflightBound(&fl.d[1-dir]):
		fl.regressions.add(ts, p.Frame)
	default:
		fl.retrans.add(ts, p.Frame)
		if seqLT(d.high, end) {
			d.high = end
		}
	}
}

func (d *flowDir) note(payload int) {
	if payload > 0 {
		d.data = true
		d.segs++
	}
}

// window records the largest window a side advertised.
func (d *flowDir) window(t *tcpSegment, scaled bool) {
	w := uint32(t.window)
	if t.flags&tcpSYN == 0 && scaled && d.wscale > 0 {
		w <<= uint(d.wscale)
	}
	d.maxWin = max(d.maxWin, w)
}

// inflightBound is how far behind the highest sequence number a segment may be
// and still be a retransmission: what the peer's window allowed in flight
// (at least 64 KiB), and when the handshake was not seen, so that scaling is
// unknown, the largest window possible.
func (d *flowDir) inflightBound(peer *flowDir) uint32 {
	if !d.hasISN || !peer.hasISN {
		return 1 << 30
	}
	return max(peer.maxWin*2, 65535)
}

// onSYN handles a SYN without ACK: a first connection attempt, a retransmitted
// SYN, or a new connection on a 4-tuple that was in use.
func (s *Scanner) onSYN(fl *flowState, d *flowDir, dir int, ts int64, frame uint64) {
	t := &s.tcp
	if d.hasISN && d.isn == t.seq {
		fl.retrans.add(ts, frame)
		return
	}
	carried := fl.d[0].data || fl.d[1].data
	closed := fl.d[0].fin && fl.d[1].fin
	if carried && !closed {
		fl.restarts.add(ts, frame)
		if fl.rst {
			fl.restartRST++
		}
	}
	fl.d = [2]flowDir{}
	fl.rst = false
	fl.client = int8(dir)
	fl.d[dir] = flowDir{isn: t.seq, hasISN: true, base: t.seq + 1, high: t.seq + 1, hasBase: true, wscale: t.wscale}
}

func (s *Scanner) flowFindings(k *flowKey, fl *flowState) {
	base := func(kind Kind, ev *flowEvents) Finding {
		f := Finding{Kind: kind, VLAN: fl.seg.vlan, OuterVLAN: fl.seg.outer, Interface: int(fl.seg.iface),
			First: unixTime(ev.first), Last: unixTime(ev.last), Count: int(ev.count),
			Frames: slices.Clone(ev.frames[:min(int(ev.count), len(ev.frames))])}
		a, b := netip.AddrPortFrom(k.a.netip(), k.pa), netip.AddrPortFrom(k.b.netip(), k.pb)
		f.Flow = Flow{Client: a, Server: b}
		if fl.client == 1 {
			f.Flow = Flow{Client: b, Server: a}
		}
		f.IP = f.Flow.Client.Addr()
		f.Addrs = []netip.Addr{f.Flow.Server.Addr()}
		for _, m := range fl.macs {
			if m != (mac{}) && !slices.ContainsFunc(f.MACs, func(x net.HardwareAddr) bool { return string(x) == string(m[:]) }) {
				f.MACs = append(f.MACs, net.HardwareAddr(slices.Clone(m[:])))
			}
		}
		f.sortMACs()
		return f
	}
	if fl.restarts.count > 0 {
		f := base(TCPRestart, &fl.restarts)
		f.Severity = Warning
		f.Detail = fmt.Sprintf("new SYN on a connection that carried data and was not closed; %d of %d after a reset", fl.restartRST, fl.restarts.count)
		s.report(f)
	}
	if fl.regressions.count > 0 {
		f := base(TCPSeqRegression, &fl.regressions)
		f.Severity = Warning
		f.Detail = "sequence numbers went back beyond the window in flight"
		s.report(f)
	}
	if n := fl.retrans.count; int(n) >= s.o.Retransmissions {
		f := base(TCPRetransmissions, &fl.retrans)
		segs := fl.d[0].segs + fl.d[1].segs + n
		f.Severity = Info
		if n*10 >= segs {
			f.Severity = Warning
		}
		f.Detail = fmt.Sprintf("%d of %d segments retransmitted", n, segs)
		s.report(f)
	}
}
