package logscan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go4.org/netipx"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // a Monday

// logAt renders a BSD line at t0+off.
func logAt(off time.Duration, msg string) string {
	return t0.Add(off).Format(time.Stamp) + " web1 " + msg + "\n"
}

func failLine(off time.Duration, pid int, user, src string) string {
	return logAt(off, fmt.Sprintf("sshd[%d]: Failed password for %s from %s port 4%04d ssh2", pid, user, src, pid))
}

func run(t *testing.T, opts Options, lines ...string) []Finding {
	t.Helper()
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Reference.IsZero() {
		opts.Reference = t0.Add(24 * time.Hour)
	}
	var fs []Finding
	require.NoError(t, New(opts).Scan(strings.NewReader(strings.Join(lines, "")), func(f Finding) { fs = append(fs, f) }))
	return fs
}

func TestBruteForceExactWindow(t *testing.T) {
	only := Rules{Disable: []Rule{RuleBurst, RuleSlowBruteForce, RuleUserEnumeration}}
	spread := func(span time.Duration, n int) []string {
		var ls []string
		for i := range n {
			ls = append(ls, failLine(span*time.Duration(i)/time.Duration(n-1), 100+i, "root", "192.0.2.7"))
		}
		return ls
	}
	tests := []struct {
		name  string
		lines []string
		fires bool
	}{
		{"4 in a minute", spread(time.Minute, 4), false},
		{"5 in exactly 10 minutes", spread(10*time.Minute, 5), true},
		{"5 in 10 minutes and a second", spread(10*time.Minute+time.Second, 5), false},
		{"9 evenly over 21 minutes (never 5 in 10)", spread(21*time.Minute, 9), false},
		{"5 in a second", spread(time.Second, 5), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := findingsOf(run(t, Options{Rules: only}, tt.lines...), RuleBruteForce)
			if !tt.fires {
				assert.Empty(t, fs)
				return
			}
			require.Len(t, fs, 1)
			assert.Equal(t, "192.0.2.7", fs[0].Key)
			assert.Equal(t, netip.MustParseAddr("192.0.2.7"), fs[0].Src)
			assert.Equal(t, 5, fs[0].Count)
			assert.Equal(t, []int64{1, 2, 3, 4, 5}, fs[0].Lines)
			assert.Equal(t, SeverityHigh, fs[0].Severity)
		})
	}
}

func TestBruteForceConfigurableAndEpisodes(t *testing.T) {
	var ls []string
	for i := range 3 {
		ls = append(ls, failLine(time.Duration(i)*time.Second, 10+i, "root", "192.0.2.8"))
	}
	// a second episode an hour later
	for i := range 3 {
		ls = append(ls, failLine(time.Hour+time.Duration(i)*time.Second, 20+i, "root", "192.0.2.8"))
	}
	fs := findingsOf(run(t, Options{Rules: Rules{BruteForce: Window{Count: 3, Window: time.Minute}}}, ls...), RuleBruteForce)
	require.Len(t, fs, 2, "two episodes, two findings")
	assert.Equal(t, t0, fs[0].First)
	assert.Equal(t, t0.Add(2*time.Second), fs[0].Last)
	assert.Equal(t, t0.Add(time.Hour), fs[1].First)
}

func TestUserEnumerationDistinct(t *testing.T) {
	var same, distinct []string
	for i := range 8 {
		same = append(same, failLine(time.Duration(i)*time.Second, 30+i, "root", "192.0.2.9"))
		distinct = append(distinct, failLine(time.Duration(i)*time.Second, 30+i, fmt.Sprintf("u%d", i%5), "192.0.2.9"))
	}
	assert.Empty(t, findingsOf(run(t, Options{}, same...), RuleUserEnumeration))
	enum := findingsOf(run(t, Options{}, distinct...), RuleUserEnumeration)
	require.Len(t, enum, 1)
	assert.Equal(t, 5, enum[0].DistinctUsers)
	assert.Equal(t, []string{"u0", "u1", "u2", "u3", "u4"}, enum[0].Users)
}

