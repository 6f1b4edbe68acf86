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
		_, ok := b.take(now, 60)
		require.True(t, ok, "burst of 2")
	}
	wait, ok := b.take(now, 60)
	require.False(t, ok)
	assert.Equal(t, 10*time.Millisecond, wait)
	_, ok = b.take(now.Add(wait), 60)
	assert.True(t, ok, "one token back after 1/rate")
}

func TestBucketBits(t *testing.T) {
	b := newBucket(Polite)
	now := time.Unix(0, 0)
	_, ok := b.take(now, 60)
	require.True(t, ok)
	wait, ok := b.take(now, 60)
	require.False(t, ok)
	// 84 bytes on the wire at 256 kbit/s: 2.625 ms per frame, arp-scan's pace.
	assert.Equal(t, 2625*time.Microsecond, wait)
}

func TestBucketSteadyRate(t *testing.T) {
	b := newBucket(Rate{PacketsPerSecond: 1000, Burst: 1})
	now := time.Unix(0, 0)
	sent := 0
	for now.Before(time.Unix(1, 0)) {
		if wait, ok := b.take(now, 60); ok {
			sent++
		} else {
			now = now.Add(wait)
		}
	}
	assert.InDelta(t, 1000, sent, 2)
}

func TestUnlimitedAndDefault(t *testing.T) {
	b := newBucket(Unlimited)
	for range 100000 {
		_, ok := b.take(time.Unix(0, 0), 60)
		require.True(t, ok)
	}
	d := newBucket(Rate{})
	assert.Equal(t, DefaultRate.PacketsPerSecond, d.perSec)
	assert.ErrorIs(t, Rate{PacketsPerSecond: 1, BitsPerSecond: 1}.validate(), ErrBadOptions)
	assert.ErrorIs(t, Rate{PacketsPerSecond: -1}.validate(), ErrBadOptions)
}
