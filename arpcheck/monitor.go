package arpcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// EventKind names what Monitor saw.
type EventKind uint8

// Kinds of Event.
const (
	// MultipleMACs: one address was claimed by two or more MACs within the
	// window; Event.MACs lists them.
	MultipleMACs EventKind = iota + 1
	// ClaimOnMine: another host sent ARP (or NDP) from one of the addresses in
	// MonitorOptions.Mine.
	ClaimOnMine
	// ProbeForMine: another host probed for one of the addresses in Mine: it is
	// about to take it unless someone answers.
	ProbeForMine
)

var eventKindNames = [...]string{MultipleMACs: "multiple-macs", ClaimOnMine: "claim-on-mine", ProbeForMine: "probe-for-mine"}

// String returns "multiple-macs", "claim-on-mine" or "probe-for-mine".
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// MarshalText renders k as "multiple-macs", "claim-on-mine" or "probe-for-mine".
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is one observation of Monitor.
type Event struct {
	Kind EventKind
	Addr netip.Addr
	// MACs are the hardware addresses involved: every MAC seen for Addr within
	// the window for MultipleMACs, the other host's for the others.
	MACs []net.HardwareAddr
	At   time.Time // when the frame was read, on the Prober's clock
}

// MarshalJSON writes {"kind","addr","macs":["02:..."],"at"}.
func (e Event) MarshalJSON() ([]byte, error) {
	macs := make([]string, len(e.MACs))
	for i, m := range e.MACs {
		macs[i] = m.String()
	}
	return json.Marshal(struct {
		Kind EventKind  `json:"kind"`
		Addr netip.Addr `json:"addr"`
		MACs []string   `json:"macs"`
		At   time.Time  `json:"at"`
	}{e.Kind, e.Addr, macs, e.At})
}

// String renders e as "KIND ADDR [MAC ...]".
func (e Event) String() string {
	macs := make([]string, len(e.MACs))
	for i, m := range e.MACs {
		macs[i] = m.String()
	}
	return fmt.Sprintf("%s %s %v", e.Kind, e.Addr, macs)
}

// MonitorOptions shape a Monitor.
type MonitorOptions struct {
	// Mine are addresses this host holds: claims of them and probes for them
	// by others are reported.
	Mine []netip.Addr
	// Window is how long a MAC seen for an address counts; 0 means 60 s.
	Window time.Duration
	// MaxTracked bounds how many addresses are remembered; 0 means 65,536.
	// Past it, addresses whose MACs have all expired are forgotten first, and
	// new ones are not tracked until some expire.
	MaxTracked int
}

const macsPerAddr = 4

type seenMAC struct {
	mac  [6]byte
	last time.Time
}

type seenAddr struct {
	macs [macsPerAddr]seenMAC
	n    int
}

type monitor struct {
	mine      map[netip.Addr]struct{}
	window    time.Duration
	max       int
	seen      map[netip.Addr]*seenAddr
	nextSweep time.Time
	events    chan Event
}

func (m *monitor) emit(p *Prober, ev Event) {
	select {
	case m.events <- ev:
	default:
		p.stats.EventsDropped++
	}
}

func (m *monitor) observe(p *Prober, f *Frame, now time.Time) {
	c := Check{MAC: p.mac, OwnMACs: p.own}
	if c.isOwn(f.EthSrc) || c.isOwn(f.SenderMAC) {
		return
	}
	mac := f.SenderMAC
	if len(mac) != 6 {
		mac = f.EthSrc
	}
	_, senderMine := m.mine[f.SenderIP]
	_, targetMine := m.mine[f.TargetIP]
	other := func(kind EventKind, a netip.Addr) {
		m.emit(p, Event{Kind: kind, Addr: a, MACs: []net.HardwareAddr{append(net.HardwareAddr(nil), mac...)}, At: now})
	}
	switch f.Op {
	case OpARPRequest, OpARPReply:
		if f.SenderIP == ipv4Zero {
			if targetMine && f.Op == OpARPRequest {
				other(ProbeForMine, f.TargetIP)
			}
			return
		}
		m.track(p, f.SenderIP, mac, now)
		if senderMine {
			other(ClaimOnMine, f.SenderIP)
		}
	case OpNeighborAdvert:
		m.track(p, f.TargetIP, mac, now)
		if targetMine {
			other(ClaimOnMine, f.TargetIP)
		}
	case OpNeighborSolicit:
		if f.SenderIP.IsUnspecified() {
			if targetMine {
				other(ProbeForMine, f.TargetIP)
			}
			return
		}
		m.track(p, f.SenderIP, mac, now)
		if senderMine {
			other(ClaimOnMine, f.SenderIP)
		}
	}
}

