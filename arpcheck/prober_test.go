package arpcheck_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/arpcheck/arpchecktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newNet returns a segment with our prober on it, seeded for reproducible
// jitter.
func newNet(t *testing.T, opts arpcheck.Options) (*arpchecktest.Network, *arpcheck.Prober, *arpchecktest.Endpoint) {
	t.Helper()
	n := arpchecktest.NewNetwork(arpchecktest.Options{Seed: 7})
	t.Cleanup(n.Close)
	if opts.Rand == nil {
		opts.Rand = rand.NewPCG(1, 2)
	}
	p, ep, err := n.NewProber("eth0", ourMAC, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return n, p, ep
}

// ctxT bounds a test in real time, so a bug hangs nothing.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func probeAll(t *testing.T, p *arpcheck.Prober, opts arpcheck.BatchOptions, addrs ...netip.Addr) (map[netip.Addr]arpcheck.Result, []netip.Addr, error) {
	t.Helper()
	got := make(map[netip.Addr]arpcheck.Result)
	var order []netip.Addr
	err := p.ProbeAll(ctxT(t), slices.Values(addrs), opts, func(r arpcheck.Result) {
		_, dup := got[r.Addr]
		assert.False(t, dup, "%s reported twice", r.Addr)
		got[r.Addr] = r
		order = append(order, r.Addr)
	})
	return got, order, err
}

func sentProbes(n *arpchecktest.Network, addr netip.Addr) []arpchecktest.Frame {
	var out []arpchecktest.Frame
	for _, f := range n.FramesFrom(ourMAC) {
		if p, err := f.Parse(); err == nil && p.IsProbe() && p.TargetIP == addr {
			out = append(out, f)
		}
	}
	return out
}

func TestProbeFreeAndInUse(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{})
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)

	r, err := p.Probe(ctxT(t), addr10)
	require.NoError(t, err)
	assert.Equal(t, arpcheck.InUse, r.Status)
	require.Len(t, r.Holders, 1)
	assert.Equal(t, peerMAC.String(), r.Holders[0].MAC.String())
	assert.Equal(t, peerMAC.String(), r.Holders[0].EthSrc.String())
	assert.Equal(t, arpcheck.Answered, r.Holders[0].Kind)
	assert.Equal(t, 1, r.ProbesSent, "probing stops at the first conflict")
	assert.Equal(t, "192.0.2.10 in use by 02:00:00:00:00:02", r.String())
	assert.Equal(t, "[02:00:00:00:00:02]", fmt.Sprint(r.Holders), "holders print as their MACs")
	assert.Equal(t, "02:00:00:00:00:02 via 02:00:00:00:00:03 (probing)",
		arpcheck.Holder{MAC: peerMAC, EthSrc: thirdMAC, Kind: arpcheck.Probing}.String())
	assert.Equal(t, arpcheck.RFC.Linger, r.Decided.Sub(r.Holders[0].FirstSeen), "decided Linger after the reply")

	r, err = p.Probe(ctxT(t), addr11)
	require.NoError(t, err)
	assert.Equal(t, arpcheck.Free, r.Status)
	assert.Empty(t, r.Holders)
	assert.Equal(t, 3, r.ProbesSent)
	assert.Equal(t, "192.0.2.11 free", r.String())
	assert.Len(t, sentProbes(n, addr11), 3)
}

// The exact RFC 5227 schedule, on the fake clock, for many addresses at once:
// first probe within PROBE_WAIT, gaps within [PROBE_MIN, PROBE_MAX], verdict
// ANNOUNCE_WAIT after the last probe.
func TestRFCSchedule(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.RFC, Rate: arpcheck.Unlimited})
	start := n.Clock().Now()
	addrs := slices.Collect(arpcheck.Hosts(netip.MustParsePrefix("198.51.100.0/26")))
	got, _, err := probeAll(t, p, arpcheck.BatchOptions{}, addrs...)
	require.NoError(t, err)
	require.Len(t, got, 62)
	firsts, gaps := map[time.Duration]bool{}, map[time.Duration]bool{}
	var short, long int // gaps in the lower and upper quarter of [PROBE_MIN, PROBE_MAX]
	for _, a := range addrs {
		r := got[a]
		require.Equal(t, arpcheck.Free, r.Status, a)
		probes := sentProbes(n, a)
		require.Len(t, probes, arpcheck.RFCProbeNum, a)
		first := probes[0].At.Sub(start)
		firsts[first] = true
		assert.GreaterOrEqual(t, first, time.Duration(0))
		assert.LessOrEqual(t, first, arpcheck.RFCProbeWait, "%s: PROBE_WAIT", a)
		for i := 1; i < len(probes); i++ {
			gap := probes[i].At.Sub(probes[i-1].At)
			assert.GreaterOrEqual(t, gap, arpcheck.RFCProbeMin, "%s: gap %d", a, i)
			assert.LessOrEqual(t, gap, arpcheck.RFCProbeMax, "%s: gap %d", a, i)
			gaps[gap] = true
			switch {
			case gap < arpcheck.RFCProbeMin+250*time.Millisecond:
				short++
			case gap > arpcheck.RFCProbeMax-250*time.Millisecond:
				long++
			}
		}
		assert.Equal(t, arpcheck.RFCAnnounceWait, r.Decided.Sub(probes[2].At), "%s: ANNOUNCE_WAIT", a)
		assert.Equal(t, probes[0].At, r.Started)
		total := r.Decided.Sub(start)
		assert.GreaterOrEqual(t, total, 4*time.Second)
		assert.LessOrEqual(t, total, 7*time.Second)
	}
	assert.Greater(t, len(firsts), 50, "each address has its own jitter")
	assert.Greater(t, len(gaps), 100, "each gap has its own jitter")
	// 124 gaps drawn uniformly: about 31 in each quarter.
	assert.Greater(t, short, 10, "gaps near PROBE_MIN")
	assert.Greater(t, long, 10, "gaps near PROBE_MAX")
}

