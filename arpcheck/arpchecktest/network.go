package arpchecktest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/mdlayher/packet"
)

// Options configure a Network.
type Options struct {
	// Seed makes loss and duplication reproducible; runs with the same seed and
	// the same frames lose the same frames.
	Seed uint64
	// Start is the fake time the clock starts at; zero means 2026-01-01 UTC.
	Start time.Time
	// LogLimit bounds the frame log; 0 means 1,000,000 frames. Older frames are
	// dropped first.
	LogLimit int
	// QueueLen is how many frames an endpoint holds unread before it drops
	// (and counts, in Stats) the next; 0 means 65,536.
	QueueLen int
}

// Impairments degrade the segment. The zero value is a perfect wire.
type Impairments struct {
	// Loss is the probability that a frame is lost on the wire.
	Loss float64
	// Delay is added to the delivery of every frame.
	Delay time.Duration
	// Duplicate is the probability that a frame arrives twice.
	Duplicate float64
	// Echo sends every frame back to its sender as well, as a looped switch
	// port or a hairpinning bridge does.
	Echo bool
}

// Network is an in-memory Ethernet segment: a broadcast domain carrying real
// frames between endpoints (transports for Probers) and scripted hosts, with a
// fake Clock, impairments and a log of every frame. All methods are safe for
// concurrent use. Close it when done.
type Network struct {
	mu      sync.Mutex
	cond    *sync.Cond
	clock   *Clock
	ports   []port
	rng     *rand.Rand
	imp     Impairments
	log     []Frame // a ring of at most logMax frames once full
	logHead int     // index of the oldest frame in a full log
	logMax  int
	slab    []byte // frame bytes are copied into it, saving an allocation each
	queue   int
	closed  bool
}

// port is anything attached to the segment.
type port interface {
	hwaddr() net.HardwareAddr
	// receive handles a frame; called with the network lock held.
	receive(n *Network, b []byte)
	accepts(dst net.HardwareAddr) bool
	// busy reports whether the port still has frames to handle.
	busy() bool
}

// NewNetwork returns an empty segment whose clock runs by itself (see Clock).
func NewNetwork(opts Options) *Network {
	n := &Network{rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), logMax: opts.LogLimit, queue: opts.QueueLen}
	if n.logMax <= 0 {
		n.logMax = 1_000_000
	}
	if n.queue <= 0 {
		n.queue = 1 << 16
	}
	n.cond = sync.NewCond(&n.mu)
	start := opts.Start
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	n.clock = &Clock{n: n, now: start}
	go n.clock.run()
	return n
}

// Clock returns the segment's fake clock.
func (n *Network) Clock() *Clock { return n.clock }

// Close stops the clock and closes every endpoint.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	n.clock.stopped = true
	for _, p := range n.ports {
		if e, ok := p.(*Endpoint); ok {
			e.closed = true
			e.rcond.Broadcast()
		}
	}
	n.cond.Broadcast()
	n.mu.Unlock()
}

// Impair sets the segment's impairments, for frames sent from now on.
func (n *Network) Impair(imp Impairments) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.imp = imp
}

// idleLocked reports whether every frame on the segment has been read and
// handled: no endpoint has unread frames or a reader busy with one.
func (n *Network) idleLocked() bool {
	for _, p := range n.ports {
		if p.busy() {
			return false
		}
	}
	return true
}

func (n *Network) waitIdleLocked() {
	for !n.closed && !(n.idleLocked() && n.clock.firing == 0) {
		n.cond.Wait()
	}
}

// WaitIdle blocks until every frame sent so far has been read and handled by
// its readers (frames delayed by an impairment wait for the clock).
func (n *Network) WaitIdle() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.waitIdleLocked()
}

func (n *Network) attach(p port) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ports = append(n.ports, p)
}

func (n *Network) detach(p port) {
	for i, q := range n.ports {
		if q == p {
			n.ports = append(n.ports[:i], n.ports[i+1:]...)
			break
		}
	}
	n.cond.Broadcast()
}

