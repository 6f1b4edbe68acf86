package logscan

import (
	"net"
	"net/netip"
	"slices"
	"time"
)

// rule indexes; the per-source rules come first.
const (
	rBruteForce = iota
	rBurst
	rSlow
	rEnum
	rPreauth
	rSuccess
	rOffHours
	rRisky
	rScan
	rInject
	rConflict
	rDataConflict
	rIncident
	rLongLine
	numRules
	numSrcRules = rConflict
)

var ruleNames = [numRules]Rule{
	rBruteForce: RuleBruteForce, rBurst: RuleBurst, rSlow: RuleSlowBruteForce, rEnum: RuleUserEnumeration,
	rPreauth: RulePreauthScan, rSuccess: RuleSuccessAfterFailures, rOffHours: RuleOffHoursLogin,
	rRisky: RuleRiskyPort, rScan: RulePortScan, rInject: RuleLogInjection, rConflict: RuleAddressConflict,
	rDataConflict: RuleDataConflict, rIncident: RuleIncident, rLongLine: RuleLongLine,
}

var ruleIndex = func() map[Rule]int {
	m := make(map[Rule]int, numRules)
	for i, r := range ruleNames {
		m[r] = i
	}
	return m
}()

const (
	sshFamily = 1<<rBruteForce | 1<<rBurst | 1<<rSlow | 1<<rEnum | 1<<rPreauth | 1<<rSuccess | 1<<rInject
	fwFamily  = 1<<rRisky | 1<<rScan
)

var ruleSeverity = [numRules]Severity{
	rBruteForce: SeverityHigh, rBurst: SeverityMedium, rSlow: SeverityMedium, rEnum: SeverityHigh,
	rPreauth: SeverityLow, rSuccess: SeverityCritical, rOffHours: SeverityMedium, rRisky: SeverityMedium,
	rScan: SeverityHigh, rInject: SeverityHigh, rConflict: SeverityHigh, rDataConflict: SeverityMedium,
	rIncident: SeverityHigh, rLongLine: SeverityLow,
}

// stamp is one event in a sliding window: its log time and line.
type stamp struct {
	ns   int64
	line int64
}

// ring keeps the last len(buf) stamps.
type ring struct {
	buf  []stamp
	next int
	n    int
}

