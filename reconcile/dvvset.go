package reconcile

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
)

// DVVSet is a dotted version vector set in the style of Riak's dvvset: a compact
// container of concurrent values (siblings) with their causal history, where
// each server actor's entry holds a counter and that actor's surviving values,
// newest first (the value at position i carries the dot counter-i), plus an
// anonymous list of values without a dot (results of [DVVSet.Reconcile] or of a
// client's NewDVVSet). Siblings stay bounded by the number of truly concurrent
// writers, however many clients write.
//
// It is an immutable value: every operation returns a new set. Entries are kept
// sorted by actor and the anonymous list in canonical order (by the values'
// canonical bytes, duplicates removed), so equal histories have equal
// representations whatever order operations ran in. The zero DVVSet is empty.
//
// The typical server flow, as in the dvvset README:
//
//	// a client writes v having read context ctx:
//	stored, _ := NewDVVSetAt(ctx, v).UpdateWith(local, "server-a")
//	// a client reads: values and an opaque context
//	vals, ctx := SyncDVVSets(replicas...).Values(), stored.Join()
//	// a replica receives a set to store: local = SyncDVVSets(local, remote)
type DVVSet[T any] struct {
	entries []DVVEntry[T]
	anon    []T
}

// DVVEntry is one actor's entry of a [DVVSet]: its counter and the actor's
// surviving values, newest first; Values[i] carries the dot (Actor, Counter-i).
type DVVEntry[T any] struct {
	Actor   string
	Counter uint64
	Values  []T
}

// NewDVVSet returns a set without causal history whose anonymous list holds
// values: what a client sends for a write without a context.
func NewDVVSet[T any](values ...T) DVVSet[T] { return DVVSet[T]{anon: canonicalValues(values)} }

// NewDVVSetAt returns a set with the causal history ctx (as returned by
// [DVVSet.Join]) and values in the anonymous list: what a client sends for a
// write that follows a read.
func NewDVVSetAt[T any](ctx VV, values ...T) DVVSet[T] {
	s := DVVSet[T]{anon: canonicalValues(values)}
	for a, n := range ctx.All() {
		s.entries = append(s.entries, DVVEntry[T]{Actor: a, Counter: n})
	}
	return s
}

// DVVSetOf builds a set from its parts, as dvvset's literal {Entries, Values}
// tuples do. Entries are sorted by actor; a repeated actor or an entry holding
// more values than its counter is reported as an error.
func DVVSetOf[T any](entries []DVVEntry[T], anonymous ...T) (DVVSet[T], error) {
	es := make([]DVVEntry[T], len(entries))
	for i, e := range entries {
		if uint64(len(e.Values)) > e.Counter {
			return DVVSet[T]{}, &RecordError{"entries[" + itoa(i) + "]", "more values than the counter " + itoa(int(min(e.Counter, 1<<31)))}
		}
		es[i] = DVVEntry[T]{Actor: e.Actor, Counter: e.Counter, Values: slices.Clone(e.Values)}
	}
	slices.SortFunc(es, func(a, b DVVEntry[T]) int { return strings.Compare(a.Actor, b.Actor) })
	for i := 1; i < len(es); i++ {
		if es[i].Actor == es[i-1].Actor {
			return DVVSet[T]{}, &RecordError{"entries", "actor " + quoteWord(es[i].Actor) + " appears twice"}
		}
	}
	return DVVSet[T]{entries: es, anon: canonicalValues(anonymous)}, nil
}

// canonicalValues sorts values by canonical bytes and drops duplicates.
func canonicalValues[T any](vs []T) []T {
	if len(vs) == 0 {
		return nil
	}
	type kv struct {
		b []byte
		v T
	}
	ks := make([]kv, len(vs))
	for i, v := range vs {
		ks[i] = kv{canonicalBytes(v), v}
	}
	slices.SortStableFunc(ks, func(a, b kv) int { return bytes.Compare(a.b, b.b) })
	ks = slices.CompactFunc(ks, func(a, b kv) bool { return bytes.Equal(a.b, b.b) })
	out := make([]T, len(ks))
	for i, k := range ks {
		out[i] = k.v
	}
	return out
}

// Entries returns a copy of the entries, sorted by actor.
func (s DVVSet[T]) Entries() []DVVEntry[T] {
	out := make([]DVVEntry[T], len(s.entries))
	for i, e := range s.entries {
		out[i] = DVVEntry[T]{e.Actor, e.Counter, cloneOrNil(e.Values)}
	}
	return out
}

func cloneOrNil[T any](vs []T) []T {
	if len(vs) == 0 {
		return nil
	}
	return slices.Clone(vs)
}

// Anonymous returns a copy of the anonymous values, in canonical order.
func (s DVVSet[T]) Anonymous() []T { return cloneOrNil(s.anon) }

