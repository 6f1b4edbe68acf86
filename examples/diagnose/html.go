package main

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/netip"
	"os"
	"strings"
	"time"

	"go4.org/netipx"
)

// The HTML report is one file: CSS in a <style> element, graphics as inline
// SVG, no script and no external asset, so it can be attached to a ticket and
// opened anywhere.

//go:embed report.html.tmpl
var htmlTemplate string

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"time":  fmtTime,
	"f1":    func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"pct":   func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
	"add":   func(a, b float64) float64 { return a + b },
	"mod2":  func(i int) int { return i % 2 },
	"evidence": func(e Evidence) string {
		return evidenceText(Evidence{Frames: e.Frames, Lines: e.Lines, File: e.File, Text: e.Text})
	},
}).Parse(htmlTemplate))

// htmlView is what the template renders.
type htmlView struct {
	R         *Report
	Incidents []htmlIncident
	Pools     []poolBar
}

type htmlIncident struct {
	*Incident
	When     string
	Timeline *svgTimeline
	Map      *svgMap
}

// svgMap draws the overlapping pools on one address axis.
type svgMap struct {
	Width, Height float64
	Rows          []svgMapRow
	Overlap       []svgSpan
	AddrX         float64
	Addr          string
	From, To      string
	AxisY         float64
}

type svgMapRow struct {
	Y     float64
	Name  string
	Spans []svgSpan
}

type svgSpan struct {
	X, W  float64
	Title string
}

// Timeline geometry, in SVG user units.
const (
	tlWidth  = 1080.0
	tlLeft   = 230.0 // lane labels
	tlRight  = 44.0
	tlTop    = 34.0 // legend
	tlLane   = 56.0
	tlBottom = 34.0 // axis
)

type svgTimeline struct {
	Width, Height float64
	PlotLeft      float64
	PlotRight     float64
	AxisY         float64
	Lanes         []svgLane
	Ticks         []svgTick
	Legend        []svgLegend
}

type svgLane struct {
	Y, Mid float64
	MAC    string
	Owner  string
	Sub    string
	Marks  []svgMark
}

type svgMark struct {
	X, Y  float64
	Kind  string
	Title string
}

type svgTick struct {
	X     float64
	Label string
}

type svgLegend struct {
	X     float64
	Kind  string
	Label string
}

type poolBar struct {
	PoolReport
	Width     float64
	Fill      float64
	WarnX     float64
	CritX     float64
	Known     bool
	UtilLabel string
}

// Pool bar geometry.
const (
	pbWidth = 560.0
)