// 10,000 addresses on the RFC schedule: 7 s of protocol on the fake clock.
func TestTenThousandAddresses(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.RFC, Rate: arpcheck.Unlimited})
	holders := []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.20.7"), netip.MustParseAddr("10.0.39.1")}
	for i, h := range holders {
		n.AddHolder(arpchecktest.MAC(100+i), arpchecktest.HostOptions{}, h)
	}
	count, inUse := 0, map[netip.Addr]string{}
	addrs := func(yield func(netip.Addr) bool) {
		a := netip.MustParseAddr("10.0.0.1")
		for range 10000 {
			if !yield(a) {
				return
			}
			a = a.Next()
		}
	}
	err := p.ProbeAll(ctxT(t), addrs, arpcheck.BatchOptions{}, func(r arpcheck.Result) {
		count++
		if r.Status == arpcheck.InUse {
			inUse[r.Addr] = r.Holders[0].MAC.String()
		} else {
			assert.Equal(t, arpcheck.Free, r.Status, r.Addr)
		}
	})
	require.NoError(t, err)
	assert.Equal(t, 10000, count)
	assert.Equal(t, map[netip.Addr]string{holders[0]: "02:00:00:00:00:64", holders[1]: "02:00:00:00:00:65", holders[2]: "02:00:00:00:00:66"}, inUse)
	assert.LessOrEqual(t, n.Clock().Now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), 7*time.Second+time.Millisecond)
	assert.Equal(t, uint64(3*(10000-3)+3), p.Stats().FramesSent)
}

func TestTwoHoldersBothReported(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
	n.AddHolder(thirdMAC, arpchecktest.HostOptions{Delay: 3 * time.Millisecond}, addr10)
	r, err := p.Probe(ctxT(t), addr10)
	require.NoError(t, err)
	require.Equal(t, arpcheck.InUse, r.Status)
	assert.Equal(t, []string{peerMAC.String(), thirdMAC.String()}, macStrings(r.MACs()))
	assert.Equal(t, 3*time.Millisecond, r.Holders[1].FirstSeen.Sub(r.Holders[0].FirstSeen))
}

func macStrings(m []net.HardwareAddr) []string {
	out := make([]string, len(m))
	for i, x := range m {
		out[i] = x.String()
	}
	return out
}

func TestSimultaneousProbe(t *testing.T) {
	for _, addr := range []netip.Addr{addr10, v6addr} {
		t.Run(addr.String(), func(t *testing.T) {
			n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
			n.AddProber(peerMAC, arpchecktest.HostOptions{}, addr, 30*time.Millisecond)
			r, err := p.Probe(ctxT(t), addr)
			require.NoError(t, err)
			require.Equal(t, arpcheck.InUse, r.Status)
			assert.Equal(t, arpcheck.Probing, r.Holders[0].Kind)
			assert.Equal(t, "probing", r.Reason)
			assert.Contains(t, r.String(), "(probing)")
		})
	}
}

func TestAnnouncerDuringProbe(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	n.AddAnnouncer(peerMAC, arpchecktest.HostOptions{}, addr10, 50*time.Millisecond)
	r, err := p.Probe(ctxT(t), addr10)
	require.NoError(t, err)
	assert.Equal(t, arpcheck.InUse, r.Status)
	assert.Equal(t, arpcheck.Answered, r.Holders[0].Kind)
}

func TestEchoOfOwnFramesIgnored(t *testing.T) {
	for _, addr := range []netip.Addr{addr10, v6addr} {
		t.Run(addr.String(), func(t *testing.T) {
			n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
			n.Impair(arpchecktest.Impairments{Echo: true})
			r, err := p.Probe(ctxT(t), addr)
			require.NoError(t, err)
			assert.Equal(t, arpcheck.Free, r.Status)
			assert.Equal(t, uint64(3), p.Stats().FramesRead, "our three probes came back and were ignored")
		})
	}
}

