package arpcheck

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// BatchOptions shape one ProbeAll call.
type BatchOptions struct {
	// StopOnConflict ends the call at the first address found in use: that
	// result is delivered at once, without lingering for more holders, and the
	// addresses still in flight are reported Unknown ("stopped after a
	// conflict"). Addresses not yet started are not reported.
	StopOnConflict bool
}

// errStopped is the reason of addresses cut short by StopOnConflict.
var errStopped = errors.New("stopped after a conflict on another address")

type probeState uint8

const (
	stWaiting   probeState = iota // before a probe is due
	stListening                   // all probes sent, waiting AnnounceWait
	stLingering                   // a conflict seen, collecting more holders
	stDone
)

// probe is one address being checked: one task in the scheduler, one entry in
// the address map.
type probe struct {
	sched
	addr     netip.Addr
	call     *call
	next     *probe // further probes of the same address (other calls)
	prevC    *probe // the call's list of probes in flight
	nextC    *probe
	state    probeState
	sent     int
	tries    int  // send attempts of the current probe that failed with ENOBUFS
	catchUps int  // times the free verdict waited for the reader
	joined   bool // IPv6: the MLD report for the solicited-node group went out
	nonce    [6]byte
	group    net.HardwareAddr // solicited-node group joined for IPv6
	started  time.Time
	drops    uint64 // kernel drops when the probe was registered
	holders  []Holder
}

const maxHolders = 32

// maxProxyMACs bounds the holder MACs one call counts for the proxy-ARP hint.
const maxProxyMACs = 1 << 16

// A free verdict waits up to maxCatchUps*catchUpWait for the reader to read
// the frames that arrived in time.
const (
	maxCatchUps = 100
	catchUpWait = 100 * time.Microsecond
)

// call is one ProbeAll invocation.
type call struct {
	// ready holds the verdicts reached and not yet taken by the caller's
	// goroutine, at most one per address in flight; readyResume is the clock
	// pause taken with the first of them, so that fake time stands still until
	// the caller has handled them. Both are guarded by Prober.mu.
	ready       []Result
	readyResume func()
	spare       []Result      // the other buffer of ready, reused
	wake        chan struct{} // capacity 1: ready has verdicts
	stop        bool
	stopped     bool
	inflight    *probe          // list head
	byMAC       map[[6]byte]int // distinct probed addresses each holder MAC answered for
}

func (pr *probe) fire(p *Prober, now time.Time) {
	switch pr.state {
	case stWaiting:
		if pr.addr.Is6() && !pr.joined {
			// RFC 4862 §5.4.2: join the solicited-node group, on the wire too,
			// before the first solicitation.
			group, _ := SolicitedNodeGroup(pr.addr)
			sent, err := p.sendFor(pr, now, &pr.tries, func(b []byte) []byte { return AppendMLDReport(b, p.mac, group) })
			if err != nil {
				p.failAll(p.sendError("join group for "+pr.addr.String(), err))
				return
			}
			if sent {
				pr.joined = true
				p.schedule(pr, now) // the solicitation follows in this same tick
			}
			return
		}
		sent, err := p.sendFor(pr, now, &pr.tries, func(b []byte) []byte { return pr.appendTo(b, p.mac) })
		if err != nil {
			p.failAll(p.sendError("send probe for "+pr.addr.String(), err))
			return
		}
		if !sent {
			return
		}
		pr.sent++
		if pr.sent == 1 {
			pr.started = now
		}
		if pr.sent < p.timing.ProbeNum {
			p.schedule(pr, now.Add(p.jitter(p.timing.ProbeMin, p.timing.ProbeMax)))
			return
		}
		pr.state = stListening
		p.schedule(pr, now.Add(p.timing.AnnounceWait))
	case stListening:
		// RFC 5227 §2.1.1: a reply received by ANNOUNCE_WAIT after the last
		// probe is a conflict, also one not yet read when that time comes.
		if p.behind(now) {
			if pr.catchUps < maxCatchUps {
				pr.catchUps++
				p.schedule(pr, now.Add(catchUpWait))
				return
			}
			pr.finish(p, Unknown, fmt.Errorf("arpcheck: %s: frames that arrived before its verdict was due were still unread %v later", pr.addr, maxCatchUps*catchUpWait))
			return
		}
		if err := p.checkLink(); err != nil {
			p.failAll(err)
			return
		}
		if d := p.stats.KernelDrops - pr.drops; d > 0 {
			pr.finish(p, Unknown, fmt.Errorf("arpcheck: the socket dropped %d frames while %s was probed, a reply may be among them", d, pr.addr))
			return
		}
		pr.finish(p, Free, nil)
	case stLingering:
		pr.finish(p, InUse, nil)
	}
}

