package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Outcome says how a [Decision] ended.
type Outcome uint8

// The outcomes of a decision.
const (
	// NoConflict: at most one version; nothing was decided.
	NoConflict Outcome = iota
	// Resolved: one version wins; the others are discarded.
	Resolved
	// Merged: a custom function combined the versions into a new value.
	Merged
	// ManualRequired: several versions remain; a person or the application must
	// choose.
	ManualRequired
)

var outcomeNames = [...]string{"no-conflict", "resolved", "merged", "manual"}

// String returns "no-conflict", "resolved", "merged" or "manual".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + itoa(int(o)) + ")"
}

// MarshalText renders the outcome's name.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads an outcome's name.
func (o *Outcome) UnmarshalText(b []byte) error {
	if i := slices.Index(outcomeNames[:], string(b)); i >= 0 {
		*o = Outcome(i)
		return nil
	}
	return fmt.Errorf("unknown outcome %q", b)
}

// WarningKind classifies a [Warning].
type WarningKind string

// The kinds of warning a decision or a replica raises.
const (
	// WarnDataLoss: a live update was discarded in favour of a delete.
	WarnDataLoss WarningKind = "data-loss"
	// WarnResurrection: a delete was discarded in favour of a concurrent update;
	// the key lives on (Dynamo's resurfacing deletes).
	WarnResurrection WarningKind = "resurrection"
	// WarnClockSkew: a version carries a timestamp earlier than a write it
	// causally follows; timestamp-based choices involving it are suspect.
	WarnClockSkew WarningKind = "clock-skew"
	// WarnDotReuse: two different versions carry one dot; an actor reused a
	// counter after losing its history.
	WarnDotReuse WarningKind = "dot-reuse"
	// WarnSiblingCap: a record holds more siblings than the warning level.
	WarnSiblingCap WarningKind = "sibling-cap"
)

// Warning is one thing an audit reader should know about a decision or a write.
type Warning struct {
	Kind    WarningKind `json:"kind"`
	Message string      `json:"message"`
	// Dots are the versions concerned, in audit order.
	Dots []Dot `json:"dots,omitempty"`
}

// Decision is what a [Policy] made of a set of versions. Every field is
// exported and has a JSON form, so a decision can be stored, shipped and
// rendered elsewhere ([Decision.Audit], [Decision.Event]).
type Decision[T any] struct {
	// Policy names the policy (a chain as "delete-wins>lww").
	Policy string `json:"policy"`
	// Outcome says how it ended.
	Outcome Outcome `json:"outcome"`
	// Rule is why the winner won: a step of the tie-break chain ("timestamp",
	// "priority", "tombstone", "node", "dot", "digest"), "delete-wins",
	// "add-wins", or "custom:NAME" / "merge:NAME".
	Rule string `json:"rule,omitempty"`
	// Versions are all distinct input versions in audit order: by timestamp,
	// priority, tombstone, node, dot and digest. Version A is the first.
	Versions []Version[T] `json:"versions"`
	// Winner is the surviving version (or the merged one), nil when several or
	// none remain.
	Winner *Version[T] `json:"winner,omitempty"`
	// Kept are the versions that remain, in audit order (the winner alone when
	// resolved; several when manual; none when merged).
	Kept []Version[T] `json:"kept"`
	// Discarded are the versions the decision drops, in audit order.
	Discarded []Version[T] `json:"discarded,omitempty"`
	// Warnings are data-loss, resurrection, clock-skew and dot-reuse notes.
	Warnings []Warning `json:"warnings,omitempty"`
}

// Conflict reports whether the decision was about two or more versions.
func (d Decision[T]) Conflict() bool { return len(d.Versions) > 1 }

// Policy resolves conflicting versions of one key deterministically: the
// decision depends only on the set of versions, never on their order, on map
// iteration or on the replica deciding. Policies chain ([Chain]): a policy that
// leaves several versions passes them to the next.
type Policy[T any] interface {
	// Name identifies the policy in decisions and audit lines.
	Name() string
	// Resolve decides among versions (duplicates are ignored).
	Resolve(versions []Version[T]) Decision[T]
	// narrow decides among the candidates idx of c.
	narrow(c *candidates[T], idx []int) step[T]
}

