package arpcheck_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/arpcheck/arpchecktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAnnounce(t *testing.T) {
	for _, addr := range []netip.Addr{addr10, v6addr} {
		t.Run(addr.String(), func(t *testing.T) {
			n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.RFC})
			start := n.Clock().Now()
			require.NoError(t, p.Announce(ctxT(t), addr))
			frames := n.FramesFrom(ourMAC)
			require.Len(t, frames, arpcheck.RFCAnnounceNum)
			assert.Equal(t, start, frames[0].At, "the first announcement goes at once")
			assert.Equal(t, arpcheck.RFCAnnounceInterval, frames[1].At.Sub(frames[0].At), "ANNOUNCE_INTERVAL")
			want := arpcheck.AppendAnnouncement(nil, ourMAC, addr)
			if addr.Is6() {
				want = arpcheck.AppendUnsolicitedAdvert(nil, ourMAC, addr)
			}
			for _, f := range frames {
				assert.Equal(t, want, f.Data)
			}
		})
	}
}

func TestAnnounceErrors(t *testing.T) {
	n, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.RFC})
	assert.ErrorIs(t, p.Announce(ctxT(t), netip.IPv4Unspecified()), arpcheck.ErrBadAddress)
	ep.FailSends(syscall.EPERM, 1)
	assert.ErrorIs(t, p.Announce(ctxT(t), addr10), syscall.EPERM)

	n.Clock().SetAuto(false)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error)
	go func() { done <- p.Announce(ctx, addr11) }()
	for len(n.FramesFrom(ourMAC)) < 1 {
		n.Clock().Advance(0) // the first announcement is due at once
	}
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Len(t, n.FramesFrom(ourMAC), 1, "the second one never went")
}

// claimRun runs Claim in the background and collects its events.
type claimRun struct {
	mu     sync.Mutex
	events []arpcheck.ClaimEvent
	done   chan error
	cancel context.CancelFunc
}

func startClaim(t *testing.T, p *arpcheck.Prober, addr netip.Addr, policy arpcheck.DefendPolicy) *claimRun {
	ctx, cancel := context.WithCancel(ctxT(t))
	c := &claimRun{done: make(chan error, 1), cancel: cancel}
	go func() {
		c.done <- p.Claim(ctx, addr, arpcheck.ClaimOptions{Defend: policy, OnEvent: func(ev arpcheck.ClaimEvent) {
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
		}})
	}()
	return c
}

func (c *claimRun) kinds() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.events {
		out = append(out, e.Kind.String())
	}
	return out
}

func (c *claimRun) waitFor(t *testing.T, n *arpchecktest.Network, kind arpcheck.ClaimEventKind) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, e := range c.events {
			if e.Kind == kind {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		n.WaitIdle()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no %s event; got %v", kind, c.kinds())
}

func TestClaimFreeThenCancel(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	c := startClaim(t, p, addr10, arpcheck.DefendOnce)
	c.waitFor(t, n, arpcheck.Claimed)
	c.cancel()
	require.NoError(t, <-c.done, "ending a held claim is no error")
	var probes, announcements int
	for _, f := range n.FramesFrom(ourMAC) {
		pf, err := f.Parse()
		require.NoError(t, err)
		if pf.IsProbe() {
			probes++
			assert.Zero(t, announcements, "every probe comes before the first announcement")
		} else if pf.IsAnnouncement() {
			announcements++
		}
	}
	assert.Equal(t, 3, probes)
	assert.Equal(t, 2, announcements)
}

func TestClaimInUse(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	n.AddHolder(peerMAC, arpchecktest.HostOptions{}, addr10)
	err := p.Claim(ctxT(t), addr10, arpcheck.ClaimOptions{})
	require.ErrorIs(t, err, arpcheck.ErrInUse)
	var ce *arpcheck.ConflictError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, peerMAC.String(), ce.Holder.MAC.String())
	assert.Empty(t, n.FramesFrom(ourMAC)[1:], "nothing announced after the conflict")
}

// RFC 5227 §2.4 defence rules, on the fake clock.
func TestClaimDefence(t *testing.T) {
	tests := []struct {
		policy   arpcheck.DefendPolicy
		lostAt   int // conflict number that loses the address; 0 = never
		defences int
	}{
		{arpcheck.DefendNever, 1, 0},
		{arpcheck.DefendOnce, 2, 1},
		{arpcheck.DefendAlways, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
			c := startClaim(t, p, addr10, tt.policy)
			c.waitFor(t, n, arpcheck.Claimed)
			n.ResetLog()
			// Two conflicts 3 s apart, within DEFEND_INTERVAL.
			intruder := n.AddAnnouncer(peerMAC, arpchecktest.HostOptions{}, addr10, 3*time.Second)
			n.Clock().Advance(3 * time.Second)
			c.waitFor(t, n, arpcheck.Conflicted)
			n.Clock().Advance(3 * time.Second)
			n.WaitIdle()
			if tt.lostAt > 0 {
				err := <-c.done
				require.ErrorIs(t, err, arpcheck.ErrAddressLost)
				var ce *arpcheck.ConflictError
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, peerMAC.String(), ce.Holder.MAC.String())
			} else {
				c.cancel()
				require.NoError(t, <-c.done)
			}
			intruder.Remove()
			defended := 0
			for _, f := range n.FramesFrom(ourMAC) {
				pf, _ := f.Parse()
				if pf.IsAnnouncement() {
					defended++
				}
			}
			assert.Equal(t, tt.defences, defended, "events %v", c.kinds())
		})
	}
}