func TestSuccessAfterFailures(t *testing.T) {
	accept := logAt(50*time.Minute, "sshd[99]: Accepted password for root from 192.0.2.10 port 40099 ssh2")
	two := []string{failLine(0, 1, "root", "192.0.2.10"), failLine(time.Minute, 2, "root", "192.0.2.10"), accept}
	assert.Empty(t, findingsOf(run(t, Options{}, two...), RuleSuccessAfterFailures))

	three := []string{failLine(0, 1, "root", "192.0.2.10"), failLine(time.Minute, 2, "root", "192.0.2.10"), failLine(2*time.Minute, 3, "admin", "192.0.2.10"), accept}
	fs := findingsOf(run(t, Options{}, three...), RuleSuccessAfterFailures)
	require.Len(t, fs, 1)
	assert.Equal(t, SeverityCritical, fs[0].Severity)
	assert.Equal(t, []int64{1, 2, 3, 4}, fs[0].Lines)
	assert.Equal(t, []string{"root"}, fs[0].Users)
	assert.Equal(t, 1, fs[0].Count, "one successful login")

	late := []string{failLine(0, 1, "root", "192.0.2.10"), failLine(time.Minute, 2, "root", "192.0.2.10"), failLine(2*time.Minute, 3, "root", "192.0.2.10"),
		logAt(time.Hour+3*time.Minute, "sshd[99]: Accepted password for root from 192.0.2.10 port 40099 ssh2")}
	assert.Empty(t, findingsOf(run(t, Options{}, late...), RuleSuccessAfterFailures), "failures more than an hour before")
}

func TestOffHours(t *testing.T) {
	accept := func(at time.Time, user string) string {
		return at.Format(time.Stamp) + " web1 sshd[7]: Accepted publickey for " + user + " from 198.51.100.3 port 5 ssh2\n"
	}
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	tests := []struct {
		name string
		at   time.Time
		wh   WorkHours
		off  bool
	}{
		{"monday 09:00", t0, WorkHours{}, false},
		{"monday 07:59", t0.Add(-61 * time.Minute), WorkHours{}, true},
		{"monday 18:00", t0.Add(9 * time.Hour), WorkHours{}, true},
		{"saturday noon", t0.Add(5*24*time.Hour + 3*time.Hour), WorkHours{}, true},
		{"saturday with weekend work", t0.Add(5*24*time.Hour + 3*time.Hour), WorkHours{Days: []time.Weekday{time.Saturday}}, false},
		{"09:00 UTC is 04:00 in New York", t0, WorkHours{Location: ny}, true},
		{"night shift 22-24", t0.Add(13 * time.Hour), WorkHours{Start: 22 * time.Hour, End: 24 * time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := findingsOf(run(t, Options{Rules: Rules{WorkHours: tt.wh}, Reference: t0.Add(30 * 24 * time.Hour)}, accept(tt.at, "carol")), RuleOffHoursLogin)
			if !tt.off {
				assert.Empty(t, fs)
				return
			}
			require.Len(t, fs, 1)
			assert.Equal(t, []string{"carol"}, fs[0].Users)
			assert.Equal(t, "198.51.100.3", fs[0].Key)
		})
	}
}

func TestAllowAndHighRisk(t *testing.T) {
	var ls []string
	for i := range 5 {
		ls = append(ls, failLine(time.Duration(i)*time.Second, 40+i, "root", "192.0.2.11"), failLine(time.Duration(i)*time.Second, 50+i, "root", "198.51.100.11"))
	}
	set := func(p string) *netipx.IPSet {
		var b netipx.IPSetBuilder
		b.AddPrefix(netip.MustParsePrefix(p))
		s, err := b.IPSet()
		require.NoError(t, err)
		return s
	}
	fs := findingsOf(run(t, Options{Allow: set("198.51.100.0/24"), HighRisk: set("192.0.2.0/28")}, ls...), RuleBruteForce)
	require.Len(t, fs, 1)
	assert.Equal(t, "192.0.2.11", fs[0].Key)
	assert.Equal(t, SeverityCritical, fs[0].Severity, "high raised to critical")
}

