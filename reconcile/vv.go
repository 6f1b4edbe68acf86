package reconcile

import (
	"cmp"
	"iter"
	"slices"
	"strconv"
	"strings"
	"unique"
)

// Ordering is the causal relation between two version vectors.
type Ordering uint8

// The four answers of [VV.Compare].
const (
	// Equal: both vectors record exactly the same events.
	Equal Ordering = iota
	// Before: the first vector is causally older (the second descends from it).
	Before
	// After: the first vector is causally newer (it descends from the second).
	After
	// Concurrent: each vector records an event the other lacks.
	Concurrent
)

// String returns "equal", "before", "after" or "concurrent".
func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Before:
		return "before"
	case After:
		return "after"
	case Concurrent:
		return "concurrent"
	}
	return "ordering(" + strconv.Itoa(int(o)) + ")"
}

// Entry is one actor's counter in a version vector.
type Entry struct {
	Actor   string `json:"actor"`
	Counter uint64 `json:"counter"`
}

// VV is a version vector: for each actor, the number of its events seen. It is an
// immutable value (every method returns a new vector and never changes its
// receiver), kept in canonical form: entries sorted by actor, no duplicates and no
// zero counters, because a missing entry means zero. Two vectors that record the
// same events are therefore identical entry for entry, and nothing depends on map
// iteration order. The zero VV is the empty vector.
//
// Actor names are interned (package unique) when a vector is built from strings
// (NewVV, With, decoding), so the walks of Compare, Merge and Meet tell equal
// actors apart by a pointer comparison instead of comparing bytes.
type VV struct {
	e []entry
}

// entry is an [Entry] with its actor interned.
type entry struct {
	actor   unique.Handle[string]
	counter uint64
}

func (x entry) name() string { return x.actor.Value() }

// NewVV returns the vector holding entries, in canonical form: sorted by actor, a
// repeated actor keeps its highest counter, and zero counters are dropped.
func NewVV(entries ...Entry) VV {
	e := make([]entry, 0, len(entries))
	for _, x := range entries {
		if x.Counter != 0 {
			e = append(e, entry{unique.Make(x.Actor), x.Counter})
		}
	}
	slices.SortFunc(e, func(a, b entry) int {
		if c := strings.Compare(a.name(), b.name()); c != 0 {
			return c
		}
		// Highest counter first so the dedup below keeps it.
		return cmp.Compare(b.counter, a.counter)
	})
	e = slices.CompactFunc(e, func(a, b entry) bool { return a.actor == b.actor })
	if len(e) == 0 {
		return VV{}
	}
	return VV{e: e}
}

// Len returns the number of actors with a non-zero counter.
func (v VV) Len() int { return len(v.e) }

// Get returns actor's counter, zero when the vector has no entry for it.
func (v VV) Get(actor string) uint64 {
	if i, ok := v.find(actor); ok {
		return v.e[i].counter
	}
	return 0
}

func (v VV) find(actor string) (int, bool) {
	return slices.BinarySearchFunc(v.e, actor, func(e entry, a string) int { return strings.Compare(e.name(), a) })
}

// With returns a copy of v with actor's counter set to counter (zero removes it).
func (v VV) With(actor string, counter uint64) VV {
	i, ok := v.find(actor)
	switch {
	case ok && counter == 0:
		e := make([]entry, 0, len(v.e)-1)
		e = append(append(e, v.e[:i]...), v.e[i+1:]...)
		if len(e) == 0 {
			return VV{}
		}
		return VV{e: e}
	case ok:
		e := slices.Clone(v.e)
		e[i].counter = counter
		return VV{e: e}
	case counter == 0:
		return v
	}
	e := make([]entry, 0, len(v.e)+1)
	e = append(append(append(e, v.e[:i]...), entry{unique.Make(actor), counter}), v.e[i:]...)
	return VV{e: e}
}

// Covers reports whether the event d is recorded by v (d.Counter <= v.Get(d.Actor)).
func (v VV) Covers(d Dot) bool { return d.Counter <= v.Get(d.Actor) }

// Add returns v with the event d recorded: the entry for d.Actor becomes at least
// d.Counter.
func (v VV) Add(d Dot) VV {
	if v.Covers(d) {
		return v
	}
	return v.With(d.Actor, d.Counter)
}

