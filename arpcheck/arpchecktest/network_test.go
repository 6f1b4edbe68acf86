package arpchecktest_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/arpcheck/arpchecktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	macA  = arpchecktest.MAC(1)
	macB  = arpchecktest.MAC(2)
	addrX = netip.MustParseAddr("192.0.2.10")
	addr6 = netip.MustParseAddr("2001:db8::10")
)

func newNet(t *testing.T, opts arpchecktest.Options) *arpchecktest.Network {
	n := arpchecktest.NewNetwork(opts)
	t.Cleanup(n.Close)
	return n
}

// read returns the next frame an endpoint reads, failing after a second.
func read(t *testing.T, e *arpchecktest.Endpoint) ([]byte, error) {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		buf := make([]byte, 2048)
		n, _, err := e.ReadFrom(buf)
		ch <- res{buf[:n], err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-time.After(time.Second):
		t.Fatal("nothing to read")
		return nil, nil
	}
}

// pending reports how many frames reached e since the previous call, through
// Stats (which resets its counters).
func pending(e *arpchecktest.Endpoint) uint32 {
	s, _ := e.Stats()
	return s.Packets
}

func TestDeliveryFilter(t *testing.T) {
	n := newNet(t, arpchecktest.Options{})
	a, b := n.Attach("a", macA), n.Attach("b", macB)
	c := n.Attach("c", arpchecktest.MAC(3))
	probe := arpcheck.AppendProbe(nil, macA, addrX)
	_, err := a.WriteTo(probe, nil)
	require.NoError(t, err)
	assert.Zero(t, pending(a), "a sender never reads its own frame")
	assert.Equal(t, uint32(1), pending(b), "broadcast reaches everyone")
	assert.Equal(t, uint32(1), pending(c))

	_, err = a.WriteTo(arpcheck.AppendARPReply(nil, macA, addrX, macB, netip.MustParseAddr("192.0.2.2")), nil)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), pending(b), "unicast reaches its destination")
	assert.Zero(t, pending(c), "and nobody else")

	ns := arpcheck.AppendDADSolicit(nil, macA, addr6, [6]byte{1})
	_, err = a.WriteTo(ns, nil)
	require.NoError(t, err)
	assert.Zero(t, pending(b), "multicast needs a join")
	_, g := arpcheck.SolicitedNodeGroup(addr6)
	require.NoError(t, b.JoinGroup(g))
	_, err = a.WriteTo(ns, nil)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), pending(b))
	require.NoError(t, b.LeaveGroup(g))
	assert.Error(t, b.LeaveGroup(g), "not joined any more")
	assert.Error(t, b.JoinGroup(macA), "a unicast MAC is no group")

	got, err := read(t, c)
	require.NoError(t, err)
	assert.Equal(t, probe, got)
}

func TestImpairmentLoss(t *testing.T) {
	lost := func(seed uint64) []bool {
		n := newNet(t, arpchecktest.Options{Seed: seed})
		a := n.Attach("a", macA)
		n.Impair(arpchecktest.Impairments{Loss: 0.5})
		for range 64 {
			_, _ = a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
		}
		var out []bool
		for _, f := range n.Frames() {
			out = append(out, f.Lost)
		}
		return out
	}
	first := lost(42)
	assert.Equal(t, first, lost(42), "the same seed loses the same frames")
	count := 0
	for _, l := range first {
		if l {
			count++
		}
	}
	assert.InDelta(t, 32, count, 14)
}

func TestImpairmentDuplicateDelayEcho(t *testing.T) {
	n := newNet(t, arpchecktest.Options{})
	a, b := n.Attach("a", macA), n.Attach("b", macB)
	n.Clock().SetAuto(false)
	n.Impair(arpchecktest.Impairments{Duplicate: 1, Delay: 5 * time.Millisecond, Echo: true})
	_, err := a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
	require.NoError(t, err)
	assert.Zero(t, pending(b), "delayed")
	n.Clock().Advance(4 * time.Millisecond)
	assert.Zero(t, pending(b))
	n.Clock().Advance(time.Millisecond)
	assert.Equal(t, uint32(2), pending(b), "duplicated")
	assert.Equal(t, uint32(2), pending(a), "echoed back to the sender")
	assert.Len(t, n.Frames(), 1, "the log has what was sent, once")
}