// track records that mac claimed addr at now and reports a second MAC.
func (m *monitor) track(p *Prober, addr netip.Addr, mac net.HardwareAddr, now time.Time) {
	s := m.seen[addr]
	if s == nil {
		if len(m.seen) >= m.max {
			m.sweep(now)
			if len(m.seen) >= m.max {
				return
			}
		}
		s = &seenAddr{}
		m.seen[addr] = s
	}
	// Expire, find, and count fresh MACs.
	key := [6]byte(mac)
	found := false
	live := 0
	for i := 0; i < s.n; i++ {
		if now.Sub(s.macs[i].last) > m.window {
			s.n--
			s.macs[i] = s.macs[s.n]
			i--
			continue
		}
		if s.macs[i].mac == key {
			s.macs[i].last = now
			found = true
		}
		live++
	}
	if found {
		return
	}
	if s.n == macsPerAddr { // replace the stalest
		old := 0
		for i := 1; i < s.n; i++ {
			if s.macs[i].last.Before(s.macs[old].last) {
				old = i
			}
		}
		s.macs[old] = s.macs[s.n-1]
		s.n--
		live--
	}
	s.macs[s.n] = seenMAC{mac: key, last: now}
	s.n++
	live++
	if live >= 2 {
		macs := make([]net.HardwareAddr, s.n)
		for i := range s.n {
			macs[i] = append(net.HardwareAddr(nil), s.macs[i].mac[:]...)
		}
		m.emit(p, Event{Kind: MultipleMACs, Addr: addr, MACs: macs, At: now})
	}
}

// sweep forgets addresses whose MACs all expired; at most once per half window.
func (m *monitor) sweep(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(m.window / 2)
	for a, s := range m.seen {
		fresh := false
		for i := range s.n {
			if now.Sub(s.macs[i].last) <= m.window {
				fresh = true
				break
			}
		}
		if !fresh {
			delete(m.seen, a)
		}
	}
}

// Monitor watches the link passively, sending nothing, and calls fn from the
// calling goroutine for every address seen with two or more MACs within the
// window and for every claim of, or probe for, one of opts.Mine by another
// host. It returns nil when ctx ends, or an error when the Prober is closed or
// its reader fails. Events fn falls more than 256 behind on are dropped and
// counted in Stats.EventsDropped. Memory is bounded by opts.MaxTracked.
func (p *Prober) Monitor(ctx context.Context, opts MonitorOptions, fn func(Event)) error {
	if opts.Window < 0 || opts.MaxTracked < 0 {
		return fmt.Errorf("arpcheck: %w: monitor window %v, max tracked %d: negative", ErrBadOptions, opts.Window, opts.MaxTracked)
	}
	m := &monitor{mine: make(map[netip.Addr]struct{}, len(opts.Mine)), window: opts.Window, max: opts.MaxTracked,
		seen: make(map[netip.Addr]*seenAddr), events: make(chan Event, 256)}
	if m.window == 0 {
		m.window = time.Minute
	}
	if m.max == 0 {
		m.max = 1 << 16
	}
	for _, a := range opts.Mine {
		m.mine[a.Unmap().WithZone("")] = struct{}{}
	}
	p.mu.Lock()
	if err := p.usable(); err != nil {
		p.mu.Unlock()
		return err
	}
	// Hear advertisements to all nodes, and DAD probes for our IPv6 addresses.
	groups := []net.HardwareAddr{allNodesMAC}
	for a := range m.mine {
		if a.Is6() {
			_, g := SolicitedNodeGroup(a)
			groups = append(groups, g)
		}
	}
	for i, g := range groups {
		if err := p.joinGroup(g); err != nil {
			for _, j := range groups[:i] {
				p.leaveGroup(j)
			}
			p.mu.Unlock()
			return err
		}
	}
	p.monitors[m] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.monitors, m)
		for _, g := range groups {
			p.leaveGroup(g)
		}
		p.mu.Unlock()
	}()
	for {
		select {
		case ev := <-m.events:
			if fn != nil {
				fn(ev)
			}
		case <-ctx.Done():
			return nil
		case <-p.readerDone:
			p.mu.Lock()
			err := p.readErr
			p.mu.Unlock()
			if err == nil {
				err = ErrClosed
			}
			return err
		}
	}
}