func TestOwnMACsIgnored(t *testing.T) {
	vrrp := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x07}
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast, OwnMACs: []net.HardwareAddr{vrrp}})
	n.AddHolder(vrrp, arpchecktest.HostOptions{}, addr10)
	r, err := p.Probe(ctxT(t), addr10)
	require.NoError(t, err)
	assert.Equal(t, arpcheck.Free, r.Status, "a VRRP MAC of ours answering is not a conflict")
}

func TestGarbageIgnored(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	n.AddGarbage(thirdMAC, arpchecktest.HostOptions{})
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
	got, _, err := probeAll(t, p, arpcheck.BatchOptions{}, addr10, addr11)
	require.NoError(t, err)
	assert.Equal(t, arpcheck.InUse, got[addr10].Status)
	assert.Equal(t, arpcheck.Free, got[addr11].Status)
	st := p.Stats()
	assert.Positive(t, st.Malformed)
	assert.Equal(t, uint64(len(arpchecktest.Garbage(thirdMAC)))*st.FramesSent, st.Malformed, "every junk frame counted as malformed")
}

func TestProxyARPHint(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	n.AddProxyARP(peerMAC, arpchecktest.HostOptions{}, netip.MustParsePrefix("192.0.2.0/28"))
	n.AddHolder(thirdMAC, arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.20"))
	addrs := slices.Collect(arpcheck.Hosts(netip.MustParsePrefix("192.0.2.0/27")))
	got, _, err := probeAll(t, p, arpcheck.BatchOptions{}, addrs...)
	require.NoError(t, err)
	proxied := 0
	for _, r := range got {
		if r.Status != arpcheck.InUse {
			continue
		}
		if r.Holders[0].MAC.String() == peerMAC.String() {
			proxied++
			assert.True(t, r.Holders[0].ProxyARP, r.Addr)
		} else {
			assert.False(t, r.Holders[0].ProxyARP, "a host answering for one address is no proxy")
		}
	}
	assert.Equal(t, 15, proxied)
}

func TestImpairments(t *testing.T) {
	t.Run("loss of some frames still finds the holder", func(t *testing.T) {
		n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
		n.Impair(arpchecktest.Impairments{Loss: 0.4})
		n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
		r, err := p.Probe(ctxT(t), addr10)
		require.NoError(t, err)
		assert.Equal(t, arpcheck.InUse, r.Status)
		lost := 0
		for _, f := range n.Frames() {
			if f.Lost {
				lost++
			}
		}
		assert.Positive(t, lost, "seed 7 loses frames")
	})
	t.Run("total loss is indistinguishable from free", func(t *testing.T) {
		n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
		n.Impair(arpchecktest.Impairments{Loss: 1})
		n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
		r, err := p.Probe(ctxT(t), addr10)
		require.NoError(t, err)
		assert.Equal(t, arpcheck.Free, r.Status, "ARP cannot tell silence from absence")
	})
	t.Run("delay within the window", func(t *testing.T) {
		n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
		n.Impair(arpchecktest.Impairments{Delay: 20 * time.Millisecond})
		n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
		r, err := p.Probe(ctxT(t), addr10)
		require.NoError(t, err)
		require.Equal(t, arpcheck.InUse, r.Status)
		probes := sentProbes(n, addr10)
		assert.Equal(t, 40*time.Millisecond, r.Holders[0].FirstSeen.Sub(probes[0].At), "there and back")
	})
	t.Run("reply later than the window", func(t *testing.T) {
		n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
		n.AddHolder(peerMAC, arpchecktest.HostOptions{Delay: time.Second}, addr10)
		r, err := p.Probe(ctxT(t), addr10)
		require.NoError(t, err)
		assert.Equal(t, arpcheck.Free, r.Status)
	})
	t.Run("duplication", func(t *testing.T) {
		n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
		n.Impair(arpchecktest.Impairments{Duplicate: 1})
		n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
		r, err := p.Probe(ctxT(t), addr10)
		require.NoError(t, err)
		require.Len(t, r.Holders, 1, "a duplicate is the same holder")
		assert.Equal(t, 4, r.Holders[0].Frames, "probe and reply both doubled")
	})
}

func TestLinkDownMidProbe(t *testing.T) {
	n, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.RFC})
	n.Clock().SetAuto(false)
	done := make(chan error, 1)
	var got []arpcheck.Result
	go func() {
		done <- p.ProbeAll(ctxT(t), slices.Values([]netip.Addr{addr10, addr11}), arpcheck.BatchOptions{}, func(r arpcheck.Result) { got = append(got, r) })
	}()
	for len(n.FramesFrom(ourMAC)) < 2 {
		n.Clock().Advance(100 * time.Millisecond)
	}
	ep.SetLinkDown(true)
	n.Clock().SetAuto(true)
	err := <-done
	require.ErrorIs(t, err, arpcheck.ErrLinkDown)
	require.Len(t, got, 2)
	for _, r := range got {
		assert.Equal(t, arpcheck.Unknown, r.Status)
		assert.ErrorIs(t, r.Err, arpcheck.ErrLinkDown)
		assert.Contains(t, r.Reason, "link down")
	}
	_, err = p.Probe(ctxT(t), addr10)
	assert.ErrorIs(t, err, arpcheck.ErrLinkDown, "a new call on a down link fails at once")
	ep.SetLinkDown(false)
	r, err := p.Probe(ctxT(t), addr10)
	require.NoError(t, err, "the prober recovers when the link does")
	assert.Equal(t, arpcheck.Free, r.Status)
}

