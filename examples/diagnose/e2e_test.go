package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/internal/testnet"
)

// runBinary runs the built program and returns its exit status and output.
func runBinary(t *testing.T, cmd *exec.Cmd) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	require.NoError(t, err)
	return -1, "", ""
}

// TestEndToEnd runs the built binary from another directory: the bundled
// samples are inside it, the report is the golden one, and the exit status
// says there are incidents.
func TestEndToEnd(t *testing.T) {
	bin := builtBinary(t)
	want, err := os.ReadFile(filepath.Join("testdata", "golden", "report.txt"))
	require.NoError(t, err)
	tmp := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir() // no testdata there: the samples are embedded
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	code, out, errs := runBinary(t, cmd)
	assert.Equal(t, exitIncidents, code, errs)
	assert.Equal(t, string(want), out)
	assert.Empty(t, errs, "no progress on a pipe, no warnings")
	ents, err := os.ReadDir(cmd.Dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing left behind in the working directory")
	ents, err = os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, ents, "the samples extracted to a temporary directory are removed")

	s := copySamples(t)
	html := filepath.Join(t.TempDir(), "r.html")
	code, out, errs = runBinary(t, exec.Command(bin, append(sampleArgs(s), "-tz", "UTC", "-json", "-html", html)...))
	assert.Equal(t, exitIncidents, code, errs)
	var rep Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, "inputs", rep.Source)
	assert.Equal(t, "198.51.100.77", rep.Incidents[0].Subject)
	fi, err := os.Stat(html)
	require.NoError(t, err)
	assert.Greater(t, fi.Size(), int64(10000))

	code, out, errs = runBinary(t, exec.Command(bin, "-pool", filepath.Join(s, "east-pools.yaml")))
	assert.Equal(t, exitClean, code, errs)
	assert.Contains(t, out, "no incident found")

	code, _, errs = runBinary(t, exec.Command(bin, "-pcap", filepath.Join(s, "nope.pcap")))
	assert.Equal(t, exitError, code)
	assert.Equal(t, "diagnose: -pcap "+filepath.Join(s, "nope.pcap")+": no such file or directory\n", errs)
}

// TestProbeNeedsPrivilege: a prober that cannot open its raw socket gives
// the clear message, exit 2.
func TestProbeNeedsPrivilege(t *testing.T) {
	denied := func(string, arpcheck.Options) (*arpcheck.Prober, error) {
		return nil, fmt.Errorf("arpcheck: open packet socket on eth0: %w", &os.SyscallError{Syscall: "socket", Err: syscall.EPERM})
	}
	code, _, errs := runEnv(t, env{open: denied}, "-I", "eth0", "-probe", "192.0.2.10")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errs, "diagnose: -I eth0: probing opens a raw socket, which needs root or CAP_NET_RAW: run diagnose with sudo")
}

// TestProbeAsNobody runs the binary as an unprivileged user inside a test
// namespace, where eth0 exists: the real permission error becomes the
// clear message.
func TestProbeAsNobody(t *testing.T) {
	testnet.Require(t)
	bin := builtBinary(t)
	require.NoError(t, os.Chmod(filepath.Dir(bin), 0o755))
	h := testnet.Switch(t, 1)[0]
	var code int
	var errs string
	require.NoError(t, h.Do(func() error {
		// Forked from this thread, the child starts in h's namespace.
		cmd := exec.Command(bin, "-I", "eth0", "-probe", "192.0.2.10", "-timing", "fast")
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		code, _, errs = runBinary(t, cmd)
		return nil
	}))
	assert.Equal(t, exitError, code, errs)
	assert.Contains(t, errs, "-I eth0: probing opens a raw socket, which needs root or CAP_NET_RAW")
}

