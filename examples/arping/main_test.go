package main

import (
	"bytes"
	"context"
	"encoding/json"

	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/arpcheck/arpchecktest"
	"github.com/addrguard/addrguard/internal/testnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	us   = arpchecktest.MAC(1)
	peer = arpchecktest.MAC(2)
)

// fakeLink is a segment where 192.0.2.10 is held by peer.
func fakeLink(t *testing.T) (*arpchecktest.Network, opener) {
	n := arpchecktest.NewNetwork(arpchecktest.Options{})
	t.Cleanup(n.Close)
	n.AddHolder(peer, arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.10"))
	return n, func(ifname string, opts arpcheck.Options) (*arpcheck.Prober, []netip.Addr, error) {
		p, _, err := n.NewProber(ifname, us, opts)
		return p, []netip.Addr{netip.MustParseAddr("192.0.2.1")}, err
	}
}

func runArgs(t *testing.T, open opener, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb, open)
	return code, out.String(), errb.String()
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

func TestProbeText(t *testing.T) {
	_, open := fakeLink(t)
	code, out, _ := runArgs(t, open, "-I", "eth0", "192.0.2.10", "192.0.2.11")
	assert.Equal(t, exitInUse, code)
	assert.ElementsMatch(t, []string{"192.0.2.10 in use by 02:00:00:00:00:02", "192.0.2.11 free"}, lines(out))

	code, out, _ = runArgs(t, open, "-I", "eth0", "-timing", "fast", "192.0.2.16/29")
	assert.Equal(t, exitFree, code)
	assert.Len(t, lines(out), 6, "each host address of the prefix")
}

func TestProbeJSON(t *testing.T) {
	_, open := fakeLink(t)
	code, out, _ := runArgs(t, open, "-I", "eth0", "-timing", "fast", "-json", "192.0.2.8/30", "192.0.2.11")
	assert.Equal(t, exitInUse, code)
	got := map[string]map[string]any{}
	for _, l := range lines(out) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		got[m["addr"].(string)] = m
	}
	require.Len(t, got, 3, "192.0.2.9 and .10 from the prefix, .11 alone")
	assert.Equal(t, "in_use", got["192.0.2.10"]["status"])
	holders := got["192.0.2.10"]["holders"].([]any)
	assert.Equal(t, "02:00:00:00:00:02", holders[0].(map[string]any)["mac"])
	assert.Equal(t, "free", got["192.0.2.9"]["status"])
	assert.Equal(t, "free", got["192.0.2.11"]["status"])
}

func TestFirst(t *testing.T) {
	_, open := fakeLink(t)
	code, out, _ := runArgs(t, open, "-I", "eth0", "-timing", "fast", "-first", "192.0.2.0/28")
	assert.Equal(t, exitInUse, code)
	ls := lines(out)
	assert.Equal(t, "192.0.2.10 in use by 02:00:00:00:00:02", ls[0])
	for _, l := range ls[1:] {
		assert.Contains(t, l, "unknown: stopped after a conflict")
	}
}

func TestTimeoutIsUnknown(t *testing.T) {
	n, open := fakeLink(t)
	n.Clock().SetAuto(false) // the schedule never ends
	code, out, errs := runArgs(t, open, "-I", "eth0", "-timeout", "50ms", "192.0.2.11")
	assert.Equal(t, exitError, code)
	assert.Contains(t, out, "192.0.2.11 unknown: context deadline exceeded")
	assert.Contains(t, errs, "deadline exceeded")
}

func TestAnnounce(t *testing.T) {
	n, open := fakeLink(t)
	code, out, _ := runArgs(t, open, "-I", "eth0", "-announce", "192.0.2.99")
	assert.Equal(t, exitFree, code)
	assert.Equal(t, "192.0.2.99 announced 2 times from 02:00:00:00:00:01\n", out)
	for _, f := range n.FramesFrom(us) {
		pf, err := f.Parse()
		require.NoError(t, err)
		assert.True(t, pf.IsAnnouncement())
	}
	assert.Len(t, n.FramesFrom(us), 2)
}

func TestMonitor(t *testing.T) {
	n, open := fakeLink(t)
	intruder := n.AddAnnouncer(arpchecktest.MAC(3), arpchecktest.HostOptions{}, netip.MustParseAddr("192.0.2.1"), time.Second)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped) // fake time passes, an announcement a second, until the test ends
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				n.Clock().Advance(time.Second)
			}
		}
	}()
	code, out, _ := runArgs(t, open, "-I", "eth0", "-monitor", "-duration", "1s", "-json")
	close(stop)
	<-stopped
	intruder.Remove()
	assert.Equal(t, exitInUse, code)
	var e map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines(out)[0]), &e))
	assert.Equal(t, "claim-on-mine", e["kind"])
	assert.Equal(t, []any{"02:00:00:00:00:03"}, e["macs"])

	code, out, _ = runArgs(t, open, "-I", "eth0", "-monitor", "-duration", "50ms")
	assert.Equal(t, exitFree, code, "nothing seen")
	assert.Empty(t, out)
}

func TestUsageErrors(t *testing.T) {
	_, open := fakeLink(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"192.0.2.1"}, "-I IFACE is required"},
		{[]string{"-I", "eth0"}, "no address or prefix"},
		{[]string{"-I", "eth0", "-timing", "slow", "192.0.2.1"}, `-timing "slow"`},
		{[]string{"-I", "eth0", "192.0.2.1", "192.0.2.300"}, `argument 2 ("192.0.2.300")`},
		{[]string{"-I", "eth0", "192.0.2.0/33"}, `argument 1 ("192.0.2.0/33")`},
		{[]string{"-I", "eth0", "-announce", "x"}, `-announce "x"`},
		{[]string{"-I", "eth0", "-monitor", "192.0.2.1"}, "-monitor takes no addresses"},
		{[]string{"-I", "eth0", "224.0.0.1"}, "multicast"},
	}
	for _, tt := range tests {
		code, _, errs := runArgs(t, open, tt.args...)
		assert.Equal(t, exitError, code, tt.args)
		assert.Contains(t, errs, tt.want, tt.args)
	}
	code, _, _ := runArgs(t, open, "-h")
	assert.Equal(t, exitFree, code)
	code, _, errs := runArgs(t, func(string, arpcheck.Options) (*arpcheck.Prober, []netip.Addr, error) {
		return nil, nil, arpcheck.ErrNotARPable
	}, "-I", "lo", "192.0.2.1")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errs, "lo: interface does not do ARP")
}

// As root: the real program on a real (namespaced) link, against the kernel.
func TestRootRealLink(t *testing.T) {
	a, b := testnet.Pair(t)
	require.NoError(t, b.AddAddr(netip.MustParsePrefix("192.0.2.2/24")))
	open := func(ifname string, opts arpcheck.Options) (p *arpcheck.Prober, mine []netip.Addr, err error) {
		err = a.Do(func() error {
			var err error
			p, mine, err = openInterface(ifname, opts)
			return err
		})
		return p, mine, err
	}
	code, out, errs := runArgs(t, open, "-I", "eth0", "-timing", "fast", "192.0.2.2", "192.0.2.3")
	assert.Equal(t, exitInUse, code, errs)
	assert.ElementsMatch(t, []string{"192.0.2.2 in use by " + b.MAC.String(), "192.0.2.3 free"}, lines(out))
	code, _, errs = runArgs(t, open, "-I", "nosuch0", "192.0.2.3")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errs, "nosuch0")
}