func (pr *probe) appendTo(b []byte, mac net.HardwareAddr) []byte {
	if pr.addr.Is4() {
		return AppendProbe(b, mac, pr.addr)
	}
	return AppendDADSolicit(b, mac, pr.addr, pr.nonce)
}

// conflict records a holder; the first one ends probing.
func (pr *probe) conflict(p *Prober, f *Frame, kind HolderKind, now time.Time) {
	mac := f.SenderMAC
	if len(mac) != 6 {
		mac = f.EthSrc
	}
	for i := range pr.holders {
		h := &pr.holders[i]
		if macEqual(h.MAC, mac) {
			h.LastSeen = now
			h.Frames++
			if kind == Answered {
				h.Kind = Answered
			}
			return
		}
	}
	if len(pr.holders) < maxHolders {
		pr.holders = append(pr.holders, Holder{
			MAC: append(net.HardwareAddr(nil), mac...), EthSrc: append(net.HardwareAddr(nil), f.EthSrc...),
			Kind: kind, FirstSeen: now, LastSeen: now, Frames: 1,
		})
		if pr.call.byMAC == nil {
			pr.call.byMAC = make(map[[6]byte]int)
		}
		// Bounded: a flood of replies from made-up MACs over a long call must
		// not grow it without end; past the bound only known MACs count.
		if _, known := pr.call.byMAC[[6]byte(mac)]; known || len(pr.call.byMAC) < maxProxyMACs {
			pr.call.byMAC[[6]byte(mac)]++
		}
	}
	if pr.state == stLingering {
		return
	}
	if pr.call.stop {
		pr.finish(p, InUse, nil)
		return
	}
	pr.state = stLingering
	p.schedule(pr, now.Add(p.timing.Linger))
}

// finish delivers the probe's result and forgets it. err explains Unknown.
func (pr *probe) finish(p *Prober, st Status, err error) {
	if pr.state == stDone {
		return
	}
	pr.state = stDone
	p.unschedule(pr)
	// Unlink from the address chain.
	if head := p.probes[pr.addr]; head == pr {
		if pr.next == nil {
			delete(p.probes, pr.addr)
		} else {
			p.probes[pr.addr] = pr.next
		}
	} else {
		for q := head; q != nil; q = q.next {
			if q.next == pr {
				q.next = pr.next
				break
			}
		}
	}
	pr.next = nil
	// Unlink from the call.
	c := pr.call
	if pr.prevC != nil {
		pr.prevC.nextC = pr.nextC
	} else if c.inflight == pr {
		c.inflight = pr.nextC
	}
	if pr.nextC != nil {
		pr.nextC.prevC = pr.prevC
	}
	if pr.group != nil {
		p.leaveGroup(pr.group)
		p.leaveGroup(allNodesMAC)
	}
	r := Result{Addr: pr.addr, Status: st, ProbesSent: pr.sent, Started: pr.started, Decided: p.clock.Now(), Err: err}
	if len(pr.holders) > 0 {
		r.Status = InUse
		r.Err = nil
		r.Holders = pr.holders
		for i := range r.Holders {
			r.Holders[i].ProxyARP = c.byMAC[[6]byte(r.Holders[i].MAC)] >= p.proxMin
		}
		r.Reason = r.Holders[0].Kind.String()
	} else if r.Status == Unknown {
		if err == nil {
			err = errors.New("arpcheck: no verdict")
			r.Err = err
		}
		r.Reason = err.Error()
	}
	if p.log.Enabled(context.Background(), slog.LevelDebug) { // spares boxing the arguments
		p.log.Debug("arpcheck: verdict", "addr", r.Addr, "status", r.Status, "holders", len(r.Holders), "probes", r.ProbesSent)
	}
	if len(c.ready) == 0 {
		c.readyResume = p.pause()
	}
	c.ready = append(c.ready, r)
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
	if c.stop && r.Status == InUse && !c.stopped {
		// Stop the rest here, in the same instant, not when the caller gets to it.
		c.stopped = true
		for c.inflight != nil {
			c.inflight.finish(p, Unknown, errStopped)
		}
	}
}

