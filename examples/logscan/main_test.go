package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = "../../logscan/testdata/rfc3339.log"

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestText(t *testing.T) {
	code, out, _ := runCmd(t, "", "-tz", "Europe/Paris", sample)
	assert.Equal(t, 1, code, "findings: exit 1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.GreaterOrEqual(t, len(lines), 4)
	assert.Equal(t, "# top sources (authentication failures)", lines[0])
	assert.Equal(t, "      6 198.51.100.7", lines[1])
	assert.Equal(t, "      3 2001:db8::7", lines[2])
	assert.Contains(t, out, "high brute-force 198.51.100.7 count=6")
	assert.Contains(t, out, "critical success-after-failures 2001:db8::7")
	assert.Contains(t, out, "medium off-hours-login 198.51.100.9")
}

func TestJSONAndStdin(t *testing.T) {
	in := "Mar  2 09:00:08 node1 arpwatch: flip flop 192.0.2.25 2:0:5e:0:53:4 (2:0:5e:0:53:5) eth4\n"
	code, out, _ := runCmd(t, in, "-json", "-tz", "UTC", "-ref", "2026-03-03", "-")
	assert.Equal(t, 1, code)
	var f map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &f))
	assert.Equal(t, "address-conflict", f["rule"])
	assert.Equal(t, "192.0.2.25", f["addr"])
	assert.Equal(t, "critical", f["severity"])
	assert.Equal(t, []any{"02:00:5e:00:53:05", "02:00:5e:00:53:04"}, f["macs"])
	assert.Equal(t, "2026-03-02T09:00:08Z", f["first"])
}

func TestEvents(t *testing.T) {
	code, out, _ := runCmd(t, "", "-events", "-mode", "aggressive", sample)
	assert.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 13)
	var e map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &e))
	assert.Equal(t, float64(2), e["line"])
	assert.Equal(t, "failed-auth", e["kind"])
	assert.Equal(t, "failure", e["role"])
	assert.Equal(t, "198.51.100.7", e["src"])
	assert.Equal(t, "admin", e["user"])
	assert.Equal(t, float64(51000), e["port"])
}

func TestExitCodes(t *testing.T) {
	code, out, _ := runCmd(t, "Mar  2 09:00:00 h CRON[1]: nothing to see\n", "-")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "# findings: 0")

	for _, args := range [][]string{
		{},
		{"-mode", "paranoid", "-"},
		{"-tz", "Mars/Olympus", "-"},
		{"-ref", "yesterday", "-"},
		{"-allow", "not-a-prefix", "-"},
		{"/no/such/file"},
	} {
		code, _, errs := runCmd(t, "", args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.NotEmpty(t, errs, "%v", args)
	}
}

func TestAllowFlag(t *testing.T) {
	code, out, _ := runCmd(t, "", "-allow", "198.51.100.0/24,2001:db8::/32", "-tz", "UTC", sample)
	assert.Equal(t, 0, code, out)
}