// sendLocked puts a frame from src on the wire: it is logged, then lost,
// delayed, duplicated or echoed as the impairments say, and handed to every
// port whose address filter accepts it.
func (n *Network) sendLocked(src port, from string, b []byte) {
	data := n.copyLocked(b)
	lost := n.imp.Loss > 0 && n.rng.Float64() < n.imp.Loss
	n.logLocked(Frame{At: n.clock.now, From: from, Data: data, Lost: lost})
	if lost {
		return
	}
	copies := 1
	if n.imp.Duplicate > 0 && n.rng.Float64() < n.imp.Duplicate {
		copies = 2
	}
	for range copies {
		if n.imp.Delay > 0 {
			echo := n.imp.Echo
			n.clock.afterLocked(n.imp.Delay, func() {
				n.mu.Lock()
				defer n.mu.Unlock()
				n.deliverLocked(src, data, echo)
			}, true)
			continue
		}
		n.deliverLocked(src, data, n.imp.Echo)
	}
}

func (n *Network) deliverLocked(src port, data []byte, echo bool) {
	if n.closed {
		return
	}
	dst := net.HardwareAddr(data[0:6])
	// n.ports cannot change meanwhile: attaching and detaching take n.mu,
	// which the caller holds through every nested delivery.
	for _, p := range n.ports {
		if p == src && !echo {
			continue
		}
		if p.accepts(dst) {
			p.receive(n, data)
		}
	}
	n.cond.Broadcast()
}

// logLocked adds f to the log; once the log holds logMax frames each new one
// replaces the oldest.
func (n *Network) logLocked(f Frame) {
	if len(n.log) < n.logMax {
		n.log = append(n.log, f)
		return
	}
	n.log[n.logHead] = f
	n.logHead = (n.logHead + 1) % len(n.log)
}

// copyLocked returns a copy of frame b that nothing else will write to.
func (n *Network) copyLocked(b []byte) []byte {
	if cap(n.slab)-len(n.slab) < len(b) {
		n.slab = make([]byte, 0, max(64<<10, len(b)))
	}
	start := len(n.slab)
	n.slab = append(n.slab, b...)
	return n.slab[start:len(n.slab):len(n.slab)]
}

// Frame is one frame put on the wire.
type Frame struct {
	At   time.Time // fake time it was sent
	From string    // name of the endpoint or scripted host that sent it
	Data []byte    // the frame, from the Ethernet destination on, without FCS
	Lost bool      // lost on the wire (Impairments.Loss)
}

// Parse parses the frame with arpcheck.ParseFrame.
func (f Frame) Parse() (arpcheck.Frame, error) { return arpcheck.ParseFrame(f.Data) }

// String renders the frame as one log line: time, sender, operation, addresses.
func (f Frame) String() string {
	p, err := f.Parse()
	if err != nil {
		return fmt.Sprintf("%s %s: % x (%v)", f.At.Format("15:04:05.000000"), f.From, f.Data, err)
	}
	return fmt.Sprintf("%s %s: %s %s %s -> %s %s", f.At.Format("15:04:05.000000"), f.From, p.Op, p.SenderMAC, p.SenderIP, p.TargetMAC, p.TargetIP)
}

// Frames returns a copy of the frame log: every frame sent, in order.
func (n *Network) Frames() []Frame {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append(append(make([]Frame, 0, len(n.log)), n.log[n.logHead:]...), n.log[:n.logHead]...)
}

// FramesFrom returns the logged frames whose Ethernet source is mac.
func (n *Network) FramesFrom(mac net.HardwareAddr) []Frame {
	var out []Frame
	for _, f := range n.Frames() {
		if len(f.Data) >= 12 && string(f.Data[6:12]) == string(mac) {
			out = append(out, f)
		}
	}
	return out
}

// ResetLog empties the frame log.
func (n *Network) ResetLog() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.log)
	n.log, n.logHead = n.log[:0], 0
}

// ---- endpoints ----

// Endpoint is a port on the segment for a Prober (or any code reading and
// writing frames): it satisfies arpcheck.Transport, with JoinGroup, LeaveGroup,
// Stats and LinkState like the socket arpcheck.New opens. Like that socket it
// never reads back its own frames (unless Impairments.Echo) and only reads
// broadcast frames, frames for its MAC and frames for groups it joined.
type Endpoint struct {
	n      *Network
	name   string
	mac    net.HardwareAddr
	groups map[string]int
	rcond  *sync.Cond // wakes the reader: a frame, a link change, Close
	queue  [][]byte
	// reader state, for the clock's idle test
	reading   bool // a ReadFrom is waiting for a frame
	everRead  bool
	hasReader bool // a Prober owns the endpoint and will read it
	closed    bool
	linkDown  bool
	noCarrier bool
	downErr   bool // a pending ENETDOWN for the reader
	failErr   error
	failN     int
	packets   uint32
	drops     uint32
}

