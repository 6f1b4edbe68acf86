package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/logscan"
	"github.com/addrguard/addrguard/pcapscan"
)

// The playbook: what to do about each kind of incident, filled in with the
// incident's own addresses, MACs, pools, frames and lines.

func addressActions(g *addrGroup, inc *Incident, in *inputs) []Action {
	var acts []Action
	if len(inc.Timeline) >= 2 || len(inc.MACs) >= 2 {
		acts = append(acts, secondHolderAction(g, inc))
	}
	for _, o := range g.overlaps {
		acts = append(acts, overlapActions(o, in)...)
	}
	probeText := fmt.Sprintf("Probe before binding: have every allocator ask the link first. An ipam.Verifier built on arpcheck.Probe quarantines an address that answers instead of handing it out; hosts should fail, not warn, when their RFC 5227 probe is answered. Check %s live now: diagnose -I IFACE -probe %s (as root).", g.addr, g.addr)
	for _, cf := range g.captures {
		if cf.f.Kind == pcapscan.DADProbeAnswered {
			probeText += fmt.Sprintf(" Here a probe for it was answered (%s) and the address was bound anyway.", frameList(cf.file, cf.f.Frames))
			break
		}
	}
	acts = append(acts, Action{Playbook: "probe-before-binding", Text: probeText})
	if ann := announcers(g, inc); len(ann) > 0 {
		acts = append(acts, Action{Playbook: "announce-after-move", Text: fmt.Sprintf(
			"Announce after moving a VIP: %s with gratuitous ARP, and each announcement turned the neighbours' caches to that MAC. If %s is a virtual IP meant to move, take it off the old holder first and then announce it once from the new one (go run ./examples/arping -I IFACE -announce %s); two holders announcing in turn send clients back and forth.",
			strings.Join(ann, ", then "), g.addr, g.addr)})
	}
	keys := map[string][]recordInfo{}
	var order []string
	for _, r := range g.records {
		if keys[r.key] == nil {
			order = append(order, r.key)
		}
		keys[r.key] = append(keys[r.key], r)
	}
	for _, k := range order {
		acts = append(acts, resolveAction(k, keys[k]))
	}
	return acts
}

// secondHolderAction names the MAC that claimed the address last, with the
// owners the IPAM stores know.
func secondHolderAction(g *addrGroup, inc *Incident) Action {
	type seen struct {
		mac   string
		first time.Time
	}
	var holders []seen
	for _, l := range inc.Timeline {
		if len(l.Marks) > 0 {
			holders = append(holders, seen{l.MAC, l.Marks[0].Time})
		}
	}
	slices.SortStableFunc(holders, func(a, b seen) int { return a.first.Compare(b.first) })
	var b strings.Builder
	if len(holders) >= 2 {
		last := holders[len(holders)-1]
		var earlier []string
		for _, h := range holders[:len(holders)-1] {
			earlier = append(earlier, fmt.Sprintf("%s (from %s)", h.mac, clock(h.first)))
		}
		fmt.Fprintf(&b, "Find the second holder by its MAC: %s showed up with %s at %s, after %s.", last.mac, g.addr, clock(last.first), strings.Join(earlier, ", "))
		fmt.Fprintf(&b, " Look it up in the switch's MAC address table (on a Linux bridge: bridge fdb show | grep -i %s) to find its port and host", last.mac)
	} else {
		fmt.Fprintf(&b, "Find the holders by their MACs (%s) in the switch's MAC address table (on a Linux bridge: bridge fdb show | grep -i MAC) to find their ports and hosts", strings.Join(inc.MACs, ", "))
	}
	if len(g.leases) > 0 {
		var ls []string
		for _, l := range g.leases {
			ls = append(ls, fmt.Sprintf("%s leases it to %s", l.pool, l.lease.Owner))
		}
		fmt.Fprintf(&b, "; IPAM: %s", strings.Join(ls, ", "))
	}
	b.WriteString(". Take the address off the host that should not have it, then check that one MAC is left.")
	return Action{Playbook: "find-second-holder", Text: b.String()}
}

