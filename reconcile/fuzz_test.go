package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every parser of outside input has a fuzz target: the binary decoders, the
// record JSON form and ParseTimestamp. Each must never panic, and whatever it
// accepts must re-encode to the same bytes (the encodings are canonical).

func FuzzDecodeRecord(f *testing.F) {
	for i, r := range reachableRecords(rand.New(rand.NewPCG(1, 1)), 60) {
		if i%4 == 0 {
			b, err := r.MarshalBinary()
			require.NoError(f, err)
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{1, 'R'})
	f.Add([]byte{2, 'R', 0, 0})
	f.Add([]byte{1, 'R', 1, 1, 'a', 1, 1, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord[string](b, nil)
		if err != nil {
			return
		}
		again, err := r.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, b, again)
		require.True(t, Sync(r, r).Equal(r))
		_ = LWW[string]().Resolve(r.Versions()).Audit("k")
	})
}

func FuzzDecodeDVVSet(f *testing.F) {
	for i, s := range reachableDVVSets(rand.New(rand.NewPCG(2, 2)), 60) {
		if i%4 == 0 {
			b, err := AppendDVVSet(nil, s, nil)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	f.Add([]byte{1, 'D', 0, 0})
	f.Add([]byte{1, 'D', 1, 1, 'a', 0, 1, 1, '1', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeDVVSet[int](b, nil)
		if err != nil {
			return
		}
		again, err := AppendDVVSet(nil, s, nil)
		require.NoError(t, err)
		require.Equal(t, b, again)
		_ = s.Sync(s).Values()
	})
}

func FuzzDecodeVVAndContext(f *testing.F) {
	v := NewVV(Entry{"a", 1}, Entry{"b#2", 300})
	vb, _ := v.MarshalBinary()
	cb, _ := Context{Clock: v, Time: Timestamp{Wall: -5, Logical: 3}}.MarshalBinary()
	f.Add(vb)
	f.Add(cb)
	f.Add([]byte{1, 'V', 2, 1, 'b', 1, 1, 'a', 1})
	f.Add([]byte{1, 'V', 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v VV
		if v.UnmarshalBinary(b) == nil {
			again, _ := v.MarshalBinary()
			require.Equal(t, b, again)
			require.Equal(t, Equal, v.Compare(v))
		}
		var c Context
		if c.UnmarshalBinary(b) == nil {
			again, _ := c.MarshalBinary()
			require.Equal(t, b, again)
		}
	})
}

func FuzzRecordJSON(f *testing.F) {
	for i, r := range reachableRecords(rand.New(rand.NewPCG(3, 3)), 40) {
		if i%5 == 0 {
			b, err := json.Marshal(r)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	f.Add([]byte(`{"versions":[{"dot":{"actor":"N1#1","counter":3},"timestamp":"1678812345.5+2","node":"N1","value":"x"}]}`))
	f.Add([]byte(`{"clock":{"a":1},"versions":[{"dot":{"actor":"a","counter":2}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record[string]
		if json.Unmarshal(b, &r) != nil {
			return
		}
		out, err := json.Marshal(r)
		require.NoError(t, err)
		var back Record[string]
		require.NoError(t, json.Unmarshal(out, &back))
		require.True(t, r.Equal(back))
		_ = Manual[string]().Resolve(r.Versions()).Audit("k")
	})
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"0", "1678812345", "1678812345.25+2", "-1.5", "1.000000001", "9223372036.854775807", "1e3", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseTimestamp(s)
		if err != nil {
			return
		}
		back, err := ParseTimestamp(ts.String())
		require.NoError(t, err)
		require.Equal(t, ts, back)
		var j Timestamp
		require.NoError(t, j.UnmarshalJSON(bytes.Clone([]byte(`"`+ts.String()+`"`))))
		require.Equal(t, ts, j)
	})
}

// FuzzFormatValue checks the one-pass relaxed rendering of FormatValue against
// a reference that re-emits every token through encoding/json's Decoder, over
// any JSON value the fuzzer finds.
func FuzzFormatValue(f *testing.F) {
	for _, s := range []string{`{"name":"Alice","ver":3}`, `[1,{"a b":[],"_x-1":{"":null}},"x,y:z"]`, `{"k":"\"}{,:\\","$":true,"9":1.5e300}`, `"<&>\u2028"`, `{}`, `[[],[{}]]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		if str, ok := v.(string); ok { // strings are quoted Go-style, not as JSON
			require.Equal(t, strconv.Quote(str), FormatValue(v))
			return
		}
		b, err := json.Marshal(v)
		require.NoError(t, err)
		var want strings.Builder
		require.NoError(t, relaxReference(&want, json.NewDecoder(bytes.NewReader(b))))
		require.Equal(t, want.String(), FormatValue(v))
	})
}

// relaxReference re-emits one JSON value token by token with bare keys and
// ", " / ": " separators.
func relaxReference(w *strings.Builder, d *json.Decoder) error {
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return err
	}
	return relaxReferenceToken(w, d, tok)
}

func relaxReferenceToken(w *strings.Builder, d *json.Decoder, tok json.Token) error {
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
				if bareKey([]byte(key)) {
					w.WriteString(key)
				} else {
					b, _ := json.Marshal(key)
					w.Write(b)
				}
				w.WriteString(": ")
			}
			v, err := d.Token()
			if err != nil {
				return err
			}
			if err := relaxReferenceToken(w, d, v); err != nil {
				return err
			}
		}
		if _, err := d.Token(); err != nil {
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
		return fmt.Errorf("unexpected token %v", tok)
	}
	return nil
}