func TestNoCarrierIsNotFree(t *testing.T) {
	_, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	done := make(chan struct{})
	var r arpcheck.Result
	var err error
	ep.SetCarrier(false)
	go func() { r, err = p.Probe(ctxT(t), addr10); close(done) }()
	<-done
	assert.ErrorIs(t, err, arpcheck.ErrLinkDown)
	assert.Equal(t, arpcheck.Unknown, r.Status)
}

func TestNoCarrierMidProbe(t *testing.T) {
	n, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
	n.Clock().SetAuto(false)
	done := make(chan struct{})
	var r arpcheck.Result
	var err error
	go func() { r, err = p.Probe(ctxT(t), addr11); close(done) }()
	for len(n.FramesFrom(ourMAC)) < 1 {
		n.Clock().Advance(10 * time.Millisecond)
	}
	ep.SetCarrier(false) // sends now vanish: silence must not read as free
	n.Clock().SetAuto(true)
	<-done
	assert.ErrorIs(t, err, arpcheck.ErrLinkDown)
	assert.Equal(t, arpcheck.Unknown, r.Status)
	assert.Equal(t, 3, r.ProbesSent)
}

func TestENOBUFS(t *testing.T) {
	t.Run("bounded retry succeeds", func(t *testing.T) {
		_, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
		ep.FailSends(syscall.ENOBUFS, 3)
		r, err := p.Probe(ctxT(t), addr10)
		require.NoError(t, err)
		assert.Equal(t, arpcheck.Free, r.Status)
		assert.Equal(t, 3, r.ProbesSent)
		assert.Equal(t, uint64(3), p.Stats().SendRetries)
	})
	t.Run("persistent failure is an error, never free", func(t *testing.T) {
		_, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
		ep.FailSends(syscall.ENOBUFS, 1000)
		r, err := p.Probe(ctxT(t), addr10)
		require.Error(t, err)
		assert.ErrorIs(t, err, syscall.ENOBUFS)
		assert.ErrorIs(t, err, arpcheck.ErrNoProbeSent)
		assert.Equal(t, arpcheck.Unknown, r.Status)
		assert.Zero(t, r.ProbesSent)
	})
	t.Run("other send errors are returned at once", func(t *testing.T) {
		_, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
		ep.FailSends(syscall.EPERM, 1)
		_, err := p.Probe(ctxT(t), addr10)
		assert.ErrorIs(t, err, syscall.EPERM)
		assert.Zero(t, p.Stats().SendRetries)
	})
}

func TestCancelledIsUnknown(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.RFC})
	n.Clock().SetAuto(false)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan struct{})
	var r arpcheck.Result
	var err error
	go func() { r, err = p.Probe(ctx, addr10); close(done) }()
	for len(n.FramesFrom(ourMAC)) < 1 {
		n.Clock().Advance(50 * time.Millisecond)
	}
	cancel()
	<-done
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, arpcheck.ErrNoProbeSent, "one probe went out")
	assert.Equal(t, arpcheck.Unknown, r.Status)
	assert.Equal(t, 1, r.ProbesSent)

	ctx, cancel = context.WithCancel(ctxT(t))
	cancel()
	r, err = p.Probe(ctx, addr11)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, arpcheck.ErrNoProbeSent)
	assert.Equal(t, arpcheck.Unknown, r.Status)
	assert.Equal(t, addr11, r.Addr, "the result names the address")
	assert.Equal(t, "context canceled", r.Reason)
}

// A context that ends while a long sequence is read stops the reading: a /8
// is not read to the end of the in-flight window first.
func TestCancelledWhileReadingSequence(t *testing.T) {
	_, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.RFC})
	ctx, cancel := context.WithCancel(ctxT(t))
	read := 0
	addrs := func(yield func(netip.Addr) bool) {
		for a := range arpcheck.Hosts(netip.MustParsePrefix("10.0.0.0/8")) {
			if read++; read == 100 {
				cancel()
			}
			if !yield(a) {
				return
			}
		}
	}
	results := 0
	err := p.ProbeAll(ctx, addrs, arpcheck.BatchOptions{}, func(r arpcheck.Result) {
		results++
		assert.Equal(t, arpcheck.Unknown, r.Status, r.Addr)
		assert.ErrorIs(t, r.Err, context.Canceled, r.Addr)
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, arpcheck.ErrNoProbeSent)
	assert.Equal(t, 100, read, "reading stops at the address in hand when ctx ended")
	assert.Equal(t, 100, results, "every address read is reported")
	assert.Zero(t, p.Stats().FramesSent)
}

