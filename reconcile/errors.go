package reconcile

import (
	"errors"
	"fmt"
)

// Sentinel errors; the typed errors below wrap them, so errors.Is works on both.
var (
	// ErrInvalidActor: an actor or node name is empty, or a node name holds '#'
	// (reserved for epochs) or control characters.
	ErrInvalidActor = errors.New("invalid actor")
	// ErrCounterOverflow: an actor's counter reached its maximum; writing on would
	// reuse a dot.
	ErrCounterOverflow = errors.New("counter overflow")
	// ErrSiblingLimit: a write would leave a record with more siblings than the
	// hard limit; the write was refused and the record is unchanged.
	ErrSiblingLimit = errors.New("sibling limit exceeded")
	// ErrInvalidRecord: a record read from JSON or built from parts breaks an
	// invariant (a dot outside the clock, a zero counter, a duplicate version).
	ErrInvalidRecord = errors.New("invalid record")
	// ErrDecode: binary input is truncated, malformed or not canonical.
	ErrDecode = errors.New("invalid encoding")
	// ErrUnsupportedVersion: binary input starts with an encoding version this
	// package does not know.
	ErrUnsupportedVersion = errors.New("unsupported encoding version")
	// ErrUnknownPolicy: [ParsePolicy] was given a name it does not know.
	ErrUnknownPolicy = errors.New("unknown policy")
	// ErrClientSet: a DVVSet update was given a client set that does not hold
	// exactly one new value.
	ErrClientSet = errors.New("client set must hold exactly one new value")
)

// DecodeError reports where binary input went wrong.
type DecodeError struct {
	Offset int    // byte offset of the bad field
	Field  string // what was being read
	Err    error  // ErrDecode, ErrUnsupportedVersion or a value codec's error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode %s at byte %d: %v", e.Field, e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// RecordError reports which part of a record is invalid.
type RecordError struct {
	Path string // the offending part, as in "versions[2].dot"
	Msg  string
}

func (e *RecordError) Error() string { return fmt.Sprintf("invalid record: %s: %s", e.Path, e.Msg) }

// Unwrap returns ErrInvalidRecord.
func (e *RecordError) Unwrap() error { return ErrInvalidRecord }

// SiblingLimitError reports a write refused by the hard sibling limit.
type SiblingLimitError struct {
	Key      string
	Siblings int // siblings the write would have left
	Limit    int
}

func (e *SiblingLimitError) Error() string {
	return fmt.Sprintf("key %q: write refused: %d siblings exceed the limit of %d", e.Key, e.Siblings, e.Limit)
}

// Unwrap returns ErrSiblingLimit.
func (e *SiblingLimitError) Unwrap() error { return ErrSiblingLimit }
