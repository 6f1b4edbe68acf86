package reconcile

import (
	"encoding/json"
	"math"
	"slices"
	"time"
)

// Record is the replicated state of one key at one replica: a causal history (a
// version vector of every write it has seen) and the sibling versions no write has
// superseded yet, each with its own dot. Tombstones are siblings too. It is an
// immutable value; every operation returns a new Record and leaves its inputs
// alone, so records may be shared between goroutines freely. The zero Record is
// the record of a key nobody wrote.
//
// Sync merges two replicas' records without losing anything: a version survives
// unless the other side has seen its dot and no longer holds it (it was causally
// superseded there). Sync is commutative, associative and idempotent, so replicas
// converge whatever order anti-entropy runs in, and a sibling list stays bounded
// by the number of truly concurrent writes (dotted version vectors).
//
// The JSON form of a record, as [Record.MarshalJSON] writes it, is
//
//	{"clock": {"N1#1": 3, "N2#1": 1},
//	 "versions": [{"dot": {"actor": "N1#1", "counter": 3}, "timestamp": 1678812345,
//	               "node": "N1", "priority": 0, "deleted": false, "value": ...}]}
//
// with the versions in dot order and each in the form of [Version]. When reading,
// "clock" may be left out: it is then the least clock that covers the dots.
type Record[T any] struct {
	clock VV
	vs    []versionKey[T] // sorted by compareStored
}

// Context is what a read returns for a later write: the causal history the reader
// saw (Clock) and the highest timestamp in it (Time). A write made with it
// supersedes every version the reader saw and no other.
type Context struct {
	Clock VV        `json:"clock"`
	Time  Timestamp `json:"time,omitzero"`
}

// RecordOf builds a record from a clock and versions, as read from elsewhere. It
// checks the invariants Sync relies on: every dot has an actor and a non-zero
// counter and is covered by the clock, and no version is repeated. A zero clock
// is replaced by the least clock covering the dots.
func RecordOf[T any](clock VV, versions ...Version[T]) (Record[T], error) {
	if clock.Len() == 0 {
		var e []Entry
		for _, v := range versions {
			e = append(e, Entry(v.Dot))
		}
		clock = NewVV(e...)
	}
	vs := make([]versionKey[T], 0, len(versions))
	for i, v := range versions {
		path := "versions[" + itoa(i) + "]"
		switch {
		case v.Dot.Actor == "":
			return Record[T]{}, &RecordError{path + ".dot", "empty actor"}
		case v.Dot.Counter == 0:
			return Record[T]{}, &RecordError{path + ".dot", "zero counter"}
		case !clock.Covers(v.Dot):
			return Record[T]{}, &RecordError{path + ".dot", "dot " + v.Dot.String() + " is not covered by clock " + clock.String()}
		}
		if v.Deleted {
			var zero T
			v.Value = zero
		}
		vs = append(vs, keyed(v))
	}
	slices.SortFunc(vs, compareStored)
	for i := 1; i < len(vs); i++ {
		if compareStored(vs[i-1], vs[i]) == 0 {
			return Record[T]{}, &RecordError{"versions", "version " + vs[i].Dot.String() + " appears twice"}
		}
	}
	return Record[T]{clock: clock, vs: vs}, nil
}

// Clock returns the record's causal history.
func (r Record[T]) Clock() VV { return r.clock }

// Len returns the number of siblings, tombstones included.
func (r Record[T]) Len() int { return len(r.vs) }

// Versions returns a copy of the siblings, tombstones included, in dot order.
func (r Record[T]) Versions() []Version[T] {
	out := make([]Version[T], len(r.vs))
	for i, v := range r.vs {
		out[i] = v.Version
	}
	return out
}

// Live returns the siblings that are not tombstones, in dot order.
func (r Record[T]) Live() []Version[T] {
	var out []Version[T]
	for _, v := range r.vs {
		if !v.Deleted {
			out = append(out, v.Version)
		}
	}
	return out
}

// Deleted reports whether the record holds versions and all are tombstones.
func (r Record[T]) Deleted() bool {
	for _, v := range r.vs {
		if !v.Deleted {
			return false
		}
	}
	return len(r.vs) > 0
}