func (r *ring) push(s stamp) {
	if len(r.buf) == 0 {
		return
	}
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

// nth returns the k-th most recent stamp (0 = newest).
func (r *ring) nth(k int) (stamp, bool) {
	if k >= r.n || k < 0 {
		return stamp{}, false
	}
	i := (r.next - 1 - k + 2*len(r.buf)) % len(r.buf)
	return r.buf[i], true
}

// within reports whether the last count stamps all lie inside w before ns:
// an exact sliding-window test.
func (r *ring) within(count int, w time.Duration, ns int64) bool {
	s, ok := r.nth(count - 1)
	return ok && ns-s.ns <= int64(w)
}

// lines returns the lines of the last count stamps, oldest first, and the
// time of the oldest.
func (r *ring) last(count int) ([]int64, int64) {
	if count > r.n {
		count = r.n
	}
	out := make([]int64, 0, count)
	var first int64
	for k := count - 1; k >= 0; k-- {
		s, _ := r.nth(k)
		if k == count-1 {
			first = s.ns
		}
		out = append(out, s.line)
	}
	return out, first
}

// bucket is a leaky bucket.
type bucket struct {
	level  float64
	lastNS int64
	used   bool
}

func (b *bucket) add(ns int64, capacity int, leak time.Duration) bool {
	if b.used && ns > b.lastNS {
		b.level -= float64(ns-b.lastNS) / float64(leak)
		if b.level < 0 {
			b.level = 0
		}
	}
	if !b.used || ns > b.lastNS {
		b.lastNS = ns
	}
	b.used = true
	b.level++
	return b.level > float64(capacity)
}

// recent keeps the most recently seen distinct values with their last time;
// with room for count values it answers "count distinct inside w" exactly.
// Values are compared by key (a hash of a user name, a port number).
type recent[T any] struct {
	vals []T
	keys []uint64
	ns   []int64
	line []int64
}

// touch refreshes key's time and reports whether it was present.
func (r *recent[T]) touch(key uint64, ns, line int64) bool {
	for i, k := range r.keys {
		if k == key {
			r.ns[i], r.line[i] = ns, line
			return true
		}
	}
	return false
}

// insert adds a value that touch did not find, replacing the value seen
// longest ago when capacity values are held.
func (r *recent[T]) insert(v T, key uint64, ns, line int64, capacity int) {
	if len(r.vals) < capacity {
		r.vals = append(r.vals, v)
		r.keys = append(r.keys, key)
		r.ns = append(r.ns, ns)
		r.line = append(r.line, line)
		return
	}
	old := 0
	for i := range r.ns {
		if r.ns[i] < r.ns[old] {
			old = i
		}
	}
	r.vals[old], r.keys[old], r.ns[old], r.line[old] = v, key, ns, line
}

// countWithin counts values last seen inside w before ns.
func (r *recent[T]) countWithin(ns int64, w time.Duration) int {
	c := 0
	for _, t := range r.ns {
		if ns-t <= int64(w) {
			c++
		}
	}
	return c
}

// acc accumulates one open finding.
type acc struct {
	firstNS   int64
	lastNS    int64
	uh        []uint64 // hashes of f.Users
	f         Finding  // its first fields (Count, Lines, Users) are the hot ones
	seenUsers map[uint64]struct{}
	seenPorts map[uint16]struct{}
	seenMACs  map[string]struct{}
}

const maxDistinctTracked = 1024

func (a *acc) touch(ns, line int64, maxEvidence int) {
	if a.f.Count == 0 || ns < a.firstNS {
		a.firstNS = ns
	}
	if ns > a.lastNS || a.f.Count == 0 {
		a.lastNS = ns
	}
	a.f.Count++
	a.addLine(line, maxEvidence)
}

func (a *acc) addLine(line int64, maxEvidence int) {
	if len(a.f.Lines) < maxEvidence && (len(a.f.Lines) == 0 || a.f.Lines[len(a.f.Lines)-1] != line) {
		a.f.Lines = append(a.f.Lines, line)
	}
}

// addUser adds user u with hash h (Analyzer.userHash).
func (a *acc) addUser(u string, h uint64, maxListed int) {
	if n := len(a.uh); n > 0 && a.uh[n-1] == h {
		return // the same user again: the common brute-force case
	}
	if a.seenUsers == nil {
		// all distinct users so far are listed: the list answers
		for _, x := range a.uh {
			if x == h {
				return
			}
		}
		if len(a.f.Users) < maxListed {
			a.f.Users = append(a.f.Users, keep(u))
			a.uh = append(a.uh, h)
			a.f.DistinctUsers = len(a.f.Users)
			return
		}
		a.seenUsers = make(map[uint64]struct{}, 2*maxListed)
		for _, x := range a.uh {
			a.seenUsers[x] = struct{}{}
		}
	}
	if _, ok := a.seenUsers[h]; ok || len(a.seenUsers) >= maxDistinctTracked {
		return
	}
	a.seenUsers[h] = struct{}{}
	a.f.DistinctUsers = len(a.seenUsers)
}

func (a *acc) addPort(p uint16, maxListed int) {
	if a.seenPorts == nil {
		for _, x := range a.f.Ports {
			if x == p {
				return
			}
		}
		if len(a.f.Ports) < maxListed {
			a.f.Ports = append(a.f.Ports, p)
			a.f.DistinctPorts = len(a.f.Ports)
			return
		}
		a.seenPorts = make(map[uint16]struct{}, 2*maxListed)
		for _, x := range a.f.Ports {
			a.seenPorts[x] = struct{}{}
		}
	}
	if _, ok := a.seenPorts[p]; ok || len(a.seenPorts) >= maxDistinctTracked {
		return
	}
	a.seenPorts[p] = struct{}{}
	a.f.DistinctPorts = len(a.seenPorts)
	if len(a.f.Ports) < maxListed {
		a.f.Ports = append(a.f.Ports, p)
	}
}

func (a *acc) addMAC(m net.HardwareAddr, maxListed int) {
	if len(m) == 0 {
		return
	}
	if a.seenMACs == nil {
		a.seenMACs = make(map[string]struct{})
	}
	k := string(m)
	if _, ok := a.seenMACs[k]; ok || len(a.seenMACs) >= maxDistinctTracked {
		return
	}
	a.seenMACs[k] = struct{}{}
	a.f.DistinctMACs = len(a.seenMACs)
	if len(a.f.MACs) < maxListed {
		a.f.MACs = append(a.f.MACs, slices.Clone(m))
	}
}

// srcKey identifies a source: an address, or a host name as logged.
type srcKey struct {
	addr netip.Addr
	name string
}

// keyOf returns the table key of h: its address, or its name cut by
// clipKept (a view: clone it to keep it).
func keyOf(h host) srcKey {
	if h.Addr.IsValid() {
		return srcKey{addr: h.Addr}
	}
	return srcKey{name: clipKept(h.Text)}
}

func (k srcKey) String() string {
	if k.addr.IsValid() {
		return k.addr.String()
	}
	return k.name
}

// srcState is everything the rules keep per source.
type srcState struct {
	// hot: what every failure of the source reads or writes, in access order
	lastNS   int64
	failN    int64 // failures not yet added to the top-sources table
	fails    ring
	users    recent[string]
	userKeys [inlineUsers]uint64
	userNS   [inlineUsers]int64
	burst    bucket
	slow     bucket
	open     [numSrcRules]*acc
	blk      *[3]acc // adjacent storage for the hot findings (brute force, burst, enumeration)
	failsInl [inlineStamps]stamp
	userLine [inlineUsers]int64
	userVals [inlineUsers]string
	// cold
	fired uint32
	key   srcKey
	text  string
	noise ring
	ports recent[uint16]
	inc   *acc
}

const (
	inlineStamps = 12
	inlineUsers  = 6
)

// initBuffers points st's windows at its inline arrays when they fit.
func (st *srcState) initBuffers(fails, users int) {
	if fails <= inlineStamps {
		st.fails.buf = st.failsInl[:fails]
	} else {
		st.fails.buf = make([]stamp, fails)
	}
	if users <= inlineUsers {
		st.users.vals, st.users.keys = st.userVals[:0:users], st.userKeys[:0:users]
		st.users.ns, st.users.line = st.userNS[:0:users], st.userLine[:0:users]
	}
}

// addrState is what the conflict rule keeps per contested address.
type addrState struct {
	key    srcKey
	lastNS int64
	flips  ring
	open   *acc
	rule   int
}
