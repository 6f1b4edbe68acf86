package pcapscan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// declineCapture holds a DHCP decline (a finding emitted at once) followed by
// n frames of filler.
func declineCapture(t *testing.T, n int) *capture {
	c := newCapture(t)
	c.add(0, eth(bcast, macC, etherIPv4, ipv4(netip.IPv4Unspecified(), ip4("255.255.255.255"), 64, 2, protoUDP,
		udpDgram(68, 67, dhcpMsg(1, dhcpDecline, 1, macC, netip.Addr{}, ipGW, ipX)))))
	for i := range n {
		c.add(time.Duration(i+1)*ms, eth(macB, macA, etherIPv4, ipv4(ipX, ipC, 64, uint16(i), protoUDP, udpDgram(1, 2, make([]byte, 1000)))))
	}
	return c
}

func TestScanSources(t *testing.T) {
	c := declineCapture(t, 50)
	data := c.pcap()
	path := filepath.Join(t.TempDir(), "c.pcap")
	require.NoError(t, os.WriteFile(path, data, 0o644))

	count := func(scan func(sc *Scanner, fn func(Finding)) error) (int, Stats) {
		sc := New(Options{})
		n := 0
		require.NoError(t, scan(sc, func(Finding) { n++ }))
		return n, sc.Stats()
	}
	// A file, a pipe like stdin, bytes in memory.
	nFile, stFile := count(func(sc *Scanner, fn func(Finding)) error {
		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		return sc.Scan(f, fn)
	})
	nPipe, stPipe := count(func(sc *Scanner, fn func(Finding)) error {
		pr, pw, err := os.Pipe()
		require.NoError(t, err)
		go func() { pw.Write(data); pw.Close() }()
		defer pr.Close()
		return sc.Scan(pr, fn)
	})
	nMem, stMem := count(func(sc *Scanner, fn func(Finding)) error { return sc.Scan(bytes.NewReader(data), fn) })
	assert.Equal(t, 1, nFile)
	assert.Equal(t, nFile, nPipe)
	assert.Equal(t, nFile, nMem)
	assert.Equal(t, stFile, stPipe)
	assert.Equal(t, stFile, stMem)
	assert.Equal(t, uint64(51), stFile.Packets)
}

func TestScanFileShrinksWhileScanned(t *testing.T) {
	c := declineCapture(t, 2000) // about 2 MB
	path := filepath.Join(t.TempDir(), "c.pcap")
	require.NoError(t, os.WriteFile(path, c.pcap(), 0o644))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := New(Options{})
	err = sc.Scan(f, func(fd Finding) {
		if fd.Kind == DHCPDecline {
			require.NoError(t, os.Truncate(path, 4096))
		}
	})
	// The frames already read are analysed; the scan then ends with an error
	// naming where the input stopped, not a crash.
	require.ErrorIs(t, err, ErrTruncated)
	var fe *FormatError
	require.ErrorAs(t, err, &fe)
	assert.Positive(t, fe.Frame)
}

