package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// TestBadInputs: every input flag with a missing file and a file of the
// wrong kind; every value flag with a bad value. Exit 2, and the message
// names the flag and the file or value.
func TestBadInputs(t *testing.T) {
	s := copySamples(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	empty := write(t, dir, "empty.db", "")
	notYAML := write(t, dir, "notes.yaml", "hello: world\n")
	badSpec := write(t, dir, "bad.yaml", "kind: IPPool\nmetadata: {name: p}\nspec: {subnet: 10.0.0.1/8}\n")
	badJSON := write(t, dir, "bad.json", `{"key": "k", "replicas": {"n1": {"versions": [{"dot": {"actor": "", "counter": 1}}]}}}`)
	plainText := write(t, dir, "plain.txt", "this is not\na system log\n")
	truncated := filepath.Join(dir, "truncated.pcap")
	pcap, err := os.ReadFile(filepath.Join(s, "capture.pcap"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(truncated, pcap[:len(pcap)-10], 0o644))

	cases := []struct {
		name string
		args []string
		want []string // all in stderr
	}{
		{"pool missing", []string{"-pool", missing}, []string{"-pool " + missing + ": no such file or directory"}},
		{"pool directory", []string{"-pool", dir}, []string{"-pool " + dir + ": is a directory"}},
		{"pool not a manifest", []string{"-pool", filepath.Join(s, "capture.pcap")}, []string{"-pool " + filepath.Join(s, "capture.pcap") + ": not a pool manifest"}},
		{"pool without pools", []string{"-pool", notYAML}, []string{"-pool " + notYAML + ": not a pool manifest"}},
		{"pool bad spec", []string{"-pool", badSpec}, []string{"-pool " + badSpec + ":", "10.0.0.1/8"}},
		{"store missing", []string{"-store", missing}, []string{"-store " + missing + ": no such file or directory"}},
		{"store empty", []string{"-store", empty}, []string{"-store " + empty + ": empty file, not an ipam store"}},
		{"store not a store", []string{"-store", notYAML}, []string{"-store " + notYAML + ": not an ipam store"}},
		{"pcap missing", []string{"-pcap", missing}, []string{"-pcap " + missing + ": no such file or directory"}},
		{"pcap not a capture", []string{"-pcap", filepath.Join(s, "auth.log")}, []string{"-pcap " + filepath.Join(s, "auth.log") + ": not a pcap or pcapng capture"}},
		{"log missing", []string{"-log", missing}, []string{"-log " + missing + ": no such file or directory"}},
		{"log not a log", []string{"-log", plainText}, []string{"-log " + plainText + ": not a system log"}},
		{"log binary", []string{"-log", filepath.Join(s, "capture.pcap")}, []string{"-log " + filepath.Join(s, "capture.pcap") + ": not a system log"}},
		{"record missing", []string{"-record", missing}, []string{"-record " + missing + ": no such file or directory"}},
		{"record not a record", []string{"-record", filepath.Join(s, "east-pools.yaml")}, []string{"-record " + filepath.Join(s, "east-pools.yaml") + ": not a replicated record"}},
		{"record no replicas", []string{"-record", write(t, dir, "r.json", `{"key": "k", "replicas": {}}`)}, []string{"not a replicated record"}},
		{"record bad replica", []string{"-record", badJSON}, []string{"-record " + badJSON + `: replica "n1"`}},
		{"policy", []string{"-policy", "newest"}, []string{`-policy "newest"`}},
		{"timing", []string{"-I", "eth0", "-timing", "slow"}, []string{`-timing "slow"`}},
		{"probe without -I", []string{"-probe", "192.0.2.1"}, []string{"-probe needs -I"}},
		{"probe bad address", []string{"-I", "eth0", "-probe", "192.0.2.300"}, []string{`-probe "192.0.2.300"`}},
		{"probe bad prefix", []string{"-I", "eth0", "-probe", "192.0.2.0/33"}, []string{`-probe "192.0.2.0/33"`}},
		{"probe too large", []string{"-pool", filepath.Join(s, "east-pools.yaml"), "-I", "lo", "-probe", "10.0.0.0/8"}, []string{"-probe 10.0.0.0/8: more than 65536 addresses"}},
		{"interface missing", []string{"-pool", filepath.Join(s, "east-pools.yaml"), "-I", "agtest-none0", "-probe", "192.0.2.1"}, []string{"-I agtest-none0:"}},
		{"tz", []string{"-tz", "Mars/Olympus"}, []string{`-tz "Mars/Olympus"`}},
		{"webhook URL", []string{"-webhook", "ftp://example.com/x"}, []string{`-webhook "ftp://example.com/x": want an http:// or https:// URL`}},
		{"webhook timeout", []string{"-webhook-timeout", "0s"}, []string{"-webhook-timeout 0s: must be positive"}},
		{"webhook retries", []string{"-webhook-retries", "11"}, []string{"-webhook-retries 11: want 0 to 10"}},
		{"html unwritable", []string{"-html", filepath.Join(missing, "r.html")}, []string{"-html " + filepath.Join(missing, "r.html")}},
		{"argument", []string{"capture.pcap"}, []string{`unexpected argument "capture.pcap"`}},
		{"unknown flag", []string{"-frobnicate"}, []string{"flag provided but not defined: -frobnicate"}},
		{"empty value", []string{"-pcap", ""}, []string{"empty value"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runMain(t, c.args...)
			assert.Equal(t, exitError, code, errs)
			for _, w := range c.want {
				assert.Contains(t, errs, w)
			}
			assert.Equal(t, 1, strings.Count(errs, "diagnose: ")+boolInt(!strings.Contains(errs, "diagnose: ")), "one message: %s", errs)
		})
	}

	// A truncated capture is read up to the cut, not refused.
	code, out, errs := runMain(t, "-pcap", truncated, "-json")
	assert.Equal(t, exitIncidents, code, errs)
	var rep Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Contains(t, rep.Inputs[0].Summary, "the capture is truncated: frame 78")
	assert.Equal(t, "198.51.100.77 is held by two hosts", rep.Incidents[0].Title)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestEachInputAlone runs each input flag on its own sample: each finds its
// part of the story.
func TestEachInputAlone(t *testing.T) {
	s := copySamples(t)
	cases := []struct {
		args  []string
		code  int
		kinds []string // incident kinds, in report order
		title string   // of the first incident
	}{
		{[]string{"-pool", filepath.Join(s, "east-pools.yaml")}, exitClean, nil, ""},
		{[]string{"-pool", filepath.Join(s, "east-pools.yaml"), "-pool", filepath.Join(s, "west-pools.yaml")}, exitIncidents,
			[]string{"pool-overlap"}, "east/east-pods and west/west-vips can hand out the same 51 addresses"},
		{[]string{"-store", filepath.Join(s, "east.db")}, exitIncidents, []string{"pool-exhaustion"}, "east/east-pods is 85% full"},
		{[]string{"-pcap", filepath.Join(s, "capture.pcap")}, exitIncidents, []string{"address-conflict"}, "198.51.100.77 is held by two hosts"},
		{[]string{"-log", filepath.Join(s, "auth.log"), "-tz", "UTC"}, exitIncidents, []string{"address-conflict", "hostile-source", "off-hours-login"}, "198.51.100.77 is held by two hosts"},
		{[]string{"-record", filepath.Join(s, "lease-record.json")}, exitIncidents, []string{"address-conflict"}, "198.51.100.77 has concurrent owners in the replicated lease record"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args[:1], ""), func(t *testing.T) {
			code, out, errs := runMain(t, append(c.args, "-json")...)
			require.Equal(t, c.code, code, errs)
			var rep Report
			require.NoError(t, json.Unmarshal([]byte(out), &rep))
			var kinds []string
			for _, inc := range rep.Incidents {
				kinds = append(kinds, inc.Kind)
			}
			assert.Equal(t, c.kinds, kinds)
			if c.title != "" {
				assert.Equal(t, c.title, rep.Incidents[0].Title)
			}
		})
	}
	code, out, _ := runMain(t, "-pool", filepath.Join(s, "east-pools.yaml"))
	assert.Equal(t, exitClean, code)
	assert.Contains(t, out, "no incident found")
	assert.Contains(t, out, "utilization unknown (no store)")
}

// TestConfidence: the same conflict from fewer sources is less certain.
func TestConfidence(t *testing.T) {
	s := copySamples(t)
	conf := func(args ...string) Confidence {
		_, out, errs := runMain(t, append(args, "-json")...)
		var rep Report
		require.NoError(t, json.Unmarshal([]byte(out), &rep), errs)
		for _, inc := range rep.Incidents {
			if inc.Kind == "address-conflict" {
				return inc.Confidence
			}
		}
		t.Fatalf("no address conflict in %s", out)
		return Low
	}
	assert.Equal(t, Low, conf("-record", filepath.Join(s, "lease-record.json")))
	assert.Equal(t, Medium, conf("-pcap", filepath.Join(s, "capture.pcap")))
	assert.Equal(t, Medium, conf("-record", filepath.Join(s, "lease-record.json"), "-pool", filepath.Join(s, "east-pools.yaml"), "-pool", filepath.Join(s, "west-pools.yaml")))
	assert.Equal(t, High, conf("-pcap", filepath.Join(s, "capture.pcap"), "-record", filepath.Join(s, "lease-record.json")))
	assert.Equal(t, High, conf("-pcap", filepath.Join(s, "capture.pcap"), "-log", filepath.Join(s, "auth.log")))
}

// TestPolicy: -policy decides the data conflict, and the action says so.
func TestPolicy(t *testing.T) {
	s := copySamples(t)
	rec := filepath.Join(s, "lease-record.json")
	for _, c := range []struct{ policy, want string }{
		{"lww", `Version B (node cp-2, {cluster: "west", mac: "02:a6:00:00:00:02", owner: "vip/api"}) wins`},
		{"manual", "it keeps every version, so a person must choose"},
		{"priority-lww", "Version B (node cp-2"},
	} {
		_, out, errs := runMain(t, "-record", rec, "-policy", c.policy, "-json")
		var rep Report
		require.NoError(t, json.Unmarshal([]byte(out), &rep), errs)
		acts := rep.Incidents[0].Actions
		assert.Equal(t, "resolve-data-conflict", acts[len(acts)-1].Playbook)
		assert.Contains(t, acts[len(acts)-1].Text, c.want, c.policy)
		assert.Contains(t, acts[len(acts)-1].Text, "(-policy "+c.policy+")")
	}
	// A record key that names no address is a data conflict of its own.
	other := write(t, t.TempDir(), "user.json", `{"key": "user:1001", "replicas": {
	  "N1": {"versions": [{"dot": {"actor": "N1#1", "counter": 3}, "timestamp": 1678812345, "node": "N1", "value": {"name": "Alice"}}]},
	  "N2": {"versions": [{"dot": {"actor": "N2#1", "counter": 1}, "timestamp": 1678812350, "node": "N2", "deleted": true}]}}}`)
	_, out, _ := runMain(t, "-record", other, "-policy", "delete-wins", "-json")
	var rep Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Len(t, rep.Incidents, 1)
	assert.Equal(t, "data-conflict", rep.Incidents[0].Kind)
	assert.Contains(t, rep.Incidents[0].Actions[0].Text, "Version B (node N2, a delete) wins")
	assert.Contains(t, rep.Incidents[0].Actions[0].Text, "data loss")
}

// TestTZ: working hours are judged in -tz.
func TestTZ(t *testing.T) {
	s := copySamples(t)
	kinds := func(tz string) []string {
		_, out, _ := runMain(t, "-log", filepath.Join(s, "auth.log"), "-tz", tz, "-json")
		var rep Report
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		var ks []string
		for _, inc := range rep.Incidents {
			ks = append(ks, inc.Kind)
		}
		return ks
	}
	assert.Contains(t, kinds("UTC"), "off-hours-login")
	assert.NotContains(t, kinds("Asia/Kolkata"), "off-hours-login", "03:00Z is 08:30 in Kolkata, a working hour")
}

func TestHelp(t *testing.T) {
	code, out, errs := runMain(t, "-h")
	assert.Equal(t, exitClean, code)
	assert.Empty(t, out)
	assert.Contains(t, errs, "usage: diagnose")
	assert.Contains(t, errs, "-webhook-retries")
}

// TestFirewallSource: a source seen only by the firewall is a hostile
// source, not a brute-force one.
func TestFirewallSource(t *testing.T) {
	log := write(t, t.TempDir(), "fw.log", "2026-03-02T10:00:01.000000+00:00 gw kernel: [UFW BLOCK] IN=eth0 OUT= MAC=02:00:00:00:00:01:02:00:00:00:00:02:08:00 SRC=203.0.113.50 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=1 DF PROTO=TCP SPT=40000 DPT=3389 WINDOW=1024 RES=0x00 SYN URGP=0\n")
	code, out, errs := runMain(t, "-log", log, "-tz", "UTC", "-json")
	require.Equal(t, exitIncidents, code, errs)
	var rep Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Len(t, rep.Incidents, 1)
	inc := rep.Incidents[0]
	assert.Equal(t, "hostile-source", inc.Kind)
	assert.Equal(t, "203.0.113.50 probes this host (risky-port)", inc.Title)
	assert.Contains(t, inc.Actions[0].Text, "Treat the hostile source 203.0.113.50")
	assert.Equal(t, []int64{1}, inc.Evidence[0].Lines)
}
