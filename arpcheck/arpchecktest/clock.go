package arpchecktest

import (
	"container/heap"
	"sync"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
)

// Clock is the fake clock of a Network, shared by the network (delays,
// scripted hosts) and every Prober made with Network.NewProber. Time moves
// only when it is told to, or, while Auto is on (the default), by itself:
// whenever a Prober waits for one of its own timers and every frame on the
// segment has been read and handled, the clock jumps to the next timer. An RFC
// probe of 7 s so takes microseconds, and a test never sleeps.
//
// Timers of the network itself (a delayed frame, a scripted host's next
// announcement) fire on the way but do not move time on their own: a test
// waiting only for those calls Advance.
type Clock struct {
	n       *Network
	now     time.Time
	timers  timerHeap
	seq     uint64
	active  int // queued timers made through AfterFunc
	manual  bool
	firing  int // callbacks running now
	paused  int // Pause calls not yet resumed
	stopped bool
}

type fakeTimer struct {
	c       *Clock
	at      time.Time
	seq     uint64
	idx     int
	f       func()
	passive bool
}

type timerHeap []*fakeTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*fakeTimer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	return c.now
}

// AfterFunc calls f in the clock's own goroutine once the fake time has moved d
// on. It satisfies arpcheck.Clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) arpcheck.Timer {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	return c.afterLocked(d, f, false)
}

func (c *Clock) afterLocked(d time.Duration, f func(), passive bool) *fakeTimer {
	t := &fakeTimer{c: c, f: f, idx: -1, passive: passive}
	t.queue(d)
	return t
}

func (t *fakeTimer) queue(d time.Duration) {
	c := t.c
	t.at = c.now.Add(max(d, 0))
	c.seq++
	t.seq = c.seq
	if t.idx >= 0 {
		heap.Fix(&c.timers, t.idx)
	} else {
		heap.Push(&c.timers, t)
		if !t.passive {
			c.active++
		}
	}
	c.n.cond.Broadcast()
}

func (t *fakeTimer) unqueue() bool {
	c := t.c
	if t.idx < 0 {
		return false
	}
	heap.Remove(&c.timers, t.idx)
	if !t.passive {
		c.active--
	}
	return true
}

// Stop cancels the call; it reports whether the call was still pending.
func (t *fakeTimer) Stop() bool {
	t.c.n.mu.Lock()
	defer t.c.n.mu.Unlock()
	return t.unqueue()
}

// Reset makes the call happen d after the current fake time.
func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.n.mu.Lock()
	defer t.c.n.mu.Unlock()
	was := t.idx >= 0
	t.queue(d)
	return was
}

// Pause stops the clock from moving by itself until resume is called; Advance
// still moves it. Probers pause it while they work outside timer callbacks. It
// satisfies arpcheck.ClockPauser.
func (c *Clock) Pause() (resume func()) {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	c.paused++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.n.mu.Lock()
			defer c.n.mu.Unlock()
			c.paused--
			c.n.cond.Broadcast()
		})
	}
}

// SetAuto turns automatic advancing on (the default) or off. With it off, time
// moves only through Advance.
func (c *Clock) SetAuto(on bool) {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	c.manual = !on
	c.n.cond.Broadcast()
}

// Advance moves the fake time d on, firing every timer that falls due on the
// way, in order, and letting the network settle (every frame read and handled)
// before each one, so that what a timer sends is seen before the next fires.
func (c *Clock) Advance(d time.Duration) {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	target := c.now.Add(d)
	for !c.stopped {
		n.waitIdleLocked()
		if len(c.timers) == 0 || c.timers[0].at.After(target) {
			break
		}
		c.fireLocked()
	}
	if target.After(c.now) {
		c.now = target
	}
	n.cond.Broadcast()
}

// fireLocked pops the earliest timer, moves time to it and runs it without the
// lock held.
func (c *Clock) fireLocked() {
	t := heap.Pop(&c.timers).(*fakeTimer)
	if !t.passive {
		c.active--
	}
	if t.at.After(c.now) {
		c.now = t.at
	}
	c.firing++
	c.n.mu.Unlock()
	t.f()
	c.n.mu.Lock()
	c.firing--
	c.n.cond.Broadcast()
}

// run is the automatic driver: it fires the next timer whenever a Prober timer
// is pending and the network is idle.
func (c *Clock) run() {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	for !c.stopped {
		if !c.manual && c.active > 0 && c.firing == 0 && c.paused == 0 && n.idleLocked() {
			c.fireLocked()
			continue
		}
		n.cond.Wait()
	}
}
