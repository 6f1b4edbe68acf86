package pcapscan

import (
	"fmt"
	"math/bits"
	"net"
	"slices"
)

// arpEntry is the ARP and DAD state of one address on one segment.
type arpEntry struct {
	claims claimSet // ARP sender claims for the address

	reqTS      int64 // last ARP request for the address
	reqMask    uint8 // claim lanes that replied since that request
	reqCounted bool
	twoAnswers uint32 // requests answered by two or more MACs
	gratSecond uint32 // gratuitous ARPs from a MAC other than the holder

	probeMAC   mac
	probeTS    int64
	dad        claimSet // prober and answerers
	dadAnswers uint32
	dadIPv6    bool
}

func (e *arpEntry) lastSeen() int64 { return max(e.claims.last, e.dad.last, e.reqTS) }

func validUnicast(a ipaddr) bool { return a.unicast() }

func (s *Scanner) onARP(p *Packet, ts int64) {
	a, seg := &s.ar, s.f.seg
	if a.op != 1 && a.op != 2 {
		return
	}
	sender := a.sha
	if sender.isMulticast() || sender == (mac{}) {
		return
	}
	if a.spa.unspecified() {
		if a.op == 1 && validUnicast(a.tpa) {
			s.onProbe(addrKey{seg, a.tpa}, sender, ts, p.Frame, evARPProbe, false)
		}
		return
	}
	if !validUnicast(a.spa) {
		return
	}
	what := evARPRequest
	switch {
	case a.spa == a.tpa:
		what = evARPGratuitous
	case a.op == 2:
		what = evARPReply
	}
	if a.op == 1 && what != evARPGratuitous && validUnicast(a.tpa) {
		t := current(s, s.arp, addrKey{seg, a.tpa}, ts, s.arpDone)
		t.reqTS, t.reqMask, t.reqCounted = ts, 0, false
	}
	e := current(s, s.arp, addrKey{seg, a.spa}, ts, s.arpDone)
	solicited := a.op == 2 && e.reqTS != 0 && ts-e.reqTS <= int64(s.o.ReplyWindow)
	// A claim answering a probe for the same address.
	if e.probeTS != 0 && sender != e.probeMAC && ts-e.probeTS <= int64(s.o.ProbeWindow) {
		e.dad.add(sender, ts, p.Frame, what)
		e.dadAnswers++
	}
	var holder mac
	holderActive := false
	if e.claims.n > 0 {
		l := &e.claims.lanes[e.claims.cur]
		holder, holderActive = l.m, ts-l.last <= int64(s.o.Window)
	}
	lane, changed := e.claims.add(sender, ts, p.Frame, what)
	if changed && what == evARPGratuitous && holderActive {
		e.gratSecond++
	}
	if solicited && lane >= 0 {
		e.reqMask |= 1 << lane
		if bits.OnesCount8(e.reqMask) >= 2 && !e.reqCounted {
			e.twoAnswers++
			e.reqCounted = true
		}
	}
	suspicious := what == evARPGratuitous || (a.op == 2 && !solicited) ||
		(a.op == 1 && s.f.hasDst && !s.f.dst.isMulticast())
	s.claimForSpoof(seg, macClaim{ip: a.spa, ts: ts, frame: p.Frame, what: what, suspicious: suspicious},
		sender, holder, holderActive && holder != sender)
}

// onProbe records a duplicate-address-detection probe (ARP probe or IPv6 NS
// from ::) for the key's address from prober.
func (s *Scanner) onProbe(k addrKey, prober mac, ts int64, frame uint64, what uint8, v6 bool) {
	e := current(s, s.arp, k, ts, s.arpDone)
	e.dadIPv6 = v6
	if e.probeTS != 0 && prober != e.probeMAC && ts-e.probeTS <= int64(s.o.ProbeWindow) {
		// Two hosts probing for one address at once: each answers the other.
		e.dad.add(prober, ts, frame, what)
		e.dadAnswers++
		return
	}
	e.probeMAC, e.probeTS = prober, ts
	e.dad.add(prober, ts, frame, what)
}

// onNA records an IPv6 neighbour advertisement for target from m: it answers a
// DAD probe for the target when one is open.
func (s *Scanner) onNA(k addrKey, m mac, ts int64, frame uint64) {
	e := s.arp.get(k.hash(), k)
	if e == nil || e.probeTS == 0 || m == e.probeMAC || ts-e.probeTS > int64(s.o.ProbeWindow) {
		return
	}
	e.dad.add(m, ts, frame, evNA)
	e.dadAnswers++
}