func TestClaimDefendAlwaysRateLimited(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	c := startClaim(t, p, addr10, arpcheck.DefendAlways)
	c.waitFor(t, n, arpcheck.Claimed)
	n.ResetLog()
	intruder := n.AddAnnouncer(peerMAC, arpchecktest.HostOptions{}, addr10, 4*time.Second)
	n.Clock().Advance(41 * time.Second) // conflicts at 4, 8, ..., 40 s
	n.WaitIdle()
	intruder.Remove()
	var defences []time.Time
	for _, f := range n.FramesFrom(ourMAC) {
		defences = append(defences, f.At)
	}
	// At most one defence per DEFEND_INTERVAL: at 4, 16 (12 ≥ 10), 28, 40 s.
	require.Len(t, defences, 4)
	for i := 1; i < len(defences); i++ {
		assert.GreaterOrEqual(t, defences[i].Sub(defences[i-1]), arpcheck.RFCDefendInterval)
	}
	c.cancel()
	require.NoError(t, <-c.done)
}

// Probes for a claimed address are someone's question, not a conflict
// (dhcpcd#480).
func TestClaimIgnoresProbesAfterAnnouncing(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	c := startClaim(t, p, addr10, arpcheck.DefendNever)
	c.waitFor(t, n, arpcheck.Claimed)
	prober := n.AddProber(peerMAC, arpchecktest.HostOptions{}, addr10, time.Second)
	n.Clock().Advance(5 * time.Second)
	n.WaitIdle()
	prober.Remove()
	c.cancel()
	require.NoError(t, <-c.done)
	assert.Equal(t, []string{"claimed"}, c.kinds())
}

// MAX_CONFLICTS and RATE_LIMIT_INTERVAL: after 10 claims found their address
// taken, the next starts no sooner than 60 s after the previous one.
func TestClaimRateLimitAfterMaxConflicts(t *testing.T) {
	n, p, _ := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	pool := netip.MustParsePrefix("192.0.2.0/28")
	n.AddProxyARP(peerMAC, arpchecktest.HostOptions{}, pool)
	var starts []time.Time
	for a := range arpcheck.Hosts(pool) {
		if len(starts) == 12 {
			break
		}
		before := len(n.FramesFrom(ourMAC))
		err := p.Claim(ctxT(t), a, arpcheck.ClaimOptions{})
		require.ErrorIs(t, err, arpcheck.ErrInUse)
		starts = append(starts, n.FramesFrom(ourMAC)[before].At)
	}
	for i := 1; i < 10; i++ {
		assert.Less(t, starts[i].Sub(starts[i-1]), time.Second, "claim %d not limited", i)
	}
	for i := 10; i < 12; i++ {
		assert.GreaterOrEqual(t, starts[i].Sub(starts[i-1]), arpcheck.RFCRateLimitInterval, "claim %d limited", i)
	}
}

// A defence that cannot be sent ends the claim with the send error: the
// address was not defended, and Claim must not carry on as if it had been.
func TestClaimDefenceSendFails(t *testing.T) {
	n, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	c := startClaim(t, p, addr10, arpcheck.DefendAlways)
	c.waitFor(t, n, arpcheck.Claimed)
	ep.FailSends(syscall.EPERM, 1)
	intruder := n.AddAnnouncer(peerMAC, arpchecktest.HostOptions{}, addr10, time.Second)
	defer intruder.Remove()
	n.Clock().Advance(time.Second)
	err := <-c.done
	require.ErrorIs(t, err, syscall.EPERM)
	assert.NotErrorIs(t, err, arpcheck.ErrAddressLost)
	assert.Contains(t, err.Error(), "announce 192.0.2.10")
	assert.Equal(t, []string{"claimed", "conflicted", "defended", "lost"}, c.kinds())
}

func TestClaimLinkDown(t *testing.T) {
	n, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	c := startClaim(t, p, addr10, arpcheck.DefendAlways)
	c.waitFor(t, n, arpcheck.Claimed)
	ep.SetLinkDown(true)
	err := <-c.done
	assert.ErrorIs(t, err, arpcheck.ErrLinkDown)
	assert.NotErrorIs(t, err, arpcheck.ErrAddressLost)
}

