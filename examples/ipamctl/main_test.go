package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/addrguard/addrguard/ipam/etcdstore/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const poolYAML = `apiVersion: mcp.example.com/v1
kind: IPPool
metadata: {name: pool-us-west}
spec:
  subnet: "10.100.0.0/16"
  gateway: "10.100.0.1"
  reservedIPs: ["10.100.0.100-10.100.0.110"]
`

func ipamctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func write(t *testing.T, dir, name, data string) string {
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(data), 0o600))
	return p
}

// stores are the two kinds of store ipamctl runs on: a bbolt file in dir,
// and an embedded etcd server.
func stores(t *testing.T, dir string) map[string][]string {
	c := etcdtest.Start(t, etcdtest.Options{})
	return map[string][]string{
		"bolt": {"-store", filepath.Join(dir, "ipam.db")},
		"etcd": {"-etcd", strings.Join(c.Endpoints(), ","), "-etcd-prefix", "ipamctl-test/"},
	}
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	for name, sel := range stores(t, dir) {
		t.Run(name, func(t *testing.T) { testCommands(t, dir, sel) })
	}
}

func testCommands(t *testing.T, dir string, sel []string) {
	cmd := func(args ...string) (string, string, int) { return ipamctl(t, append(slices.Clone(sel), args...)...) }
	manifest := write(t, dir, "pool.yaml", poolYAML)
	out, _, code := cmd("pool", "add", manifest)
	require.Equal(t, 0, code)
	assert.Equal(t, "pool-us-west\n", out)

	out, _, code = cmd("alloc", "pool-us-west", "-owner", "pod-1")
	require.Equal(t, 0, code)
	assert.Equal(t, "10.100.0.2\n", out)
	again, _, _ := cmd("alloc", "-owner", "pod-1", "pool-us-west")
	assert.Equal(t, out, again, "same owner, same address")

	out, _, code = cmd("alloc", "pool-us-west", "-owner", "bulk", "-n", "30000")
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Len(t, lines, 30000)
	seen := map[string]bool{"10.100.0.2": true}
	for _, l := range lines {
		require.False(t, seen[l], "duplicate %s", l)
		seen[l] = true
	}

	out, _, code = cmd("alloc", "pool-us-west", "-owner", "pinned", "-addr", "10.100.200.7")
	require.Equal(t, 0, code)
	assert.Equal(t, "10.100.200.7\n", out)
	_, errOut, code := cmd("alloc", "pool-us-west", "-owner", "x", "-addr", "10.100.0.105")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "10.100.0.105")

	out, _, code = cmd("stats", "pool-us-west")
	require.Equal(t, 0, code)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, map[string]any{"pool": "pool-us-west", "total": "65536", "reserved": "14", "allocated": "30002",
		"quarantined": "0", "free": "35520", "utilization": st["utilization"]}, st)
	assert.InDelta(t, 30002.0/65522, st["utilization"], 1e-9)

	out, _, code = cmd("release", "pool-us-west", "10.100.200.7")
	require.Equal(t, 0, code)
	assert.Equal(t, "10.100.200.7 pinned\n", out)
	_, _, code = cmd("release", "pool-us-west", "10.100.200.7")
	assert.Equal(t, 2, code)
	out, _, code = cmd("release", "pool-us-west", "-owner", "bulk")
	require.Equal(t, 0, code)
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 30000)

	out, _, code = cmd("verify")
	assert.Equal(t, 0, code)
	assert.Equal(t, "ok\n", out)

	// Exhaustion is exit 1.
	small := write(t, dir, "small.json", `{"name":"tiny","ipam":{"type":"host-local","subnet":"192.0.2.0/30"}}`)
	_, _, code = cmd("pool", "add", small)
	require.Equal(t, 0, code)
	_, errOut, code = cmd("alloc", "tiny", "-owner", "o", "-n", "3")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "exhausted")
}

