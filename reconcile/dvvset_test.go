package reconcile

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cases below port the behaviour of every eunit test in Riak's dvvset.erl
// (join, update, sync, syn_update, event, lww_last, reconcile, less, equal,
// size, ids_values, map), with the expected values of the reference, the
// examples of the Dotted-Version-Vectors README, and of the Riak client
// interleavings (riak_test's sibling_explosion and the README's two
// scenarios, in interleave_test.go). Erlang tuples {Entries, Anonymous} are
// written with set(), entries with en(). Two deliberate differences: a zero
// counter counts as a missing entry (dvvset's less and equal tell them apart),
// and the anonymous list is kept in canonical order (dvvset's sync leaves it
// in the order of sets:to_list), so that equal histories encode equally.

func en[T any](actor string, n uint64, vs ...T) DVVEntry[T] {
	return DVVEntry[T]{Actor: actor, Counter: n, Values: vs}
}

func set[T any](t testing.TB, anon []T, es ...DVVEntry[T]) DVVSet[T] {
	t.Helper()
	s, err := DVVSetOf(es, anon...)
	require.NoError(t, err)
	return s
}

// must unwraps an update that the test expects to succeed.
func must[S any](s S, err error) S {
	if err != nil {
		panic(err)
	}
	return s
}

func vvOf(kv ...any) VV {
	var e []Entry
	for i := 0; i < len(kv); i += 2 {
		e = append(e, Entry{kv[i].(string), uint64(kv[i+1].(int))})
	}
	return NewVV(e...)
}

// assertSet compares structure: entries (counters and dotted values) and the
// anonymous list.
func assertSet[T any](t *testing.T, want, got DVVSet[T], name string) {
	t.Helper()
	assert.Equal(t, want.Entries(), got.Entries(), name+": entries")
	assert.Equal(t, want.Anonymous(), got.Anonymous(), name+": anonymous")
}

func TestDVVSetJoin(t *testing.T) {
	A := NewDVVSet("v1")
	A1 := must(A.Update("a"))
	B := NewDVVSetAt(A1.Join(), "v2")
	B1 := must(B.UpdateWith(A1, "b"))
	assert.Equal(t, VV{}, A.Join())
	assert.Equal(t, vvOf("a", 1), A1.Join())
	assert.Equal(t, vvOf("a", 1, "b", 1), B1.Join())
}

func TestDVVSetUpdate(t *testing.T) {
	A0 := must(NewDVVSet("v1").Update("a"))
	A1 := must(NewDVVSetAt(A0.Join(), "v2").UpdateWith(A0, "a"))
	A2 := must(NewDVVSetAt(A1.Join(), "v3").UpdateWith(A1, "b"))
	A3 := must(NewDVVSetAt(A0.Join(), "v4").UpdateWith(A1, "b"))
	A4 := must(NewDVVSetAt(A0.Join(), "v5").UpdateWith(A1, "a"))
	for _, c := range []struct {
		name      string
		got, want DVVSet[string]
	}{
		{"A0", A0, set(t, nil, en("a", 1, "v1"))},
		{"A1", A1, set(t, nil, en("a", 2, "v2"))},
		{"A2", A2, set(t, nil, en[string]("a", 2), en("b", 1, "v3"))},
		{"A3", A3, set(t, nil, en("a", 2, "v2"), en("b", 1, "v4"))},
		{"A4", A4, set(t, nil, en("a", 3, "v5", "v2"))},
	} {
		assertSet(t, c.want, c.got, c.name)
	}
}

func TestDVVSetUpdateRejectsNonClientSets(t *testing.T) {
	for _, s := range []DVVSet[string]{NewDVVSet[string](), NewDVVSet("v1", "v2"), set(t, nil, en("a", 1, "v1"))} {
		_, err := s.Update("a")
		assert.ErrorIs(t, err, ErrClientSet)
		_, err = s.UpdateWith(DVVSet[string]{}, "a")
		assert.ErrorIs(t, err, ErrClientSet)
	}
}

