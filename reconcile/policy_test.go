package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type user struct {
	Name string `json:"name"`
	Ver  int    `json:"ver"`
}

func ver[T any](actor string, n uint64, node string, sec int64, val T) Version[T] {
	return Version[T]{Dot: Dot{actor, n}, Timestamp: Unix(sec, 0), Node: node, Value: val}
}

func tomb[T any](actor string, n uint64, node string, sec int64) Version[T] {
	return Version[T]{Dot: Dot{actor, n}, Timestamp: Unix(sec, 0), Node: node, Deleted: true}
}

// TestAuditLineExample renders the audit line of the issue byte for byte.
func TestAuditLineExample(t *testing.T) {
	a := ver("N1#1", 3, "N1", 1678812345, user{"Alice", 3})
	b := ver("N2#1", 1, "N2", 1678812350, user{"Alicia", 3})
	want := `[WARN] Conflict detected for key=user:1001
Version A: timestamp=1678812345, node=N1, value={name: "Alice", ver: 3}
Version B: timestamp=1678812350, node=N2, value={name: "Alicia", ver: 3}
Resolution: Manual required`
	for _, in := range [][]Version[user]{{a, b}, {b, a}, {b, a, b}} {
		d := Manual[user]().Resolve(in)
		assert.Equal(t, want, d.Audit("user:1001"))
		assert.Equal(t, ManualRequired, d.Outcome)
		assert.Nil(t, d.Winner)
		assert.Equal(t, []Version[user]{a, b}, d.Kept)
	}

	d := LWW[user]().Resolve([]Version[user]{b, a})
	assert.Equal(t, `[WARN] Conflict detected for key=user:1001
Version A: timestamp=1678812345, node=N1, value={name: "Alice", ver: 3}
Version B: timestamp=1678812350, node=N2, value={name: "Alicia", ver: 3}
Resolution: Version B wins (lww by timestamp); discarded: Version A`, d.Audit("user:1001"))
	assert.Equal(t, Resolved, d.Outcome)
	assert.Equal(t, &b, d.Winner)
	assert.Equal(t, []Version[user]{a}, d.Discarded)
	assert.Empty(t, d.Warnings, "LWW between two updates names the discard but warns of nothing else")
}

func TestLWWTieBreakChain(t *testing.T) {
	base := func() Version[string] { return ver("x#1", 1, "N1", 100, "v") }
	mod := func(f func(*Version[string])) Version[string] { v := base(); f(&v); return v }
	for _, c := range []struct {
		name       string
		lo, hi     Version[string] // hi must win
		rule       string
		priorityOK bool // PriorityLWW agrees
	}{
		{"later timestamp", base(), mod(func(v *Version[string]) { v.Timestamp = Unix(101, 0); v.Dot.Actor = "a#1" }), "timestamp", true},
		{"hybrid logical counter", base(), mod(func(v *Version[string]) { v.Timestamp.Logical = 1; v.Dot.Actor = "a#1" }), "timestamp", true},
		{"priority on equal time", base(), mod(func(v *Version[string]) { v.Priority = 1; v.Dot.Actor = "a#1" }), "priority", true},
		{"tombstone beats live on a tie", base(), mod(func(v *Version[string]) { v.Deleted = true; v.Value = ""; v.Dot.Actor = "a#1" }), "tombstone", true},
		{"higher node id", base(), mod(func(v *Version[string]) { v.Node = "N2"; v.Dot.Actor = "a#1" }), "node", true},
		{"higher dot", base(), mod(func(v *Version[string]) { v.Dot.Counter = 2 }), "dot", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, in := range [][]Version[string]{{c.lo, c.hi}, {c.hi, c.lo}} {
				d := LWW[string]().Resolve(in)
				require.NotNil(t, d.Winner)
				assert.Equal(t, c.hi, *d.Winner)
				assert.Equal(t, c.rule, d.Rule)
				assert.Equal(t, []Version[string]{c.lo}, d.Discarded)
			}
		})
	}
	t.Run("digest decides between one dot's two contents", func(t *testing.T) {
		x, y := base(), mod(func(v *Version[string]) { v.Value = "w" })
		d1 := LWW[string]().Resolve([]Version[string]{x, y})
		d2 := LWW[string]().Resolve([]Version[string]{y, x})
		assert.Equal(t, "digest", d1.Rule)
		assert.Equal(t, d1, d2)
		require.NotEmpty(t, d1.Warnings)
		assert.Equal(t, WarnDotReuse, d1.Warnings[0].Kind)
	})
}

func TestPriorityLWW(t *testing.T) {
	urgent := ver("a#1", 1, "N1", 100, "urgent")
	urgent.Priority = 9
	late := ver("b#1", 1, "N2", 200, "late")
	d := PriorityLWW[string]().Resolve([]Version[string]{late, urgent})
	assert.Equal(t, "urgent", d.Winner.Value)
	assert.Equal(t, "priority", d.Rule)
	assert.Equal(t, "late", LWW[string]().Resolve([]Version[string]{late, urgent}).Winner.Value)
}