// Attach adds an endpoint named name with hardware address mac.
func (n *Network) Attach(name string, mac net.HardwareAddr) *Endpoint {
	e := &Endpoint{n: n, name: name, mac: append(net.HardwareAddr(nil), mac...), groups: make(map[string]int), rcond: sync.NewCond(&n.mu)}
	n.attach(e)
	return e
}

// NewProber attaches an endpoint and returns a Prober on it that uses the
// network's clock (opts.Clock is replaced). The Prober owns the endpoint.
func (n *Network) NewProber(name string, mac net.HardwareAddr, opts arpcheck.Options) (*arpcheck.Prober, *Endpoint, error) {
	e := n.Attach(name, mac)
	n.mu.Lock()
	e.hasReader = true
	n.mu.Unlock()
	opts.Clock = n.clock
	p, err := arpcheck.NewFromTransport(e.Interface(), e, opts)
	if err != nil {
		_ = e.Close()
		return nil, nil, err
	}
	return p, e, nil
}

// Interface describes the endpoint as a net.Interface (index 1, MTU 1500, up,
// broadcast, multicast).
func (e *Endpoint) Interface() *net.Interface {
	return &net.Interface{Index: 1, MTU: 1500, Name: e.name, HardwareAddr: e.MAC(),
		Flags: net.FlagUp | net.FlagBroadcast | net.FlagMulticast | net.FlagRunning}
}

// MAC returns the endpoint's hardware address.
func (e *Endpoint) MAC() net.HardwareAddr { return append(net.HardwareAddr(nil), e.mac...) }

func (e *Endpoint) hwaddr() net.HardwareAddr { return e.mac }

func (e *Endpoint) accepts(dst net.HardwareAddr) bool {
	if e.closed || e.linkDown || e.noCarrier {
		return false
	}
	if dst[0]&1 == 0 {
		return string(dst) == string(e.mac)
	}
	return string(dst) == "\xff\xff\xff\xff\xff\xff" || e.groups[string(dst)] > 0
}

func (e *Endpoint) receive(n *Network, b []byte) {
	if len(e.queue) >= n.queue {
		e.drops++
		return
	}
	e.queue = append(e.queue, b)
	e.packets++
	e.rcond.Signal()
}

// busy: the endpoint has a reader (one has called ReadFrom, or a Prober owns
// it) and frames wait for it, or it is still handling one. Frames queued on an
// endpoint nobody reads do not hold the clock.
func (e *Endpoint) busy() bool {
	if e.closed || !(e.everRead || e.hasReader) {
		return false
	}
	return len(e.queue) > 0 || e.downErr || !e.reading
}

// ReadFrom blocks until a frame arrives, then copies it into b. It returns an
// error wrapping syscall.ENETDOWN once when the link goes down, and one
// wrapping net.ErrClosed after Close.
func (e *Endpoint) ReadFrom(b []byte) (int, net.Addr, error) {
	n := e.n
	n.mu.Lock()
	defer n.mu.Unlock()
	e.everRead = true
	e.reading = true
	n.cond.Broadcast()
	for !e.closed && len(e.queue) == 0 && !e.downErr {
		e.rcond.Wait()
	}
	e.reading = false
	switch {
	case e.closed:
		return 0, nil, fmt.Errorf("arpchecktest: read %s: %w", e.name, net.ErrClosed)
	case e.downErr:
		e.downErr = false
		return 0, nil, fmt.Errorf("arpchecktest: read %s: %w", e.name, syscall.ENETDOWN)
	}
	f := e.queue[0]
	e.queue[0] = nil
	e.queue = e.queue[1:]
	src := append(net.HardwareAddr(nil), f[6:12]...)
	return copy(b, f), &packet.Addr{HardwareAddr: src}, nil
}

