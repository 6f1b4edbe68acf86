package arpcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// DefendPolicy is what Claim does when another host claims an address we
// hold (RFC 5227 §2.4).
type DefendPolicy uint8

const (
	// DefendOnce defends with one announcement, and gives the address up if a
	// second conflict comes within DefendInterval: RFC 5227 §2.4 (b), the
	// default.
	DefendOnce DefendPolicy = iota
	// DefendNever gives the address up at the first conflict: §2.4 (a).
	DefendNever
	// DefendAlways keeps the address whatever happens, announcing at most once
	// per DefendInterval: §2.4 (c), for routers and servers with well-known
	// addresses.
	DefendAlways
)

// String returns "once", "never" or "always".
func (d DefendPolicy) String() string {
	switch d {
	case DefendOnce:
		return "once"
	case DefendNever:
		return "never"
	case DefendAlways:
		return "always"
	}
	return fmt.Sprintf("defend(%d)", uint8(d))
}

// ClaimEventKind says what happened to a claimed address.
type ClaimEventKind uint8

// Kinds of ClaimEvent.
const (
	// Claimed: the address was found free and announced; we hold it now.
	Claimed ClaimEventKind = iota + 1
	// Conflicted: another host claimed the address.
	Conflicted
	// Defended: we answered a conflict with an announcement.
	Defended
	// Lost: we gave the address up.
	Lost
)

// String returns "claimed", "conflicted", "defended" or "lost".
func (k ClaimEventKind) String() string {
	switch k {
	case Claimed:
		return "claimed"
	case Conflicted:
		return "conflicted"
	case Defended:
		return "defended"
	case Lost:
		return "lost"
	}
	return "unknown"
}

// ClaimEvent is one step in the life of a claimed address.
type ClaimEvent struct {
	Kind   ClaimEventKind
	Addr   netip.Addr
	Holder Holder    // the other host, for Conflicted, Defended and Lost
	At     time.Time // on the Prober's clock
}

// ClaimOptions shape a Claim.
type ClaimOptions struct {
	// Defend is what to do when another host claims the address once it is
	// ours; the zero value is DefendOnce.
	Defend DefendPolicy
	// OnEvent, if set, is called from Claim's goroutine for every event, in
	// order. Events it falls more than 64 behind on are dropped and counted in
	// Stats.EventsDropped.
	OnEvent func(ClaimEvent)
}

type claimState struct {
	addr       netip.Addr
	policy     DefendPolicy
	nonce      [6]byte
	lastDefend time.Time
	events     chan ClaimEvent
	lost       chan struct{}
	lostErr    error
	holder     Holder
	done       bool
}

func (cl *claimState) emit(p *Prober, ev ClaimEvent) {
	select {
	case cl.events <- ev:
	default:
		p.stats.EventsDropped++
	}
}

func holderOf(f *Frame, now time.Time) Holder {
	mac := f.SenderMAC
	if len(mac) != 6 {
		mac = f.EthSrc
	}
	return Holder{MAC: append(net.HardwareAddr(nil), mac...), EthSrc: append(net.HardwareAddr(nil), f.EthSrc...),
		Kind: Answered, FirstSeen: now, LastSeen: now, Frames: 1}
}

func (cl *claimState) onConflict(p *Prober, f *Frame, now time.Time) {
	h := holderOf(f, now)
	cl.emit(p, ClaimEvent{Kind: Conflicted, Addr: cl.addr, Holder: h, At: now})
	fresh := cl.lastDefend.IsZero() || now.Sub(cl.lastDefend) >= p.timing.DefendInterval
	switch {
	case cl.policy == DefendNever, cl.policy == DefendOnce && !fresh:
		cl.lose(p, h, ErrAddressLost)
	case fresh:
		cl.lastDefend = now
		p.startAnnounce(cl.addr, 1, false).defends = cl
		cl.emit(p, ClaimEvent{Kind: Defended, Addr: cl.addr, Holder: h, At: now})
	}
}

