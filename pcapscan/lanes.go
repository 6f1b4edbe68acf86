package pcapscan

import (
	"cmp"
	"net"
	"slices"
)

// Evidence kinds recorded in lanes (see Event.What).
const (
	evARPRequest uint8 = iota + 1
	evARPReply
	evARPGratuitous
	evARPProbe
	evIPSource
	evEchoReply
	evNA
	evNSProbe
	evNextHop
	evDHCPOffer
	evDHCPAck
	evDHCPDecline
)

var evNames = [...]string{"", "arp-request", "arp-reply", "arp-gratuitous", "arp-probe", "ip-source",
	"echo-reply", "na", "ns-probe", "next-hop", "dhcp-offer", "dhcp-ack", "dhcp-decline"}

// laneEvents bounds the events kept per MAC: the first half and the latest half.
const laneEvents = 8

// maxLanes bounds the MACs tracked per address; more are counted in dropped.
const maxLanes = 4

// evRec is one event in 16 bytes: the kind rides in the top byte of the frame
// number (frame numbers stay below 2^56).
type evRec struct {
	ts        int64
	frameWhat uint64
}

func (e evRec) frame() uint64 { return e.frameWhat & (1<<56 - 1) }
func (e evRec) what() uint8   { return uint8(e.frameWhat >> 56) }

// macLane is one MAC's evidence for an address, in fixed space.
type macLane struct {
	m           mac
	first, last int64
	count       uint32
	ev          [laneEvents]evRec
}

func (l *macLane) add(ts int64, frame uint64, what uint8) {
	if l.count == 0 {
		l.first, l.last = ts, ts
	}
	// Captures merged from several sources can go back in time.
	l.first, l.last = min(l.first, ts), max(l.last, ts)
	i := int(l.count)
	if i >= laneEvents {
		// Keep the first half; rotate the latest half.
		const half = laneEvents / 2
		i = half + (i-half)%half
	}
	l.ev[i] = evRec{ts: ts, frameWhat: frame&(1<<56-1) | uint64(what)<<56}
	l.count++
}

// events returns the kept events in time order.
func (l *macLane) events() []Event {
	n := min(int(l.count), laneEvents)
	out := make([]Event, 0, n)
	for i := range n {
		e := l.ev[i]
		out = append(out, Event{Time: unixTime(e.ts), Frame: e.frame(), What: evNames[e.what()]})
	}
	slices.SortStableFunc(out, func(a, b Event) int { return cmp.Compare(a.Frame, b.Frame) })
	return out
}

// claimSet is the set of MACs seen for one address, with the order of changes.
// The fields every sighting updates come first, next to the table key.
type claimSet struct {
	first   int64
	last    int64
	count   uint32
	n       uint8
	cur     int8   // lane of the MAC seen last
	changes uint32 // how often the MAC seen changed
	returns uint32 // changes back to a MAC seen before (flip-flops)
	dropped uint32 // sightings of MACs beyond maxLanes
	lanes   [maxLanes]macLane
}

// add records one sighting of m and returns its lane (or -1 when the set is
// full) and whether the MAC differs from the one seen before.
func (c *claimSet) add(m mac, ts int64, frame uint64, what uint8) (int, bool) {
	if c.count == 0 {
		c.first, c.last = ts, ts
	}
	c.count++
	c.first, c.last = min(c.first, ts), max(c.last, ts)
	i := 0
	for ; i < int(c.n); i++ {
		if c.lanes[i].m == m {
			break
		}
	}
	if i == int(c.n) {
		if c.n == maxLanes {
			c.dropped++
			return -1, true
		}
		c.n++
		c.lanes[i].m = m
	}
	changed := c.n > 1 && int(c.cur) != i
	if changed {
		c.changes++
		if c.lanes[i].count > 0 {
			c.returns++
		}
	}
	c.cur = int8(i)
	c.lanes[i].add(ts, frame, what)
	return i, changed
}

// evidence converts the lanes to MACs, per-MAC evidence and the union of
// evidence frames, in frame order.
func (c *claimSet) evidence(f *Finding) {
	for i := range int(c.n) {
		l := &c.lanes[i]
		m := net.HardwareAddr(slices.Clone(l.m[:]))
		f.MACs = append(f.MACs, m)
		ev := l.events()
		f.Evidence = append(f.Evidence, MACEvidence{MAC: m, First: unixTime(l.first), Last: unixTime(l.last),
			Count: int(l.count), Events: ev})
		for _, e := range ev {
			f.Frames = append(f.Frames, e.Frame)
		}
	}
	slices.Sort(f.Frames)
	f.Frames = slices.Compact(f.Frames)
	f.First, f.Last, f.Count = unixTime(c.first), unixTime(c.last), int(c.count)
	f.sortMACs()
}
