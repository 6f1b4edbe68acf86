package arpcheck_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/internal/testnet"
	"github.com/mdlayher/packet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests in this file run as root in network namespaces made by
// internal/testnet and skip otherwise. They use Fast timing so that the whole
// file stays within seconds.

// proberIn opens a Prober on h's eth0, inside h's namespace, once the link
// has carrier: the kernel reports it (IFF_RUNNING) a little after both ends
// of a veth are up, and a Prober refuses a link without it (ErrLinkDown).
func proberIn(t testing.TB, h *testnet.Host, opts arpcheck.Options) *arpcheck.Prober {
	t.Helper()
	require.Eventually(t, func() bool {
		var running bool
		_ = h.Do(func() error {
			ifi, err := net.InterfaceByName(h.Ifname)
			running = err == nil && ifi.Flags&net.FlagRunning != 0
			return err
		})
		return running
	}, 5*time.Second, time.Millisecond, "%s has no carrier", h.Netns)
	var p *arpcheck.Prober
	require.NoError(t, h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Ifname)
		if err != nil {
			return err
		}
		p, err = arpcheck.New(ifi, opts)
		return err
	}))
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// setSysctl sets "net.x.y=v" in h's namespace by writing /proc/sys, so the
// tests need no sysctl binary (procps).
func setSysctl(h *testnet.Host, kv string) error {
	k, v, _ := strings.Cut(kv, "=")
	path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
	_, err := h.Run("sh", "-c", `echo "$1" > "$2"`, "sh", v, path)
	return err
}

// An unused address is free within the schedule's bounds; the prober needs
// no IPv4 address of its own.
func TestRootFree(t *testing.T) {
	a, b := testnet.Pair(t)
	require.NoError(t, b.AddAddr(pfx("192.0.2.2/24")))
	p := proberIn(t, a, arpcheck.Options{Timing: arpcheck.Fast})
	r, err := p.Probe(ctxT(t), netip.MustParseAddr("192.0.2.99"))
	require.NoError(t, err)
	assert.Equal(t, arpcheck.Free, r.Status)
	assert.Equal(t, 3, r.ProbesSent)
	f := arpcheck.Fast
	took := r.Decided.Sub(r.Started)
	assert.GreaterOrEqual(t, took, 2*f.ProbeMin+f.AnnounceWait, "never decided before the schedule allows")
	assert.LessOrEqual(t, took, f.Longest()+time.Second, "decided within the schedule, give or take a loaded machine")
	assert.Zero(t, p.Stats().KernelDrops)
}

// The kernel on the peer answers our probe: the address is in use, by the
// peer's MAC.
func TestRootInUseByPeer(t *testing.T) {
	a, b := testnet.Pair(t)
	require.NoError(t, b.AddAddr(pfx("192.0.2.2/24")))
	p := proberIn(t, a, arpcheck.Options{Timing: arpcheck.Fast})
	r, err := p.Probe(ctxT(t), netip.MustParseAddr("192.0.2.2"))
	require.NoError(t, err)
	require.Equal(t, arpcheck.InUse, r.Status)
	require.Len(t, r.Holders, 1)
	assert.Equal(t, b.MAC.String(), r.Holders[0].MAC.String())
	assert.Equal(t, b.MAC.String(), r.Holders[0].EthSrc.String())
	assert.Equal(t, arpcheck.Answered, r.Holders[0].Kind)
}

// Two hosts hold one address: both MACs are named.
func TestRootTwoHolders(t *testing.T) {
	hosts := testnet.Switch(t, 3)
	for _, h := range hosts[1:] {
		require.NoError(t, h.AddAddr(pfx("192.0.2.7/24")))
	}
	timing := arpcheck.Fast
	timing.Linger = 300 * time.Millisecond
	p := proberIn(t, hosts[0], arpcheck.Options{Timing: timing})
	r, err := p.Probe(ctxT(t), netip.MustParseAddr("192.0.2.7"))
	require.NoError(t, err)
	require.Equal(t, arpcheck.InUse, r.Status)
	assert.ElementsMatch(t, []string{hosts[1].MAC.String(), hosts[2].MAC.String()}, macStrings(r.MACs()))
}

