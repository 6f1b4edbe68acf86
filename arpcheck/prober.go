package arpcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/packet"
)

// Options configure a Prober. The zero value is usable: RFC timing,
// DefaultRate, the wall clock.
type Options struct {
	// Timing is the probe schedule; the zero Timing means RFC.
	Timing Timing
	// Rate limits every frame sent; the zero Rate means DefaultRate.
	Rate Rate
	// Clock drives every wait; nil means RealClock.
	Clock Clock
	// Rand draws the jitter of each schedule and the IPv6 DAD nonces; nil means
	// a randomly seeded PCG.
	Rand rand.Source
	// OwnMACs are other hardware addresses that are ours (VRRP virtual MACs,
	// bond or team members): frames from them are never conflicts.
	OwnMACs []net.HardwareAddr
	// MaxInFlight bounds how many addresses one call probes at a time (and so
	// its memory); further addresses start as earlier ones finish. 0 means
	// 65,536.
	MaxInFlight int
	// ProxyHintMin is how many probed addresses of one call a single MAC must
	// answer for to be flagged Holder.ProxyARP; 0 means 3.
	ProxyHintMin int
	// Logger receives debug records of decisions and send retries; nil logs
	// nothing.
	Logger *slog.Logger
}

// Stats counts what a Prober did since it was made.
type Stats struct {
	FramesSent  uint64 // frames written to the transport
	FramesRead  uint64 // frames read from it
	Malformed   uint64 // ARP or NDP frames that did not parse
	Unrelated   uint64 // frames of other protocols (a filterless transport)
	SendRetries uint64 // sends retried after ENOBUFS
	// KernelDrops counts frames the socket dropped because its buffer was full,
	// as PACKET_STATISTICS reports them (or the transport's Stats).
	KernelDrops uint64
	// EventsDropped counts Monitor and Claim events not delivered because the
	// caller's callback fell behind.
	EventsDropped uint64
}

// Prober probes, announces, claims and watches addresses on one link, over one
// transport. Its methods may be called from many goroutines at once: every call
// shares the socket, the reader, the scheduler and the rate limit.
type Prober struct {
	t       Transport
	ifname  string
	mac     net.HardwareAddr
	timing  Timing
	clock   Clock
	log     *slog.Logger
	own     []net.HardwareAddr
	maxIn   int
	proxMin int

	mu       sync.Mutex
	rng      *rand.Rand
	probes   map[netip.Addr]*probe
	claims   map[netip.Addr]*claimState
	monitors map[*monitor]struct{}
	groups   map[string]int // joined Ethernet multicast groups, by refcount
	tasks    taskHeap
	epoch    time.Time // the scheduler's time 0
	seq      uint64
	timer    Timer
	timerAt  time.Time
	bucket   bucket
	wbuf     []byte
	waddr    packet.Addr // destination of the frame in wbuf
	stats    Stats
	tick     uint64
	checked  uint64 // tick of the last link/drop check
	linkErr  error  // result of that check
	closed   bool
	readErr  error // set when the reader gave up
	conflict struct {
		count     int
		lastClaim time.Time
	}
	readerDone chan struct{}
	inHand     atomic.Int64 // when the reader read the frame it holds (ns since epoch), or noFrame
}

