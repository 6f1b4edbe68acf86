package reconcile

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"
)

// Version is one write of a replicated record: a value or, when Deleted, a
// tombstone. Tombstones are versions like any other, with their own dot, so a
// delete that is concurrent with an update is kept beside it as a sibling and is
// seen as a conflict instead of silently winning or losing.
//
// Its JSON form, the one a replica's record is written in (see [Record]), is
//
//	{"dot": {"actor": "N1#1", "counter": 3}, "timestamp": 1678812345, "node": "N1",
//	 "priority": 0, "deleted": false, "value": {"name": "Alice", "ver": 3}}
//
// where "follows" (optional) is the highest timestamp of the writes this one
// causally follows, "timestamp" and "follows" are Unix seconds (or the
// [Timestamp.String] form as a string), and "value" is the value's own JSON.
type Version[T any] struct {
	// Dot names the write: the counter-th event of the actor that coordinated it.
	Dot Dot `json:"dot"`
	// Timestamp is the writer's clock (wall or hybrid logical) at the write.
	Timestamp Timestamp `json:"timestamp"`
	// Follows is the highest timestamp among the writes this one causally
	// follows, as known where it was written. Follows later than Timestamp means
	// the writer's clock was behind: a clock-skew note in the audit.
	Follows Timestamp `json:"follows,omitzero"`
	// Node is the node that coordinated the write.
	Node string `json:"node"`
	// Priority is a business priority; higher wins under the priority policies.
	Priority int64 `json:"priority"`
	// Deleted marks a tombstone; its Value is the zero value.
	Deleted bool `json:"deleted"`
	// Value is the written value.
	Value T `json:"value"`
}

// Skewed reports whether the version carries a timestamp earlier than a write it
// causally follows: the writer's clock was behind.
func (v Version[T]) Skewed() bool { return v.Timestamp.Compare(v.Follows) < 0 }

// versionKey is a version with its content digest, the unit records store.
type versionKey[T any] struct {
	Version[T]
	digest uint64
}

func keyed[T any](v Version[T]) versionKey[T] {
	return versionKey[T]{Version: v, digest: versionDigest(v)}
}

// versionDigest digests everything in a version but its dot, so two stored
// versions with one dot are the same write exactly when their digests match:
// the first 8 bytes of a SHA-256 over the fields and the value's canonical bytes.
func versionDigest[T any](v Version[T]) uint64 {
	var buf [128]byte
	b := buf[:0]
	b = binary.AppendVarint(b, v.Timestamp.Wall)
	b = binary.AppendUvarint(b, uint64(v.Timestamp.Logical))
	b = binary.AppendVarint(b, v.Follows.Wall)
	b = binary.AppendUvarint(b, uint64(v.Follows.Logical))
	b = binary.AppendVarint(b, v.Priority)
	b = binary.AppendUvarint(b, uint64(len(v.Node)))
	b = append(b, v.Node...)
	if v.Deleted {
		b = append(b, 1)
	} else {
		b = appendCanonical(append(b, 0), v.Value)
	}
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// compareStored orders stored versions by dot, then digest (two versions with one
// dot but different contents only arise when a dot was reused).
func compareStored[T any](a, b versionKey[T]) int {
	if c := a.Dot.Compare(b.Dot); c != 0 {
		return c
	}
	return cmp.Compare(a.digest, b.digest)
}

// tieRule names the step of the tie-break chain that separated two versions.
type tieRule uint8

const (
	ruleNone tieRule = iota
	ruleTimestamp
	rulePriority
	ruleTombstone
	ruleNode
	ruleDot
	ruleDigest
)

var ruleNames = [...]string{"", "timestamp", "priority", "tombstone", "node", "dot", "digest"}

func (r tieRule) String() string { return ruleNames[r] }

// compareLWW is the total tie-break chain: timestamp (or priority first when
// priorityFirst), then priority (or timestamp), then tombstone over live, then node
// id, then dot, then value digest. It returns the comparison and the step that
// decided it.
func compareLWW[T any](a, b versionKey[T], priorityFirst bool) (int, tieRule) {
	ts := a.Timestamp.Compare(b.Timestamp)
	pr := cmp.Compare(a.Priority, b.Priority)
	if priorityFirst {
		if pr != 0 {
			return pr, rulePriority
		}
		if ts != 0 {
			return ts, ruleTimestamp
		}
	} else {
		if ts != 0 {
			return ts, ruleTimestamp
		}
		if pr != 0 {
			return pr, rulePriority
		}
	}
	if a.Deleted != b.Deleted { // a tombstone wins a tie, as in Cassandra
		if a.Deleted {
			return 1, ruleTombstone
		}
		return -1, ruleTombstone
	}
	if c := strings.Compare(a.Node, b.Node); c != 0 {
		return c, ruleNode
	}
	if c := a.Dot.Compare(b.Dot); c != 0 {
		return c, ruleDot
	}
	if c := cmp.Compare(a.digest, b.digest); c != 0 {
		return c, ruleDigest
	}
	return 0, ruleNone
}

// label returns the audit label of the i-th version: A..Z, then AA, AB, ...
func label(i int) string {
	if i < 26 {
		return letters[i : i+1]
	}
	var b [16]byte
	k := len(b)
	for i++; i > 0; i = (i - 1) / 26 {
		k--
		b[k] = 'A' + byte((i-1)%26)
	}
	return string(b[k:])
}

const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

func itoa(i int) string { return strconv.Itoa(i) }
