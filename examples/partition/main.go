// Command partition is the partition drill: it starts N in-process nodes that
// share a keyspace with asynchronous replication, writes, cuts the network,
// makes conflicting writes and deletes on both sides, heals, runs anti-entropy,
// prints every audit line, commits the policy's decisions, and prints the final
// state of each node. It exits 0 only when all nodes converged.
//
//	go run ./examples/partition [-nodes N] [-policy lww|delete-wins|manual|add-wins] [-keys K] [-seed S] [-json]
//
// Everything is simulated in one process with a seeded random source and a
// simulated clock (one node's clock runs behind, to show clock-skew notes), so a
// given seed always prints the same drill.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/addrguard/addrguard/reconcile"
)

// Profile is the replicated value.
type Profile struct {
	Name string `json:"name"`
	Ver  int    `json:"ver"`
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	nodes, keys int
	policy      string
	seed        uint64
	json        bool
}

func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("partition", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.nodes, "nodes", 3, "number of in-process nodes (2 to 26)")
	fs.IntVar(&c.keys, "keys", 4, "number of keys (1 to 1000)")
	fs.StringVar(&c.policy, "policy", "lww", "conflict policy: lww, delete-wins, manual or add-wins")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the drill's random choices")
	fs.BoolVar(&c.json, "json", false, "print JSON lines instead of text")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.nodes < 2 || c.nodes > 26:
		return c, fmt.Errorf("-nodes %d: want 2 to 26", c.nodes)
	case c.keys < 1 || c.keys > 1000:
		return c, fmt.Errorf("-keys %d: want 1 to 1000", c.keys)
	case !slices.Contains([]string{"lww", "delete-wins", "manual", "add-wins"}, c.policy):
		return c, fmt.Errorf("-policy %q: want lww, delete-wins, manual or add-wins", c.policy)
	}
	return c, nil
}

// message is one asynchronous replication of a key from one node to another.
type message struct {
	from, to int
	key      string
}

type drill struct {
	cfg    config
	rng    *rand.Rand
	policy reconcile.Policy[Profile]
	nodes  []*reconcile.Replica[Profile]
	skew   []time.Duration // each node's clock offset
	now    time.Duration   // simulated time since the start
	side   []int           // partition side of each node; all 0 when healed
	queue  []message
	out    *output
}

const start = 1678812300 // simulated wall clock at the start, Unix seconds

func (d *drill) stamp(node int) reconcile.Timestamp {
	d.now += time.Second
	return reconcile.Unix(start, 0).Add(d.now + d.skew[node])
}

func (d *drill) name(i int) string { return d.nodes[i].Node() }

// write reads key at node and writes v (or deletes) with what it read, then
// queues the replication to every other node.
func (d *drill) write(node int, key string, v *Profile) error {
	rec, _ := d.nodes[node].Get(key)
	var err error
	var warns []reconcile.Warning
	if v == nil {
		_, warns, err = d.nodes[node].Delete(key, rec.Context(), d.stamp(node))
		d.out.step("%s deletes %s", d.name(node), key)
	} else {
		_, warns, err = d.nodes[node].Put(key, rec.Context(), reconcile.Version[Profile]{Value: *v, Timestamp: d.stamp(node)})
		d.out.step("%s writes %s = %s", d.name(node), key, reconcile.FormatValue(*v))
	}
	if err != nil {
		return err
	}
	for _, w := range warns {
		d.out.step("  %s: %s", d.name(node), w.Message)
	}
	for to := range d.nodes {
		if to != node {
			d.queue = append(d.queue, message{node, to, key})
		}
	}
	return nil
}

// deliver hands queued replication messages over in random order; those that
// would cross the partition are lost (anti-entropy repairs them later).
func (d *drill) deliver() (delivered, lost int) {
	d.rng.Shuffle(len(d.queue), func(i, j int) { d.queue[i], d.queue[j] = d.queue[j], d.queue[i] })
	for _, m := range d.queue {
		if d.side[m.from] != d.side[m.to] {
			lost++
			continue
		}
		rec, _ := d.nodes[m.from].Get(m.key)
		d.nodes[m.to].Merge(m.key, rec)
		delivered++
	}
	d.queue = d.queue[:0]
	return delivered, lost
}

// antiEntropy has every pair of connected nodes exchange every key until a
// round changes nothing, and returns the rounds it took.
func (d *drill) antiEntropy() int {
	for round := 1; ; round++ {
		changed := false
		for i := range d.nodes {
			for j := range d.nodes {
				if i == j || d.side[i] != d.side[j] {
					continue
				}
				for _, k := range d.nodes[j].Keys() {
					before, _ := d.nodes[i].Get(k)
					remote, _ := d.nodes[j].Get(k)
					d.nodes[i].Merge(k, remote)
					after, _ := d.nodes[i].Get(k)
					changed = changed || !before.Equal(after)
				}
			}
		}
		if !changed || round == 100 {
			return round
		}
	}
}

