package logscan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the fail2ban corpus is in Central European time

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The public corpora live beside the repository (see
// ../../shared/testdata/logs/SOURCES.md); they are GPL and MIT data and are
// never copied into this repository.
const sharedLogs = "../../shared/testdata/logs"

func sharedFile(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(sharedLogs, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("public corpus %s is absent (%v): run with ../shared beside the repository", p, err)
	}
	return p
}

// fail2ban's test harness constants: the zone CET-01CEST-02 and the fixed
// "now" 2005-08-14T10:00:00Z.
func f2bZone(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	return loc
}

var f2bNow = time.Date(2005, 8, 14, 10, 0, 0, 0, time.UTC)

type fedLine struct {
	file string
	num  int
	text string
	want map[string]any // nil: not annotated
}

type filterRun struct {
	name  string
	opts  map[string]any
	lines []fedLine
}

var annotationRE = regexp.MustCompile(`^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$`)

// evalConstraint understands the expressions the sshd corpus uses.
func evalConstraint(t *testing.T, expr string, opts map[string]any) bool {
	mode, _ := opts["mode"].(string)
	switch strings.ReplaceAll(expr, " ", "") {
	case "name=='sshd'":
		return true
	case "opts.get('mode')=='aggressive'":
		return mode == "aggressive"
	case "opts.get('mode')!='aggressive'":
		return mode != "aggressive"
	}
	t.Fatalf("unknown constraint %q", expr)
	return false
}

func canonicalName(opts map[string]any) string {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		if !strings.HasPrefix(k, "test.") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v;", k, opts[k])
	}
	return b.String()
}

// loadF2B replays fail2ban's samplestestcase reading of a test file and its
// addFILE successors: which lines each filter instance (one per option set)
// is fed, in order, with their annotations.
func loadF2B(t *testing.T, first string) (map[string]*filterRun, []string, int) {
	runs := map[string]*filterRun{}
	var order []string
	annotated := 0
	files := []string{first}
	for i := 0; i < len(files); i++ {
		f, err := os.Open(sharedFile(t, "fail2ban/"+files[i]))
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		require.NoError(t, sc.Err())
		f.Close()
		common := map[string]any{}
		var current []*filterRun
		ignoreBlock := false
		for n := 0; n < len(lines); n++ {
			line := lines[n]
			var want map[string]any
			if m := annotationRE.FindStringSubmatch(line); m != nil {
				var data any
				require.NoError(t, json.Unmarshal([]byte(m[2]), &data), "%s:%d", files[i], n+1)
				switch m[1] {
				case "fileOptions":
					common = data.(map[string]any)
					continue
				case "filterOptions":
					current, ignoreBlock = nil, false
					sets, ok := data.([]any)
					if !ok {
						sets = []any{data}
					}
					for _, s := range sets {
						opts := map[string]any{}
						for k, v := range common {
							opts[k] = v
						}
						for k, v := range s.(map[string]any) {
							opts[k] = v
						}
						if c, ok := opts["test.condition"].(string); ok && !evalConstraint(t, c, opts) {
							ignoreBlock = true
							continue
						}
						name := canonicalName(opts)
						r := runs[name]
						if r == nil {
							r = &filterRun{name: name, opts: opts}
							runs[name] = r
							order = append(order, name)
						}
						current = append(current, r)
					}
					continue
				case "addFILE":
					files = append(files, data.(string))
					continue
				}
				want = data.(map[string]any)
				n++
				require.Less(t, n, len(lines), "annotation without a line at %s:%d", files[i], n)
				line = lines[n]
				annotated++
			} else if ignoreBlock || strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if ignoreBlock {
				continue
			}
			if current == nil {
				name := canonicalName(common)
				r := runs[name]
				if r == nil {
					r = &filterRun{name: name, opts: common}
					runs[name] = r
					order = append(order, name)
				}
				current = []*filterRun{r}
			}
			for _, r := range current {
				if c, ok := want["constraint"].(string); ok && !evalConstraint(t, c, r.opts) {
					continue
				}
				r.lines = append(r.lines, fedLine{file: files[i], num: n + 1, text: strings.TrimRight(line, "\r\n"), want: want})
			}
		}
	}
	return runs, order, annotated
}