// Verdicts reach the caller while the sequence is still being read, so a
// slow or endless source of addresses does not hold answers back.
func TestVerdictsWhileReadingSequence(t *testing.T) {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	t.Cleanup(n.Close)
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
	ep := n.Attach("eth0", ourMAC)
	// The wall clock: verdicts come while this goroutine reads the sequence,
	// which the fake clock (standing still while it is read) never allows.
	p, err := arpcheck.NewFromTransport(ep.Interface(), ep, arpcheck.Options{Timing: arpcheck.Scaled(50 * time.Millisecond)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	// After the held address, a slow source: one more address every 2 ms,
	// until the held address's verdict is out or 5,000 addresses (10 s).
	var held arpcheck.Result
	read := 0
	addrs := func(yield func(netip.Addr) bool) {
		for a := addr10; read < 5000 && !held.Addr.IsValid(); a = a.Next() {
			if read++; read > 1 {
				time.Sleep(2 * time.Millisecond)
			}
			if !yield(a) {
				return
			}
		}
	}
	require.NoError(t, p.ProbeAll(ctxT(t), addrs, arpcheck.BatchOptions{}, func(r arpcheck.Result) {
		if r.Addr == addr10 {
			held = r
		}
	}))
	assert.Equal(t, "192.0.2.10 in use by 02:00:00:00:00:02", held.String())
	assert.Less(t, read, 5000, "it came while the sequence was read")
}

func TestStopOnConflict(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.7"))
	addrs := slices.Collect(arpcheck.Hosts(netip.MustParsePrefix("192.0.2.0/28")))
	got, order, err := probeAll(t, p, arpcheck.BatchOptions{StopOnConflict: true}, addrs...)
	require.NoError(t, err, "stopping on purpose is no error")
	first := got[order[0]]
	assert.Equal(t, netip.MustParseAddr("192.0.2.7"), first.Addr, "the conflict comes first")
	assert.Equal(t, arpcheck.InUse, first.Status)
	assert.Equal(t, first.Holders[0].FirstSeen, first.Decided, "no lingering")
	for _, a := range order[1:] {
		assert.Equal(t, arpcheck.Unknown, got[a].Status, a)
		assert.Contains(t, got[a].Reason, "stopped after a conflict")
	}
	assert.Len(t, got, len(addrs))
}

func TestStreamingOrderAndWindow(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast, MaxInFlight: 4})
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.30"))
	addrs := slices.Collect(arpcheck.Hosts(netip.MustParsePrefix("192.0.2.16/28")))
	got, order, err := probeAll(t, p, arpcheck.BatchOptions{}, addrs...)
	require.NoError(t, err)
	assert.Len(t, got, 14)
	// Never more than 4 addresses between first probe and verdict.
	for _, r := range got {
		inFlight := 0
		for _, o := range got {
			if !o.Started.After(r.Started) && o.Decided.After(r.Started) {
				inFlight++
			}
		}
		assert.LessOrEqual(t, inFlight, 4, r.Addr)
	}
	// Verdicts arrive in the order they are reached.
	for i := 1; i < len(order); i++ {
		assert.False(t, got[order[i]].Decided.Before(got[order[i-1]].Decided))
	}
}

func TestBadAddresses(t *testing.T) {
	_, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	bad := []netip.Addr{{}, netip.IPv4Unspecified(), netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("127.0.0.1"),
		netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("ff02::1")}
	got, _, err := probeAll(t, p, arpcheck.BatchOptions{}, append([]netip.Addr{addr10}, bad...)...)
	var ae *arpcheck.AddrError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 1, ae.Index)
	assert.ErrorIs(t, err, arpcheck.ErrBadAddress)
	assert.Equal(t, arpcheck.Free, got[addr10].Status)
	for _, a := range bad {
		assert.Equal(t, arpcheck.Unknown, got[a].Status, a)
		assert.ErrorIs(t, got[a].Err, arpcheck.ErrBadAddress)
	}
	// A v4-mapped address is probed as IPv4.
	r, err := p.Probe(ctxT(t), netip.MustParseAddr("::ffff:192.0.2.12"))
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("192.0.2.12"), r.Addr)
}

func TestSameAddressTwice(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
	results := make(chan arpcheck.Result, 2)
	for range 2 {
		go func() {
			r, _ := p.Probe(ctxT(t), addr10)
			results <- r
		}()
	}
	for range 2 {
		assert.Equal(t, arpcheck.InUse, (<-results).Status)
	}
}