func (s *Scanner) arpFindings(k *addrKey, e *arpEntry) {
	c := &e.claims
	if c.n >= 2 {
		f := k.base(ARPConflict)
		c.evidence(&f)
		switch {
		case e.twoAnswers > 0:
			f.Severity, f.Detail = Critical, "two answers to one request"+times(e.twoAnswers)
		case c.returns > 0:
			f.Severity, f.Detail = Critical, fmt.Sprintf("flip-flop: the claiming MAC changed %d times", c.changes)
		case e.gratSecond > 0:
			f.Severity, f.Detail = Warning, "gratuitous ARP from a second host"
		default:
			f.Severity, f.Detail = Info, "address moved to another MAC"
		}
		if c.dropped > 0 {
			f.Detail += fmt.Sprintf("; %d claims from further MACs not itemised", c.dropped)
		}
		s.report(f)
	}
	if e.dadAnswers > 0 {
		f := k.base(DADProbeAnswered)
		e.dad.evidence(&f)
		f.Severity = Critical
		f.Count = int(e.dadAnswers)
		f.Detail = "ARP probe answered: the address is in use"
		if e.dadIPv6 {
			f.Detail = "IPv6 duplicate address detection answered: the address is in use"
		}
		s.report(f)
	}
}

// macEntry is what one MAC did on a segment that matters for takeovers: the
// addresses it claimed in ARP and where routed traffic moved to it.
type macEntry struct {
	claims  [4]macClaim
	nclaims uint32
	last    int64

	switchFrom mac   // the MAC routed traffic moved away from
	switchTS   int64 // when it last moved to this MAC
	spoofed    ipaddr
}

type macClaim struct {
	ip         ipaddr
	ts         int64
	frame      uint64
	firstTS    int64
	firstFrame uint64
	what       uint8 // kind of the latest claim
	firstWhat  uint8
	suspicious bool
}

func (m *macEntry) addClaim(c macClaim) {
	c.firstTS, c.firstFrame, c.firstWhat = c.ts, c.frame, c.what
	for i := range min(int(m.nclaims), len(m.claims)) {
		if old := m.claims[i]; old.ip == c.ip {
			c.firstTS, c.firstFrame, c.firstWhat = old.firstTS, old.firstFrame, old.firstWhat
			c.suspicious = c.suspicious || old.suspicious
			m.claims[i] = c
			return
		}
	}
	m.claims[m.nclaims%uint32(len(m.claims))] = c
	m.nclaims++
}

// otherClaim reports whether the MAC claimed an address other than ip since
// cutoff.
func (m *macEntry) otherClaim(ip ipaddr, cutoff int64) bool {
	for i := range min(int(m.nclaims), len(m.claims)) {
		if c := m.claims[i]; c.ip != ip && c.ts >= cutoff {
			return true
		}
	}
	return false
}

// suspect returns the latest suspicious claim since cutoff.
func (m *macEntry) suspect(cutoff int64) (macClaim, bool) {
	var best macClaim
	ok := false
	for i := range min(int(m.nclaims), len(m.claims)) {
		if c := m.claims[i]; c.suspicious && c.ts >= cutoff && (!ok || c.ts > best.ts) {
			best, ok = c, true
		}
	}
	return best, ok
}

// spoofKey names one takeover: address, segment and the MAC that took it.
type spoofKey struct {
	seg  segment
	addr ipaddr
	by   mac
}

func (k spoofKey) hash() uint64 { return hashMAC(hashAddr(hashSeg(k.seg), k.addr), k.by) }

// spoofEntry accumulates the evidence of one takeover.
type spoofEntry struct {
	victim      mac
	lanes       claimSet
	remotes     [8]ipaddr
	nremotes    uint32
	forward     uint32 // next-hop moves to the new MAC
	back        uint32 // next-hop moves back to the old MAC
	holderTaken bool   // an ARP holder's address was claimed
	first, last int64
}

// claimForSpoof looks at an ARP claim of ip by m for signs of a takeover.
func (s *Scanner) claimForSpoof(seg segment, c macClaim, m, holder mac, holderOther bool) {
	ip, ts, frame, suspicious, what := c.ip, c.ts, c.frame, c.suspicious, c.what
	me := current(s, s.macs, macKey{seg, m}, ts, nil)
	me.last = ts
	me.addClaim(c)
	cutoff := ts - int64(s.o.Window)
	// Traffic moved to this MAC before it claimed the address.
	if suspicious && me.switchTS >= cutoff && me.switchTS != 0 && me.spoofed.isZero() {
		me.spoofed = ip
		e := s.spoofEntry(spoofKey{seg, ip, m}, me.switchFrom, ts)
		e.lanes.add(m, ts, frame, what)
		return
	}
	if me.spoofed == ip {
		k := spoofKey{seg, ip, m}
		if e := s.spoof.get(k.hash(), k); e != nil {
			e.lanes.add(m, ts, frame, what)
			e.last = ts
		}
	}
	// A MAC that holds an address of its own claims one another MAC holds.
	if holderOther && me.otherClaim(ip, cutoff) {
		e := s.spoofEntry(spoofKey{seg, ip, m}, holder, ts)
		e.holderTaken = true
		e.lanes.add(m, ts, frame, what)
	}
}

