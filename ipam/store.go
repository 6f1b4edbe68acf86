package ipam

import (
	"context"
	"iter"
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

var errClosed = errorString("ipam: store closed")

type errorString string

// Error implements error.
func (e errorString) Error() string { return string(e) }
