package reconcile

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
)

// AuditEvent is the structured record of one decision about one key, with values
// already rendered as text. Everything in it is a function of the decision and
// the key alone, so every replica that decides the same versions produces the
// same event and, through [AuditEvent.String], the same bytes.
type AuditEvent struct {
	Level    slog.Level     `json:"level"`
	Key      string         `json:"key"`
	Conflict bool           `json:"conflict"`
	Policy   string         `json:"policy"`
	Outcome  Outcome        `json:"outcome"`
	Rule     string         `json:"rule,omitempty"`
	Versions []AuditVersion `json:"versions"`
	// Winner is the winning version's label, or "merged".
	Winner string `json:"winner,omitempty"`
	// Merged is the rendered merged value when Outcome is Merged.
	Merged    string    `json:"merged,omitempty"`
	Kept      []string  `json:"kept,omitempty"`
	Discarded []string  `json:"discarded,omitempty"`
	Warnings  []Warning `json:"warnings,omitempty"`
}

// AuditVersion is one version as an audit event shows it.
type AuditVersion struct {
	Label     string    `json:"label"`
	Dot       Dot       `json:"dot"`
	Timestamp Timestamp `json:"timestamp"`
	Node      string    `json:"node"`
	Priority  int64     `json:"priority,omitempty"`
	Deleted   bool      `json:"deleted,omitempty"`
	Value     string    `json:"value,omitempty"`
}

// Audit renders the decision about key as the audit line, values through
// [FormatValue]:
//
//	[WARN] Conflict detected for key=user:1001
//	Version A: timestamp=1678812345, node=N1, value={name: "Alice", ver: 3}
//	Version B: timestamp=1678812350, node=N2, value={name: "Alicia", ver: 3}
//	Resolution: Manual required
//
// See [AuditEvent.String] for the format.
func (d Decision[T]) Audit(key string) string { return d.Event(key, nil).String() }

// Event returns the structured audit event for the decision about key. format
// renders values (nil means [FormatValue]); it must be deterministic for the
// event to agree across replicas.
func (d Decision[T]) Event(key string, format func(T) string) AuditEvent {
	if format == nil {
		format = FormatValue[T]
	}
	e := AuditEvent{Key: key, Conflict: d.Conflict(), Policy: d.Policy, Outcome: d.Outcome, Rule: d.Rule, Warnings: d.Warnings}
	if len(d.Versions) > 0 {
		e.Versions = make([]AuditVersion, len(d.Versions))
	}
	for i, v := range d.Versions {
		av := AuditVersion{Label: label(i), Dot: v.Dot, Timestamp: v.Timestamp, Node: v.Node, Priority: v.Priority, Deleted: v.Deleted}
		if !v.Deleted {
			av.Value = oneLine(format(v.Value))
		}
		e.Versions[i] = av
	}
	find := d.labeler()
	e.Kept = labels(d.Kept, find)
	e.Discarded = labels(d.Discarded, find)
	if d.Winner != nil {
		if d.Outcome == Merged {
			e.Winner, e.Merged = "merged", oneLine(format(d.Winner.Value))
		} else {
			e.Winner = find(*d.Winner)
		}
	}
	e.Level = slog.LevelInfo
	if e.Conflict {
		e.Level = slog.LevelWarn
	}
	for _, w := range e.Warnings {
		if w.Kind != WarnClockSkew {
			e.Level = slog.LevelWarn
		}
	}
	return e
}

// labeler returns the function that finds the label of one of d.Versions.
// Versions are told apart by dot; only a reused dot needs the digest.
func (d Decision[T]) labeler() func(Version[T]) string {
	byDot := make([]int, len(d.Versions))
	for i := range byDot {
		byDot[i] = i
	}
	slices.SortStableFunc(byDot, func(i, j int) int { return d.Versions[i].Dot.Compare(d.Versions[j].Dot) })
	return func(v Version[T]) string {
		k, ok := slices.BinarySearchFunc(byDot, v.Dot, func(i int, dot Dot) int { return d.Versions[i].Dot.Compare(dot) })
		switch {
		case !ok:
			return "?" + v.Dot.String()
		case k+1 == len(byDot) || d.Versions[byDot[k+1]].Dot != v.Dot:
			return label(byDot[k])
		}
		dg := versionDigest(v)
		for ; k < len(byDot) && d.Versions[byDot[k]].Dot == v.Dot; k++ {
			if versionDigest(d.Versions[byDot[k]]) == dg {
				return label(byDot[k])
			}
		}
		return "?" + v.Dot.String()
	}
}

func labels[T any](vs []Version[T], find func(Version[T]) string) []string {
	if len(vs) == 0 {
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = find(v)
	}
	return out
}

// oneLine keeps a custom rendering from breaking the line structure.
func oneLine(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return strconv.Quote(s)
	}
	return s
}

