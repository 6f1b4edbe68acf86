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

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// RealClock is the wall clock, the default of Options.Clock.
var RealClock Clock = realClock{}
