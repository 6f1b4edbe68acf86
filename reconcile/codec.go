package reconcile

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Codec turns values of type T into bytes and back. The binary encodings of
// [Record], [DVVSet] and [Context] store values through a Codec; [DefaultCodec] is
// used when none is given.
type Codec[T any] interface {
	AppendValue(dst []byte, v T) ([]byte, error)
	DecodeValue(b []byte) (T, error)
}

// DefaultCodec returns the codec the package uses when none is given: raw bytes
// for []byte and string, MarshalBinary/UnmarshalBinary when T (and *T) implement
// them, and encoding/json otherwise (deterministic: map keys are sorted). The same
// bytes feed the value digest that breaks the last ties between versions.
func DefaultCodec[T any]() Codec[T] { return defaultCodec[T]{} }

type defaultCodec[T any] struct{}

func (defaultCodec[T]) AppendValue(dst []byte, v T) ([]byte, error) {
	switch x := any(v).(type) {
	case []byte:
		return append(dst, x...), nil
	case string:
		return append(dst, x...), nil
	}
	if binaryValue[T]() {
		b, err := safeMarshalBinary(any(v).(encoding.BinaryMarshaler))
		if err != nil {
			return dst, err
		}
		return append(dst, b...), nil
	}
	b, err := safeMarshalJSON(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

func (defaultCodec[T]) DecodeValue(b []byte) (T, error) {
	var v T
	switch p := any(&v).(type) {
	case *[]byte:
		*p = bytes.Clone(b)
		return v, nil
	case *string:
		*p = string(b)
		return v, nil
	}
	if binaryValue[T]() {
		err := any(&v).(encoding.BinaryUnmarshaler).UnmarshalBinary(b)
		return v, err
	}
	if len(b) == 0 {
		return v, nil // the zero value of a tombstone
	}
	err := json.Unmarshal(b, &v)
	return v, err
}

// binaryValue reports whether T marshals and *T unmarshals itself in binary.
func binaryValue[T any]() bool {
	var zero T
	_, m := any(zero).(encoding.BinaryMarshaler)
	_, u := any(&zero).(encoding.BinaryUnmarshaler)
	return m && u
}

func safeMarshalBinary(m encoding.BinaryMarshaler) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("MarshalBinary panicked: %v", r)
		}
	}()
	return m.MarshalBinary()
}

func safeMarshalJSON(v any) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("json marshal panicked: %v", r)
		}
	}()
	return json.Marshal(v)
}

// canonicalBytes returns the default codec's bytes for v, or, for values it cannot
// encode, their Go syntax (%#v).
func canonicalBytes[T any](v T) []byte {
	b, err := defaultCodec[T]{}.AppendValue(nil, v)
	if err != nil {
		return fmt.Appendf(nil, "%#v", v)
	}
	return b
}

// FormatValue renders v as the audit line shows values: JSON with bare object keys
// and spaces after separators ({name: "Alice", ver: 3}), a quoted string for string
// and []byte, and Go's %v (quoted if it holds control characters) for values JSON
// cannot encode. The result is deterministic and never spans lines.
func FormatValue[T any](v T) string {
	switch x := any(v).(type) {
	case string:
		return strconv.Quote(x)
	case []byte:
		return strconv.Quote(string(x))
	}
	b, err := safeMarshalJSON(v)
	if err != nil {
		s := fmt.Sprintf("%v", v)
		if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == utf8.RuneError }) {
			return strconv.Quote(s)
		}
		return s
	}
	var out strings.Builder
	if err := relaxJSON(&out, json.NewDecoder(bytes.NewReader(b))); err != nil {
		return string(b) // compact JSON is already one line
	}
	return out.String()
}

// relaxJSON re-emits one JSON value with bare keys and ", " / ": " separators.
func relaxJSON(w *strings.Builder, d *json.Decoder) error {
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return err
	}
	return relaxToken(w, d, tok)
}

func relaxToken(w *strings.Builder, d *json.Decoder, tok json.Token) error {
	switch t := tok.(type) {
	case json.Delim:
		closing := map[json.Delim]byte{'{': '}', '[': ']'}[t]
		w.WriteByte(byte(t))
		for i := 0; d.More(); i++ {
			if i > 0 {
				w.WriteString(", ")
			}
			if t == '{' {
				k, err := d.Token()
				if err != nil {
					return err
				}
				key, _ := k.(string)
				w.WriteString(bareKey(key))
				w.WriteString(": ")
			}
			v, err := d.Token()
			if err != nil {
				return err
			}
			if err := relaxToken(w, d, v); err != nil {
				return err
			}
		}
		if _, err := d.Token(); err != nil { // the closing delimiter
			return err
		}
		w.WriteByte(closing)
	case string:
		b, _ := json.Marshal(t)
		w.Write(b)
	case json.Number:
		w.WriteString(t.String())
	case bool:
		w.WriteString(strconv.FormatBool(t))
	case nil:
		w.WriteString("null")
	default:
		return io.ErrUnexpectedEOF
	}
	return nil
}

// bareKey leaves identifier-like keys unquoted and quotes the rest.
func bareKey(k string) string {
	if k == "" {
		return `""`
	}
	for i, r := range k {
		if !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '-')) {
			b, _ := json.Marshal(k)
			return string(b)
		}
	}
	return k
}
