package arpcheck

import "time"

// Clock is the time source of a Prober: every wait of the RFC schedule, the rate
// limit and the defence interval goes through it. The real one is time's;
// arpchecktest.Clock is a fake one shared with an in-memory network.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, like
	// time.AfterFunc.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not happened; it reports whether it did.
	Stop() bool
	// Reset makes the call happen d from now instead, like time.Timer.Reset.
	Reset(d time.Duration) bool
}

// ClockPauser is the optional interface of a Clock that moves by itself, as
// arpchecktest's fake clock does when the network is idle. A Prober pauses it
// while it works outside timer callbacks (registering addresses, handing a
// verdict to its caller), so that fake time never jumps in the middle of that
// work; resume must be called exactly once.
type ClockPauser interface {
	Pause() (resume func())
}

func noop() {}

// pause pauses the clock if it can be paused.
func (p *Prober) pause() func() {
	if cp, ok := p.clock.(ClockPauser); ok {
		return cp.Pause()
	}
	return noop
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// RealClock is the wall clock, the default of Options.Clock.
var RealClock Clock = realClock{}
