package reconcile

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Timestamp is a hybrid logical clock reading: a wall time in nanoseconds since
// the Unix epoch and a logical counter that orders events sharing one wall time.
// A plain wall-clock time is a Timestamp with Logical zero. Timestamps order by
// Wall, then Logical. The zero Timestamp means "unknown" and sorts first.
type Timestamp struct {
	Wall    int64
	Logical uint32
}

// Unix returns the Timestamp of sec seconds and nsec nanoseconds after the Unix
// epoch, saturating at the limits of int64 nanoseconds.
func Unix(sec, nsec int64) Timestamp {
	const lim = math.MaxInt64 / int64(1e9)
	switch {
	case sec > lim:
		return Timestamp{Wall: math.MaxInt64}
	case sec < -lim:
		return Timestamp{Wall: math.MinInt64}
	}
	return Timestamp{Wall: sec*1e9 + nsec}
}

// FromTime returns t as a Timestamp (Logical zero).
func FromTime(t time.Time) Timestamp { return Unix(t.Unix(), int64(t.Nanosecond())) }

// Time returns the wall part as a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.Unix(0, t.Wall).UTC() }

// IsZero reports whether t is the zero Timestamp.
func (t Timestamp) IsZero() bool { return t == Timestamp{} }

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.Wall < u.Wall:
		return -1
	case t.Wall > u.Wall:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return 0
}

// Add returns t moved by d on the wall clock, saturating at the int64 limits.
func (t Timestamp) Add(d time.Duration) Timestamp {
	w := t.Wall + int64(d)
	if d > 0 && w < t.Wall {
		w = math.MaxInt64
	} else if d < 0 && w > t.Wall {
		w = math.MinInt64
	}
	return Timestamp{Wall: w, Logical: t.Logical}
}

// String renders t in the one format every audit line uses: decimal Unix seconds,
// a fraction only when the wall time has sub-second digits (trailing zeros
// trimmed), and "+N" when the logical counter is non-zero, as in 1678812345,
// 1678812345.25 or 1678812345.25+2.
func (t Timestamp) String() string { return string(t.AppendText(nil)) }

// AppendText appends the [Timestamp.String] form to b.
func (t Timestamp) AppendText(b []byte) []byte {
	w := t.Wall
	var u uint64
	if w < 0 {
		b = append(b, '-')
		u = uint64(-(w + 1)) + 1 // safe for MinInt64
	} else {
		u = uint64(w)
	}
	b = strconv.AppendUint(b, u/1e9, 10)
	if frac := u % 1e9; frac != 0 {
		digits := strconv.AppendUint(make([]byte, 0, 9), frac+1e9, 10)[1:]
		for digits[len(digits)-1] == '0' {
			digits = digits[:len(digits)-1]
		}
		b = append(append(b, '.'), digits...)
	}
	if t.Logical != 0 {
		b = strconv.AppendUint(append(b, '+'), uint64(t.Logical), 10)
	}
	return b
}

// MarshalText implements encoding.TextMarshaler with the [Timestamp.String] form.
func (t Timestamp) MarshalText() ([]byte, error) { return t.AppendText(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler; see [ParseTimestamp].
func (t *Timestamp) UnmarshalText(b []byte) error {
	v, err := ParseTimestamp(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalJSON writes a JSON number of Unix seconds (1678812345 or 1678812345.25)
// when Logical is zero, and the [Timestamp.String] form as a JSON string otherwise.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.Logical == 0 {
		return t.AppendText(nil), nil
	}
	return strconv.AppendQuote(nil, t.String()), nil
}

// UnmarshalJSON accepts a JSON number of Unix seconds, a string in the
// [Timestamp.String] form, or an RFC 3339 string.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) > 0 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
			*t = FromTime(tm)
			return nil
		}
	}
	return t.UnmarshalText([]byte(s))
}

// ErrTimestamp is wrapped by the errors of [ParseTimestamp].
var ErrTimestamp = errors.New("invalid timestamp")

// ParseTimestamp parses the [Timestamp.String] form: optional '-', decimal
// seconds, an optional fraction of up to nine digits and an optional "+N" logical
// counter.
func ParseTimestamp(s string) (Timestamp, error) {
	bad := func(pos int, why string) (Timestamp, error) {
		return Timestamp{}, fmt.Errorf("%w %q at byte %d: %s", ErrTimestamp, s, pos, why)
	}
	rest := s
	var logical uint64
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		l, err := strconv.ParseUint(rest[i+1:], 10, 32)
		if err != nil || rest[i+1:] == "" || rest[i+1] == '+' {
			return bad(i+1, "logical counter is not a 32-bit unsigned number")
		}
		logical, rest = l, rest[:i]
	}
	neg := strings.HasPrefix(rest, "-")
	if neg {
		rest = rest[1:]
	}
	secPart, fracPart, hasFrac := strings.Cut(rest, ".")
	if secPart == "" || strings.TrimLeft(secPart, "0123456789") != "" {
		return bad(0, "seconds are not a decimal number")
	}
	sec, err := strconv.ParseUint(secPart, 10, 64)
	if err != nil || sec > uint64(math.MaxInt64)/1e9+1 {
		return bad(0, "seconds out of range")
	}
	var frac uint64
	if hasFrac {
		if fracPart == "" || len(fracPart) > 9 || strings.TrimLeft(fracPart, "0123456789") != "" {
			return bad(len(secPart)+1, "fraction is not one to nine decimal digits")
		}
		frac, _ = strconv.ParseUint(fracPart+strings.Repeat("0", 9-len(fracPart)), 10, 64)
	}
	total := sec*1e9 + frac
	var w int64
	switch {
	case neg && total == uint64(math.MaxInt64)+1:
		w = math.MinInt64
	case total > math.MaxInt64:
		return bad(0, "out of range")
	case neg:
		w = -int64(total)
	default:
		w = int64(total)
	}
	return Timestamp{Wall: w, Logical: uint32(logical)}, nil
}

// HLC is a hybrid logical clock: its readings never go backwards, follow the wall
// clock when it moves forward, and are always later than every timestamp it has
// observed, so a write stamped after reading another is stamped later even when
// the writer's wall clock is behind. It is safe for concurrent use.
type HLC struct {
	mu   sync.Mutex
	now  func() time.Time
	last Timestamp
}

// NewHLC returns a clock reading wall time from now (time.Now when nil).
func NewHLC(now func() time.Time) *HLC {
	if now == nil {
		now = time.Now
	}
	return &HLC{now: now}
}

// Now returns a reading later than every earlier reading and observation.
func (h *HLC) Now() Timestamp { return h.Observe(Timestamp{}) }

// Observe folds a timestamp received from elsewhere (a read, a replicated write)
// into the clock and returns a reading later than both it and every earlier one.
func (h *HLC) Observe(remote Timestamp) Timestamp {
	h.mu.Lock()
	defer h.mu.Unlock()
	pt := FromTime(h.now()).Wall
	last := h.last
	if remote.Compare(last) > 0 {
		last = remote
	}
	switch {
	case pt > last.Wall:
		h.last = Timestamp{Wall: pt}
	case last.Logical == math.MaxUint32 && last.Wall < math.MaxInt64:
		h.last = Timestamp{Wall: last.Wall + 1}
	case last.Logical == math.MaxUint32:
		h.last = last // saturated: the end of time
	default:
		h.last = Timestamp{Wall: last.Wall, Logical: last.Logical + 1}
	}
	return h.last
}
