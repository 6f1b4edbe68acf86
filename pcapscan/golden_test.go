package pcapscan

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/addrguard/addrguard/internal/testnet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Golden captures: small recordings of real Linux hosts in network namespaces
// (internal/testnet), made by tcpdump on the bridge that joins them. They live
// in testdata/NAME.pcap with the scanner's findings in testdata/NAME.golden.
// TestGolden checks the committed files (no root needed); TestRecord, as root,
// records every scenario afresh and checks the recording the same way;
// go test -run TestRecord -update-golden (as root) replaces the committed
// captures and golden files with the new recordings, and
// go test -run TestGolden -update-golden rewrites the golden files from the
// committed captures.

var updateGolden = flag.Bool("update-golden", false, "TestRecord: replace testdata/*.pcap and *.golden with new recordings")

// Addresses of the scenarios: the hosts of a testnet.Switch have MACs
// 02:a6:00:00:00:01, :02, :03...
var (
	gShared = netip.MustParsePrefix("192.0.2.10/24")
	gOther  = netip.MustParsePrefix("192.0.2.20/24")
	gClient = netip.MustParsePrefix("192.0.2.30/24")
	gMAC1   = "02:a6:00:00:00:01"
	gMAC2   = "02:a6:00:00:00:02"
)

type scenario struct {
	name   string
	record func(t *testing.T, hosts []*testnet.Host) // generates the traffic
	check  func(t *testing.T, fs []Finding)          // what the scanner must find
}