// WriteTo sends frame b (addr is ignored: the destination is in the frame). It
// fails with syscall.ENETDOWN while the link is down, with the error given to
// FailSends while that lasts, and with net.ErrClosed after Close.
func (e *Endpoint) WriteTo(b []byte, addr net.Addr) (int, error) {
	n := e.n
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case e.closed:
		return 0, fmt.Errorf("arpchecktest: write %s: %w", e.name, net.ErrClosed)
	case e.linkDown:
		return 0, fmt.Errorf("arpchecktest: write %s: %w", e.name, syscall.ENETDOWN)
	case e.failN > 0:
		e.failN--
		return 0, fmt.Errorf("arpchecktest: write %s: %w", e.name, e.failErr)
	case len(b) < 14:
		return 0, fmt.Errorf("arpchecktest: write %s: %d-byte frame: %w", e.name, len(b), syscall.EINVAL)
	}
	if e.noCarrier {
		// The frame leaves the socket and goes nowhere, as on a cable pulled out.
		n.logLocked(Frame{At: n.clock.now, From: e.name, Data: n.copyLocked(b), Lost: true})
		return len(b), nil
	}
	n.sendLocked(e, e.name, b)
	return len(b), nil
}

// Close detaches the endpoint; a blocked ReadFrom returns.
func (e *Endpoint) Close() error {
	n := e.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.rcond.Broadcast()
	n.detach(e)
	return nil
}

// JoinGroup makes the endpoint read frames sent to the Ethernet group addr.
func (e *Endpoint) JoinGroup(addr net.HardwareAddr) error {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if len(addr) != 6 || addr[0]&1 == 0 {
		return fmt.Errorf("arpchecktest: join %s: not a multicast address: %w", addr, syscall.EINVAL)
	}
	e.groups[string(addr)]++
	return nil
}

// LeaveGroup undoes one JoinGroup.
func (e *Endpoint) LeaveGroup(addr net.HardwareAddr) error {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if e.groups[string(addr)] == 0 {
		return fmt.Errorf("arpchecktest: leave %s: not joined: %w", addr, syscall.EINVAL)
	}
	e.groups[string(addr)]--
	return nil
}

// Groups returns the Ethernet groups the endpoint has joined.
func (e *Endpoint) Groups() []net.HardwareAddr {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	var out []net.HardwareAddr
	for g, c := range e.groups {
		if c > 0 {
			out = append(out, net.HardwareAddr(g))
		}
	}
	return out
}

// Stats reports frames queued and dropped since the previous call, resetting
// both, as PACKET_STATISTICS does.
func (e *Endpoint) Stats() (*packet.Stats, error) {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	s := &packet.Stats{Packets: e.packets, Drops: e.drops}
	e.packets, e.drops = 0, 0
	return s, nil
}

// LinkState reports the link as SetLinkDown and SetCarrier left it.
func (e *Endpoint) LinkState() (arpcheck.LinkState, error) {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if e.closed {
		return arpcheck.LinkState{}, fmt.Errorf("arpchecktest: %s: %w", e.name, net.ErrClosed)
	}
	return arpcheck.LinkState{Up: !e.linkDown, Carrier: !e.linkDown && !e.noCarrier}, nil
}

// SetLinkDown sets the endpoint's interface administratively down (true) or up.
// Going down makes a waiting ReadFrom fail once with ENETDOWN, sends fail with
// ENETDOWN and nothing is received, as with ip link set dev down.
func (e *Endpoint) SetLinkDown(down bool) {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if down && !e.linkDown {
		e.downErr = true
		e.queue = nil
	}
	e.linkDown = down
	e.rcond.Broadcast()
	e.n.cond.Broadcast()
}

// SetCarrier unplugs (false) or plugs in (true) the cable: the interface stays up,
// sends succeed but go nowhere and nothing arrives, as when a veth peer is down.
func (e *Endpoint) SetCarrier(on bool) {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	e.noCarrier = !on
}

// FailSends makes the next count writes fail with err (for example
// syscall.ENOBUFS, as a full transmit queue does).
func (e *Endpoint) FailSends(err error, count int) {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if err == nil {
		err = errors.New("injected send failure")
	}
	e.failErr, e.failN = err, count
}

// Inject puts a frame on the wire as if the endpoint had sent it, bypassing link
// state and send failures. Use it to script a peer by hand.
func (n *Network) Inject(from string, frame []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(frame) < 14 {
		return
	}
	n.sendLocked(nil, from, frame)
}

// ---- helpers ----

// MAC returns the locally administered unicast MAC 02:00:00:00:HI:LO for test
// host number i.
func MAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0, 0, 0, byte(i >> 8), byte(i)}
}

func mustAddrs(addrs []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = a.Unmap().WithZone("")
	}
	return out
}
