package logscan

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scanFile runs an analyzer over a shared corpus file and returns its
// events and findings.
func scanFile(t *testing.T, name string, opts Options) ([]Event, []Finding) {
	t.Helper()
	f, err := os.Open(sharedFile(t, name))
	require.NoError(t, err)
	defer f.Close()
	return scan(t, f, opts)
}

func scan(t *testing.T, r interface{ Read([]byte) (int, error) }, opts Options) ([]Event, []Finding) {
	t.Helper()
	var evs []Event
	var fs []Finding
	if opts.Reference.IsZero() {
		opts.Reference = time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC)
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	err := New(opts).ScanContext(t.Context(), r, Handler{
		Event:   func(e Event) { evs = append(evs, e) },
		Finding: func(f Finding) { fs = append(fs, f) },
	})
	require.NoError(t, err)
	return evs, fs
}

func findingsOf(fs []Finding, rule Rule) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

func keys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Key)
	}
	return out
}

// CrowdSec hub: iptables-logs lines 1, 2 and 4 parse (source and
// destination port), line 3 (XX= instead of IN=) does not.
func TestCrowdSecIptablesLogs(t *testing.T) {
	evs, _ := scanFile(t, "crowdsec/iptables-logs.log", Options{})
	type row struct {
		line int64
		src  string
		dpt  uint16
	}
	var got []row
	for _, e := range evs {
		require.Equal(t, KindFirewall, e.Kind)
		got = append(got, row{e.Line, e.Src.String(), e.Port})
	}
	assert.Equal(t, []row{{1, "195.54.160.107", 8123}, {2, "195.54.160.107", 8123}, {4, "127.0.0.1", 53}}, got)
	assert.Equal(t, "IPTABLES-DROP", evs[2].Action)
	assert.Equal(t, netip.MustParseAddr("127.0.0.53"), evs[2].Dst)
}

// CrowdSec hub: the port-scan scenario fires for 62.34.17.168 (17 ports,
// plain kernel lines) and 127.0.0.2 ([UFW BLOCK], 16 ports), not for
// 127.0.0.1 ([UFW AUDIT] lines are not hits).
func TestCrowdSecPortScan(t *testing.T) {
	evs, fs := scanFile(t, "crowdsec/iptables-scan-multi-port.log", Options{})
	scans := findingsOf(fs, RulePortScan)
	assert.ElementsMatch(t, []string{"62.34.17.168", "127.0.0.2"}, keys(scans))
	for _, f := range scans {
		switch f.Key {
		case "62.34.17.168":
			assert.Equal(t, 17, f.DistinctPorts)
			assert.Equal(t, 17, f.Count)
		case "127.0.0.2":
			assert.Equal(t, 16, f.DistinctPorts)
		}
		assert.GreaterOrEqual(t, len(f.Lines), 15)
	}
	for _, e := range evs {
		assert.NotEqual(t, "127.0.0.1", e.Src.String(), "UFW AUDIT line %d became an event", e.Line)
	}
	// the plain-kernel scanner also hit 22, 445 and 3306
	risky := findingsOf(fs, RuleRiskyPort)
	require.Len(t, risky, 1)
	assert.Equal(t, "62.34.17.168", risky[0].Key)
	assert.ElementsMatch(t, []uint16{22, 3306, 445}, risky[0].Ports)
}

// CrowdSec hub: six invalid users from one source within 3 s overflow both
// ssh-bf (our burst) and ssh-bf_user-enum (our user-enumeration).
func TestCrowdSecSSHBruteForce(t *testing.T) {
	_, fs := scanFile(t, "crowdsec/ssh-bf.log", Options{})
	for _, rule := range []Rule{RuleBurst, RuleUserEnumeration, RuleBruteForce} {
		got := findingsOf(fs, rule)
		if assert.Len(t, got, 1, rule) {
			assert.Equal(t, "35.188.49.176", got[0].Key)
		}
	}
	enum := findingsOf(fs, RuleUserEnumeration)[0]
	assert.Equal(t, 6, enum.DistinctUsers)
	assert.Equal(t, []string{"pascal", "pascal1", "pascal2", "pascal3", "pascal4", "pascal5"}, enum.Users)
	assert.Empty(t, findingsOf(fs, RuleSlowBruteForce), "ssh-slow-bf needs more than 10")
}