func TestIPv6DAD(t *testing.T) {
	n, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, v6addr)
	free := netip.MustParseAddr("2001:db8::11")
	got, _, err := probeAll(t, p, arpcheck.BatchOptions{}, v6addr, free)
	require.NoError(t, err)
	assert.Equal(t, arpcheck.InUse, got[v6addr].Status)
	assert.Equal(t, peerMAC.String(), got[v6addr].Holders[0].MAC.String())
	assert.Equal(t, arpcheck.Free, got[free].Status)
	assert.Empty(t, ep.Groups(), "groups are left once probing ends")
	// Every NS went to the solicited-node group, from ::, with a nonce, after an
	// MLD report joining that group.
	reported := map[string]bool{}
	for _, f := range n.FramesFrom(ourMAC) {
		pf, err := f.Parse()
		if errors.Is(err, arpcheck.ErrNotARP) {
			require.Equal(t, byte(143), f.Data[62], "MLDv2 report")
			reported[netip.AddrFrom16([16]byte(f.Data[74:90])).String()] = true
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, arpcheck.OpNeighborSolicit, pf.Op)
		assert.True(t, pf.SenderIP.IsUnspecified())
		assert.True(t, pf.HasNonce)
		group, g := arpcheck.SolicitedNodeGroup(pf.TargetIP)
		assert.Equal(t, g.String(), pf.EthDst.String())
		assert.True(t, reported[group.String()], "joined %s before soliciting", group)
	}
	assert.Len(t, reported, 2)
}

// failJoin is an endpoint whose multicast joins fail.
type failJoin struct{ *arpchecktest.Endpoint }

func (failJoin) JoinGroup(net.HardwareAddr) error { return syscall.ENOSPC }

// An address that cannot even start (here: the solicited-node group cannot be
// joined) is reported Unknown, and the call fails with no probe sent.
func TestProbeThatCannotStart(t *testing.T) {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	t.Cleanup(n.Close)
	ep := n.Attach("eth0", ourMAC)
	p, err := arpcheck.NewFromTransport(ep.Interface(), failJoin{ep}, arpcheck.Options{Timing: arpcheck.Fast, Clock: n.Clock()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	r, err := p.Probe(ctxT(t), v6addr)
	require.ErrorIs(t, err, syscall.ENOSPC)
	assert.ErrorIs(t, err, arpcheck.ErrNoProbeSent)
	assert.Equal(t, arpcheck.Unknown, r.Status)
	assert.Equal(t, v6addr, r.Addr)
	assert.ErrorIs(t, r.Err, syscall.ENOSPC)
}

func TestIPv6JoinsGroupToHearOtherProbers(t *testing.T) {
	n, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.RFC})
	n.AddProber(peerMAC, arpchecktest.HostOptions{}, v6addr, 500*time.Millisecond)
	n.Clock().SetAuto(false)
	done := make(chan arpcheck.Result)
	go func() { r, _ := p.Probe(ctxT(t), v6addr); done <- r }()
	_, g := arpcheck.SolicitedNodeGroup(v6addr)
	for !slices.ContainsFunc(ep.Groups(), func(m net.HardwareAddr) bool { return m.String() == g.String() }) {
		n.WaitIdle()
	}
	n.Clock().SetAuto(true)
	n.Clock().Advance(time.Second)
	assert.Equal(t, arpcheck.InUse, (<-done).Status)
}

func TestMaxInFlightBoundsMemoryOfPrefix(t *testing.T) {
	_, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast, MaxInFlight: 256, Rate: arpcheck.Unlimited})
	type edge struct {
		at   time.Time
		step int
	}
	var edges []edge // +1 at each first probe, -1 at each verdict
	err := p.ProbePrefix(ctxT(t), netip.MustParsePrefix("10.1.0.0/20"), arpcheck.BatchOptions{}, func(r arpcheck.Result) {
		edges = append(edges, edge{r.Started, 1}, edge{r.Decided, -1})
	})
	require.NoError(t, err)
	assert.Len(t, edges, 2*4094)
	slices.SortStableFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.step - b.step // a verdict frees its slot before the next starts
	})
	inFlight, most := 0, 0
	for _, e := range edges {
		inFlight += e.step
		most = max(most, inFlight)
	}
	assert.Equal(t, 256, most, "the window is used, and never exceeded")
}

func TestRateLimit(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast, Rate: arpcheck.Rate{PacketsPerSecond: 100, Burst: 1}})
	start := n.Clock().Now()
	_, _, err := probeAll(t, p, arpcheck.BatchOptions{}, slices.Collect(arpcheck.Hosts(netip.MustParsePrefix("192.0.2.0/29")))...)
	require.NoError(t, err)
	frames := n.FramesFrom(ourMAC)
	require.Len(t, frames, 18)
	for i := 1; i < len(frames); i++ {
		assert.GreaterOrEqual(t, frames[i].At.Sub(frames[i-1].At), 10*time.Millisecond, "frame %d", i)
	}
	assert.GreaterOrEqual(t, n.Clock().Now().Sub(start), 170*time.Millisecond)
}

