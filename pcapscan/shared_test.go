package pcapscan

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The public captures under ../../shared/testdata/pcap; SOURCES.md there says
// what each shows and what tshark reports.
const sharedPcap = "../../shared/testdata/pcap"

func sharedFile(t testing.TB, name string) *os.File {
	t.Helper()
	path := filepath.Join(sharedPcap, name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("public capture %s absent (the shared/ directory is not beside the repository)", path)
	}
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func scanShared(t *testing.T, name string) ([]Finding, Stats) {
	t.Helper()
	sc := New(Options{})
	var got []Finding
	require.NoError(t, sc.Scan(sharedFile(t, name), func(f Finding) { got = append(got, f) }))
	return got, sc.Stats()
}

func TestSharedCapturesParse(t *testing.T) {
	tests := []struct {
		file    string
		format  Format
		link    LinkType
		packets int
	}{
		{"arppoison.pcapng", FormatPcapng, LinkEthernet, 165},
		{"double-vision.pcap", FormatPcap, LinkEthernet, 8},
		{"tcp_retransmissions.pcapng", FormatPcapng, LinkEthernet, 6},
		{"rst-inject-rae.pcap", FormatPcap, LinkEthernet, 9},
		{"linuxsll-arp.pcap", FormatPcap, LinkSLL, 12},
		{"linux_dlt_sll2.pcap", FormatPcap, LinkSLL2, 6},
		{"pcapng-multi-interface.pcapng", FormatPcapng, LinkEthernet, 6},
		{"timestamp_invalid_nano.pcap", FormatPcap, LinkSLL, 3},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			rd, err := NewReader(sharedFile(t, tt.file), ReaderOptions{})
			require.NoError(t, err)
			assert.Equal(t, tt.format, rd.Format())
			n := 0
			for {
				p, err := rd.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				n++
				assert.Equal(t, tt.link, p.LinkType)
				assert.Equal(t, uint64(n), p.Frame)
				var f frame
				assert.True(t, decodeLink(p.LinkType, p.Data, &f), "frame %d decodes", n)
			}
			assert.Equal(t, tt.packets, n)
		})
	}
}

func TestSharedARPPoisonSpoof(t *testing.T) {
	got, _ := scanShared(t, "arppoison.pcapng")
	require.Equal(t, []Kind{ARPSpoof}, kinds(got), "%v", got)
	f := got[0]
	assert.Equal(t, netip.MustParseAddr("172.16.0.1"), f.IP)
	assert.Equal(t, Critical, f.Severity)
	// The attacker and the real gateway.
	assert.Equal(t, []string{"00:25:b3:bf:91:ee", "00:26:0b:31:07:33"}, macStrings(f))
	assert.ElementsMatch(t, []netip.Addr{netip.MustParseAddr("74.125.95.147"), netip.MustParseAddr("12.153.20.41")}, f.Addrs)
	// Frame 54 is the first forged claim, 56 the unsolicited reply, 57 the
	// first packet sent to the attacker instead of the gateway.
	for _, n := range []uint64{54, 56, 57} {
		assert.Contains(t, f.Frames, n)
	}
	// Per-MAC lanes: the attacker claimed the address and took the traffic,
	// the gateway carried it before.
	require.Len(t, f.Evidence, 2)
	attacker, gateway := f.Evidence[0], f.Evidence[1]
	assert.Equal(t, "arp-request", attacker.Events[0].What)
	assert.Equal(t, "arp-reply", attacker.Events[1].What)
	assert.Equal(t, uint64(54), attacker.Events[0].Frame)
	assert.Equal(t, "next-hop", gateway.Events[0].What)
	assert.True(t, gateway.Last.Before(attacker.Last))
}

func TestSharedDoubleVision(t *testing.T) {
	got, st := scanShared(t, "double-vision.pcap")
	assert.Empty(t, ofKind(got, IPMACConflict))
	assert.Empty(t, ofKind(got, TCPRetransmissions))
	assert.Empty(t, got, "nothing in this capture is an anomaly")
	assert.Equal(t, uint64(4), st.Duplicates, "each of the 4 packets is seen twice")

	// Even with a threshold of one retransmission nothing is reported.
	sc := New(Options{Retransmissions: 1})
	var all []Finding
	require.NoError(t, sc.Scan(sharedFile(t, "double-vision.pcap"), func(f Finding) { all = append(all, f) }))
	assert.Empty(t, all)
}

func TestSharedTCPRetransmissions(t *testing.T) {
	got, _ := scanShared(t, "tcp_retransmissions.pcapng")
	require.Equal(t, []Kind{TCPRetransmissions}, kinds(got))
	f := got[0]
	assert.Equal(t, 5, f.Count)
	assert.Equal(t, []uint64{2, 3, 4, 5, 6}, f.Frames)
	assert.Equal(t, "10.3.30.1:1048-10.3.71.7:1043", f.Flow.String())
	assert.Equal(t, Warning, f.Severity)
}

func TestSharedRSTInject(t *testing.T) {
	// An injected RST before the SYN-ACK, data, then RSTs: no reconnect on the
	// 4-tuple, no sequence regression.
	got, _ := scanShared(t, "rst-inject-rae.pcap")
	assert.Empty(t, ofKind(got, TCPRestart))
	assert.Empty(t, ofKind(got, TCPSeqRegression))
}

func TestSharedSLL(t *testing.T) {
	// SLL carries only the sender's MAC; the ARP frames decode and a
	// repeated unanswered request is no conflict.
	got, st := scanShared(t, "linuxsll-arp.pcap")
	assert.Empty(t, got)
	assert.Zero(t, st.Undecoded)

	got, st = scanShared(t, "linux_dlt_sll2.pcap")
	assert.Empty(t, got)
	assert.Equal(t, uint64(1), st.Undecoded, "only the RARP frame is not analysed")
}

func TestSharedMultiInterfaceTimes(t *testing.T) {
	rd, err := NewReader(sharedFile(t, "pcapng-multi-interface.pcapng"), ReaderOptions{})
	require.NoError(t, err)
	var pkts []Packet
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		pkts = append(pkts, p)
	}
	require.Len(t, pkts, 6)
	assert.Equal(t, time.Unix(1767663089, 500330493).UTC(), pkts[0].Time)
	assert.Equal(t, time.Unix(1767663437, 111897000).UTC(), pkts[2].Time)
	ifaces := map[int]int{}
	for _, p := range pkts {
		ifaces[p.Interface]++
	}
	assert.Equal(t, map[int]int{0: 2, 1: 4}, ifaces)
}

func TestSharedInvalidNanoTimestamps(t *testing.T) {
	rd, err := NewReader(sharedFile(t, "timestamp_invalid_nano.pcap"), ReaderOptions{})
	require.NoError(t, err)
	var last time.Time
	var bad []bool
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		assert.False(t, p.Time.Before(last), "time never goes negative or backwards by wrapping")
		last = p.Time
		bad = append(bad, p.BadTime)
	}
	assert.Equal(t, []bool{false, true, true}, bad)
	assert.Equal(t, time.Unix(1418145370, 999999999).UTC(), last, "clamped within its second")
	_, st := scanShared(t, "timestamp_invalid_nano.pcap")
	assert.Equal(t, uint64(2), st.BadTimes)
}