// journalJSON turns a journal test line "host prog[pid]: msg" into the
// object journalctl -o json prints, stamped with fail2ban's test "now".
func journalJSON(t *testing.T, line string) string {
	host, rest, _ := strings.Cut(line, " ")
	tag, msg, _ := strings.Cut(rest, " ")
	tag = strings.TrimSuffix(tag, ":")
	prog, pid, _ := strings.Cut(tag, "[")
	pid = strings.TrimSuffix(pid, "]")
	obj := map[string]any{
		"__CURSOR":             "s=0;i=1",
		"__REALTIME_TIMESTAMP": fmt.Sprint(f2bNow.UnixMicro()),
		"_HOSTNAME":            host,
		"SYSLOG_IDENTIFIER":    prog,
		"_PID":                 pid,
		"_COMM":                prog,
		"PRIORITY":             "6",
		"MESSAGE":              msg,
	}
	b, err := json.Marshal(obj)
	require.NoError(t, err)
	return string(b)
}

func hostOf(ev Event) string {
	if ev.Src.IsValid() {
		return ev.Src.String()
	}
	return ev.SrcText
}

// TestConformanceFail2ban checks every annotated line of fail2ban's sshd and
// sshd-journal corpus in parity mode, per option set, with one analyzer per
// option set fed the lines in file order as fail2ban's harness does.
func TestConformanceFail2ban(t *testing.T) {
	zone := f2bZone(t)
	runs, order, annotated := loadF2B(t, "sshd")
	require.Equal(t, 284, annotated, "annotated lines in sshd + sshd-journal")
	checkedLines := map[string]bool{}
	checks := 0
	for _, name := range order {
		r := runs[name]
		t.Run(name, func(t *testing.T) {
			mode, err := ParseMode(fmt.Sprint(r.opts["mode"]))
			if r.opts["mode"] == nil {
				mode, err = ModeNormal, nil
			}
			require.NoError(t, err)
			journal := r.opts["logtype"] == "journal"
			var in strings.Builder
			for _, l := range r.lines {
				if journal {
					in.WriteString(journalJSON(t, l.text))
				} else {
					in.WriteString(l.text)
				}
				in.WriteByte('\n')
			}
			events := map[int64]Event{}
			an := New(Options{Mode: mode, Location: zone, Reference: f2bNow})
			err = an.ScanContext(t.Context(), strings.NewReader(in.String()), Handler{Event: func(ev Event) {
				_, dup := events[ev.Line]
				assert.False(t, dup, "two events for line %d", ev.Line)
				events[ev.Line] = ev
			}})
			require.NoError(t, err)
			for i, l := range r.lines {
				if l.want == nil {
					continue
				}
				checks++
				checkedLines[fmt.Sprintf("%s:%d", l.file, l.num)] = true
				ev, ok := events[int64(i+1)]
				failed := ok && ev.Role == RoleFailure
				where := fmt.Sprintf("%s:%d %q (event %+v)", l.file, l.num, l.text, ev)
				wantMatch, _ := l.want["match"].(bool)
				if !assert.Equal(t, wantMatch, failed, "verdict of %s", where) || !wantMatch {
					continue
				}
				for k, v := range l.want {
					switch k {
					case "host", "ip4", "ip6":
						assert.Equal(t, v, hostOf(ev), "%s of %s", k, where)
					case "dns":
						assert.Nil(t, v)
						assert.True(t, ev.Src.IsValid(), "address, not a name, in %s", where)
					case "user":
						assert.Equal(t, v, ev.User, "user of %s", where)
					case "users":
						var want []string
						for _, u := range v.([]any) {
							want = append(want, u.(string))
						}
						got := slices.Clone(ev.Users)
						slices.Sort(got)
						slices.Sort(want)
						assert.Equal(t, want, got, "users of %s", where)
					case "attempts":
						assert.EqualValues(t, v, ev.Attempts, "attempts of %s", where)
					case "time":
						if v != nil {
							assert.Equal(t, v, ev.Time.In(zone).Format("2006-01-02T15:04:05"), "time of %s", where)
						}
					case "match", "desc", "constraint":
					default:
						t.Errorf("unchecked annotation key %q in %s", k, where)
					}
				}
			}
		})
	}
	assert.Len(t, checkedLines, 284, "every annotated line checked at least once")
	t.Logf("%d annotated lines, %d checks over %d option sets", len(checkedLines), checks, len(order))
}
