package testnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var (
	addrA = netip.MustParsePrefix("192.0.2.1/24")
	addrB = netip.MustParsePrefix("192.0.2.2/24")
)

func namespaces(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	require.NoError(t, err)
	return ParseNetnsList(out)
}

func pingOK(t *testing.T, from *Host, to netip.Prefix) {
	t.Helper()
	require.NoError(t, from.Ping(to.Addr(), 2*time.Second), "from %s", from.Netns)
}

func TestPairPing(t *testing.T) {
	a, b := Pair(t)
	require.NoError(t, a.AddAddr(addrA))
	require.NoError(t, b.AddAddr(addrB))

	assert.Equal(t, "eth0", a.Ifname)
	assert.NotEqual(t, a.Netns, b.Netns)
	assert.Positive(t, a.Index)
	assert.Positive(t, b.Index)
	assert.NotEqual(t, a.MAC.String(), b.MAC.String())
	assert.Equal(t, byte(0x02), a.MAC[0]&0x03, "MAC must be locally administered unicast")

	pingOK(t, a, addrB)
	pingOK(t, b, addrA)
}

func TestPairNeighborLearnsMAC(t *testing.T) {
	a, b := Pair(t)
	require.NoError(t, a.AddAddr(addrA))
	require.NoError(t, b.AddAddr(addrB))

	pingOK(t, b, addrA)
	neigh, err := b.Neighbors()
	require.NoError(t, err)
	i := slices.IndexFunc(neigh, func(n Neighbor) bool { return n.Addr == addrA.Addr() })
	require.GreaterOrEqual(t, i, 0, "b's neighbour cache %v has no entry for %s", neigh, addrA.Addr())
	assert.Equal(t, a.MAC.String(), neigh[i].MAC.String())

	// Removing the address on a makes it unreachable from b.
	require.NoError(t, a.DelAddr(addrA))
	assert.ErrorIs(t, b.Ping(addrA.Addr(), 500*time.Millisecond), ErrNoReply,
		"ping must go unanswered once the address is removed")
}

func TestPairLinkDownUp(t *testing.T) {
	a, b := Pair(t)
	require.NoError(t, a.AddAddr(addrA))
	require.NoError(t, b.AddAddr(addrB))

	require.NoError(t, a.SetDown())
	assert.ErrorIs(t, b.Ping(addrA.Addr(), 500*time.Millisecond), ErrNoReply,
		"ping must go unanswered while the link is down")

	require.NoError(t, a.SetUp())
	// Carrier returns asynchronously; allow it a moment.
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for {
		err = b.Ping(addrA.Addr(), time.Second)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	require.NoError(t, err, "ping must work again after the link is set up")
}

func TestSwitchAllReachEachOther(t *testing.T) {
	hosts := Switch(t, 3)
	require.Len(t, hosts, 3)
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("198.51.100.1/24"),
		netip.MustParsePrefix("198.51.100.2/24"),
		netip.MustParsePrefix("198.51.100.3/24"),
	}
	for i, h := range hosts {
		require.NotNil(t, h.Bridge)
		assert.Equal(t, hosts[0].Bridge, h.Bridge, "all hosts share one bridge")
		require.NoError(t, h.AddAddr(prefixes[i]))
	}
	for i, from := range hosts {
		for j, to := range prefixes {
			if i != j {
				pingOK(t, from, to)
			}
		}
	}
	// Host 2 learned host 0's MAC through the bridge.
	neigh, err := hosts[2].Neighbors()
	require.NoError(t, err)
	i := slices.IndexFunc(neigh, func(n Neighbor) bool { return n.Addr == prefixes[0].Addr() })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, hosts[0].MAC.String(), neigh[i].MAC.String())
}

