package ipam

import (
	"sync"
	"sync/atomic"
	"time"
)

// The default clock (Options.Clock nil) is coarse: while allocations use
// it, a goroutine reads the wall clock every coarseTick and an allocation
// reads that value from memory. Reading the clock itself costs 25-65 ns on
// virtual machines (kvm-clock, Hyper-V), a large share of an Allocate; the
// memory read costs about one. The goroutine exits after coarseIdle ticks
// in which nobody read the clock, so an idle process wakes nobody, and the
// next reader starts it again (that read takes the time directly).
//
// There is one such clock per process (defaultClock), so the times of all
// Allocators in it never go back from one to the other (unless the system
// clock is set back): a release stamped by one Allocator is never in the
// future of another's FIFO cooldown check.
const (
	coarseTick = time.Millisecond
	coarseIdle = 8
)

// defaultClock is the Allocators' clock when Options.Clock is nil.
var defaultClock coarseClock

// coarseClock is the default clock; the zero value is ready to use.
type coarseClock struct {
	unix atomic.Int64 // Unix nanoseconds at the last tick; 0: no ticker
	_    [56]byte     // readers write used, rarely: keep it off unix's line
	used atomic.Bool  // read since the last tick
	mu   sync.Mutex   // guards starting and stopping the ticker
	tick time.Duration
	idle int
}

// nowNano returns the time in Unix nanoseconds, at most about a tick
// behind the wall clock (more only while the process is starved of CPU so
// long that its ticker goroutine cannot run).
func (c *coarseClock) nowNano() int64 {
	if t := c.unix.Load(); t != 0 {
		if !c.used.Load() { // once a tick: no cache line written per call
			c.used.Store(true)
		}
		return t
	}
	return c.start()
}

func (c *coarseClock) now() time.Time { return time.Unix(0, c.nowNano()) }

// start starts the ticker unless one runs, and returns the time: read
// now, or the ticker's if another reader started it meanwhile (so that
// reads never go back).
func (c *coarseClock) start() int64 {
	t := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unix.Load() == 0 {
		tick, idle := c.tick, c.idle
		if tick <= 0 {
			tick, idle = coarseTick, coarseIdle
		}
		c.used.Store(true)
		c.unix.Store(t)
		go c.run(tick, idle)
	}
	return c.unix.Load()
}

// run updates unix every tick until idle ticks pass without a reader.
func (c *coarseClock) run(tick time.Duration, idle int) {
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for quiet := 0; ; {
		<-tk.C
		c.unix.Store(time.Now().UnixNano())
		if c.used.Swap(false) {
			quiet = 0
			continue
		}
		if quiet++; quiet < idle {
			continue
		}
		c.mu.Lock()
		if c.used.Load() { // read meanwhile: keep going
			c.mu.Unlock()
			quiet = 0
			continue
		}
		// A reader that loaded unix just before this store gets a time at
		// most a tick old; the next one restarts the ticker.
		c.unix.Store(0)
		c.mu.Unlock()
		return
	}
}

// running reports whether the ticker goroutine is running (tests).
func (c *coarseClock) running() bool { return c.unix.Load() != 0 }
