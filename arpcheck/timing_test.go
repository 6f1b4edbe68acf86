package arpcheck_test

import (
	"testing"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The RFC 5227 §1.1 constants, pinned: a change here is a change of protocol.
func TestRFCConstants(t *testing.T) {
	r := arpcheck.RFC
	assert.Equal(t, 1*time.Second, r.ProbeWait, "PROBE_WAIT")
	assert.Equal(t, 3, r.ProbeNum, "PROBE_NUM")
	assert.Equal(t, 1*time.Second, r.ProbeMin, "PROBE_MIN")
	assert.Equal(t, 2*time.Second, r.ProbeMax, "PROBE_MAX")
	assert.Equal(t, 2*time.Second, r.AnnounceWait, "ANNOUNCE_WAIT")
	assert.Equal(t, 2, r.AnnounceNum, "ANNOUNCE_NUM")
	assert.Equal(t, 2*time.Second, r.AnnounceInterval, "ANNOUNCE_INTERVAL")
	assert.Equal(t, 10, r.MaxConflicts, "MAX_CONFLICTS")
	assert.Equal(t, 60*time.Second, r.RateLimitInterval, "RATE_LIMIT_INTERVAL")
	assert.Equal(t, 10*time.Second, r.DefendInterval, "DEFEND_INTERVAL")
	assert.Equal(t, 7*time.Second, r.Longest())
	require.NoError(t, r.Validate())
}

func TestScaled(t *testing.T) {
	f := arpcheck.Fast
	assert.Equal(t, 200*time.Millisecond, f.Longest(), "NetworkManager's 200 ms budget")
	assert.Equal(t, arpcheck.RFC.ProbeNum, f.ProbeNum)
	assert.Equal(t, arpcheck.RFC.DefendInterval, f.DefendInterval, "defence is not scaled")
	assert.Equal(t, 2*f.ProbeMin, f.ProbeMax)
	require.NoError(t, f.Validate())
	assert.Equal(t, time.Second, arpcheck.Scaled(time.Second).Longest())
	assert.Equal(t, arpcheck.RFC, arpcheck.Scaled(0))
}

func TestTimingValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*arpcheck.Timing)
		want string
	}{
		{"no probes", func(t *arpcheck.Timing) { t.ProbeNum = 0 }, "ProbeNum 0"},
		{"max below min", func(t *arpcheck.Timing) { t.ProbeMax = t.ProbeMin - 1 }, "ProbeMax"},
		{"negative", func(t *arpcheck.Timing) { t.AnnounceWait = -1 }, "negative"},
		{"no announcements", func(t *arpcheck.Timing) { t.AnnounceNum = 0 }, "AnnounceNum 0"},
		{"no conflicts", func(t *arpcheck.Timing) { t.MaxConflicts = 0 }, "MaxConflicts 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := arpcheck.RFC
			tt.mod(&tm)
			err := tm.Validate()
			require.ErrorIs(t, err, arpcheck.ErrBadOptions)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
