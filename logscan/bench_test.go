package logscan

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/addrguard/addrguard/internal/cputime"
)

// genAuthLog writes a synthetic auth.log of about size bytes in which the
// given share of lines are sshd authentication failures (half "Failed
// password for invalid user", a quarter "Failed password for root", a
// quarter other failure families); the rest is the usual traffic of a
// server: cron and systemd sessions, accepted logins, pam session lines,
// kernel messages. Sources follow a skewed distribution over 4096 addresses
// in the documentation ranges. It returns the number of lines.
func genAuthLog(w io.Writer, size int, failShare float64, seed uint64) int {
	rng := rand.New(rand.NewPCG(seed, 7))
	bw := bufio.NewWriterSize(w, 1<<16)
	defer bw.Flush()
	users := []string{"admin", "test", "oracle", "ubuntu", "user", "guest", "postgres", "git", "ftp", "pi", "support", "deploy"}
	ip := func() string {
		n := int(rng.ExpFloat64()*300) % 4096
		return fmt.Sprintf("%d.%d.%d.%d", []int{192, 198, 203}[n%3], []int{0, 51, 0}[n%3], []int{2, 100, 113}[n%3], n%250+1)
	}
	t := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	written, lines := 0, 0
	var b []byte
	for written < size {
		t = t.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
		b = b[:0]
		b = t.AppendFormat(b, time.Stamp)
		pid := 1000 + rng.IntN(60000)
		if rng.Float64() < failShare {
			switch k := rng.IntN(8); {
			case k < 4:
				b = fmt.Appendf(b, " web1 sshd[%d]: Failed password for invalid user %s from %s port %d ssh2", pid, users[rng.IntN(len(users))], ip(), 1024+rng.IntN(60000))
			case k < 6:
				b = fmt.Appendf(b, " web1 sshd[%d]: Failed password for root from %s port %d ssh2", pid, ip(), 1024+rng.IntN(60000))
			case k < 7:
				b = fmt.Appendf(b, " web1 sshd[%d]: Invalid user %s from %s port %d", pid, users[rng.IntN(len(users))], ip(), 1024+rng.IntN(60000))
			default:
				b = fmt.Appendf(b, " web1 sshd[%d]: error: maximum authentication attempts exceeded for root from %s port %d ssh2 [preauth]", pid, ip(), 1024+rng.IntN(60000))
			}
		} else {
			switch k := rng.IntN(10); {
			case k < 3:
				b = fmt.Appendf(b, " web1 CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", pid)
			case k < 5:
				b = fmt.Appendf(b, " web1 CRON[%d]: pam_unix(cron:session): session closed for user root", pid)
			case k < 6:
				b = fmt.Appendf(b, " web1 systemd-logind[712]: New session %d of user deploy.", pid)
			case k < 7:
				b = fmt.Appendf(b, " web1 sshd[%d]: Accepted publickey for deploy from 198.51.100.%d port %d ssh2: ED25519 SHA256:Zm9vYmFyYmF6", pid, 1+rng.IntN(9), 1024+rng.IntN(60000))
			case k < 8:
				b = fmt.Appendf(b, " web1 sshd[%d]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)", pid)
			case k < 9:
				b = fmt.Appendf(b, " web1 sudo[%d]:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart app", pid)
			default:
				b = fmt.Appendf(b, " web1 sshd[%d]: Received disconnect from 198.51.100.%d port %d:11: disconnected by user", pid, 1+rng.IntN(9), 1024+rng.IntN(60000))
			}
		}
		b = append(b, '\n')
		bw.Write(b)
		written += len(b)
		lines++
	}
	return lines
}

type benchFile struct {
	path  string
	size  int64
	lines int
}

