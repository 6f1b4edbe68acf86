package pcapscan

import "fmt"

// ipEntry is the IP-layer evidence of one on-link address: which MACs sent
// packets from it, and which answered echo requests for it.
type ipEntry struct {
	src  claimSet // on-link IP sources
	echo claimSet // echo replies

	echoID, echoSeq uint16
	echoTS          int64
	echoMask        uint8
	echoCounted     bool
	echoDouble      uint32 // echo requests answered by two or more MACs
}

// lastSeen is the time of the latest evidence: an echo reply is always recorded
// as a source sighting too.
func (e *ipEntry) lastSeen() int64 { return e.src.last }

// dupEntry remembers one recent IP packet to recognise a second copy of it.
type dupEntry struct {
	h   uint64
	ts  int64
	ttl uint8
	src mac
}

// initialTTL reports whether ttl is a value hosts start with: a packet carrying
// it has not crossed a router.
func initialTTL(ttl uint8) bool {
	return ttl == 64 || ttl == 128 || ttl == 255 || ttl == 32
}

// exactDupWindow bounds how far apart two identical copies (same TTL, same
// MAC) of a packet without an IPv4 identification may be to count as one.
const exactDupWindow = int64(10 * 1e6)

func (s *Scanner) onIP(p *Packet, ts int64) {
	f, ip := &s.f, &s.ip
	v6 := f.etype == etherIPv6
	// The transport header, when there is one.
	var sig uint64
	var tcpOK, udpOK, icmpOK bool
	if !ip.later {
		switch ip.proto {
		case protoTCP:
			tcpOK = decodeTCP(ip.payload, &s.tcp)
			if tcpOK {
				t := &s.tcp
				sig = uint64(t.seq)<<32 | uint64(t.ack)
				sig = mix(sig, uint64(t.flags)<<16|uint64(len(t.payload))<<24|uint64(t.sport)<<40|uint64(t.dport))
			}
		case protoUDP:
			udpOK = decodeUDP(ip.payload, &s.udp)
			if udpOK && len(ip.payload) >= 8 {
				sig = uint64(s.udp.sport)<<48 | uint64(s.udp.dport)<<32 | uint64(len(ip.payload))<<16 |
					uint64(ip.payload[6])<<8 | uint64(ip.payload[7])
			}
		case protoICMP, protoICMPv6:
			icmpOK = decodeICMP(ip.payload, v6, &s.icm)
			if icmpOK {
				sig = uint64(s.icm.typ)<<48 | uint64(s.icm.id)<<32 | uint64(s.icm.seq)<<16 | uint64(s.icm.csum)
			}
		}
	}
	// Start fetching the flow's and the source's table entries, so that
	// their cache misses overlap with each other and with the duplicate
	// check's.
	if tcpOK {
		t := &s.tcp
		s.fk, s.fdir = flowKey{ip.src, ip.dst, t.sport, t.dport}, 0
		if less(ip.dst, t.dport, ip.src, t.sport) {
			s.fk, s.fdir = flowKey{ip.dst, ip.src, t.dport, t.sport}, 1
		}
		s.fh = s.fk.hash()
		s.flows.touch(s.fh)
	}
	seg := f.seg
	routed := !initialTTL(ip.ttl)
	srcOK := f.hasSrc && !f.src.isMulticast() && validUnicast(ip.src)
	var srcKey addrKey
	var srcHash uint64
	if srcOK && !routed {
		srcKey = addrKey{seg, ip.src}
		srcHash = srcKey.hash()
		s.ips.touch(srcHash)
	}
	if s.duplicate(ip, f, sig, ts) {
		s.stats.Duplicates++
		return
	}
	if srcOK {
		if routed {
			s.nextHop(seg, ip.src, f.src, ts, p.Frame)
		} else {
			e := currentHashed(s, s.ips, srcKey, srcHash, ts, s.ipDone)
			e.src.add(f.src, ts, p.Frame, evIPSource)
			if icmpOK && (s.icm.typ == icmpEchoReply && !v6 || s.icm.typ == icmp6EchoReply && v6) {
				s.onEchoReply(e, f.src, ts, p.Frame)
			}
		}
	}
	if f.hasDst && !f.dst.isMulticast() && validUnicast(ip.dst) {
		// Outbound traffic to an address known to be remote shows its next hop.
		k := addrKey{seg, ip.dst}
		if s.remote.has(k.filterHash()) && s.paths.get(k.hash(), k) != nil {
			s.nextHop(seg, ip.dst, f.dst, ts, p.Frame)
		}
	}
	switch {
	case tcpOK:
		s.onTCP(p, ts)
	case udpOK:
		s.onUDP(p, ts)
	case icmpOK && v6:
		s.onICMPv6(p, ts)
	}
}