// TestDoEntersNamespace checks that Do runs in the host's namespace, that a
// socket opened there stays there, and that the calling thread is unaffected.
func TestDoEntersNamespace(t *testing.T) {
	a, b := Pair(t)
	require.NoError(t, a.AddAddr(addrA))
	require.NoError(t, b.AddAddr(addrB))

	var fd int
	require.NoError(t, a.Do(func() error {
		ifaces, err := netInterfaces()
		if err != nil {
			return err
		}
		assert.ElementsMatch(t, []string{"lo", "eth0"}, ifaces)
		// A UDP socket bound to a's address only works inside a's namespace.
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: 0, Addr: addrA.Addr().As4()})
	}))
	t.Cleanup(func() { unix.Close(fd) })

	// Outside Do the socket still sends from a's namespace: b receives it.
	received := make(chan error, 1)
	ready := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		received <- b.Do(func() error {
			r, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			if err != nil {
				return err
			}
			defer unix.Close(r)
			if err := unix.Bind(r, &unix.SockaddrInet4{Port: 9999, Addr: addrB.Addr().As4()}); err != nil {
				return err
			}
			tv := unix.NsecToTimeval(int64(5 * time.Second))
			if err := unix.SetsockoptTimeval(r, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				return err
			}
			close(ready)
			buf := make([]byte, 16)
			n, _, err := unix.Recvfrom(r, buf, 0)
			if err != nil {
				return err
			}
			if string(buf[:n]) != "hello" {
				t.Errorf("received %q, want hello", buf[:n])
			}
			return nil
		})
	}()
	<-ready
	require.NoError(t, unix.Sendto(fd, []byte("hello"), 0, &unix.SockaddrInet4{Port: 9999, Addr: addrB.Addr().As4()}))
	wg.Wait()
	require.NoError(t, <-received)

	// The test's own namespace has no agtest interface named like a's.
	ifaces, err := netInterfaces()
	require.NoError(t, err)
	assert.NotEqual(t, []string{"lo", "eth0"}, ifaces, "the caller must not be left inside the namespace")
}

// netInterfaces lists the interfaces of the calling thread's namespace.
func netInterfaces() ([]string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ifaces))
	for i, ifc := range ifaces {
		names[i] = ifc.Name
	}
	return names, nil
}

func TestDoReturnsErrorAndRepanics(t *testing.T) {
	a, _ := Pair(t)
	assert.EqualError(t, a.Do(func() error { return context.Canceled }), context.Canceled.Error())
	assert.PanicsWithValue(t, "boom", func() {
		_ = a.Do(func() error { panic("boom") })
	})
}

// fakeTB records cleanups and failures instead of acting on them, so a test can
// run a topology's whole life, including a failure half-way, and then check that
// the cleanups remove everything.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
	f.TB.Logf("fakeTB error: "+format, args...)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestCleanupLeavesNothingEvenOnFailure(t *testing.T) {
	Require(t)
	before := namespaces(t)

	// A failure in the middle of a test: the topology exists, then the test dies.
	fake := &fakeTB{TB: t}
	done := make(chan struct{})
	var created []string
	go func() {
		defer close(done)
		hosts := Switch(fake, 2)
		a, b := Pair(fake)
		for _, h := range append(hosts, a, b, hosts[0].Bridge) {
			created = append(created, h.Netns)
		}
		fake.Fatalf("simulated failure")
	}()
	<-done
	require.True(t, fake.failed)
	require.Len(t, created, 5)
	during := namespaces(t)
	for _, name := range created {
		assert.Contains(t, during, name)
	}

	fake.runCleanups()
	after := namespaces(t)
	for _, name := range created {
		assert.NotContains(t, after, name, "namespace %s survived cleanup", name)
	}
	assert.ElementsMatch(t, mine(before), mine(after))
}

// mine drops namespaces that test processes of other packages own (go test runs
// packages in parallel), so the comparison only sees what this process could
// have leaked.
func mine(names []string) []string {
	var out []string
	for _, n := range names {
		if pid, ok := ownerPID(n); !ok || pid == os.Getpid() {
			out = append(out, n)
		}
	}
	return out
}

// TestRemoveStale checks that namespaces of test processes that died without
// cleaning up (killed with SIGKILL, say) are removed, and live ones are kept.
func TestRemoveStale(t *testing.T) {
	Require(t)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	stale := fmt.Sprintf("%s%d-1", nsPrefix, dead.Process.Pid)
	live := nextName()
	require.NoError(t, ip("netns", "add", stale))
	require.NoError(t, ip("netns", "add", live))
	t.Cleanup(func() {
		_ = ip("netns", "del", stale)
		_ = ip("netns", "del", live)
	})

	removeStale()
	names := namespaces(t)
	assert.NotContains(t, names, stale, "namespace of an exited process must be removed")
	assert.Contains(t, names, live, "namespace of this running process must stay")
}