func TestPortScanAndIncident(t *testing.T) {
	var ls []string
	for i := range 5 {
		ls = append(ls, failLine(time.Duration(i)*time.Second, 60+i, "root", "203.0.113.50"))
	}
	for p := range 16 {
		ls = append(ls, logAt(10*time.Second+time.Duration(p)*time.Second,
			fmt.Sprintf("kernel: [1.0] [UFW BLOCK] IN=eth0 OUT= MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00 SRC=203.0.113.50 DST=192.0.2.1 LEN=40 PROTO=TCP SPT=1 DPT=%d", 1000+p)))
	}
	// slower than 15 in 60 s: no scan
	for p := range 16 {
		ls = append(ls, logAt(time.Duration(p)*5*time.Second,
			fmt.Sprintf("kernel: IN=eth0 OUT= SRC=203.0.113.51 DST=192.0.2.1 PROTO=TCP SPT=1 DPT=%d", 2000+p)))
	}
	fs := run(t, Options{}, ls...)
	scans := findingsOf(fs, RulePortScan)
	require.Len(t, scans, 1)
	assert.Equal(t, "203.0.113.50", scans[0].Key)
	assert.Equal(t, 16, scans[0].DistinctPorts)
	inc := findingsOf(fs, RuleIncident)
	require.Len(t, inc, 1)
	assert.Equal(t, "203.0.113.50", inc[0].Key)
	assert.ElementsMatch(t, []Rule{RuleBruteForce, RulePortScan}, inc[0].Related)
	assert.Empty(t, findingsOf(fs, RuleRiskyPort))
}

func TestPreauthScanKeptApart(t *testing.T) {
	var ls []string
	for i := range 12 {
		ls = append(ls, logAt(time.Duration(i)*time.Second, fmt.Sprintf("sshd[%d]: Connection closed by 203.0.113.60 port %d [preauth]", 70+i, 1000+i)))
	}
	fs := run(t, Options{}, ls...)
	assert.Empty(t, findingsOf(fs, RuleBruteForce), "normal mode: noise is not failures")
	pre := findingsOf(fs, RulePreauthScan)
	require.Len(t, pre, 1)
	assert.Equal(t, 12, pre[0].Count)
	assert.Equal(t, SeverityLow, pre[0].Severity)

	fs = run(t, Options{Mode: ModeDDoS}, ls...)
	assert.Len(t, findingsOf(fs, RuleBruteForce), 1, "ddos mode: they are failures")
}

func TestBoundedTables(t *testing.T) {
	// 200 sources, a table of 16: evicted sources report their findings
	// when they leave, nothing is lost or unbounded.
	var ls []string
	for s := range 200 {
		for i := range 5 {
			ls = append(ls, failLine(time.Duration(s*5+i)*time.Second, s*10+i, "root", fmt.Sprintf("198.51.%d.%d", s/250, s%250+1)))
		}
	}
	an := New(Options{Location: time.UTC, MaxSources: 16, MaxConnections: 8, MaxEvidence: 3, Reference: t0.Add(24 * time.Hour)})
	n := 0
	require.NoError(t, an.Scan(strings.NewReader(strings.Join(ls, "")), func(f Finding) {
		if f.Rule == RuleBruteForce {
			n++
			assert.Len(t, f.Lines, 3)
		}
	}))
	assert.Equal(t, 200, n)
	assert.LessOrEqual(t, an.srcs.len(), 16)
	assert.Greater(t, an.Stats().Evicted, int64(0))
}

