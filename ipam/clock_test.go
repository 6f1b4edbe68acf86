package ipam

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCoarseClock(t *testing.T) {
	c := &coarseClock{tick: 100 * time.Microsecond, idle: 2}
	require.False(t, c.running())

	// The first read starts the ticker and reads the wall clock itself.
	before := time.Now().UnixNano()
	first := c.nowNano()
	require.GreaterOrEqual(t, first, before)
	require.True(t, c.running())

	// Later reads come from the ticker: never ahead of the wall clock, and
	// they advance.
	require.Eventually(t, func() bool {
		v := c.nowNano()
		require.LessOrEqual(t, v, time.Now().UnixNano())
		return v > first
	}, 10*time.Second, 50*time.Microsecond)

	// Unread, the ticker stops; the next read starts it again.
	require.Eventually(t, func() bool { return !c.running() }, 10*time.Second, time.Millisecond)
	before = time.Now().UnixNano()
	require.GreaterOrEqual(t, c.nowNano(), before)
	require.True(t, c.running())
	require.Eventually(t, func() bool { return !c.running() }, 10*time.Second, time.Millisecond)
}

// TestCoarseClockRace reads the clock from many goroutines while its
// ticker keeps stopping and starting (for -race).
func TestCoarseClockRace(t *testing.T) {
	c := &coarseClock{tick: 20 * time.Microsecond, idle: 1}
	start := time.Now().UnixNano()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				v := c.nowNano()
				if v < start || v > time.Now().UnixNano() {
					t.Errorf("clock read %d outside [%d, now]", v, start)
					return
				}
				if i%100 == 0 {
					time.Sleep(50 * time.Microsecond) // let the ticker go idle
				}
			}
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool { return !c.running() }, 10*time.Second, time.Millisecond)
}

// TestDefaultClockLeaseTimes: with the default clock, lease times are the
// wall clock's (to its resolution), in UTC.
func TestDefaultClockLeaseTimes(t *testing.T) {
	ctx := context.Background()
	before := time.Now()
	a, err := New(ctx, NewMemoryStore(), PoolSpec{Name: "p", Subnet: prefix("192.0.2.0/24")})
	require.NoError(t, err)
	var prev time.Time
	for i, owner := range []string{"a", "b", "c", "d"} {
		l, err := a.Allocate(ctx, "p", owner)
		require.NoError(t, err)
		after := time.Now()
		if i == 0 { // a fresh allocator's clock reads the wall clock itself
			require.False(t, l.Allocated.Before(before.Truncate(0)), "%v before %v", l.Allocated, before)
		}
		require.False(t, l.Allocated.After(after), "%v after %v", l.Allocated, after)
		require.False(t, l.Allocated.Before(prev), "lease times go back")
		require.Equal(t, time.UTC, l.Allocated.Location())
		prev = l.Allocated
	}
}