// Compare returns the causal relation of v to o: Before when o descends from v,
// After when v descends from o, Equal, or Concurrent. A missing entry counts as
// zero. It does not allocate; it walks both vectors once, comparing actor names
// only where the two actor sets differ.
func (v VV) Compare(o VV) Ordering {
	a, b := v.e, o.e
	var lt, gt bool // v has an entry below o's / above o's
	i, j := 0, 0
	if len(a) == len(b) {
		// The common case: one actor set, walked in lockstep until it differs.
		for ; i < len(a); i++ {
			x, y := &a[i], &b[i]
			if x.actor != y.actor {
				break
			}
			if x.counter != y.counter {
				if x.counter < y.counter {
					lt = true
				} else {
					gt = true
				}
				if lt && gt {
					return Concurrent
				}
			}
		}
		j = i
	}
	for i < len(a) && j < len(b) {
		x, y := &a[i], &b[j]
		switch {
		case x.actor == y.actor:
			lt = lt || x.counter < y.counter
			gt = gt || x.counter > y.counter
			i++
			j++
		case x.name() < y.name(): // o's entry is zero
			gt = true
			i++
		default:
			lt = true
			j++
		}
		if lt && gt {
			return Concurrent
		}
	}
	gt = gt || i < len(a)
	lt = lt || j < len(b)
	switch {
	case lt && gt:
		return Concurrent
	case lt:
		return Before
	case gt:
		return After
	}
	return Equal
}

// Equal reports whether v and o record the same events.
func (v VV) Equal(o VV) bool { return slices.Equal(v.e, o.e) }

// Descends reports whether v records every event o records (v >= o).
func (v VV) Descends(o VV) bool {
	c := v.Compare(o)
	return c == After || c == Equal
}

// Dominates reports whether v strictly descends from o (v > o).
func (v VV) Dominates(o VV) bool { return v.Compare(o) == After }

// compareActors orders two entries by actor name; equal handles are equal names.
func compareActors(x, y entry) int {
	if x.actor == y.actor {
		return 0
	}
	return strings.Compare(x.name(), y.name())
}

// Merge returns the least vector that descends from both v and o: the entrywise
// maximum. When one side already descends from the other it is returned as is,
// without allocating.
func (v VV) Merge(o VV) VV {
	switch v.Compare(o) {
	case After, Equal:
		return v
	case Before:
		return o
	}
	a, b := v.e, o.e
	e := make([]entry, 0, max(len(a), len(b))+min(len(a), len(b))/2)
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := compareActors(a[i], b[j]); {
		case c == 0:
			e = append(e, entry{a[i].actor, max(a[i].counter, b[j].counter)})
			i++
			j++
		case c < 0:
			e = append(e, a[i])
			i++
		default:
			e = append(e, b[j])
			j++
		}
	}
	e = append(append(e, a[i:]...), b[j:]...)
	return VV{e: e}
}

// Meet returns the greatest vector that both v and o descend from: the entrywise
// minimum. Over the vectors of every replica it is the causally stable frontier:
// every replica has seen each event it records.
func (v VV) Meet(o VV) VV {
	a, b := v.e, o.e
	var e []entry
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := compareActors(a[i], b[j]); {
		case c == 0:
			e = append(e, entry{a[i].actor, min(a[i].counter, b[j].counter)})
			i++
			j++
		case c < 0:
			i++
		default:
			j++
		}
	}
	return VV{e: e}
}

// Without returns v without actor's entry.
func (v VV) Without(actor string) VV { return v.With(actor, 0) }

// All yields each actor and its counter in canonical (sorted) order.
func (v VV) All() iter.Seq2[string, uint64] {
	return func(yield func(string, uint64) bool) {
		for _, x := range v.e {
			if !yield(x.name(), x.counter) {
				return
			}
		}
	}
}

// Entries returns a copy of the entries in canonical order.
func (v VV) Entries() []Entry {
	if len(v.e) == 0 {
		return nil
	}
	out := make([]Entry, len(v.e))
	for i, x := range v.e {
		out[i] = Entry{x.name(), x.counter}
	}
	return out
}

// String renders v as {A:3, B:1} in canonical order; actors that are not plain
// words are quoted.
func (v VV) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, x := range v.e {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteWord(x.name()))
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(x.counter, 10))
	}
	b.WriteByte('}')
	return b.String()
}

// Dot names one event: the Counter-th event of Actor. Every version a [Record]
// stores carries the dot of the write that made it.
type Dot struct {
	Actor   string `json:"actor"`
	Counter uint64 `json:"counter"`
}

// String renders the dot as actor:counter.
func (d Dot) String() string { return quoteWord(d.Actor) + ":" + strconv.FormatUint(d.Counter, 10) }

// Compare orders dots by actor, then counter.
func (d Dot) Compare(o Dot) int {
	if c := strings.Compare(d.Actor, o.Actor); c != 0 {
		return c
	}
	switch {
	case d.Counter < o.Counter:
		return -1
	case d.Counter > o.Counter:
		return 1
	}
	return 0
}

// quoteWord returns s unchanged when it is a non-empty run of printable ASCII
// without spaces, quotes, commas, colons, braces or '=', and s quoted otherwise, so
// rendered names cannot forge fields or lines.
func quoteWord(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"',={}[]\`, c) >= 0 {
			return strconv.Quote(s)
		}
	}
	return s
}