var scenarios = []scenario{
	{
		name: "arp-two-holders",
		// Two hosts hold 192.0.2.10; a third asks for it with arping: both answer.
		record: func(t *testing.T, h []*testnet.Host) {
			addrs(t, h, gShared, gShared, gClient)
			// arping's exit status depends on how many of its probes were
			// answered before it stopped; what matters is who answered.
			out, _ := h[2].Run("arping", "-c", "3", "-w", "4", "-I", "eth0", gShared.Addr().String())
			require.Contains(t, out, strings.ToUpper(gMAC1), out)
			require.Contains(t, out, strings.ToUpper(gMAC2), out)
		},
		check: func(t *testing.T, fs []Finding) {
			c := ofKind(fs, ARPConflict)
			require.Len(t, c, 1, "%v", fs)
			assert.Equal(t, gShared.Addr(), c[0].IP)
			assert.Equal(t, Critical, c[0].Severity)
			assert.Contains(t, c[0].Detail, "two answers to one request")
			assert.Equal(t, []string{gMAC1, gMAC2}, macStrings(c[0]))
			assert.Empty(t, ofKind(fs, ARPSpoof))
		},
	},
	{
		name: "probe-answered",
		// A host holds 192.0.2.10; another probes for it (arping -D, RFC 5227).
		record: func(t *testing.T, h []*testnet.Host) {
			addrs(t, h, gShared, gClient)
			out, err := h[1].Run("arping", "-D", "-c", "2", "-w", "3", "-I", "eth0", gShared.Addr().String())
			require.Error(t, err, "arping -D exits 1 when the address is in use: %s", out)
		},
		check: func(t *testing.T, fs []Finding) {
			d := ofKind(fs, DADProbeAnswered)
			require.Len(t, d, 1, "%v", fs)
			assert.Equal(t, gShared.Addr(), d[0].IP)
			assert.Equal(t, []string{gMAC1, gMAC2}, macStrings(d[0]))
			assert.Equal(t, Critical, d[0].Severity)
		},
	},
	{
		name: "ping-two-macs",
		// Two hosts hold 192.0.2.10; a client's neighbour entry for it is the
		// broadcast MAC, so each echo request reaches both and both answer.
		record: func(t *testing.T, h []*testnet.Host) {
			addrs(t, h, gShared, gShared, gClient)
			run(t, h[2], "ip", "neigh", "replace", gShared.Addr().String(), "lladdr", "ff:ff:ff:ff:ff:ff", "nud", "permanent", "dev", "eth0")
			pings(t, h[2], gShared.Addr(), 3)
		},
		check: func(t *testing.T, fs []Finding) {
			e := ofKind(fs, EchoMultiResponder)
			require.Len(t, e, 1, "%v", fs)
			assert.Equal(t, gShared.Addr(), e[0].IP)
			assert.Equal(t, Critical, e[0].Severity)
			assert.Equal(t, []string{gMAC1, gMAC2}, macStrings(e[0]))
			assert.GreaterOrEqual(t, e[0].Count, 6, "three echoes, two answers each")
			assert.Len(t, ofKind(fs, IPMACConflict), 1)
		},
	},
	{
		name: "request-id-retries",
		// A Go HTTP client retries one request four times (new connections,
		// one X-Request-ID) against a Go server, among unique requests.
		record: func(t *testing.T, h []*testnet.Host) {
			addrs(t, h, gShared, gClient)
			url := serveHTTP(t, h[0])
			client := clientIn(h[1])
			for i := range 6 {
				id := fmt.Sprintf("unique-%d", i)
				if i >= 2 {
					id = "retry-7f3c"
				}
				req, err := http.NewRequest("GET", url+"/pay", nil)
				require.NoError(t, err)
				req.Header.Set("X-Request-ID", id)
				resp, err := client.Do(req)
				require.NoError(t, err)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		},
		check: func(t *testing.T, fs []Finding) {
			r := ofKind(fs, RequestIDRepeat)
			require.Len(t, r, 1, "%v", fs)
			assert.Equal(t, "retry-7f3c", r[0].RequestID)
			assert.Equal(t, 4, r[0].Count)
			assert.Equal(t, gShared.Addr(), r[0].IP)
			assert.Equal(t, []netip.Addr{gClient.Addr()}, r[0].Addrs)
			assert.Empty(t, ofKind(fs, TCPRestart))
		},
	},
	{
		name: "tcp-restart",
		// A client sends data, aborts (RST) and connects again from the same
		// port: the same 4-tuple is re-made.
		record: func(t *testing.T, h []*testnet.Host) {
			addrs(t, h, gShared, gClient)
			ln := listenIn(t, h[0], "tcp", net.JoinHostPort(gShared.Addr().String(), "7000"))
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { io.Copy(io.Discard, c); c.Close() }()
				}
			}()
			for range 2 {
				var conn *net.TCPConn
				require.NoError(t, h[1].Do(func() error {
					d := net.Dialer{LocalAddr: &net.TCPAddr{IP: gClient.Addr().AsSlice(), Port: 40000}}
					c, err := d.Dial("tcp", net.JoinHostPort(gShared.Addr().String(), "7000"))
					if err != nil {
						return err
					}
					conn = c.(*net.TCPConn)
					return nil
				}))
				_, err := conn.Write([]byte("PUT /state HTTP/1.1\r\n\r\n"))
				require.NoError(t, err)
				time.Sleep(50 * time.Millisecond)
				require.NoError(t, conn.SetLinger(0)) // close with RST
				require.NoError(t, conn.Close())
				time.Sleep(50 * time.Millisecond)
			}
		},
		check: func(t *testing.T, fs []Finding) {
			r := ofKind(fs, TCPRestart)
			require.Len(t, r, 1, "%v", fs)
			assert.Equal(t, netip.AddrPortFrom(gClient.Addr(), 40000), r[0].Flow.Client)
			assert.Equal(t, netip.AddrPortFrom(gShared.Addr(), 7000), r[0].Flow.Server)
			assert.Contains(t, r[0].Detail, "1 of 1 after a reset")
		},
	},
	{
		name: "clean-lan",
		// Three hosts with their own addresses: ARP, pings, an HTTP request.
		record: func(t *testing.T, h []*testnet.Host) {
			addrs(t, h, gShared, gOther, gClient)
			out, _ := h[2].Run("arping", "-c", "2", "-w", "3", "-I", "eth0", gShared.Addr().String())
			require.Contains(t, out, strings.ToUpper(gMAC1), out)
			pings(t, h[2], gOther.Addr(), 2)
			pings(t, h[0], gClient.Addr(), 2)
			url := serveHTTP(t, h[1])
			req, err := http.NewRequest("GET", url+"/", nil)
			require.NoError(t, err)
			req.Header.Set("X-Request-ID", "only-once")
			resp, err := clientIn(h[2]).Do(req)
			require.NoError(t, err)
			resp.Body.Close()
		},
		check: func(t *testing.T, fs []Finding) {
			assert.Empty(t, fs)
		},
	},
}

func addrs(t *testing.T, h []*testnet.Host, p ...netip.Prefix) {
	t.Helper()
	for i, pfx := range p {
		require.NoError(t, h[i].AddAddr(pfx))
	}
}

func run(t *testing.T, h *testnet.Host, name string, args ...string) {
	t.Helper()
	out, err := h.Run(name, args...)
	require.NoError(t, err, "%s %v: %s", name, args, out)
}

