package arpcheck

import (
	"fmt"
	"time"
)

// Timing is the schedule of probes and announcements, with RFC 5227's names.
// Every probed address runs this schedule on its own, with its own jitter: a
// first probe after a random wait in [0, ProbeWait], ProbeNum probes spaced by a
// random gap in [ProbeMin, ProbeMax], then AnnounceWait of listening after the
// last probe before the address is declared free. Both waits are drawn
// uniformly, to the nanosecond, from Options.Rand (RFC 5227 §2.1.1).
type Timing struct {
	ProbeWait         time.Duration // random delay before the first probe
	ProbeNum          int           // number of probes
	ProbeMin          time.Duration // minimum gap between probes
	ProbeMax          time.Duration // maximum gap between probes
	AnnounceWait      time.Duration // listening after the last probe
	AnnounceNum       int           // number of announcements
	AnnounceInterval  time.Duration // gap between announcements
	MaxConflicts      int           // conflicts before Claim is rate limited
	RateLimitInterval time.Duration // gap between Claim attempts past MaxConflicts
	DefendInterval    time.Duration // minimum gap between defending announcements
	// Linger is how long an address that met a conflict keeps listening for
	// further holders before its result is final. It is not an RFC value:
	// arping -D stops at the first reply and so names only one holder.
	Linger time.Duration
}

// RFC 5227 §1.1 constants.
const (
	RFCProbeWait         = 1 * time.Second
	RFCProbeNum          = 3
	RFCProbeMin          = 1 * time.Second
	RFCProbeMax          = 2 * time.Second
	RFCAnnounceWait      = 2 * time.Second
	RFCAnnounceNum       = 2
	RFCAnnounceInterval  = 2 * time.Second
	RFCMaxConflicts      = 10
	RFCRateLimitInterval = 60 * time.Second
	RFCDefendInterval    = 10 * time.Second
)

// RFC is the exact RFC 5227 schedule: a free address is decided 4 to 7 seconds
// after probing starts (4 to 6 after its first probe).
var RFC = Timing{
	ProbeWait:         RFCProbeWait,
	ProbeNum:          RFCProbeNum,
	ProbeMin:          RFCProbeMin,
	ProbeMax:          RFCProbeMax,
	AnnounceWait:      RFCAnnounceWait,
	AnnounceNum:       RFCAnnounceNum,
	AnnounceInterval:  RFCAnnounceInterval,
	MaxConflicts:      RFCMaxConflicts,
	RateLimitInterval: RFCRateLimitInterval,
	DefendInterval:    RFCDefendInterval,
	Linger:            200 * time.Millisecond,
}

// Fast is RFC scaled to NetworkManager's 200 ms duplicate address detection
// budget (ipv4.dad-timeout): three probes, an address decided within 200 ms of
// its first probe unless the send rate holds it back. Announcement, conflict
// and defence values stay RFC's, since they protect neighbours, not latency.
var Fast = Scaled(200 * time.Millisecond)

// Scaled returns RFC with the probing part (ProbeWait, ProbeMin, ProbeMax,
// AnnounceWait) shrunk so that the longest schedule, 7 s in RFC, lasts total.
// Linger is scaled too (5.7 ms in Fast), with a floor of 5 ms: holders on one
// segment answer the same broadcast probe within a millisecond of each other,
// so a short linger still names them all while a controller streaming results
// hears of a conflict within 10 ms of the first reply. A total of 0 or less
// returns RFC.
func Scaled(total time.Duration) Timing {
	t := RFC
	if total <= 0 {
		return t
	}
	longest := RFCProbeWait + (RFCProbeNum-1)*RFCProbeMax + RFCAnnounceWait
	scale := func(d time.Duration) time.Duration {
		return time.Duration(int64(d) * int64(total) / int64(longest))
	}
	unit := scale(time.Second) // RFC's values are whole seconds
	t.ProbeWait, t.ProbeMin, t.ProbeMax = unit, unit, 2*unit
	// The remainder, so that rounding never makes the schedule overrun total.
	t.AnnounceWait = total - t.ProbeWait - (RFCProbeNum-1)*t.ProbeMax
	t.Linger = max(scale(RFC.Linger), 5*time.Millisecond)
	return t
}

// Longest is the longest time one address can take from registration to a
// verdict with t, when sends are not held back by the rate limit.
func (t Timing) Longest() time.Duration {
	return t.ProbeWait + time.Duration(max(t.ProbeNum-1, 0))*t.ProbeMax + t.AnnounceWait
}

// Validate reports the first inconsistent field of t.
func (t Timing) Validate() error {
	switch {
	case t.ProbeNum < 1:
		return fmt.Errorf("%w: ProbeNum %d: want at least 1 probe", ErrBadOptions, t.ProbeNum)
	case t.ProbeWait < 0 || t.ProbeMin < 0 || t.AnnounceWait < 0 || t.Linger < 0 || t.AnnounceInterval < 0 ||
		t.DefendInterval < 0 || t.RateLimitInterval < 0:
		return fmt.Errorf("%w: timing %+v: negative duration", ErrBadOptions, t)
	case t.ProbeMax < t.ProbeMin:
		return fmt.Errorf("%w: ProbeMax %v below ProbeMin %v", ErrBadOptions, t.ProbeMax, t.ProbeMin)
	case t.AnnounceNum < 1:
		return fmt.Errorf("%w: AnnounceNum %d: want at least 1", ErrBadOptions, t.AnnounceNum)
	case t.MaxConflicts < 1:
		return fmt.Errorf("%w: MaxConflicts %d: want at least 1", ErrBadOptions, t.MaxConflicts)
	}
	return nil
}