// Context returns what a reader of r passes back on its next write.
func (r Record[T]) Context() Context {
	c := Context{Clock: r.clock}
	for _, v := range r.vs {
		c.Time = maxTime(c.Time, v.Timestamp, v.Follows)
	}
	return c
}

func maxTime(ts ...Timestamp) Timestamp {
	var m Timestamp
	for _, t := range ts {
		if t.Compare(m) > 0 {
			m = t
		}
	}
	return m
}

// Equal reports whether r and o hold the same clock and the same versions.
func (r Record[T]) Equal(o Record[T]) bool {
	return r.clock.Equal(o.clock) && slices.EqualFunc(r.vs, o.vs, func(a, b versionKey[T]) bool {
		return a.Dot == b.Dot && a.digest == b.digest
	})
}

// Put records a write coordinated by actor, made by a client whose read returned
// ctx (the zero Context for a blind write). The write supersedes exactly the
// versions ctx covers; every other sibling stays. v's Dot and Follows are
// assigned here and v is returned as stored. The actor must be one that only this
// replica writes with, and whose counters this record has never lost (see
// [Replica] for the epoch rule that guarantees it).
func (r Record[T]) Put(actor string, ctx Context, v Version[T]) (Record[T], Version[T], error) {
	if actor == "" {
		return r, v, ErrInvalidActor
	}
	clock := r.clock.Merge(ctx.Clock)
	n := clock.Get(actor)
	if n == math.MaxUint64 {
		return r, v, ErrCounterOverflow
	}
	v.Dot = Dot{Actor: actor, Counter: n + 1}
	v.Follows = ctx.Time
	if v.Deleted {
		var zero T
		v.Value = zero
	}
	vs := make([]versionKey[T], 0, len(r.vs)+1)
	for _, s := range r.vs {
		if ctx.Clock.Covers(s.Dot) {
			v.Follows = maxTime(v.Follows, s.Timestamp, s.Follows)
			continue
		}
		vs = append(vs, s)
	}
	k := keyed(v)
	i, _ := slices.BinarySearchFunc(vs, k, compareStored)
	vs = slices.Insert(vs, i, k)
	return Record[T]{clock: clock.With(actor, n+1), vs: vs}, v, nil
}

// Sync merges two replicas' records of one key. A version survives unless one
// side has seen its dot without keeping it, which means a later write superseded
// it there; versions both sides hold survive. The clock is the merge of both.
// Sync is commutative, associative and idempotent, and never invents or alters a
// version. When the result equals a it is returned without allocating.
func Sync[T any](a, b Record[T]) Record[T] {
	if a.Equal(b) {
		return a
	}
	vs := make([]versionKey[T], 0, max(len(a.vs), len(b.vs)))
	i, j := 0, 0
	for i < len(a.vs) || j < len(b.vs) {
		var c int
		switch {
		case i == len(a.vs):
			c = 1
		case j == len(b.vs):
			c = -1
		default:
			c = a.vs[i].Dot.Compare(b.vs[j].Dot)
		}
		switch {
		case c < 0: // only a holds this dot
			if !b.clock.Covers(a.vs[i].Dot) {
				vs = append(vs, a.vs[i])
			}
			i++
		case c > 0:
			if !a.clock.Covers(b.vs[j].Dot) {
				vs = append(vs, b.vs[j])
			}
			j++
		default: // both hold the dot: keep every distinct content under it
			d := a.vs[i].Dot
			for i < len(a.vs) && j < len(b.vs) && a.vs[i].Dot == d && b.vs[j].Dot == d {
				switch c := compareStored(a.vs[i], b.vs[j]); {
				case c == 0:
					vs = append(vs, a.vs[i])
					i++
					j++
				case c < 0:
					vs = append(vs, a.vs[i])
					i++
				default:
					vs = append(vs, b.vs[j])
					j++
				}
			}
			for ; i < len(a.vs) && a.vs[i].Dot == d; i++ {
				vs = append(vs, a.vs[i])
			}
			for ; j < len(b.vs) && b.vs[j].Dot == d; j++ {
				vs = append(vs, b.vs[j])
			}
		}
	}
	return Record[T]{clock: a.clock.Merge(b.clock), vs: vs}
}

