package arpchecktest

import (
	"net"
	"net/netip"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
)

// Host is a scripted host on the segment. Its behaviour is fixed when it is
// added; it runs inside the network, on its fake clock, and never blocks.
type Host struct {
	n       *Network
	name    string
	mac     net.HardwareAddr
	addrs   map[netip.Addr]bool
	prefix  netip.Prefix // proxy ARP: answer for every address in it
	delay   time.Duration
	act     func(h *Host, f arpcheck.Frame) // what the host does with a frame it reads
	timer   *fakeTimer
	every   time.Duration
	tick    func(h *Host)
	removed bool
}

func (h *Host) hwaddr() net.HardwareAddr { return h.mac }
func (h *Host) busy() bool               { return false }

func (h *Host) accepts(dst net.HardwareAddr) bool {
	return !h.removed && (dst[0]&1 == 1 || string(dst) == string(h.mac))
}

func (h *Host) receive(n *Network, b []byte) {
	if h.act == nil || string(b[6:12]) == string(h.mac) {
		return
	}
	// The frame goes by value: a pointer handed to a func value would make
	// every frame read by every host a heap allocation.
	if f, err := arpcheck.ParseFrame(b); err == nil {
		h.act(h, f)
	}
}

// MAC returns the host's hardware address.
func (h *Host) MAC() net.HardwareAddr { return append(net.HardwareAddr(nil), h.mac...) }

// Name returns the name its frames are logged under.
func (h *Host) Name() string { return h.name }

// Remove unplugs the host: it stops answering and sending.
func (h *Host) Remove() {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	h.removed = true
	if h.timer != nil {
		h.timer.unqueue()
	}
	h.n.detach(h)
}

// send puts a frame from the host on the wire, after the host's reply delay.
func (h *Host) send(b []byte) {
	if h.removed {
		return
	}
	if h.delay <= 0 {
		h.n.sendLocked(h, h.name, b)
		return
	}
	data := h.n.copyLocked(b)
	h.n.clock.afterLocked(h.delay, func() {
		h.n.mu.Lock()
		defer h.n.mu.Unlock()
		if !h.removed {
			h.n.sendLocked(h, h.name, data)
		}
	}, true)
}

func (n *Network) addHost(name string, mac net.HardwareAddr, h *Host) *Host {
	h.n, h.name, h.mac = n, name, append(net.HardwareAddr(nil), mac...)
	n.attach(h)
	if h.tick != nil {
		n.mu.Lock()
		h.schedule()
		n.mu.Unlock()
	}
	return h
}

func (h *Host) schedule() {
	h.timer = h.n.clock.afterLocked(h.every, func() {
		h.n.mu.Lock()
		defer h.n.mu.Unlock()
		if h.removed {
			return
		}
		h.tick(h)
		h.schedule()
	}, true)
}

// HostOptions tune a scripted host.
type HostOptions struct {
	// Name is what its frames are logged as; empty means "host-" and its MAC.
	Name string
	// Delay is how long it takes to answer.
	Delay time.Duration
}

func (o HostOptions) name(mac net.HardwareAddr) string {
	if o.Name != "" {
		return o.Name
	}
	return "host-" + mac.String()
}

// AddHolder adds a host that holds addrs and answers like Linux does: an ARP
// request for one of them, probes included, gets a unicast reply from that
// address; a DAD solicitation (from ::) for one of its IPv6 addresses gets an
// advertisement to all nodes, and an ordinary solicitation a solicited
// advertisement back.
func (n *Network) AddHolder(mac net.HardwareAddr, opts HostOptions, addrs ...netip.Addr) *Host {
	h := &Host{addrs: make(map[netip.Addr]bool), delay: opts.Delay, act: (*Host).answer}
	for _, a := range mustAddrs(addrs) {
		h.addrs[a] = true
	}
	return n.addHost(opts.name(mac), mac, h)
}

// AddProxyARP adds a router that answers every ARP request, probes included,
// for any address in prefix with its own MAC: proxy ARP as some routers do it
// (Linux's proxy_arp leaves probes alone).
func (n *Network) AddProxyARP(mac net.HardwareAddr, opts HostOptions, prefix netip.Prefix) *Host {
	h := &Host{addrs: map[netip.Addr]bool{}, prefix: prefix.Masked(), delay: opts.Delay, act: (*Host).answer}
	return n.addHost(opts.name(mac), mac, h)
}

func (h *Host) holds(a netip.Addr) bool {
	return h.addrs[a] || (h.prefix.IsValid() && a.Is4() && h.prefix.Contains(a))
}

