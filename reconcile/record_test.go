package reconcile

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func put[T any](t *testing.T, r Record[T], actor string, ctx Context, v Version[T]) (Record[T], Version[T]) {
	t.Helper()
	r, stored, err := r.Put(actor, ctx, v)
	require.NoError(t, err)
	return r, stored
}

func TestRecordPutSupersedesWhatTheContextCovers(t *testing.T) {
	var r Record[string]
	r, v1 := put(t, r, "a", Context{}, Version[string]{Value: "v1", Timestamp: Unix(10, 0)})
	read := r.Context()
	r, v2 := put(t, r, "a", Context{}, Version[string]{Value: "v2", Timestamp: Unix(11, 0)}) // blind: concurrent
	assert.Equal(t, Dot{"a", 1}, v1.Dot)
	assert.Equal(t, Dot{"a", 2}, v2.Dot)
	assert.Len(t, r.Versions(), 2)

	r, v3 := put(t, r, "b", read, Version[string]{Value: "v3", Timestamp: Unix(12, 0)}) // saw v1 only
	assert.Equal(t, []Version[string]{v2, v3}, r.Versions(), "v3 supersedes v1, v2 stays a sibling")
	assert.Equal(t, "{a:2, b:1}", r.Clock().String())
	assert.Equal(t, Unix(10, 0), v3.Follows)

	r, del := put(t, r, "a", r.Context(), Version[string]{Value: "ignored", Deleted: true, Timestamp: Unix(13, 0)})
	assert.Equal(t, []Version[string]{del}, r.Versions())
	assert.Equal(t, "", del.Value, "tombstones carry the zero value")
	assert.True(t, r.Deleted())
	assert.Empty(t, r.Live())
	assert.Equal(t, Unix(12, 0), del.Follows)

	_, _, err := r.Put("", Context{}, Version[string]{})
	assert.ErrorIs(t, err, ErrInvalidActor)
	full, err := RecordOf(NewVV(Entry{"a", math.MaxUint64}), Version[string]{Dot: Dot{"a", math.MaxUint64}})
	require.NoError(t, err)
	_, _, err = full.Put("a", Context{}, Version[string]{})
	assert.ErrorIs(t, err, ErrCounterOverflow)
}

// TestDeleteUpdateConflict: a delete and a concurrent update on two sides of a
// partition are both kept as siblings and seen as a conflict.
func TestDeleteUpdateConflict(t *testing.T) {
	var base Record[string]
	base, _ = put(t, base, "N1#1", Context{}, Version[string]{Value: "v1", Timestamp: Unix(100, 0), Node: "N1"})
	left, right := base, base // replicated, then partitioned
	left, _ = put(t, left, "N1#1", left.Context(), Version[string]{Deleted: true, Timestamp: Unix(110, 0), Node: "N1"})
	right, _ = put(t, right, "N2#1", right.Context(), Version[string]{Value: "v2", Timestamp: Unix(105, 0), Node: "N2"})
	merged := Sync(left, right)
	assert.Len(t, merged.Versions(), 2)
	assert.Len(t, merged.Live(), 1)
	d := LWW[string]().Resolve(merged.Versions())
	assert.True(t, d.Winner.Deleted)
	require.Len(t, d.Warnings, 1)
	assert.Equal(t, WarnDataLoss, d.Warnings[0].Kind)
	assert.True(t, merged.Equal(Sync(right, left)))
}