// Frontier summarises what the known replicas of one key hold, for garbage
// collection: Clock is the entrywise minimum of their clocks (every replica has
// seen each event it records: causally stable) and Live the dots of every version
// any of them still holds. Build one per replica with [Record.Frontier] and combine
// them with [Meet].
type Frontier struct {
	Clock VV    `json:"clock"`
	Live  []Dot `json:"live"`
}

// Frontier returns this record's contribution to a [Frontier].
func (r Record[T]) Frontier() Frontier {
	f := Frontier{Clock: r.clock}
	for _, v := range r.vs {
		if n := len(f.Live); n == 0 || f.Live[n-1] != v.Dot {
			f.Live = append(f.Live, v.Dot)
		}
	}
	return f
}

// Meet combines the frontiers of every known replica of a key: the minimum of the
// clocks and the union of the live dots. With no arguments it returns the zero
// Frontier, which lets nothing be collected.
func Meet(fs ...Frontier) Frontier {
	if len(fs) == 0 {
		return Frontier{}
	}
	out := Frontier{Clock: fs[0].Clock}
	var live []Dot
	for _, f := range fs {
		out.Clock = out.Clock.Meet(f.Clock)
		live = append(live, f.Live...)
	}
	slices.SortFunc(live, Dot.Compare)
	out.Live = slices.Compact(live)
	return out
}

// Collect garbage-collects a deleted key. When every sibling is a tombstone, every
// tombstone is causally stable (f.Clock covers its dot: each known replica has seen
// the delete), older than grace at now, and no known replica holds any other live
// version (f.Live), it returns the zero Record and true: the caller may drop the
// key, clock and all. Otherwise it returns r and false. f should be the [Meet] of
// every known replica's frontier; r's own is folded in.
//
// Dropping the clock too is what keeps a late stale copy from resurrecting the
// value: every replica that covers the delete has already dropped what it
// superseded, and a replica that later writes the key again starts a new actor
// epoch (see [Replica]). The grace period covers replicas that are not known.
func (r Record[T]) Collect(f Frontier, now Timestamp, grace time.Duration) (Record[T], bool) {
	if !r.Deleted() {
		return r, false
	}
	f = Meet(f, r.Frontier())
	for _, v := range r.vs {
		if !f.Clock.Covers(v.Dot) || v.Timestamp.Add(grace).Compare(now) > 0 {
			return r, false
		}
	}
	for _, d := range f.Live {
		if !slices.ContainsFunc(r.vs, func(v versionKey[T]) bool { return v.Dot == d }) {
			return r, false
		}
	}
	return Record[T]{}, true
}

// Prune drops clock entries that can only ever cause false conflicts, never lost
// updates: actors with no version live at this or any known replica (f.Live) whose
// counter every known replica has already seen (f.Clock). Removing a clock entry
// can only make Sync keep more, never drop more; with these conditions no copy at
// a known replica is affected at all. It returns the pruned record and the actors
// it removed, in order. An actor that is pruned must not be written with again
// without a new epoch; [Replica] takes a new one on its own.
func (r Record[T]) Prune(f Frontier) (Record[T], []string) {
	f = Meet(f, r.Frontier())
	var gone []string
	clock := r.clock
	for actor, n := range r.clock.All() {
		if n > f.Clock.Get(actor) || slices.ContainsFunc(f.Live, func(d Dot) bool { return d.Actor == actor }) {
			continue
		}
		clock = clock.Without(actor)
		gone = append(gone, actor)
	}
	if len(gone) == 0 {
		return r, nil
	}
	return Record[T]{clock: clock, vs: r.vs}, gone
}

type recordJSON[T any] struct {
	Clock    VV           `json:"clock"`
	Versions []Version[T] `json:"versions"`
}

// MarshalJSON writes the record's JSON form (see [Record]).
func (r Record[T]) MarshalJSON() ([]byte, error) {
	vs := r.Versions()
	if vs == nil {
		vs = []Version[T]{}
	}
	return json.Marshal(recordJSON[T]{Clock: r.clock, Versions: vs})
}

// UnmarshalJSON reads the record's JSON form and checks it as [RecordOf] does.
func (r *Record[T]) UnmarshalJSON(b []byte) error {
	var j recordJSON[T]
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	rec, err := RecordOf(j.Clock, j.Versions...)
	if err != nil {
		return err
	}
	*r = rec
	return nil
}
