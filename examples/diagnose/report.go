package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/logscan"
	"github.com/addrguard/addrguard/pcapscan"
)

// Severity ranks incidents: info, warning, critical.
type Severity int

// Severities, in increasing order.
const (
	Info Severity = iota
	Warning
	Critical
)

var severityNames = []string{"info", "warning", "critical"}

// String returns "info", "warning" or "critical".
func (s Severity) String() string { return severityNames[s] }

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	return unmarshalName(s, severityNames, "severity", b)
}

// Confidence says how sure an incident is: low, medium, high.
type Confidence int

// Confidence levels, in increasing order.
const (
	Low Confidence = iota
	Medium
	High
)

var confidenceNames = []string{"low", "medium", "high"}

// String returns "low", "medium" or "high".
func (c Confidence) String() string { return confidenceNames[c] }

// MarshalText implements encoding.TextMarshaler.
func (c Confidence) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Confidence) UnmarshalText(b []byte) error {
	return unmarshalName(c, confidenceNames, "confidence", b)
}

// unmarshalName sets *v to the index of b in names.
func unmarshalName[T ~int](v *T, names []string, what string, b []byte) error {
	i := slices.Index(names, string(b))
	if i < 0 {
		return fmt.Errorf("unknown %s %q", what, b)
	}
	*v = T(i)
	return nil
}

// Report is the whole diagnosis: the JSON document -json prints.
type Report struct {
	Source    string       `json:"source"` // "bundled samples" or "inputs"
	Summary   Summary      `json:"summary"`
	Incidents []*Incident  `json:"incidents"`
	Pools     []PoolReport `json:"pools"`
	Inputs    []Input      `json:"inputs"`
}

// Summary counts incidents by severity.
type Summary struct {
	Incidents int `json:"incidents"`
	Critical  int `json:"critical"`
	Warning   int `json:"warning"`
	Info      int `json:"info"`
}

// Input is one file (or the live probe) that was read.
type Input struct {
	Kind    string `json:"kind"` // pool, store, pcap, log, record, probe
	File    string `json:"file"`
	Summary string `json:"summary"`
}