func (d *drill) keys() []string {
	var ks []string
	for _, n := range d.nodes {
		ks = append(ks, n.Keys()...)
	}
	slices.Sort(ks)
	return slices.Compact(ks)
}

var names = []string{"Alice", "Alicia", "Bob", "Robert", "Carol", "Caroline", "Dave", "David", "Eve", "Evelyn"}

func (d *drill) value(ver int) *Profile {
	return &Profile{Name: names[d.rng.IntN(len(names))], Ver: ver}
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parse(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "partition:", err)
		}
		return 2
	}
	out := &output{w: stdout, json: cfg.json}
	converged, err := drillRun(cfg, out)
	if err != nil {
		fmt.Fprintln(stderr, "partition:", err)
		return 1
	}
	if !converged {
		return 1
	}
	return 0
}

func drillRun(cfg config, out *output) (bool, error) {
	policy, err := reconcile.ParsePolicy[Profile](cfg.policy)
	if err != nil {
		return false, err
	}
	d := &drill{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.seed, 0x9a27)), policy: policy, out: out, side: make([]int, cfg.nodes)}
	for i := range cfg.nodes {
		n, err := reconcile.NewReplica[Profile](fmt.Sprintf("N%d", i+1), reconcile.ReplicaOptions{})
		if err != nil {
			return false, err
		}
		d.nodes = append(d.nodes, n)
		d.skew = append(d.skew, 0)
	}
	slow := 1 + d.rng.IntN(cfg.nodes-1)
	d.skew[slow] = -7 * time.Second // this node's clock runs behind
	keys := make([]string, cfg.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%d", 1001+i)
	}

	out.phase("write", fmt.Sprintf("%d nodes, %d keys, policy %s, seed %d; %s's clock runs 7s behind", cfg.nodes, cfg.keys, policy.Name(), cfg.seed, d.name(slow)))
	for _, k := range keys {
		if err := d.write(d.rng.IntN(cfg.nodes), k, d.value(1)); err != nil {
			return false, err
		}
	}
	d.deliver()
	// The slow node edits one key after reading it: causally later, earlier
	// timestamp.
	if err := d.write(slow, keys[0], d.value(2)); err != nil {
		return false, err
	}
	d.deliver()

	cut := (cfg.nodes + 1) / 2
	for i := cut; i < cfg.nodes; i++ {
		d.side[i] = 1
	}
	var left, right []string
	for i := range cfg.nodes {
		if d.side[i] == 0 {
			left = append(left, d.name(i))
		} else {
			right = append(right, d.name(i))
		}
	}
	out.phase("cut", fmt.Sprintf("network split: {%s} | {%s}", strings.Join(left, " "), strings.Join(right, " ")))
	pick := func(side int) int {
		var ns []int
		for i, s := range d.side {
			if s == side {
				ns = append(ns, i)
			}
		}
		return ns[d.rng.IntN(len(ns))]
	}
	for _, k := range keys {
		a, b := pick(0), pick(1)
		var err error
		switch d.rng.IntN(5) {
		case 0, 1: // write-write
			if err = d.write(a, k, d.value(3)); err == nil {
				err = d.write(b, k, d.value(3))
			}
		case 2: // delete-update
			if err = d.write(a, k, nil); err == nil {
				err = d.write(b, k, d.value(3))
			}
		case 3: // update-delete
			if err = d.write(a, k, d.value(3)); err == nil {
				err = d.write(b, k, nil)
			}
		default: // one side only: no conflict
			err = d.write(a, k, d.value(3))
		}
		if err != nil {
			return false, err
		}
	}
	delivered, lost := d.deliver()
	out.step("replication: %d messages delivered, %d lost at the partition", delivered, lost)

	clear(d.side)
	rounds := d.antiEntropy()
	out.phase("heal", fmt.Sprintf("network healed; anti-entropy converged in %d rounds", rounds))

	out.phase("audit", "every node decides every key; the audit lines must agree byte for byte")
	var commits []string
	for _, k := range d.keys() {
		var lines []string
		var dec reconcile.Decision[Profile]
		for _, n := range d.nodes {
			rec, _ := n.Get(k)
			dec = policy.Resolve(rec.Versions())
			lines = append(lines, dec.Audit(k))
		}
		for i, l := range lines[1:] {
			if l != lines[0] {
				return false, fmt.Errorf("key %s: %s and %s rendered different audit lines:\n%s\n%s", k, d.name(0), d.name(i+1), lines[0], l)
			}
		}
		if dec.Conflict() || len(dec.Warnings) > 0 {
			out.audit(dec.Event(k, nil))
		}
		if dec.Outcome == reconcile.Resolved {
			commits = append(commits, k)
			if err := d.commit(k, dec); err != nil {
				return false, err
			}
		}
	}
	d.deliver()
	rounds = d.antiEntropy()
	out.phase("commit", fmt.Sprintf("%s committed %d decisions; anti-entropy converged in %d rounds", d.name(0), len(commits), rounds))

	// Deleted keys whose tombstones every node has seen are collected.
	d.now += time.Hour
	collected := d.collect(time.Minute)
	out.phase("collect", fmt.Sprintf("%d deleted keys collected (causally stable, older than 1m)", collected))

	out.phase("final", "state of each node")
	var ref []byte
	converged := true
	for i, n := range d.nodes {
		var b []byte
		state := map[string]string{}
		for _, k := range d.keys() {
			rec, ok := n.Get(k)
			if !ok {
				state[k] = "(absent)"
				b = append(b, k+"=absent;"...)
				continue
			}
			enc, err := rec.MarshalBinary()
			if err != nil {
				return false, err
			}
			b = append(append(append(b, k...), '='), enc...)
			state[k] = describe(rec)
		}
		out.state(d.name(i), d.keys(), state)
		if i == 0 {
			ref = b
		} else if string(b) != string(ref) {
			converged = false
		}
	}
	out.result(converged)
	return converged, nil
}

