package arpcheck

import "time"

// The scheduler: every timed step of every call (a probe due, a verdict due,
// an announcement, a send held back by the rate limit) is a task in one
// min-heap, and one timer of the Prober's clock points at the earliest.

// sched is the part of a scheduled task the heap needs. Tasks embed it.
type sched struct {
	at   time.Time
	key  int64  // at as nanoseconds since Prober.epoch: the heap's order
	seq  uint64 // order of scheduling, among tasks due at the same time
	idx  int    // position in the heap, -1 when not queued
	task task   // the task that embeds this sched
	// reserved: the rate limit holds a token for the task's next frame,
	// due when the task is.
	reserved bool
}

func (s *sched) base() *sched { return s }

type task interface {
	base() *sched
	fire(p *Prober, now time.Time)
}

// taskHeap is a binary min-heap of tasks by time, then by order of
// scheduling. It is container/heap's algorithm on concrete types, without an
// interface call per comparison: a large call pops every address four times
// or more.
type taskHeap []*sched

func (h taskHeap) less(i, j int) bool {
	a, b := h[i], h[j]
	return a.key < b.key || a.key == b.key && a.seq < b.seq
}

func (h taskHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

func (h taskHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2 // parent
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h taskHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		j := 2*i + 1
		if j >= n || j < 0 { // j < 0 after int overflow
			break
		}
		if r := j + 1; r < n && h.less(r, j) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}

func (h *taskHeap) push(s *sched) {
	s.idx = len(*h)
	*h = append(*h, s)
	h.up(s.idx)
}

// remove takes the task at position i out of the heap.
func (h *taskHeap) remove(i int) *sched {
	old := *h
	n := len(old) - 1
	if n != i {
		old.swap(i, n)
		if !old[:n].down(i) {
			old[:n].up(i)
		}
	}
	s := old[n]
	old[n] = nil
	*h = old[:n]
	s.idx = -1
	return s
}

// fix restores the order after the task at position i changed its time.
func (h taskHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// queued reports whether s is in the heap.
func (h taskHeap) queued(s *sched) bool {
	return s.idx >= 0 && s.idx < len(h) && h[s.idx] == s
}

// schedule (re)queues t at time at. Callers hold p.mu and call arm afterwards.
func (p *Prober) schedule(t task, at time.Time) {
	s := t.base()
	s.at, s.key, s.task = at, int64(at.Sub(p.epoch)), t
	if p.tasks.queued(s) {
		p.tasks.fix(s.idx)
		return
	}
	p.seq++
	s.seq = p.seq
	p.tasks.push(s)
}

func (p *Prober) unschedule(t task) {
	s := t.base()
	if p.tasks.queued(s) {
		p.tasks.remove(s.idx)
	}
	s.idx = -1
}

// arm points the one timer at the earliest task.
func (p *Prober) arm() {
	if len(p.tasks) == 0 || p.closed {
		return
	}
	at := p.tasks[0].at
	if p.timer != nil && !p.timerAt.IsZero() && at.Equal(p.timerAt) {
		return
	}
	d := max(at.Sub(p.clock.Now()), 0)
	p.timerAt = at
	if p.timer == nil {
		p.timer = p.clock.AfterFunc(d, p.onTimer)
		return
	}
	p.timer.Reset(d)
}

// onTimer runs every task that is due, in order.
func (p *Prober) onTimer() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.timerAt = time.Time{}
	now := p.clock.Now()
	due := int64(now.Sub(p.epoch))
	p.tick++
	for len(p.tasks) > 0 && p.tasks[0].key <= due {
		p.tasks.remove(0).task.fire(p, now)
	}
	p.arm()
}
