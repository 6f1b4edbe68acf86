package reconcile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"unique"
)

// The canonical binary encoding. Every encoding starts with the format version
// (1) and a kind byte ('V' vector, 'C' context, 'R' record, 'D' DVVSet); integers
// are unsigned or zig-zag varints, strings and values are length-prefixed. It is
// canonical: equal values encode to equal bytes, and decoding rejects anything
// that is not in canonical form (unsorted entries, zero counters, trailing
// bytes), so encodings can be compared and hashed.
//
//	vector  := uvarint(n) { string(actor) uvarint(counter) }^n   actors ascending, counters > 0
//	time    := varint(wall) uvarint(logical)
//	context := vector time
//	record  := vector uvarint(n) { version }^n                   by dot, then digest
//	version := string(actor) uvarint(counter) time(timestamp) time(follows)
//	           string(node) varint(priority) byte(flags: 1 = deleted) bytes(value)
//	dvvset  := uvarint(n) { string(actor) uvarint(counter) uvarint(k) { bytes(value) }^k }^n
//	           uvarint(m) { bytes(value) }^m
//
// A tombstone's value is empty. Values are encoded by a [Codec].
const encodingVersion = 1

const (
	kindVV      = 'V'
	kindContext = 'C'
	kindRecord  = 'R'
	kindDVVSet  = 'D'
)

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendVVBody(b []byte, v VV) []byte {
	b = binary.AppendUvarint(b, uint64(len(v.e)))
	for _, x := range v.e {
		b = binary.AppendUvarint(appendString(b, x.name()), x.counter)
	}
	return b
}

func appendTime(b []byte, t Timestamp) []byte {
	return binary.AppendUvarint(binary.AppendVarint(b, t.Wall), uint64(t.Logical))
}

// AppendBinary appends v's canonical encoding to b.
func (v VV) AppendBinary(b []byte) ([]byte, error) {
	return appendVVBody(append(b, encodingVersion, kindVV), v), nil
}

// MarshalBinary returns v's canonical encoding.
func (v VV) MarshalBinary() ([]byte, error) { return v.AppendBinary(nil) }

// UnmarshalBinary decodes a canonical encoding of a vector.
func (v *VV) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	d.header(kindVV)
	x := d.vv("vector")
	d.end()
	if d.err != nil {
		return d.err
	}
	*v = x
	return nil
}

// AppendBinary appends c's canonical encoding to b.
func (c Context) AppendBinary(b []byte) ([]byte, error) {
	return appendTime(appendVVBody(append(b, encodingVersion, kindContext), c.Clock), c.Time), nil
}

// MarshalBinary returns c's canonical encoding: an opaque token to hand clients.
func (c Context) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil) }

// UnmarshalBinary decodes a context token.
func (c *Context) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	d.header(kindContext)
	x := Context{Clock: d.vv("clock"), Time: d.time("time")}
	d.end()
	if d.err != nil {
		return d.err
	}
	*c = x
	return nil
}

// AppendRecord appends r's canonical encoding to b, values through codec (nil
// means [DefaultCodec]).
func AppendRecord[T any](b []byte, r Record[T], codec Codec[T]) ([]byte, error) {
	if codec == nil {
		codec = DefaultCodec[T]()
	}
	b = appendVVBody(append(b, encodingVersion, kindRecord), r.clock)
	b = binary.AppendUvarint(b, uint64(len(r.vs)))
	for _, v := range r.vs {
		b = binary.AppendUvarint(appendString(b, v.Dot.Actor), v.Dot.Counter)
		b = appendTime(appendTime(b, v.Timestamp), v.Follows)
		b = binary.AppendVarint(appendString(b, v.Node), v.Priority)
		if v.Deleted {
			b = append(b, 1, 0)
			continue
		}
		b = append(b, 0)
		val, err := codec.AppendValue(nil, v.Value)
		if err != nil {
			return nil, err
		}
		b = append(binary.AppendUvarint(b, uint64(len(val))), val...)
	}
	return b, nil
}