func (s *Scanner) spoofEntry(k spoofKey, victim mac, ts int64) *spoofEntry {
	e := current(s, s.spoof, k, ts, s.spoofDone)
	if e.first == 0 {
		e.victim, e.first = victim, ts
	}
	e.last = ts
	return e
}

// nextHop records that routed traffic for remote went through m.
func (s *Scanner) nextHop(seg segment, remote ipaddr, m mac, ts int64, frame uint64) {
	k := addrKey{seg, remote}
	s.remote.add(k.filterHash())
	pe, _ := s.paths.upsert(k.hash(), k, ts)
	if pe.set && pe.nh != m && ts-pe.ts <= int64(s.o.Window) {
		s.nextHopMoved(seg, remote, pe.nh, m, pe.frame, pe.ts, ts, frame)
	}
	pe.nh, pe.ts, pe.frame, pe.set = m, ts, frame, true
}

// pathEntry is the MAC that last carried routed traffic for a remote address.
type pathEntry struct {
	nh    mac
	ts    int64
	frame uint64
	set   bool
}

func (s *Scanner) nextHopMoved(seg segment, remote ipaddr, from, to mac, fromFrame uint64, fromTS, ts int64, frame uint64) {
	cutoff := ts - int64(s.o.Window)
	// Moving back to a MAC that had been displaced: count against a takeover.
	fk := macKey{seg, from}
	if fe := s.macs.get(fk.hash(), fk); fe != nil && !fe.spoofed.isZero() {
		k := spoofKey{seg, fe.spoofed, from}
		if e := s.spoof.get(k.hash(), k); e != nil && e.victim == to {
			e.back++
		}
	}
	me := current(s, s.macs, macKey{seg, to}, ts, nil)
	me.last = ts
	me.switchFrom, me.switchTS = from, ts
	if me.spoofed.isZero() {
		c, ok := me.suspect(cutoff)
		if !ok {
			return
		}
		me.spoofed = c.ip
		e := s.spoofEntry(spoofKey{seg, c.ip, to}, from, c.firstTS)
		e.first = min(e.first, c.firstTS)
		e.lanes.add(to, c.firstTS, c.firstFrame, c.firstWhat)
		if c.frame != c.firstFrame {
			e.lanes.add(to, c.ts, c.frame, c.what)
		}
	}
	k := spoofKey{seg, me.spoofed, to}
	e := s.spoofEntry(k, from, ts)
	if e.victim != from {
		return
	}
	e.forward++
	e.lanes.add(from, fromTS, fromFrame, evNextHop)
	e.lanes.add(to, ts, frame, evNextHop)
	if !slices.Contains(e.remotes[:min(int(e.nremotes), len(e.remotes))], remote) {
		if int(e.nremotes) < len(e.remotes) {
			e.remotes[e.nremotes] = remote
		}
		e.nremotes++
	}
}

func (s *Scanner) spoofFinding(k *spoofKey, e *spoofEntry) {
	if e.forward == 0 && !e.holderTaken {
		return
	}
	if e.forward > 0 && e.back >= e.forward && !e.holderTaken {
		return // the path flaps between two routers: not a takeover
	}
	f := Finding{Kind: ARPSpoof, IP: k.addr.netip(), VLAN: k.seg.vlan, OuterVLAN: k.seg.outer, Interface: int(k.seg.iface)}
	e.lanes.evidence(&f)
	f.First, f.Last = unixTime(min(e.first, e.lanes.first)), unixTime(max(e.first, e.last, e.lanes.last))
	if !slices.ContainsFunc(f.MACs, func(m net.HardwareAddr) bool { return string(m) == string(e.victim[:]) }) {
		f.MACs = append(f.MACs, slices.Clone(net.HardwareAddr(e.victim[:])))
		f.sortMACs()
	}
	for _, r := range e.remotes[:min(int(e.nremotes), len(e.remotes))] {
		f.Addrs = append(f.Addrs, r.netip())
	}
	if e.forward > 0 {
		f.Severity = Critical
		f.Count = int(e.forward)
		f.Detail = fmt.Sprintf("%s claimed %s and the next hop for %d remote address(es) moved to it from %s",
			net.HardwareAddr(k.by[:]), k.addr.netip(), e.nremotes, net.HardwareAddr(e.victim[:]))
	} else {
		f.Severity = Warning
		f.Detail = fmt.Sprintf("%s, which claims another address, claimed %s held by %s",
			net.HardwareAddr(k.by[:]), k.addr.netip(), net.HardwareAddr(e.victim[:]))
	}
	s.report(f)
}

func (e *macEntry) lastSeen() int64   { return e.last }
func (e *spoofEntry) lastSeen() int64 { return e.last }
func (e *pathEntry) lastSeen() int64  { return e.ts }

// times says ", N times" for N > 1.
func times(n uint32) string {
	if n > 1 {
		return fmt.Sprintf(", %d times", n)
	}
	return ""
}
