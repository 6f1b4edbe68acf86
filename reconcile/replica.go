package reconcile

import (
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// ActorID returns the actor a node writes with in a given epoch: the node name,
// '#', and the epoch in decimal ("N1#7").
func ActorID(node string, epoch uint64) string { return node + "#" + strconv.FormatUint(epoch, 10) }

// ParseActor splits an actor made by [ActorID] into node and epoch. ok is false
// for actors of another shape.
func ParseActor(actor string) (node string, epoch uint64, ok bool) {
	i := strings.LastIndexByte(actor, '#')
	if i <= 0 {
		return "", 0, false
	}
	e, err := strconv.ParseUint(actor[i+1:], 10, 64)
	if err != nil || strconv.FormatUint(e, 10) != actor[i+1:] {
		return "", 0, false
	}
	return actor[:i], e, true
}

// CheckNode reports whether node can name a replica: non-empty, printable, and
// without '#', which separates epochs in actor IDs.
func CheckNode(node string) error {
	if node == "" || strings.ContainsRune(node, '#') || strings.ContainsFunc(node, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("%w: node name %q must be printable, non-empty and without '#'", ErrInvalidActor, node)
	}
	return nil
}

// Limits bound a record's siblings, as Riak's warn_siblings and max_siblings do.
type Limits struct {
	// WarnSiblings: a write or merge that leaves more siblings than this returns
	// a sibling-cap warning. Zero means 25; negative disables the warning.
	WarnSiblings int
	// MaxSiblings: a write that would leave more siblings than this is refused
	// with a *SiblingLimitError. Merges are never refused (that would stop
	// replicas converging) but warn. Zero means 100; negative disables the limit.
	MaxSiblings int
}

func (l Limits) warn() int { return defaulted(l.WarnSiblings, 25) }
func (l Limits) hard() int { return defaulted(l.MaxSiblings, 100) }

func defaulted(v, d int) int {
	switch {
	case v == 0:
		return d
	case v < 0:
		return int(^uint(0) >> 1)
	}
	return v
}

// ReplicaOptions configure a [Replica].
type ReplicaOptions struct {
	// FirstEpoch is the first actor epoch this incarnation may use. Persist
	// [Replica.NextEpoch] (or a lease above it) outside the data it protects and
	// start the next incarnation from it: a replica restarted from a lost or
	// stale store then never reuses a dot. Zero is fine for a first start.
	FirstEpoch uint64
	// Limits bound siblings per key.
	Limits Limits
	// Clock stamps writes whose Timestamp is zero; nil means an [HLC] over
	// time.Now. Every write and merge is observed by it.
	Clock *HLC
}

// Replica is one node's in-memory copy of a keyspace of records, with the
// per-key actor epochs that make writes safe after data loss, sibling limits, and
// garbage collection. It is safe for concurrent use. Replicas exchange records
// with [Replica.Merge]; how they reach each other is up to the caller.
//
// Epoch rule (Riak's kv679 fix): a replica writes a key with the actor of its
// newest epoch for that key only while that epoch was started by this
// incarnation and its local record is at least as far along as the client's
// context; otherwise, for a key it does not hold, or after a restart, it starts a
// new epoch. A replica that lost its data therefore never issues a dot that
// another replica has already seen and superseded, which would make that replica
// drop the new write silently.
type Replica[T any] struct {
	node   string
	limits Limits
	clock  *HLC
	first  uint64

	mu      sync.Mutex
	next    uint64
	records map[string]Record[T]
}

// NewReplica returns an empty replica for node.
func NewReplica[T any](node string, opts ReplicaOptions) (*Replica[T], error) {
	if err := CheckNode(node); err != nil {
		return nil, err
	}
	clk := opts.Clock
	if clk == nil {
		clk = NewHLC(time.Now)
	}
	return &Replica[T]{node: node, limits: opts.Limits, clock: clk, first: opts.FirstEpoch, next: opts.FirstEpoch, records: map[string]Record[T]{}}, nil
}

// Node returns the replica's node name.
func (r *Replica[T]) Node() string { return r.node }

// NextEpoch returns the first epoch not yet used; persist it (see
// [ReplicaOptions.FirstEpoch]).
func (r *Replica[T]) NextEpoch() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// Get returns the record of key and whether the replica holds one.
func (r *Replica[T]) Get(key string) (Record[T], bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.records[key]
	return rec, ok
}

// Keys returns the keys held, sorted.
func (r *Replica[T]) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.records))
}

// All yields every key and its record in key order, from a snapshot taken when
// iteration starts.
func (r *Replica[T]) All() iter.Seq2[string, Record[T]] {
	r.mu.Lock()
	snap := maps.Clone(r.records)
	r.mu.Unlock()
	return func(yield func(string, Record[T]) bool) {
		for _, k := range slices.Sorted(maps.Keys(snap)) {
			if !yield(k, snap[k]) {
				return
			}
		}
	}
}