// announcers lists the MACs that announced the address (gratuitous ARP or a
// takeover), in the order of their first announcement, with the frames.
func announcers(g *addrGroup, inc *Incident) []string {
	type ann struct {
		mac    string
		first  time.Time
		frames []uint64
	}
	var anns []ann
	for _, l := range inc.Timeline {
		a := ann{mac: l.MAC}
		for _, m := range l.Marks {
			if m.What == "arp-gratuitous" {
				if a.first.IsZero() {
					a.first = m.Time
				}
				a.frames = append(a.frames, m.Frame)
			}
		}
		if len(a.frames) > 0 {
			anns = append(anns, a)
		}
	}
	slices.SortStableFunc(anns, func(a, b ann) int { return a.first.Compare(b.first) })
	var out []string
	for _, a := range anns {
		word := "frames"
		if len(a.frames) == 1 {
			word = "frame"
		}
		var fs []string
		for _, f := range a.frames {
			fs = append(fs, fmt.Sprint(f))
		}
		out = append(out, fmt.Sprintf("%s announced it at %s (%s %s)", a.mac, clock(a.first), word, strings.Join(fs, ", ")))
	}
	if len(out) == 0 {
		for _, cf := range g.captures {
			if cf.f.Kind == pcapscan.ARPSpoof && len(cf.f.MACs) > 0 {
				out = append(out, fmt.Sprintf("%s took it over (%s)", cf.f.MACs[len(cf.f.MACs)-1], frameList(cf.file, cf.f.Frames)))
			}
		}
	}
	return out
}

// overlapActions are the two cures of overlapping pools: separate subnets
// for good, a reserved range until then.
func overlapActions(o ipam.Overlap, in *inputs) []Action {
	a, b := poolName(o.A.Cluster, o.A.Name), poolName(o.B.Cluster, o.B.Name)
	sep := fmt.Sprintf("Separate subnets per control plane: %s and %s both hand out %s. Give each cluster address space of its own, so that no two control planes can hand out one address.", a, b, o.RangeString())
	if o.A.Cluster != "" && o.A.Cluster != o.B.Cluster {
		sep = fmt.Sprintf("Separate subnets per control plane: clusters %s (%s) and %s (%s) both hand out %s. Give each cluster address space of its own, so that no two control planes can hand out one address.", o.A.Cluster, a, o.B.Cluster, b, o.RangeString())
	}
	var entries []string
	for _, r := range o.Ranges {
		entries = append(entries, fmt.Sprintf("%q", rangeEntry(r)))
	}
	// Reserve the overlap in the pool that has fewer leases in it (they must
	// move), or, not knowing, in the larger pool, which loses the smaller share.
	keep, give := b, a
	na, nb := in.leasesIn(o.A, o.Ranges), in.leasesIn(o.B, o.Ranges)
	switch {
	case na >= 0 && nb >= 0 && na != nb:
		if nb < na {
			keep, give, na, nb = a, b, nb, na
		}
	case in.poolSize(o.A).Cmp(in.poolSize(o.B)) < 0:
		keep, give, na, nb = a, b, nb, na
	}
	res := fmt.Sprintf("Reserve ranges in IPAM until the subnets are apart: add reservedIPs: [%s] to %s, so that only %s hands these addresses out (ipamctl pool add applies it).", strings.Join(entries, ", "), give, keep)
	if na > 0 {
		res += fmt.Sprintf(" %s holds %d %s in the range, which must move first (ipam refuses to reserve an allocated address)", give, na, plural(na, "lease", "leases"))
		if nb > 0 {
			res += fmt.Sprintf("; %s holds %d", keep, nb)
		}
		res += "."
	}
	if g := in.poolByName(give); g != nil && o.Size.Cmp(g.pool.Size()) >= 0 {
		res += fmt.Sprintf(" The range is all of %s, so give it a range of its own first.", give)
	}
	if o.Kind == ipam.SubnetOverlap {
		res = fmt.Sprintf("Check routing: the subnets of %s and %s overlap (%s), so the two networks cannot both be reached from one place. If they are one network, split it with disjoint ranges (rangeStart/rangeEnd) in each pool.", a, b, o.RangeString())
	}
	return []Action{{Playbook: "separate-subnets", Text: sep}, {Playbook: "reserve-ranges", Text: res}}
}

