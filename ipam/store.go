package ipam

import (
	"context"
	"iter"
	"slices"
	"strings"
	"sync"
)

// Store is the durable truth behind an Allocator: a key-value store of byte
// strings with a revision per key, whose only mutation is an atomic
// multi-key compare-and-swap.
//
// Every key written has a revision: a positive number that changes whenever
// the key is written (a store-wide counter, like etcd's mod_revision).
// Revision 0 means the key is absent. Commit applies a set of puts and
// deletes only if every condition still holds ("key K has revision R", or
// "K is absent" for R = 0), all or nothing, and reports a failed condition as
// a *ConflictError (errors.Is ErrConflict). This maps one to one onto an etcd
// transaction comparing mod revisions, onto one bbolt read-write transaction
// and onto a mutex-guarded map.
//
// Keys are printable byte strings; the allocator uses these, all under
// "ipam/v1/" (v1 is the encoding version; see the encode functions'
// comments in records.go):
//
//	ipam/v1/pool/NAME                 pool record (JSON: spec, epoch, generation floor)
//	ipam/v1/page/NAME/EPOCH/PAGE      allocation bitmap of 1,024 ordinals (binary)
//	ipam/v1/owner/NAME/OWNER          an owner's leases in the pool (binary)
//	ipam/v1/quarantine/NAME           addresses that failed verification (JSON)
//	ipam/v1/fifo/NAME                 FIFO strategy cursor and release queue (binary)
//	ipam/v1/cursor/NAME               round-robin position (binary)
//
// EPOCH and PAGE are fixed-width lower-case hex, so key order is numeric
// order. Pool records, pages and owners are separate keys, so allocators
// working on different pages of one pool do not conflict.
//
// Values are opaque bytes to the store. A store may keep the Value slices
// passed to Commit and return them from Get and Scan without copying: callers
// must not modify a Value after passing it to Commit, nor one returned by Get
// or Scan.
type Store interface {
	// Get returns the current value and revision of each key, in order.
	// Absent keys have Revision 0 and a nil Value.
	Get(ctx context.Context, keys ...string) ([]KV, error)
	// Scan yields the keys with the given prefix in ascending key order,
	// from one consistent snapshot where the store has snapshots (memory
	// and bbolt do; an etcd store would use one revision). The memory and
	// bbolt stores read the matches into memory first, so a caller may
	// write to the store while iterating.
	Scan(ctx context.Context, prefix string) iter.Seq2[KV, error]
	// Commit applies txn atomically if all its conditions hold, returning
	// the revision now carried by every key it put. A failed condition is a
	// *ConflictError naming the key; nothing is applied then.
	Commit(ctx context.Context, txn Txn) (uint64, error)
	// Close releases the store's resources.
	Close() error
}

// KV is a key with its value and revision (0: absent).
type KV struct {
	Key      string
	Value    []byte
	Revision uint64
}

// Cond requires Key to have Revision (0: to be absent).
type Cond struct {
	Key      string
	Revision uint64
}

// Op puts Value at Key, or deletes Key when Delete is set.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
}

// Txn is a compare-and-swap: Ops are applied only if every Cond holds. A key
// should appear at most once in Ops. Stores must not keep the Conds and Ops
// slices after Commit returns (they may keep the Values).
type Txn struct {
	Conds []Cond
	Ops   []Op
}

// MemoryStore is the in-memory Store: a map behind a mutex. It keeps the
// values passed to Commit and returns them without copying, and compares
// revisions, not bytes, so a commit costs a few map operations whatever the
// size of the values. It is safe for concurrent use.
type MemoryStore struct {
	mu     sync.RWMutex
	rev    uint64
	m      map[string]memEntry
	closed bool
}

type memEntry struct {
	rev uint64
	val []byte
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{m: make(map[string]memEntry)}
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, keys ...string) ([]KV, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]KV, len(keys))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed
	}
	for i, k := range keys {
		out[i].Key = k
		if e, ok := s.m[k]; ok {
			out[i].Value, out[i].Revision = e.val, e.rev
		}
	}
	return out, nil
}

// Scan implements Store. The snapshot is taken when iteration starts; it
// costs one pass over the keys plus sorting the matches.
func (s *MemoryStore) Scan(ctx context.Context, prefix string) iter.Seq2[KV, error] {
	return func(yield func(KV, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(KV{}, err)
			return
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			yield(KV{}, errClosed)
			return
		}
		var kvs []KV
		for k, e := range s.m {
			if strings.HasPrefix(k, prefix) {
				kvs = append(kvs, KV{Key: k, Value: e.val, Revision: e.rev})
			}
		}
		s.mu.RUnlock()
		slices.SortFunc(kvs, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
		for _, kv := range kvs {
			if !yield(kv, nil) {
				return
			}
		}
	}
}

// Commit implements Store.
func (s *MemoryStore) Commit(ctx context.Context, txn Txn) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	for _, c := range txn.Conds {
		if s.m[c.Key].rev != c.Revision {
			return 0, &ConflictError{Key: c.Key}
		}
	}
	s.rev++
	rev := s.rev
	for _, op := range txn.Ops {
		if op.Delete {
			delete(s.m, op.Key)
			continue
		}
		s.m[op.Key] = memEntry{rev: rev, val: op.Value}
	}
	return rev, nil
}

// Len returns the number of keys held.
func (s *MemoryStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// Close implements Store; later calls fail.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

var errClosed = errorString("ipam: store closed")

type errorString string

// Error implements error.
func (e errorString) Error() string { return string(e) }
