package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/addrguard/addrguard/internal/testnet"
	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/pcapscan"
)

// The bundled samples are made by the project: the manifests, auth.log and
// lease-record.json by hand, the IPAM stores by TestSampleStores from the
// manifests, and the capture by TestRecordSample in network namespaces.
//
//	go test ./examples/diagnose -run 'TestSampleStores|TestRecordSample' -update-samples   (as root)
//
// rewrites them; without the flag both tests check that what they make now
// matches what is committed.

var updateSamples = flag.Bool("update-samples", false, "rewrite testdata/samples/*.db and capture.pcap (the capture needs root)")

const sampleDir = "testdata/samples"

// storyStart is when the capture's first frame is placed: the time the
// hand-written log and record tell their story around.
var storyStart = time.Date(2026, 3, 2, 2, 58, 0, 0, time.UTC)

// The addresses of the story (see testdata/samples/README.md).
var (
	sharedAddr = netip.MustParsePrefix("198.51.100.77/24") // east pod web-7f3c and west VIP api
	clientAddr = netip.MustParsePrefix("198.51.100.40/24") // east pod checkout-1
	eastMAC    = "02:a6:00:00:00:01"
	westMAC    = "02:a6:00:00:00:02"
)

// sampleLeases are the leases the stores hold: specific addresses first,
// then n more owners per pool.
var sampleLeases = map[string]struct {
	fixed map[string]string // address -> owner
	more  int
}{
	"east-pods":  {map[string]string{"198.51.100.40": "pod/checkout-1", "198.51.100.77": "pod/web-7f3c"}, 90}, // 92 of 108: warn
	"east-infra": {nil, 12},
	"west-vips":  {map[string]string{"198.51.100.77": "vip/api"}, 7},
	"west-pods":  {nil, 40},
}

// makeStore builds the IPAM store of one cluster from its manifest.
func makeStore(t *testing.T, manifest, path string) {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(filepath.Join(sampleDir, manifest))
	require.NoError(t, err)
	specs, err := ipam.ParseManifest(data)
	require.NoError(t, err)
	st, err := ipam.OpenBolt(ctx, path, ipam.BoltOptions{NoSync: true})
	require.NoError(t, err)
	defer st.Close()
	now := storyStart.Add(-30 * 24 * time.Hour)
	alloc, err := ipam.NewWithOptions(ctx, st, ipam.Options{Clock: func() time.Time { now = now.Add(time.Minute); return now }}, specs...)
	require.NoError(t, err)
	for _, s := range specs {
		want := sampleLeases[s.Name]
		addrs := make([]string, 0, len(want.fixed))
		for a := range want.fixed {
			addrs = append(addrs, a)
		}
		slices.Sort(addrs)
		for _, a := range addrs {
			_, err := alloc.AllocateAddr(ctx, s.Name, want.fixed[a], netip.MustParseAddr(a))
			require.NoError(t, err)
		}
		for i := range want.more {
			_, err := alloc.Allocate(ctx, s.Name, fmt.Sprintf("%s/%s-%03d", ownerKind(s.Name), s.Name, i+1))
			require.NoError(t, err)
		}
	}
	require.NoError(t, alloc.Verify(ctx))
}

func ownerKind(pool string) string {
	if strings.HasSuffix(pool, "-vips") {
		return "vip"
	}
	return "pod"
}

// storeContent lists a store's pools with their counts and leases, for
// comparing two stores.
func storeContent(t *testing.T, path string) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir() // the store is opened from a copy: opening writes a lock file
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	cp := filepath.Join(dir, "store.db")
	require.NoError(t, os.WriteFile(cp, data, 0o600))
	st, err := ipam.OpenBolt(ctx, cp, ipam.BoltOptions{})
	require.NoError(t, err)
	defer st.Close()
	alloc, err := ipam.New(ctx, st)
	require.NoError(t, err)
	specs, err := alloc.Pools(ctx)
	require.NoError(t, err)
	var b strings.Builder
	for _, s := range specs {
		stats, err := alloc.Stats(ctx, s.Name)
		require.NoError(t, err)
		fmt.Fprintf(&b, "%s/%s %s allocated=%s level=%s\n", s.Cluster, s.Name, s.Subnet, stats.Allocated, stats.Level)
		for l, err := range alloc.Leases(ctx, s.Name) {
			require.NoError(t, err)
			fmt.Fprintf(&b, "  %s %s %d %s\n", l.Addr, l.Owner, l.Generation, l.Allocated.Format(time.RFC3339))
		}
	}
	return b.String()
}

