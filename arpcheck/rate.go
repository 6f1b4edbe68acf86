package arpcheck

import (
	"fmt"
	"math"
	"time"
)

// Rate limits what a Prober puts on the wire. Every frame it sends, probes,
// announcements and defences of all calls alike, takes tokens from one bucket.
// Set PacketsPerSecond or BitsPerSecond (not both); the zero Rate is
// DefaultRate.
type Rate struct {
	// PacketsPerSecond is the steady frame rate.
	PacketsPerSecond float64
	// BitsPerSecond is the steady bandwidth, counting each frame as it occupies
	// the wire: frame, FCS, preamble and inter-frame gap (len+24 bytes).
	BitsPerSecond float64
	// Burst is how many frames may go out back to back after a quiet spell;
	// 0 means 1.
	Burst int
}

// DefaultRate is used when Options.Rate is zero: 20,000 frames/s in bursts of 64,
// about 13 Mbit/s of minimum-size frames; a /16 of three probes each needs 10 s.
var DefaultRate = Rate{PacketsPerSecond: 20000, Burst: 64}

// Polite is arp-scan's default bandwidth, 256 kbit/s (about 380 probes/s), for
// links shared with people who will notice.
var Polite = Rate{BitsPerSecond: 256000, Burst: 1}

// Unlimited sends as fast as the socket takes frames.
var Unlimited = Rate{PacketsPerSecond: math.Inf(1)}

func (r Rate) validate() error {
	if r.PacketsPerSecond < 0 || r.BitsPerSecond < 0 || r.Burst < 0 || math.IsNaN(r.PacketsPerSecond) || math.IsNaN(r.BitsPerSecond) {
		return fmt.Errorf("%w: rate %+v: negative or NaN", ErrBadOptions, r)
	}
	if r.PacketsPerSecond > 0 && r.BitsPerSecond > 0 {
		return fmt.Errorf("%w: rate %+v: set packets or bits per second, not both", ErrBadOptions, r)
	}
	return nil
}

// bucket is a token bucket, kept as the time by which it will have refilled
// every token spent (the GCRA's theoretical arrival time), in whole
// nanoseconds so that frames held back leave exactly the rate apart. In packet
// mode a frame costs 1 token, in bit mode its wire size in bits.
type bucket struct {
	perSec   float64 // tokens per second; +Inf for no limit
	capacity float64 // tokens
	bits     bool
	full     time.Time // when the bucket is full again
}

func newBucket(r Rate) bucket {
	if r.PacketsPerSecond == 0 && r.BitsPerSecond == 0 {
		r = DefaultRate
	}
	burst := float64(max(r.Burst, 1))
	b := bucket{perSec: r.PacketsPerSecond, capacity: burst}
	if r.BitsPerSecond > 0 {
		b.perSec, b.bits = r.BitsPerSecond, true
		b.capacity = burst * wireBits(minFrameLen)
	}
	return b
}

func wireBits(frameLen int) float64 { return float64(frameLen+24) * 8 }

// reserve spends the tokens for a frame of n bytes asked for at now, and says
// how long the frame must wait for them: 0 when the bucket has them, otherwise
// until it has refilled them, the bucket being in debt meanwhile. Frames
// reserved one after the other so leave in that order, at the rate.
func (b *bucket) reserve(now time.Time, n int) (wait time.Duration) {
	if math.IsInf(b.perSec, 1) {
		return 0
	}
	cost := 1.0
	if b.bits {
		cost = min(wireBits(n), b.capacity)
	}
	refill := time.Duration(math.Ceil(cost / b.perSec * float64(time.Second)))
	// How far the bucket may be below full and still hold cost tokens.
	slack := time.Duration((b.capacity - cost) / b.perSec * float64(time.Second))
	if b.full.Before(now) {
		b.full = now
	}
	wait = max(b.full.Sub(now)-slack, 0)
	b.full = b.full.Add(refill)
	return wait
}