// Both ends probe one address at the same moment: at most one may take it.
func TestRootBothProbing(t *testing.T) {
	a, b := testnet.Pair(t)
	addr := netip.MustParseAddr("192.0.2.9")
	pa := proberIn(t, a, arpcheck.Options{Timing: arpcheck.Fast})
	pb := proberIn(t, b, arpcheck.Options{Timing: arpcheck.Fast})
	var wg sync.WaitGroup
	results := make([]arpcheck.Result, 2)
	for i, p := range []*arpcheck.Prober{pa, pb} {
		wg.Go(func() {
			r, err := p.Probe(ctxT(t), addr)
			assert.NoError(t, err)
			results[i] = r
		})
	}
	wg.Wait()
	free := 0
	for i, r := range results {
		other := []*testnet.Host{b, a}[i]
		switch r.Status {
		case arpcheck.Free:
			free++
		case arpcheck.InUse:
			assert.Equal(t, other.MAC.String(), r.Holders[0].MAC.String())
			assert.Equal(t, arpcheck.Probing, r.Holders[0].Kind)
		default:
			t.Errorf("prober %d: %v", i, r)
		}
	}
	assert.LessOrEqual(t, free, 1, "%v", results)
}

// Setting the link down mid-probe fails the call with ErrLinkDown; nothing is
// reported free.
func TestRootLinkDownMidProbe(t *testing.T) {
	a, _ := testnet.Pair(t)
	p := proberIn(t, a, arpcheck.Options{Timing: arpcheck.Scaled(3 * time.Second)})
	errc := make(chan error, 1)
	var got []arpcheck.Result
	go func() {
		errc <- p.ProbePrefix(ctxT(t), pfx("192.0.2.0/29"), arpcheck.BatchOptions{}, func(r arpcheck.Result) { got = append(got, r) })
	}()
	// Every address has its first probe out (the earliest verdict is 1.7 s
	// after that): the call is under way, none can be decided yet.
	require.Eventually(t, func() bool { return p.Stats().FramesSent >= 6 }, 1500*time.Millisecond, time.Millisecond)
	require.NoError(t, a.SetDown())
	err := <-errc
	require.ErrorIs(t, err, arpcheck.ErrLinkDown)
	require.Len(t, got, 6)
	for _, r := range got {
		assert.Equal(t, arpcheck.Unknown, r.Status, r.Addr)
	}
	_, err = p.Probe(ctxT(t), netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, arpcheck.ErrLinkDown, "a call on a down link fails at once")
}

// The peer's cable is out: sends succeed into nothing; no free verdict.
func TestRootNoCarrier(t *testing.T) {
	a, b := testnet.Pair(t)
	p := proberIn(t, a, arpcheck.Options{Timing: arpcheck.Fast})
	require.NoError(t, b.SetDown())
	require.Eventually(t, func() bool {
		out, err := a.Run("ip", "link", "show", "eth0")
		return err == nil && strings.Contains(out, "NO-CARRIER")
	}, 3*time.Second, 10*time.Millisecond)
	r, err := p.Probe(ctxT(t), netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, arpcheck.ErrLinkDown)
	assert.Equal(t, arpcheck.Unknown, r.Status)
	assert.Contains(t, err.Error(), "no carrier")

	// The same through a plain *packet.Conn given to NewFromTransport.
	var c *packet.Conn
	var ifi *net.Interface
	require.NoError(t, a.Do(func() error {
		var err error
		if ifi, err = net.InterfaceByName(a.Ifname); err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, 0x0806, nil)
		return err
	}))
	pc, err := arpcheck.NewFromTransport(ifi, c, arpcheck.Options{Timing: arpcheck.Fast})
	require.NoError(t, err)
	defer pc.Close()
	_, err = pc.Probe(ctxT(t), netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, arpcheck.ErrLinkDown, "a packet.Conn gets the link check too")
}