// NewFromTransport returns a Prober that sends and reads frames through t, as
// the interface ifi (its name and hardware address; ifi need not exist on this
// host). The Prober owns t and closes it in Close. On Linux a *packet.Conn
// gets the checks of the socket New opens: the link's flags (by ifi.Name) and
// the socket's receive queue before each free verdict.
func NewFromTransport(ifi *net.Interface, t Transport, opts Options) (*Prober, error) {
	if err := checkInterface(ifi); err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("arpcheck: %w: nil transport", ErrBadOptions)
	}
	t = withLinkChecks(ifi, t)
	if opts.Timing == (Timing{}) {
		opts.Timing = RFC
	}
	if err := opts.Timing.Validate(); err != nil {
		return nil, fmt.Errorf("arpcheck: %w", err)
	}
	if err := opts.Rate.validate(); err != nil {
		return nil, fmt.Errorf("arpcheck: %w", err)
	}
	if opts.MaxInFlight < 0 || opts.ProxyHintMin < 0 {
		return nil, fmt.Errorf("arpcheck: %w: MaxInFlight %d, ProxyHintMin %d: negative", ErrBadOptions, opts.MaxInFlight, opts.ProxyHintMin)
	}
	for i, m := range opts.OwnMACs {
		if len(m) != 6 {
			return nil, fmt.Errorf("arpcheck: %w: OwnMACs[%d] %q is not an Ethernet address", ErrBadOptions, i, m)
		}
	}
	src := opts.Rand
	if src == nil {
		src = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	p := &Prober{
		t:          t,
		ifname:     ifi.Name,
		mac:        append(net.HardwareAddr(nil), ifi.HardwareAddr...),
		timing:     opts.Timing,
		clock:      opts.Clock,
		log:        opts.Logger,
		own:        opts.OwnMACs,
		maxIn:      opts.MaxInFlight,
		proxMin:    opts.ProxyHintMin,
		rng:        rand.New(src),
		probes:     make(map[netip.Addr]*probe),
		claims:     make(map[netip.Addr]*claimState),
		monitors:   make(map[*monitor]struct{}),
		groups:     make(map[string]int),
		bucket:     newBucket(opts.Rate),
		wbuf:       make([]byte, 0, 128),
		readerDone: make(chan struct{}),
	}
	if p.clock == nil {
		p.clock = RealClock
	}
	p.epoch = p.clock.Now()
	p.inHand.Store(noFrame)
	if p.maxIn == 0 {
		p.maxIn = 1 << 16
	}
	if p.proxMin == 0 {
		p.proxMin = 3
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	go p.read()
	return p, nil
}

// MAC returns the hardware address the Prober sends from.
func (p *Prober) MAC() net.HardwareAddr { return append(net.HardwareAddr(nil), p.mac...) }

// Timing returns the schedule in use.
func (p *Prober) Timing() Timing { return p.timing }

// Stats returns the Prober's counters.
func (p *Prober) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pollDrops()
	return p.stats
}

// Close stops the reader, ends every call in progress (their pending addresses
// become Unknown with ErrClosed) and closes the transport.
func (p *Prober) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.failAll(ErrClosed)
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	err := p.t.Close()
	<-p.readerDone
	return err
}

// checkLink verifies, at most once per timer tick, that the link is up and the
// socket lost nothing; it returns the reason a free verdict cannot be given.
func (p *Prober) checkLink() error {
	if p.checked == p.tick && p.tick != 0 {
		return p.linkErr
	}
	p.checked = p.tick
	p.linkErr = p.linkState()
	p.pollDrops()
	return p.linkErr
}

func (p *Prober) linkState() error {
	ls, ok := p.t.(LinkStater)
	if !ok {
		return nil
	}
	st, err := ls.LinkState()
	if err != nil {
		return linkError(err)
	}
	if !st.Up {
		return fmt.Errorf("arpcheck: %s: %w (administratively down)", p.ifname, ErrLinkDown)
	}
	if !st.Carrier {
		return fmt.Errorf("arpcheck: %s: %w (no carrier)", p.ifname, ErrLinkDown)
	}
	return nil
}

func (p *Prober) pollDrops() {
	if s, ok := p.t.(statser); ok {
		if st, err := s.Stats(); err == nil && st != nil {
			// PACKET_STATISTICS resets on every read: accumulate.
			p.stats.KernelDrops += uint64(st.Drops)
		}
	}
}

// ---- sending ----

const (
	// ENOBUFS is retried with doubling backoff for about a second in all: long
	// enough for a full transmit queue to drain and for a lost carrier to show
	// in the link flags, short enough to keep the call bounded.
	maxSendRetries = 10
	firstBackoff   = time.Millisecond
)

