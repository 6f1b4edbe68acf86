package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// StrictEnv names the environment variable that turns Require's skips into
// failures. CI sets it, so a machine that silently cannot run the namespace tests
// turns the run red instead of green.
const StrictEnv = "ADDRGUARD_REQUIRE_NETNS"

// nsPrefix starts the name of every namespace this package creates.
const nsPrefix = "agtest-"

// netnsDir is where ip netns keeps the bind mounts that name namespaces.
const netnsDir = "/run/netns"

// Host is one network namespace with a single Ethernet interface.
type Host struct {
	// Netns is the namespace's name, as ip netns list shows it.
	Netns string
	// Ifname is the interface's name inside the namespace ("eth0", or "br0" for
	// the bridge of a Switch).
	Ifname string
	// Index is the interface's index inside the namespace.
	Index int
	// MAC is the interface's locally administered hardware address.
	MAC net.HardwareAddr
	// Bridge is the namespace holding the bridge a Switch host is plugged into
	// (capture on Bridge.Ifname to see the whole segment); nil for Pair hosts and
	// for the bridge itself.
	Bridge *Host
}

var (
	nsCounter atomic.Uint64

	probeOnce sync.Once
	probeErr  error
)

// Require skips the test unless it can build topologies: the process runs as
// root, the ip command is installed and a network namespace can be created. The
// skip message says which of these failed and how to run the test. When the
// environment variable named by StrictEnv is set to a non-empty value, the test
// fails instead of skipping.
//
// The first call in a process also deletes namespaces left behind by earlier test
// processes that no longer run.
func Require(t testing.TB) {
	t.Helper()
	if reason := unavailable(); reason != "" {
		if os.Getenv(StrictEnv) != "" {
			t.Fatalf("%s (and %s is set, so this is a failure)", reason, StrictEnv)
		}
		t.Skip(reason)
	}
}

func unavailable() string {
	if runtime.GOOS != "linux" {
		return "needs Linux network namespaces; this is " + runtime.GOOS
	}
	if os.Geteuid() != 0 {
		return "needs root to create network namespaces; run the privileged tests with: sudo -E go test ./..."
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "needs the ip command from iproute2 (apt-get install -y iproute2): " + err.Error()
	}
	probeOnce.Do(func() {
		removeStale()
		name := nextName()
		if err := ip("netns", "add", name); err != nil {
			probeErr = err
			return
		}
		probeErr = ip("netns", "del", name)
	})
	if probeErr != nil {
		return "cannot create a network namespace here: " + probeErr.Error()
	}
	return ""
}

// removeStale deletes namespaces named by this package for processes that have
// exited. Errors are ignored: a namespace that cannot be removed now is retried by
// the next run, and it never affects the current one.
func removeStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, name := range ParseNetnsList(out) {
		pid, ok := ownerPID(name)
		if !ok || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = ip("netns", "del", name)
		}
	}
}

// ownerPID extracts PID from "agtest-PID-N".
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, nsPrefix)
	if !ok {
		return 0, false
	}
	pidText, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

func nextName() string {
	return fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), nsCounter.Add(1))
}

// mac returns the locally administered address 02:a6:00:00:HI:LO for host number
// n of a topology. Addresses only need to be unique within one topology, and
// small readable ones make test logs easy to follow.
func mac(n int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xa6, 0, 0, byte(n >> 8), byte(n)}
}

// newNamespace creates a namespace and registers its deletion before doing
// anything else, so a topology that fails half-way leaves nothing behind.
func newNamespace(t testing.TB) string {
	t.Helper()
	name := nextName()
	if err := ip("netns", "add", name); err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() {
		if err := ip("netns", "del", name); err != nil {
			t.Errorf("testnet: cleanup: %v", err)
		}
	})
	if err := ip("-n", name, "link", "set", "lo", "up"); err != nil {
		t.Fatalf("testnet: %v", err)
	}
	return name
}

// Pair returns two hosts whose eth0 interfaces are the two ends of one veth pair,
// both up, with MACs 02:a6:00:00:00:01 and 02:a6:00:00:00:02 and no addresses.
// Everything is removed when the test ends.
func Pair(t testing.TB) (a, b *Host) {
	t.Helper()
	Require(t)
	a = &Host{Netns: newNamespace(t), Ifname: "eth0", MAC: mac(1)}
	b = &Host{Netns: newNamespace(t), Ifname: "eth0", MAC: mac(2)}
	must(t, ip("-n", a.Netns, "link", "add", a.Ifname, "address", a.MAC.String(), "type", "veth",
		"peer", "name", b.Ifname, "netns", b.Netns, "address", b.MAC.String()))
	for _, h := range []*Host{a, b} {
		must(t, h.SetUp())
		must(t, h.readIndex())
	}
	return a, b
}