func TestDVVSetSync(t *testing.T) {
	X := set[string](t, nil, en[string]("x", 1))
	A := must(NewDVVSet("v1").Update("a"))
	Y := must(NewDVVSet("v2").Update("b"))
	A1 := must(NewDVVSetAt(A.Join(), "v2").Update("a"))
	A3 := must(NewDVVSetAt(A1.Join(), "v3").Update("b"))
	A4 := must(NewDVVSetAt(A1.Join(), "v3").Update("c"))
	F := func(l, r string) bool { return l > r }
	W := set[string](t, nil, en[string]("a", 1))
	Z := set(t, nil, en("a", 2, "v2", "v1"))
	sync := SyncDVVSets[string]

	cases := []struct {
		name      string
		got, want DVVSet[string]
	}{
		{"sync(W,Z)", sync(W, Z), set(t, nil, en("a", 2, "v2"))},
		{"sync(W,Z)=sync(Z,W)", sync(W, Z), sync(Z, W)},
		{"sync(A,A1)=sync(A1,A)", sync(A, A1), sync(A1, A)},
		{"sync(A4,A3)=sync(A3,A4)", sync(A4, A3), sync(A3, A4)},
		{"sync(A4,A3)", sync(A4, A3), set(t, nil, en[string]("a", 2), en("b", 1, "v3"), en("c", 1, "v3"))},
		{"sync(X,A)", sync(X, A), set(t, nil, en("a", 1, "v1"), en[string]("x", 1))},
		{"sync(X,A)=sync(A,X)", sync(X, A), sync(A, X)},
		{"sync(A,Y)", sync(A, Y), set(t, nil, en("a", 1, "v1"), en("b", 1, "v2"))},
		{"sync(Y,A)=sync(A,Y)", sync(Y, A), sync(A, Y)},
		{"lww(F,A4)=sync(A4,lww(F,A4))", A4.LWW(F), sync(A4, A4.LWW(F))},
	}
	for _, c := range cases {
		assertSet(t, c.want, c.got, c.name)
	}
}

func TestDVVSetSyncUpdate(t *testing.T) {
	A0 := must(NewDVVSet("v1").Update("a"))                // Mary writes v1 without a context
	VV1 := A0.Join()                                       // Peter reads v1 with its context
	A1 := must(NewDVVSet("v2").UpdateWith(A0, "a"))        // Mary writes v2 without a context
	A2 := must(NewDVVSetAt(VV1, "v3").UpdateWith(A1, "a")) // Peter writes v3 with the context of v1
	assert.Equal(t, vvOf("a", 1), VV1)
	assertSet(t, set(t, nil, en("a", 1, "v1")), A0, "A0")
	assertSet(t, set(t, nil, en("a", 2, "v2", "v1")), A1, "A1")
	// v3 supersedes v1, which Peter had seen, but not v2.
	assertSet(t, set(t, nil, en("a", 3, "v3", "v2")), A2, "A2")
}

func TestDVVSetEvent(t *testing.T) {
	A := must(NewDVVSet("v1").Update("a")).entries
	assert.Equal(t, []DVVEntry[string]{en("a", 2, "v2", "v1")}, must(event(A, "a", "v2")))
	assert.Equal(t, []DVVEntry[string]{en("a", 1, "v1"), en("b", 1, "v2")}, must(event(A, "b", "v2")))
	assert.Equal(t, []DVVEntry[string]{en("a", 1, "v1")}, A, "event must not change its input")
}

// TestDVVSetCounterOverflow: an actor at the maximum counter cannot take
// another event; the counter must not wrap to zero.
func TestDVVSetCounterOverflow(t *testing.T) {
	full := set(t, nil, en("a", math.MaxUint64, "v"))
	_, err := NewDVVSetAt(full.Join(), "w").UpdateWith(full, "a")
	assert.ErrorIs(t, err, ErrCounterOverflow)
	assert.ErrorContains(t, err, "actor a")
	_, err = NewDVVSetAt(full.Join(), "w").Update("a")
	assert.ErrorIs(t, err, ErrCounterOverflow)
	s, err := NewDVVSet("w").UpdateWith(full, "b")
	require.NoError(t, err, "another actor can still write")
	assert.Equal(t, []string{"v", "w"}, s.Values())
}