// CrowdSec hub: 22 failures about 30 s apart overflow only ssh-slow-bf.
// (Our own fail2ban-style brute-force rule, 5 in 10 minutes, fires too.)
func TestCrowdSecSSHSlowBruteForce(t *testing.T) {
	_, fs := scanFile(t, "crowdsec/ssh-slow-bf.log", Options{Rules: Rules{Disable: []Rule{RuleBruteForce}}})
	slow := findingsOf(fs, RuleSlowBruteForce)
	require.Len(t, slow, 1)
	assert.Equal(t, "103.100.210.198", slow[0].Key)
	assert.Empty(t, findingsOf(fs, RuleBurst))
	assert.Empty(t, findingsOf(fs, RuleUserEnumeration))
	assert.Equal(t, []string{"hadoop"}, slow[0].Users)

	_, fs = scanFile(t, "crowdsec/ssh-slow-bf.log", Options{})
	assert.Len(t, findingsOf(fs, RuleBruteForce), 1)
	assert.Empty(t, findingsOf(fs, RuleSlowBruteForce), "slow brute force is not reported beside brute force")
}

// CrowdSec hub: "Close session: user ansible from ..." is not a failure.
func TestCrowdSecFalsePositive(t *testing.T) {
	evs, fs := scanFile(t, "crowdsec/sshd-logs-fp.log", Options{})
	require.Len(t, evs, 6)
	for _, e := range evs {
		assert.Equal(t, KindSessionClose, e.Kind)
		assert.NotEqual(t, RoleFailure, e.Role)
	}
	assert.Empty(t, fs)
}

// CrowdSec hub parser test: every line is read, with its source.
func TestCrowdSecSSHDParser(t *testing.T) {
	evs, _ := scanFile(t, "crowdsec/sshd-logs.log", Options{Mode: ModeAggressive})
	type row struct {
		kind Kind
		src  string
		user string
	}
	want := map[int64]row{
		1:  {KindInvalidUser, "35.188.49.176", "pascal"},
		2:  {KindInvalidUser, "35.188.49.176", "pascal"},
		3:  {KindInvalidUser, "35.188.49.176", "pascal"},
		4:  {KindPAMUnixFailure, "5.33.63.160", "workshop"},
		5:  {KindPAMUnixFailure, "5.33.63.161", "workshop"}, // user carried by sshd[28179] from line 4
		6:  {KindClosedPreauth, "206.81.24.125", "root"},
		7:  {KindClosedPreauth, "92.255.85.135", "ftp"},
		8:  {KindClosedPreauth, "92.255.85.135", "ftp"},
		10: {KindBadHandshake, "94.232.46.213", ""},
		11: {KindBadHandshake, "94.232.46.213", ""},
		12: {KindClosedPreauth, "206.81.24.125", "root"},
		13: {KindNegotiation, "123.57.135.134", ""},
		14: {KindNegotiation, "206.189.59.169", ""},
		15: {KindNegotiation, "123.123.123.123", ""},
		16: {KindClosedPreauth, "80.94.92.63", "root"},
		17: {KindUserNotAllowed, "192.168.1.1", "root"},
		18: {KindFailedAuth, "192.168.1.2", "root"},
		19: {KindPreauthTimeout, "192.168.9.212", ""},
		20: {KindDispatchFatal, "192.168.9.213", ""},
		21: {KindInvalidUser, "192.168.1.3", "pascal5"},
		22: {KindClosedPreauth, "118.27.24.104", ""},
		23: {KindRefusedConnect, "192.168.1.1", ""},
		24: {KindRefusedConnect, "192.168.1.1", ""},
	}
	got := map[int64]row{}
	for _, e := range evs {
		got[e.Line] = row{e.Kind, e.Src.String(), e.User}
	}
	assert.Equal(t, want, got, "line 9 (\"totobad user\") is not an sshd message we know")
	for _, e := range evs {
		if e.Line == 17 {
			assert.Equal(t, time.Date(2023, 11, 13, 23, 20, 42, 738197000, time.UTC), e.Time.UTC())
		}
	}
}

// fail2ban's BSD samples: syslogd -v (<4.3>) and -vv (<auth.info>) headers.
func TestFail2banBSDHeaders(t *testing.T) {
	for _, name := range []string{"syslog-plain.txt", "syslog-v.txt", "syslog-vv.txt"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(sharedFile(t, "fail2ban/bsd/"+name))
			require.NoError(t, err)
			lines := strings.Count(strings.TrimSpace(string(data)), "\n") + 1
			evs, _ := scan(t, strings.NewReader(string(data)), Options{})
			require.Len(t, evs, lines, "every line recognised")
			for _, e := range evs {
				assert.Equal(t, "pancake", e.Host)
				assert.Equal(t, "sshd", e.Program)
				assert.Equal(t, RoleFailure, e.Role, "line %d", e.Line)
				assert.NotEmpty(t, e.SrcText)
			}
		})
	}
}
