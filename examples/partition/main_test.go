package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func drillOutput(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	if code != 0 {
		t.Logf("stderr: %s", errb.String())
	}
	return out.String(), code
}

// audit lines as the issue shows them
var (
	header  = regexp.MustCompile(`^\[(WARN|INFO)\] (Conflict detected|No conflict) for key=user:\d+$`)
	version = regexp.MustCompile(`^Version [A-Z]+: timestamp=\d+, node=N\d+, (value=\{name: "[A-Za-z]+", ver: \d\}|deleted=true)$`)
)

func TestDrillConvergesForEveryPolicy(t *testing.T) {
	for _, policy := range []string{"lww", "delete-wins", "manual", "add-wins"} {
		for seed := 1; seed <= 8; seed++ {
			for _, nodes := range []string{"2", "3", "5"} {
				out, code := drillOutput(t, "-policy", policy, "-seed", fmt.Sprint(seed), "-nodes", nodes, "-keys", "6")
				require.Equal(t, 0, code, "policy %s seed %d nodes %s:\n%s", policy, seed, nodes, out)
				require.Contains(t, out, "converged: all nodes hold identical records")
				checkAuditLines(t, out)
				if policy == "manual" {
					assert.NotContains(t, out, " wins (")
				}
			}
		}
	}
}

// checkAuditLines checks the shape of every audit block in the text output.
func checkAuditLines(t *testing.T, out string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	inBlock := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "["):
			require.Regexp(t, header, line)
			inBlock = true
		case inBlock && strings.HasPrefix(line, "Version "):
			require.Regexp(t, version, line)
		case inBlock && line == "":
			inBlock = false
		case inBlock:
			require.Regexp(t, `^(Resolution|Warning|Note): `, line)
		}
	}
}

func TestDrillShowsConflicts(t *testing.T) {
	out, code := drillOutput(t, "-keys", "12", "-seed", "3")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "[WARN] Conflict detected for key=user:")
	assert.Contains(t, out, "Resolution: Version ")
	out, code = drillOutput(t, "-keys", "12", "-seed", "3", "-policy", "manual")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Resolution: Manual required")
	assert.Regexp(t, `user:\d+ = \d+ siblings \[`, out, "manual leaves siblings, identical on every node")
	out, code = drillOutput(t, "-keys", "12", "-seed", "3", "-policy", "delete-wins")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Warning: data loss: delete Version ")
}

func TestDrillIsDeterministic(t *testing.T) {
	a, _ := drillOutput(t, "-seed", "42", "-nodes", "4", "-keys", "9", "-policy", "add-wins")
	b, _ := drillOutput(t, "-seed", "42", "-nodes", "4", "-keys", "9", "-policy", "add-wins")
	assert.Equal(t, a, b)
	c, _ := drillOutput(t, "-seed", "43", "-nodes", "4", "-keys", "9", "-policy", "add-wins")
	assert.NotEqual(t, a, c)
}

func TestDrillJSON(t *testing.T) {
	out, code := drillOutput(t, "-json", "-keys", "8", "-seed", "5")
	require.Equal(t, 0, code)
	var audits, states int
	var last map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if a, ok := m["audit"].(map[string]any); ok {
			audits++
			assert.Contains(t, []any{"resolved", "manual", "merged", "no-conflict"}, a["outcome"])
			assert.Regexp(t, header, strings.SplitN(m["line"].(string), "\n", 2)[0])
		}
		if _, ok := m["state"]; ok {
			states++
		}
		last = m
	}
	assert.Positive(t, audits)
	assert.Equal(t, 3, states)
	assert.Equal(t, map[string]any{"converged": true}, last)
}

func TestDrillFlags(t *testing.T) {
	for _, args := range [][]string{{"-nodes", "1"}, {"-nodes", "27"}, {"-keys", "0"}, {"-policy", "newest"}, {"extra"}, {"-bogus"}} {
		var out, errb bytes.Buffer
		assert.Equal(t, 2, run(args, &out, &errb), "%v", args)
		assert.NotEmpty(t, errb.String())
	}
}