type tsValue struct {
	V  int `json:"v"`
	TS int `json:"ts"`
}

func TestDVVSetLWWAndLast(t *testing.T) {
	F := func(a, b int) bool { return a <= b }
	F2 := func(a, b tsValue) bool { return a.TS <= b.TS }
	X := set(t, nil, en("a", 4, 5, 2), en[int]("b", 1), en("c", 1, 3))
	Y := set(t, []int{10, 0}, en("a", 4, 5, 2), en[int]("b", 1), en("c", 1, 3))
	Z := set(t, []int{3}, en("a", 4, 5, 2), en("b", 1, 1))
	A := set(t, []tsValue{{2, 1001140}}, en("a", 4, tsValue{5, 1002345}, tsValue{7, 1002340}), en("b", 1, tsValue{4, 1001340}))

	for _, c := range []struct {
		name string
		s    DVVSet[int]
		last int
	}{{"X", X, 5}, {"Y", Y, 10}} {
		got, ok := c.s.Last(F)
		assert.True(t, ok)
		assert.Equal(t, c.last, got, "last(F,%s)", c.name)
	}
	assertSet(t, set(t, nil, en("a", 4, 5), en[int]("b", 1), en[int]("c", 1)), X.LWW(F), "lww(F,X)")
	assertSet(t, set(t, []int{10}, en[int]("a", 4), en[int]("b", 1), en[int]("c", 1)), Y.LWW(F), "lww(F,Y)")
	assertSet(t, set(t, nil, en("a", 4, 5), en[int]("b", 1)), Z.LWW(F), "lww(F,Z)")
	assertSet(t, set(t, nil, en("a", 4, tsValue{5, 1002345}), en[tsValue]("b", 1)), A.LWW(F2), "lww(F2,A)")

	// Ties go to the later candidate (find_entry2 takes the right value when
	// F(A, B) holds): entries in actor order, then the anonymous values.
	tie := func(int, int) bool { return true }
	last, _ := X.Last(tie)
	assert.Equal(t, 3, last, "last(tie,X)")
	assertSet(t, set(t, nil, en[int]("a", 4), en[int]("b", 1), en("c", 1, 3)), X.LWW(tie), "lww(tie,X)")
	last, _ = Z.Last(tie)
	assert.Equal(t, 3, last, "last(tie,Z): the anonymous value")
	assertSet(t, set(t, []int{3}, en[int]("a", 4), en[int]("b", 1)), Z.LWW(tie), "lww(tie,Z)")

	_, ok := DVVSet[int]{}.Last(F)
	assert.False(t, ok, "an empty set has no last value")
	assertSet(t, DVVSet[int]{}, DVVSet[int]{}.LWW(F), "lww of an empty set")
}

func TestDVVSetReconcile(t *testing.T) {
	sum := func(l []int) int {
		s := 0
		for _, v := range l {
			s += v
		}
		return s
	}
	least := func(l []int) int { return slices.Min(l) }
	X := set(t, nil, en("a", 4, 5, 2), en[int]("b", 1), en("c", 1, 3))
	Y := set(t, []int{10, 0}, en("a", 4, 5, 2), en[int]("b", 1), en("c", 1, 3))
	hist := func(anon int) DVVSet[int] {
		return set(t, []int{anon}, en[int]("a", 4), en[int]("b", 1), en[int]("c", 1))
	}
	assertSet(t, hist(10), X.Reconcile(sum), "reconcile(F1,X)")
	assertSet(t, hist(20), Y.Reconcile(sum), "reconcile(F1,Y)")
	assertSet(t, hist(2), X.Reconcile(least), "reconcile(F2,X)")
	assertSet(t, hist(0), Y.Reconcile(least), "reconcile(F2,Y)")
	// The README's example.
	R := set(t, []int{10, 1}, en("a", 4, 5, 2), en[int]("b", 1))
	assertSet(t, set(t, []int{18}, en[int]("a", 4), en[int]("b", 1)), R.Reconcile(sum), "README reconcile")
}

