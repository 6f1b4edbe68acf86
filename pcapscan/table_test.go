package pcapscan

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pointerFree reports the path to the first pointer inside t, or "" when t
// holds none.
func pointerFree(t reflect.Type, path string) string {
	switch t.Kind() {
	case reflect.Array:
		return pointerFree(t.Elem(), path+"[]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if p := pointerFree(f.Type, path+"."+f.Name); p != "" {
				return p
			}
		}
		return ""
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	}
	return path + " (" + t.String() + ")"
}

func TestTableMemoryHoldsNoPointers(t *testing.T) {
	// largeSlice hands out the tables' memory as bytes to the garbage
	// collector, which therefore never looks inside: a pointer stored there
	// would not keep its target alive.
	s := New(Options{})
	for _, v := range []any{s.arp.slots, s.ips.slots, s.paths.slots, s.macs.slots, s.spoof.slots,
		s.flows.slots, s.reqs.slots, s.dhcp.slots, s.arp.buckets, s.dups} {
		typ := reflect.TypeOf(v).Elem()
		assert.Empty(t, pointerFree(typ, typ.String()))
	}
}

func TestTableResetForgetsEntries(t *testing.T) {
	tb := newTable[uint64, reqEntry](64, nil)
	for k := range uint64(64) {
		v, fresh := tb.upsert(final(k), k, 1)
		require.True(t, fresh)
		v.count = 7
	}
	tb.reset()
	tb.each(func(*uint64, *reqEntry) bool {
		t.Fatal("an entry survived reset")
		return true
	})
	for k := range uint64(64) {
		require.Nil(t, tb.get(final(k), k))
		v, fresh := tb.upsert(final(k), k, 2)
		require.True(t, fresh)
		assert.Zero(t, v.count, "a slot taken again after reset starts from zero")
	}
}

func TestScannerReusedGivesSameFindings(t *testing.T) {
	// Captures scanned one after another through one Scanner see none of
	// each other's state: each gives what a fresh Scanner gives.
	paths, err := filepath.Glob(filepath.Join("testdata", "*.pcap"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	scan := func(sc *Scanner, path string) []Finding {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		var got []Finding
		require.NoError(t, sc.Scan(bytes.NewReader(data), func(f Finding) { got = append(got, f) }))
		return got
	}
	reused := New(Options{})
	total := 0
	for range 2 {
		for _, path := range paths {
			want := scan(New(Options{}), path)
			total += len(want)
			assert.Equal(t, want, scan(reused, path), path)
		}
	}
	assert.Positive(t, total)
}