func TestSampleStores(t *testing.T) {
	for _, c := range []struct{ manifest, store string }{{"east-pools.yaml", "east.db"}, {"west-pools.yaml", "west.db"}} {
		t.Run(c.store, func(t *testing.T) {
			fresh := filepath.Join(t.TempDir(), c.store)
			makeStore(t, c.manifest, fresh)
			committed := filepath.Join(sampleDir, c.store)
			if *updateSamples {
				data, err := os.ReadFile(fresh)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(committed, data, 0o644))
			}
			assert.Equal(t, storeContent(t, fresh), storeContent(t, committed), "testdata/samples/%s is stale: run go test -run TestSampleStores -update-samples", c.store)
		})
	}
	// The story needs east-pods at its warn level and 198.51.100.77 leased
	// in both clusters.
	east := storeContent(t, filepath.Join(sampleDir, "east.db"))
	assert.Contains(t, east, "east/east-pods 198.51.100.0/24 allocated=92 level=warn")
	assert.Contains(t, east, "198.51.100.77 pod/web-7f3c")
	assert.Contains(t, storeContent(t, filepath.Join(sampleDir, "west.db")), "198.51.100.77 vip/api")
}

// TestRecordSample records the sample capture in namespaces: the east pod
// holds 198.51.100.77; the west load balancer probes for it, is answered,
// takes it anyway and announces it; a client's pings and requests then reach
// one host or the other, and the client retries one request ID until it
// reaches the right one; an operator's arping gets two answers.
func TestRecordSample(t *testing.T) {
	testnet.Require(t)
	for _, tool := range []string{"tcpdump", "arping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s to record the sample capture (apt-get install -y tcpdump iputils-arping)", tool)
		}
	}
	hosts := testnet.Switch(t, 3)
	east, west, client := hosts[0], hosts[1], hosts[2]
	require.Equal(t, eastMAC, east.MAC.String())
	require.Equal(t, westMAC, west.MAC.String())
	raw := filepath.Join(t.TempDir(), "raw.pcap")
	stop := tcpdump(t, east.Bridge, raw)

	require.NoError(t, east.AddAddr(sharedAddr))
	require.NoError(t, client.AddAddr(clientAddr))
	serveHTTP(t, east, http.StatusOK, "east web-7f3c: checkout ok\n")
	pings(t, client, sharedAddr.Addr(), 2)

	// The west load balancer probes (RFC 5227), is answered, and goes on.
	out, err := west.Run("arping", "-D", "-c", "2", "-w", "3", "-I", "eth0", sharedAddr.Addr().String())
	require.Error(t, err, "arping -D exits 1 when the address is in use: %s", out)
	require.NoError(t, west.AddAddr(sharedAddr))
	serveHTTP(t, west, http.StatusServiceUnavailable, "west api: no route for /checkout\n")
	out, _ = west.Run("arping", "-U", "-c", "2", "-w", "2", "-I", "eth0", sharedAddr.Addr().String())
	t.Logf("west announces: %s", out)
	pings(t, client, sharedAddr.Addr(), 2)

	// The client retries one request until it reaches the east pod; after
	// the third failure the east host announces the address again.
	httpc := clientIn(client)
	attempts, served := 0, false
	for attempts < 6 && !served {
		attempts++
		req, err := http.NewRequest("GET", "http://"+net.JoinHostPort(sharedAddr.Addr().String(), "8080")+"/checkout", nil)
		require.NoError(t, err)
		req.Header.Set("X-Request-ID", "req-7f3c")
		resp, err := httpc.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("attempt %d: %s %s", attempts, resp.Status, strings.TrimSpace(string(body)))
		served = resp.StatusCode == http.StatusOK
		if attempts == 3 && !served {
			out, _ := east.Run("arping", "-U", "-c", "1", "-w", "1", "-I", "eth0", sharedAddr.Addr().String())
			t.Logf("east announces: %s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	require.True(t, served, "the request never reached the east pod")
	require.GreaterOrEqual(t, attempts, 3, "the client's neighbour entry pointed at the east pod all along")

	// An operator asks who has the address.
	out, _ = client.Run("arping", "-c", "2", "-w", "3", "-I", "eth0", sharedAddr.Addr().String())
	require.Contains(t, out, strings.ToUpper(eastMAC), out)
	require.Contains(t, out, strings.ToUpper(westMAC), out)
	time.Sleep(200 * time.Millisecond)
	stop()

	rebased := filepath.Join(t.TempDir(), "capture.pcap")
	rebase(t, raw, rebased, storyStart)
	checkSampleCapture(t, rebased)
	if *updateSamples && !t.Failed() {
		data, err := os.ReadFile(rebased)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(sampleDir, "capture.pcap"), data, 0o644))
	}
}