// duplicate reports whether the packet is a second copy of one seen within
// DuplicateWindow: the same IP identification and transport header, with a TTL
// one lower from another MAC (it crossed a router the capture saw both sides
// of), or with the same TTL from the same MAC (captured twice, as on a bridge
// and its port).
func (s *Scanner) duplicate(ip *ipPacket, f *frame, sig uint64, ts int64) bool {
	h := final(hashAddr(hashAddr(mix(sig, uint64(ip.id)<<8|uint64(ip.proto)), ip.src), ip.dst))
	d := &s.dups[h&uint64(len(s.dups)-1)]
	if d.h == h && ts-d.ts <= int64(s.o.DuplicateWindow) && ts >= d.ts {
		switch {
		case (ip.ttl+1 == d.ttl || ip.ttl == d.ttl+1) && f.src != d.src:
			return true
		case ip.ttl == d.ttl && f.src == d.src && (ip.id != 0 || ts-d.ts <= exactDupWindow):
			return true
		}
	}
	*d = dupEntry{h: h, ts: ts, ttl: ip.ttl, src: f.src}
	return false
}

func (s *Scanner) onEchoReply(e *ipEntry, m mac, ts int64, frame uint64) {
	lane, _ := e.echo.add(m, ts, frame, evEchoReply)
	id, seq := s.icm.id, s.icm.seq
	if id != e.echoID || seq != e.echoSeq || ts-e.echoTS > int64(s.o.ReplyWindow) {
		e.echoID, e.echoSeq, e.echoTS, e.echoMask, e.echoCounted = id, seq, ts, 0, false
	}
	if lane >= 0 {
		e.echoMask |= 1 << lane
	}
	if e.echoMask&(e.echoMask-1) != 0 && !e.echoCounted {
		e.echoDouble++
		e.echoCounted = true
	}
}

// onICMPv6 handles neighbour discovery: DAD probes and the advertisements
// that answer them.
func (s *Scanner) onICMPv6(p *Packet, ts int64) {
	f, ip, m := &s.f, &s.ip, &s.icm
	if !f.hasSrc || !validUnicast(m.target) {
		return
	}
	k := addrKey{f.seg, m.target}
	switch m.typ {
	case icmp6NeighborSol:
		if ip.src.unspecified() {
			s.onProbe(k, f.src, ts, p.Frame, evNSProbe, true)
		}
	case icmp6NeighborAdv:
		s.onNA(k, f.src, ts, p.Frame)
	}
}

func (s *Scanner) ipFindings(k *addrKey, e *ipEntry) {
	if c := &e.src; c.n >= 2 {
		f := k.base(IPMACConflict)
		c.evidence(&f)
		if c.returns > 0 {
			f.Severity, f.Detail = Critical, fmt.Sprintf("interleaved: the source MAC changed %d times", c.changes)
		} else {
			f.Severity, f.Detail = Info, "address moved to another MAC"
		}
		s.report(f)
	}
	if c := &e.echo; c.n >= 2 {
		f := k.base(EchoMultiResponder)
		c.evidence(&f)
		if e.echoDouble > 0 {
			f.Severity, f.Detail = Critical, "one echo request answered by several MACs"+times(e.echoDouble)
		} else {
			f.Severity, f.Detail = Warning, "echo requests answered by different MACs"
		}
		s.report(f)
	}
}
