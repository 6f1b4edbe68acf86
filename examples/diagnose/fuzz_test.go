package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzRecordFile feeds arbitrary -record files through parsing, merging,
// every policy and the report's rendering: errors, never panics; a parsed
// key naming an address is a valid address.
func FuzzRecordFile(f *testing.F) {
	sample, err := os.ReadFile(filepath.Join(sampleDir, "lease-record.json"))
	require.NoError(f, err)
	f.Add(sample)
	f.Add([]byte(`{"key": "user:1001", "replicas": {"N1": {"versions": [{"dot": {"actor": "N1#1", "counter": 3}, "timestamp": 1678812345, "node": "N1", "value": {"name": "Alice"}}]}, "N2": {"versions": [{"dot": {"actor": "N2#1", "counter": 1}, "timestamp": "1678812350.5+2", "node": "N2", "deleted": true}]}}}`))
	f.Add([]byte(`{"key": "ip:2001:db8::1", "replicas": {"a": {"clock": {"a#0": 2}, "versions": []}}}`))
	f.Add([]byte(`{"key": "k", "replicas": {"a": {"versions": [{"dot": {"actor": "", "counter": 0}}]}}}`))
	f.Add([]byte(`{"key": "pool-a/192.0.2.10", "replicas": {"a": null, "b": {}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"key": "k", "replicas": {"a": {"versions": [{"dot": {"actor": "a#1", "counter": 1}, "timestamp": "2026-03-02T02:56:30Z", "node": "a", "value": "x"}]}, "b": {"versions": [{"dot": {"actor": "a#1", "counter": 1}, "timestamp": 5, "node": "b", "value": "y"}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range []string{"lww", "priority-lww", "delete-wins", "add-wins", "manual"} {
			ri, err := parseRecordFile(data, p)
			if err != nil {
				if strings.TrimSpace(err.Error()) == "" {
					t.Fatal("empty error message")
				}
				continue
			}
			if ri.addr.IsValid() && !strings.Contains(ri.key, ri.addr.String()) && !strings.Contains(ri.key, ri.addr.StringExpanded()) {
				// keyAddr unmaps IPv4-mapped addresses; their text differs.
				if !ri.addr.Is4() {
					t.Fatalf("key %q names %s", ri.key, ri.addr)
				}
			}
			ri.file = "fuzz.json"
			_ = recordEvidence(ri)
			_ = resolveAction(ri.key, []recordInfo{ri})
			_ = ownerOf([]recordInfo{ri}, "02:a6:00:00:00:01")
		}
	})
}