// Join returns the causal history as a version vector: the context a reader
// passes back on its next write.
func (s DVVSet[T]) Join() VV {
	e := make([]Entry, len(s.entries))
	for i, x := range s.entries {
		e[i] = Entry{x.Actor, x.Counter}
	}
	return NewVV(e...)
}

// IDs returns the actors with an entry, sorted.
func (s DVVSet[T]) IDs() []string {
	out := make([]string, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.Actor
	}
	return out
}

// Values returns every value: the anonymous ones, then each entry's, newest
// first, entries in actor order.
func (s DVVSet[T]) Values() []T {
	out := slices.Clone(s.anon)
	for _, e := range s.entries {
		out = append(out, e.Values...)
	}
	return out
}

// Size returns the number of values, anonymous ones included.
func (s DVVSet[T]) Size() int {
	n := len(s.anon)
	for _, e := range s.entries {
		n += len(e.Values)
	}
	return n
}

// Less reports whether s is causally older than o: o's history strictly
// descends from s's, so s's values are outdated. Missing entries count as zero.
func (s DVVSet[T]) Less(o DVVSet[T]) bool { return compareEntries(s.entries, o.entries) == Before }

// compareEntries compares the histories of two entry lists as version vectors
// (zero counters count as missing) without building them.
func compareEntries[T any](a, b []DVVEntry[T]) Ordering {
	var lt, gt bool
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var x, y uint64
		switch {
		case j == len(b) || i < len(a) && a[i].Actor < b[j].Actor:
			x = a[i].Counter
			i++
		case i == len(a) || b[j].Actor < a[i].Actor:
			y = b[j].Counter
			j++
		default:
			x, y = a[i].Counter, b[j].Counter
			i++
			j++
		}
		lt = lt || x < y
		gt = gt || x > y
	}
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

// Equal reports whether s and o have the same causal history, values aside:
// equal counters and the same number of dotted values per actor (a missing
// entry counts as zero counter and no values).
func (s DVVSet[T]) Equal(o DVVSet[T]) bool {
	i, j := 0, 0
	for i < len(s.entries) || j < len(o.entries) {
		var c int
		switch {
		case i == len(s.entries):
			c = 1
		case j == len(o.entries):
			c = -1
		default:
			c = strings.Compare(s.entries[i].Actor, o.entries[j].Actor)
		}
		switch {
		case c < 0:
			if s.entries[i].Counter != 0 || len(s.entries[i].Values) != 0 {
				return false
			}
			i++
		case c > 0:
			if o.entries[j].Counter != 0 || len(o.entries[j].Values) != 0 {
				return false
			}
			j++
		default:
			if s.entries[i].Counter != o.entries[j].Counter || len(s.entries[i].Values) != len(o.entries[j].Values) {
				return false
			}
			i++
			j++
		}
	}
	return true
}

// Sync merges s and o: outdated values are discarded and histories merged. A
// dotted value survives unless the other side has seen its dot without keeping
// it; anonymous values survive unless the other side's history strictly
// descends. Sync is commutative and idempotent, and associative on histories
// and dotted values. As in dvvset, it is not associative on anonymous values:
// one that a later write superseded can survive a merge with a concurrent
// history first, until a merge of equal histories, which keeps both anonymous
// lists, makes the replicas agree again.
func (s DVVSet[T]) Sync(o DVVSet[T]) DVVSet[T] {
	var anon []T
	switch compareEntries(s.entries, o.entries) {
	case Before:
		anon = o.anon
	case After:
		anon = s.anon
	default:
		anon = canonicalValues(append(slices.Clone(s.anon), o.anon...))
	}
	es := make([]DVVEntry[T], 0, max(len(s.entries), len(o.entries)))
	i, j := 0, 0
	for i < len(s.entries) && j < len(o.entries) {
		a, b := s.entries[i], o.entries[j]
		switch c := strings.Compare(a.Actor, b.Actor); {
		case c < 0:
			es = append(es, a)
			i++
		case c > 0:
			es = append(es, b)
			j++
		default:
			es = append(es, mergeEntry(a, b))
			i++
			j++
		}
	}
	es = append(append(es, s.entries[i:]...), o.entries[j:]...)
	return DVVSet[T]{entries: es, anon: anon}
}

// mergeEntry merges one actor's two entries: the higher counter wins, and its
// values are cut where the other side has seen dots it no longer holds.
func mergeEntry[T any](a, b DVVEntry[T]) DVVEntry[T] {
	if a.Counter < b.Counter {
		a, b = b, a
	}
	// a.Values carry dots a.Counter down to a.Counter-len+1; b has seen dots up to
	// b.Counter and still holds those above b.Counter-len(b.Values).
	oldestKept := b.Counter - uint64(len(b.Values)) // dots <= this were dropped by b
	if a.Counter-uint64(len(a.Values)) >= oldestKept {
		return a
	}
	return DVVEntry[T]{Actor: a.Actor, Counter: a.Counter, Values: a.Values[:a.Counter-oldestKept]}
}