func TestOverlapAndUsage(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.yaml", poolYAML)
	b := write(t, dir, "b.json", `{"kind":"IPPool","metadata":{"name":"pool-b"},"spec":{"subnet":"10.100.128.0/17"}}`)
	c := write(t, dir, "c.json", `{"kind":"IPPool","metadata":{"name":"pool-c"},"spec":{"subnet":"192.0.2.0/24"}}`)
	out, _, code := ipamctl(t, "overlap", a, b, c)
	assert.Equal(t, 1, code)
	assert.Equal(t, "pool-us-west pool-b 10.100.128.0/17\n", out)
	out, _, code = ipamctl(t, "overlap", a, c)
	assert.Equal(t, 0, code)
	assert.Empty(t, out)
	out, _, code = ipamctl(t, "-json", "overlap", a, b)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"kind":"allocatable"`)

	bad := write(t, dir, "bad.yaml", "kind: IPPool\nmetadata: {name: x}\nspec: {subnet: 10.0.0.1/24}\n")
	store := filepath.Join(dir, "s.db")
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{}, "missing command"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"-store", store, "pool", "add", bad}, "not canonical: the subnet is 10.0.0.0/24"},
		{[]string{"-store", store, "pool", "add", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
		{[]string{"-store", store, "alloc", "p"}, "usage: alloc"},
		{[]string{"-store", store, "alloc", "p", "-owner", "o", "-n", "0"}, "-n 0"},
		{[]string{"-store", store, "alloc", "nope", "-owner", "o"}, `unknown pool "nope"`},
		{[]string{"-store", store, "release", "p"}, "usage: release"},
		{[]string{"-store", store, "release", "p", "-owner", "o", "10.0.0.1"}, "usage: release"},
		{[]string{"-bogus"}, "flag provided but not defined"},
		{[]string{"overlap"}, "usage: overlap"},
		{[]string{"-store", store, "-etcd", "127.0.0.1:2379", "pool", "list"}, "-store and -etcd are mutually exclusive"},
		{[]string{"-etcd-prefix", "x/", "pool", "list"}, "need -etcd"},
		{[]string{"-etcd", "127.0.0.1:2379,", "pool", "list"}, "empty endpoint"},
	}
	for _, tt := range tests {
		_, errOut, code := ipamctl(t, tt.args...)
		assert.Equal(t, 2, code, "%v: %s", tt.args, errOut)
		assert.Contains(t, errOut, tt.msg, "%v", tt.args)
	}
}

// An unreachable etcd is an error naming the endpoint and the operation,
// not an empty store.
func TestEtcdUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ep := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	for _, args := range [][]string{{"pool", "list"}, {"alloc", "p", "-owner", "o"}, {"verify"}} {
		out, errOut, code := ipamctl(t, append([]string{"-etcd", ep, "-etcd-timeout", "300ms"}, args...)...)
		assert.Equal(t, 1, code, "%v", args)
		assert.Empty(t, out)
		assert.Contains(t, errOut, ep, "%v", args)
		assert.Contains(t, errOut, "etcdstore: dial", "%v", args)
	}
}

// TestProcesses runs the built ipamctl: 8 processes allocating at once on
// one bbolt file or one etcd, then verify.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ipamctl")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	for name, sel := range stores(t, dir) {
		t.Run(name, func(t *testing.T) { testProcesses(t, bin, dir, sel) })
	}
}

func testProcesses(t *testing.T, bin, dir string, sel []string) {
	cmd := func(args ...string) *exec.Cmd { return exec.Command(bin, append(slices.Clone(sel), args...)...) }
	manifest := write(t, dir, "pool.yaml", poolYAML)
	require.NoError(t, cmd("pool", "add", manifest).Run())
	var wg sync.WaitGroup
	outs := make([]string, 8)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := cmd("alloc", "pool-us-west", "-owner", fmt.Sprint("job", i), "-n", "500").Output()
			assert.NoError(t, err)
			outs[i] = string(out)
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, o := range outs {
		for _, l := range strings.Fields(o) {
			require.False(t, seen[l], "duplicate %s", l)
			seen[l] = true
		}
	}
	assert.Len(t, seen, 4000)
	out, err := cmd("verify").Output()
	require.NoError(t, err)
	assert.Equal(t, "ok\n", string(out))
}
