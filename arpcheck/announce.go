package arpcheck

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// announcer sends a run of ARP announcements (or unsolicited neighbour
// advertisements) for one address.
type announcer struct {
	sched
	addr     netip.Addr
	left     int
	sent     int
	tries    int
	interval time.Duration
	done     chan error
	resume   func() // pause of the clock while the caller handles the end
	awaited  bool   // a caller waits on done (Announce), rather than nobody (a defence)
	finished bool
	defends  *claimState // the claim this announcement defends, if any
}

func (a *announcer) fire(p *Prober, now time.Time) {
	sent, err := p.sendFor(a, now, &a.tries, func(b []byte) []byte {
		if a.addr.Is4() {
			return AppendAnnouncement(b, p.mac, a.addr)
		}
		return AppendUnsolicitedAdvert(b, p.mac, a.addr)
	})
	if err != nil {
		a.endPaused(p, p.sendError("announce "+a.addr.String(), err))
		return
	}
	if !sent {
		return
	}
	a.sent++
	if a.left--; a.left > 0 {
		p.schedule(a, now.Add(a.interval))
		return
	}
	a.endPaused(p, nil)
}

func (a *announcer) end(err error) {
	if !a.finished {
		a.finished = true
		a.done <- err
	}
}

func (a *announcer) endPaused(p *Prober, err error) {
	if a.finished {
		return
	}
	if a.awaited {
		a.resume = p.pause()
	}
	a.end(err)
	if err != nil && a.defends != nil {
		// A defence that never left the socket defends nothing: the claim
		// ends with the send error, as probes and announcements do.
		a.defends.lose(p, Holder{}, err)
	}
}

// startAnnounce queues n announcements of addr, the first one now. Callers hold
// p.mu.
func (p *Prober) startAnnounce(addr netip.Addr, n int, awaited bool) *announcer {
	a := &announcer{sched: sched{idx: -1}, addr: addr, left: n, interval: p.timing.AnnounceInterval, done: make(chan error, 1), awaited: awaited}
	p.schedule(a, p.clock.Now())
	p.arm()
	return a
}

// Announce tells the link that this host now holds addr: AnnounceNum gratuitous
// ARP requests (sender and target IP both addr, from our MAC, broadcast),
// AnnounceInterval apart, the first at once. Neighbours that have addr in their
// caches replace the MAC they had, which is what moving a virtual IP needs
// after ip addr add on the new host. For an IPv6 address it sends unsolicited
// neighbour advertisements to all nodes with the override flag.
//
// Announce returns when the last announcement has left the socket, or with
// ctx.Err() if ctx ends first.
func (p *Prober) Announce(ctx context.Context, addr netip.Addr) error {
	a, err := checkAddr(addr)
	if err != nil {
		return &AddrError{Addr: addr, Err: err}
	}
	p.mu.Lock()
	if err := p.usable(); err != nil {
		p.mu.Unlock()
		return err
	}
	an := p.startAnnounce(a, p.timing.AnnounceNum, true)
	p.mu.Unlock()
	select {
	case err := <-an.done:
		p.mu.Lock()
		resume := an.resume
		p.mu.Unlock()
		if resume != nil {
			defer resume()
		}
		return err
	case <-ctx.Done():
		p.mu.Lock()
		p.unschedule(an)
		an.end(ctx.Err())
		if an.resume != nil {
			an.resume()
		}
		p.mu.Unlock()
		if an.sent == 0 {
			return fmt.Errorf("arpcheck: announce %s: %w", a, errors.Join(ErrNoProbeSent, ctx.Err()))
		}
		return ctx.Err()
	}
}
