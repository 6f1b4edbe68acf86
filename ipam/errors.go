package ipam

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error returned by this package that reports one of
// these conditions matches it with errors.Is; the typed errors below carry the
// details.
var (
	// ErrExhausted: the pool has no free address left (addresses cooling
	// down after release and quarantined addresses are not free).
	ErrExhausted = errors.New("ipam: pool exhausted")
	// ErrReserved: the requested address is in the pool's subnet but not
	// allocatable (network, broadcast, gateway, reserved, outside the range).
	ErrReserved = errors.New("ipam: address reserved")
	// ErrAlreadyAllocated: the requested address is held by another owner, or
	// a spec change would cut away addresses that are allocated.
	ErrAlreadyAllocated = errors.New("ipam: address already allocated")
	// ErrNotInPool: the address is outside every subnet of the pool or of the
	// other address family.
	ErrNotInPool = errors.New("ipam: address not in pool")
	// ErrStaleLease: the lease released is not the current lease of that
	// address (it was released, or released and allocated again).
	ErrStaleLease = errors.New("ipam: stale lease")
	// ErrOverlap: a pool's allocatable addresses overlap another pool's and
	// the overlap policy rejects it.
	ErrOverlap = errors.New("ipam: pools overlap")
	// ErrInvalidSpec: a pool spec is malformed or inconsistent; see SpecError.
	ErrInvalidSpec = errors.New("ipam: invalid pool spec")
	// ErrSyntax: a manifest or configuration could not be decoded; see
	// ParseError.
	ErrSyntax = errors.New("ipam: syntax error")
	// ErrUnknownPool: no pool of that name exists.
	ErrUnknownPool = errors.New("ipam: unknown pool")
	// ErrConflict: a store transaction's compare failed because another
	// writer changed a key first. The allocator retries these itself; it is
	// returned only when retries are used up.
	ErrConflict = errors.New("ipam: store conflict")
	// ErrCorrupt: stored state violates an invariant; see VerifyError.
	ErrCorrupt = errors.New("ipam: store state corrupt")
	// ErrNotVerified: the Verifier rejected an address explicitly requested;
	// the address was quarantined.
	ErrNotVerified = errors.New("ipam: address failed verification")
)

// SpecError reports a bad pool spec: which pool, which field (a path such as
// "reserved[2]" or "ranges[1].gateway") and the offending value.
type SpecError struct {
	Pool  string // pool name, "" if the name itself is the problem
	Field string // field path
	Value string // offending value as written
	Msg   string // what is wrong
}

// Error implements error.
func (e *SpecError) Error() string {
	var b strings.Builder
	b.WriteString("ipam: pool")
	if e.Pool != "" {
		fmt.Fprintf(&b, " %q", e.Pool)
	}
	fmt.Fprintf(&b, ": %s", e.Field)
	if e.Value != "" {
		fmt.Fprintf(&b, " %q", e.Value)
	}
	fmt.Fprintf(&b, ": %s", e.Msg)
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidSpec) true.
func (e *SpecError) Is(target error) bool { return target == ErrInvalidSpec }

// ParseError reports input that could not be decoded: the document (1-based,
// for multi-document YAML), the line when known and the field path.
type ParseError struct {
	Doc   int    // 1-based document number; 0 if not applicable
	Line  int    // 1-based line within the input; 0 if unknown
	Field string // field path, "" if unknown
	Msg   string
	Err   error // underlying error, if any
}

// Error implements error.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("ipam: parse")
	if e.Doc > 0 {
		fmt.Fprintf(&b, " document %d", e.Doc)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " field %s", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes errors.Is(err, ErrSyntax) true, and ErrInvalidSpec when the
// wrapped error is a SpecError.
func (e *ParseError) Is(target error) bool { return target == ErrSyntax }

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

// SpecChangeError is returned when adding, changing or removing a pool would
// reserve or cut away addresses that are allocated. Nothing is changed; the
// caller releases (or migrates) the affected leases and tries again.
type SpecChangeError struct {
	Pool     string
	Affected []Lease
}

// Error implements error.
func (e *SpecChangeError) Error() string {
	return fmt.Sprintf("ipam: pool %q: change would cut away %d allocated address(es), first %s held by %q",
		e.Pool, len(e.Affected), e.Affected[0].Addr, e.Affected[0].Owner)
}

// Is makes errors.Is(err, ErrAlreadyAllocated) true.
func (e *SpecChangeError) Is(target error) bool { return target == ErrAlreadyAllocated }

// OverlapError is returned when the overlap policy rejects a pool.
type OverlapError struct {
	Pool     string
	Overlaps []Overlap
}

// Error implements error.
func (e *OverlapError) Error() string {
	o := e.Overlaps[0]
	other := o.B
	if other.Name == e.Pool {
		other = o.A
	}
	return fmt.Sprintf("ipam: pool %q: allocatable addresses overlap pool %q in %s",
		e.Pool, other.Name, o.Ranges[0])
}

// Is makes errors.Is(err, ErrOverlap) true.
func (e *OverlapError) Is(target error) bool { return target == ErrOverlap }

// ConflictError names the key whose compare failed in a store transaction.
type ConflictError struct {
	Key string
}

// Error implements error.
func (e *ConflictError) Error() string { return fmt.Sprintf("ipam: store conflict on key %q", e.Key) }

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ExhaustedError details ErrExhausted: how many addresses are cooling down
// or quarantined (so not free) when the pool ran out.
type ExhaustedError struct {
	Pool        string
	CoolingDown int   // released addresses still in their reuse cooldown (FIFO pools)
	Quarantined Count // addresses that failed verification
}

// Error implements error.
func (e *ExhaustedError) Error() string {
	s := fmt.Sprintf("ipam: pool %q exhausted", e.Pool)
	if e.CoolingDown > 0 {
		s += fmt.Sprintf(" (%d address(es) cooling down)", e.CoolingDown)
	}
	if !e.Quarantined.IsZero() {
		s += fmt.Sprintf(" (%s quarantined)", e.Quarantined)
	}
	return s
}

// Is makes errors.Is(err, ErrExhausted) true.
func (e *ExhaustedError) Is(target error) bool { return target == ErrExhausted }

// Problem is one invariant violation found by Verify.
type Problem struct {
	Pool string `json:"pool,omitempty"`
	Key  string `json:"key,omitempty"`  // store key involved, if any
	Addr string `json:"addr,omitempty"` // address involved, if any
	Msg  string `json:"msg"`
}

// String returns a readable form.
func (p Problem) String() string {
	var b strings.Builder
	if p.Pool != "" {
		fmt.Fprintf(&b, "pool %q: ", p.Pool)
	}
	if p.Addr != "" {
		fmt.Fprintf(&b, "%s: ", p.Addr)
	}
	b.WriteString(p.Msg)
	if p.Key != "" {
		fmt.Fprintf(&b, " (key %q)", p.Key)
	}
	return b.String()
}

// VerifyError lists every invariant violation Verify found (up to a bound).
type VerifyError struct {
	Problems []Problem
}

// Error implements error.
func (e *VerifyError) Error() string {
	if len(e.Problems) == 1 {
		return "ipam: verify: " + e.Problems[0].String()
	}
	return fmt.Sprintf("ipam: verify: %d problems, first: %s", len(e.Problems), e.Problems[0])
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *VerifyError) Is(target error) bool { return target == ErrCorrupt }