// DecodeRecord decodes a canonical record encoding, values through codec (nil
// means [DefaultCodec]). It checks the record as [RecordOf] does.
func DecodeRecord[T any](b []byte, codec Codec[T]) (Record[T], error) {
	if codec == nil {
		codec = DefaultCodec[T]()
	}
	d := decoder{b: b}
	d.header(kindRecord)
	clock := d.vv("clock")
	n := d.count("versions", 4)
	vs := make([]Version[T], 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		var v Version[T]
		v.Dot = Dot{Actor: d.str("dot actor"), Counter: d.uvarint("dot counter")}
		v.Timestamp, v.Follows = d.time("timestamp"), d.time("follows")
		v.Node = d.str("node")
		v.Priority = d.varint("priority")
		switch flags := d.byte("flags"); flags {
		case 0, 1:
			v.Deleted = flags == 1
		default:
			d.fail("flags", ErrDecode)
		}
		at := d.off
		val := d.bytes("value")
		if d.err != nil {
			break
		}
		if v.Deleted {
			if len(val) != 0 {
				d.failAt(at, "value", errors.New("tombstone with a value"))
			}
		} else if x, err := codec.DecodeValue(val); err != nil {
			d.failAt(at, "value", err)
		} else {
			v.Value = x
		}
		vs = append(vs, v)
	}
	d.end()
	if d.err != nil {
		return Record[T]{}, d.err
	}
	if clock.Len() == 0 && len(vs) > 0 {
		return Record[T]{}, &RecordError{"clock", "empty clock with versions"}
	}
	r, err := RecordOf(clock, vs...)
	if err != nil {
		return Record[T]{}, err
	}
	if err := mustReencode(b, func() ([]byte, error) { return AppendRecord(nil, r, codec) }); err != nil {
		return Record[T]{}, err
	}
	return r, nil
}

// mustReencode rejects input that decodes but is not the canonical encoding of
// what it decodes to (versions out of order, a value in a non-canonical form).
func mustReencode(in []byte, enc func() ([]byte, error)) error {
	out, err := enc()
	if err != nil {
		return &DecodeError{Offset: 0, Field: "value", Err: err}
	}
	if !bytes.Equal(in, out) {
		at := 0
		for at < len(in) && at < len(out) && in[at] == out[at] {
			at++
		}
		return &DecodeError{Offset: at, Field: "input", Err: fmt.Errorf("%w: not in canonical form", ErrDecode)}
	}
	return nil
}

// AppendBinary appends r's canonical encoding with [DefaultCodec].
func (r Record[T]) AppendBinary(b []byte) ([]byte, error) { return AppendRecord(b, r, nil) }

// MarshalBinary returns r's canonical encoding with [DefaultCodec].
func (r Record[T]) MarshalBinary() ([]byte, error) { return AppendRecord(nil, r, nil) }

// UnmarshalBinary decodes r from its canonical encoding with [DefaultCodec].
func (r *Record[T]) UnmarshalBinary(b []byte) error {
	x, err := DecodeRecord[T](b, nil)
	if err != nil {
		return err
	}
	*r = x
	return nil
}