func TestLongLines(t *testing.T) {
	long := strings.Repeat("A", 1<<20)
	longFail := "Mar  2 09:00:01 web1 sshd[2]: Failed password for " + long + " from 192.0.2.13 port 1 ssh2"
	input := failLine(0, 1, "root", "192.0.2.12") + longFail + "\n" +
		failLine(2*time.Second, 3, "root", "192.0.2.12") +
		long // last line without newline
	an := New(Options{Location: time.UTC, MaxLineBytes: 4096})
	var fs []Finding
	var evs []Event
	require.NoError(t, an.ScanContext(t.Context(), iotest.HalfReader(strings.NewReader(input)), Handler{
		Finding: func(f Finding) { fs = append(fs, f) },
		Event:   func(e Event) { evs = append(evs, e) },
	}))
	require.Len(t, evs, 2)
	assert.Equal(t, []int64{1, 3}, []int64{evs[0].Line, evs[1].Line}, "line numbers count the skipped lines")
	ll := findingsOf(fs, RuleLongLine)
	require.Len(t, ll, 1)
	assert.Equal(t, 2, ll[0].Count)
	assert.Equal(t, []int64{2, 4}, ll[0].Lines)
	assert.Contains(t, ll[0].Detail, fmt.Sprintf("longest %d bytes", len(longFail)))
	st := an.Stats()
	assert.EqualValues(t, 4, st.Lines)
	assert.EqualValues(t, 2, st.LongLines)
	assert.EqualValues(t, len(input), st.Bytes)
}

// TestTortureLines: the lines built to make the parsers repeat work (see
// BenchmarkLongLine) are still read right; the benchmark shows they cost
// linear time.
func TestTortureLines(t *testing.T) {
	wantSrc := map[string]bool{"from-addr": true, "words": true, "quotes": true, "hex-colons": true, "invalid-user": true,
		"closed": true, "pam-tokens": true, "firewall": true, "json-keys": true, "rfc5424-sd": true}
	for name, line := range tortureLines(64 << 10) {
		evs, _ := scan(t, strings.NewReader(line+"\n"), Options{Mode: ModeAggressive, MaxLineBytes: 128 << 10})
		if !wantSrc[name] {
			continue
		}
		if assert.Len(t, evs, 1, name) {
			assert.Equal(t, "198.51.100.1", evs[0].Src.String(), name)
		}
	}
}

func TestReadErrorsAndCancel(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader(failLine(0, 1, "root", "192.0.2.14")), iotest.ErrReader(boom))
	err := New(Options{}).Scan(r, func(Finding) {})
	require.ErrorIs(t, err, boom)
	assert.Contains(t, err.Error(), "after line 1")

	ctx, cancel := contextWithCancel(t)
	cancel()
	err = New(Options{}).ScanContext(ctx, strings.NewReader(strings.Repeat(failLine(0, 1, "root", "192.0.2.14"), 10000)), Handler{})
	require.ErrorIs(t, err, ctx.Err())
}