func TestLinkDownAndSendFailures(t *testing.T) {
	n := newNet(t, arpchecktest.Options{})
	a, b := n.Attach("a", macA), n.Attach("b", macB)
	st, err := a.LinkState()
	require.NoError(t, err)
	assert.Equal(t, arpcheck.LinkState{Up: true, Carrier: true}, st)

	a.SetLinkDown(true)
	_, err = read(t, a)
	assert.ErrorIs(t, err, syscall.ENETDOWN, "a reader learns of the link going down")
	_, err = a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
	assert.ErrorIs(t, err, syscall.ENETDOWN)
	_, err = b.WriteTo(arpcheck.AppendProbe(nil, macB, addrX), nil)
	require.NoError(t, err)
	assert.Zero(t, pending(a), "a down link receives nothing")
	st, _ = a.LinkState()
	assert.False(t, st.Up)
	a.SetLinkDown(false)

	a.SetCarrier(false)
	_, err = a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
	require.NoError(t, err, "without carrier a send succeeds")
	assert.Zero(t, pending(b), "and goes nowhere")
	st, _ = a.LinkState()
	assert.Equal(t, arpcheck.LinkState{Up: true}, st)
	a.SetCarrier(true)

	a.FailSends(syscall.ENOBUFS, 2)
	for range 2 {
		_, err = a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
		assert.ErrorIs(t, err, syscall.ENOBUFS)
	}
	_, err = a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
	assert.NoError(t, err, "only the next 2 fail")
	_, err = a.WriteTo([]byte{1, 2, 3}, nil)
	assert.ErrorIs(t, err, syscall.EINVAL)
}

func TestQueueDropsAndStats(t *testing.T) {
	n := newNet(t, arpchecktest.Options{QueueLen: 3})
	a, b := n.Attach("a", macA), n.Attach("b", macB)
	for range 5 {
		_, _ = a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
	}
	s, err := b.Stats()
	require.NoError(t, err)
	assert.Equal(t, uint32(3), s.Packets)
	assert.Equal(t, uint32(2), s.Drops)
	s, _ = b.Stats()
	assert.Zero(t, s.Drops, "counters reset on read, like PACKET_STATISTICS")
}

func TestCloseUnblocksRead(t *testing.T) {
	n := newNet(t, arpchecktest.Options{})
	a := n.Attach("a", macA)
	errc := make(chan error)
	go func() {
		_, _, err := a.ReadFrom(make([]byte, 64))
		errc <- err
	}()
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, a.Close())
	assert.ErrorIs(t, <-errc, net.ErrClosed)
	_, err := a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
	assert.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, a.Close())
}

func TestClock(t *testing.T) {
	n := newNet(t, arpchecktest.Options{Start: time.Unix(1000, 0)})
	c := n.Clock()
	c.SetAuto(false)
	var mu sync.Mutex
	var fired []string
	mark := func(s string) func() {
		return func() { mu.Lock(); fired = append(fired, s); mu.Unlock() }
	}
	c.AfterFunc(3*time.Second, mark("3s"))
	t1 := c.AfterFunc(time.Second, mark("1s"))
	t2 := c.AfterFunc(2*time.Second, mark("2s"))
	assert.True(t, t2.Stop())
	assert.False(t, t2.Stop())
	t1.Reset(4 * time.Second)
	c.Advance(3500 * time.Millisecond)
	assert.Equal(t, []string{"3s"}, fired)
	assert.Equal(t, time.Unix(1003, 500e6), c.Now())
	c.Advance(time.Second)
	assert.Equal(t, []string{"3s", "1s"}, fired)

	// Automatic: a pending AfterFunc moves time by itself, unless paused.
	c.SetAuto(true)
	resume := c.Pause()
	done := make(chan struct{})
	c.AfterFunc(time.Hour, func() { close(done) })
	select {
	case <-done:
		t.Fatal("fired while paused")
	case <-time.After(20 * time.Millisecond):
	}
	resume()
	resume() // idempotent
	<-done
	assert.Equal(t, time.Unix(1000+4+3600, 500e6), c.Now())
}

func TestHolderAnswersLikeLinux(t *testing.T) {
	n := newNet(t, arpchecktest.Options{})
	a := n.Attach("a", macA)
	h := n.AddHolder(macB, arpchecktest.HostOptions{Name: "holder"}, addrX, addr6)
	assert.Equal(t, "holder", h.Name())
	assert.Equal(t, macB.String(), h.MAC().String())

	_, _ = a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
	got, err := read(t, a)
	require.NoError(t, err)
	assert.Equal(t, arpcheck.AppendARPReply(nil, macB, addrX, macA, netip.IPv4Unspecified()), got, "a probe gets a reply to 0.0.0.0")

	pending(a)
	_, _ = a.WriteTo(arpcheck.AppendAnnouncement(nil, macA, addrX), nil)
	assert.Zero(t, pending(a), "an announcement gets no reply")

	_, all := arpcheck.AllNodes()
	require.NoError(t, a.JoinGroup(all))
	_, _ = a.WriteTo(arpcheck.AppendDADSolicit(nil, macA, addr6, [6]byte{1}), nil)
	got, err = read(t, a)
	require.NoError(t, err)
	f, err := arpcheck.ParseFrame(got)
	require.NoError(t, err)
	assert.Equal(t, arpcheck.OpNeighborAdvert, f.Op)
	assert.Equal(t, all.String(), f.EthDst.String(), "DAD is answered to all nodes")
	assert.Equal(t, addr6, f.TargetIP)

	h.Remove()
	pending(a)
	_, _ = a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
	assert.Zero(t, pending(a), "a removed host is silent")
}