// checkSampleCapture checks that a capture tells the sample's story.
func checkSampleCapture(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var fs []pcapscan.Finding
	require.NoError(t, pcapscan.New(pcapscan.Options{}).Scan(f, func(fd pcapscan.Finding) { fs = append(fs, fd) }))
	kinds := map[pcapscan.Kind]pcapscan.Finding{}
	for _, fd := range fs {
		t.Log(fd)
		kinds[fd.Kind] = fd
	}
	macs := func(fd pcapscan.Finding) []string {
		var out []string
		for _, m := range fd.MACs {
			out = append(out, m.String())
		}
		return out
	}
	c, ok := kinds[pcapscan.ARPConflict]
	require.True(t, ok, "an arp-conflict finding")
	assert.Equal(t, sharedAddr.Addr(), c.IP)
	assert.Equal(t, pcapscan.Critical, c.Severity)
	assert.Equal(t, []string{eastMAC, westMAC}, macs(c))
	require.Len(t, c.Evidence, 2, "one evidence lane per MAC")
	d, ok := kinds[pcapscan.DADProbeAnswered]
	require.True(t, ok, "a dad-probe-answered finding")
	assert.Equal(t, sharedAddr.Addr(), d.IP)
	r, ok := kinds[pcapscan.RequestIDRepeat]
	require.True(t, ok, "a request-id-repeat finding")
	assert.Equal(t, "req-7f3c", r.RequestID)
	assert.Equal(t, sharedAddr.Addr(), r.IP)
	assert.GreaterOrEqual(t, r.Count, 3)
}

// rebase copies a capture, moving its frames in time so that the first one
// is at start (the intervals between frames are kept).
func rebase(t *testing.T, from, to string, start time.Time) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	rd, err := pcapscan.NewReader(in, pcapscan.ReaderOptions{})
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := pcapscan.NewWriter(&buf, rd.LinkType(), 0)
	require.NoError(t, err)
	var first time.Time
	n := 0
	for p, err := range rd.Packets() {
		require.NoError(t, err)
		if first.IsZero() {
			first = p.Time
		}
		require.NoError(t, w.WritePacket(start.Add(p.Time.Sub(first)), p.Data, p.Length))
		n++
	}
	require.NoError(t, w.Flush())
	require.NotZero(t, n, "tcpdump recorded nothing")
	require.NoError(t, os.WriteFile(to, buf.Bytes(), 0o644))
}

// pings sends n echo requests from h to dst, each answered.
func pings(t *testing.T, h *testnet.Host, dst netip.Addr, n int) {
	t.Helper()
	for range n {
		require.NoError(t, h.Ping(dst, 2*time.Second))
		time.Sleep(100 * time.Millisecond)
	}
}

// serveHTTP answers every request on h's 198.51.100.77:8080 with code and
// body.
func serveHTTP(t *testing.T, h *testnet.Host, code int, body string) {
	t.Helper()
	var ln net.Listener
	require.NoError(t, h.Do(func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(sharedAddr.Addr().String(), "8080"))
		return err
	}))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// clientIn returns an HTTP client dialling from h's namespace, one
// connection per request.
func clientIn(h *testnet.Host) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := h.Do(func() (err error) {
				var d net.Dialer
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// tcpdump records h's interface to path until the returned function is
// called.
func tcpdump(t *testing.T, h *testnet.Host, path string) func() {
	t.Helper()
	cmd := h.Command(context.Background(), "tcpdump", "-i", h.Ifname, "--immediate-mode", "-U", "-n", "-s", "0", "-w", path)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	ready := make(chan struct{})
	var mu sync.Mutex
	var tail strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.OnceFunc(func() { close(ready) })
		defer once()
		for sc.Scan() {
			mu.Lock()
			tail.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "listening on") {
				once()
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("tcpdump did not start listening within 10 s")
	}
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGINT)
			err := cmd.Wait()
			mu.Lock()
			t.Logf("tcpdump: %s", tail.String())
			mu.Unlock()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Errorf("tcpdump: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestSampleCapture checks the committed capture (no root needed).
func TestSampleCapture(t *testing.T) {
	checkSampleCapture(t, filepath.Join(sampleDir, "capture.pcap"))
}