// Probe checks one address and returns its verdict. The error is non-nil when
// the verdict is Unknown (and then wraps ErrNoProbeSent if no probe left the
// socket) or the address cannot be probed.
func (p *Prober) Probe(ctx context.Context, addr netip.Addr) (Result, error) {
	var res Result
	err := p.ProbeAll(ctx, func(yield func(netip.Addr) bool) { yield(addr) }, BatchOptions{}, func(r Result) { res = r })
	return res, err
}

// ProbePrefix probes every host address of prefix (see Hosts) at once.
func (p *Prober) ProbePrefix(ctx context.Context, prefix netip.Prefix, opts BatchOptions, fn func(Result)) error {
	if !prefix.IsValid() {
		return fmt.Errorf("arpcheck: prefix %s: %w", prefix, ErrBadAddress)
	}
	return p.ProbeAll(ctx, Hosts(prefix), opts, fn)
}

// ProbeAll probes every address of addrs at once, each on its own RFC 5227
// schedule (RFC 4862 DAD for IPv6 addresses), and calls fn with each verdict as
// soon as it is reached, in the order verdicts are reached, from the calling
// goroutine. At most Options.MaxInFlight addresses are in flight; the sequence
// is read lazily, so a large prefix costs memory for the window only.
//
// ProbeAll returns when every address read from addrs has a verdict. Its error is
// nil when every verdict is Free or InUse. Otherwise it is the first cause: an
// *AddrError for an address that cannot be probed, ErrLinkDown, a send or read
// error, or ctx.Err(); it also wraps ErrNoProbeSent when an address was given up
// before its first probe. Addresses cut short are still reported, as Unknown.
func (p *Prober) ProbeAll(ctx context.Context, addrs iter.Seq[netip.Addr], opts BatchOptions, fn func(Result)) error {
	p.mu.Lock()
	err := p.usable()
	p.mu.Unlock()
	if err != nil {
		return err
	}
	c := &call{wake: make(chan struct{}, 1), stop: opts.StopOnConflict}
	resume := p.pause() // time stands still while this goroutine works
	defer func() { resume() }()
	var (
		inflight, index, unsent int
		firstErr                error
		stopped, cancelled      bool
		done                    = ctx.Done()
	)
	note := func(err error) {
		if firstErr == nil && err != nil {
			firstErr = err
		}
	}
	deliver := func(r Result) {
		if r.Status == Unknown {
			note(r.Err)
			if r.ProbesSent == 0 {
				unsent++
			}
		}
		if fn != nil {
			fn(r)
		}
		if c.stop && r.Status == InUse {
			stopped = true
		}
	}
	// drain delivers the verdicts ready, if any, and says whether there were.
	drain := func() bool {
		batch, bresume := p.takeReady(c)
		if len(batch) == 0 {
			return false
		}
		// The batch came with its own pause of the clock, which keeps time
		// still from here on.
		resume()
		resume = bresume
		inflight -= len(batch)
		for _, r := range batch {
			deliver(r)
		}
		return true
	}
	cancel := func() {
		done, cancelled = nil, true
		note(ctx.Err())
		p.cancelCall(c, ctx.Err())
	}
	// waitOne delivers the verdicts ready, waiting for at least one.
	waitOne := func() {
		for !drain() {
			resume() // time may move while we wait
			resume = noop
			select {
			case <-c.wake:
			case <-done:
				cancel()
			}
		}
	}
	for a := range addrs {
		// Hand over verdicts as they come, and notice the end of ctx, also
		// while a long sequence is being read.
		select {
		case <-c.wake:
			drain()
		case <-done:
			cancel()
		default:
		}
		for inflight >= p.maxIn && !cancelled && !stopped {
			waitOne()
		}
		if stopped {
			break // addresses not started are not reported
		}
		i := index
		index++
		addr, aerr := checkAddr(a)
		if aerr != nil {
			e := &AddrError{Addr: a, Index: i, Err: aerr}
			note(e)
			if fn != nil {
				fn(Result{Addr: a, Status: Unknown, Reason: aerr.Error(), Err: e})
			}
			continue
		}
		if cancelled {
			// Read, but ctx ended before its first probe: Unknown, and the
			// last address this call reads.
			err := ctx.Err()
			deliver(Result{Addr: addr, Status: Unknown, Reason: err.Error(), Err: err})
			break
		}
		if err := p.register(c, addr); err != nil {
			deliver(Result{Addr: addr, Status: Unknown, Reason: err.Error(), Err: err})
			break
		}
		inflight++
	}
	for inflight > 0 {
		waitOne()
	}
	if errors.Is(firstErr, errStopped) {
		firstErr = nil
	}
	if firstErr != nil && unsent > 0 {
		return fmt.Errorf("arpcheck: %d addresses had no probe sent: %w", unsent, errors.Join(ErrNoProbeSent, firstErr))
	}
	return firstErr
}