func writeHTMLFile(path string, r *Report) error {
	var buf bytes.Buffer
	if err := writeHTML(&buf, r); err != nil {
		return fmt.Errorf("-html %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("-html %s: %w", path, err)
	}
	return nil
}

// writeHTML renders the report as one self-contained HTML document.
func writeHTML(w io.Writer, r *Report) error {
	v := htmlView{R: r}
	for _, inc := range r.Incidents {
		hi := htmlIncident{Incident: inc}
		if !inc.First.IsZero() {
			hi.When = fmtTime(inc.First)
			if !inc.Last.Equal(inc.First) {
				hi.When += " to " + fmtTime(inc.Last)
			}
		}
		if len(inc.Timeline) > 0 {
			hi.Timeline = layoutTimeline(inc)
		}
		if inc.amap != nil {
			hi.Map = layoutMap(inc.amap)
		}
		v.Incidents = append(v.Incidents, hi)
	}
	for _, p := range r.Pools {
		pb := poolBar{PoolReport: p, Width: pbWidth, WarnX: p.Warn * pbWidth, CritX: p.Critical * pbWidth}
		if p.Utilization != nil {
			pb.Known = true
			pb.Fill = math.Min(*p.Utilization, 1) * pbWidth
			pb.UtilLabel = fmt.Sprintf("%.0f%% (%s of %s)", 100**p.Utilization, p.Allocated, p.Size)
		}
		v.Pools = append(v.Pools, pb)
	}
	return reportTmpl.Execute(w, v)
}

var legendKinds = []struct{ kind, label string }{
	{"claim", "claimed (ARP)"}, {"ping", "answered a ping"}, {"probe", "probed (RFC 5227)"},
	{"traffic", "sent traffic"}, {"log", "named in a log"}, {"live", "answered our probe"},
}

func layoutTimeline(inc *Incident) *svgTimeline {
	var t0, t1 time.Time
	for _, l := range inc.Timeline {
		for _, m := range l.Marks {
			span(&t0, &t1, m.Time)
		}
	}
	d := t1.Sub(t0)
	if d <= 0 {
		d = time.Second
	}
	pad := d / 25
	t0, t1 = t0.Add(-pad), t1.Add(pad)
	d = t1.Sub(t0)
	tl := &svgTimeline{Width: tlWidth, PlotLeft: tlLeft, PlotRight: tlWidth - tlRight}
	x := func(t time.Time) float64 {
		return tl.PlotLeft + (tl.PlotRight-tl.PlotLeft)*float64(t.Sub(t0))/float64(d)
	}
	used := map[string]bool{}
	for i, l := range inc.Timeline {
		y := tlTop + float64(i)*tlLane
		lane := svgLane{Y: y, Mid: y + tlLane/2, MAC: l.MAC}
		counts := map[string]int{}
		for _, m := range l.Marks {
			counts[m.Kind]++
			used[m.Kind] = true
			title := fmt.Sprintf("%s %s", m.Time.UTC().Format("15:04:05.000Z"), m.What)
			switch {
			case m.Frame > 0:
				title += fmt.Sprintf(" (frame %d)", m.Frame)
			case m.Line > 0:
				title += fmt.Sprintf(" (%s line %d)", m.File, m.Line)
			}
			lane.Marks = append(lane.Marks, svgMark{X: x(m.Time), Y: lane.Mid, Kind: m.Kind, Title: title})
		}
		var parts []string
		for _, k := range legendKinds {
			if n := counts[k.kind]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, k.kind))
			}
		}
		lane.Sub = strings.Join(parts, ", ")
		lane.Owner = l.Owner
		tl.Lanes = append(tl.Lanes, lane)
	}
	tl.AxisY = tlTop + float64(len(inc.Timeline))*tlLane + 6
	tl.Height = tl.AxisY + tlBottom
	step := tickStep(d)
	for t := t0.Truncate(step).Add(step); t.Before(t1); t = t.Add(step) {
		label := t.UTC().Format("15:04:05")
		if step < time.Second {
			label = t.UTC().Format("15:04:05.0")
		}
		tl.Ticks = append(tl.Ticks, svgTick{X: x(t), Label: label})
	}
	lx := tlLeft
	for _, k := range legendKinds {
		if used[k.kind] {
			tl.Legend = append(tl.Legend, svgLegend{X: lx, Kind: k.kind, Label: k.label})
			lx += 28 + 7.2*float64(len(k.label))
		}
	}
	return tl
}

// tickStep picks an axis step that gives 4 to 10 ticks.
func tickStep(d time.Duration) time.Duration {
	for _, s := range []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	} {
		if d/s <= 7 {
			return s
		}
	}
	return d / 8
}

// layoutMap places the pools' allocatable ranges on an axis from the lowest
// to the highest address any of them holds (IPv4 only).
func layoutMap(m *addressMap) *svgMap {
	v4 := func(a netip.Addr) float64 { b := a.As4(); return float64(binary.BigEndian.Uint32(b[:])) }
	lo, hi := v4(m.addr), v4(m.addr)
	for _, p := range m.pools {
		for _, r := range p.ranges {
			lo, hi = math.Min(lo, v4(r.From())), math.Max(hi, v4(r.To()))
		}
	}
	const left, right, row = 230.0, 1040.0, 30.0
	x := func(a float64) float64 { return left + (right-left)*(a-lo)/math.Max(hi+1-lo, 1) }
	w := func(r netipx.IPRange) float64 { return math.Max(x(v4(r.To())+1)-x(v4(r.From())), 2) }
	sm := &svgMap{Width: tlWidth, Addr: m.addr.String(), AddrX: x(v4(m.addr)) + (x(v4(m.addr)+1)-x(v4(m.addr)))/2}
	y := 30.0
	for _, p := range m.pools {
		r := svgMapRow{Y: y, Name: p.name}
		for _, rg := range p.ranges {
			r.Spans = append(r.Spans, svgSpan{X: x(v4(rg.From())), W: w(rg), Title: p.name + " hands out " + rangeEntry(rg)})
		}
		sm.Rows = append(sm.Rows, r)
		y += row
	}
	for _, rg := range m.overlap {
		sm.Overlap = append(sm.Overlap, svgSpan{X: x(v4(rg.From())), W: w(rg), Title: "both hand out " + rangeEntry(rg)})
	}
	sm.AxisY = y + 4
	sm.Height = y + 30
	first := netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, uint32(lo))))
	last := netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, uint32(hi))))
	sm.From, sm.To = first.String(), last.String()
	return sm
}