func (cl *claimState) lose(p *Prober, h Holder, err error) {
	if cl.done {
		return
	}
	cl.done = true
	if p.claims[cl.addr] == cl {
		delete(p.claims, cl.addr)
	}
	cl.holder, cl.lostErr = h, err
	cl.emit(p, ClaimEvent{Kind: Lost, Addr: cl.addr, Holder: h, At: p.clock.Now()})
	close(cl.lost)
}

// Claim takes addr the RFC 5227 way and holds it until ctx ends: it probes (and
// returns a *ConflictError matching ErrInUse if someone holds it), announces it
// AnnounceNum times, then watches for other hosts claiming it and defends as
// opts.Defend says. If the address is lost it returns a *ConflictError
// matching ErrAddressLost. When ctx ends after the address was claimed, Claim
// returns nil.
//
// Claim only speaks ARP (or NDP); configuring the address on the interface
// (ip addr add), and so answering other hosts' probes, stays with the caller,
// who does it on the Claimed event.
//
// After MaxConflicts claims on this Prober found their address in use, further
// claims start at most one per RateLimitInterval, as RFC 5227 §2.1.1 requires.
func (p *Prober) Claim(ctx context.Context, addr netip.Addr, opts ClaimOptions) error {
	a, err := checkAddr(addr)
	if err != nil {
		return &AddrError{Addr: addr, Err: err}
	}
	p.mu.Lock()
	var wait time.Duration
	now := p.clock.Now()
	if p.conflict.count >= p.timing.MaxConflicts && !p.conflict.lastClaim.IsZero() {
		wait = p.conflict.lastClaim.Add(p.timing.RateLimitInterval).Sub(now)
	}
	p.conflict.lastClaim = now.Add(max(wait, 0))
	p.mu.Unlock()
	if err := p.sleep(ctx, wait); err != nil {
		return fmt.Errorf("arpcheck: claim %s: rate limited after %d conflicts: %w", a, p.timing.MaxConflicts, err)
	}

	res, err := p.Probe(ctx, a)
	if err != nil {
		return fmt.Errorf("arpcheck: claim %s: %w", a, err)
	}
	if res.Status == InUse {
		p.mu.Lock()
		p.conflict.count++
		p.conflict.lastClaim = res.Started // limits are counted between first probes
		p.mu.Unlock()
		return &ConflictError{Addr: a, Holder: res.Holders[0], Err: ErrInUse}
	}

	cl := &claimState{addr: a, policy: opts.Defend, events: make(chan ClaimEvent, 64), lost: make(chan struct{})}
	p.mu.Lock()
	if err := p.usable(); err != nil {
		p.mu.Unlock()
		return err
	}
	p.conflict.count = 0
	if old := p.claims[a]; old != nil {
		old.lose(p, Holder{MAC: p.MAC()}, fmt.Errorf("arpcheck: %s claimed again by another Claim call: %w", a, ErrAddressLost))
	}
	p.claims[a] = cl
	p.mu.Unlock()

	release := func() {
		p.mu.Lock()
		if p.claims[a] == cl {
			delete(p.claims, a)
		}
		cl.done = true
		p.mu.Unlock()
	}
	deliver := func(ev ClaimEvent) {
		if opts.OnEvent != nil {
			opts.OnEvent(ev)
		}
	}
	if err := p.Announce(ctx, a); err != nil {
		release()
		return fmt.Errorf("arpcheck: claim %s: %w", a, err)
	}
	deliver(ClaimEvent{Kind: Claimed, Addr: a, At: p.clock.Now()})
	for {
		select {
		case ev := <-cl.events:
			deliver(ev)
		case <-cl.lost:
			for len(cl.events) > 0 {
				deliver(<-cl.events)
			}
			if errors.Is(cl.lostErr, ErrAddressLost) {
				return &ConflictError{Addr: a, Holder: cl.holder, Err: cl.lostErr}
			}
			return cl.lostErr
		case <-ctx.Done():
			release()
			for len(cl.events) > 0 {
				deliver(<-cl.events)
			}
			return nil
		}
	}
}
