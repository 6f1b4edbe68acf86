// Package reconcile repairs replicated data after a partition: version vectors and
// dotted version vector sets tell causally ordered writes from concurrent ones,
// policies resolve write-write and delete-update conflicts deterministically, and
// every conflict leaves an audit line that is identical on every replica.
//
// It uses the standard library only and is generic over the value type.
//
// # Causality
//
// [VV] is a version vector in canonical form (sorted, no zero entries: a missing
// entry is zero), with a four-valued [VV.Compare] (Before, After, Equal,
// Concurrent), Merge, Meet and dominance. [DVVSet] is a port of Riak's dvvset:
// new, sync, join, update with and without the server's set, values, size,
// less, equal, map, last, lww and reconcile, behaving as dvvset's own tests and
// the Riak client interleavings say.
//
// # Records
//
// A [Record] is one key at one replica: a clock and the sibling [Version]s no
// write has superseded, each with its own [Dot] (the write's actor and counter),
// timestamp, origin node, business priority and Deleted flag. Tombstones are
// dotted siblings, so a delete concurrent with an update is a conflict like any
// other. A client reads a [Context] and writes with it ([Record.Put]); the write
// supersedes exactly what the reader saw. [Sync] merges two replicas' records:
// commutative, associative, idempotent, never losing a version the other side
// has not superseded. Siblings stay bounded by the truly concurrent writers.
//
//	merged := reconcile.Sync(replicaA, replicaB)       // siblings kept, nothing lost
//	d := reconcile.LWW[User]().Resolve(merged.Versions()) // winner, discarded, warnings
//	fmt.Println(d.Audit("user:1001"))
//
// [Replica] is an in-memory keyspace for one node built on records. It chooses
// the actor for each write by the per-key epoch rule of Riak's kv679 fix: a
// replica that lost its data (or restarts from a stale copy) starts a new actor
// epoch instead of reusing counters, so a peer that already saw and superseded
// the old dot cannot silently drop the new write. It enforces sibling limits
// ([Limits]: a warning level and a hard limit for writes) and garbage-collects.
//
// # Policies and audit
//
// A [Policy] turns a set of versions into a [Decision]: [LWW] (timestamp, then
// priority, tombstone over live, node id, dot and value digest: a total order),
// [PriorityLWW] (priority first), [DeleteWins] (with a data-loss warning naming
// each discarded update), [AddWins], [Manual] (keep siblings), [Func] and
// [Merge] for custom choices, and [Chain] to combine them. A decision depends
// only on the set of versions, never on their order, on map iteration or on the
// replica deciding. [Decision.Audit] renders it:
//
//	[WARN] Conflict detected for key=user:1001
//	Version A: timestamp=1678812345, node=N1, value={name: "Alice", ver: 3}
//	Version B: timestamp=1678812350, node=N2, value={name: "Alicia", ver: 3}
//	Resolution: Manual required
//
// with versions in one deterministic order and times in one format
// ([Timestamp.String]), plus a clock-skew note when a write carries a timestamp
// earlier than a write it causally follows. [Decision.Event] gives the same
// event as a value with log/slog attributes. A [HLC] (hybrid logical clock) is
// available to stamp writes so that causal order and timestamp order agree.
//
// # Metadata stays bounded
//
// [Record.Collect] drops a deleted key only when every tombstone is causally
// stable (every known replica's clock covers it, see [Meet] and [Frontier]), no
// replica holds a live version, and the grace period has passed. [Record.Prune]
// drops clock entries that can only ever cause false conflicts, never lost
// updates. [Limits] caps siblings.
//
// # Encodings
//
// Records, contexts, vectors and DVVSets have a canonical binary encoding that
// starts with a version byte (see AppendRecord/DecodeRecord and the
// MarshalBinary methods); equal values encode to equal bytes and decoding
// rejects non-canonical input. Records also have a JSON form (see [Record] and
// [Version]), which is what a replica's record looks like in a file:
//
//	{"clock": {"N1#1": 3, "N2#1": 1},
//	 "versions": [
//	   {"dot": {"actor": "N1#1", "counter": 3}, "timestamp": 1678812345, "node": "N1",
//	    "priority": 0, "deleted": false, "value": {"name": "Alice", "ver": 3}},
//	   {"dot": {"actor": "N2#1", "counter": 1}, "timestamp": 1678812350, "node": "N2",
//	    "priority": 0, "deleted": false, "value": {"name": "Alicia", "ver": 3}}]}
//
// "clock" may be omitted (it is then derived from the dots); "timestamp" is Unix
// seconds as a number, or a string in the [Timestamp.String] form or RFC 3339;
// "follows" (optional) is the highest timestamp the write causally follows. A
// [Decision] marshals to JSON as well.
package reconcile