func rangeEntry(r netipx.IPRange) string {
	if p, ok := r.Prefix(); ok {
		return p.String()
	}
	if r.From() == r.To() {
		return r.From().String()
	}
	return r.From().String() + "-" + r.To().String()
}

// resolveAction says what the chosen policy decided about a record key.
func resolveAction(key string, recs []recordInfo) Action {
	if len(recs) == 0 {
		return Action{Playbook: "resolve-data-conflict", Text: fmt.Sprintf(
			"Resolve the data conflict on %s by the chosen policy: run diagnose with -record FILE holding each replica's record of it, and write the decision back with a context that covers every version.", key)}
	}
	d := recs[0].decision
	ev := d.Event(key, nil)
	var b strings.Builder
	fmt.Fprintf(&b, "Resolve the data conflict on %s by the chosen policy (-policy %s): ", key, d.Policy)
	label := func(l string) string {
		for _, v := range ev.Versions {
			if v.Label == l {
				if v.Deleted {
					return fmt.Sprintf("Version %s (node %s, a delete)", l, v.Node)
				}
				return fmt.Sprintf("Version %s (node %s, %s)", l, v.Node, v.Value)
			}
		}
		return "Version " + l
	}
	switch {
	case ev.Winner != "" && ev.Winner != "merged":
		fmt.Fprintf(&b, "%s wins", label(ev.Winner))
		if len(ev.Discarded) > 0 {
			var ds []string
			for _, l := range ev.Discarded {
				ds = append(ds, label(l))
			}
			fmt.Fprintf(&b, "; %s is discarded", strings.Join(ds, " and "))
		}
		b.WriteString(". Write the winner back with a context covering every version, so all replicas converge on it; the audit line is the same on each.")
		if keyAddr(key).IsValid() {
			b.WriteString(" The owner whose lease is discarded must give the address up.")
		}
	case ev.Winner == "merged":
		fmt.Fprintf(&b, "the versions merge into %s. Write it back with a context covering every version.", ev.Merged)
	default:
		b.WriteString("it keeps every version, so a person must choose: rerun with -policy lww, delete-wins or add-wins to see what each would keep, then write the chosen value with a context covering every version.")
	}
	for _, w := range d.Warnings {
		fmt.Fprintf(&b, " Note: %s.", w.Message)
	}
	return Action{Playbook: "resolve-data-conflict", Text: b.String()}
}