// commit writes the decision at the first node with a context covering every
// version, so it supersedes them all once replicated.
func (d *drill) commit(key string, dec reconcile.Decision[Profile]) error {
	n := d.nodes[0]
	rec, _ := n.Get(key)
	w := dec.Winner
	var err error
	if w.Deleted {
		_, _, err = n.Delete(key, rec.Context(), d.stamp(0))
	} else {
		_, _, err = n.Put(key, rec.Context(), reconcile.Version[Profile]{Value: w.Value, Priority: w.Priority, Timestamp: d.stamp(0)})
	}
	for to := 1; to < len(d.nodes); to++ {
		d.queue = append(d.queue, message{0, to, key})
	}
	return err
}

func (d *drill) collect(grace time.Duration) int {
	now := reconcile.Unix(start, 0).Add(d.now)
	n := 0
	for _, k := range d.keys() {
		var fs []reconcile.Frontier
		for _, node := range d.nodes {
			rec, _ := node.Get(k)
			fs = append(fs, rec.Frontier())
		}
		f := reconcile.Meet(fs...)
		all := true
		for _, node := range d.nodes {
			rec, _ := node.Get(k)
			if _, ok := rec.Collect(f, now, grace); !ok {
				all = false
			}
		}
		if !all {
			continue // collect everywhere or nowhere
		}
		for _, node := range d.nodes {
			node.Collect(k, f, now, grace)
		}
		n++
	}
	return n
}

func describe(r reconcile.Record[Profile]) string {
	vs := r.Versions()
	if len(vs) == 1 {
		if vs[0].Deleted {
			return "(deleted)"
		}
		return reconcile.FormatValue(vs[0].Value)
	}
	var parts []string
	for _, v := range vs {
		if v.Deleted {
			parts = append(parts, "(deleted)")
		} else {
			parts = append(parts, reconcile.FormatValue(v.Value))
		}
	}
	return fmt.Sprintf("%d siblings [%s]", len(vs), strings.Join(parts, " | "))
}

// output prints the drill as text or JSON lines.
type output struct {
	w    io.Writer
	json bool
}

func (o *output) emit(v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(o.w, "%s\n", b)
}

func (o *output) phase(name, msg string) {
	if o.json {
		o.emit(map[string]string{"phase": name, "message": msg})
		return
	}
	fmt.Fprintf(o.w, "== %s: %s\n", name, msg)
}

func (o *output) step(format string, args ...any) {
	if o.json {
		o.emit(map[string]string{"step": fmt.Sprintf(format, args...)})
		return
	}
	fmt.Fprintf(o.w, "   "+format+"\n", args...)
}

func (o *output) audit(e reconcile.AuditEvent) {
	if o.json {
		o.emit(map[string]any{"audit": e, "line": e.String()})
		return
	}
	fmt.Fprintf(o.w, "%s\n\n", e)
}

func (o *output) state(node string, keys []string, state map[string]string) {
	if o.json {
		o.emit(map[string]any{"node": node, "state": state})
		return
	}
	fmt.Fprintf(o.w, "%s:\n", node)
	for _, k := range keys {
		fmt.Fprintf(o.w, "   %s = %s\n", k, state[k])
	}
}

func (o *output) result(converged bool) {
	if o.json {
		o.emit(map[string]bool{"converged": converged})
		return
	}
	if converged {
		fmt.Fprintln(o.w, "converged: all nodes hold identical records")
	} else {
		fmt.Fprintln(o.w, "NOT converged: nodes differ")
	}
}