// candidates are the distinct input versions in audit order.
type candidates[T any] struct {
	vs []versionKey[T]
	// reused are the dots that two or more distinct versions carry, in dot
	// order, once per extra version.
	reused []Dot
}

// step is what one policy made of a candidate subset.
type step[T any] struct {
	kept, discarded []int
	merged          *Version[T]
	rule            string
}

func newCandidates[T any](versions []Version[T]) *candidates[T] {
	vs := make([]versionKey[T], 0, len(versions))
	for _, v := range versions {
		if v.Deleted {
			var zero T
			v.Value = zero
		}
		vs = append(vs, versionKey[T]{Version: v})
	}
	// Only versions that share a dot need a digest: to drop exact duplicates and
	// to order a reused dot's versions. compareLWW reaches the digest only when
	// the dots are equal, so the others never need one.
	c := &candidates[T]{}
	slices.SortFunc(vs, func(a, b versionKey[T]) int { return a.Dot.Compare(b.Dot) })
	for i := 0; i < len(vs); {
		j := i + 1
		for j < len(vs) && vs[j].Dot == vs[i].Dot {
			j++
		}
		if j-i > 1 {
			run := vs[i:j]
			for k := range run {
				run[k].digest = versionDigest(run[k].Version)
			}
			slices.SortFunc(run, func(a, b versionKey[T]) int { return cmp.Compare(a.digest, b.digest) })
			n := len(slices.CompactFunc(run, func(a, b versionKey[T]) bool { return a.digest == b.digest }))
			for range n - 1 {
				c.reused = append(c.reused, run[0].Dot)
			}
			vs = slices.Delete(vs, i+n, j)
			j = i + n
		}
		i = j
	}
	slices.SortFunc(vs, func(a, b versionKey[T]) int { c, _ := compareLWW(a, b, false); return c })
	c.vs = vs
	return c
}

// resolve runs p over versions and assembles the decision.
func resolve[T any](p Policy[T], versions []Version[T]) Decision[T] {
	c := newCandidates(versions)
	d := Decision[T]{Policy: p.Name(), Versions: make([]Version[T], len(c.vs)), Kept: []Version[T]{}}
	for i, v := range c.vs {
		d.Versions[i] = v.Version
	}
	all := make([]int, len(c.vs))
	for i := range all {
		all[i] = i
	}
	var s step[T]
	if len(c.vs) <= 1 {
		s = step[T]{kept: all}
	} else {
		s = p.narrow(c, all)
	}
	slices.Sort(s.kept)
	slices.Sort(s.discarded)
	for _, i := range s.kept {
		d.Kept = append(d.Kept, c.vs[i].Version)
	}
	for _, i := range s.discarded {
		d.Discarded = append(d.Discarded, c.vs[i].Version)
	}
	d.Rule = s.rule
	switch {
	case s.merged != nil:
		d.Outcome, d.Winner = Merged, s.merged
	case len(c.vs) <= 1:
		d.Outcome = NoConflict
		if len(c.vs) == 1 {
			d.Winner = &d.Kept[0]
		}
	case len(s.kept) == 1:
		d.Outcome, d.Winner = Resolved, &d.Kept[0]
	default:
		d.Outcome = ManualRequired
	}
	d.Warnings = c.warnings(s)
	return d
}

// warnings derives the notes every decision carries, in a fixed order.
func (c *candidates[T]) warnings(s step[T]) []Warning {
	var ws []Warning
	desc := func(i int) string {
		v := c.vs[i]
		what := "update"
		if v.Deleted {
			what = "delete"
		}
		return fmt.Sprintf("%s Version %s (node=%s, timestamp=%s)", what, label(i), quoteWord(v.Node), v.Timestamp)
	}
	if s.merged == nil && len(s.kept) == 1 {
		w := s.kept[0]
		for _, i := range s.discarded {
			switch {
			case c.vs[w].Deleted && !c.vs[i].Deleted:
				ws = append(ws, Warning{Kind: WarnDataLoss, Message: "data loss: " + desc(w) + " discards concurrent " + desc(i), Dots: []Dot{c.vs[w].Dot, c.vs[i].Dot}})
			case !c.vs[w].Deleted && c.vs[i].Deleted:
				ws = append(ws, Warning{Kind: WarnResurrection, Message: "resurrection: " + desc(w) + " survives concurrent " + desc(i), Dots: []Dot{c.vs[w].Dot, c.vs[i].Dot}})
			}
		}
	}
	for _, d := range c.reused {
		ws = append(ws, Warning{Kind: WarnDotReuse, Message: "dot reuse: two different versions carry dot " + d.String() + "; an actor lost its history", Dots: []Dot{d}})
	}
	for i, v := range c.vs {
		if v.Skewed() {
			ws = append(ws, skewWarning(v.Version, "Version "+label(i)))
		}
	}
	return ws
}