// Incident is one problem, with everything every source says about it.
type Incident struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`    // address-conflict, hostile-source, off-hours-login, pool-overlap, pool-exhaustion, data-conflict, retry-storm, reconnects, rogue-dhcp
	Subject    string     `json:"subject"` // the address, source, key or pool pair it is about
	Title      string     `json:"title"`
	Severity   Severity   `json:"severity"`
	Confidence Confidence `json:"confidence"`
	Reasons    []string   `json:"confidence_reasons"`
	First      time.Time  `json:"first,omitzero"`
	Last       time.Time  `json:"last,omitzero"`
	Addr       netip.Addr `json:"addr,omitzero"`
	MACs       []string   `json:"macs,omitempty"`
	Sources    []string   `json:"sources"` // capture, log, pools, store, record, probe
	Evidence   []Evidence `json:"evidence"`
	Actions    []Action   `json:"actions"`
	Timeline   []Lane     `json:"timeline,omitempty"`

	order int         // kind order for sorting
	amap  *addressMap // the overlapping pools around the address, for the HTML report
}

// Evidence is one thing one source says.
type Evidence struct {
	Source   string    `json:"source"` // capture, log, pools, store, record, probe
	File     string    `json:"file,omitempty"`
	What     string    `json:"what"` // the finding's kind or rule, "overlap", "lease", "conflict", "in-use"
	Severity string    `json:"severity,omitempty"`
	Text     string    `json:"text"`
	Frames   []uint64  `json:"frames,omitempty"`
	Lines    []int64   `json:"lines,omitempty"`
	Pools    []string  `json:"pools,omitempty"`
	Range    string    `json:"range,omitempty"`
	Key      string    `json:"key,omitempty"`
	MACs     []string  `json:"macs,omitempty"`
	First    time.Time `json:"first,omitzero"`
	Last     time.Time `json:"last,omitzero"`
	Audit    string    `json:"audit,omitempty"`
}

// Action is one step of the playbook.
type Action struct {
	Playbook string `json:"playbook"` // separate-subnets, reserve-ranges, probe-before-binding, announce-after-move, find-second-holder, treat-brute-force, resolve-data-conflict, verify-login, grow-pool, fix-retries, find-resets
	Text     string `json:"text"`
}

// Lane is one MAC's row of an address's timeline.
type Lane struct {
	MAC   string `json:"mac"`
	Owner string `json:"owner,omitempty"` // who holds it, by a record version that names the MAC
	Marks []Mark `json:"marks"`
}

// Mark is one event on a lane.
type Mark struct {
	Time  time.Time `json:"time"`
	Kind  string    `json:"kind"` // claim, ping, probe, traffic, dhcp, log, live
	What  string    `json:"what"` // pcapscan's event ("arp-reply"...), the log program, "answered our probe"
	Frame uint64    `json:"frame,omitempty"`
	Line  int64     `json:"line,omitempty"`
	File  string    `json:"file,omitempty"`
}

// PoolReport is one pool's place in the report.
type PoolReport struct {
	Pool        string   `json:"pool"` // cluster/name
	Cluster     string   `json:"cluster,omitempty"`
	Name        string   `json:"name"`
	Subnet      string   `json:"subnet"`
	Allocatable string   `json:"allocatable"`
	Size        string   `json:"size"`                  // allocatable addresses (decimal)
	Allocated   string   `json:"allocated,omitempty"`   // from a store
	Utilization *float64 `json:"utilization,omitempty"` // from a store
	Level       string   `json:"level,omitempty"`       // ok, warn, critical (from a store)
	Warn        float64  `json:"warn"`
	Critical    float64  `json:"critical"`
	Sources     []string `json:"sources"`
}

// conflictTargets returns the addresses of address-conflict incidents, for
// -I without -probe.
func (r *Report) conflictTargets() []netip.Prefix {
	var out []netip.Prefix
	for _, inc := range r.Incidents {
		if inc.Kind == "address-conflict" && inc.Addr.IsValid() {
			out = append(out, netip.PrefixFrom(inc.Addr, inc.Addr.BitLen()))
		}
	}
	return out
}

// addrGroup is everything about one contested address.
type addrGroup struct {
	addr     netip.Addr
	captures []captureFinding
	flows    []captureFinding // retry storms and resets whose server is the address
	logs     []logFinding
	records  []recordInfo
	probes   []arpcheck.Result
	overlaps []ipam.Overlap
	leases   []leaseInfo
}

type leaseInfo struct {
	pool  string // cluster/name
	store string
	lease ipam.Lease
}

var addressKinds = map[pcapscan.Kind]bool{
	pcapscan.ARPConflict: true, pcapscan.DADProbeAnswered: true, pcapscan.IPMACConflict: true,
	pcapscan.EchoMultiResponder: true, pcapscan.ARPSpoof: true, pcapscan.DHCPDecline: true,
}

var flowKinds = map[pcapscan.Kind]bool{
	pcapscan.RequestIDRepeat: true, pcapscan.TCPRestart: true, pcapscan.TCPSeqRegression: true, pcapscan.TCPRetransmissions: true,
}

func capSeverity(s pcapscan.Severity) Severity {
	switch s {
	case pcapscan.Critical:
		return Critical
	case pcapscan.Warning:
		return Warning
	}
	return Info
}

func logSeverity(s logscan.Severity) Severity {
	switch {
	case s >= logscan.SeverityCritical:
		return Critical
	case s >= logscan.SeverityMedium:
		return Warning
	}
	return Info
}

// flowServer is the address a flow finding is about: the server of the
// connection (or of the retry storm).
func flowServer(f pcapscan.Finding) netip.Addr {
	if f.Kind == pcapscan.RequestIDRepeat && f.IP.IsValid() {
		return f.IP
	}
	if f.Flow.Server.IsValid() {
		return f.Flow.Server.Addr()
	}
	return f.IP
}

// correlate groups what the inputs say into incidents.
func correlate(in *inputs, c *config) *Report {
	rep := &Report{Source: "inputs", Inputs: slices.Clone(in.files)}
	if c.samples {
		rep.Source = "bundled samples (" + samplesDir + ")"
	}
	groups := map[netip.Addr]*addrGroup{}
	group := func(a netip.Addr) *addrGroup {
		g := groups[a]
		if g == nil {
			g = &addrGroup{addr: a}
			groups[a] = g
		}
		return g
	}
	for _, cf := range in.captures {
		if addressKinds[cf.f.Kind] && cf.f.IP.IsValid() {
			group(cf.f.IP).captures = append(group(cf.f.IP).captures, cf)
		}
	}
	for _, lf := range in.logs {
		if lf.f.Rule == logscan.RuleAddressConflict && lf.f.Addr.IsValid() {
			group(lf.f.Addr).logs = append(group(lf.f.Addr).logs, lf)
		}
	}
	for _, r := range in.records {
		if r.addr.IsValid() && r.decision.Conflict() {
			group(r.addr).records = append(group(r.addr).records, r)
		}
	}
	for _, r := range in.probes {
		if r.Status == arpcheck.InUse && len(r.MACs()) >= 2 {
			group(r.Addr).probes = append(group(r.Addr).probes, r)
		} else if g := groups[r.Addr]; g != nil {
			g.probes = append(g.probes, r)
		}
	}
	// Retry storms and resets towards a contested address belong to it.
	var flows []captureFinding
	for _, cf := range in.captures {
		if !flowKinds[cf.f.Kind] {
			continue
		}
		if g := groups[flowServer(cf.f)]; g != nil {
			g.flows = append(g.flows, cf)
		} else {
			flows = append(flows, cf)
		}
	}
	// Overlaps holding a contested address explain it; the others stand alone.
	var lone []ipam.Overlap
	for _, o := range in.overlaps {
		hit := false
		for a, g := range groups {
			if o.Kind == ipam.AllocatableOverlap && inRanges(o.Ranges, a) {
				g.overlaps = append(g.overlaps, o)
				hit = true
			}
		}
		if !hit {
			lone = append(lone, o)
		}
	}
	for a, g := range groups {
		g.leases = leasesOf(in, a)
	}

	for _, g := range groups {
		rep.Incidents = append(rep.Incidents, addressIncident(g, in))
	}
	rep.Incidents = append(rep.Incidents, sourceIncidents(in)...)
	rep.Incidents = append(rep.Incidents, dataIncidents(in)...)
	rep.Incidents = append(rep.Incidents, flowIncidents(flows)...)
	rep.Incidents = append(rep.Incidents, overlapIncidents(lone, in, groups)...)
	rep.Incidents = append(rep.Incidents, poolIncidents(in)...)
	for _, cf := range in.captures {
		if cf.f.Kind == pcapscan.RogueDHCP {
			rep.Incidents = append(rep.Incidents, rogueDHCPIncident(cf))
		}
	}
	sortIncidents(rep.Incidents)
	for i, inc := range rep.Incidents {
		inc.ID = "INC-" + strconv.Itoa(i+1)
		switch inc.Severity {
		case Critical:
			rep.Summary.Critical++
		case Warning:
			rep.Summary.Warning++
		default:
			rep.Summary.Info++
		}
	}
	rep.Summary.Incidents = len(rep.Incidents)
	rep.Pools = poolReports(in)
	if rep.Incidents == nil {
		rep.Incidents = []*Incident{}
	}
	return rep
}

var kindOrder = map[string]int{
	"address-conflict": 0, "rogue-dhcp": 1, "hostile-source": 2, "data-conflict": 3, "pool-overlap": 4,
	"retry-storm": 5, "reconnects": 6, "pool-exhaustion": 7, "off-hours-login": 8,
}

// sortIncidents orders incidents deterministically: most severe first, then
// most certain, then by kind, first evidence (undated last) and subject.
func sortIncidents(incs []*Incident) {
	for _, inc := range incs {
		inc.order = kindOrder[inc.Kind]
	}
	slices.SortStableFunc(incs, func(a, b *Incident) int {
		if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Confidence, a.Confidence); c != 0 {
			return c
		}
		if c := cmp.Compare(a.order, b.order); c != 0 {
			return c
		}
		if a.First.IsZero() != b.First.IsZero() {
			if a.First.IsZero() {
				return 1
			}
			return -1
		}
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
}

func inRanges(rs []netipx.IPRange, a netip.Addr) bool {
	for _, r := range rs {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// leasesOf looks the address up in every store whose pool holds it.
func leasesOf(in *inputs, a netip.Addr) []leaseInfo {
	var out []leaseInfo
	for _, p := range in.pools {
		if p.store == nil || !p.pool.Contains(a) {
			continue
		}
		s := p.pool.Spec()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		l, err := p.store.alloc.LeaseOf(ctx, s.Name, a)
		cancel()
		if errors.Is(err, ipam.ErrNotAllocated) || err != nil {
			continue
		}
		out = append(out, leaseInfo{pool: poolName(s.Cluster, s.Name), store: p.store.name, lease: l})
	}
	return out
}

// span widens [first, last] to hold t.
func span(first, last *time.Time, t time.Time) {
	if t.IsZero() {
		return
	}
	if first.IsZero() || t.Before(*first) {
		*first = t
	}
	if last.IsZero() || t.After(*last) {
		*last = t
	}
}

// macSet collects MACs in their canonical text form, sorted.
type macSet map[string]bool

func (m macSet) list() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func addressIncident(g *addrGroup, in *inputs) *Incident {
	inc := &Incident{Kind: "address-conflict", Subject: g.addr.String(), Addr: g.addr}
	macs := macSet{}
	sev := Info
	var direct, support []string
	var capHosts, logHosts, liveHosts int
	for _, cf := range g.captures {
		f := cf.f
		sev = max(sev, capSeverity(f.Severity))
		span(&inc.First, &inc.Last, f.First)
		span(&inc.First, &inc.Last, f.Last)
		var ms []string
		for _, m := range f.MACs {
			macs[m.String()] = true
			ms = append(ms, m.String())
		}
		capHosts = max(capHosts, len(f.MACs))
		inc.Evidence = append(inc.Evidence, Evidence{
			Source: "capture", File: cf.file, What: string(f.Kind), Severity: f.Severity.String(),
			Text:   fmt.Sprintf("%s: %s (%d %s)", f.Kind, f.Detail, f.Count, plural(f.Count, "packet", "packets")),
			Frames: f.Frames, MACs: ms, First: f.First, Last: f.Last,
		})
	}
	for _, cf := range g.flows {
		f := cf.f
		span(&inc.First, &inc.Last, f.First)
		span(&inc.First, &inc.Last, f.Last)
		text := fmt.Sprintf("%s: %s", f.Kind, f.Detail)
		if f.Kind == pcapscan.RequestIDRepeat {
			text = fmt.Sprintf("request-id-repeat: request %q sent %d times to %s (clients retrying)", f.RequestID, f.Count, g.addr)
		}
		inc.Evidence = append(inc.Evidence, Evidence{
			Source: "capture", File: cf.file, What: string(f.Kind), Severity: f.Severity.String(),
			Text: text, Frames: f.Frames, First: f.First, Last: f.Last,
		})
	}
	for _, lf := range g.logs {
		f := lf.f
		sev = max(sev, logSeverity(f.Severity))
		span(&inc.First, &inc.Last, f.First)
		span(&inc.First, &inc.Last, f.Last)
		var ms []string
		for _, m := range f.MACs {
			macs[m.String()] = true
			ms = append(ms, m.String())
		}
		logHosts = max(logHosts, len(f.MACs))
		inc.Evidence = append(inc.Evidence, Evidence{
			Source: "log", File: lf.file, What: string(f.Rule), Severity: f.Severity.String(),
			Text:  fmt.Sprintf("%s: %s (%d %s)", f.Rule, f.Detail, f.Count, plural(f.Count, "line", "lines")),
			Lines: f.Lines, MACs: ms, First: f.First, Last: f.Last,
		})
	}
	for _, r := range g.probes {
		var ms []string
		for _, m := range r.MACs() {
			macs[m.String()] = true
			ms = append(ms, m.String())
		}
		slices.Sort(ms)
		text := fmt.Sprintf("live probe: %s", r.Status)
		if r.Status == arpcheck.InUse {
			text = fmt.Sprintf("live probe: answered by %s", strings.Join(ms, ", "))
			liveHosts = max(liveHosts, len(ms))
		}
		if len(ms) >= 2 {
			sev = Critical
		}
		inc.Evidence = append(inc.Evidence, Evidence{Source: "probe", What: r.Status.String(), Text: text, MACs: ms, First: r.Decided})
	}
	for _, o := range g.overlaps {
		a, b := poolName(o.A.Cluster, o.A.Name), poolName(o.B.Cluster, o.B.Name)
		sev = max(sev, Warning)
		inc.Evidence = append(inc.Evidence, Evidence{
			Source: "pools", What: "overlap", Pools: []string{a, b}, Range: o.RangeString(),
			Text: fmt.Sprintf("%s and %s both hand out %s (%s addresses), which holds %s", a, b, o.RangeString(), o.Size, g.addr),
		})
	}
	for _, l := range g.leases {
		inc.Evidence = append(inc.Evidence, Evidence{
			Source: "store", File: l.store, What: "lease", Pools: []string{l.pool},
			Text: fmt.Sprintf("%s leases %s to %s (generation %d, since %s)", l.pool, g.addr, l.lease.Owner, l.lease.Generation, fmtTime(l.lease.Allocated)),
		})
	}
	for _, r := range g.records {
		sev = max(sev, Warning)
		inc.Evidence = append(inc.Evidence, recordEvidence(r))
	}

	// Confidence: direct sightings of two holders (on the wire, in a host's
	// own conflict detection, live) against corroboration (overlapping
	// pools, two stores leasing it, a record with concurrent owners).
	if capHosts >= 2 {
		direct = append(direct, fmt.Sprintf("the capture shows %d MACs claiming it", capHosts))
	} else if len(g.captures) > 0 {
		direct = append(direct, "the capture shows it contested")
	}
	if len(g.logs) > 0 {
		if logHosts >= 2 {
			direct = append(direct, fmt.Sprintf("hosts logged it in use by %d MACs", logHosts))
		} else {
			direct = append(direct, "a host logged it in use by another machine")
		}
	}
	if liveHosts >= 2 {
		direct = append(direct, fmt.Sprintf("%d MACs answered a live probe just now", liveHosts))
	}
	if len(g.overlaps) > 0 {
		support = append(support, "it lies in the overlap of two clusters' pools")
	}
	if owners := distinctOwners(g.leases); owners >= 2 {
		support = append(support, fmt.Sprintf("%d IPAM stores lease it to different owners", owners))
	}
	if len(g.records) > 0 {
		support = append(support, "its replicated record has concurrent owners")
	}
	inc.Reasons = append(direct, support...)
	switch {
	case len(direct) >= 2 || len(direct) >= 1 && len(support) >= 1:
		inc.Confidence = High
	case len(direct) == 1 || len(support) >= 2:
		inc.Confidence = Medium
	default:
		inc.Confidence = Low
	}
	inc.Severity = sev
	inc.MACs = macs.list()
	inc.Sources = sourcesOf(inc.Evidence)
	switch n := len(inc.MACs); {
	case n >= 2:
		inc.Title = fmt.Sprintf("%s is held by %s hosts", g.addr, count(n))
	case len(g.records) > 0 && len(g.captures)+len(g.logs) == 0:
		inc.Title = fmt.Sprintf("%s has concurrent owners in the replicated lease record", g.addr)
	default:
		inc.Title = fmt.Sprintf("%s is reported in use by another host", g.addr)
	}
	inc.Timeline = timeline(g, in)
	inc.amap = mapOf(g, in)
	inc.Actions = addressActions(g, inc, in)
	return inc
}

func distinctOwners(ls []leaseInfo) int {
	seen := map[string]bool{}
	for _, l := range ls {
		seen[l.store+"\x00"+l.lease.Owner] = true
	}
	return len(seen)
}

func count(n int) string {
	if n >= 2 && n <= 9 {
		return []string{"", "", "two", "three", "four", "five", "six", "seven", "eight", "nine"}[n]
	}
	return strconv.Itoa(n)
}

func recordEvidence(r recordInfo) Evidence {
	d := r.decision
	ev := d.Event(r.key, nil)
	outcome := d.Outcome.String()
	switch {
	case ev.Winner == "merged":
		outcome = "merged"
	case ev.Winner != "":
		outcome = "Version " + ev.Winner + " wins"
	}
	text := fmt.Sprintf("%s: %d concurrent versions from replicas %s; policy %s: %s", r.key, len(d.Versions), strings.Join(r.nodes, ", "), d.Policy, outcome)
	return Evidence{Source: "record", File: r.file, What: "conflict", Key: r.key, Text: text, Audit: d.Audit(r.key)}
}

func sourcesOf(ev []Evidence) []string {
	var out []string
	for _, e := range ev {
		if !slices.Contains(out, e.Source) {
			out = append(out, e.Source)
		}
	}
	return out
}

// markKind maps pcapscan's evidence events to timeline marks.
func markKind(what string) string {
	switch what {
	case "arp-reply", "arp-gratuitous", "arp-request", "na":
		return "claim"
	case "echo-reply":
		return "ping"
	case "arp-probe", "ns-probe":
		return "probe"
	case "dhcp-offer", "dhcp-ack", "dhcp-decline":
		return "dhcp"
	}
	return "traffic"
}

// timeline builds one lane per MAC from the capture's per-MAC evidence, the
// log lines naming a MAC and the live probe's holders.
func timeline(g *addrGroup, in *inputs) []Lane {
	lanes := map[string]map[string]Mark{} // MAC -> dedup key -> mark
	add := func(mac string, key string, m Mark) {
		if lanes[mac] == nil {
			lanes[mac] = map[string]Mark{}
		}
		if _, ok := lanes[mac][key]; !ok {
			lanes[mac][key] = m
		}
	}
	for _, cf := range g.captures {
		for _, lane := range cf.f.Evidence {
			for _, ev := range lane.Events {
				key := fmt.Sprintf("%s#%d#%s", cf.file, ev.Frame, ev.What)
				add(lane.MAC.String(), key, Mark{Time: ev.Time, Kind: markKind(ev.What), What: ev.What, Frame: ev.Frame, File: cf.file})
			}
		}
	}
	for _, lm := range in.marks[g.addr] {
		if lm.ev.MAC == nil {
			continue
		}
		what := lm.ev.Program
		if lm.ev.Host != "" {
			what = lm.ev.Host + " " + what
		}
		add(lm.ev.MAC.String(), fmt.Sprintf("%s:%d", lm.file, lm.ev.Line), Mark{Time: lm.ev.Time, Kind: "log", What: what, Line: lm.ev.Line, File: lm.file})
	}
	for _, r := range g.probes {
		for _, h := range r.Holders {
			add(h.MAC.String(), "probe#"+h.MAC.String(), Mark{Time: h.FirstSeen, Kind: "live", What: "answered our probe"})
		}
	}
	macs := make([]string, 0, len(lanes))
	for m := range lanes {
		macs = append(macs, m)
	}
	slices.Sort(macs)
	out := make([]Lane, 0, len(macs))
	for _, m := range macs {
		l := Lane{MAC: m, Owner: ownerOf(g.records, m)}
		for _, mk := range lanes[m] {
			l.Marks = append(l.Marks, mk)
		}
		slices.SortFunc(l.Marks, func(a, b Mark) int {
			if c := a.Time.Compare(b.Time); c != 0 {
				return c
			}
			if c := cmp.Compare(a.Frame, b.Frame); c != 0 {
				return c
			}
			if c := cmp.Compare(a.Line, b.Line); c != 0 {
				return c
			}
			return strings.Compare(a.What, b.What)
		})
		out = append(out, l)
	}
	return out
}

// srcKey is how logscan findings about one source are grouped.
func srcKey(f logscan.Finding) string {
	switch {
	case f.Src.IsValid():
		return f.Src.String()
	case f.SrcText != "":
		return f.SrcText
	}
	return f.Key
}

// sourceIncidents groups the logs' authentication and firewall findings by
// source.
func sourceIncidents(in *inputs) []*Incident {
	bySrc := map[string]*Incident{}
	var keys []string
	for _, lf := range in.logs {
		f := lf.f
		switch f.Rule {
		case logscan.RuleAddressConflict, logscan.RuleDataConflict, logscan.RuleLongLine:
			continue
		}
		k := srcKey(f)
		inc := bySrc[k]
		if inc == nil {
			inc = &Incident{Kind: "off-hours-login", Subject: k, Addr: f.Src}
			bySrc[k] = inc
			keys = append(keys, k)
		}
		if f.Rule != logscan.RuleOffHoursLogin {
			inc.Kind = "hostile-source"
		}
		inc.Severity = max(inc.Severity, logSeverity(f.Severity))
		span(&inc.First, &inc.Last, f.First)
		span(&inc.First, &inc.Last, f.Last)
		text := fmt.Sprintf("%s: %s (%d %s)", f.Rule, f.Detail, f.Count, plural(f.Count, "event", "events"))
		if len(f.Users) > 0 {
			text += "; users " + strings.Join(f.Users, ", ")
		}
		inc.Evidence = append(inc.Evidence, Evidence{
			Source: "log", File: lf.file, What: string(f.Rule), Severity: f.Severity.String(),
			Text: text, Lines: f.Lines, First: f.First, Last: f.Last,
		})
	}
	out := make([]*Incident, 0, len(keys))
	for _, k := range keys {
		inc := bySrc[k]
		inc.Sources = sourcesOf(inc.Evidence)
		rules := map[string]bool{}
		var users []string
		for _, lf := range in.logs {
			if srcKey(lf.f) == k {
				rules[string(lf.f.Rule)] = true
				for _, u := range lf.f.Users {
					if !slices.Contains(users, u) {
						users = append(users, u)
					}
				}
			}
		}
		if inc.Kind == "hostile-source" {
			inc.Confidence = High
			if bruteForce(rules) {
				inc.Title = fmt.Sprintf("%s is brute-forcing logins", k)
				inc.Reasons = []string{"the log lines record each failed attempt"}
			} else {
				inc.Title = fmt.Sprintf("%s probes this host (%s)", k, strings.Join(slices.Sorted(maps.Keys(rules)), ", "))
				inc.Reasons = []string{"the log lines record each attempt"}
			}
			if rules[string(logscan.RuleSuccessAfterFailures)] {
				inc.Title = fmt.Sprintf("%s logged in after failing repeatedly", k)
				inc.Reasons = append(inc.Reasons, "a login succeeded after the failures: likely compromise")
			}
		} else {
			inc.Title = fmt.Sprintf("login outside working hours from %s", k)
			if len(users) > 0 {
				inc.Title = fmt.Sprintf("%s logged in outside working hours from %s", strings.Join(users, ", "), k)
			}
			inc.Confidence = Medium
			inc.Reasons = []string{"the login is unusual for its time, which alone does not prove misuse"}
		}
		inc.Actions = sourceActions(inc, rules, users)
		out = append(out, inc)
	}
	return out
}

// dataIncidents reports record conflicts whose key names no address, and
// reconcile audit lines about such keys.
func dataIncidents(in *inputs) []*Incident {
	byKey := map[string]*Incident{}
	var keys []string
	get := func(k string) *Incident {
		if inc := byKey[k]; inc != nil {
			return inc
		}
		inc := &Incident{Kind: "data-conflict", Subject: k, Title: fmt.Sprintf("replicas diverged on %s", k), Severity: Warning}
		byKey[k] = inc
		keys = append(keys, k)
		return inc
	}
	var recs []recordInfo
	for _, r := range in.records {
		if !r.addr.IsValid() && r.decision.Conflict() {
			inc := get(r.key)
			inc.Evidence = append(inc.Evidence, recordEvidence(r))
			recs = append(recs, r)
		}
	}
	for _, lf := range in.logs {
		if lf.f.Rule != logscan.RuleDataConflict {
			continue
		}
		inc := get(lf.f.Key)
		span(&inc.First, &inc.Last, lf.f.First)
		span(&inc.First, &inc.Last, lf.f.Last)
		inc.Evidence = append(inc.Evidence, Evidence{
			Source: "log", File: lf.file, What: string(lf.f.Rule), Severity: lf.f.Severity.String(),
			Text: fmt.Sprintf("reconcile audit line: concurrent writes to %s (%d lines)", lf.f.Key, lf.f.Count), Lines: lf.f.Lines,
			First: lf.f.First, Last: lf.f.Last, Key: lf.f.Key,
		})
	}
	out := make([]*Incident, 0, len(keys))
	for _, k := range keys {
		inc := byKey[k]
		inc.Sources = sourcesOf(inc.Evidence)
		inc.Confidence = High
		inc.Reasons = []string{"the versions' clocks are concurrent: both sides wrote without seeing the other"}
		if !slices.Contains(inc.Sources, "record") {
			inc.Confidence = Medium
			inc.Reasons = []string{"a replica's audit line says so; the record itself was not given"}
		}
		var mine []recordInfo
		for _, r := range recs {
			if r.key == k {
				mine = append(mine, r)
			}
		}
		inc.Actions = []Action{resolveAction(k, mine)}
		out = append(out, inc)
	}
	return out
}

// flowIncidents reports retry storms and resets that no conflict explains,
// one incident per server address and kind family.
func flowIncidents(flows []captureFinding) []*Incident {
	by := map[string]*Incident{}
	var keys []string
	for _, cf := range flows {
		f := cf.f
		kind := "reconnects"
		if f.Kind == pcapscan.RequestIDRepeat {
			kind = "retry-storm"
		}
		srv := flowServer(f)
		k := kind + " " + srv.String()
		inc := by[k]
		if inc == nil {
			inc = &Incident{Kind: kind, Subject: srv.String(), Addr: srv}
			if kind == "retry-storm" {
				inc.Title = fmt.Sprintf("clients retry requests to %s", srv)
			} else {
				inc.Title = fmt.Sprintf("connections to %s are reset and re-made", srv)
			}
			by[k] = inc
			keys = append(keys, k)
		}
		inc.Severity = max(inc.Severity, capSeverity(f.Severity))
		span(&inc.First, &inc.Last, f.First)
		span(&inc.First, &inc.Last, f.Last)
		text := fmt.Sprintf("%s: %s (%d packets)", f.Kind, f.Detail, f.Count)
		if f.Kind == pcapscan.RequestIDRepeat {
			text = fmt.Sprintf("request-id-repeat: request %q sent %d times", f.RequestID, f.Count)
		}
		inc.Evidence = append(inc.Evidence, Evidence{
			Source: "capture", File: cf.file, What: string(f.Kind), Severity: f.Severity.String(),
			Text: text, Frames: f.Frames, First: f.First, Last: f.Last,
		})
	}
	out := make([]*Incident, 0, len(keys))
	for _, k := range keys {
		inc := by[k]
		inc.Sources = sourcesOf(inc.Evidence)
		inc.Confidence = Medium
		inc.Reasons = []string{"the capture shows it; no address conflict on the server was seen to explain it"}
		inc.Actions = flowActions(inc)
		out = append(out, inc)
	}
	return out
}

// overlapIncidents reports overlapping pools that no contested address was
// found in: a conflict waiting to happen. Subnet overlaps are reported only
// between clusters and when the pools' allocatable sets do not overlap too.
func overlapIncidents(lone []ipam.Overlap, in *inputs, groups map[netip.Addr]*addrGroup) []*Incident {
	type pair struct{ a, b string }
	alloc := map[pair]bool{}
	for _, o := range in.overlaps {
		if o.Kind == ipam.AllocatableOverlap {
			alloc[pair{poolName(o.A.Cluster, o.A.Name), poolName(o.B.Cluster, o.B.Name)}] = true
		}
	}
	var out []*Incident
	for _, o := range lone {
		a, b := poolName(o.A.Cluster, o.A.Name), poolName(o.B.Cluster, o.B.Name)
		if o.Kind == ipam.SubnetOverlap && (o.A.Cluster == o.B.Cluster || alloc[pair{a, b}]) {
			continue
		}
		// A pair whose allocatable overlap explains a contested address was
		// reported with it.
		explained := false
		for _, g := range groups {
			for _, go_ := range g.overlaps {
				if go_.A == o.A && go_.B == o.B {
					explained = true
				}
			}
		}
		if explained {
			continue
		}
		inc := &Incident{Kind: "pool-overlap", Subject: a + " " + b, Confidence: High,
			Reasons: []string{"computed from the pools' specs"}}
		if o.Kind == ipam.AllocatableOverlap {
			inc.Severity = Warning
			inc.Title = fmt.Sprintf("%s and %s can hand out the same %s addresses", a, b, o.Size)
		} else {
			inc.Severity = Info
			inc.Title = fmt.Sprintf("the subnets of %s and %s overlap", a, b)
		}
		inc.Evidence = []Evidence{{Source: "pools", What: "overlap", Pools: []string{a, b}, Range: o.RangeString(),
			Text: fmt.Sprintf("%s overlap of %s and %s: %s (%s addresses)", o.Kind, a, b, o.RangeString(), o.Size)}}
		inc.Sources = []string{"pools"}
		inc.Actions = overlapActions(o, in)
		out = append(out, inc)
	}
	return out
}

// poolIncidents reports pools at their warn or critical utilization.
func poolIncidents(in *inputs) []*Incident {
	var out []*Incident
	for _, p := range in.pools {
		if p.stats == nil || p.stats.Level == ipam.LevelOK {
			continue
		}
		s := p.pool.Spec()
		name := poolName(s.Cluster, s.Name)
		inc := &Incident{Kind: "pool-exhaustion", Subject: name, Severity: Warning, Confidence: High,
			Reasons: []string{"counted from the IPAM store"}}
		if p.stats.Level == ipam.LevelCritical {
			inc.Severity = Critical
		}
		inc.Title = fmt.Sprintf("%s is %.0f%% full", name, 100*p.stats.Utilization)
		inc.Evidence = []Evidence{{Source: "store", File: p.store.name, What: "utilization", Pools: []string{name},
			Text: fmt.Sprintf("%s of %s allocatable addresses taken (%s quarantined), level %s", p.stats.Allocated, p.pool.Size(), p.stats.Quarantined, p.stats.Level)}}
		inc.Sources = []string{"store"}
		inc.Actions = []Action{{Playbook: "grow-pool", Text: fmt.Sprintf(
			"Give %s room before it runs out: add a range (extraRanges) or release the leases of owners that are gone (ipam's Allocator.Reconcile releases a lease only after two dead sightings).", name)}}
		out = append(out, inc)
	}
	return out
}

func rogueDHCPIncident(cf captureFinding) *Incident {
	f := cf.f
	var ms []string
	for _, m := range f.MACs {
		ms = append(ms, m.String())
	}
	inc := &Incident{Kind: "rogue-dhcp", Subject: f.IP.String(), Addr: f.IP, Severity: capSeverity(f.Severity), Confidence: High,
		Title: "two DHCP servers answer on one segment", First: f.First, Last: f.Last, MACs: ms,
		Reasons: []string{"the capture shows offers from several servers"}, Sources: []string{"capture"}}
	inc.Evidence = []Evidence{{Source: "capture", File: cf.file, What: string(f.Kind), Severity: f.Severity.String(),
		Text: fmt.Sprintf("%s: %s (%d packets)", f.Kind, f.Detail, f.Count), Frames: f.Frames, MACs: ms, First: f.First, Last: f.Last}}
	inc.Actions = []Action{{Playbook: "find-second-holder", Text: fmt.Sprintf(
		"Find the DHCP servers by their MACs (%s) in the switch's MAC address table and switch off the one that should not serve this segment.", strings.Join(ms, ", "))}}
	return inc
}

func poolReports(in *inputs) []PoolReport {
	out := make([]PoolReport, 0, len(in.pools))
	for _, p := range in.pools {
		s := p.pool.Spec()
		pr := PoolReport{
			Pool: poolName(s.Cluster, s.Name), Cluster: s.Cluster, Name: s.Name, Subnet: s.Subnet.String(),
			Allocatable: rangesString(p.pool.Allocatable().Ranges()), Size: p.pool.Size().String(),
			Warn: s.Warn, Critical: s.Critical, Sources: p.sources,
		}
		if pr.Warn == 0 {
			pr.Warn = ipam.DefaultWarn
		}
		if pr.Critical == 0 {
			pr.Critical = ipam.DefaultCritical
		}
		if p.stats != nil {
			u := p.stats.Utilization
			pr.Allocated, pr.Utilization, pr.Level = p.stats.Allocated.String(), &u, p.stats.Level.String()
		}
		out = append(out, pr)
	}
	slices.SortFunc(out, func(a, b PoolReport) int { return strings.Compare(a.Pool, b.Pool) })
	return out
}

func rangesString(rs []netipx.IPRange) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		if p, ok := r.Prefix(); ok {
			parts = append(parts, p.String())
		} else if r.From() == r.To() {
			parts = append(parts, r.From().String())
		} else {
			parts = append(parts, r.From().String()+"-"+r.To().String())
		}
	}
	return strings.Join(parts, ",")
}

// fmtTime renders a time the way the text report does.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// ownerOf finds the record version whose value names mac (a field holding
// it) and returns that value's "owner" (or "name", "id") field with its
// node, e.g. "vip/api (node cp-2)".
func ownerOf(recs []recordInfo, mac string) string {
	for _, r := range recs {
		for _, v := range r.decision.Versions {
			m, ok := v.Value.(map[string]any)
			if !ok {
				continue
			}
			named := false
			for _, f := range m {
				if s, ok := f.(string); ok && strings.EqualFold(s, mac) {
					named = true
				}
			}
			if !named {
				continue
			}
			for _, k := range []string{"owner", "name", "id"} {
				if s, ok := m[k].(string); ok && s != "" {
					return fmt.Sprintf("%s (node %s)", s, v.Node)
				}
			}
		}
	}
	return ""
}

// bruteForce reports whether the rules seen include a password-guessing one.
func bruteForce(rules map[string]bool) bool {
	for _, r := range []logscan.Rule{logscan.RuleBruteForce, logscan.RuleBurst, logscan.RuleSlowBruteForce,
		logscan.RuleUserEnumeration, logscan.RuleSuccessAfterFailures, logscan.RulePreauthScan} {
		if rules[string(r)] {
			return true
		}
	}
	return false
}

// addressMap is the overlapping pools' allocatable ranges around a
// contested address.
type addressMap struct {
	addr    netip.Addr
	pools   []mapPool
	overlap []netipx.IPRange
}

type mapPool struct {
	name   string
	ranges []netipx.IPRange
}

// mapOf returns the map of the pools whose overlap holds g's address, or
// nil when there is none.
func mapOf(g *addrGroup, in *inputs) *addressMap {
	if len(g.overlaps) == 0 || !g.addr.Is4() {
		return nil
	}
	m := &addressMap{addr: g.addr}
	seen := map[ipam.PoolRef]bool{}
	for _, o := range g.overlaps {
		m.overlap = append(m.overlap, o.Ranges...)
		for _, ref := range []ipam.PoolRef{o.A, o.B} {
			if seen[ref] {
				continue
			}
			seen[ref] = true
			for _, p := range in.pools {
				if p.ref() == ref {
					m.pools = append(m.pools, mapPool{name: poolName(ref.Cluster, ref.Name), ranges: p.pool.Allocatable().Ranges()})
				}
			}
		}
	}
	return m
}