// Carrier lost between the check at the start and the first send: the sends
// fail (veth says ENOBUFS), are retried a few times, and the error names the
// link.
func TestRootCarrierLostWhileSending(t *testing.T) {
	a, b := testnet.Pair(t)
	p := proberIn(t, a, arpcheck.Options{Timing: arpcheck.Scaled(time.Second)})
	errc := make(chan error, 1)
	go func() {
		_, err := p.Probe(ctxT(t), netip.MustParseAddr("192.0.2.1"))
		errc <- err
	}()
	require.NoError(t, b.SetDown())
	err := <-errc
	require.Error(t, err)
	assert.ErrorIs(t, err, arpcheck.ErrLinkDown)
}

func TestRootNotARPable(t *testing.T) {
	a, _ := testnet.Pair(t)
	require.NoError(t, a.Do(func() error {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		_, err = arpcheck.New(lo, arpcheck.Options{})
		assert.ErrorIs(t, err, arpcheck.ErrNotARPable)
		return nil
	}))
	_, err := a.Run("ip", "link", "set", "eth0", "arp", "off")
	require.NoError(t, err)
	require.NoError(t, a.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		_, err = arpcheck.New(ifi, arpcheck.Options{})
		assert.ErrorIs(t, err, arpcheck.ErrNotARPable, "NOARP")
		return nil
	}))
}

// 4,096 addresses at once over one socket: every IPv4 host address of the
// three documentation /24s and 3,334 IPv6 addresses, four of them held.
func TestRoot4096(t *testing.T) {
	a, b := testnet.Pair(t)
	held := []netip.Prefix{pfx("192.0.2.1/24"), pfx("198.51.100.77/24"), pfx("203.0.113.254/24"), pfx("2001:db8:1::5/64")}
	for _, h := range held {
		require.NoError(t, b.AddAddr(h, "nodad"))
	}
	var addrs []netip.Addr
	for _, p := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"} {
		addrs = slices.AppendSeq(addrs, arpcheck.Hosts(pfx(p)))
	}
	for a := range arpcheck.Hosts(pfx("2001:db8:1::/116")) {
		if len(addrs) == 4096 {
			break
		}
		addrs = append(addrs, a)
	}
	require.Len(t, addrs, 4096)
	p := proberIn(t, a, arpcheck.Options{Timing: arpcheck.Fast})
	inUse := map[netip.Addr]string{}
	count, probes, v6 := 0, 0, 0
	err := p.ProbeAll(ctxT(t), slices.Values(addrs), arpcheck.BatchOptions{}, func(r arpcheck.Result) {
		count++
		probes += r.ProbesSent
		if r.Addr.Is6() {
			v6++
		}
		switch r.Status {
		case arpcheck.InUse:
			inUse[r.Addr] = r.Holders[0].MAC.String()
			// Usually 1; a reply read after the next probe was due allows 2 or 3.
			assert.GreaterOrEqual(t, r.ProbesSent, 1, r.Addr)
		case arpcheck.Free:
			assert.Equal(t, 3, r.ProbesSent, r.Addr)
		default:
			t.Errorf("%v", r)
		}
	})
	require.NoError(t, err)
	assert.Equal(t, 4096, count)
	want := map[netip.Addr]string{}
	for _, h := range held {
		want[h.Addr()] = b.MAC.String()
	}
	assert.Equal(t, want, inUse)
	assert.Equal(t, 4096-762, v6)
	assert.Equal(t, uint64(probes+v6), p.Stats().FramesSent, "the probes counted, and one MLD report per IPv6 address")
}