// A prefix far larger than the burst, at DefaultRate: the frames leave at the
// rate, and the frames held back cost the scheduler one reschedule each (it
// once rescheduled every waiting frame at each token: minutes for a /18).
func TestRateLimitedLargePrefix(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	start := n.Clock().Now()
	free := 0
	require.NoError(t, p.ProbePrefix(ctxT(t), netip.MustParsePrefix("10.0.0.0/18"), arpcheck.BatchOptions{}, func(r arpcheck.Result) {
		if r.Status == arpcheck.Free {
			free++
		}
	}))
	assert.Equal(t, 16382, free)
	frames := n.FramesFrom(ourMAC)
	require.Len(t, frames, 3*16382)
	rate, burst := arpcheck.DefaultRate.PacketsPerSecond, arpcheck.DefaultRate.Burst
	perTen := map[int64]int{} // frames in each 10 ms of fake time
	for _, f := range frames {
		perTen[int64(f.At.Sub(start)/(10*time.Millisecond))]++
	}
	for slot, count := range perTen {
		assert.LessOrEqual(t, count, int(rate/100)+burst, "frames in the 10 ms from %d ms", slot*10)
	}
	took := frames[len(frames)-1].At.Sub(frames[0].At)
	assert.GreaterOrEqual(t, took, time.Duration(float64(len(frames)-burst)/rate*float64(time.Second)))
	assert.Less(t, took, time.Duration(float64(len(frames))/rate*float64(time.Second))+arpcheck.Fast.Longest(), "and not slower")
}

