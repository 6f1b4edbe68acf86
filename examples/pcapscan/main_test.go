package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/addrguard/addrguard/internal/testnet"
	"github.com/addrguard/addrguard/pcapscan"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The package's own recordings (see pcapscan/golden_test.go).
const golden = "../../pcapscan/testdata/"

func runArgs(t *testing.T, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, bytes.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTextAndExitStatus(t *testing.T) {
	tests := []struct {
		file  string
		code  int
		lines []string
	}{
		{"arp-two-holders.pcap", 1, []string{"critical arp-conflict ip=192.0.2.10 macs=02:a6:00:00:00:01,02:a6:00:00:00:02"}},
		{"tcp-restart.pcap", 1, []string{"warning tcp-restart ip=192.0.2.30 macs=02:a6:00:00:00:01,02:a6:00:00:00:02 flow=192.0.2.30:40000-192.0.2.10:7000"}},
		{"clean-lan.pcap", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			code, out, errOut := runArgs(t, nil, golden+tt.file)
			assert.Equal(t, tt.code, code, errOut)
			assert.Empty(t, errOut)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(tt.lines) == 0 {
				assert.Empty(t, out)
				return
			}
			require.Len(t, lines, len(tt.lines))
			for i, want := range tt.lines {
				assert.Contains(t, lines[i], want)
			}
		})
	}
}

// arpReply builds an Ethernet ARP reply from sender for ip.
func arpReply(sender net.HardwareAddr, ip netip.Addr) []byte {
	b := append(net.HardwareAddr{0x02, 0, 0, 0, 0, 0x30}, sender...)
	b = append(b, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2)
	b = append(append(b, sender...), ip.AsSlice()...)
	return append(b, 0x02, 0, 0, 0, 0, 0x30, 192, 0, 2, 30)
}

func TestInfoOnlyExitsZero(t *testing.T) {
	// An address that moved to another MAC once is reported as info, which
	// is no alarm; within a 10 s window the same two claims are none at all.
	ip := netip.MustParseAddr("192.0.2.10")
	var buf bytes.Buffer
	w, err := pcapscan.NewWriter(&buf, pcapscan.LinkEthernet, 0)
	require.NoError(t, err)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, w.WritePacket(start, arpReply(net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, ip), 0))
	require.NoError(t, w.WritePacket(start.Add(time.Minute), arpReply(net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, ip), 0))
	require.NoError(t, w.Flush())
	code, out, _ := runArgs(t, buf.Bytes(), "-")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "info arp-conflict ip=192.0.2.10")
	code, out, _ = runArgs(t, buf.Bytes(), "-window", "10s", "-")
	assert.Equal(t, 0, code, out)
	assert.Empty(t, out)
}

func TestJSONLines(t *testing.T) {
	code, out, errOut := runArgs(t, nil, "-json", golden+"request-id-retries.pcap", golden+"probe-answered.pcap")
	require.Equal(t, 1, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	var kinds []string
	for _, l := range lines {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		for _, f := range []string{"file", "kind", "severity", "first", "last", "count", "ip", "macs", "vlan", "request_id", "flow", "frames"} {
			assert.Contains(t, m, f, l)
		}
		_, err := time.Parse(time.RFC3339Nano, m["first"].(string))
		assert.NoError(t, err)
		kinds = append(kinds, m["kind"].(string))
		if m["kind"] == "request-id-repeat" {
			assert.Equal(t, "retry-7f3c", m["request_id"])
			assert.True(t, strings.HasSuffix(m["file"].(string), "request-id-retries.pcap"))
			assert.Regexp(t, `^192\.0\.2\.30:\d+-192\.0\.2\.10:8080$`, m["flow"])
		}
	}
	assert.Equal(t, []string{"request-id-repeat", "dad-probe-answered"}, kinds)
}

func TestHeaderFlag(t *testing.T) {
	code, out, _ := runArgs(t, nil, "-header", "X-Correlation-ID", golden+"request-id-retries.pcap")
	assert.Equal(t, 0, code)
	assert.Empty(t, out)
	code, out, _ = runArgs(t, nil, "-header", "X-Correlation-ID", "-header", "x-request-id", golden+"request-id-retries.pcap")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `request_id="retry-7f3c"`)
}

func TestErrorsKeepFindingsSoFar(t *testing.T) {
	data, err := os.ReadFile(golden + "arp-two-holders.pcap")
	require.NoError(t, err)
	code, out, errOut := runArgs(t, data[:len(data)-30], "-")
	assert.Equal(t, 2, code)
	assert.Contains(t, out, "arp-conflict", "findings before the damage are printed")
	assert.Contains(t, errOut, "truncated capture")
	assert.Contains(t, errOut, "at byte")

	code, _, errOut = runArgs(t, nil, filepath.Join(t.TempDir(), "missing.pcap"))
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no such file")

	code, _, errOut = runArgs(t, []byte("not a capture"), "-")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "not a pcap or pcapng capture")

	code, _, _ = runArgs(t, nil)
	assert.Equal(t, 2, code, "no file")
	code, _, _ = runArgs(t, nil, "-I", "eth0", "some.pcap")
	assert.Equal(t, 2, code, "-I with files")
	code, _, errOut = runArgs(t, nil, "-I", "no-such-interface0")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "no-such-interface0")
	code, _, _ = runArgs(t, nil, "-window", "soon", "x.pcap")
	assert.Equal(t, 2, code)
}

func TestSharedCaptures(t *testing.T) {
	path := "../../../shared/testdata/pcap/arppoison.pcapng"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("public capture %s absent (shared/ is not beside the repository)", path)
	}
	code, out, _ := runArgs(t, nil, path)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "critical arp-spoof ip=172.16.0.1 macs=00:25:b3:bf:91:ee,00:26:0b:31:07:33")
}

// TestLive runs the program with -I on a namespace bridge while two hosts
// answer arping for one address, and checks the findings and the recording.
func TestLive(t *testing.T) {
	hosts := testnet.Switch(t, 3)
	br := hosts[0].Bridge
	shared := netip.MustParsePrefix("192.0.2.10/24")
	require.NoError(t, hosts[0].AddAddr(shared))
	require.NoError(t, hosts[1].AddAddr(shared))
	require.NoError(t, hosts[2].AddAddr(netip.MustParsePrefix("192.0.2.30/24")))
	rec := filepath.Join(t.TempDir(), "live.pcap")

	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		// The socket is opened on Do's thread, inside the bridge's namespace.
		_ = br.Do(func() error {
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"-I", "br0", "-duration", "4s", "-w", rec, "-json"}, nil, &out, &errOut)
			done <- result{code, out.String(), errOut.String()}
			return nil
		})
	}()
	time.Sleep(time.Second)
	_, _ = hosts[2].Run("arping", "-c", "2", "-w", "2", "-I", "eth0", "192.0.2.10")
	r := <-done
	assert.Equal(t, 1, r.code, r.err)
	assert.Contains(t, r.out, `"kind":"arp-conflict"`)
	assert.Contains(t, r.out, `"macs":["02:a6:00:00:00:01","02:a6:00:00:00:02"]`)
	code, out, _ := runArgs(t, nil, rec)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "arp-conflict ip=192.0.2.10")
}