// TestDVVSetAnonymousValues pins dvvset's rule for the anonymous list (README:
// "the only way to supersede values in the AL is to dominate the global VV"):
// sync keeps the anonymous values of a side whose history strictly descends,
// otherwise both sides'; update syncs the client's history with the server's
// first, so a write whose context equals the server's history keeps them.
// Expected values are worked out by hand from dvvset.erl's sync/2 and update/3.
func TestDVVSetAnonymousValues(t *testing.T) {
	X := set(t, []int{18}, en[int]("a", 4), en[int]("b", 1)) // a reconciled value
	W := set(t, nil, en("c", 1, 7))                          // a concurrent write
	Z := must(NewDVVSetAt(X.Join(), 99).Update("a"))         // a newer write, client-only update
	Y := must(NewDVVSetAt(X.Join(), 99).UpdateWith(X, "a"))  // the same write against the server's set
	for _, c := range []struct {
		name      string
		got, want DVVSet[int]
	}{
		{"update(new(join(X),99),a)", Z, set(t, nil, en("a", 5, 99), en[int]("b", 1))},
		{"update(new(join(X),99),X,a)", Y, set(t, []int{18}, en("a", 5, 99), en[int]("b", 1))},
		{"sync([X,Z])", X.Sync(Z), set(t, nil, en("a", 5, 99), en[int]("b", 1))},
		{"sync([Z,X])", Z.Sync(X), set(t, nil, en("a", 5, 99), en[int]("b", 1))},
		{"sync([X,W])", X.Sync(W), set(t, []int{18}, en[int]("a", 4), en[int]("b", 1), en("c", 1, 7))},
		{"sync([Y,Z])", Y.Sync(Z), set(t, []int{18}, en("a", 5, 99), en[int]("b", 1))},
	} {
		assertSet(t, c.want, c.got, c.name)
	}
}

// TestDVVSetSyncAnonymousOrder: with anonymous values, dvvset's sync is not
// associative. A value superseded by a later write survives when it is first
// merged with a concurrent history; the replicas still converge once the
// results meet (equal histories keep both lists). Worked out by hand from
// dvvset.erl's sync/2.
func TestDVVSetSyncAnonymousOrder(t *testing.T) {
	a := set(t, []int{1}, en[int]("a", 1)) // anonymous 1 with history {a:1}
	b := set(t, []int{2}, en[int]("b", 1)) // anonymous 2 with history {b:1}
	c := set(t, nil, en("a", 2, 3))        // a write that saw {a:1}
	leftFirst, rightFirst := a.Sync(b).Sync(c), a.Sync(b.Sync(c))
	assertSet(t, set(t, []int{1, 2}, en("a", 2, 3), en[int]("b", 1)), leftFirst, "sync(sync(a,b),c)")
	assertSet(t, set(t, []int{2}, en("a", 2, 3), en[int]("b", 1)), rightFirst, "sync(a,sync(b,c))")
	assertSet(t, leftFirst, rightFirst.Sync(leftFirst), "the two orders converge")
	assertSet(t, leftFirst, leftFirst.Sync(rightFirst), "the two orders converge")
}

