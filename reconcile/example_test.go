package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/addrguard/addrguard/reconcile"
)

type User struct {
	Name string `json:"name"`
	Ver  int    `json:"ver"`
}

// Two replicas change user:1001 on both sides of a partition. On reconnect Sync
// keeps both writes as siblings; a policy decides and the audit line, identical
// on every replica, says what happened.
func Example() {
	var base reconcile.Record[User]
	base, _, _ = base.Put("N1#1", reconcile.Context{}, reconcile.Version[User]{
		Value: User{"Al", 2}, Timestamp: reconcile.Unix(1678812300, 0), Node: "N1"})

	a, b := base, base // replicated, then the network splits
	a, _, _ = a.Put("N1#1", a.Context(), reconcile.Version[User]{
		Value: User{"Alice", 3}, Timestamp: reconcile.Unix(1678812345, 0), Node: "N1"})
	b, _, _ = b.Put("N2#1", b.Context(), reconcile.Version[User]{
		Value: User{"Alicia", 3}, Timestamp: reconcile.Unix(1678812350, 0), Node: "N2"})

	merged := reconcile.Sync(a, b) // siblings kept, nothing lost
	fmt.Println(reconcile.Manual[User]().Resolve(merged.Versions()).Audit("user:1001"))
	fmt.Println()
	fmt.Println(reconcile.LWW[User]().Resolve(merged.Versions()).Audit("user:1001"))
	// Output:
	// [WARN] Conflict detected for key=user:1001
	// Version A: timestamp=1678812345, node=N1, value={name: "Alice", ver: 3}
	// Version B: timestamp=1678812350, node=N2, value={name: "Alicia", ver: 3}
	// Resolution: Manual required
	//
	// [WARN] Conflict detected for key=user:1001
	// Version A: timestamp=1678812345, node=N1, value={name: "Alice", ver: 3}
	// Version B: timestamp=1678812350, node=N2, value={name: "Alicia", ver: 3}
	// Resolution: Version B wins (lww by timestamp); discarded: Version A
}

// A delete on one side and an update on the other are both kept: the
// tombstone is a sibling like any version, so the conflict is seen.
func ExampleDeleteWins() {
	var r reconcile.Record[string]
	r, _, _ = r.Put("N1#1", reconcile.Context{}, reconcile.Version[string]{Value: "draft", Timestamp: reconcile.Unix(100, 0), Node: "N1"})
	left, right := r, r
	left, _, _ = left.Put("N1#1", left.Context(), reconcile.Version[string]{Deleted: true, Timestamp: reconcile.Unix(110, 0), Node: "N1"})
	right, _, _ = right.Put("N2#1", right.Context(), reconcile.Version[string]{Value: "final", Timestamp: reconcile.Unix(120, 0), Node: "N2"})

	policy := reconcile.Chain(reconcile.DeleteWins[string](), reconcile.LWW[string]())
	d := policy.Resolve(reconcile.Sync(left, right).Versions())
	fmt.Println(d.Audit("doc:7"))
	// Output:
	// [WARN] Conflict detected for key=doc:7
	// Version A: timestamp=110, node=N1, deleted=true
	// Version B: timestamp=120, node=N2, value="final"
	// Resolution: Version A wins (delete-wins>lww by delete-wins); discarded: Version B
	// Warning: data loss: delete Version A (node=N1, timestamp=110) discards concurrent update Version B (node=N2, timestamp=120)
}

// Version vectors compare four ways; a missing entry is zero.
func ExampleVV_Compare() {
	a := reconcile.NewVV(reconcile.Entry{Actor: "N1", Counter: 2})
	b := reconcile.NewVV(reconcile.Entry{Actor: "N1", Counter: 2}, reconcile.Entry{Actor: "N2", Counter: 0})
	c := reconcile.NewVV(reconcile.Entry{Actor: "N2", Counter: 1})
	fmt.Println(a.Compare(b), a.Compare(c), a.Compare(a.Merge(c)), a.Merge(c))
	// Output: equal concurrent before {N1:2, N2:1}
}

// The README's flow of a DVVSet on a server: a client writes with the context
// of its read, and the value it had not seen stays as a sibling.
func ExampleDVVSet() {
	s, _ := reconcile.NewDVVSet("v1").Update("A")              // Mary writes v1
	ctx := s.Join()                                            // Peter reads v1
	s, _ = reconcile.NewDVVSet("v2").UpdateWith(s, "A")        // Mary writes v2 without a context
	s, _ = reconcile.NewDVVSetAt(ctx, "v3").UpdateWith(s, "A") // Peter writes v3 having read v1
	fmt.Println(s.Values(), s.Join())
	// Output: [v3 v2] {A:3}
}

// A replica picks the actor epoch itself: a key it does not hold, or a restart
// after data loss, starts a new epoch, so no dot is ever reused.
func ExampleReplica() {
	r, _ := reconcile.NewReplica[string]("N1", reconcile.ReplicaOptions{})
	v, _, _ := r.Put("user:1", reconcile.Context{}, reconcile.Version[string]{Value: "a", Timestamp: reconcile.Unix(1, 0)})
	fmt.Println(v.Dot)
	restarted, _ := reconcile.NewReplica[string]("N1", reconcile.ReplicaOptions{FirstEpoch: r.NextEpoch()})
	v, _, _ = restarted.Put("user:1", reconcile.Context{}, reconcile.Version[string]{Value: "b", Timestamp: reconcile.Unix(2, 0)})
	fmt.Println(v.Dot)
	// Output:
	// N1#0:1
	// N1#1:1
}

// A decision is also a structured event for log/slog.
func ExampleAuditEvent_Log() {
	a := reconcile.Version[int]{Dot: reconcile.Dot{Actor: "N1#1", Counter: 1}, Timestamp: reconcile.Unix(5, 0), Node: "N1", Value: 1}
	b := reconcile.Version[int]{Dot: reconcile.Dot{Actor: "N2#1", Counter: 1}, Timestamp: reconcile.Unix(6, 0), Node: "N2", Value: 2}
	d := reconcile.LWW[int]().Resolve([]reconcile.Version[int]{a, b})
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	d.Event("counter", nil).Log(context.Background(), logger)
	// Output:
	// level=WARN msg="conflict detected" key=counter conflict=true policy=lww outcome=resolved rule=timestamp winner=B kept=B discarded=A versions.A.dot=N1#1:1 versions.A.timestamp=5 versions.A.node=N1 versions.A.value=1 versions.B.dot=N2#1:1 versions.B.timestamp=6 versions.B.node=N2 versions.B.value=2
}

// A replica's record in its JSON form, as examples/diagnose reads it.
func ExampleRecord_UnmarshalJSON() {
	data := []byte(`{"versions": [
	  {"dot": {"actor": "N1#1", "counter": 3}, "timestamp": 1678812345, "node": "N1", "value": {"name": "Alice", "ver": 3}},
	  {"dot": {"actor": "N2#1", "counter": 1}, "timestamp": 1678812350, "node": "N2", "deleted": true}]}`)
	var r reconcile.Record[User]
	if err := json.Unmarshal(data, &r); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Clock(), len(r.Versions()), r.Deleted())
	// Output: {N1#1:3, N2#1:1} 2 false
}