// Our verdicts equal iputils arping -D's on the same namespaces.
func TestRootInteropArpingD(t *testing.T) {
	if _, err := exec.LookPath("arping"); err != nil {
		t.Skip("arping (iputils-arping) not installed: apt-get install iputils-arping")
	}
	hosts := testnet.Switch(t, 3)
	require.NoError(t, hosts[1].AddAddr(pfx("192.0.2.20/24")))
	require.NoError(t, hosts[2].AddAddr(pfx("192.0.2.21/24")))
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("192.0.2.21"), netip.MustParseAddr("192.0.2.22")}

	// arping -D: exit 0 free, 1 duplicate; run them at once.
	arping := make([]arpcheck.Status, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			out, err := hosts[0].Command(ctxT(t), "arping", "-D", "-I", "eth0", "-c", "2", "-w", "2", a.String()).CombinedOutput()
			var ee *exec.ExitError
			switch {
			case err == nil:
				arping[i] = arpcheck.Free
			case errors.As(err, &ee) && ee.ExitCode() == 1:
				arping[i] = arpcheck.InUse
			default:
				t.Errorf("arping -D %s: %v: %s", a, err, out)
			}
		})
	}
	wg.Wait()

	p := proberIn(t, hosts[0], arpcheck.Options{Timing: arpcheck.Fast})
	ours := map[netip.Addr]arpcheck.Status{}
	require.NoError(t, p.ProbeAll(ctxT(t), slices.Values(addrs), arpcheck.BatchOptions{}, func(r arpcheck.Result) { ours[r.Addr] = r.Status }))
	for i, a := range addrs {
		assert.Equal(t, arping[i], ours[a], "%s: arping -D says %s, we say %s", a, arping[i], ours[a])
	}
	assert.Equal(t, []arpcheck.Status{arpcheck.InUse, arpcheck.InUse, arpcheck.Free}, arping)
}

// After a virtual IP moves (ip addr add on the new host), our announcement
// makes a Linux neighbour replace the old MAC in its cache.
func TestRootAnnounceUpdatesNeighbour(t *testing.T) {
	hosts := testnet.Switch(t, 3)
	newHost, oldHost, neighbour := hosts[0], hosts[1], hosts[2]
	vip := pfx("192.0.2.100/24")
	require.NoError(t, oldHost.AddAddr(vip))
	require.NoError(t, neighbour.AddAddr(pfx("192.0.2.2/24")))
	require.NoError(t, neighbour.Ping(vip.Addr(), 2*time.Second))
	require.Equal(t, oldHost.MAC.String(), neighMAC(t, neighbour, vip.Addr()), "the neighbour learnt the old MAC")

	require.NoError(t, oldHost.DelAddr(vip))
	require.NoError(t, newHost.AddAddr(vip))
	p := proberIn(t, newHost, arpcheck.Options{Timing: arpcheck.Fast})
	require.NoError(t, p.Announce(ctxT(t), vip.Addr()))
	assert.Equal(t, newHost.MAC.String(), neighMAC(t, neighbour, vip.Addr()), "the neighbour follows the announcement")
	require.NoError(t, neighbour.Ping(vip.Addr(), 2*time.Second), "and reaches the VIP on its new host")
}

func neighMAC(t *testing.T, h *testnet.Host, addr netip.Addr) string {
	t.Helper()
	neigh, err := h.Neighbors()
	require.NoError(t, err)
	for _, n := range neigh {
		if n.Addr == addr {
			return n.MAC.String()
		}
	}
	return ""
}