func TestDVVSetLess(t *testing.T) {
	A := must(NewDVVSet("v1").Update("[a]"))
	B := must(NewDVVSetAt(A.Join(), "v2").Update("a"))
	B2 := must(NewDVVSetAt(A.Join(), "v2").Update("b"))
	B3 := must(NewDVVSetAt(A.Join(), "v2").Update("z"))
	C := must(NewDVVSetAt(B.Join(), "v3").UpdateWith(A, "c"))
	D := must(NewDVVSetAt(C.Join(), "v4").UpdateWith(B2, "d"))
	sets := map[string]DVVSet[string]{"A": A, "B": B, "B2": B2, "B3": B3, "C": C, "D": D}
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"A", "B", true}, {"A", "C", true}, {"B", "C", true}, {"B", "D", true},
		{"B2", "D", true}, {"A", "D", true},
		{"B2", "C", false}, {"B", "B2", false}, {"B2", "B", false}, {"A", "A", false},
		{"C", "C", false}, {"D", "B2", false}, {"B3", "D", false},
	} {
		assert.Equal(t, c.less, sets[c.a].Less(sets[c.b]), "less(%s,%s)", c.a, c.b)
	}
}

func TestDVVSetEqual(t *testing.T) {
	A := set(t, []string{"v0"}, en("a", 4, "v5", "v0"), en[string]("b", 0), en("c", 1, "v3"))
	B := set(t, nil, en("a", 4, "v555", "v0"), en[string]("b", 0), en("c", 1, "v3"))
	C := set(t, []string{"v6", "v1"}, en("a", 4, "v5", "v0"), en[string]("b", 0))
	// Only the causal history counts.
	assert.True(t, A.Equal(B))
	assert.True(t, B.Equal(A))
	assert.False(t, A.Equal(C))
	assert.False(t, B.Equal(C))
	// A zero entry is the same as a missing one.
	assert.True(t, C.Equal(set(t, []string{"v9"}, en("a", 4, "v1", "v2"))))
}

func TestDVVSetSize(t *testing.T) {
	assert.Equal(t, 1, NewDVVSet("v1").Size())
	assert.Equal(t, 5, set(t, []string{"v4", "v1"}, en("a", 4, "v5", "v0"), en[string]("b", 0), en("c", 1, "v3")).Size())
}

func TestDVVSetIDsValues(t *testing.T) {
	A := set(t, []string{"v1"}, en("a", 4, "v0", "v5"), en[string]("b", 0), en("c", 1, "v3"))
	B := set(t, nil, en("a", 4, "v0", "v555"), en[string]("b", 0), en("c", 1, "v3"))
	C := set(t, []string{"v1", "v6"}, en[string]("a", 4), en[string]("b", 0))
	assert.Equal(t, []string{"a", "b", "c"}, A.IDs())
	assert.Equal(t, []string{"a", "b", "c"}, B.IDs())
	assert.Equal(t, []string{"a", "b"}, C.IDs())
	sorted := func(s DVVSet[string]) []string { return slices.Sorted(slices.Values(s.Values())) }
	assert.Equal(t, []string{"v0", "v1", "v3", "v5"}, sorted(A))
	assert.Equal(t, []string{"v0", "v3", "v555"}, sorted(B))
	assert.Equal(t, []string{"v1", "v6"}, sorted(C))
}

func TestDVVSetMap(t *testing.T) {
	A := set(t, []int{10}, en[int]("a", 4), en[int]("b", 0), en[int]("c", 1))
	B := set(t, []int{20, 10}, en("a", 4, 5, 0), en[int]("b", 0), en("c", 1, 2))
	double := func(x int) int { return x * 2 }
	assertSet(t, set(t, []int{20}, en[int]("a", 4), en[int]("b", 0), en[int]("c", 1)), MapDVVSet(A, double), "map(F,A)")
	assertSet(t, set(t, []int{40, 20}, en("a", 4, 10, 0), en[int]("b", 0), en("c", 1, 4)), MapDVVSet(B, double), "map(F,B)")
}

func TestDVVSetOfRejectsBadParts(t *testing.T) {
	_, err := DVVSetOf([]DVVEntry[string]{en("a", 1, "v1", "v0")})
	assert.ErrorIs(t, err, ErrInvalidRecord)
	_, err = DVVSetOf([]DVVEntry[string]{en[string]("a", 1), en[string]("a", 2)})
	assert.ErrorIs(t, err, ErrInvalidRecord)
}