// sendFor sends the frame build makes for task t, which is rescheduled when the
// rate limit or an ENOBUFS retry says "later" (sent false, err nil). err is a
// send failure for good. tries counts t's failed attempts at this frame.
//
// A task the rate limit holds back reserves the next token free and is
// rescheduled for when it comes, then sends without asking again: frames
// leave in the order they were due, and each costs one reschedule however
// long the queue (rescheduling every waiting task at each token made a
// rate-limited /20 cost seconds of CPU).
func (p *Prober) sendFor(t task, now time.Time, tries *int, build func([]byte) []byte) (sent bool, err error) {
	frame := build(p.wbuf[:0])
	p.wbuf = frame[:0]
	s := t.base()
	if !s.reserved {
		if w := p.bucket.reserve(now, len(frame)); w > 0 {
			s.reserved = true
			p.schedule(t, now.Add(w))
			return false, nil
		}
	}
	s.reserved = false
	p.waddr.HardwareAddr = net.HardwareAddr(frame[0:6])
	if _, err := p.t.WriteTo(frame, &p.waddr); err != nil {
		if d, ok := p.retryable(err, *tries); ok {
			*tries++
			p.log.Debug("arpcheck: send retry", "err", err, "backoff", d)
			p.schedule(t, now.Add(d))
			return false, nil
		}
		return false, err
	}
	*tries = 0
	p.stats.FramesSent++
	return true, nil
}

// sendError describes a send that failed for good; if the link is down or lost
// its carrier, which is the usual reason, the error says so (ErrLinkDown).
func (p *Prober) sendError(what string, err error) error {
	err = linkError(err)
	if errors.Is(err, ErrLinkDown) {
		return fmt.Errorf("arpcheck: %s: %w", what, err)
	}
	if lerr := p.linkState(); lerr != nil {
		return fmt.Errorf("arpcheck: %s: %w (%w)", what, lerr, err)
	}
	return fmt.Errorf("arpcheck: %s: %w", what, err)
}

// retryable says whether a send error is worth another try later, and how much
// later, given how many tries the task already had.
func (p *Prober) retryable(err error, tries int) (time.Duration, bool) {
	if !errors.Is(err, syscall.ENOBUFS) && !errors.Is(err, syscall.EAGAIN) || tries >= maxSendRetries {
		return 0, false
	}
	p.stats.SendRetries++
	return firstBackoff << tries, true
}

// ---- reading ----

const readBufSize = 2048

func (p *Prober) read() {
	defer close(p.readerDone)
	buf := make([]byte, readBufSize)
	failures := 0
	for {
		n, _, err := p.t.ReadFrom(buf)
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			if !closed {
				failures++
				lerr := linkError(err)
				p.failAll(fmt.Errorf("arpcheck: read: %w", lerr))
				if isClosed(err) || failures > 100 {
					p.readErr = fmt.Errorf("arpcheck: reader stopped: %w", lerr)
					closed = true
				}
			}
			p.mu.Unlock()
			if closed {
				return
			}
			if !errors.Is(err, ErrLinkDown) && !errors.Is(err, syscall.ENETDOWN) {
				time.Sleep(time.Millisecond) // a failing socket must not spin
			}
			continue
		}
		failures = 0
		// Until dispatched, the frame is one a free verdict must wait for
		// if it came before the verdict was due (see behind).
		at := p.clock.Now()
		p.inHand.Store(int64(at.Sub(p.epoch)))
		p.dispatch(buf[:n], at)
		p.inHand.Store(noFrame)
	}
}

// noFrame is Prober.inHand when the reader holds no frame.
const noFrame = math.MinInt64

// behind reports whether frames received before now may not have been
// dispatched yet: the reader holds one it read earlier (and waits for p.mu),
// or the transport says frames wait in its queue.
func (p *Prober) behind(now time.Time) bool {
	if at := p.inHand.Load(); at != noFrame && at < int64(now.Sub(p.epoch)) {
		return true
	}
	if q, ok := p.t.(ReadQueuer); ok {
		queued, err := q.ReadQueued()
		return err == nil && queued
	}
	return false
}

