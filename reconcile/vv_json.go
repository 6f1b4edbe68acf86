package reconcile

import (
	"encoding/json"
	"strconv"
)

// MarshalJSON writes v as a JSON object from actor to counter, keys in canonical
// order: {"N1#1":3,"N2#1":1}.
func (v VV) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, x := range v.e {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(x.name())
		if err != nil {
			return nil, err
		}
		b = append(append(b, k...), ':')
		b = strconv.AppendUint(b, x.counter, 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads a JSON object from actor to counter (zero counters and
// null are accepted and mean "no entry").
func (v *VV) UnmarshalJSON(b []byte) error {
	var m map[string]uint64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	e := make([]Entry, 0, len(m))
	for a, n := range m {
		e = append(e, Entry{a, n})
	}
	*v = NewVV(e...)
	return nil
}

// MarshalText renders the ordering as its name.
func (o Ordering) MarshalText() ([]byte, error) { return []byte(o.String()), nil }