// TestProbeLive: as root, two namespaces hold 198.51.100.77 and diagnose
// probes from a third. With the pools it joins the live answer to the
// overlap; without -probe it probes the addresses of the incidents found.
func TestProbeLive(t *testing.T) {
	testnet.Require(t)
	bin := builtBinary(t)
	hosts := testnet.Switch(t, 3)
	require.NoError(t, hosts[0].AddAddr(sharedAddr))
	require.NoError(t, hosts[1].AddAddr(sharedAddr))
	s := copySamples(t)
	probeFrom := func(args ...string) (int, Report, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := hosts[2].Command(ctx, bin, append(args, "-I", "eth0", "-timing", "fast", "-json")...)
		code, out, errs := runBinary(t, cmd)
		var rep Report
		require.NoError(t, json.Unmarshal([]byte(out), &rep), "%s\n%s", out, errs)
		return code, rep, errs
	}

	code, rep, errs := probeFrom("-probe", "198.51.100.77", "-probe", "198.51.100.76/31", "-pool", filepath.Join(s, "east-pools.yaml"), "-pool", filepath.Join(s, "west-pools.yaml"))
	assert.Equal(t, exitIncidents, code, errs)
	require.NotEmpty(t, rep.Incidents)
	inc := rep.Incidents[0]
	assert.Equal(t, "198.51.100.77", inc.Subject)
	assert.Equal(t, Critical, inc.Severity)
	assert.Equal(t, High, inc.Confidence, "two live holders and the overlap")
	assert.Equal(t, []string{eastMAC, westMAC}, inc.MACs)
	assert.Equal(t, []string{"probe", "pools"}, inc.Sources)
	assert.Contains(t, inc.Evidence[0].Text, "live probe: answered by "+eastMAC+", "+westMAC)
	require.Len(t, inc.Timeline, 2)
	assert.Equal(t, "live", inc.Timeline[0].Marks[0].Kind)
	probeInput := rep.Inputs[len(rep.Inputs)-1]
	assert.Equal(t, "probe", probeInput.Kind)
	assert.Contains(t, probeInput.Summary, "2 addresses probed from 02:a6:00:00:00:03: 1 in use, 1 free, 0 unknown")

	// No -probe: the capture's conflicted address is probed.
	code, rep, errs = probeFrom("-pcap", filepath.Join(s, "capture.pcap"))
	assert.Equal(t, exitIncidents, code, errs)
	assert.Equal(t, []string{"capture", "probe"}, rep.Incidents[0].Sources)
	assert.Contains(t, rep.Inputs[len(rep.Inputs)-1].Summary, "1 addresses probed")

	// One holder left: the live probe sees one MAC, and says so.
	require.NoError(t, hosts[1].DelAddr(sharedAddr))
	code, rep, errs = probeFrom("-pcap", filepath.Join(s, "capture.pcap"))
	assert.Equal(t, exitIncidents, code, errs)
	var live []string
	for _, e := range rep.Incidents[0].Evidence {
		if e.Source == "probe" {
			live = append(live, e.Text)
		}
	}
	assert.Equal(t, []string{"live probe: answered by " + eastMAC}, live)
}

// TestProgressOnTerminal gives the binary a pseudo-terminal as stderr and a
// log over the progress threshold: progress lines appear there, and not on
// a pipe.
func TestProgressOnTerminal(t *testing.T) {
	bin := builtBinary(t)
	dir := t.TempDir()
	line := "2026-03-02T09:00:00.000000+00:00 web1 sshd[7]: Accepted publickey for deploy from 198.51.100.4 port 50000 ssh2\n"
	big := filepath.Join(dir, "big.log")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte(line), progressMin/len(line)+2000), 0o644))

	master, slave := openPTY(t)
	cmd := exec.Command(bin, "-log", big, "-tz", "UTC")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, slave
	require.NoError(t, cmd.Start())
	slave.Close()
	var tty bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := master.Read(buf)
		tty.Write(buf[:n])
		if err != nil { // EIO once the child has closed the terminal
			break
		}
	}
	err := cmd.Wait()
	require.NoError(t, err, "exit 0: no incident in a log of working-hours logins\n%s", tty.String())
	assert.Contains(t, tty.String(), big+": 100% (", "progress ends at 100%")
	assert.Contains(t, out.String(), "no incident found")

	cmd = exec.Command(bin, "-log", big, "-tz", "UTC")
	code, _, errs := runBinary(t, cmd)
	assert.Equal(t, exitClean, code)
	assert.NotContains(t, errs, "%", "no progress on a pipe")
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	_, _, e := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock)))
	require.Zero(t, e, "unlockpt")
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	return master, slave
}