func (h *Host) answer(f arpcheck.Frame) {
	switch f.Op {
	case arpcheck.OpARPRequest:
		if h.holds(f.TargetIP) && f.SenderIP != f.TargetIP {
			h.send(arpcheck.AppendARPReply(nil, h.mac, f.TargetIP, f.SenderMAC, f.SenderIP))
		}
	case arpcheck.OpNeighborSolicit:
		if !h.addrs[f.TargetIP] {
			return
		}
		if f.SenderIP.IsUnspecified() {
			all, allMAC := arpcheck.AllNodes()
			h.send(arpcheck.AppendNeighborAdvert(nil, h.mac, f.TargetIP, f.TargetIP, allMAC, all, false))
			return
		}
		dst := f.SenderMAC
		if dst == nil {
			dst = f.EthSrc
		}
		h.send(arpcheck.AppendNeighborAdvert(nil, h.mac, f.TargetIP, f.TargetIP, dst, f.SenderIP, true))
	}
}

// AddProber adds a host that probes for addr (an ARP probe, or a DAD
// solicitation for IPv6) every interval, the first one interval from now, as
// another host trying to take the same address does.
func (n *Network) AddProber(mac net.HardwareAddr, opts HostOptions, addr netip.Addr, every time.Duration) *Host {
	addr = addr.Unmap()
	nonce := [6]byte{mac[5], 0xa5, 0x5a, mac[4], 1, 2}
	h := &Host{every: every, tick: func(h *Host) {
		if addr.Is4() {
			h.send(arpcheck.AppendProbe(nil, h.mac, addr))
			return
		}
		h.send(arpcheck.AppendDADSolicit(nil, h.mac, addr, nonce))
	}}
	return n.addHost(opts.name(mac), mac, h)
}

// AddAnnouncer adds a host that announces addr (gratuitous ARP, or an
// unsolicited advertisement for IPv6) every interval, the first one interval
// from now, as a host that took the address without probing does.
func (n *Network) AddAnnouncer(mac net.HardwareAddr, opts HostOptions, addr netip.Addr, every time.Duration) *Host {
	addr = addr.Unmap()
	h := &Host{every: every, tick: func(h *Host) {
		if addr.Is4() {
			h.send(arpcheck.AppendAnnouncement(nil, h.mac, addr))
			return
		}
		h.send(arpcheck.AppendUnsolicitedAdvert(nil, h.mac, addr))
	}}
	return n.addHost(opts.name(mac), mac, h)
}

// Garbage lists the malformed frames AddGarbage sends, each a near miss of a
// real ARP or NDP frame.
func Garbage(mac net.HardwareAddr) [][]byte {
	probe := arpcheck.AppendProbe(nil, mac, netip.MustParseAddr("192.0.2.1"))
	truncated := probe[:20]
	badHlen := append([]byte(nil), probe...)
	badHlen[18] = 8
	badOp := append([]byte(nil), probe...)
	badOp[21] = 9
	reply := arpcheck.AppendARPReply(nil, mac, netip.MustParseAddr("192.0.2.1"), mac, netip.MustParseAddr("192.0.2.2"))
	shortAddrs := reply[:30]
	ns := arpcheck.AppendDADSolicit(nil, mac, netip.MustParseAddr("2001:db8::1"), [6]byte{1})
	badOpt := append([]byte(nil), ns...)
	badOpt[len(badOpt)-7] = 0 // option length 0
	badLen := append([]byte(nil), ns...)
	badLen[18] = 0xff // payload length past the frame
	all := [][]byte{truncated, badHlen, badOp, shortAddrs, badOpt, badLen}
	for _, f := range all {
		copy(f[0:6], "\xff\xff\xff\xff\xff\xff") // broadcast, so every port reads them
	}
	return all
}

// AddGarbage adds a host that answers every broadcast frame it sees with the
// frames of Garbage: truncated ARP, wrong lengths, unknown operations, broken
// NDP options. A prober must count and ignore them.
func (n *Network) AddGarbage(mac net.HardwareAddr, opts HostOptions) *Host {
	junk := Garbage(mac)
	h := &Host{act: func(h *Host, f arpcheck.Frame) {
		if f.Op != arpcheck.OpARPRequest && f.Op != arpcheck.OpNeighborSolicit {
			return
		}
		for _, j := range junk {
			h.send(j)
		}
	}}
	return n.addHost(opts.name(mac), mac, h)
}