func TestRecordOfValidates(t *testing.T) {
	v := Version[string]{Dot: Dot{"a", 1}, Value: "x"}
	for _, c := range []struct {
		name  string
		clock VV
		vs    []Version[string]
		path  string
	}{
		{"empty actor", NewVV(Entry{"a", 1}), []Version[string]{{Dot: Dot{"", 1}}}, "versions[0].dot"},
		{"zero counter", NewVV(Entry{"a", 1}), []Version[string]{{Dot: Dot{"a", 0}}}, "versions[0].dot"},
		{"not covered", NewVV(Entry{"a", 1}), []Version[string]{v, {Dot: Dot{"a", 2}}}, "versions[1].dot"},
		{"duplicate", NewVV(Entry{"a", 1}), []Version[string]{v, v}, "versions"},
	} {
		_, err := RecordOf(c.clock, c.vs...)
		var re *RecordError
		require.ErrorAs(t, err, &re, c.name)
		assert.Equal(t, c.path, re.Path, c.name)
		assert.ErrorIs(t, err, ErrInvalidRecord)
	}
	r, err := RecordOf(VV{}, Version[string]{Dot: Dot{"b", 3}}, Version[string]{Dot: Dot{"a", 2}})
	require.NoError(t, err)
	assert.Equal(t, "{a:2, b:3}", r.Clock().String(), "a missing clock is derived from the dots")
	assert.Equal(t, []Dot{{"a", 2}, {"b", 3}}, []Dot{r.Versions()[0].Dot, r.Versions()[1].Dot})
}