func TestScanProgressAndCancel(t *testing.T) {
	c := declineCapture(t, 20000) // about 20 MB: more than one progress step
	data := c.pcap()
	var calls [][2]int64
	sc := New(Options{Progress: func(read, total int64) { calls = append(calls, [2]int64{read, total}) }})
	require.NoError(t, sc.Scan(bytes.NewReader(data), func(Finding) {}))
	require.GreaterOrEqual(t, len(calls), 2)
	last := calls[len(calls)-1]
	assert.Equal(t, [2]int64{int64(len(data)), int64(len(data))}, last)
	for i := 1; i < len(calls); i++ {
		assert.Greater(t, calls[i][0], calls[i-1][0])
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var got []Finding
	err := New(Options{}).ScanContext(ctx, bytes.NewReader(data), func(f Finding) { got = append(got, f) })
	assert.ErrorIs(t, err, context.Canceled)
	assert.Len(t, got, 1, "the findings so far are still reported")
}

func TestScanTruncatedReportsFindingsSoFar(t *testing.T) {
	c := newCapture(t)
	c.add(0, arpFrame(1, macC, ipC, ipX, mac{}))
	c.add(ms, arpFrame(2, macA, ipX, ipC, macC))
	c.add(2*ms, arpFrame(2, macB, ipX, ipC, macC))
	c.add(3*ms, arpFrame(2, macB, ipX, ipC, macC))
	data := c.pcap()
	var got []Finding
	err := New(Options{}).Scan(bytes.NewReader(data[:len(data)-5]), func(f Finding) { got = append(got, f) })
	var fe *FormatError
	require.ErrorAs(t, err, &fe)
	assert.ErrorIs(t, err, ErrTruncated)
	assert.Equal(t, uint64(4), fe.Frame)
	assert.Equal(t, []Kind{ARPConflict}, kinds(got))
	assert.Equal(t, []uint64{2, 3}, got[0].Frames)
}

func TestFindingJSON(t *testing.T) {
	c := newCapture(t)
	handshake(c, 0, 100)
	c.add(10*ms, tcpFrame(ipC, ipX, 40000, 443, 101, 9001, tcpACK|tcpPSH, []byte("hello"), 4))
	c.add(20*ms, tcpFrame(ipC, ipX, 40000, 443, 106, 9001, tcpRST|tcpACK, nil, 5))
	c.add(time.Second, tcpFrame(ipC, ipX, 40000, 443, 5000, 0, tcpSYN, nil, 7))
	got := c.scan(Options{})
	require.Len(t, got, 1)
	out, err := json.Marshal(got[0])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m))
	for _, field := range []string{"kind", "severity", "first", "last", "count", "ip", "macs", "vlan", "flow", "frames"} {
		assert.Contains(t, m, field)
	}
	assert.Equal(t, "tcp-restart", m["kind"])
	assert.Equal(t, "warning", m["severity"])
	assert.Equal(t, "192.0.2.30:40000-192.0.2.10:443", m["flow"])
	assert.Equal(t, "2026-01-02T03:04:06Z", m["first"])
	var back Finding
	require.NoError(t, json.Unmarshal(out, &back))
	assert.Equal(t, got[0].Flow, back.Flow)
	assert.Equal(t, got[0].IP, back.IP)
	assert.True(t, got[0].First.Equal(back.First))
	assert.Equal(t, got[0].Frames, back.Frames)

	var bad Finding
	assert.Error(t, json.Unmarshal([]byte(`{"severity":"dire"}`), &bad))
	assert.Error(t, json.Unmarshal([]byte(`{"flow":"nope"}`), &bad))
	assert.Error(t, json.Unmarshal([]byte(`{"ip":"x"}`), &bad))
	assert.Error(t, json.Unmarshal([]byte(`{"macs":["zz"]}`), &bad))
}

func TestObserveZeroAllocs(t *testing.T) {
	// Every decoder and detector on the path of common traffic, once the
	// entries exist: no allocation per packet. Each round is new traffic
	// (sequence numbers move on, a new request ID), two seconds later.
	v6a, v6b := netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8::30")
	round := func(r int) [][]byte {
		req := httpGet(fmt.Sprintf("zero-allocs-%d", r))
		seq := 1000 + uint32(r)*uint32(len(req))
		return [][]byte{
			arpFrame(1, macC, ipC, ipX, mac{}),
			arpFrame(2, macA, ipX, ipC, macC),
			tcpFrame(ipC, ipX, 40000, 80, seq, 1, tcpACK|tcpPSH, req, uint16(r)),
			tcpFrame(ipX, ipC, 80, 40000, 1, seq+uint32(len(req)), tcpACK, nil, uint16(r)),
			eth(macA, macC, etherIPv4, ipv4(ipC, ipX, 64, uint16(r), protoUDP, udpDgram(5353, 53, []byte("query")))),
			eth(macA, macC, etherIPv4, ipv4(ipC, ipX, 64, uint16(r), protoICMP, icmpEcho(8, 1, uint16(r)))),
			eth(macC, macA, etherIPv4, ipv4(ipX, ipC, 64, uint16(r), protoICMP, icmpEcho(0, 1, uint16(r)))),
			eth(macA, macC, etherIPv6, ipv6(v6b, v6a, 64, protoTCP, tcpSeg(40001, 443, 5+uint32(r)*4, 6, tcpACK, []byte("data"))), 20),
			eth(macC, macGW, etherIPv4, ipv4(ipR1, ipC, 57, uint16(r), protoUDP, udpDgram(53, 5353, []byte("answer")))),
		}
	}
	const runs = 50
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rounds [][]Packet
	for r := range runs + 2 {
		var pkts []Packet
		for i, f := range round(r) {
			pkts = append(pkts, Packet{Data: f, Length: len(f), LinkType: LinkEthernet,
				Frame: uint64(r*10 + i + 1), Time: start.Add(time.Duration(r) * 2 * time.Second)})
		}
		rounds = append(rounds, pkts)
	}
	sc := New(Options{})
	var found int
	emit := func(Finding) { found++ }
	next := 0
	observeRound := func() {
		for i := range rounds[next] {
			sc.Observe(&rounds[next][i], emit)
		}
		next++
	}
	observeRound()
	assert.Zero(t, testing.AllocsPerRun(runs, observeRound))
	assert.Equal(t, runs+2, next)
	assert.Zero(t, sc.Stats().Undecoded)
	assert.Zero(t, sc.Stats().Duplicates)
	assert.Zero(t, found, "nothing to report yet")
}
