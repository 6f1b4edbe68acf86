package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/* from the current output")

// runMain runs the program in-process.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runEnv(t, env{open: openProber, backoff: time.Millisecond}, args...)
}

func runEnv(t *testing.T, e env, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb, e)
	return code, out.String(), errb.String()
}

// copySamples copies the bundled samples to a temporary directory (opening
// an IPAM store writes a lock file beside it) and returns the directory.
func copySamples(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(sampleDir)
	require.NoError(t, err)
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(sampleDir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644))
	}
	return dir
}

// sampleArgs names every sample file in dir with its flag.
func sampleArgs(dir string) []string {
	var args []string
	for _, c := range []struct {
		flag  string
		names []string
	}{{"pool", samplePools}, {"store", sampleStores}, {"pcap", samplePcaps}, {"log", sampleLogs}, {"record", sampleRecords}} {
		for _, n := range c.names {
			args = append(args, "-"+c.flag, filepath.Join(dir, n))
		}
	}
	return args
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// builtBinary builds the program once per test process.
func builtBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "diagnose-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "diagnose")
		goTool := "go"
		if root := os.Getenv("GOROOT"); root != "" {
			goTool = filepath.Join(root, "bin", "go")
		} else if _, err := exec.LookPath("go"); err != nil {
			goTool = "/usr/local/go/bin/go"
		}
		out, err := exec.Command(goTool, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	require.NoError(t, buildErr, "go build: %s", binPath)
	return binPath
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binPath != "" && buildErr == nil {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestGolden checks the text and JSON reports on the bundled samples.
func TestGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{{"report.txt", nil}, {"report.json", []string{"-json"}}} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runMain(t, c.args...)
			require.Equal(t, exitIncidents, code, errs)
			assert.Empty(t, errs)
			path := filepath.Join("testdata", "golden", c.name)
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(out), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -run TestGolden -update")
			assert.Equal(t, string(want), out)
		})
	}
}

// TestSampleStory checks what the golden report must say, so that a golden
// file rewritten with -update cannot silently lose the story.
func TestSampleStory(t *testing.T) {
	code, out, _ := runMain(t, "-json")
	require.Equal(t, exitIncidents, code)
	var rep Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.NotEmpty(t, rep.Incidents)
	inc := rep.Incidents[0]
	assert.Equal(t, "INC-1", inc.ID)
	assert.Equal(t, "address-conflict", inc.Kind)
	assert.Equal(t, "198.51.100.77", inc.Subject)
	assert.Equal(t, Critical, inc.Severity)
	assert.Equal(t, High, inc.Confidence)
	assert.Equal(t, []string{eastMAC, westMAC}, inc.MACs)
	assert.Equal(t, []string{"capture", "log", "pools", "store", "record"}, inc.Sources, "one incident joins every source")
	what := map[string]Evidence{}
	for _, e := range inc.Evidence {
		what[e.Source+"/"+e.What] = e
	}
	assert.NotEmpty(t, what["capture/arp-conflict"].Frames)
	assert.NotEmpty(t, what["capture/dad-probe-answered"].Frames)
	assert.Contains(t, what["capture/request-id-repeat"].Text, `"req-7f3c"`)
	assert.Equal(t, []int64{12, 13}, what["log/address-conflict"].Lines)
	assert.Equal(t, []string{"east/east-pods", "west/west-vips"}, what["pools/overlap"].Pools)
	assert.Equal(t, "198.51.100.70-198.51.100.120", what["pools/overlap"].Range)
	assert.Equal(t, "lease/198.51.100.77", what["record/conflict"].Key)
	assert.Contains(t, what["record/conflict"].Audit, "Conflict detected for key=lease/198.51.100.77")
	var books []string
	for _, a := range inc.Actions {
		books = append(books, a.Playbook)
	}
	assert.Equal(t, []string{"find-second-holder", "separate-subnets", "reserve-ranges", "probe-before-binding", "announce-after-move", "resolve-data-conflict"}, books)
	assert.Contains(t, inc.Actions[0].Text, westMAC+" showed up with 198.51.100.77")
	require.Len(t, inc.Timeline, 2)
	kinds := map[string]bool{}
	for _, l := range inc.Timeline {
		for _, m := range l.Marks {
			kinds[m.Kind] = true
		}
	}
	for _, k := range []string{"claim", "ping", "probe", "log"} {
		assert.True(t, kinds[k], "timeline marks of kind %s", k)
	}

	byKind := map[string]*Incident{}
	for _, i := range rep.Incidents {
		byKind[i.Kind] = i
	}
	require.Contains(t, byKind, "hostile-source")
	assert.Equal(t, "203.0.113.9", byKind["hostile-source"].Subject)
	assert.Equal(t, "treat-brute-force", byKind["hostile-source"].Actions[0].Playbook)
	require.Contains(t, byKind, "off-hours-login")
	assert.Equal(t, []int64{14}, byKind["off-hours-login"].Evidence[0].Lines)
	require.Contains(t, byKind, "pool-exhaustion")
	assert.Equal(t, "east/east-pods", byKind["pool-exhaustion"].Subject)
	assert.Equal(t, 4, rep.Summary.Incidents)
	require.Len(t, rep.Pools, 4)
	for _, p := range rep.Pools {
		assert.NotNil(t, p.Utilization, p.Pool)
	}
}

// TestDeterministic runs the report twice: same bytes.
func TestDeterministic(t *testing.T) {
	_, a, _ := runMain(t, "-json")
	_, b, _ := runMain(t, "-json")
	assert.Equal(t, a, b)
}

// TestExplicitSamples names the sample files with flags: the same
// incidents as the bundled run, under the files' own names.
func TestExplicitSamples(t *testing.T) {
	dir := copySamples(t)
	code, out, errs := runMain(t, append(sampleArgs(dir), "-tz", "UTC", "-json")...)
	require.Equal(t, exitIncidents, code, errs)
	_, bundled, _ := runMain(t, "-json")
	want := strings.Replace(bundled, `"bundled samples (`+samplesDir+`)"`, `"inputs"`, 1)
	want = strings.ReplaceAll(want, samplesDir, dir)
	assert.Equal(t, want, out)
}

// TestReadmeOutput: the README's Quick start shows the real output of
// go run ./examples/diagnose, which is the golden report.
func TestReadmeOutput(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Skipf("no README.md two directories up: %v", err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "golden", "report.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(readme), "```\ngo run ./examples/diagnose\n```")
	assert.Contains(t, string(readme), "```\n"+string(want)+"```", "paste testdata/golden/report.txt into README.md's Quick start")
}
