package reconcile

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
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
func canonicalBytes[T any](v T) []byte { return appendCanonical(nil, v) }

// appendCanonical appends canonicalBytes(v) to b.
func appendCanonical[T any](b []byte, v T) []byte {
	out, err := defaultCodec[T]{}.AppendValue(b, v)
	if err != nil {
		return fmt.Appendf(b, "%#v", v)
	}
	return out
}

// FormatValue renders v as the audit line shows values: JSON with bare object keys
// and spaces after separators ({name: "Alice", ver: 3}), a quoted string for string
// and []byte, and Go's %v (quoted if it holds control characters) for values JSON
// cannot encode. The result is deterministic and never spans lines. It costs one
// json.Marshal and one pass over its output.
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
	return string(relaxJSON(make([]byte, 0, len(b)+len(b)/2), b))
}

// relaxJSON appends src, compact JSON as json.Marshal writes it, to dst with
// identifier-like object keys unquoted and ", " / ": " as separators. Strings
// are copied as they are, so the result stays on one line.
func relaxJSON(dst, src []byte) []byte {
	var buf [16]bool
	inObject := buf[:0] // per open container: is it an object
	keyNext := false    // the next string is an object key
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '"':
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j, len(src)-1)
			if raw := src[i+1 : j]; keyNext && bareKey(raw) {
				dst = append(dst, raw...)
			} else {
				dst = append(dst, src[i:j+1]...)
			}
			keyNext = false
			i = j
		case '{', '[':
			inObject = append(inObject, c == '{')
			keyNext = c == '{'
			dst = append(dst, c)
		case '}', ']':
			if len(inObject) > 0 {
				inObject = inObject[:len(inObject)-1]
			}
			dst = append(dst, c)
		case ':':
			dst = append(dst, ':', ' ')
		case ',':
			keyNext = len(inObject) > 0 && inObject[len(inObject)-1]
			dst = append(dst, ',', ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// bareKey reports whether a key (as it appears between its JSON quotes) is
// identifier-like and can be written without quotes: a letter, '_' or '$', then
// also digits and '-'.
func bareKey(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for i, r := range k {
		if !(r == '_' || r == '$' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '-')) {
			return false
		}
	}
	return true
}