// TestRecordJSONForm pins the documented JSON form of a replica's record, the
// one examples/diagnose reads.
func TestRecordJSONForm(t *testing.T) {
	in := `{
	  "clock": {"N1#1": 3, "N2#1": 1},
	  "versions": [
	    {"dot": {"actor": "N2#1", "counter": 1}, "timestamp": 1678812350, "node": "N2", "priority": 0, "deleted": false, "value": {"name": "Alicia", "ver": 3}},
	    {"dot": {"actor": "N1#1", "counter": 3}, "timestamp": "1678812345", "node": "N1", "priority": 2, "value": {"name": "Alice", "ver": 3}},
	    {"dot": {"actor": "N1#1", "counter": 2}, "timestamp": "2023-03-14T16:45:40Z", "node": "N1", "deleted": true}
	  ]
	}`
	var r Record[user]
	require.NoError(t, json.Unmarshal([]byte(in), &r))
	vs := r.Versions()
	require.Len(t, vs, 3)
	assert.Equal(t, Version[user]{Dot: Dot{"N1#1", 2}, Timestamp: Unix(1678812340, 0), Node: "N1", Deleted: true}, vs[0])
	assert.Equal(t, Version[user]{Dot: Dot{"N1#1", 3}, Timestamp: Unix(1678812345, 0), Node: "N1", Priority: 2, Value: user{"Alice", 3}}, vs[1])
	out, err := json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"clock":{"N1#1":3,"N2#1":1},"versions":[
	  {"dot":{"actor":"N1#1","counter":2},"timestamp":1678812340,"node":"N1","priority":0,"deleted":true,"value":{"name":"","ver":0}},
	  {"dot":{"actor":"N1#1","counter":3},"timestamp":1678812345,"node":"N1","priority":2,"deleted":false,"value":{"name":"Alice","ver":3}},
	  {"dot":{"actor":"N2#1","counter":1},"timestamp":1678812350,"node":"N2","priority":0,"deleted":false,"value":{"name":"Alicia","ver":3}}]}`, string(out))

	var bad Record[user]
	err = json.Unmarshal([]byte(`{"clock":{"N1#1":1},"versions":[{"dot":{"actor":"N1#1","counter":2}}]}`), &bad)
	assert.ErrorIs(t, err, ErrInvalidRecord)
	assert.ErrorContains(t, err, "versions[0].dot")
	assert.Error(t, json.Unmarshal([]byte(`{"versions":[{"timestamp":"soon"}]}`), &bad))
}

func TestCollectTombstones(t *testing.T) {
	grace := time.Hour
	var r Record[string]
	r, _ = put(t, r, "a", Context{}, Version[string]{Value: "v", Timestamp: Unix(100, 0)})
	peer := r
	r, _ = put(t, r, "a", r.Context(), Version[string]{Deleted: true, Timestamp: Unix(200, 0)})
	late := Unix(200, 0).Add(2 * grace)

	_, gone := r.Collect(Meet(r.Frontier(), peer.Frontier()), late, grace)
	assert.False(t, gone, "the peer has not seen the delete: not causally stable")

	peer = Sync(peer, r)
	_, gone = r.Collect(Meet(peer.Frontier()), Unix(200, 0).Add(grace/2), grace)
	assert.False(t, gone, "younger than the grace period")

	stale := Record[string]{}
	stale, _ = put(t, stale, "b", Context{}, Version[string]{Value: "concurrent", Timestamp: Unix(150, 0)})
	withLive := Sync(peer, stale)
	_, gone = r.Collect(Meet(peer.Frontier(), withLive.Frontier()), late, grace)
	assert.False(t, gone, "a replica still holds a live version: the delete is in conflict")

	empty, gone := r.Collect(Meet(peer.Frontier()), late, grace)
	assert.True(t, gone)
	assert.Equal(t, 0, empty.Len())

	live, _ := put(t, Record[string]{}, "a", Context{}, Version[string]{Value: "x"})
	_, gone = live.Collect(live.Frontier(), late, grace)
	assert.False(t, gone, "only deleted keys are collected")
}

// TestNoZombieAfterCollect: once a causally stable delete is collected, a peer
// that saw the delete cannot bring the deleted value back.
func TestNoZombieAfterCollect(t *testing.T) {
	var a Record[string]
	a, _ = put(t, a, "a", Context{}, Version[string]{Value: "v", Timestamp: Unix(1, 0)})
	b := a
	a, _ = put(t, a, "a", a.Context(), Version[string]{Deleted: true, Timestamp: Unix(2, 0)})
	b = Sync(b, a)
	f := Meet(a.Frontier(), b.Frontier())
	a, gone := a.Collect(f, Unix(100, 0), time.Second)
	require.True(t, gone)
	back := Sync(a, b) // b still holds the tombstone, never the value
	assert.True(t, back.Deleted())
	assert.Empty(t, back.Live())
}

func TestPrune(t *testing.T) {
	var r Record[string]
	r, _ = put(t, r, "old#1", Context{}, Version[string]{Value: "x"})
	r, _ = put(t, r, "new#1", r.Context(), Version[string]{Value: "y"})
	peer := r
	pruned, gone := r.Prune(Meet(r.Frontier(), peer.Frontier()))
	assert.Equal(t, []string{"old#1"}, gone)
	assert.Equal(t, "{new#1:1}", pruned.Clock().String())
	assert.Equal(t, r.Versions(), pruned.Versions(), "pruning never touches a version")

	lagging := Record[string]{}
	_, gone = r.Prune(Meet(r.Frontier(), lagging.Frontier()))
	assert.Empty(t, gone, "a replica that has not seen old#1:1 keeps it from being pruned")
	holder, _ := put(t, Record[string]{}, "old#1", Context{}, Version[string]{Value: "x"})
	_, gone = r.Prune(Meet(r.Frontier(), Sync(holder, r).Frontier(), holder.Frontier()))
	assert.Empty(t, gone, "a replica still holding an old#1 version keeps it")

	// Pruning can only make Sync keep more: a superseded copy may come back as a
	// (false) sibling, never may a live write be dropped.
	stale, _ := put(t, Record[string]{}, "old#1", Context{}, Version[string]{Value: "x"})
	assert.Len(t, Sync(pruned, stale).Versions(), 2)
	assert.Len(t, Sync(r, stale).Versions(), 1)
}

func TestTimestamp(t *testing.T) {
	for _, c := range []struct {
		ts   Timestamp
		text string
	}{
		{Unix(1678812345, 0), "1678812345"},
		{Unix(1678812345, 250_000_000), "1678812345.25"},
		{Timestamp{Wall: 1678812345_000_000_001, Logical: 2}, "1678812345.000000001+2"},
		{Unix(-1, -500_000_000), "-1.5"},
		{Timestamp{}, "0"},
		{Timestamp{Wall: math.MinInt64}, "-9223372036.854775808"},
	} {
		assert.Equal(t, c.text, c.ts.String())
		back, err := ParseTimestamp(c.text)
		require.NoError(t, err, c.text)
		assert.Equal(t, c.ts, back)
		j, err := json.Marshal(c.ts)
		require.NoError(t, err)
		var fromJSON Timestamp
		require.NoError(t, json.Unmarshal(j, &fromJSON))
		assert.Equal(t, c.ts, fromJSON, string(j))
	}
	for _, bad := range []string{"", "x", "1.", "1.1234567891", "1+", "1+x", "1+4294967296", "99999999999999999999", "1e3", "--1", "1+-1", "9223372037"} {
		_, err := ParseTimestamp(bad)
		assert.ErrorIs(t, err, ErrTimestamp, bad)
	}
	assert.Equal(t, Unix(5, 0), FromTime(Unix(5, 0).Time()))
	assert.Equal(t, -1, Unix(1, 0).Compare(Timestamp{Wall: 1e9, Logical: 1}))
	assert.Equal(t, Timestamp{Wall: math.MaxInt64}, Timestamp{Wall: math.MaxInt64 - 1}.Add(time.Hour))
}

func TestHLC(t *testing.T) {
	now := time.Unix(100, 0)
	h := NewHLC(func() time.Time { return now })
	a := h.Now()
	b := h.Now()
	assert.Equal(t, Timestamp{Wall: 100e9}, a)
	assert.Equal(t, Timestamp{Wall: 100e9, Logical: 1}, b, "same wall time: the logical counter moves")
	remote := Timestamp{Wall: 150e9, Logical: 7}
	c := h.Observe(remote)
	assert.Equal(t, Timestamp{Wall: 150e9, Logical: 8}, c, "a reading after a remote one is later than it, though the wall clock is behind")
	now = time.Unix(200, 0)
	assert.Equal(t, Timestamp{Wall: 200e9}, h.Now())
	now = time.Unix(50, 0) // the wall clock jumps back
	assert.Equal(t, 1, h.Now().Compare(Timestamp{Wall: 200e9}), "readings never go backwards")
}

// TestHLCStampsCausalWritesInOrder: a replica whose wall clock is behind still
// stamps a write later than what its client read when the HLC observes it, so
// no clock-skew note arises; a plain wall clock raises one.
func TestHLCStampsCausalWritesInOrder(t *testing.T) {
	fast, err := NewReplica[string]("fast", ReplicaOptions{Clock: NewHLC(func() time.Time { return time.Unix(1000, 0) })})
	require.NoError(t, err)
	slow, err := NewReplica[string]("slow", ReplicaOptions{Clock: NewHLC(func() time.Time { return time.Unix(900, 0) })})
	require.NoError(t, err)
	_, _, err = fast.Put("k", Context{}, Version[string]{Value: "a"})
	require.NoError(t, err)
	rec, _ := fast.Get("k")
	slow.Merge("k", rec)
	v, warns, err := slow.Put("k", rec.Context(), Version[string]{Value: "b"})
	require.NoError(t, err)
	assert.Empty(t, warns)
	assert.False(t, v.Skewed())
	assert.Equal(t, 1, v.Timestamp.Compare(Unix(1000, 0)))

	v, warns, err = slow.Put("k", rec.Context(), Version[string]{Value: "c", Timestamp: Unix(900, 0)})
	require.NoError(t, err)
	assert.True(t, v.Skewed())
	require.Len(t, warns, 1)
	assert.Equal(t, WarnClockSkew, warns[0].Kind)
	assert.Contains(t, warns[0].Message, "carries timestamp=900 but causally follows timestamp=1000")
}

func TestReplicaEpochs(t *testing.T) {
	clk := NewHLC(func() time.Time { return time.Unix(1, 0) })
	n1, err := NewReplica[string]("N1", ReplicaOptions{Clock: clk})
	require.NoError(t, err)
	v, _, err := n1.Put("k", Context{}, Version[string]{Value: "a"})
	require.NoError(t, err)
	assert.Equal(t, Dot{"N1#0", 1}, v.Dot)
	assert.Equal(t, "N1", v.Node)
	v, _, err = n1.Put("k", Context{}, Version[string]{Value: "b"})
	require.NoError(t, err)
	assert.Equal(t, Dot{"N1#0", 2}, v.Dot, "the epoch is kept while the local record is complete")
	v, _, err = n1.Put("other", Context{}, Version[string]{Value: "c"})
	require.NoError(t, err)
	assert.Equal(t, Dot{"N1#1", 1}, v.Dot, "a key the replica does not hold gets a new epoch")
	assert.Equal(t, uint64(2), n1.NextEpoch())

	// The replica loses its data and restarts from its persisted epoch counter.
	rec, _ := n1.Get("k")
	n1, err = NewReplica[string]("N1", ReplicaOptions{FirstEpoch: n1.NextEpoch(), Clock: clk})
	require.NoError(t, err)
	v, _, err = n1.Put("k", Context{}, Version[string]{Value: "d"})
	require.NoError(t, err)
	assert.Equal(t, Dot{"N1#2", 1}, v.Dot)
	// Restored from a stale copy: the old epoch belongs to an earlier
	// incarnation and is not reused.
	n1.Merge("k", rec)
	v, _, err = n1.Put("k", Context{}, Version[string]{Value: "e"})
	require.NoError(t, err)
	assert.Equal(t, Dot{"N1#2", 2}, v.Dot)

	// A client context that has seen more of this replica's epoch than the
	// local record holds means the record lost data: a new epoch.
	n2, err := NewReplica[string]("N2", ReplicaOptions{Clock: clk})
	require.NoError(t, err)
	_, _, err = n2.Put("k", Context{}, Version[string]{Value: "x"})
	require.NoError(t, err)
	before, _ := n2.Get("k")
	_, _, err = n2.Put("k", before.Context(), Version[string]{Value: "y"})
	require.NoError(t, err)
	after, _ := n2.Get("k")
	n2b, err := NewReplica[string]("N2", ReplicaOptions{Clock: clk})
	require.NoError(t, err)
	n2b.Merge("k", before) // the same incarnation numbering, but a record behind the client
	v, _, err = n2b.Put("k", after.Context(), Version[string]{Value: "z"})
	require.NoError(t, err)
	assert.NotEqual(t, "N2#0", v.Dot.Actor)

	_, err = NewReplica[string]("bad#name", ReplicaOptions{})
	assert.ErrorIs(t, err, ErrInvalidActor)
	_, err = NewReplica[string]("", ReplicaOptions{})
	assert.ErrorIs(t, err, ErrInvalidActor)
	node, epoch, ok := ParseActor("riak@host#12")
	assert.True(t, ok)
	assert.Equal(t, "riak@host", node)
	assert.Equal(t, uint64(12), epoch)
	for _, bad := range []string{"N1", "#1", "N1#", "N1#01", "N1#x"} {
		_, _, ok := ParseActor(bad)
		assert.False(t, ok, bad)
	}
}

func TestReplicaSiblingLimits(t *testing.T) {
	r, err := NewReplica[int]("N1", ReplicaOptions{Limits: Limits{WarnSiblings: 2, MaxSiblings: 3}})
	require.NoError(t, err)
	for i := range 3 {
		_, warns, err := r.Put("k", Context{}, Version[int]{Value: i})
		require.NoError(t, err)
		assert.Equal(t, i == 2, len(warns) == 1 && warns[0].Kind == WarnSiblingCap, "write %d", i)
	}
	_, _, err = r.Put("k", Context{}, Version[int]{Value: 9})
	var le *SiblingLimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, SiblingLimitError{Key: "k", Siblings: 4, Limit: 3}, *le)
	assert.True(t, errors.Is(err, ErrSiblingLimit))
	rec, _ := r.Get("k")
	assert.Equal(t, 3, rec.Len(), "a refused write leaves the record unchanged")
	_, _, err = r.Put("k", rec.Context(), Version[int]{Value: 10})
	require.NoError(t, err, "a write that supersedes the siblings is accepted")

	other := Record[int]{}
	for i := range 5 {
		other, _, _ = other.Put("x#1", Context{}, Version[int]{Value: i})
	}
	warns := r.Merge("k", other)
	require.Len(t, warns, 1, "merges are never refused, only warned about")
	rec, _ = r.Get("k")
	assert.Equal(t, 6, rec.Len())
}

func TestReplicaCollectAndPrune(t *testing.T) {
	clk := NewHLC(func() time.Time { return time.Unix(10, 0) })
	a, _ := NewReplica[string]("A", ReplicaOptions{Clock: clk})
	b, _ := NewReplica[string]("B", ReplicaOptions{Clock: clk})
	_, _, err := a.Put("k", Context{}, Version[string]{Value: "v"})
	require.NoError(t, err)
	rec, _ := a.Get("k")
	_, _, err = a.Delete("k", rec.Context(), Timestamp{})
	require.NoError(t, err)
	rec, _ = a.Get("k")
	b.Merge("k", rec)
	f := Meet(rec.Frontier(), func() Frontier { r, _ := b.Get("k"); return r.Frontier() }())
	assert.False(t, a.Collect("k", f, Unix(11, 0), time.Hour))
	assert.True(t, a.Collect("k", f, Unix(10000, 0), time.Hour))
	assert.Empty(t, a.Keys())
	assert.False(t, a.Collect("k", f, Unix(10000, 0), time.Hour), "nothing left to collect")
	assert.Nil(t, a.Prune("missing", f))

	_, _, err = b.Put("j", Context{}, Version[string]{Value: "1"})
	require.NoError(t, err)
	got := map[string]int{}
	for k, r := range b.All() {
		got[k] = r.Len()
	}
	assert.Equal(t, map[string]int{"j": 1, "k": 1}, got)
}

// TestReplicaEpochRuleGuards covers each guard of the epoch rule on its own, in
// a restarted replica, with or without its persisted epoch counter: whatever
// epochs of its own it can see in the local record or the client's context, it
// must not reuse a dot an earlier incarnation issued.
func TestReplicaEpochRuleGuards(t *testing.T) {
	clk := NewHLC(func() time.Time { return time.Unix(1, 0) })
	rec := func(clock VV, dots ...Dot) Record[string] {
		var vs []Version[string]
		for _, d := range dots {
			vs = append(vs, Version[string]{Dot: d, Node: "N1", Value: d.String(), Timestamp: Unix(1, 0)})
		}
		r, err := RecordOf(clock, vs...)
		require.NoError(t, err)
		return r
	}
	for _, c := range []struct {
		name       string
		firstEpoch uint64
		otherFirst bool // the restarted replica first writes another key
		local      Record[string]
		ctx        VV
		want       string
	}{
		{
			// Restarted with its persisted counter: epoch 1 is an earlier
			// incarnation's, below FirstEpoch.
			name:       "epoch below FirstEpoch",
			firstEpoch: 2,
			otherFirst: true,
			local:      rec(NewVV(Entry{"N1#1", 1}), Dot{"N1#1", 1}),
			ctx:        NewVV(Entry{"N1#1", 1}),
			want:       "N1#3",
		},
		{
			// Epoch 0 of the local record is not one this incarnation started.
			name:  "own epoch of an earlier incarnation",
			local: rec(NewVV(Entry{"N1#0", 1}), Dot{"N1#0", 1}),
			ctx:   NewVV(Entry{"N1#0", 1}),
			want:  "N1#1",
		},
		{
			// This incarnation started epoch 0 (for another key), but the client
			// has seen more of N1#0 for this key than the local record holds.
			name:       "context ahead of the local record",
			otherFirst: true,
			local:      rec(NewVV(Entry{"N1#0", 1}), Dot{"N1#0", 1}),
			ctx:        NewVV(Entry{"N1#0", 2}),
			want:       "N1#1",
		},
		{
			// The client has seen a newer epoch of this node for this key.
			name:       "newer epoch in the context",
			otherFirst: true,
			local:      rec(NewVV(Entry{"N1#0", 1}), Dot{"N1#0", 1}),
			ctx:        NewVV(Entry{"N1#0", 1}, Entry{"N1#3", 1}),
			want:       "N1#4",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := NewReplica[string]("N1", ReplicaOptions{Clock: clk, FirstEpoch: c.firstEpoch})
			require.NoError(t, err)
			if c.otherFirst {
				v, _, err := n.Put("other", Context{}, Version[string]{Value: "o"})
				require.NoError(t, err)
				require.Equal(t, ActorID("N1", c.firstEpoch), v.Dot.Actor)
			}
			n.Merge("k", c.local)
			v, _, err := n.Put("k", Context{Clock: c.ctx}, Version[string]{Value: "new"})
			require.NoError(t, err)
			assert.Equal(t, c.want, v.Dot.Actor)
		})
	}
}

// TestReplicaRestartWithoutEpochCounterLosesNoWrite is kv679 end to end: N1
// writes twice, a peer supersedes the second write, N1 loses its data and
// restarts without its epoch counter from a stale copy. Its next write must
// reach the peer as a sibling instead of being taken for the superseded one.
func TestReplicaRestartWithoutEpochCounterLosesNoWrite(t *testing.T) {
	clk := NewHLC(func() time.Time { return time.Unix(1, 0) })
	n1, _ := NewReplica[string]("N1", ReplicaOptions{Clock: clk})
	peer, _ := NewReplica[string]("P", ReplicaOptions{Clock: clk})
	_, _, err := n1.Put("k", Context{}, Version[string]{Value: "a"})
	require.NoError(t, err)
	stale, _ := n1.Get("k")
	_, _, err = n1.Put("k", stale.Context(), Version[string]{Value: "b"})
	require.NoError(t, err)
	rec, _ := n1.Get("k")
	peer.Merge("k", rec)
	_, _, err = peer.Put("k", rec.Context(), Version[string]{Value: "c"}) // supersedes b
	require.NoError(t, err)

	n1, _ = NewReplica[string]("N1", ReplicaOptions{Clock: clk}) // data and counter lost
	n1.Merge("k", stale)
	d, _, err := n1.Put("k", stale.Context(), Version[string]{Value: "d"})
	require.NoError(t, err)
	assert.NotEqual(t, Dot{"N1#0", 2}, d.Dot, "the superseded write's dot")
	rec, _ = n1.Get("k")
	peer.Merge("k", rec)
	got, _ := peer.Get("k")
	var vals []string
	for _, v := range got.Versions() {
		vals = append(vals, v.Value)
	}
	assert.ElementsMatch(t, []string{"c", "d"}, vals)
}

// TestCollectNeedsCausalStability: every known replica's clock must cover a
// tombstone before it is collected, also when no replica holds anything live
// that the tombstone lacks.
func TestCollectNeedsCausalStability(t *testing.T) {
	late := Unix(1000, 0)
	r, _ := put(t, Record[string]{}, "a", Context{}, Version[string]{Deleted: true, Timestamp: Unix(1, 0)})
	_, gone := r.Collect(Meet(r.Frontier(), Record[string]{}.Frontier()), late, time.Second)
	assert.False(t, gone, "a known replica that has not seen the delete at all")

	peer, _ := put(t, Record[string]{}, "b", Context{}, Version[string]{Deleted: true, Timestamp: Unix(1, 0)})
	both := Sync(r, peer) // two concurrent deletes; peer has seen only its own
	_, gone = both.Collect(Meet(both.Frontier(), peer.Frontier()), late, time.Second)
	assert.False(t, gone, "a known replica that has seen only one of the deletes")
	_, gone = both.Collect(Meet(both.Frontier(), Sync(peer, both).Frontier()), late, time.Second)
	assert.True(t, gone, "once it has seen both")
}

// TestPruneKeepsOwnLiveActors: Prune folds in the record's own frontier, so an
// actor whose version is live here keeps its clock entry even when the given
// frontier (from peers that superseded that version) would allow pruning it.
func TestPruneKeepsOwnLiveActors(t *testing.T) {
	r, _ := put(t, Record[string]{}, "x#1", Context{}, Version[string]{Value: "v"})
	peer, _ := put(t, r, "p#1", r.Context(), Version[string]{Value: "w"}) // supersedes x#1:1
	pruned, gone := r.Prune(peer.Frontier())
	assert.Empty(t, gone)
	_, err := RecordOf(pruned.Clock(), pruned.Versions()...)
	assert.NoError(t, err, "every version's dot is still covered by the clock")
}
