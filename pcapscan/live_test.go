package pcapscan

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/addrguard/addrguard/internal/testnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeConn hands out frames, then times out like an idle socket until closed.
type fakeConn struct {
	mu       sync.Mutex
	frames   [][]byte
	deadline time.Time
	clock    *fakeClock
	closed   chan struct{}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (c *fakeConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.mu.Lock()
	if len(c.frames) > 0 {
		f := c.frames[0]
		c.frames = c.frames[1:]
		c.mu.Unlock()
		c.clock.advance(time.Millisecond)
		return copy(b, f), nil, nil
	}
	d := c.deadline
	c.mu.Unlock()
	// Idle: time passes until the deadline.
	c.clock.set(d)
	select {
	case <-c.closed:
	case <-time.After(time.Millisecond):
	}
	return 0, nil, timeoutErr{}
}

func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

func TestScanLiveInjected(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 4, 5, 6, 7, 8, 0, time.UTC)}
	conn := &fakeConn{clock: clock, closed: make(chan struct{}), frames: [][]byte{
		arpFrame(1, macC, ipC, ipX, mac{}),
		arpFrame(2, macA, ipX, ipC, macC),
		arpFrame(2, macB, ipX, ipC, macC),
	}}
	var pcap bytes.Buffer
	w, err := NewWriter(&pcap, LinkEthernet, 0)
	require.NoError(t, err)
	sc := New(Options{Window: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	found := make(chan Finding, 4)
	done := make(chan error, 1)
	go func() {
		done <- sc.ScanLive(ctx, conn, LiveOptions{Writer: w, Clock: clock.Now, Tick: 10 * time.Second},
			func(f Finding) { found <- f })
	}()
	// The conflict is reported once the address has been quiet for the window,
	// while the capture still runs: idle ticks move the clock.
	select {
	case f := <-found:
		assert.Equal(t, ARPConflict, f.Kind)
		assert.Equal(t, Critical, f.Severity)
		assert.Equal(t, []uint64{2, 3}, f.Frames)
		assert.Equal(t, time.Date(2026, 4, 5, 6, 7, 8, 2e6, time.UTC), f.First)
	case <-time.After(10 * time.Second):
		t.Fatal("no finding while the capture runs")
	}
	cancel()
	close(conn.closed)
	require.NoError(t, <-done)
	// What was analysed was recorded.
	rescanned := 0
	require.NoError(t, New(Options{}).Scan(&pcap, func(f Finding) {
		rescanned++
		assert.Equal(t, ARPConflict, f.Kind)
	}))
	assert.Equal(t, 1, rescanned)
}

// TestScanLiveNamespace runs ScanLive on a real bridge: two hosts answer
// arping for one address while the scanner listens on the bridge and records.
func TestScanLiveNamespace(t *testing.T) {
	hosts := testnet.Switch(t, 3)
	br := hosts[0].Bridge
	var conn PacketConn
	var closer interface{ Close() error }
	require.NoError(t, br.Do(func() error {
		ifi, err := net.InterfaceByName(br.Ifname)
		if err != nil {
			return err
		}
		c, err := ListenLive(ifi)
		conn, closer = c, c
		return err
	}))
	defer closer.Close()

	out := filepath.Join(t.TempDir(), "live.pcap")
	f, err := os.Create(out)
	require.NoError(t, err)
	defer f.Close()
	w, err := NewWriter(f, LinkEthernet, 0)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var live []Finding
	done := make(chan error, 1)
	go func() {
		done <- New(Options{}).ScanLive(ctx, conn, LiveOptions{Writer: w}, func(f Finding) {
			mu.Lock()
			live = append(live, f)
			mu.Unlock()
		})
	}()
	addrs(t, hosts, gShared, gShared, gClient)
	outp, _ := hosts[2].Run("arping", "-c", "3", "-w", "4", "-I", "eth0", gShared.Addr().String())
	require.Contains(t, outp, strings.ToUpper(gMAC2))
	time.Sleep(200 * time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	mu.Lock()
	defer mu.Unlock()
	c := ofKind(live, ARPConflict)
	require.Len(t, c, 1, "%v", live)
	assert.Equal(t, gShared.Addr(), c[0].IP)
	assert.Equal(t, []string{gMAC1, gMAC2}, macStrings(c[0]))
	assert.Equal(t, Critical, c[0].Severity)
	// The recording gives the same finding when scanned again.
	again := ofKind(scanFile(t, out), ARPConflict)
	require.Len(t, again, 1)
	assert.Equal(t, c[0].Frames, again[0].Frames)
}