func TestMonitor(t *testing.T) {
	n, p, ep := newNet(t, arpcheck.Options{Timing: arpcheck.Fast})
	mine := netip.MustParseAddr("192.0.2.1")
	events, stop := monitorRun(t, n, p, ep, arpcheck.MonitorOptions{Mine: []netip.Addr{mine, v6addr}, Window: 30 * time.Second})
	defer stop()
	// Two hosts claim 192.0.2.50; one claims our address; one probes for it.
	hosts := []*arpchecktest.Host{
		n.AddAnnouncer(peerMAC, arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.50"), time.Second),
		n.AddAnnouncer(thirdMAC, arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.50"), 1500*time.Millisecond),
		n.AddAnnouncer(arpchecktest.MAC(4), arpchecktest.HostOptions{}, mine, 5*time.Second),
		n.AddProber(arpchecktest.MAC(5), arpchecktest.HostOptions{}, mine, 5*time.Second),
		n.AddAnnouncer(arpchecktest.MAC(6), arpchecktest.HostOptions{}, v6addr, 5*time.Second),
		n.AddProber(arpchecktest.MAC(7), arpchecktest.HostOptions{}, v6addr, 5*time.Second),
		n.AddAnnouncer(ourMAC, arpchecktest.HostOptions{Name: "our own echo"}, mine, 5*time.Second),
	}
	n.Clock().Advance(5 * time.Second)
	for _, h := range hosts {
		h.Remove()
	}
	got := events(5)
	kinds := map[string][]string{}
	for _, e := range got {
		kinds[e.Kind.String()] = append(kinds[e.Kind.String()], e.Addr.String())
	}
	require.NotEmpty(t, kinds["multiple-macs"], "events %v", got)
	assert.Equal(t, "192.0.2.50", kinds["multiple-macs"][0])
	assert.ElementsMatch(t, []string{"192.0.2.1", "2001:db8::10"}, kinds["claim-on-mine"])
	assert.ElementsMatch(t, []string{"192.0.2.1", "2001:db8::10"}, kinds["probe-for-mine"], "a DAD probe for ours is heard: Monitor joined its group")
	for _, e := range got {
		if e.Kind == arpcheck.MultipleMACs {
			assert.ElementsMatch(t, []string{peerMAC.String(), thirdMAC.String()}, macStrings(e.MACs))
		}
		for _, m := range e.MACs {
			assert.NotEqual(t, ourMAC.String(), m.String(), "our own frames are never reported")
		}
	}
	assert.Zero(t, p.Stats().FramesSent, "monitoring is passive")
}

// monitorRun runs Monitor in the background and collects its events.
// It returns once Monitor is listening (it has joined the all-nodes group).
func monitorRun(t *testing.T, n *arpchecktest.Network, p *arpcheck.Prober, ep *arpchecktest.Endpoint, opts arpcheck.MonitorOptions) (events func(min int) []arpcheck.Event, stop func()) {
	var mu sync.Mutex
	var got []arpcheck.Event
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error)
	go func() {
		done <- p.Monitor(ctx, opts, func(e arpcheck.Event) {
			mu.Lock()
			got = append(got, e)
			mu.Unlock()
		})
	}()
	_, all := arpcheck.AllNodes()
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(ep.Groups(), func(g net.HardwareAddr) bool { return g.String() == all.String() })
	}, 10*time.Second, time.Millisecond, "Monitor registered")
	// events waits for at least min events, then a little longer for stragglers.
	events = func(min int) []arpcheck.Event {
		n.WaitIdle()
		assert.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= min
		}, 10*time.Second, time.Millisecond)
		time.Sleep(20 * time.Millisecond) // the Monitor goroutine hands events over
		mu.Lock()
		defer mu.Unlock()
		return append([]arpcheck.Event(nil), got...)
	}
	return events, func() { cancel(); require.NoError(t, <-done) }
}

func TestMonitorWindow(t *testing.T) {
	n, p, ep := newNet(t, arpcheck.Options{})
	events, stop := monitorRun(t, n, p, ep, arpcheck.MonitorOptions{Window: 900 * time.Millisecond})
	defer stop()
	n.AddAnnouncer(peerMAC, arpchecktest.HostOptions{}, addr10, 2*time.Second)  // 2, 4, 6 s
	n.AddAnnouncer(thirdMAC, arpchecktest.HostOptions{}, addr10, 3*time.Second) // 3, 6 s
	n.Clock().Advance(5 * time.Second)
	assert.Empty(t, events(0), "claims a second apart do not overlap a 900 ms window")
	n.Clock().Advance(time.Second)
	got := events(1)
	require.Len(t, got, 1)
	assert.Equal(t, arpcheck.MultipleMACs, got[0].Kind)
}

func TestMonitorBound(t *testing.T) {
	n, p, ep := newNet(t, arpcheck.Options{})
	events, stop := monitorRun(t, n, p, ep, arpcheck.MonitorOptions{MaxTracked: 1})
	defer stop()
	n.AddAnnouncer(arpchecktest.MAC(9), arpchecktest.HostOptions{}, addr11, 500*time.Millisecond)
	n.AddAnnouncer(peerMAC, arpchecktest.HostOptions{}, addr10, time.Second)
	n.AddAnnouncer(thirdMAC, arpchecktest.HostOptions{}, addr10, 1500*time.Millisecond)
	n.Clock().Advance(3 * time.Second)
	assert.Empty(t, events(0), "a second address is past MaxTracked and not tracked")
}
