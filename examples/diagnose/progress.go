package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progressMin is the input size from which progress is shown.
const progressMin = 16 << 20

// progress writes "\rNAME: 42% (12 of 30 MB)" lines to stderr while a large
// input is read, when stderr is a terminal. A nil *progress shows nothing.
type progress struct {
	w io.Writer

	mu    sync.Mutex
	name  string
	total int64
	read  int64
	began time.Time
	last  time.Time
}

// newProgress returns a progress for w, or nil when w is not a terminal.
func newProgress(w io.Writer) *progress {
	if !isTerminal(w) {
		return nil
	}
	return &progress{w: w}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// start begins an input of size bytes; the function returned ends it.
func (p *progress) start(name string, size int64) func() {
	if p == nil || size < progressMin {
		return func() {}
	}
	p.mu.Lock()
	p.name, p.total, p.read, p.began, p.last = name, size, 0, time.Now(), time.Time{}
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.total == 0 {
			return
		}
		p.read = p.total
		p.show()
		fmt.Fprintln(p.w)
		p.total = 0
	}
}

// update reports the bytes read of the current input.
func (p *progress) update(read int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total == 0 {
		return
	}
	p.read = read
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.show()
	}
}

func (p *progress) show() {
	mb := float64(p.read) / 1e6
	rate := mb / max(time.Since(p.began).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r%s: %3.0f%% (%.0f of %.0f MB, %.0f MB/s)", p.name, 100*float64(p.read)/float64(p.total), mb, float64(p.total)/1e6, rate)
}

// reader counts what is read through r towards the current input's progress.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &countingReader{r: r, p: p}
}

type countingReader struct {
	r    io.Reader
	p    *progress
	n    int64
	next int64
}

// Read implements io.Reader.
func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.n >= c.next {
		c.p.update(c.n)
		c.next = c.n + 1<<20
	}
	return n, err
}