// String renders the event as the multi-line audit line: a header
// "[LEVEL] Conflict detected for key=K" (or "No conflict for key=K"), one
// "Version X: timestamp=T, node=N[, priority=P], value=V" line per version in
// audit order ("deleted=true" instead of the value for tombstones), a
// "Resolution: ..." line, and one "Warning: ..." (or, for clock skew, "Note:
// ...") line per warning. Times are [Timestamp.String]; keys and node names that
// are not plain words are quoted. The text ends without a newline.
func (e AuditEvent) String() string {
	var b strings.Builder
	n := 64 + len(e.Key)
	for _, v := range e.Versions {
		n += 48 + len(v.Node) + len(v.Value)
	}
	for _, w := range e.Warnings {
		n += 10 + len(w.Message)
	}
	b.Grow(n)
	b.WriteByte('[')
	b.WriteString(e.Level.String())
	if e.Conflict {
		b.WriteString("] Conflict detected for key=")
	} else {
		b.WriteString("] No conflict for key=")
	}
	b.WriteString(quoteWord(e.Key))
	var num [24]byte
	for _, v := range e.Versions {
		b.WriteString("\nVersion ")
		b.WriteString(v.Label)
		b.WriteString(": timestamp=")
		b.Write(v.Timestamp.AppendText(num[:0]))
		b.WriteString(", node=")
		b.WriteString(quoteWord(v.Node))
		if v.Priority != 0 {
			b.WriteString(", priority=")
			b.Write(strconv.AppendInt(num[:0], v.Priority, 10))
		}
		if v.Deleted {
			b.WriteString(", deleted=true")
		} else {
			b.WriteString(", value=")
			b.WriteString(v.Value)
		}
	}
	b.WriteString("\nResolution: ")
	names := func(ls []string) {
		for i, l := range ls {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("Version ")
			b.WriteString(l)
		}
	}
	switch e.Outcome {
	case ManualRequired:
		b.WriteString("Manual required")
		if len(e.Discarded) > 0 {
			b.WriteString(" between ")
			names(e.Kept)
			b.WriteString("; discarded: ")
			names(e.Discarded)
			b.WriteString(" (" + e.Policy + ")")
		}
	case Merged:
		b.WriteString("Merged into value=" + e.Merged + " (" + e.Policy + "); discarded: ")
		names(e.Discarded)
	case Resolved:
		b.WriteString("Version " + e.Winner + " wins (" + e.Policy)
		if e.Rule != "" && e.Rule != e.Policy {
			b.WriteString(" by " + e.Rule)
		}
		b.WriteString("); discarded: ")
		names(e.Discarded)
	default:
		if e.Winner != "" {
			b.WriteString("Version " + e.Winner + " kept")
		} else {
			b.WriteString("nothing to decide")
		}
	}
	for _, w := range e.Warnings {
		if w.Kind == WarnClockSkew {
			b.WriteString("\nNote: ")
		} else {
			b.WriteString("\nWarning: ")
		}
		b.WriteString(oneLine(w.Message))
	}
	return b.String()
}

// Attrs returns the event as log/slog attributes: key, conflict, policy,
// outcome, rule, winner, kept, discarded, one group per version (label, dot,
// timestamp, node, priority, deleted, value) and one group per warning.
func (e AuditEvent) Attrs() []slog.Attr {
	as := []slog.Attr{
		slog.String("key", e.Key),
		slog.Bool("conflict", e.Conflict),
		slog.String("policy", e.Policy),
		slog.String("outcome", e.Outcome.String()),
	}
	if e.Rule != "" {
		as = append(as, slog.String("rule", e.Rule))
	}
	if e.Winner != "" {
		as = append(as, slog.String("winner", e.Winner))
	}
	if e.Merged != "" {
		as = append(as, slog.String("merged", e.Merged))
	}
	if len(e.Kept) > 0 {
		as = append(as, slog.String("kept", strings.Join(e.Kept, ",")))
	}
	if len(e.Discarded) > 0 {
		as = append(as, slog.String("discarded", strings.Join(e.Discarded, ",")))
	}
	vs := make([]any, 0, len(e.Versions))
	for _, v := range e.Versions {
		g := []any{
			slog.String("dot", v.Dot.String()),
			slog.String("timestamp", v.Timestamp.String()),
			slog.String("node", v.Node),
		}
		if v.Priority != 0 {
			g = append(g, slog.Int64("priority", v.Priority))
		}
		if v.Deleted {
			g = append(g, slog.Bool("deleted", true))
		} else {
			g = append(g, slog.String("value", v.Value))
		}
		vs = append(vs, slog.Group(v.Label, g...))
	}
	as = append(as, slog.Group("versions", vs...))
	if len(e.Warnings) > 0 {
		ws := make([]any, 0, len(e.Warnings))
		for i, w := range e.Warnings {
			ws = append(ws, slog.Group(strconv.Itoa(i), slog.String("kind", string(w.Kind)), slog.String("message", w.Message)))
		}
		as = append(as, slog.Group("warnings", ws...))
	}
	return as
}

// LogValue implements slog.LogValuer: the event as a group of [AuditEvent.Attrs].
func (e AuditEvent) LogValue() slog.Value { return slog.GroupValue(e.Attrs()...) }

// Log writes the event to l at its level, with the header as message and
// [AuditEvent.Attrs] as attributes. A nil logger writes nothing.
func (e AuditEvent) Log(ctx context.Context, l *slog.Logger) {
	if l == nil {
		return
	}
	msg := "no conflict"
	if e.Conflict {
		msg = "conflict detected"
	}
	l.LogAttrs(ctx, e.Level, msg, e.Attrs()...)
}