var (
	benchFiles = map[string]benchFile{}
	benchDir   string // removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// authLogFile generates (once per process) an auth.log mix in a temporary
// directory shared by the benchmarks that compare on it.
func authLogFile(b *testing.B, failShare float64) benchFile {
	name := fmt.Sprintf("auth-%02.0f.log", failShare*100)
	if f, ok := benchFiles[name]; ok {
		return f
	}
	if benchDir == "" {
		dir, err := os.MkdirTemp("", "logscan-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir
	}
	p := filepath.Join(benchDir, name)
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	lines := genAuthLog(f, 64<<20, failShare, 1)
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	bf := benchFile{path: p, size: st.Size(), lines: lines}
	benchFiles[name] = bf
	return bf
}

var mixes = []struct {
	name  string
	share float64
}{{"fail22", 0.22}, {"fail57", 0.57}}

func reportLines(b *testing.B, lines int) {
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// cpuMeter measures the CPU time (user + system, of this process and of the
// children it waited for) that a benchmark's loop used. On a shared machine
// other processes stretch wall time far more than CPU time, so cpu-MB/s and
// cpu-lines/s compare two tools more fairly than MB/s; cpu-ns/op is the CPU
// time of one operation.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

// startCPU is called right before the benchmark loop.
func startCPU() cpuMeter {
	d, ok := cputime.WithChildren()
	return cpuMeter{d, ok}
}

// report is called right after the loop; bytes and lines are per
// operation (0: not reported).
func (m cpuMeter) report(b *testing.B, bytes int64, lines int) {
	end, ok := cputime.WithChildren()
	if !m.ok || !ok || b.N == 0 || end <= m.start {
		return
	}
	sec := (end - m.start).Seconds()
	b.ReportMetric(sec*1e9/float64(b.N), "cpu-ns/op")
	if bytes > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/sec/1e6, "cpu-MB/s")
	}
	if lines > 0 {
		b.ReportMetric(float64(lines)*float64(b.N)/sec, "cpu-lines/s")
	}
}

// BenchmarkTopSources is the pipe's job done right, on the same files as
// BenchmarkPeerShellPipe.
func BenchmarkTopSources(b *testing.B) {
	for _, mix := range mixes {
		b.Run(mix.name, func(b *testing.B) {
			bf := authLogFile(b, mix.share)
			b.SetBytes(bf.size)
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				f, err := os.Open(bf.path)
				if err != nil {
					b.Fatal(err)
				}
				rows, err := TopSources(b.Context(), f, Options{Location: time.UTC}, 0)
				f.Close()
				if err != nil || len(rows) == 0 {
					b.Fatal(err, len(rows))
				}
			}
			cpu.report(b, bf.size, bf.lines)
			reportLines(b, bf.lines)
		})
	}
}