func sourceActions(inc *Incident, rules map[string]bool, users []string) []Action {
	var lines []int64
	for _, e := range inc.Evidence {
		lines = append(lines, e.Lines...)
	}
	slices.Sort(lines)
	lines = slices.Compact(lines)
	if inc.Kind == "off-hours-login" {
		who := "the user"
		if len(users) > 0 {
			who = strings.Join(users, ", ")
		}
		return []Action{{Playbook: "verify-login", Text: fmt.Sprintf(
			"Ask %s whether the login from %s at %s (%s) was theirs, an on-call fix say; if not, lock the account, revoke its keys and sessions and review what it did.",
			who, inc.Subject, clock(inc.First), lineList(inc.Evidence[0].File, lines))}}
	}
	text := fmt.Sprintf("Treat the brute-force source %s: block it at the edge (nft add rule inet filter input ip saddr %s drop, or let fail2ban's sshd jail ban it) and keep password logins off (PasswordAuthentication no). Evidence: %s.",
		inc.Subject, inc.Subject, lineList(inc.Evidence[0].File, lines))
	if !bruteForce(rules) {
		text = fmt.Sprintf("Treat the hostile source %s: block it at the edge (nft add rule inet filter input ip saddr %s drop) and check that the ports it tried are not open to the world. Evidence: %s.",
			inc.Subject, inc.Subject, lineList(inc.Evidence[0].File, lines))
	}
	if inc.Addr.Is6() {
		text = strings.Replace(text, " ip saddr ", " ip6 saddr ", 1)
	}
	if len(users) > 0 {
		text += fmt.Sprintf(" Accounts tried: %s.", strings.Join(users, ", "))
	}
	acts := []Action{{Playbook: "treat-brute-force", Text: text}}
	if rules[string(logscan.RuleSuccessAfterFailures)] {
		acts = append(acts, Action{Playbook: "verify-login", Text: fmt.Sprintf(
			"A login from %s succeeded after its failures: treat the account as compromised, lock it, revoke its keys and sessions and review what it did.", inc.Subject)})
	}
	return acts
}

func flowActions(inc *Incident) []Action {
	var frames []string
	for _, e := range inc.Evidence {
		frames = append(frames, frameList(e.File, e.Frames))
	}
	if inc.Kind == "retry-storm" {
		return []Action{{Playbook: "fix-retries", Text: fmt.Sprintf(
			"Find why requests to %s fail before clients retry (%s): compare which server MAC answered each attempt, and give the retries backoff with jitter.", inc.Subject, strings.Join(frames, "; "))}}
	}
	return []Action{{Playbook: "find-resets", Text: fmt.Sprintf(
		"Find who resets the connections to %s (%s): a peer that lost its state, a middlebox, or two hosts behind one address.", inc.Subject, strings.Join(frames, "; "))}}
}

// frameList renders "FILE frames 1, 2, 3" (at most 12 numbers).
func frameList(file string, frames []uint64) string { return numList(file, "frame", "frames", frames) }

// lineList renders "FILE lines 1, 2, 3" (at most 12 numbers).
func lineList(file string, lines []int64) string { return numList(file, "line", "lines", lines) }

// numList renders "FILE WORDS n1, n2, ..." with at most 12 numbers.
func numList[N uint64 | int64](file, one, many string, ns []N) string {
	var parts []string
	for i, n := range ns {
		if i == 12 {
			parts = append(parts, fmt.Sprintf("… %d more", len(ns)-12))
			break
		}
		parts = append(parts, fmt.Sprint(n))
	}
	return fmt.Sprintf("%s %s %s", file, plural(len(ns), one, many), strings.Join(parts, ", "))
}

// clock renders a time of day.
func clock(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format("15:04:05.000Z")
}

// poolSize returns the allocatable size of the pool ref names.
func (in *inputs) poolSize(ref ipam.PoolRef) ipam.Count {
	for _, p := range in.pools {
		if p.ref() == ref {
			return p.pool.Size()
		}
	}
	return ipam.Count{}
}

// poolByName finds a pool by its cluster/name.
func (in *inputs) poolByName(name string) *poolInfo {
	for _, p := range in.pools {
		s := p.pool.Spec()
		if poolName(s.Cluster, s.Name) == name {
			return p
		}
	}
	return nil
}

// leasesIn counts the leases of the pool ref names inside ranges, or -1 when
// no store was given for it.
func (in *inputs) leasesIn(ref ipam.PoolRef, ranges []netipx.IPRange) int {
	for _, p := range in.pools {
		if p.ref() != ref {
			continue
		}
		if p.store == nil {
			return -1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n := 0
		for l, err := range p.store.alloc.Leases(ctx, ref.Name) {
			if err != nil {
				return -1
			}
			if inRanges(ranges, l.Addr) {
				n++
			}
		}
		return n
	}
	return -1
}
