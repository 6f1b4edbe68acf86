package arpcheck

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBucketPackets(t *testing.T) {
	b := newBucket(Rate{PacketsPerSecond: 100, Burst: 2})
	now := time.Unix(0, 0)
	for range 2 {
		require.Zero(t, b.reserve(now, 60), "burst of 2")
	}
	// Those that must wait reserve the next tokens, in order, 1/rate apart.
	assert.Equal(t, 10*time.Millisecond, b.reserve(now, 60))
	assert.Equal(t, 20*time.Millisecond, b.reserve(now, 60))
	assert.Equal(t, 25*time.Millisecond, b.reserve(now.Add(5*time.Millisecond), 60), "asked later, still behind the others")
	assert.Zero(t, b.reserve(now.Add(40*time.Millisecond), 60), "one token back 10 ms after the last reserved")
}

func TestBucketBits(t *testing.T) {
	b := newBucket(Polite)
	now := time.Unix(0, 0)
	require.Zero(t, b.reserve(now, 60))
	// 84 bytes on the wire at 256 kbit/s: 2.625 ms per frame, arp-scan's pace.
	assert.Equal(t, 2625*time.Microsecond, b.reserve(now, 60))
	assert.Equal(t, 2*2625*time.Microsecond, b.reserve(now, 60))
}

// Over a second of frames all due at once, the bucket lets through the rate
// and the burst, no more.
func TestBucketSteadyRate(t *testing.T) {
	b := newBucket(Rate{PacketsPerSecond: 1000, Burst: 5})
	now := time.Unix(0, 0)
	sent := 0
	for b.reserve(now, 60) < time.Second {
		sent++
	}
	assert.Equal(t, 5+999, sent, "5 at once, then one each millisecond until 999 ms")
}

func TestUnlimitedAndDefault(t *testing.T) {
	b := newBucket(Unlimited)
	for range 100000 {
		require.Zero(t, b.reserve(time.Unix(0, 0), 60))
	}
	d := newBucket(Rate{})
	assert.Equal(t, DefaultRate.PacketsPerSecond, d.perSec)
	assert.ErrorIs(t, Rate{PacketsPerSecond: 1, BitsPerSecond: 1}.validate(), ErrBadOptions)
	assert.ErrorIs(t, Rate{PacketsPerSecond: -1}.validate(), ErrBadOptions)
}
