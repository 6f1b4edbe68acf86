package ipam

import (
	"context"
	"errors"
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

// TxnLimiter is an optional Store interface for stores that refuse
// transactions with more than a number of conditions or operations (etcd's
// --max-txn-ops, 128 by default). The Allocator keeps every transaction
// within MaxTxnOps conditions and MaxTxnOps operations: a spec change or
// pool removal is then carried out in steps, each of which leaves the pool
// consistent and frozen under its Pending record, so that the next
// allocator loading the pool completes a change a crash interrupted.
// Allocations of more addresses than fit in one transaction fail with
// ErrTxnTooLarge instead of being split.
type TxnLimiter interface {
	// MaxTxnOps returns the store's limit, or 0 for none.
	MaxTxnOps() int
}

// ErrTxnTooLarge: a transaction has more conditions or operations than
// the store accepts at once (see TxnLimiter).
var ErrTxnTooLarge = errors.New("ipam: transaction too large for the store")

// Watcher is an optional Store interface for stores that stream their
// changes (etcd's watch). An Allocator on such a store keeps its cache of a
// pool's pages current from the stream, so it sees other processes'
// allocations without polling and without a conflict first; the store's
// compare-and-swap stays the only guard against handing out an address
// twice, so a late or lost event costs at most a retry.
type Watcher interface {
	// Watch calls fn, from one goroutine at a time, for every change to a
	// key with the given prefix committed after Watch returns, in
	// revision order, until stop is called or the store is closed. ctx
	// bounds only the wait for the stream to start. When the stream ends
	// for any other reason (history compacted, the store unreachable for
	// good) it calls fn a last time with Err set; events may have been
	// missed then, and a caller must re-read what it caches.
	Watch(ctx context.Context, prefix string, fn func(WatchEvent)) (stop func(), err error)
}

// WatchEvent is one change reported by a Watcher: Key was put (Value) or
// deleted at Revision. A last event with Err set ends the stream.
type WatchEvent struct {
	Key      string
	Value    []byte
	Revision uint64
	Deleted  bool
	Err      error
}