// IPv6 DAD against a Linux peer: a configured address is defended with an
// advertisement; a tentative one shows up as the peer's own DAD probe, and our
// solicitation makes the peer's DAD fail, as RFC 4862 says it must.
func TestRootIPv6DAD(t *testing.T) {
	a, b := testnet.Pair(t)
	require.NoError(t, b.AddAddr(pfx("2001:db8::2/64"), "nodad"))
	p := proberIn(t, a, arpcheck.Options{Timing: arpcheck.Fast})

	r, err := p.Probe(ctxT(t), netip.MustParseAddr("2001:db8::2"))
	require.NoError(t, err)
	require.Equal(t, arpcheck.InUse, r.Status, "%v", r)
	assert.Equal(t, b.MAC.String(), r.Holders[0].MAC.String())
	assert.Equal(t, arpcheck.Answered, r.Holders[0].Kind)

	r, err = p.Probe(ctxT(t), netip.MustParseAddr("2001:db8::3"))
	require.NoError(t, err)
	assert.Equal(t, arpcheck.Free, r.Status)

	// A tentative address: b sends DAD probes every 100 ms for 5 s, starting at
	// once (no random delay before the first).
	for _, kv := range []string{"net.ipv6.conf.eth0.dad_transmits=50", "net.ipv6.neigh.eth0.retrans_time_ms=100",
		"net.ipv6.conf.eth0.router_solicitation_delay=0"} {
		require.NoError(t, setSysctl(b, kv))
	}
	// Our first solicitation goes out before b has the address; b adds it while
	// we wait for the second, and its own DAD probe reaches us first.
	slow := arpcheck.Fast
	slow.ProbeWait, slow.ProbeMin, slow.ProbeMax, slow.AnnounceWait = 0, 400*time.Millisecond, 400*time.Millisecond, 400*time.Millisecond
	ps := proberIn(t, a, arpcheck.Options{Timing: slow})
	got := make(chan arpcheck.Result, 1)
	go func() {
		r, err := ps.Probe(ctxT(t), netip.MustParseAddr("2001:db8::4"))
		assert.NoError(t, err)
		got <- r
	}()
	require.Eventually(t, func() bool { return ps.Stats().FramesSent >= 2 }, 2*time.Second, time.Millisecond,
		"our MLD report and first solicitation are out")
	require.NoError(t, b.AddAddr(pfx("2001:db8::4/64")))
	r = <-got
	require.Equal(t, arpcheck.InUse, r.Status, "%v", r)
	assert.Equal(t, b.MAC.String(), r.Holders[0].MAC.String())
	assert.Equal(t, arpcheck.Probing, r.Holders[0].Kind, "b was still probing: the address is tentative there")
	assert.Equal(t, 1, r.ProbesSent)

	// The kernel understands our solicitations: a prober that does not stop for
	// b's probes (b's MAC listed as one of ours, to keep sending) makes b's
	// duplicate address detection fail.
	require.NoError(t, b.AddAddr(pfx("2001:db8::5/64")))
	deaf := proberIn(t, a, arpcheck.Options{Timing: arpcheck.Fast, OwnMACs: []net.HardwareAddr{b.MAC}})
	r, err = deaf.Probe(ctxT(t), netip.MustParseAddr("2001:db8::5"))
	require.NoError(t, err)
	assert.Equal(t, 3, r.ProbesSent)
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("ip -6 addr on b:\n%s", last)
		}
	}()
	require.Eventually(t, func() bool {
		out, err := b.Run("ip", "-6", "addr", "show", "dev", "eth0")
		last = out
		return err == nil && regexp.MustCompile(`2001:db8::5/64 scope global .*dadfailed`).MatchString(out)
	}, 3*time.Second, 50*time.Millisecond, "the peer saw our solicitation and gave the address up")
}