// pings sends n echo requests from h to dst (testnet's own ping: no ping
// binary needed), each answered.
func pings(t *testing.T, h *testnet.Host, dst netip.Addr, n int) {
	t.Helper()
	for range n {
		require.NoError(t, h.Ping(dst, 2*time.Second))
		time.Sleep(100 * time.Millisecond)
	}
}

func listenIn(t *testing.T, h *testnet.Host, network, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	require.NoError(t, h.Do(func() (err error) { ln, err = net.Listen(network, addr); return err }))
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serveHTTP runs a Go HTTP server in h's namespace and returns its URL.
func serveHTTP(t *testing.T, h *testnet.Host) string {
	t.Helper()
	addr := ""
	for _, a := range []netip.Prefix{gShared, gOther} {
		if out, _ := h.Run("ip", "-br", "addr", "show", "eth0"); strings.Contains(out, a.Addr().String()) {
			addr = a.Addr().String()
		}
	}
	ln := listenIn(t, h, "tcp", net.JoinHostPort(addr, "8080"))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// clientIn returns an HTTP client whose connections are dialled in h's
// namespace, one connection per request.
func clientIn(h *testnet.Host) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := h.Do(func() (err error) {
				var d net.Dialer
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// record runs a scenario on a fresh three-host switch with tcpdump on the
// bridge and returns the capture file's path.
func record(t *testing.T, sc scenario, dir string) string {
	t.Helper()
	hosts := testnet.Switch(t, 3)
	br := hosts[0].Bridge
	path := filepath.Join(dir, sc.name+".pcap")
	stop := tcpdump(t, br, path)
	sc.record(t, hosts)
	time.Sleep(200 * time.Millisecond) // the last answers
	stop()
	return path
}

// tcpdump starts tcpdump on the host's interface writing to path, waits until
// it listens, and returns a function that stops it and waits for the file.
func tcpdump(t *testing.T, h *testnet.Host, path string) func() {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("needs tcpdump (apt-get install -y tcpdump) to record captures")
	}
	cmd := h.Command(context.Background(), "tcpdump", "-i", h.Ifname, "--immediate-mode", "-U", "-n", "-s", "0", "-w", path)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	ready := make(chan struct{})
	var tail bytes.Buffer
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.OnceFunc(func() { close(ready) })
		for sc.Scan() {
			mu.Lock()
			tail.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "listening on") {
				once()
			}
		}
		once()
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("tcpdump did not start listening within 10 s")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		mu.Lock()
		t.Logf("tcpdump: %s", tail.String())
		mu.Unlock()
	}
	t.Cleanup(stop)
	return stop
}

func scanFile(t *testing.T, path string) []Finding {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []Finding
	require.NoError(t, New(Options{}).Scan(f, func(fd Finding) { out = append(out, fd) }))
	return out
}

// goldenText renders findings as the golden files hold them: one line each
// with kind, severity, address, MACs, request ID and frames, sorted.
func goldenText(fs []Finding) string {
	var lines []string
	for _, f := range fs {
		lines = append(lines, fmt.Sprintf("%s %s ip=%v macs=%s request_id=%q flow=%s count=%d frames=%v",
			f.Kind, f.Severity, f.IP, strings.Join(macStrings(f), ","), f.RequestID, f.Flow, f.Count, f.Frames))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

func TestGolden(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			path := filepath.Join("testdata", sc.name+".pcap")
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				t.Skipf("%s not recorded yet: run go test -run TestRecord -update-golden as root", path)
			}
			fs := scanFile(t, path)
			sc.check(t, fs)
			golden := filepath.Join("testdata", sc.name+".golden")
			if *updateGolden {
				// A run that writes the golden file does not also compare
				// with it: that would compare the output with itself.
				require.NoError(t, os.WriteFile(golden, []byte(goldenText(fs)), 0o644))
				t.Skipf("rewrote %s; run again without -update-golden to check it", golden)
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), goldenText(fs))
		})
	}
}

func TestRecord(t *testing.T) {
	testnet.Require(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := record(t, sc, dir)
			fs := scanFile(t, path)
			sc.check(t, fs)
			if *updateGolden && !t.Failed() {
				data, err := os.ReadFile(path)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join("testdata", sc.name+".pcap"), data, 0o644))
				require.NoError(t, os.WriteFile(filepath.Join("testdata", sc.name+".golden"), []byte(goldenText(fs)), 0o644))
			}
		})
	}
}