// dispatch runs frame b, read at time at, past every probe, claim and
// monitor.
func (p *Prober) dispatch(b []byte, at time.Time) {
	f, err := ParseFrame(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.FramesRead++
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			p.stats.Malformed++
		} else {
			p.stats.Unrelated++
		}
		return
	}
	p.match(f.SenderIP, &f, at)
	if f.TargetIP != f.SenderIP {
		p.match(f.TargetIP, &f, at)
	}
	for m := range p.monitors {
		m.observe(p, &f, at)
	}
	p.arm()
}

// match runs the frame past every probe and claim of addr: one map lookup each.
func (p *Prober) match(addr netip.Addr, f *Frame, now time.Time) {
	if !addr.IsValid() {
		return
	}
	for pr := p.probes[addr]; pr != nil; pr = pr.next {
		c := Check{Addr: addr, Phase: PhaseProbing, MAC: p.mac, OwnMACs: p.own, Nonce: pr.nonce}
		switch Classify(&c, f) {
		case Conflict:
			pr.conflict(p, f, Answered, now)
		case SimultaneousProbe:
			pr.conflict(p, f, Probing, now)
		}
	}
	if cl := p.claims[addr]; cl != nil {
		c := Check{Addr: addr, Phase: PhaseAnnounced, MAC: p.mac, OwnMACs: p.own, Nonce: cl.nonce}
		if Classify(&c, f) == Conflict {
			cl.onConflict(p, f, now)
		}
	}
}

// failAll ends every probe, announcement and claim in progress with err.
func (p *Prober) failAll(err error) {
	for _, head := range p.probes {
		for pr := head; pr != nil; {
			next := pr.next
			pr.finish(p, Unknown, err)
			pr = next
		}
	}
	for len(p.tasks) > 0 {
		if a, ok := p.tasks.remove(0).task.(*announcer); ok {
			a.end(err)
		}
	}
	for _, cl := range p.claims {
		cl.lose(p, Holder{}, err)
	}
}

// ---- multicast groups for IPv6 ----

func (p *Prober) joinGroup(mac net.HardwareAddr) error {
	key := string(mac)
	if p.groups[key] > 0 {
		p.groups[key]++
		return nil
	}
	if j, ok := p.t.(groupJoiner); ok {
		if err := j.JoinGroup(mac); err != nil {
			return fmt.Errorf("arpcheck: join group %s: %w", mac, linkError(err))
		}
	}
	p.groups[key] = 1
	return nil
}

func (p *Prober) leaveGroup(mac net.HardwareAddr) {
	key := string(mac)
	if p.groups[key] == 0 {
		return
	}
	p.groups[key]--
	if p.groups[key] == 0 {
		delete(p.groups, key)
		if l, ok := p.t.(groupLeaver); ok {
			_ = l.LeaveGroup(mac)
		}
	}
}

var allNodesMAC = multicastMAC(allNodes)

// ---- addresses ----

// checkAddr returns the address to probe for a, or why it cannot be probed.
func checkAddr(a netip.Addr) (netip.Addr, error) {
	a = a.Unmap().WithZone("")
	switch {
	case !a.IsValid():
		return a, fmt.Errorf("%w: invalid", ErrBadAddress)
	case a.IsUnspecified():
		return a, fmt.Errorf("%w: unspecified", ErrBadAddress)
	case a.IsMulticast():
		return a, fmt.Errorf("%w: multicast", ErrBadAddress)
	case a.IsLoopback():
		return a, fmt.Errorf("%w: loopback", ErrBadAddress)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return a, fmt.Errorf("%w: broadcast", ErrBadAddress)
	}
	return a, nil
}

// jitter draws a duration uniformly from [lo, hi].
func (p *Prober) jitter(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(p.rng.Int64N(int64(hi-lo)+1))
}

func (p *Prober) nonce() (n [6]byte) {
	v := p.rng.Uint64()
	for i := range n {
		n[i] = byte(v >> (8 * i))
	}
	return n
}

// usable says whether a new call may start: not closed, reader alive, link up.
func (p *Prober) usable() error {
	if p.closed {
		return ErrClosed
	}
	if p.readErr != nil {
		return p.readErr
	}
	return p.linkState()
}

// sleep waits d on the Prober's clock, or until ctx ends.
func (p *Prober) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	done := make(chan struct{})
	t := p.clock.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}