// Put writes v to key as a client whose read returned ctx (the zero Context for
// a blind write) and returns the version as stored, with any warnings. v.Node is
// set to this replica; a zero v.Timestamp is taken from the replica's clock after
// it has observed ctx.Time. The write is refused with a *SiblingLimitError when
// it would leave more siblings than Limits.MaxSiblings.
func (r *Replica[T]) Put(key string, ctx Context, v Version[T]) (Version[T], []Warning, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	local, held := r.records[key]
	actor, fresh := r.actorFor(local, held, ctx.Clock)
	v.Node = r.node
	if v.Timestamp.IsZero() {
		// Later than what the reader saw and than anything held here, so the
		// write never carries a timestamp below one it supersedes.
		r.clock.Observe(local.Context().Time)
		v.Timestamp = r.clock.Observe(ctx.Time)
	} else {
		r.clock.Observe(v.Timestamp)
	}
	rec, stored, err := local.Put(actor, ctx, v)
	if err != nil {
		return v, nil, err
	}
	if n := rec.Len(); n > r.limits.hard() {
		return v, nil, &SiblingLimitError{Key: key, Siblings: n, Limit: r.limits.hard()}
	}
	if fresh {
		_, e, _ := ParseActor(actor)
		r.next = e + 1
	}
	r.records[key] = rec
	var warns []Warning
	if stored.Skewed() {
		warns = append(warns, skewWarning(stored, ""))
	}
	return stored, append(warns, r.capWarning(key, rec)...), nil
}

// Delete writes a tombstone for key as a client whose read returned ctx. It is
// Put with Deleted set, and the tombstone is a sibling like any version.
func (r *Replica[T]) Delete(key string, ctx Context, ts Timestamp) (Version[T], []Warning, error) {
	return r.Put(key, ctx, Version[T]{Deleted: true, Timestamp: ts})
}

// Merge folds a record of key received from another replica into the local one
// with [Sync] and returns the warnings the result raises (sibling cap).
func (r *Replica[T]) Merge(key string, remote Record[T]) []Warning {
	r.mu.Lock()
	defer r.mu.Unlock()
	local, held := r.records[key]
	if !held && remote.Len() == 0 && remote.Clock().Len() == 0 {
		return nil
	}
	rec := Sync(local, remote)
	r.records[key] = rec
	for _, v := range remote.vs {
		r.clock.Observe(v.Timestamp)
	}
	return r.capWarning(key, rec)
}

// Collect drops key when its record is a causally stable, old enough deletion
// (see [Record.Collect]); f is the Meet of the other replicas' frontiers. It
// reports whether the key was dropped.
func (r *Replica[T]) Collect(key string, f Frontier, now Timestamp, grace time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, held := r.records[key]
	if !held {
		return false
	}
	if _, gone := rec.Collect(f, now, grace); gone {
		delete(r.records, key)
		return true
	}
	return false
}

// Prune drops key's clock entries that can only cause false conflicts (see
// [Record.Prune]) and returns the actors removed.
func (r *Replica[T]) Prune(key string, f Frontier) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, held := r.records[key]
	if !held {
		return nil
	}
	rec, gone := rec.Prune(f)
	r.records[key] = rec
	return gone
}

// actorFor applies the epoch rule (see [Replica]). A new epoch is also above
// every epoch of this node that the local record or the context shows, so even a
// replica restarted without its persisted counter does not reuse one it can see.
func (r *Replica[T]) actorFor(local Record[T], held bool, ctx VV) (actor string, fresh bool) {
	best, bestEpoch, found := "", uint64(0), false
	next := r.next
	for i, v := range []VV{local.clock, ctx} {
		for a := range v.All() {
			node, e, ok := ParseActor(a)
			if !ok || node != r.node {
				continue
			}
			if e >= next && e < math.MaxUint64 {
				next = e + 1
			}
			if i == 0 && held && (!found || e > bestEpoch) {
				best, bestEpoch, found = a, e, true
			}
		}
	}
	if found && bestEpoch >= r.first && bestEpoch < r.next && ctx.Get(best) <= local.clock.Get(best) && !r.newerInContext(ctx, bestEpoch) {
		return best, false
	}
	return ActorID(r.node, next), true
}

// newerInContext reports whether ctx holds an epoch of this node newer than e:
// the local store has lost a later epoch.
func (r *Replica[T]) newerInContext(ctx VV, e uint64) bool {
	for a := range ctx.All() {
		if node, ce, ok := ParseActor(a); ok && node == r.node && ce > e {
			return true
		}
	}
	return false
}

func (r *Replica[T]) capWarning(key string, rec Record[T]) []Warning {
	if n := rec.Len(); n > r.limits.warn() {
		return []Warning{{Kind: WarnSiblingCap, Message: fmt.Sprintf("key %s holds %d siblings, over the warning level of %d", quoteWord(key), n, r.limits.warn())}}
	}
	return nil
}