func TestDeleteWins(t *testing.T) {
	upd := ver("a#1", 2, "N1", 200, "edited")
	del := tomb[string]("b#1", 1, "N2", 100)
	p := DeleteWins[string]()
	d := p.Resolve([]Version[string]{upd, del})
	require.Equal(t, Resolved, d.Outcome)
	assert.True(t, d.Winner.Deleted)
	assert.Equal(t, "delete-wins", d.Rule)
	assert.Equal(t, []Version[string]{upd}, d.Discarded)
	require.Len(t, d.Warnings, 1)
	assert.Equal(t, WarnDataLoss, d.Warnings[0].Kind)
	assert.Equal(t, "data loss: delete Version A (node=N2, timestamp=100) discards concurrent update Version B (node=N1, timestamp=200)", d.Warnings[0].Message)
	assert.Equal(t, []Dot{del.Dot, upd.Dot}, d.Warnings[0].Dots)
	assert.Equal(t, `[WARN] Conflict detected for key=k
Version A: timestamp=100, node=N2, deleted=true
Version B: timestamp=200, node=N1, value="edited"
Resolution: Version A wins (delete-wins); discarded: Version B
Warning: data loss: delete Version A (node=N2, timestamp=100) discards concurrent update Version B (node=N1, timestamp=200)`, d.Audit("k"))

	other := ver("c#1", 1, "N3", 150, "other")
	d = p.Resolve([]Version[string]{upd, other})
	assert.Equal(t, ManualRequired, d.Outcome, "without a tombstone delete-wins decides nothing")
	d = Chain(p, LWW[string]()).Resolve([]Version[string]{upd, other})
	assert.Equal(t, "edited", d.Winner.Value)
	assert.Equal(t, "delete-wins>lww", d.Policy)
	assert.Equal(t, "timestamp", d.Rule)
}

func TestAddWins(t *testing.T) {
	upd := ver("a#1", 2, "N1", 100, "kept")
	upd2 := ver("c#1", 1, "N3", 90, "also")
	del := tomb[string]("b#1", 1, "N2", 200)
	d := AddWins[string]().Resolve([]Version[string]{del, upd})
	assert.Equal(t, "kept", d.Winner.Value)
	require.Len(t, d.Warnings, 1)
	assert.Equal(t, WarnResurrection, d.Warnings[0].Kind)

	d = AddWins[string]().Resolve([]Version[string]{del, upd, upd2})
	assert.Equal(t, ManualRequired, d.Outcome)
	assert.Equal(t, []Version[string]{upd2, upd}, d.Kept)
	assert.Equal(t, []Version[string]{del}, d.Discarded)
	assert.Contains(t, d.Audit("k"), "Resolution: Manual required between Version A, Version B; discarded: Version C (add-wins)")

	p, err := ParsePolicy[string]("add-wins")
	require.NoError(t, err)
	d = p.Resolve([]Version[string]{del, upd, upd2})
	assert.Equal(t, "kept", d.Winner.Value)
	assert.Equal(t, []Version[string]{upd2, del}, d.Discarded)

	d = AddWins[string]().Resolve([]Version[string]{del, tomb[string]("c#1", 1, "N3", 50)})
	assert.True(t, d.Winner.Deleted)
	assert.Equal(t, Resolved, d.Outcome)
	assert.Empty(t, d.Warnings, "dropping a duplicate delete loses nothing")
}

func TestFuncAndMergePolicies(t *testing.T) {
	a := ver("a#1", 1, "N1", 100, 3)
	b := ver("b#1", 1, "N2", 90, 7)
	biggest := Func("biggest", func(vs []Version[int]) int {
		best := 0
		for i, v := range vs {
			if v.Value > vs[best].Value {
				best = i
			}
		}
		return best
	})
	d := biggest.Resolve([]Version[int]{a, b})
	assert.Equal(t, 7, d.Winner.Value)
	assert.Equal(t, "custom:biggest", d.Rule)
	assert.Equal(t, ManualRequired, Func("none", func([]Version[int]) int { return 5 }).Resolve([]Version[int]{a, b}).Outcome)

	sum := Merge("sum", func(vs []Version[int]) int {
		s := 0
		for _, v := range vs {
			s += v.Value
		}
		return s
	})
	d = sum.Resolve([]Version[int]{a, b})
	require.Equal(t, Merged, d.Outcome)
	assert.Equal(t, 10, d.Winner.Value)
	assert.Equal(t, Unix(100, 0), d.Winner.Timestamp)
	assert.Equal(t, []Version[int]{b, a}, d.Discarded)
	assert.Empty(t, d.Kept)
	assert.Contains(t, d.Audit("counter"), "Resolution: Merged into value=10 (sum); discarded: Version A, Version B")
}

func TestParsePolicy(t *testing.T) {
	for name, want := range map[string]string{"lww": "lww", "priority-lww": "priority-lww", "manual": "manual", "delete-wins": "delete-wins>lww", "add-wins": "add-wins>lww"} {
		p, err := ParsePolicy[string](name)
		require.NoError(t, err)
		assert.Equal(t, want, p.Name())
	}
	_, err := ParsePolicy[string]("newest")
	assert.ErrorIs(t, err, ErrUnknownPolicy)
	assert.ErrorContains(t, err, `"newest"`)
}

