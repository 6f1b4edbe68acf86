package pcapscan

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// maxRequestID bounds the request ID bytes kept for the report; longer IDs
// are compared in full (by hash) and reported cut.
const maxRequestID = 96

// reqEntry counts the sightings of one request ID.
type reqEntry struct {
	id          [maxRequestID]byte
	idLen       uint8
	count       uint32
	first, last int64
	frames      [8]uint64
	client      ipaddr
	server      ipaddr
	cport       uint16
	sport       uint16
	clientMAC   mac
	seg         segment
	clients     [8]ipaddr
	nclients    uint8
}

// onPayload looks at new TCP payload for HTTP request headers.
func (s *Scanner) onPayload(fl *flowState, k flowKey, dir int, ts int64, frame uint64) {
	payload := s.tcp.payload
	if len(payload) < 16 {
		return
	}
	id, ok := httpRequestHeader(payload, s.headers)
	if !ok {
		return
	}
	h := hashBytes(id)
	e, fresh := s.reqs.upsert(h, h, ts)
	if !fresh && ts-e.first > int64(s.o.RequestIDWindow) {
		// The window closed: report what it held and start again.
		hk := h
		reportNow(s, s.reqDone, &hk, e)
		*e = reqEntry{}
		fresh = true
	}
	client := s.ip.src
	if fresh {
		e.idLen = uint8(copy(e.id[:], id))
		e.first = ts
		e.client, e.server, e.cport, e.sport = client, s.ip.dst, s.tcp.sport, s.tcp.dport
		if s.f.hasSrc {
			e.clientMAC = s.f.src
		}
		e.seg = s.f.seg
	}
	if int(e.count) < len(e.frames) {
		e.frames[e.count] = frame
	}
	e.count++
	e.first, e.last = min(e.first, ts), max(e.last, ts)
	if !slices.Contains(e.clients[:e.nclients], client) && int(e.nclients) < len(e.clients) {
		e.clients[e.nclients] = client
		e.nclients++
	}
}

func (s *Scanner) reqFinding(e *reqEntry) {
	if int(e.count) < s.o.RequestIDRepeats {
		return
	}
	f := Finding{Kind: RequestIDRepeat, Severity: Warning, First: unixTime(e.first), Last: unixTime(e.last),
		Count: int(e.count), IP: e.server.netip(), RequestID: string(e.id[:e.idLen]),
		Flow: Flow{Client: netip.AddrPortFrom(e.client.netip(), e.cport), Server: netip.AddrPortFrom(e.server.netip(), e.sport)},
		VLAN: e.seg.vlan, OuterVLAN: e.seg.outer, Interface: int(e.seg.iface),
		Frames: slices.Clone(e.frames[:min(int(e.count), len(e.frames))])}
	for _, c := range e.clients[:e.nclients] {
		f.Addrs = append(f.Addrs, c.netip())
	}
	if e.clientMAC != (mac{}) {
		f.MACs = []net.HardwareAddr{slices.Clone(e.clientMAC[:])}
	}
	f.Detail = fmt.Sprintf("request sent %d times in %v from %d client address(es)", e.count,
		time.Duration(e.last-e.first).Round(time.Millisecond), e.nclients)
	s.report(f)
}

// dhcpEntry is the DHCP servers seen on one segment.
type dhcpEntry struct {
	servers  [4]dhcpServer
	n        uint8
	sameXID  uint32 // transactions answered by two servers
	lastXID  uint32
	xidMask  uint8
	xidCount bool
	last     int64
}

func (e *dhcpEntry) lastSeen() int64 { return e.last }

type dhcpServer struct {
	id   ipaddr
	lane macLane
}

func (s *Scanner) onUDP(p *Packet, ts int64) {
	u := &s.udp
	if !(u.sport == 67 && u.dport == 68) && !(u.sport == 68 && u.dport == 67) {
		return
	}
	d := &s.dh
	if !decodeDHCP(u.payload, d) {
		return
	}
	switch d.msgType {
	case dhcpOffer, dhcpAck:
		if d.op != 2 || !s.f.hasSrc {
			return
		}
		id := d.serverID
		if id.isZero() {
			id = s.ip.src
		}
		seg := s.f.seg
		e := current(s, s.dhcp, dhcpKey(seg), ts, s.dhcpDone)
		e.last = ts
		i := 0
		for ; i < int(e.n); i++ {
			if e.servers[i].id == id {
				break
			}
		}
		if i == int(e.n) {
			if int(e.n) == len(e.servers) {
				return
			}
			e.n++
			e.servers[i].id = id
			e.servers[i].lane.m = s.f.src
		}
		what := evDHCPOffer
		if d.msgType == dhcpAck {
			what = evDHCPAck
		}
		e.servers[i].lane.add(ts, p.Frame, what)
		if d.xid != e.lastXID {
			e.lastXID, e.xidMask, e.xidCount = d.xid, 0, false
		}
		e.xidMask |= 1 << i
		if e.xidMask&(e.xidMask-1) != 0 && !e.xidCount {
			e.sameXID++
			e.xidCount = true
		}
	case dhcpDecline:
		if d.requested.isZero() {
			return
		}
		m := net.HardwareAddr(slices.Clone(d.chaddr[:]))
		t := p.Time
		f := Finding{Kind: DHCPDecline, Severity: Warning, First: t, Last: t, Count: 1, IP: d.requested.netip(),
			MACs: []net.HardwareAddr{m}, VLAN: s.f.seg.vlan, OuterVLAN: s.f.seg.outer, Interface: p.Interface,
			Frames: []uint64{p.Frame},
			Evidence: []MACEvidence{{MAC: m, First: t, Last: t, Count: 1,
				Events: []Event{{Time: t, Frame: p.Frame, What: evNames[evDHCPDecline]}}}},
			Detail: "the client found the offered address in use"}
		if s.emit != nil {
			s.emit(f)
		}
	}
}

// dhcpKey is a segment as a table key.
type dhcpKey segment

func (k dhcpKey) hash() uint64 { return hashSeg(segment(k)) }

func (s *Scanner) dhcpFinding(kk *dhcpKey, e *dhcpEntry) {
	k := (*segment)(kk)
	if e.n < 2 {
		return
	}
	f := Finding{Kind: RogueDHCP, Severity: Warning, VLAN: k.vlan, OuterVLAN: k.outer, Interface: int(k.iface)}
	var c claimSet
	for i := range int(e.n) {
		sv := &e.servers[i]
		f.Addrs = append(f.Addrs, sv.id.netip())
		c.lanes[c.n] = sv.lane
		c.n++
		if c.count == 0 || sv.lane.first < c.first {
			c.first = sv.lane.first
		}
		c.last = max(c.last, sv.lane.last)
		c.count += sv.lane.count
	}
	c.evidence(&f)
	// The address in question is the server that appeared last.
	f.IP = e.servers[e.n-1].id.netip()
	f.Detail = fmt.Sprintf("%d DHCP servers answered on one segment", e.n)
	if e.sameXID > 0 {
		f.Severity = Critical
		f.Detail += fmt.Sprintf("; %d transaction(s) answered by two servers", e.sameXID)
	}
	s.report(f)
}