// SyncDVVSets merges any number of sets with [DVVSet.Sync].
func SyncDVVSets[T any](sets ...DVVSet[T]) DVVSet[T] {
	var out DVVSet[T]
	for _, s := range sets {
		out = out.Sync(s)
	}
	return out
}

// Update advances a client set (made by NewDVVSet or NewDVVSetAt, holding
// exactly one anonymous value) with a new event of actor: the value gets the
// actor's next dot. It returns ErrClientSet for any other set, and an error
// wrapping ErrCounterOverflow when actor's counter is at its maximum.
func (s DVVSet[T]) Update(actor string) (DVVSet[T], error) {
	if len(s.anon) != 1 {
		return s, ErrClientSet
	}
	es, err := event(s.entries, actor, s.anon[0])
	if err != nil {
		return s, err
	}
	return DVVSet[T]{entries: es}, nil
}

// UpdateWith is Update against the server's local set: the client's history is
// first synced with server (discarding the values the client had seen), then the
// new value gets the actor's next dot, so the result is causally newer than both.
// Values of server the client had not seen stay as siblings. Its errors are
// Update's.
func (s DVVSet[T]) UpdateWith(server DVVSet[T], actor string) (DVVSet[T], error) {
	if len(s.anon) != 1 {
		return s, ErrClientSet
	}
	synced := DVVSet[T]{entries: s.entries}.Sync(server)
	es, err := event(synced.entries, actor, s.anon[0])
	if err != nil {
		return s, err
	}
	return DVVSet[T]{entries: es, anon: synced.anon}, nil
}

// event adds value as actor's next event.
func event[T any](es []DVVEntry[T], actor string, v T) ([]DVVEntry[T], error) {
	i, found := slices.BinarySearchFunc(es, actor, func(e DVVEntry[T], a string) int { return strings.Compare(e.Actor, a) })
	if !found {
		return slices.Insert(slices.Clone(es), i, DVVEntry[T]{Actor: actor, Counter: 1, Values: []T{v}}), nil
	}
	e := es[i]
	if e.Counter == math.MaxUint64 {
		return nil, fmt.Errorf("%w: actor %s", ErrCounterOverflow, quoteWord(actor))
	}
	out := slices.Clone(es)
	out[i] = DVVEntry[T]{Actor: actor, Counter: e.Counter + 1, Values: append([]T{v}, e.Values...)}
	return out, nil
}

// MapDVVSet applies f to every value of s, keeping the causal history.
func MapDVVSet[T, U any](s DVVSet[T], f func(T) U) DVVSet[U] {
	out := DVVSet[U]{entries: make([]DVVEntry[U], len(s.entries))}
	for i, e := range s.entries {
		vs := make([]U, len(e.Values))
		for k, v := range e.Values {
			vs[k] = f(v)
		}
		out.entries[i] = DVVEntry[U]{e.Actor, e.Counter, vs}
	}
	anon := make([]U, len(s.anon))
	for k, v := range s.anon {
		anon[k] = f(v)
	}
	out.anon = canonicalValues(anon)
	return out
}

// Reconcile replaces every value by f(Values()), kept in the anonymous list with
// the same causal history (the result is not a new event, so no dot).
func (s DVVSet[T]) Reconcile(f func([]T) T) DVVSet[T] {
	return NewDVVSetAt(s.Join(), f(s.Values()))
}

// Last returns the newest value by lessEq (true when a is older than or as old
// as b), considering the newest value of each entry and every anonymous value.
// Later candidates win ties: entries in actor order, then anonymous values. ok is
// false for a set without values.
func (s DVVSet[T]) Last(lessEq func(a, b T) bool) (v T, ok bool) {
	v, _, _, ok = s.find(lessEq)
	return v, ok
}

// LWW keeps only the newest value by lessEq (see [DVVSet.Last]) with the same
// causal history: a dotted winner stays at its dot, an anonymous winner stays
// anonymous.
func (s DVVSet[T]) LWW(lessEq func(a, b T) bool) DVVSet[T] {
	v, actor, anonymous, ok := s.find(lessEq)
	if !ok {
		return s
	}
	if anonymous {
		return NewDVVSetAt(s.Join(), v)
	}
	es := make([]DVVEntry[T], len(s.entries))
	for i, e := range s.entries {
		es[i] = DVVEntry[T]{Actor: e.Actor, Counter: e.Counter}
		if e.Actor == actor {
			es[i].Values = []T{v}
		}
	}
	return DVVSet[T]{entries: es}
}

func (s DVVSet[T]) find(lessEq func(a, b T) bool) (best T, actor string, anonymous, ok bool) {
	consider := func(v T, a string, anon bool) {
		if !ok || lessEq(best, v) {
			best, actor, anonymous, ok = v, a, anon, true
		}
	}
	for _, e := range s.entries {
		if len(e.Values) > 0 {
			consider(e.Values[0], e.Actor, false)
		}
	}
	for _, v := range s.anon {
		consider(v, "", true)
	}
	return best, actor, anonymous, ok
}