func (p *Prober) register(c *call, addr netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.usable(); err != nil {
		return err
	}
	now := p.clock.Now()
	pr := &probe{sched: sched{idx: -1}, addr: addr, call: c, drops: p.stats.KernelDrops}
	if addr.Is6() {
		pr.nonce = p.nonce()
		_, g := SolicitedNodeGroup(addr)
		if err := p.joinGroup(g); err != nil {
			return err
		}
		if err := p.joinGroup(allNodesMAC); err != nil {
			p.leaveGroup(g)
			return err
		}
		pr.group = g
	}
	pr.next = p.probes[addr]
	p.probes[addr] = pr
	pr.nextC = c.inflight
	if c.inflight != nil {
		c.inflight.prevC = pr
	}
	c.inflight = pr
	p.schedule(pr, now.Add(p.jitter(0, p.timing.ProbeWait)))
	p.arm()
	return nil
}

// takeReady hands the verdicts of c reached so far, and the clock pause that
// came with them, to the caller's goroutine. The slice is c's until the next
// call.
func (p *Prober) takeReady(c *call) ([]Result, func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	batch, resume := c.ready, c.readyResume
	clear(c.spare) // the previous batch, delivered: drop its holders
	c.ready, c.spare, c.readyResume = c.spare[:0], batch, nil
	return batch, resume
}

// cancelCall ends every probe of c still in flight with err.
func (p *Prober) cancelCall(c *call, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c.inflight != nil {
		c.inflight.finish(p, Unknown, err)
	}
	p.arm()
}

// Hosts yields every host address of prefix in order: for IPv4 all but the
// network and broadcast addresses (all of them for /31 and /32), for IPv6 all
// but the subnet-router anycast address (all of them for /127 and /128). A
// masked prefix is used; an invalid one yields nothing.
func Hosts(prefix netip.Prefix) iter.Seq[netip.Addr] {
	return func(yield func(netip.Addr) bool) {
		if !prefix.IsValid() {
			return
		}
		prefix = prefix.Masked()
		bits := prefix.Addr().BitLen() - prefix.Bits()
		a := prefix.Addr()
		skipEnds := bits >= 2
		if skipEnds {
			a = a.Next() // network address (or subnet-router anycast)
		}
		for ; a.IsValid() && prefix.Contains(a); a = a.Next() {
			if skipEnds && a.Is4() && !prefix.Contains(a.Next()) {
				return // IPv4 broadcast
			}
			if !yield(a) {
				return
			}
		}
	}
}