// Switch returns n hosts plugged into one Linux bridge, like machines on a LAN.
// Host i (from 0) has MAC 02:a6:00:00:00:(i+1) on its eth0. The bridge lives in a
// namespace of its own (each host's Bridge field), with port "pI" for host I,
// spanning tree off and multicast snooping off so that ARP, neighbour discovery
// and DAD frames reach every host at once.
func Switch(t testing.TB, n int) []*Host {
	t.Helper()
	Require(t)
	if n < 1 || n > 250 {
		t.Fatalf("testnet: Switch(%d): want 1 to 250 hosts", n)
	}
	br := &Host{Netns: newNamespace(t), Ifname: "br0", MAC: mac(0xfe)}
	must(t, br.ip("link", "add", br.Ifname, "address", br.MAC.String(), "type", "bridge",
		"stp_state", "0", "mcast_snooping", "0", "forward_delay", "0"))
	must(t, br.SetUp())
	must(t, br.readIndex())
	hosts := make([]*Host, n)
	for i := range hosts {
		h := &Host{Netns: newNamespace(t), Ifname: "eth0", MAC: mac(i + 1), Bridge: br}
		port := fmt.Sprintf("p%d", i)
		must(t, h.ip("link", "add", h.Ifname, "address", h.MAC.String(), "type", "veth",
			"peer", "name", port, "netns", br.Netns))
		must(t, br.ip("link", "set", port, "master", br.Ifname, "up"))
		must(t, h.SetUp())
		must(t, h.readIndex())
		hosts[i] = h
	}
	return hosts
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
}

// AddAddr adds an address with its prefix length to the host's interface. Extra
// words are passed on to ip addr add, for example "nodad" for an IPv6 address
// that should skip duplicate address detection.
func (h *Host) AddAddr(p netip.Prefix, extra ...string) error {
	return h.ip(append([]string{"addr", "add", p.String(), "dev", h.Ifname}, extra...)...)
}

// DelAddr removes an address added with AddAddr.
func (h *Host) DelAddr(p netip.Prefix) error {
	return h.ip("addr", "del", p.String(), "dev", h.Ifname)
}

// SetDown sets the host's interface administratively down; its peer loses carrier.
func (h *Host) SetDown() error { return h.ip("link", "set", h.Ifname, "down") }

// SetUp sets the host's interface up.
func (h *Host) SetUp() error { return h.ip("link", "set", h.Ifname, "up") }

func (h *Host) readIndex() error {
	out, err := exec.Command("ip", "-j", "-n", h.Netns, "link", "show", h.Ifname).Output()
	if err != nil {
		return cmdError([]string{"-j", "-n", h.Netns, "link", "show", h.Ifname}, err, nil)
	}
	idx, err := parseIfindex(out)
	if err != nil {
		return fmt.Errorf("ip -j -n %s link show %s: %w", h.Netns, h.Ifname, err)
	}
	h.Index = idx
	return nil
}

// Command returns a command that runs name with args inside the host's namespace
// (through ip netns exec). Use it for peers such as ping, arping or tcpdump.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Netns, name}, args...)...)
}

// Run runs name with args inside the host's namespace and returns its combined
// output. A non-zero exit is an error that quotes the command and its output.
func (h *Host) Run(name string, args ...string) (string, error) {
	out, err := h.Command(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		return string(out), cmdError(append([]string{"netns", "exec", h.Netns, name}, args...), err, out)
	}
	return string(out), nil
}

// Neighbors returns the host's neighbour (ARP and NDP) cache for its interface,
// as ip -j neigh show reports it.
func (h *Host) Neighbors() ([]Neighbor, error) {
	args := []string{"-j", "-n", h.Netns, "neigh", "show", "dev", h.Ifname}
	out, err := exec.Command("ip", args...).Output()
	if err != nil {
		return nil, cmdError(args, err, nil)
	}
	n, err := ParseNeighbors(out)
	if err != nil {
		return nil, fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	return n, nil
}

// Do runs f on an OS thread that has entered the host's namespace and returns f's
// error. Sockets f opens belong to that namespace for their whole life, so f can
// open a raw socket and hand it out to other goroutines. Goroutines that f starts
// do not run in the namespace. A panic in f is re-raised in the caller.
//
// If the thread cannot be moved back to its original namespace afterwards, it is
// not returned to the scheduler: the goroutine exits with the thread locked, and
// the Go runtime discards the thread.
func (h *Host) Do(f func() error) error {
	type result struct {
		err     error
		panicV  any
		paniced bool
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("testnet: %w", err)}
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join(netnsDir, h.Netns))
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("testnet: namespace %s: %w", h.Netns, err)}
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("testnet: enter namespace %s: %w", h.Netns, err)}
			return
		}
		var r result
		func() {
			defer func() {
				if v := recover(); v != nil {
					r = result{panicV: v, paniced: true}
				}
			}()
			r.err = f()
		}()
		if err := setns(orig); err == nil {
			runtime.UnlockOSThread()
		}
		done <- r
	}()
	r := <-done
	if r.paniced {
		panic(r.panicV)
	}
	return r.err
}

func (h *Host) ip(args ...string) error {
	return ip(append([]string{"-n", h.Netns}, args...)...)
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return cmdError(args, err, out)
	}
	return nil
}

func cmdError(args []string, err error, out []byte) error {
	var ee *exec.ExitError
	if len(out) == 0 && errors.As(err, &ee) {
		out = ee.Stderr
	}
	return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
}