func skewWarning[T any](v Version[T], name string) Warning {
	if name == "" {
		name = "write " + v.Dot.String()
	}
	return Warning{Kind: WarnClockSkew, Message: fmt.Sprintf("clock skew: %s (node=%s) carries timestamp=%s but causally follows timestamp=%s", name, quoteWord(v.Node), v.Timestamp, v.Follows), Dots: []Dot{v.Dot}}
}

// policy is the common implementation behind the constructors.
type policy[T any] struct {
	name string
	fn   func(c *candidates[T], idx []int) step[T]
}

func (p policy[T]) Name() string                               { return p.name }
func (p policy[T]) Resolve(vs []Version[T]) Decision[T]        { return resolve[T](p, vs) }
func (p policy[T]) narrow(c *candidates[T], idx []int) step[T] { return p.fn(c, idx) }
func undecided[T any](idx []int) step[T]                       { return step[T]{kept: slices.Clone(idx)} }
func only[T any](w int, idx []int, rule string) step[T] {
	return step[T]{kept: []int{w}, discarded: without(idx, w), rule: rule}
}
func without(idx []int, w int) []int {
	return slices.DeleteFunc(slices.Clone(idx), func(i int) bool { return i == w })
}
func latest[T any](c *candidates[T], idx []int, priorityFirst bool) int {
	return maxBy(c, idx, priorityFirst)
}

func maxBy[T any](c *candidates[T], idx []int, priorityFirst bool) int {
	best := idx[0]
	for _, i := range idx[1:] {
		if r, _ := compareLWW(c.vs[i], c.vs[best], priorityFirst); r > 0 {
			best = i
		}
	}
	return best
}

// LWW returns the last-writer-wins policy: the version with the latest
// timestamp wins, ties broken by priority, then tombstone over live (a delete
// wins a tie, as in Cassandra), node id, dot and value digest, a total order, so
// it always picks exactly one. Discarding a concurrent update is data loss by
// design; the decision names every discarded version.
func LWW[T any]() Policy[T] { return lwwPolicy[T]("lww", false) }

// PriorityLWW is [LWW] with business priority first: the highest priority wins,
// then the latest timestamp, then the same chain.
func PriorityLWW[T any]() Policy[T] { return lwwPolicy[T]("priority-lww", true) }

func lwwPolicy[T any](name string, priorityFirst bool) Policy[T] {
	return policy[T]{name: name, fn: func(c *candidates[T], idx []int) step[T] {
		w := maxBy(c, idx, priorityFirst)
		runner := -1
		for _, i := range idx {
			if i != w && (runner < 0 || func() bool { r, _ := compareLWW(c.vs[i], c.vs[runner], priorityFirst); return r > 0 }()) {
				runner = i
			}
		}
		_, rule := compareLWW(c.vs[w], c.vs[runner], priorityFirst)
		return only[T](w, idx, rule.String())
	}}
}

// DeleteWins returns the policy under which a delete beats every concurrent
// update: when a tombstone is among the versions, the latest tombstone wins and
// each discarded update is named in a data-loss warning. Without a tombstone it
// decides nothing; chain it ([Chain]) to decide the rest.
func DeleteWins[T any]() Policy[T] {
	return policy[T]{name: "delete-wins", fn: func(c *candidates[T], idx []int) step[T] {
		tombs := slices.DeleteFunc(slices.Clone(idx), func(i int) bool { return !c.vs[i].Deleted })
		if len(tombs) == 0 {
			return undecided[T](idx)
		}
		return only[T](latest(c, tombs, false), idx, "delete-wins")
	}}
}

