package logscan

import (
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func scanTestdata(t *testing.T, name string, opts Options) ([]Event, []Finding) {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	require.NoError(t, err)
	defer f.Close()
	return scan(t, f, opts)
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestConflictMessages(t *testing.T) {
	evs, fs := scanTestdata(t, "conflicts.log", Options{})
	type row struct {
		line  int64
		kind  Kind
		addr  string
		mac   string
		old   string
		iface string
		key   string
	}
	str := func(m net.HardwareAddr) string {
		if m == nil {
			return ""
		}
		return m.String()
	}
	var got []row
	for _, e := range evs {
		a := ""
		if e.Addr.IsValid() {
			a = e.Addr.String()
		}
		got = append(got, row{e.Line, e.Kind, a, str(e.MAC), str(e.OldMAC), e.Iface, e.Key})
	}
	assert.Equal(t, []row{
		{1, KindAddressConflict, "2001:db8::10", "02:00:5e:00:53:01", "", "eth0", ""},
		{2, KindAddressConflict, "2001:db8::11", "", "", "eth0", ""},
		{3, KindAddressConflict, "192.0.2.20", "02:00:5e:00:53:02", "", "enp0s8", ""},
		{4, KindAddressConflict, "192.0.2.21", "", "", "eth1", ""},
		{5, KindAddressConflict, "192.0.2.22", "02:00:5e:00:53:03", "", "eth2", ""},
		{6, KindAddressConflict, "192.0.2.23", "", "", "eth2", ""},
		{7, KindAddressConflict, "192.0.2.24", "", "", "eth3", ""},
		{8, KindAddressConflict, "192.0.2.25", "02:00:5e:00:53:04", "02:00:5e:00:53:05", "eth4", ""},
		{9, KindAddressConflict, "192.0.2.26", "02:00:5e:00:53:06", "02:00:5e:00:53:07", "eth4", ""},
		{10, KindAddressConflict, "192.0.2.27", "02:00:5e:00:53:09", "02:00:5e:00:53:08", "em0", ""},
		{11, KindAddressConflict, "192.0.2.28", "02:00:5e:00:53:0a", "", "em0", ""},
		{12, KindReconcile, "192.0.2.29", "", "", "", "ip:192.0.2.29"},
		{13, KindReconcile, "", "", "", "", "user:1001"},
		{14, KindAddressConflict, "192.0.2.25", "02:00:5e:00:53:05", "02:00:5e:00:53:04", "eth4", ""},
		{15, KindAddressConflict, "192.0.2.25", "02:00:5e:00:53:04", "02:00:5e:00:53:05", "eth4", ""},
	}, got)

	byKey := map[string]Finding{}
	for _, f := range fs {
		byKey[string(f.Rule)+" "+f.Key] = f
	}
	flip := byKey["address-conflict 192.0.2.25"]
	assert.Equal(t, SeverityCritical, flip.Severity)
	assert.Equal(t, 3, flip.Count)
	assert.Equal(t, []int64{8, 14, 15}, flip.Lines)
	assert.Equal(t, []net.HardwareAddr{mac("02:00:5e:00:53:05"), mac("02:00:5e:00:53:04")}, flip.MACs)
	assert.Equal(t, netip.MustParseAddr("192.0.2.25"), flip.Addr)

	one := byKey["address-conflict 192.0.2.20"]
	assert.Equal(t, SeverityHigh, one.Severity, "one claimant: high, not critical")
	assert.Equal(t, []net.HardwareAddr{mac("02:00:5e:00:53:02")}, one.MACs)
	assert.Contains(t, one.Detail, "NetworkManager")

	moved := byKey["address-conflict 192.0.2.27"]
	assert.Equal(t, SeverityCritical, moved.Severity, "two MACs for one address")

	assert.Equal(t, netip.MustParseAddr("192.0.2.29"), byKey["address-conflict ip:192.0.2.29"].Addr)
	data := byKey["data-conflict user:1001"]
	assert.Equal(t, RuleDataConflict, data.Rule)
	assert.Len(t, findingsOf(fs, RuleAddressConflict), 12)
}

func TestRFC3339Sample(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	evs, fs := scanTestdata(t, "rfc3339.log", Options{Location: zone})
	require.Len(t, evs, 13, "the UFW ALLOW line is not an event")
	assert.Equal(t, time.Date(2026, 3, 2, 7, 59, 58, 1000, time.UTC), evs[0].Time.UTC())
	assert.Equal(t, KindConnectionFrom, evs[0].Kind)
	assert.Equal(t, RoleHelper, evs[0].Role)
	assert.Equal(t, KindFirewall, evs[7].Kind)
	assert.Equal(t, "BLOCK", evs[7].Action)
	assert.Equal(t, uint16(3389), evs[7].Port)

	rules := map[Rule][]string{}
	for _, f := range fs {
		rules[f.Rule] = append(rules[f.Rule], f.Key)
	}
	assert.Equal(t, []string{"198.51.100.7"}, rules[RuleBruteForce])
	assert.Equal(t, []string{"198.51.100.7"}, rules[RuleUserEnumeration])
	assert.Equal(t, []string{"198.51.100.7"}, rules[RuleRiskyPort])
	assert.Equal(t, []string{"198.51.100.7"}, rules[RuleIncident])
	assert.Equal(t, []string{"2001:db8::7"}, rules[RuleSuccessAfterFailures])
	assert.Equal(t, []string{"198.51.100.9"}, rules[RuleOffHoursLogin], "23:30 CET is off hours, 10:11 CET on a Monday is not")

	inc := findingsOf(fs, RuleIncident)[0]
	assert.Contains(t, inc.Related, RuleBruteForce)
	assert.Contains(t, inc.Related, RuleRiskyPort)
	assert.Contains(t, inc.Lines, int64(8))
}

func TestInjection(t *testing.T) {
	evs, fs := scanTestdata(t, "injection.log", Options{})
	require.Len(t, evs, 7)
	for _, e := range evs {
		assert.NotEqual(t, "192.0.2.66", e.Src.String(), "line %d attributed to the injected address", e.Line)
		if e.Line <= 6 {
			assert.NotEmpty(t, e.Injection, "line %d", e.Line)
			assert.Equal(t, "198.51.100.20", e.Src.String(), "line %d", e.Line)
		} else {
			assert.Empty(t, e.Injection)
		}
	}
	assert.Equal(t, "x 192.0.2.66 port 22", evs[3].User)
	inj := findingsOf(fs, RuleLogInjection)
	require.Len(t, inj, 1)
	assert.Equal(t, "198.51.100.20", inj[0].Key)
	assert.Equal(t, 6, inj[0].Count)
	assert.Equal(t, []int64{1, 2, 3, 4, 5, 6}, inj[0].Lines)
	assert.Equal(t, SeverityHigh, inj[0].Severity)
}

func TestJournalSample(t *testing.T) {
	f, err := os.Open("testdata/journal.json")
	require.NoError(t, err)
	defer f.Close()
	an := New(Options{Location: time.UTC})
	var evs []Event
	require.NoError(t, an.ScanContext(t.Context(), f, Handler{Event: func(e Event) { evs = append(evs, e) }}))
	require.Len(t, evs, 6)
	at := func(i int) time.Time { return time.Date(2026, 3, 2, 9, 0, i, 0, time.UTC) }
	assert.Equal(t, at(0), evs[0].Time)
	assert.Equal(t, "admin", evs[0].User)
	assert.Equal(t, "sshd-session", evs[1].Program, "byte-array MESSAGE")
	assert.Equal(t, "root", evs[1].User)
	assert.Equal(t, "sshd", evs[2].Program, "first of a multi-value field")
	assert.Equal(t, "6003", evs[2].PID)
	assert.Equal(t, "tést\t", evs[2].User, "escapes decoded")
	assert.Equal(t, KindFirewall, evs[3].Kind, "_TRANSPORT=kernel")
	assert.Equal(t, "kernel", evs[3].Program)
	assert.Equal(t, `"quoted\\user"`, evs[4].User)
	assert.Equal(t, "bob", evs[5].User, "first of a multi-value byte-array field")
	for _, e := range evs {
		assert.Equal(t, "198.51.100.30", e.Src.String())
	}
	st := an.Stats()
	assert.EqualValues(t, 2, st.Malformed, "the truncated line and the object without MESSAGE")
	assert.EqualValues(t, 8, st.Lines)
}

func TestFindingJSONRoundTrip(t *testing.T) {
	_, fs := scanTestdata(t, "conflicts.log", Options{})
	require.NotEmpty(t, fs)
	for _, f := range fs {
		b, err := json.Marshal(f)
		require.NoError(t, err)
		var back Finding
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, f.Rule, back.Rule)
		assert.Equal(t, f.MACs, back.MACs)
		assert.Equal(t, f.Addr, back.Addr)
		assert.Equal(t, f.Severity, back.Severity)
		assert.True(t, f.First.Equal(back.First))
		assert.Equal(t, f.Lines, back.Lines)
	}
	var bad Finding
	require.Error(t, json.Unmarshal([]byte(`{"rule":"x","macs":["not-a-mac"]}`), &bad))
	require.Error(t, json.Unmarshal([]byte(`{"rule":"x","severity":"apocalyptic"}`), &bad))
}

func TestEventFormats(t *testing.T) {
	evs, _ := scanTestdata(t, "rfc3339.log", Options{})
	assert.Equal(t, FormatRFC3339, evs[0].Format)
	evs, _ = scanTestdata(t, "journal.json", Options{})
	assert.Equal(t, FormatJournal, evs[0].Format)
	b, err := json.Marshal(evs[0])
	require.NoError(t, err)
	assert.Contains(t, string(b), `"format":"journal"`)
}

func TestReconcileAuditBlock(t *testing.T) {
	// the audit line exactly as reconcile prints it, without a syslog header
	audit := "[WARN] Conflict detected for key=192.0.2.40\n" +
		"Version A: timestamp=1678812345, node=N1, value={name: \"Alice\", ver: 3}\n" +
		"Version B: timestamp=1678812350, node=N2, value={name: \"Alicia\", ver: 3}\n" +
		"Resolution: Manual required\n"
	evs, fs := scan(t, strings.NewReader(audit), Options{})
	require.Len(t, evs, 1)
	assert.Equal(t, KindReconcile, evs[0].Kind)
	assert.Equal(t, "192.0.2.40", evs[0].Addr.String())
	require.Len(t, fs, 1)
	assert.Equal(t, RuleAddressConflict, fs[0].Rule)
	assert.Equal(t, "key=192.0.2.40", "key="+fs[0].Key)
}