// BenchmarkAnalyze runs every rule.
func BenchmarkAnalyze(b *testing.B) {
	for _, mix := range mixes {
		b.Run(mix.name, func(b *testing.B) {
			bf := authLogFile(b, mix.share)
			b.SetBytes(bf.size)
			b.ReportAllocs()
			an := New(Options{Location: time.UTC, Reference: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
			cpu := startCPU()
			for b.Loop() {
				f, err := os.Open(bf.path)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				err = an.Scan(f, func(Finding) { n++ })
				f.Close()
				if err != nil || n == 0 {
					b.Fatal(err, n)
				}
			}
			cpu.report(b, bf.size, bf.lines)
			reportLines(b, bf.lines)
		})
	}
}

// BenchmarkPeerShellPipe runs the classic pipe on the same files:
// grep "Failed password" FILE | awk '{print $11}' | sort | uniq -c | sort -nr
func BenchmarkPeerShellPipe(b *testing.B) {
	for _, tool := range []string{"sh", "grep", "awk", "sort", "uniq"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s is not installed: %v", tool, err)
		}
	}
	for _, mix := range mixes {
		b.Run(mix.name, func(b *testing.B) {
			bf := authLogFile(b, mix.share)
			b.SetBytes(bf.size)
			cpu := startCPU()
			for b.Loop() {
				cmd := exec.Command("sh", "-c", `grep "Failed password" "$1" | awk '{print $11}' | sort | uniq -c | sort -nr`, "sh", bf.path)
				cmd.Env = append(os.Environ(), "LC_ALL=C")
				out, err := cmd.Output()
				if err != nil || len(out) == 0 {
					b.Fatal(err, len(out))
				}
			}
			cpu.report(b, bf.size, bf.lines)
			reportLines(b, bf.lines)
		})
	}
}

// genJournal writes journalctl -o json objects as systemd writes them
// (about 1 KiB each, most fields skipped by the parser).
func genJournal(size int) ([]byte, int) {
	var buf bytes.Buffer
	rng := rand.New(rand.NewPCG(3, 4))
	lines := 0
	for buf.Len() < size {
		us := 1772442000000000 + int64(lines)*250000
		msg := fmt.Sprintf("Failed password for invalid user admin from 203.0.113.%d port %d ssh2", 1+rng.IntN(250), 1024+rng.IntN(60000))
		if lines%3 != 0 {
			msg = "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
		}
		fmt.Fprintf(&buf, `{"__CURSOR":"s=0123456789abcdef0123456789abcdef;i=%x;b=fedcba9876543210fedcba9876543210;m=%x;t=%x;x=0011223344556677","__REALTIME_TIMESTAMP":"%d","__MONOTONIC_TIMESTAMP":"%d","_BOOT_ID":"fedcba9876543210fedcba9876543210","_MACHINE_ID":"0123456789abcdef0123456789abcdef","_HOSTNAME":"web1","PRIORITY":"6","SYSLOG_FACILITY":"10","SYSLOG_IDENTIFIER":"sshd","_UID":"0","_GID":"0","_COMM":"sshd","_EXE":"/usr/sbin/sshd","_CMDLINE":"sshd: unknown [priv]","_CAP_EFFECTIVE":"1ffffffffff","_SELINUX_CONTEXT":"unconfined\n","_SYSTEMD_CGROUP":"/system.slice/ssh.service","_SYSTEMD_UNIT":"ssh.service","_SYSTEMD_SLICE":"system.slice","_SYSTEMD_INVOCATION_ID":"00112233445566778899aabbccddeeff","_TRANSPORT":"syslog","_PID":"%d","SYSLOG_PID":"%d","SYSLOG_TIMESTAMP":"Mar  2 09:00:00 ","MESSAGE":"%s","_SOURCE_REALTIME_TIMESTAMP":"%d"}`+"\n",
			lines, lines, lines, us, us, 4000+lines%5000, 4000+lines%5000, msg, us)
		lines++
	}
	return buf.Bytes(), lines
}

// BenchmarkJournalJSON analyses journalctl -o json output.
func BenchmarkJournalJSON(b *testing.B) {
	data, lines := genJournal(16 << 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	an := New(Options{Location: time.UTC})
	cpu := startCPU()
	for b.Loop() {
		if err := an.Scan(bytes.NewReader(data), func(Finding) {}); err != nil {
			b.Fatal(err)
		}
		if an.Stats().Failures == 0 {
			b.Fatal("no failures read")
		}
	}
	cpu.report(b, int64(len(data)), lines)
	reportLines(b, lines)
}

// BenchmarkNonMatching measures lines that match no rule: header parse and
// dispatch only; allocs/op must be 0 (one op is one line).
func BenchmarkNonMatching(b *testing.B) {
	line := []byte("Mar  2 09:00:00 web1 CRON[4242]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
	an := New(Options{Location: time.UTC})
	an.reset(Handler{})
	b.SetBytes(int64(len(line) + 1))
	b.ReportAllocs()
	var n int64
	cpu := startCPU()
	for b.Loop() {
		n++
		an.line(line, n)
	}
	cpu.report(b, 0, 0)
}

// tortureLines are lines of about n bytes built to make a parser repeat
// work: runs of the tokens its loops look for. Each must cost time linear
// in its length.
func tortureLines(n int) map[string]string {
	rep := func(s string) string { return strings.Repeat(s, n/len(s)) }
	hdr := "Mar  2 09:00:00 web1 sshd[1]: "
	return map[string]string{
		"colons":        hdr + "Failed password for x from " + rep(":"),
		"from-addr":     hdr + "Failed password for invalid user " + rep("x from 192.0.2.1 ") + " from 198.51.100.1 port 22 ssh2",
		"words":         hdr + "Failed password for invalid user " + rep("a ") + " from 198.51.100.1 port 22 ssh2",
		"quotes":        hdr + "Failed password for invalid user " + rep("'a") + " from 198.51.100.1 port 22 ssh2",
		"hex-colons":    hdr + "Failed password for invalid user " + rep(" 1:") + " from 198.51.100.1 port 22 ssh2",
		"invalid-user":  hdr + "Invalid user " + rep("a from 192.0.2.1 ") + "from 198.51.100.1 port 22",
		"closed":        hdr + "Connection closed by invalid user " + rep("a ") + "198.51.100.1 port 22 [preauth]",
		"disconnecting": hdr + "Disconnecting: Too many authentication failures for " + rep("a ") + "[preauth]",
		"pam-tokens":    hdr + "pam_unix(sshd:auth): authentication failure; " + rep("ruser= ") + "rhost=198.51.100.1",
		"negotiate":     hdr + "Unable to negotiate with 198.51.100.1 port 22: no matching " + rep("a ") + "found.",
		"firewall":      "Mar  2 09:00:00 web1 kernel: " + rep("IN= ") + "OUT= SRC=198.51.100.1 DPT=22",
		"json-keys":     "{" + rep(`"a":1,`) + `"SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Invalid user a from 198.51.100.1"}`,
		"rfc5424-sd":    "<13>1 - h sshd 1 - " + rep("[a]") + " Invalid user a from 198.51.100.1",
	}
}

// BenchmarkLongLine: a 1 MiB single line, skipped under the default limit
// and analysed under a 2 MiB limit; torture/* are lines built to make the
// parsers repeat work.
func BenchmarkLongLine(b *testing.B) {
	user := strings.Repeat("x from 192.0.2.1 ", (1<<20)/17)
	cases := []struct {
		name  string
		limit int
		line  string
	}{
		{"skipped", 0, "Mar  2 09:00:00 web1 sshd[1]: Failed password for invalid user " + user + " from 198.51.100.1 port 22 ssh2"},
		{"analysed", 2 << 20, "Mar  2 09:00:00 web1 sshd[1]: Failed password for invalid user " + user + " from 198.51.100.1 port 22 ssh2"},
	}
	torture := tortureLines(1 << 20)
	for _, name := range slices.Sorted(maps.Keys(torture)) {
		cases = append(cases, struct {
			name  string
			limit int
			line  string
		}{"torture/" + name, 2 << 20, torture[name]})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			an := New(Options{Location: time.UTC, MaxLineBytes: c.limit})
			in := c.line + "\n"
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				if err := an.Scan(strings.NewReader(in), func(Finding) {}); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, 0, 0)
			st := an.Stats()
			if c.limit == 0 && st.LongLines != 1 || c.limit != 0 && st.LongLines != 0 {
				b.Fatalf("unexpected stats %+v", st)
			}
			if c.name == "analysed" && st.Failures != 1 {
				b.Fatalf("unexpected stats %+v", st)
			}
		})
	}
}

// Micro benchmarks of the stages a failure line goes through.
var failMsg = "Failed password for invalid user admin from 198.51.100.77 port 40001 ssh2"
var failLineText = "Mar  2 09:00:00 web1 sshd[4242]: " + failMsg

func BenchmarkStageHeader(b *testing.B) {
	tc := newTimeCtx(time.UTC, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	var rec record
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		tc.parseHeader(failLineText, &rec)
	}
	cpu.report(b, 0, 0)
}

func BenchmarkStageClassify(b *testing.B) {
	var m sshMatch
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		classifySSHD(failMsg, &m)
	}
	cpu.report(b, 0, 0)
}

func BenchmarkStageFailureLine(b *testing.B) {
	for _, top := range []bool{false, true} {
		name := "analyze"
		if top {
			name = "top"
		}
		b.Run(name, func(b *testing.B) {
			an := New(Options{Location: time.UTC})
			an.topOnly = top
			an.reset(Handler{})
			line := []byte(failLineText)
			b.ReportAllocs()
			n := int64(0)
			cpu := startCPU()
			for b.Loop() {
				n++
				an.line(line, n)
			}
			cpu.report(b, 0, 0)
		})
	}
}