// AddWins returns the policy under which an update beats every concurrent
// delete (observed-remove semantics): tombstones are discarded, with a
// resurrection note, when any live version exists. Several live versions remain
// for the next policy in a chain; with only tombstones the latest one is kept.
func AddWins[T any]() Policy[T] {
	return policy[T]{name: "add-wins", fn: func(c *candidates[T], idx []int) step[T] {
		live := slices.DeleteFunc(slices.Clone(idx), func(i int) bool { return c.vs[i].Deleted })
		switch len(live) {
		case 0:
			return only[T](latest(c, idx, false), idx, "add-wins")
		case len(idx):
			return undecided[T](idx)
		}
		tombs := slices.DeleteFunc(slices.Clone(idx), func(i int) bool { return !c.vs[i].Deleted })
		return step[T]{kept: live, discarded: tombs, rule: "add-wins"}
	}}
}

// Manual returns the policy that decides nothing: every version is kept as a
// sibling and the audit says "Manual required".
func Manual[T any]() Policy[T] {
	return policy[T]{name: "manual", fn: func(_ *candidates[T], idx []int) step[T] { return undecided[T](idx) }}
}

// Func returns a custom policy named name: pick sees the candidate versions in
// audit order (so it cannot depend on input order) and returns the index of the
// winner, or -1 (or any index out of range) to decide nothing. pick must be a
// pure function for decisions to agree across replicas.
func Func[T any](name string, pick func(versions []Version[T]) int) Policy[T] {
	return policy[T]{name: name, fn: func(c *candidates[T], idx []int) step[T] {
		vs := make([]Version[T], len(idx))
		for k, i := range idx {
			vs[k] = c.vs[i].Version
		}
		w := pick(vs)
		if w < 0 || w >= len(idx) {
			return undecided[T](idx)
		}
		return only[T](idx[w], idx, "custom:"+name)
	}}
}

// Merge returns a custom policy named name that combines the candidate versions
// (in audit order, tombstones included) into one new value, as a CRDT merge or a
// field-wise union would. The merged version has no dot, the latest timestamp and
// the highest priority of its inputs; every input is discarded, as superseded by
// the merge rather than lost. Store the result with a write whose context covers
// all of them.
func Merge[T any](name string, merge func(versions []Version[T]) T) Policy[T] {
	return policy[T]{name: name, fn: func(c *candidates[T], idx []int) step[T] {
		vs := make([]Version[T], len(idx))
		m := Version[T]{}
		for k, i := range idx {
			vs[k] = c.vs[i].Version
			m.Timestamp = maxTime(m.Timestamp, vs[k].Timestamp)
			if k == 0 || vs[k].Priority > m.Priority {
				m.Priority = vs[k].Priority
			}
		}
		m.Value = merge(vs)
		return step[T]{discarded: slices.Clone(idx), merged: &m, rule: "merge:" + name}
	}}
}

// Chain returns the policy that applies ps in turn: each sees only the versions
// the previous ones kept, and the chain stops once one version (or a merge)
// remains. Discards and warnings accumulate.
func Chain[T any](ps ...Policy[T]) Policy[T] {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name()
	}
	return policy[T]{name: strings.Join(names, ">"), fn: func(c *candidates[T], idx []int) step[T] {
		acc := undecided[T](idx)
		for _, p := range ps {
			if len(acc.kept) < 2 || acc.merged != nil {
				break
			}
			s := p.narrow(c, acc.kept)
			acc.kept, acc.merged = s.kept, s.merged
			acc.discarded = append(acc.discarded, s.discarded...)
			if s.rule != "" {
				acc.rule = s.rule
			}
		}
		return acc
	}}
}

// ParsePolicy returns the policy a command line names: "lww", "priority-lww",
// "manual", "delete-wins" (DeleteWins, then LWW among updates) or "add-wins"
// (AddWins, then LWW among updates).
func ParsePolicy[T any](name string) (Policy[T], error) {
	switch name {
	case "lww":
		return LWW[T](), nil
	case "priority-lww":
		return PriorityLWW[T](), nil
	case "manual":
		return Manual[T](), nil
	case "delete-wins":
		return Chain(DeleteWins[T](), LWW[T]()), nil
	case "add-wins":
		return Chain(AddWins[T](), LWW[T]()), nil
	}
	return nil, fmt.Errorf("%w %q: want lww, priority-lww, manual, delete-wins or add-wins", ErrUnknownPolicy, name)
}
