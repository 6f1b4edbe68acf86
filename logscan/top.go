package logscan

import (
	"cmp"
	"context"
	"encoding/binary"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// SourceCount is one row of the top-sources table: how many authentication
// failures (in the selected Mode) one source caused.
type SourceCount struct {
	Src     netip.Addr `json:"src,omitzero"`       // the address, when the source was logged as one
	SrcText string     `json:"src_text,omitempty"` // the address as text, or the host name as logged
	Count   int64      `json:"count"`
}

// String renders the row like `uniq -c`: the count right-aligned, then the
// source.
func (s SourceCount) String() string {
	c := strings.Repeat(" ", max(0, 7-len(itoa64(s.Count)))) + itoa64(s.Count)
	if s.Src.IsValid() {
		return c + " " + s.Src.String()
	}
	return c + " " + s.SrcText
}

func itoa64(v int64) string {
	var b [20]byte
	i := len(b)
	neg := v < 0
	if neg {
		v = -v
	}
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// topTable counts failures per source, exactly for up to max sources;
// failures of further sources are counted in other. IPv4 sources, the
// bulk of any log, live in a table of their own keyed by the four bytes:
// its slots are a third of the size, so more of it stays in cache, and a
// key compares in one instruction.
type topTable struct {
	v4    *index[uint32, int64]
	idx   *index[srcKey, int64] // IPv6 addresses and names; counts live in the slots
	max   int
	other int64
}

func (t *topTable) add(h host) { t.addN(h, 1) }

func (t *topTable) len() int {
	n := 0
	if t.v4 != nil {
		n += t.v4.len()
	}
	if t.idx != nil {
		n += t.idx.len()
	}
	return n
}

func (t *topTable) addN(h host, n int64) {
	if h.Addr.Is4() {
		if t.v4 == nil {
			t.v4 = newIndex[uint32, int64](hashV4)
		}
		b := h.Addr.As4()
		k := binary.BigEndian.Uint32(b[:])
		if p := t.v4.ref(k); p != nil {
			*p += n
			return
		}
		if t.len() >= t.max {
			t.other += n
			return
		}
		t.v4.put(k, n)
		return
	}
	if !h.valid() {
		return
	}
	if t.idx == nil {
		t.idx = newIndex[srcKey, int64](hashSrcKey)
	}
	k := keyOf(h)
	if p := t.idx.ref(k); p != nil {
		*p += n
		return
	}
	if t.len() >= t.max {
		t.other += n
		return
	}
	if k.name != "" {
		k.name = strings.Clone(k.name)
	}
	t.idx.put(k, n)
}

func hashV4(k uint32) uint64 { return mix64(uint64(k) | 4<<32) }

// rows returns the n largest rows (all when n <= 0), largest first, ties in
// address order.
func (t *topTable) rows(n int) []SourceCount {
	if t.len() == 0 {
		return nil
	}
	out := make([]SourceCount, 0, t.len())
	if t.v4 != nil {
		t.v4.each(func(k uint32, n int64) {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], k)
			a := netip.AddrFrom4(b)
			out = append(out, SourceCount{Src: a, SrcText: a.String(), Count: n})
		})
	}
	if t.idx != nil {
		t.idx.each(func(k srcKey, n int64) {
			if k.addr.IsValid() {
				out = append(out, SourceCount{Src: k.addr, SrcText: k.addr.String(), Count: n})
			} else {
				out = append(out, SourceCount{SrcText: k.name, Count: n})
			}
		})
	}
	slices.SortFunc(out, func(x, y SourceCount) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		if x.Src.IsValid() != y.Src.IsValid() { // addresses before names
			if x.Src.IsValid() {
				return -1
			}
			return 1
		}
		if c := x.Src.Compare(y.Src); c != 0 {
			return c
		}
		return cmp.Compare(x.SrcText, y.SrcText)
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// TopSources returns the n sources with the most authentication failures
// in the last scan (all of them when n <= 0), most first. Sources beyond
// Options.MaxSources are not listed; Others counts their failures.
func (a *Analyzer) TopSources(n int) []SourceCount { return a.top.rows(n) }

// TopOthers returns the failures of sources that did not fit in the table.
func (a *Analyzer) TopOthers() int64 { return a.top.other }

// TopSources reads r and returns the n sources with the most
// authentication failures, most first: the job of
//
//	grep "Failed password" auth.log | awk '{print $11}' | sort | uniq -c | sort -nr
//
// done right: every failure family of the sshd filter in opts.Mode, in any
// header format, with the address taken from where sshd put it (never from
// an injected user name). It runs only the header parser and the sshd
// classifier, none of the other rules.
func TopSources(ctx context.Context, r io.Reader, opts Options, n int) ([]SourceCount, error) {
	a := New(opts)
	a.topOnly = true
	if err := a.ScanContext(ctx, r, Handler{}); err != nil {
		return a.top.rows(n), err
	}
	return a.top.rows(n), nil
}