func TestResultJSON(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)
	r := arpcheck.Result{Addr: addr10, Status: arpcheck.InUse, Reason: "answered", ProbesSent: 1, Started: at, Decided: at,
		Holders: []arpcheck.Holder{{MAC: peerMAC, EthSrc: thirdMAC, Kind: arpcheck.Answered, FirstSeen: at, LastSeen: at, Frames: 2}}}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"addr":"192.0.2.10","status":"in_use","reason":"answered","probes_sent":1,
		"started":"2026-01-01T00:00:01Z","decided":"2026-01-01T00:00:01Z",
		"holders":[{"mac":"02:00:00:00:00:02","eth_src":"02:00:00:00:00:03","kind":"answered",
		"first_seen":"2026-01-01T00:00:01Z","last_seen":"2026-01-01T00:00:01Z","frames":2}]}`, string(b))
	var back arpcheck.Result
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, r.Holders[0].MAC.String(), back.Holders[0].MAC.String())
	assert.Equal(t, r.Holders[0].EthSrc.String(), back.Holders[0].EthSrc.String())
	assert.Equal(t, arpcheck.InUse, back.Status)
	b, _ = json.Marshal(arpcheck.Result{Addr: addr11, Reason: "link down"})
	assert.JSONEq(t, `{"addr":"192.0.2.11","status":"unknown","reason":"link down","probes_sent":0}`, string(b))
	var s arpcheck.Status
	assert.Error(t, s.UnmarshalText([]byte("maybe")))
	var h arpcheck.Holder
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"mac":"02:00:00:00:00:02","kind":"answerd"}`), &h), `holder kind "answerd"`)
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"mac":"02:00:00:00:00"}`), &h), `holder mac "02:00:00:00:00"`)
}

func TestHosts(t *testing.T) {
	tests := []struct {
		prefix string
		first  string
		last   string
		count  int
	}{
		{"192.0.2.0/24", "192.0.2.1", "192.0.2.254", 254},
		{"192.0.2.77/24", "192.0.2.1", "192.0.2.254", 254},
		{"192.0.2.0/30", "192.0.2.1", "192.0.2.2", 2},
		{"192.0.2.0/31", "192.0.2.0", "192.0.2.1", 2},
		{"192.0.2.9/32", "192.0.2.9", "192.0.2.9", 1},
		{"2001:db8::/124", "2001:db8::1", "2001:db8::f", 15},
		{"2001:db8::/127", "2001:db8::", "2001:db8::1", 2},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			got := slices.Collect(arpcheck.Hosts(netip.MustParsePrefix(tt.prefix)))
			require.Len(t, got, tt.count)
			assert.Equal(t, tt.first, got[0].String())
			assert.Equal(t, tt.last, got[len(got)-1].String())
		})
	}
	assert.Empty(t, slices.Collect(arpcheck.Hosts(netip.Prefix{})))
	// Stopping early stops the sequence.
	n := 0
	for range arpcheck.Hosts(netip.MustParsePrefix("10.0.0.0/8")) {
		if n++; n == 3 {
			break
		}
	}
	assert.Equal(t, 3, n)
}

func TestBadOptions(t *testing.T) {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	defer n.Close()
	tests := []arpcheck.Options{
		{Timing: arpcheck.Timing{ProbeNum: 1}},
		{Rate: arpcheck.Rate{PacketsPerSecond: -1}},
		{MaxInFlight: -1},
		{OwnMACs: []net.HardwareAddr{{1, 2}}},
	}
	for i, o := range tests {
		_, _, err := n.NewProber("eth0", ourMAC, o)
		assert.ErrorIs(t, err, arpcheck.ErrBadOptions, "case %d", i)
	}
	ep := n.Attach("lo", ourMAC)
	lo := ep.Interface()
	lo.Flags |= net.FlagLoopback
	_, err := arpcheck.NewFromTransport(lo, ep, arpcheck.Options{})
	assert.ErrorIs(t, err, arpcheck.ErrNotARPable)
	lo = ep.Interface()
	lo.HardwareAddr = nil
	_, err = arpcheck.NewFromTransport(lo, ep, arpcheck.Options{})
	assert.ErrorIs(t, err, arpcheck.ErrNotARPable)
	_, err = arpcheck.New(&net.Interface{Name: "lo", Flags: net.FlagLoopback}, arpcheck.Options{})
	assert.ErrorIs(t, err, arpcheck.ErrNotARPable)
}

func TestClosed(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.RFC})
	n.Clock().SetAuto(false)
	done := make(chan error)
	go func() { _, err := p.Probe(ctxT(t), addr10); done <- err }()
	n.WaitIdle()
	require.NoError(t, p.Close())
	assert.ErrorIs(t, <-done, arpcheck.ErrClosed)
	_, err := p.Probe(ctxT(t), addr10)
	assert.True(t, errors.Is(err, arpcheck.ErrClosed), "%v", err)
	require.NoError(t, p.Close(), "closing twice is fine")
}

// queuedTransport is an endpoint that says frames wait in its queue while
// queued is set, as a socket does when the reader falls behind.
type queuedTransport struct {
	*arpchecktest.Endpoint
	queued atomic.Bool
}

func (q *queuedTransport) ReadQueued() (bool, error) { return q.queued.Load(), nil }

// A reply that arrived before the verdict was due but was not read yet still
// counts: the free verdict waits for the reader, and gives up as Unknown,
// never as free, if the reader does not catch up.
func TestVerdictWaitsForUnreadFrames(t *testing.T) {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	t.Cleanup(n.Close)
	ep := n.Attach("eth0", ourMAC)
	qt := &queuedTransport{Endpoint: ep}
	p, err := arpcheck.NewFromTransport(ep.Interface(), qt, arpcheck.Options{Timing: arpcheck.Fast, Clock: n.Clock()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	n.Clock().SetAuto(false)

	probe := func(addr netip.Addr) <-chan arpcheck.Result {
		done := make(chan arpcheck.Result, 1)
		go func() { r, _ := p.Probe(ctxT(t), addr); done <- r }()
		for len(sentProbes(n, addr)) < 3 { // all three probes out, none answered
			n.Clock().Advance(time.Millisecond)
		}
		return done
	}

	// The reply is "in the queue" when the verdict comes due; it is read a
	// little later.
	done := probe(addr10)
	qt.queued.Store(true)
	n.Clock().Advance(arpcheck.Fast.AnnounceWait)
	select {
	case r := <-done:
		t.Fatalf("verdict while frames were unread: %v", r)
	default:
	}
	n.Inject("late holder", arpcheck.AppendARPReply(nil, peerMAC, addr10, ourMAC, netip.IPv4Unspecified()))
	qt.queued.Store(false)
	n.WaitIdle()
	n.Clock().Advance(arpcheck.Fast.Linger + time.Millisecond)
	r := <-done
	assert.Equal(t, arpcheck.InUse, r.Status, "%v", r)

	// A reader that never catches up: Unknown.
	n.ResetLog()
	done = probe(addr11)
	qt.queued.Store(true)
	n.Clock().Advance(arpcheck.Fast.AnnounceWait + 20*time.Millisecond)
	r = <-done
	assert.Equal(t, arpcheck.Unknown, r.Status)
	assert.Contains(t, r.Reason, "unread")
}

// Frames the socket dropped while an address was probed may have held its
// answer: no free verdict then.
func TestDropsMakeUnknown(t *testing.T) {
	n := arpchecktest.NewNetwork(arpchecktest.Options{QueueLen: 2})
	t.Cleanup(n.Close)
	p, _, err := n.NewProber("eth0", ourMAC, arpcheck.Options{Timing: arpcheck.Fast})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	n.AddGarbage(thirdMAC, arpchecktest.HostOptions{}) // six frames at once for each probe
	r, err := p.Probe(ctxT(t), addr10)
	require.Error(t, err)
	assert.Equal(t, arpcheck.Unknown, r.Status)
	assert.Contains(t, r.Reason, "dropped")
	assert.Positive(t, p.Stats().KernelDrops)
}
