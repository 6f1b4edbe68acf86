package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// textWidth is where the text report wraps.
const textWidth = 100

// writeText prints the report for people.
func writeText(w io.Writer, r *Report) {
	b := bufio.NewWriter(w)
	defer b.Flush()
	fmt.Fprintf(b, "addrguard diagnose: %s\n", r.Source)
	if len(r.Incidents) == 0 {
		b.WriteString("no incident found\n")
	} else {
		fmt.Fprintf(b, "%d %s: %d critical, %d warning, %d info\n", r.Summary.Incidents, plural(r.Summary.Incidents, "incident", "incidents"),
			r.Summary.Critical, r.Summary.Warning, r.Summary.Info)
	}
	for _, inc := range r.Incidents {
		b.WriteString("\n")
		fmt.Fprintf(b, "%s %s  %s\n", inc.ID, strings.ToUpper(inc.Severity.String()), inc.Title)
		field(b, "confidence", inc.Confidence.String()+": "+strings.Join(inc.Reasons, "; "))
		if !inc.First.IsZero() {
			when := fmtTime(inc.First)
			if !inc.Last.Equal(inc.First) {
				last := fmtTime(inc.Last)
				if inc.Last.UTC().Format("2006-01-02") == inc.First.UTC().Format("2006-01-02") {
					last = inc.Last.UTC().Format("15:04:05Z")
				}
				when += " to " + last
			}
			field(b, "when", when)
		}
		if len(inc.MACs) > 0 {
			field(b, "MACs", strings.Join(inc.MACs, ", "))
		}
		b.WriteString("  evidence\n")
		for _, e := range inc.Evidence {
			wrap(b, "    "+pad(e.Source, 8)+" ", evidenceText(e))
		}
		b.WriteString("  do\n")
		for i, a := range inc.Actions {
			wrap(b, fmt.Sprintf("    %d. ", i+1), a.Text)
		}
	}
	if len(r.Pools) > 0 {
		b.WriteString("\npools\n")
		wName := 0
		for _, p := range r.Pools {
			wName = max(wName, len(p.Pool))
		}
		for _, p := range r.Pools {
			fmt.Fprintf(b, "  %s  %-18s ", pad(p.Pool, wName), p.Subnet)
			if p.Utilization == nil {
				fmt.Fprintf(b, "%s addresses, utilization unknown (no store)\n", p.Size)
				continue
			}
			fmt.Fprintf(b, "%s %3.0f%% %-8s %s of %s allocated (warn %.0f%%, critical %.0f%%)\n", bar(*p.Utilization, p.Warn, p.Critical), 100**p.Utilization, p.Level,
				p.Allocated, p.Size, 100*p.Warn, 100*p.Critical)
		}
	}
	b.WriteString("\ninputs\n")
	for _, in := range r.Inputs {
		wrap(b, "  "+pad(in.Kind, 7)+" ", in.File+": "+in.Summary)
	}
}

// evidenceText renders one piece of evidence with where it is.
func evidenceText(e Evidence) string {
	var where string
	switch {
	case len(e.Frames) > 0:
		where = frameList(e.File, e.Frames) + ": "
	case len(e.Lines) > 0:
		where = lineList(e.File, e.Lines) + ": "
	case e.File != "":
		where = e.File + ": "
	}
	return where + e.Text
}

// bar draws utilization as 20 cells with the warn and critical marks.
func bar(u, warn, crit float64) string {
	const n = 20
	cells := []rune(strings.Repeat("·", n))
	fill := int(u*n + 0.5)
	for i := 0; i < fill && i < n; i++ {
		cells[i] = '#'
	}
	if i := int(warn * n); i < n {
		cells[i] = '|'
	}
	if i := int(crit * n); i < n {
		cells[i] = '!'
	}
	return "[" + string(cells) + "]"
}

func field(b *bufio.Writer, name, value string) {
	wrap(b, "  "+pad(name, 11)+" ", value)
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// wrap writes prefix and text, wrapped at textWidth with continuation lines
// indented to the prefix's width.
func wrap(b *bufio.Writer, prefix, text string) {
	indent := strings.Repeat(" ", len([]rune(prefix)))
	line := prefix
	n := len([]rune(prefix))
	first := true
	for _, word := range strings.Fields(text) {
		wl := len([]rune(word))
		if !first && n+1+wl > textWidth {
			b.WriteString(line + "\n")
			line, n, first = indent, len(indent), true
		}
		if !first {
			line += " "
			n++
		}
		line += word
		n += wl
		first = false
	}
	b.WriteString(line + "\n")
}