// AppendDVVSet appends s's canonical encoding to b, values through codec (nil
// means [DefaultCodec]).
func AppendDVVSet[T any](b []byte, s DVVSet[T], codec Codec[T]) ([]byte, error) {
	if codec == nil {
		codec = DefaultCodec[T]()
	}
	appendVal := func(b []byte, v T) ([]byte, error) {
		val, err := codec.AppendValue(nil, v)
		return append(binary.AppendUvarint(b, uint64(len(val))), val...), err
	}
	var err error
	b = binary.AppendUvarint(append(b, encodingVersion, kindDVVSet), uint64(len(s.entries)))
	for _, e := range s.entries {
		b = binary.AppendUvarint(binary.AppendUvarint(appendString(b, e.Actor), e.Counter), uint64(len(e.Values)))
		for _, v := range e.Values {
			if b, err = appendVal(b, v); err != nil {
				return nil, err
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s.anon)))
	for _, v := range s.anon {
		if b, err = appendVal(b, v); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// DecodeDVVSet decodes a canonical DVVSet encoding, values through codec (nil
// means [DefaultCodec]).
func DecodeDVVSet[T any](b []byte, codec Codec[T]) (DVVSet[T], error) {
	if codec == nil {
		codec = DefaultCodec[T]()
	}
	d := decoder{b: b}
	d.header(kindDVVSet)
	value := func() T {
		at := d.off
		val := d.bytes("value")
		var v T
		if d.err == nil {
			x, err := codec.DecodeValue(val)
			if err != nil {
				d.failAt(at, "value", err)
			}
			v = x
		}
		return v
	}
	var s DVVSet[T]
	n := d.count("entries", 3)
	for i := 0; i < n && d.err == nil; i++ {
		at := d.off
		e := DVVEntry[T]{Actor: d.str("actor"), Counter: d.uvarint("counter")}
		k := d.count("values", 1)
		if d.err == nil && uint64(k) > e.Counter {
			d.failAt(at, "entry", errors.New("more values than the counter"))
		}
		if d.err == nil && len(s.entries) > 0 && strings.Compare(s.entries[len(s.entries)-1].Actor, e.Actor) >= 0 {
			d.failAt(at, "entry", errors.New("actors not in ascending order"))
		}
		for j := 0; j < k && d.err == nil; j++ {
			e.Values = append(e.Values, value())
		}
		s.entries = append(s.entries, e)
	}
	m := d.count("anonymous values", 1)
	for j := 0; j < m && d.err == nil; j++ {
		s.anon = append(s.anon, value())
	}
	d.end()
	if d.err != nil {
		return DVVSet[T]{}, d.err
	}
	s.anon = canonicalValues(s.anon)
	if err := mustReencode(b, func() ([]byte, error) { return AppendDVVSet(nil, s, codec) }); err != nil {
		return DVVSet[T]{}, err
	}
	return s, nil
}

// decoder reads the canonical encoding, remembering the first error.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(field string, err error) { d.failAt(d.off, field, err) }

func (d *decoder) failAt(off int, field string, err error) {
	if d.err == nil {
		d.err = &DecodeError{Offset: off, Field: field, Err: err}
	}
}

func (d *decoder) header(kind byte) {
	switch {
	case len(d.b) < 2:
		d.fail("header", ErrDecode)
	case d.b[0] != encodingVersion:
		d.fail("version", ErrUnsupportedVersion)
	case d.b[1] != kind:
		d.failAt(1, "kind", ErrDecode)
	default:
		d.off = 2
	}
}

func (d *decoder) end() {
	if d.err == nil && d.off != len(d.b) {
		d.fail("end", errors.New("trailing bytes"))
	}
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 || n != uvarintLen(v) {
		d.fail(field, ErrDecode)
		return 0
	}
	d.off += n
	return v
}

// uvarintLen is the length of the shortest (canonical) uvarint encoding of v.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// zigzag maps a signed integer to the unsigned one binary.AppendVarint encodes.
func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 || n != uvarintLen(zigzag(v)) {
		d.fail(field, ErrDecode)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail(field, ErrDecode)
		return 0
	}
	d.off++
	return d.b[d.off-1]
}

// count reads a length and checks that many items of at least minSize bytes fit.
func (d *decoder) count(field string, minSize int) int {
	at := d.off
	n := d.uvarint(field)
	if d.err == nil && n > uint64(len(d.b)-d.off)/uint64(minSize) {
		d.failAt(at, field, errors.New("count exceeds the input"))
		return 0
	}
	return int(n)
}

func (d *decoder) bytes(field string) []byte {
	n := d.count(field, 1)
	if d.err != nil {
		return nil
	}
	out := d.b[d.off : d.off+n]
	d.off += n
	return out
}

func (d *decoder) str(field string) string { return string(d.bytes(field)) }

func (d *decoder) time(field string) Timestamp {
	t := Timestamp{Wall: d.varint(field)}
	at := d.off
	l := d.uvarint(field)
	if l > math.MaxUint32 {
		d.failAt(at, field, errors.New("logical counter out of range"))
	}
	t.Logical = uint32(l)
	return t
}

func (d *decoder) vv(field string) VV {
	n := d.count(field, 2)
	e := make([]entry, 0, n)
	actorField, counterField := field+" actor", field+" counter"
	for i := 0; i < n && d.err == nil; i++ {
		at := d.off
		actor, counter := d.bytes(actorField), d.uvarint(counterField)
		if d.err != nil {
			break
		}
		if counter == 0 || i > 0 && e[i-1].name() >= string(actor) {
			d.failAt(at, field, errors.New("entries not canonical (zero counter or unsorted)"))
			break
		}
		// Interning straight from the input: no string is allocated for an
		// actor already known.
		e = append(e, entry{unique.Make(string(actor)), counter})
	}
	if len(e) == 0 {
		return VV{}
	}
	return VV{e: slices.Clip(e)}
}