func TestProxyARPHost(t *testing.T) {
	n := newNet(t, arpchecktest.Options{})
	a := n.Attach("a", macA)
	n.AddProxyARP(macB, arpchecktest.HostOptions{}, netip.MustParsePrefix("192.0.2.0/28"))
	for _, tc := range []struct {
		addr   string
		answer bool
	}{{"192.0.2.1", true}, {"192.0.2.14", true}, {"192.0.2.16", false}} {
		_, _ = a.WriteTo(arpcheck.AppendProbe(nil, macA, netip.MustParseAddr(tc.addr)), nil)
		assert.Equal(t, tc.answer, pending(a) == 1, tc.addr)
	}
}

func TestPeriodicHosts(t *testing.T) {
	n := newNet(t, arpchecktest.Options{})
	n.Clock().SetAuto(false)
	n.AddProber(macA, arpchecktest.HostOptions{}, addrX, time.Second)
	n.AddAnnouncer(macB, arpchecktest.HostOptions{}, addrX, 2*time.Second)
	n.AddProber(arpchecktest.MAC(3), arpchecktest.HostOptions{}, addr6, time.Second)
	n.Clock().Advance(4 * time.Second)
	var probes, announcements, dad int
	for _, f := range n.Frames() {
		p, err := f.Parse()
		require.NoError(t, err)
		switch {
		case p.Op == arpcheck.OpNeighborSolicit:
			dad++
		case p.IsProbe():
			probes++
		case p.IsAnnouncement():
			announcements++
		}
	}
	assert.Equal(t, 4, probes)
	assert.Equal(t, 2, announcements)
	assert.Equal(t, 4, dad)
	assert.Len(t, n.FramesFrom(macB), 2)
}

func TestGarbageIsMalformed(t *testing.T) {
	for i, g := range arpchecktest.Garbage(macA) {
		_, err := arpcheck.ParseFrame(g)
		assert.ErrorIs(t, err, arpcheck.ErrMalformed, "garbage %d", i)
	}
	n := newNet(t, arpchecktest.Options{})
	a := n.Attach("a", macB)
	n.AddGarbage(macA, arpchecktest.HostOptions{})
	_, _ = a.WriteTo(arpcheck.AppendProbe(nil, macB, addrX), nil)
	assert.Equal(t, uint32(len(arpchecktest.Garbage(macA))), pending(a))
}

func TestPcap(t *testing.T) {
	n := newNet(t, arpchecktest.Options{Start: time.Unix(1700000000, 123456789)})
	a := n.Attach("a", macA)
	n.AddHolder(macB, arpchecktest.HostOptions{}, addrX)
	_, _ = a.WriteTo(arpcheck.AppendProbe(nil, macA, addrX), nil)
	var buf bytes.Buffer
	require.NoError(t, n.WritePcap(&buf))
	b := buf.Bytes()
	require.Len(t, b, 24+2*(16+60))
	assert.Equal(t, uint32(0xa1b23c4d), binary.LittleEndian.Uint32(b[0:]))
	assert.Equal(t, uint32(1), binary.LittleEndian.Uint32(b[20:]), "Ethernet")
	assert.Equal(t, uint32(1700000000), binary.LittleEndian.Uint32(b[24:]))
	assert.Equal(t, uint32(123456789), binary.LittleEndian.Uint32(b[28:]))
	assert.Equal(t, uint32(60), binary.LittleEndian.Uint32(b[32:]))
	assert.Equal(t, arpcheck.AppendProbe(nil, macA, addrX), b[40:100])

	// tshark, where installed, reads it as two ARP frames.
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed; the byte checks above passed")
	}
	path := filepath.Join(t.TempDir(), "seg.pcap")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	out, err := exec.Command(tshark, "-r", path, "-T", "fields", "-e", "arp.opcode", "-e", "arp.src.proto_ipv4", "-e", "arp.dst.proto_ipv4").Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Logf("tshark: %s", ee.Stderr)
	}
	require.NoError(t, err)
	assert.Equal(t, "1\t0.0.0.0\t192.0.2.10\n2\t192.0.2.10\t0.0.0.0", strings.TrimSpace(string(out)))
}

func TestInjectAndLog(t *testing.T) {
	n := newNet(t, arpchecktest.Options{LogLimit: 2})
	a := n.Attach("a", macA)
	for i := range 3 {
		n.Inject("script", arpcheck.AppendAnnouncement(nil, macB, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})))
	}
	assert.Equal(t, uint32(3), pending(a))
	frames := n.Frames()
	require.Len(t, frames, 2, "the log keeps the newest LogLimit frames")
	assert.Equal(t, "script", frames[0].From)
	assert.Contains(t, frames[0].String(), "192.0.2.1", "oldest first")
	assert.Contains(t, frames[1].String(), "192.0.2.2")
	n.Inject("script", arpcheck.AppendAnnouncement(nil, macB, netip.MustParseAddr("192.0.2.3")))
	frames = n.Frames()
	require.Len(t, frames, 2)
	assert.Contains(t, frames[0].String(), "192.0.2.2", "oldest first, past the end of the ring")
	assert.Contains(t, frames[1].String(), "192.0.2.3")
	n.ResetLog()
	assert.Empty(t, n.Frames())
}
