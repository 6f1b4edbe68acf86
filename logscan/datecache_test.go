package logscan

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestBSDDateCache: a date read again from the cache of the previous line's
// reads exactly as a fresh read does, whatever follows the clock.
func TestBSDDateCache(t *testing.T) {
	lines := []string{
		"Mar  2 09:00:00 web1 sshd[1]: a",
		"Mar  2 09:00:00 web1 sshd[1]: same stamp",
		"Mar  2 09:00:00.250 web1 sshd[1]: same second, with a fraction",
		"Mar  2 09:00:00 web1 sshd[1]: back",
		"Mar  2 09:00:01 web1 sshd[1]: next second",
		"Mar 12 09:00:01 web1 sshd[1]: two-digit day",
		"Mar  2 09:00:0",
		"Mar  2 09:00:00",
		"Mar  2 09:00:00x",
		"Mar  2 09:00:00 ",
	}
	cached := newTimeCtx(time.UTC, time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
	for _, l := range lines {
		fresh := newTimeCtx(time.UTC, time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
		var got, want dateParts
		gotEnd, gotOK := cached.parseBSDDate(l, 0, &got)
		wantEnd, wantOK := fresh.parseBSDDate(l, 0, &want)
		assert.Equal(t, wantOK, gotOK, "%q", l)
		assert.Equal(t, wantEnd, gotEnd, "%q", l)
		assert.Equal(t, want, got, "%q", l)
	}
}