func TestOptionErrors(t *testing.T) {
	for _, o := range []Options{
		{Mode: Mode(9)},
		{MaxLineBytes: 10},
		{MaxSources: -1},
		{Rules: Rules{BruteForce: Window{Count: -1}}},
		{Rules: Rules{Burst: Bucket{Leak: -time.Second}}},
		{Rules: Rules{WorkHours: WorkHours{Start: 20 * time.Hour, End: 8 * time.Hour}}},
		{Rules: Rules{Disable: []Rule{"no-such-rule"}}},
		{Rules: Rules{PortScan: Window{Count: 100000}}},
	} {
		err := New(o).Scan(strings.NewReader(""), nil)
		require.ErrorIs(t, err, ErrInvalidOptions, "%+v", o)
		var oe *OptionError
		require.ErrorAs(t, err, &oe)
		assert.NotEmpty(t, oe.Field)
	}
	_, err := ParseMode("paranoid")
	require.ErrorIs(t, err, ErrInvalidOptions)
	for _, m := range []Mode{ModeNormal, ModeDDoS, ModeExtra, ModeAggressive} {
		got, err := ParseMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
}

func TestNonMatchingLinesDoNotAllocate(t *testing.T) {
	an := New(Options{Location: time.UTC})
	an.reset(Handler{})
	lines := [][]byte{
		[]byte("Mar  2 09:00:00 web1 CRON[4242]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"),
		[]byte("Mar  2 09:00:00 web1 sshd[4242]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)"),
		[]byte("Mar  2 09:00:00 web1 kernel: [12.5] eth0: link up"),
		[]byte("2026-03-02T09:00:00.000000+01:00 web1 systemd[1]: Started Session 7 of User deploy."),
		[]byte("<38>1 2026-03-02T09:00:00Z web1 sudo 77 - - deploy : TTY=pts/0 ; COMMAND=/bin/true"),
		[]byte(`{"__REALTIME_TIMESTAMP":"1772442000000000","_HOSTNAME":"web1","SYSLOG_IDENTIFIER":"CRON","MESSAGE":"session opened"}`),
	}
	n := int64(0)
	for _, l := range lines {
		allocs := testing.AllocsPerRun(200, func() {
			n++
			an.line(l, n)
		})
		assert.Zero(t, allocs, "%s", l)
	}
}

func TestTopSourcesVersusPipe(t *testing.T) {
	// What the classic pipe gets wrong, the table gets right: field 11 of
	// "invalid user" lines is the user, RFC 3339 prefixes shift fields,
	// other failure families are missed, injected addresses are counted.
	logs := strings.Join([]string{
		"Mar  2 09:00:00 web1 sshd[1]: Failed password for invalid user admin from 192.0.2.20 port 1 ssh2\n",
		"Mar  2 09:00:01 web1 sshd[2]: Failed password for root from 192.0.2.20 port 2 ssh2\n",
		"2026-03-02T09:00:02.000000+00:00 web1 sshd[3]: Failed password for root from 192.0.2.20 port 3 ssh2\n",
		"Mar  2 09:00:03 web1 sshd[4]: Invalid user oracle from 192.0.2.21 port 4\n",
		"Mar  2 09:00:04 web1 sshd[5]: Failed password for invalid user from 192.0.2.99 from 192.0.2.22 port 5 ssh2\n",
		"Mar  2 09:00:05 web1 sshd[6]: error: PAM: Authentication failure for bob from bad.example.com\n",
		"Mar  2 09:00:06 web1 sshd[7]: Accepted password for alice from 198.51.100.5 port 7 ssh2\n",
	}, "")
	rows, err := TopSources(t.Context(), strings.NewReader(logs), Options{Location: time.UTC}, 0)
	require.NoError(t, err)
	var got []string
	for _, r := range rows {
		got = append(got, strings.TrimSpace(r.String()))
	}
	assert.Equal(t, []string{"3 192.0.2.20", "1 192.0.2.21", "1 192.0.2.22", "1 bad.example.com"}, got)
}

// TopSources passes over the lines without "sshd" unparsed; it must count
// exactly what a full scan counts, in every mode, on the generated mixes,
// this package's samples (journald JSON with byte arrays, injections, RFC
// 3339, conflicts), lines that name sshd in another program's message,
// and the public corpora when they are present.
func TestTopSourcesMatchesFullScan(t *testing.T) {
	inputs := map[string][]byte{}
	var gen bytes.Buffer
	genAuthLog(&gen, 1<<20, 0.3, 5)
	inputs["generated"] = gen.Bytes()
	for _, name := range []string{"journal.json", "injection.log", "rfc3339.log", "conflicts.log"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		inputs[name] = b
	}
	inputs["sshd elsewhere"] = []byte(strings.Join([]string{
		"Mar  2 09:00:00 web1 sudo[9]:   deploy : COMMAND=/usr/bin/systemctl restart sshd\n",
		"Mar  2 09:00:01 web1 sshd[2]: Failed password for root from 192.0.2.20 port 2 ssh2\r\n",
		"Mar  2 09:00:02 web1 CRON[3]: Failed password for root from 192.0.2.21 port 3 ssh2\n",
		"Mar  2 09:00:03 web1 sshd-session[4]: Failed password for root from 192.0.2.20 port 4 ssh2\n",
		"Mar  2 09:00:04 web1 sshd[5]: Failed password for root from 192.0.2.22 port 5 ssh2",
	}, ""))
	filepath.WalkDir(sharedLogs, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".md") {
			if b, err := os.ReadFile(p); err == nil {
				inputs[p] = b
			}
		}
		return nil
	})
	counted := 0 // inputs with sources to count: equal empty tables prove nothing
	for name, in := range inputs {
		for _, mode := range []Mode{ModeNormal, ModeDDoS, ModeExtra, ModeAggressive} {
			opts := Options{Location: time.UTC, Mode: mode, Reference: t0}
			top, err := TopSources(t.Context(), bytes.NewReader(in), opts, 0)
			require.NoError(t, err)
			an := New(opts)
			require.NoError(t, an.Scan(bytes.NewReader(in), func(Finding) {}))
			assert.Equal(t, an.TopSources(0), top, "%s, mode %v", name, mode)
			if mode == ModeNormal && len(top) > 0 {
				counted++
			}
		}
	}
	assert.GreaterOrEqual(t, counted, 4, "generated, journal.json, injection.log, sshd elsewhere")
}