func TestNoConflictAndSkew(t *testing.T) {
	d := LWW[string]().Resolve(nil)
	assert.Equal(t, NoConflict, d.Outcome)
	assert.Nil(t, d.Winner)
	assert.Equal(t, "[INFO] No conflict for key=k\nResolution: nothing to decide", d.Audit("k"))

	v := ver("a#1", 2, "N2", 90, "x")
	v.Follows = Unix(100, 0)
	d = LWW[string]().Resolve([]Version[string]{v, v})
	assert.Equal(t, NoConflict, d.Outcome, "duplicates are one version")
	assert.Equal(t, `[INFO] No conflict for key=k
Version A: timestamp=90, node=N2, value="x"
Resolution: Version A kept
Note: clock skew: Version A (node=N2) carries timestamp=90 but causally follows timestamp=100`, d.Audit("k"))
}

func TestAuditQuotesAndSlog(t *testing.T) {
	a := ver("a#1", 1, "node one", 100, "x\ny")
	a.Priority = -2
	b := tomb[string]("b#1", 1, "N2", 100)
	d := Manual[string]().Resolve([]Version[string]{a, b})
	line := d.Audit("key with space")
	assert.Equal(t, `[WARN] Conflict detected for key="key with space"
Version A: timestamp=100, node="node one", priority=-2, value="x\ny"
Version B: timestamp=100, node=N2, deleted=true
Resolution: Manual required`, line)
	custom := d.Event("k", func(s string) string { return "multi\nline" })
	assert.Equal(t, `"multi\nline"`, custom.Versions[0].Value, "a custom rendering cannot break the line structure")

	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	d.Event("user:7", nil).Log(context.Background(), logger)
	var got map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	assert.Equal(t, "WARN", got["level"])
	assert.Equal(t, "conflict detected", got["msg"])
	assert.Equal(t, "user:7", got["key"])
	assert.Equal(t, "manual", got["outcome"])
	versions := got["versions"].(map[string]any)
	assert.Equal(t, "a#1:1", versions["A"].(map[string]any)["dot"])
	assert.Equal(t, true, versions["B"].(map[string]any)["deleted"])
	d.Event("k", nil).Log(context.Background(), nil) // a nil logger writes nothing

	ev, err := json.Marshal(d.Event("k", nil))
	require.NoError(t, err)
	assert.Contains(t, string(ev), `"outcome":"manual"`)
	dj, err := json.Marshal(d)
	require.NoError(t, err)
	var back Decision[string]
	require.NoError(t, json.Unmarshal(dj, &back))
	assert.Equal(t, d.Audit("k"), back.Audit("k"), "a decision shipped as JSON renders the same audit")
}

// TestPoliciesIgnoreInputOrder is the determinism property: every policy makes
// the same decision, and renders the same audit, for any permutation of its
// input, over version sets drawn from reachable records and from hand-made ties.
func TestPoliciesIgnoreInputOrder(t *testing.T) {
	policies := []Policy[string]{
		LWW[string](), PriorityLWW[string](), DeleteWins[string](), AddWins[string](), Manual[string](),
		Chain(DeleteWins[string](), LWW[string]()), Chain(AddWins[string](), PriorityLWW[string]()),
		Func("first", func(vs []Version[string]) int { return 0 }),
		Merge("concat", func(vs []Version[string]) string {
			var b strings.Builder
			for _, v := range vs {
				b.WriteString(v.Value)
			}
			return b.String()
		}),
	}
	rng := rand.New(rand.NewPCG(5, 5))
	var sets [][]Version[string]
	for _, r := range reachableRecords(rng, 300) {
		sets = append(sets, r.Versions())
	}
	for range 200 { // ties everywhere: few timestamps, nodes, values
		var vs []Version[string]
		for k := range rng.IntN(5) + 1 {
			vs = append(vs, Version[string]{
				Dot: Dot{[]string{"a#1", "b#1"}[rng.IntN(2)], uint64(k%2 + 1)}, Timestamp: Unix(int64(rng.IntN(2)), 0),
				Node: []string{"N1", "N2"}[rng.IntN(2)], Priority: int64(rng.IntN(2)), Deleted: rng.IntN(3) == 0,
				Value: []string{"x", "y"}[rng.IntN(2)],
			})
		}
		sets = append(sets, vs)
	}
	for _, vs := range sets {
		for _, p := range policies {
			want := p.Resolve(vs)
			wantLine := want.Audit("k")
			for range 4 {
				perm := slices.Clone(vs)
				rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
				got := p.Resolve(perm)
				require.Equal(t, want, got, "%s over %v", p.Name(), vs)
				require.Equal(t, wantLine, got.Audit("k"))
			}
			// Every input is accounted for: kept, discarded, or merged away.
			require.Equal(t, len(want.Versions), len(want.Kept)+len(want.Discarded), p.Name())
		}
	}
}