// The kernel filter: of frames arriving, only ARP (and neighbour discovery)
// reach the prober; its own frames never come back.
func TestRootKernelFilter(t *testing.T) {
	a, b := testnet.Pair(t)
	for _, h := range []*testnet.Host{a, b} {
		require.NoError(t, setSysctl(h, "net.ipv6.conf.eth0.disable_ipv6=1")) // no stray NDP
	}
	p := proberIn(t, a, arpcheck.Options{Timing: arpcheck.Fast})
	_, err := p.Probe(ctxT(t), netip.MustParseAddr("192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, uint64(3), p.Stats().FramesSent)
	assert.Zero(t, p.Stats().FramesRead, "our own probes never come back")
	// The host's own ARP requests (its kernel resolving a neighbour) are
	// outgoing frames: the filter drops them.
	require.NoError(t, a.AddAddr(pfx("192.0.2.1/24")))
	assert.ErrorIs(t, a.Ping(netip.MustParseAddr("192.0.2.50"), 1500*time.Millisecond), testnet.ErrNoReply)
	assert.Zero(t, p.Stats().FramesRead, "the host's own ARP requests are dropped in the kernel")

	// From b: an IPv4 frame, an ARP reply over another hardware type, a real
	// ARP announcement.
	ipv4 := append(append([]byte{}, a.MAC...), b.MAC...)
	ipv4 = append(ipv4, 0x08, 0x00, 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1)
	ieee := arpcheck.AppendAnnouncement(nil, b.MAC, netip.MustParseAddr("192.0.2.2"))
	ieee[15] = 6
	for _, f := range [][]byte{ipv4, ieee, arpcheck.AppendAnnouncement(nil, b.MAC, netip.MustParseAddr("192.0.2.2"))} {
		require.NoError(t, sendRaw(b, f))
	}
	require.Eventually(t, func() bool { return p.Stats().FramesRead == 1 }, 2*time.Second, 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	st := p.Stats()
	assert.Equal(t, uint64(1), st.FramesRead, "only the announcement passed")
	assert.Zero(t, st.Malformed+st.Unrelated)
}

// sendRaw writes one frame from h's eth0 through a plain packet socket.
func sendRaw(h *testnet.Host, frame []byte) error {
	return h.Do(func() error {
		ifi, err := net.InterfaceByName(h.Ifname)
		if err != nil {
			return err
		}
		c, err := packet.Listen(ifi, packet.Raw, 0, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteTo(frame, &packet.Addr{HardwareAddr: net.HardwareAddr(frame[0:6])})
		return err
	})
}

// Monitor sees two namespaces claim one address.
func TestRootMonitor(t *testing.T) {
	if _, err := exec.LookPath("arping"); err != nil {
		t.Skip("arping (iputils-arping) not installed: apt-get install iputils-arping")
	}
	hosts := testnet.Switch(t, 3)
	p := proberIn(t, hosts[0], arpcheck.Options{})
	ctx, cancel := context.WithCancel(ctxT(t))
	events := make(chan arpcheck.Event, 16)
	done := make(chan error)
	go func() {
		done <- p.Monitor(ctx, arpcheck.MonitorOptions{}, func(e arpcheck.Event) { events <- e })
	}()
	time.Sleep(50 * time.Millisecond)
	for _, h := range hosts[1:] {
		require.NoError(t, h.AddAddr(pfx("192.0.2.30/24"), "nodad"))
		_, err := h.Run("arping", "-U", "-c", "1", "-I", "eth0", "192.0.2.30")
		require.NoError(t, err)
	}
	select {
	case e := <-events:
		assert.Equal(t, arpcheck.MultipleMACs, e.Kind)
		assert.Equal(t, "192.0.2.30", e.Addr.String())
		assert.ElementsMatch(t, []string{hosts[1].MAC.String(), hosts[2].MAC.String()}, macStrings(e.MACs))
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	cancel()
	require.NoError(t, <-done)
}

// Our MLD report is one a Linux bridge snooping MLD understands: it learns
// that our port listens to the solicited-node group of the probed address, and
// so forwards other hosts' DAD probes for it to us.
func TestRootMLDSnoopingBridge(t *testing.T) {
	hosts := testnet.Switch(t, 2)
	br := hosts[0].Bridge
	_, err := br.Run("ip", "link", "set", br.Ifname, "type", "bridge", "mcast_snooping", "1")
	require.NoError(t, err)
	p := proberIn(t, hosts[0], arpcheck.Options{Timing: arpcheck.Fast})
	addr := netip.MustParseAddr("2001:db8::4:5")
	_, err = p.Probe(ctxT(t), addr)
	require.NoError(t, err)
	group, _ := arpcheck.SolicitedNodeGroup(addr)
	out, err := br.Run("bridge", "mdb", "show")
	require.NoError(t, err)
	assert.Regexp(t, `port p0 grp `+regexp.QuoteMeta(group.String()), out)
}