// The connection table is bounded (MaxConnections, 1024 by default) and a
// full set evicts; the generated mix, with a new sshd pid on every line,
// keeps it full. The findings and the table must still be the same on
// every scan of the same input: which connection is evicted may not depend
// on a random hash seed.
func TestSameInputSameFindings(t *testing.T) {
	var gen bytes.Buffer
	genAuthLog(&gen, 2<<20, 0.3, 9)
	run := func() ([]SourceCount, []Finding, Stats) {
		an := New(Options{Location: time.UTC, Reference: t0})
		var fs []Finding
		require.NoError(t, an.Scan(bytes.NewReader(gen.Bytes()), func(f Finding) { fs = append(fs, f) }))
		return an.TopSources(0), fs, an.Stats()
	}
	top, fs, st := run()
	for range 3 {
		top2, fs2, st2 := run()
		require.Equal(t, top, top2)
		require.Equal(t, fs, fs2)
		require.Equal(t, st, st2)
		alone, err := TopSources(t.Context(), bytes.NewReader(gen.Bytes()), Options{Location: time.UTC, Reference: t0}, 0)
		require.NoError(t, err)
		require.Equal(t, top, alone)
	}
	require.NotEmpty(t, fs)
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}

func TestLongNamesAreCut(t *testing.T) {
	// Names that outlive their line are cut to maxKept bytes, and the cut
	// name is the table key: a host reached directly and through its
	// connection context is one source.
	longHost := strings.Repeat("h", 100<<10) + ".example"
	longUser := strings.Repeat("é", 50<<10)
	lines := []string{
		logAt(0, "sshd[7]: Connection from "+longHost+" port 1 on 192.0.2.1 port 22"),
		logAt(time.Second, "sshd[7]: error: kex_exchange_identification: Connection closed by remote host"),
	}
	for i := range 5 {
		lines = append(lines, logAt(time.Duration(2+i)*time.Second, fmt.Sprintf("sshd[%d]: Failed password for %s from %s port 2 ssh2", 10+i, longUser, longHost)))
	}
	an := New(Options{Mode: ModeDDoS, Location: time.UTC, Reference: t0.Add(time.Hour), MaxLineBytes: 1 << 20})
	var fs []Finding
	require.NoError(t, an.Scan(strings.NewReader(strings.Join(lines, "")), func(f Finding) { fs = append(fs, f) }))
	top := an.TopSources(0)
	require.Len(t, top, 1, "one source")
	assert.EqualValues(t, 6, top[0].Count)
	assert.Equal(t, longHost[:maxKept], top[0].SrcText)
	bf := findingsOf(fs, RuleBruteForce)
	require.Len(t, bf, 1)
	assert.Equal(t, longHost[:maxKept], bf[0].Key)
	assert.Equal(t, 6, bf[0].Count)
	require.Len(t, bf[0].Users, 1)
	assert.Equal(t, longUser[:maxKept], bf[0].Users[0], "cut at a rune boundary")
	for _, f := range fs {
		assert.LessOrEqual(t, len(f.Key), maxKept, f.Rule)
		assert.LessOrEqual(t, len(f.SrcText), maxKept, f.Rule)
		for _, u := range f.Users {
			assert.LessOrEqual(t, len(u), maxKept, f.Rule)
		}
	}
}
