package logscan

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"io"

	"slices"
	"strconv"
	"strings"
	"time"
)

// Stats counts what one Scan read.
type Stats struct {
	Lines      int64 // lines read (also the long ones)
	Bytes      int64 // bytes read
	Recognised int64 // lines that produced an event
	Failures   int64 // authentication failures (in the selected Mode)
	Successes  int64 // successful logins
	LongLines  int64 // lines over MaxLineBytes, skipped
	Malformed  int64 // journald JSON lines that could not be read
	Unparsed   int64 // lines without a recognisable header
	Findings   int64 // findings emitted
	Evicted    int64 // table entries evicted to stay inside the bounds
}

// Handler receives what a scan produces. Either function may be nil.
type Handler struct {
	// Finding is called for every finding, as soon as it is complete:
	// when its key has been quiet for the rule's window (at least 10 minutes
	// of log time), when its table entry is evicted, or at the end of the
	// stream.
	Finding func(Finding)
	// Event is called for every recognised line, in stream order.
	Event func(Event)
}

// Analyzer reads system logs and reports findings. Create it with New; it
// may scan several streams one after the other (each Scan starts from a
// clean state) but is not safe for concurrent use.
type Analyzer struct {
	opts     Options
	optErr   error
	disabled [numRules]bool
	risky    [1024]uint64 // bitset of risky ports
	workDays [7]bool
	keep     time.Duration    // how long per-source state outlives its last event
	detail   [numRules]string // Finding.Detail of each rule, from the options
	topOnly  bool

	// per scan
	tc        *timeCtx
	jp        journalParser
	conns     *connCache
	seed      maphash.Seed
	strs      map[string]string
	hot       [256]string
	srcs      *lru[srcKey, srcState]
	addrs     *lru[srcKey, addrState]
	keybuf    []byte
	nowNS     int64
	haveNow   bool
	nextSweep int64
	h         Handler
	top       topTable
	stats     Stats
	long      *acc
	longest   int64
	detached  connState
	detUH     []uint64 // backing arrays owned by detached contexts
	detUsers  []string
	final     []Finding
	flushing  bool
	readBuf   []byte
}

// New returns an Analyzer for opts. Invalid options are reported by the
// first Scan (as an *OptionError wrapping ErrInvalidOptions).
func New(opts Options) *Analyzer {
	a := &Analyzer{}
	o, err := opts.withDefaults()
	a.opts, a.optErr = o, err
	if err != nil {
		return a
	}
	for _, r := range o.Rules.Disable {
		a.disabled[ruleIndex[r]] = true
	}
	for _, p := range o.Rules.RiskyPorts {
		a.risky[p/64] |= 1 << (p % 64)
	}
	for _, d := range o.Rules.WorkHours.Days {
		if d >= 0 && d < 7 {
			a.workDays[d] = true
		}
	}
	r := o.Rules
	wh := r.WorkHours
	a.detail = [numRules]string{
		rBruteForce: fmt.Sprintf("%d or more authentication failures within %v", r.BruteForce.Count, r.BruteForce.Window),
		rBurst:      fmt.Sprintf("leaky bucket of %d (one leak per %v) overflowed", r.Burst.Capacity, r.Burst.Leak),
		rSlow:       fmt.Sprintf("slow leaky bucket of %d (one leak per %v) overflowed", r.SlowBruteForce.Capacity, r.SlowBruteForce.Leak),
		rEnum:       fmt.Sprintf("%d or more distinct users within %v", r.UserEnumeration.Count, r.UserEnumeration.Window),
		rPreauth:    fmt.Sprintf("%d or more pre-authentication disconnects or protocol errors within %v", r.PreauthScan.Count, r.PreauthScan.Window),
		rSuccess:    fmt.Sprintf("login after %d or more failures within %v", r.SuccessAfterFailures.Count, r.SuccessAfterFailures.Window),
		rOffHours:   fmt.Sprintf("login outside working hours (%s to %s, %s)", clock(wh.Start), clock(wh.End), dayList(wh.Days)),
		rRisky:      "firewall logged packets to high-risk ports",
		rScan:       fmt.Sprintf("%d or more distinct destination ports within %v", r.PortScan.Count, r.PortScan.Window),
		rIncident:   "one source in both sshd and firewall findings",
	}
	a.keep = 10 * time.Minute
	for _, w := range []time.Duration{o.Rules.BruteForce.Window, o.Rules.UserEnumeration.Window,
		o.Rules.PreauthScan.Window, o.Rules.SuccessAfterFailures.Window, o.Rules.PortScan.Window,
		o.Rules.FlipFlops.Window, time.Duration(o.Rules.Burst.Capacity) * o.Rules.Burst.Leak,
		time.Duration(o.Rules.SlowBruteForce.Capacity) * o.Rules.SlowBruteForce.Leak} {
		a.keep = max(a.keep, w)
	}
	return a
}

// Scan reads r to its end and calls yield for every finding. It returns the
// first read error, or an *OptionError for invalid options; malformed and
// overlong lines are not errors.
func (a *Analyzer) Scan(r io.Reader, yield func(Finding)) error {
	return a.ScanContext(context.Background(), r, Handler{Finding: yield})
}

// ScanContext is Scan with events and cancellation: it stops with ctx's
// error when ctx is done (checked between reads and every few thousand
// lines; a Read that blocks is not interrupted), after emitting the findings
// complete so far.
func (a *Analyzer) ScanContext(ctx context.Context, r io.Reader, h Handler) error {
	if a.optErr != nil {
		return a.optErr
	}
	a.reset(h)
	lr := newLineReader(r, a.opts.MaxLineBytes, a.readBuf)
	a.readBuf = lr.buf
	var err error
	// A top-sources scan reads sshd lines only: every text format names the
	// program in the line, so a line without "sshd" is another program's
	// and is passed over unparsed (journald JSON is always read: a field
	// may be a byte array). The reader tells in the same pass that finds
	// the line's end.
	topOnly := a.topOnly && a.h.Event == nil
	for {
		line, n, long, ok, rerr, maySSHD := lr.scan(topOnly)
		if !ok {
			err = rerr
			break
		}
		a.stats.Lines++
		switch {
		case long:
			a.longLine(lr.line, n)
		case topOnly && !maySSHD && (len(line) == 0 || line[0] != '{'):
			// another program's line: nothing to count
		default:
			a.line(line, lr.line)
		}
		if lr.line&4095 == 0 {
			if cerr := ctx.Err(); cerr != nil {
				err = cerr
				break
			}
		}
	}
	a.stats.Bytes = lr.bytes
	a.flushAll()
	if err != nil {
		return fmt.Errorf("logscan: after line %d: %w", lr.line, err)
	}
	return nil
}

// Stats returns the counters of the last scan.
func (a *Analyzer) Stats() Stats { return a.stats }

func (a *Analyzer) reset(h Handler) {
	ref := a.opts.Reference
	if ref.IsZero() {
		ref = a.opts.Clock()
	}
	a.tc = newTimeCtx(a.opts.Location, ref)
	a.h = h
	a.stats = Stats{}
	a.long, a.longest = nil, 0
	a.nowNS, a.haveNow, a.nextSweep = 0, false, 0
	a.final = a.final[:0]
	if a.conns == nil {
		a.conns = newConnCache(a.opts.MaxConnections)
	}
	a.conns.reset()
	a.seed = maphash.MakeSeed()
	a.strs = make(map[string]string, 256)
	a.srcs = newLRU[srcKey, srcState](a.opts.MaxSources, hashSrcKey, func(st *srcState) { a.closeSource(st) })
	a.addrs = newLRU[srcKey, addrState](a.opts.MaxAddresses, hashSrcKey, func(st *addrState) { a.closeAddr(st) })
	a.top = topTable{max: a.opts.MaxSources}
}

// line analyses one line.
func (a *Analyzer) line(b []byte, n int64) {
	s := view(b)
	var rec record
	if len(s) > 0 && s[0] == '{' {
		if !a.jp.parse(s, &rec) {
			a.stats.Malformed++
			if a.opts.Logger != nil {
				a.opts.Logger.Debug("logscan: malformed journal line", "line", n)
			}
			return
		}
	} else if !a.tc.parseHeaderLazy(s, &rec) {
		a.stats.Unparsed++
		return
	}
	// decide who reads the line before spending time on its date
	const (
		hSSHD = iota + 1
		hKernel
		hReconcile
		hConflict
	)
	h := 0
	switch {
	case isSSHD(rec.prog):
		h = hSSHD
	case a.topOnly:
		return
	case rec.prog == "kernel":
		h = hKernel
	case len(rec.msg) > 0 && (rec.msg[0] == '[' || rec.msg[0] == 'C') && strings.Contains(rec.msg, "Conflict detected for key="):
		h = hReconcile
	case isConflictProg(rec.prog):
		h = hConflict
	default:
		return
	}
	ns := a.timeOf(&rec)
	switch h {
	case hSSHD:
		a.sshd(&rec, ns, n)
	case hKernel:
		var fm fwMatch
		if classifyFirewall(rec.msg, &fm) {
			a.firewall(&rec, &fm, ns, n)
			return
		}
		a.conflictLine(&rec, ns, n)
	case hReconcile:
		// also "[WARN] Conflict detected for key=..." without a syslog header
		var cm conflictMatch
		if reconcileConflict(rec.msg, &cm) {
			a.conflict(&rec, &cm, ns, n, KindReconcile)
		}
	case hConflict:
		a.conflictLine(&rec, ns, n)
	}
}

// timeOf resolves rec's time (the last one seen, or the reference, when the
// line carries none) and runs the idle sweep when log time moved on.
func (a *Analyzer) timeOf(rec *record) int64 {
	if !rec.hasTime {
		if a.haveNow {
			return a.nowNS
		}
		return a.tc.ref.UnixNano()
	}
	ns := rec.ns
	if rec.date.kind != dateNone {
		ns = a.tc.resolve(&rec.date)
		rec.ns = ns
	}
	if !a.haveNow || ns > a.nowNS {
		a.nowNS, a.haveNow = ns, true
		if ns >= a.nextSweep {
			a.sweep()
			a.nextSweep = ns + int64(2*time.Minute)
		}
	}
	return ns
}

func isConflictProg(p string) bool {
	switch p {
	case "NetworkManager", "systemd-networkd", "dhcpcd", "dhclient", "arpwatch":
		return true
	}
	return false
}

func (a *Analyzer) conflictLine(rec *record, ns int64, n int64) {
	switch rec.prog {
	case "kernel", "NetworkManager", "systemd-networkd", "dhcpcd", "dhclient", "arpwatch":
	default:
		return
	}
	var cm conflictMatch
	if classifyConflict(rec.prog, rec.msg, &cm) {
		a.conflict(rec, &cm, ns, n, KindAddressConflict)
	}
}

// connState is the per-connection (sshd[pid]) context, kept as fail2ban
// keeps its multi-line failure id cache: it carries the address and users
// between lines, holds helper lines until a failure, and forgets on
// disconnect or success.
type connState struct {
	src      host
	userLen  int // -1: no user named yet
	userBuf  [24]byte
	userLong string
	uh       []uint64 // hashes of the distinct non-empty users, at most maxConnUsers
	users    []string // their names, kept only when events are reported
	nofail   bool
	gained   bool
	pending  bool
	matches  int
	nfm      int // helper lines waiting to join the next failure
	lastNS   int64
}

const maxConnUsers = 16

func (c *connState) setUser(u string) {
	c.userLen = len(u)
	if len(u) <= len(c.userBuf) {
		copy(c.userBuf[:], u)
		c.userLong = ""
	} else {
		c.userLong = keep(u)
	}
}

// user returns the last user named on the connection; the string shares
// c's memory and is valid while the current line is analysed.
func (c *connState) user() (string, bool) {
	switch {
	case c.userLen < 0:
		return "", false
	case c.userLen > len(c.userBuf):
		return c.userLong, true
	}
	return unsafeString(c.userBuf[:c.userLen]), true
}

func (a *Analyzer) userHash(u string) uint64 { return maphash.String(a.seed, u) }

// addConnUser notes user u, whose hash is h, on connection c.
func (a *Analyzer) addConnUser(c *connState, u string, h uint64) {
	for _, x := range c.uh {
		if x == h {
			return
		}
	}
	if len(c.uh) < maxConnUsers {
		c.uh = append(c.uh, h)
		if a.h.Event != nil {
			c.users = append(c.users, a.intern(u))
		}
	}
}

// intern returns a copy of s that outlives the line (cut by clipKept),
// shared by equal short strings (user names repeat); the table is bounded.
func (a *Analyzer) intern(s string) string {
	if len(s) > 64 {
		return keep(s)
	}
	if v, ok := a.strs[s]; ok {
		return v
	}
	if len(a.strs) >= 8192 {
		clear(a.strs)
	}
	c := strings.Clone(s)
	a.strs[c] = c
	return c
}

// internH is intern for a string whose hash is known: a direct-mapped
// cache of 256 entries, no map lookup.
func (a *Analyzer) internH(s string, h uint64) string {
	e := &a.hot[h&255]
	if *e == s {
		return *e
	}
	*e = a.intern(s)
	return *e
}

// keepHostIn copies *h to *dst for keeping: addresses need no text, names
// are interned. It writes in place: a host value built on the stack and
// copied costs more than the rest of the connection logic.
func (a *Analyzer) keepHostIn(dst, h *host) {
	if h.Addr.IsValid() {
		dst.Addr, dst.Text = h.Addr, ""
		return
	}
	*dst = host{Text: a.intern(clipKept(h.Text))}
}

func (a *Analyzer) connKey(rec *record) string {
	if rec.conn != "" {
		return rec.conn
	}
	a.keybuf = append(a.keybuf[:0], rec.host...)
	a.keybuf = append(a.keybuf, 0)
	a.keybuf = append(a.keybuf, rec.prog...)
	a.keybuf = append(a.keybuf, 0)
	a.keybuf = append(a.keybuf, rec.pid...)
	return view(a.keybuf)
}

// parity applies the connection logic to one matched sshd line and returns
// the line's role and the connection context it used; uh is the hash of
// m.user.
func (a *Analyzer) parity(rec *record, m *sshMatch, uh uint64, v verdict, forget bool, ns int64) (Role, *connState) {
	nofail := v == vHelper || v == vGained
	gained := v == vGained
	hk := hashConnKey(a.connKey(rec))
	c := a.conns.get(hk)
	if c != nil && ns-c.lastNS > int64(connTTL) {
		a.conns.remove(hk, c)
		c = nil
	}
	users := 0
	if c != nil {
		if m.hasUser && m.user != "" {
			a.addConnUser(c, m.user, uh)
		}
		hadNofail := c.nofail || c.gained
		if gained {
			c.pending = false
		}
		if !hadNofail && !c.pending {
			c.matches = 0
		}
		if m.host.valid() {
			a.keepHostIn(&c.src, &m.host)
		}
		if m.hasUser {
			c.setUser(m.user)
		}
		c.nofail, c.gained = nofail, gained
		if forget {
			a.detached = *c
			a.conns.remove(hk, c)
			c = &a.detached
		}
		users = len(c.uh)
	} else {
		if forget {
			a.detached = connState{uh: a.detUH[:0], users: a.detUsers[:0]}
			c = &a.detached
		} else {
			c = a.conns.add(hk)
		}
		c.userLen = -1
		if m.host.valid() {
			a.keepHostIn(&c.src, &m.host)
		}
		if m.hasUser {
			c.setUser(m.user)
			if !forget && m.user != "" {
				a.addConnUser(c, m.user, uh)
				users = len(c.uh)
			}
		}
		c.nofail, c.gained = nofail, gained
	}
	c.lastNS = ns
	if c.pending || users > 1 {
		c.pending, c.nofail, c.gained = false, false, false
		nofail, gained = false, false
	}
	if !nofail {
		c.matches += c.nfm + 1
		c.nfm = 0
	} else if !forget {
		c.nfm++
	}
	switch {
	case gained:
		return RoleSuccess, c
	case nofail:
		return RoleHelper, c
	case !c.src.valid():
		c.pending = true
		return RoleHelper, c
	}
	return RoleFailure, c
}

// sshd analyses one sshd line.
func (a *Analyzer) sshd(rec *record, ns int64, line int64) {
	var m sshMatch
	if !classifySSHD(rec.msg, &m) {
		return
	}
	inject := ""
	if !a.topOnly || a.h.Event != nil {
		inject = m.injected()
	}
	a.stats.Recognised++
	v, forget := m.behaviour(a.opts.Mode)
	role := RoleInfo
	var c *connState
	var uh uint64 // hash of the line's user, computed once
	if m.hasUser {
		uh = a.userHash(m.user)
	}
	if v != vNone {
		role, c = a.parity(rec, &m, uh, v, forget, ns)
	}
	if m.kind == KindAccepted && role == RoleHelper {
		role = RoleSuccess
	}
	src := m.host
	if !src.valid() && c != nil && c.src.valid() {
		src = c.src
	}
	user, hasUser := m.user, m.hasUser
	if !hasUser && c != nil && (!a.topOnly || a.h.Event != nil) { // only events and rules read it
		if user, hasUser = c.user(); hasUser {
			uh = a.userHash(user)
		}
	}
	if role == RoleFailure {
		a.stats.Failures++
	}
	if m.kind == KindAccepted {
		a.stats.Successes++
	}
	if a.h.Event != nil {
		ev := a.baseEvent(rec, ns, line)
		ev.Kind, ev.Role = m.kind, role
		ev.Src, ev.SrcText, ev.Port = src.Addr, strings.Clone(src.text()), m.port
		if hasUser {
			ev.User = strings.Clone(user)
		}
		if c != nil && len(c.users) > 0 {
			ev.Users = slices.Clone(c.users)
		}
		if role == RoleFailure {
			ev.Attempts = c.matches
		}
		ev.Preauth = m.preauthNoise()
		ev.Injection = strings.Clone(inject)
		a.h.Event(ev)
	}
	if a.topOnly || !src.valid() || a.allowed(src) {
		if role == RoleFailure {
			a.top.add(src)
		}
		return
	}
	if m.kind == KindAccepted {
		a.success(src, user, uh, ns, line)
	}
	if role == RoleFailure {
		a.failure(src, user, uh, hasUser, ns, line)
	}
	if m.preauthNoise() {
		a.noise(src, ns, line)
	}
	if inject != "" {
		a.injection(src, inject, ns, line)
	}
}

func (a *Analyzer) baseEvent(rec *record, ns int64, line int64) Event {
	return Event{Line: line, Format: rec.format, Time: time.Unix(0, ns).In(a.opts.Location), Host: strings.Clone(rec.host), Program: strings.Clone(rec.prog), PID: strings.Clone(rec.pid)}
}

func (a *Analyzer) allowed(h host) bool {
	return a.opts.Allow != nil && h.Addr.IsValid() && a.opts.Allow.Contains(h.Addr)
}

// source returns the state of h, creating it.
func (a *Analyzer) source(h host, ns int64) *srcState {
	k := keyOf(h)
	st := a.srcs.get(k)
	if st == nil {
		if k.name != "" {
			k.name = strings.Clone(k.name)
		}
		st = a.srcs.add(k)
		st.key = k
		st.text = keep(h.text())
		r := a.opts.Rules
		st.initBuffers(max(r.BruteForce.Count, r.SuccessAfterFailures.Count, r.Burst.Capacity+1, r.SlowBruteForce.Capacity+1), r.UserEnumeration.Count)
	}
	if ns > st.lastNS {
		st.lastNS = ns
	}
	return st
}

// openAcc starts a finding of rule ri for st.
func (a *Analyzer) openAcc(st *srcState, ri int) *acc {
	var o *acc
	if slot := hotSlot(ri); slot >= 0 {
		if st.blk == nil {
			st.blk = new([3]acc)
		}
		o = &st.blk[slot]
		*o = acc{}
	} else {
		o = &acc{}
	}
	o.f.Rule = ruleNames[ri]
	o.f.Key = st.key.String()
	o.f.Src = st.key.addr
	o.f.SrcText = st.text
	o.f.Severity = ruleSeverity[ri]
	o.f.Detail = a.detail[ri]
	o.f.Lines = make([]int64, 0, a.opts.MaxEvidence)
	st.open[ri] = o
	st.fired |= 1 << ri
	return o
}

// hotSlot places the findings every failure updates side by side.
func hotSlot(ri int) int {
	switch ri {
	case rBruteForce:
		return 0
	case rBurst:
		return 1
	case rEnum:
		return 2
	}
	return -1
}

// openFromRing starts a finding whose evidence is the last count stamps.
func (a *Analyzer) openFromRing(st *srcState, ri int, r *ring, count int) *acc {
	o := a.openAcc(st, ri)
	lines, first := r.last(count)
	for _, l := range lines {
		o.addLine(l, a.opts.MaxEvidence)
	}
	s, _ := r.nth(0)
	o.firstNS, o.lastNS = first, s.ns
	o.f.Count = len(lines)
	return o
}

// failure counts an authentication failure of src; uh is the hash of user.
func (a *Analyzer) failure(src host, user string, uh uint64, hasUser bool, ns, line int64) {
	st := a.source(src, ns)
	st.failN++ // added to the top-sources table when st is closed
	st.fails.push(stamp{ns, line})
	r := a.opts.Rules
	if hasUser {
		if !st.users.touch(uh, ns, line) {
			st.users.insert(a.internH(user, uh), uh, ns, line, r.UserEnumeration.Count)
		}
	}
	me := a.opts.MaxEvidence
	addUser := func(o *acc) {
		if hasUser {
			o.addUser(user, uh, a.opts.MaxListed)
		}
	}
	// a new finding also names the users tried just before it
	openUsers := func(o *acc, w time.Duration) {
		for i, u := range st.users.vals {
			if ns-st.users.ns[i] <= int64(w) {
				o.addUser(u, st.users.keys[i], a.opts.MaxListed)
			}
		}
		addUser(o)
	}
	if !a.disabled[rBruteForce] {
		if o := st.open[rBruteForce]; o != nil {
			o.touch(ns, line, me)
			addUser(o)
		} else if st.fails.within(r.BruteForce.Count, r.BruteForce.Window, ns) {
			o := a.openFromRing(st, rBruteForce, &st.fails, r.BruteForce.Count)
			openUsers(o, r.BruteForce.Window)
		}
	}
	if !a.disabled[rBurst] {
		over := st.burst.add(ns, r.Burst.Capacity, r.Burst.Leak)
		if o := st.open[rBurst]; o != nil {
			o.touch(ns, line, me)
			addUser(o)
		} else if over {
			o := a.openFromRing(st, rBurst, &st.fails, r.Burst.Capacity+1)
			openUsers(o, time.Duration(r.Burst.Capacity)*r.Burst.Leak)
		}
	}
	if !a.disabled[rSlow] {
		over := st.slow.add(ns, r.SlowBruteForce.Capacity, r.SlowBruteForce.Leak)
		if o := st.open[rSlow]; o != nil {
			o.touch(ns, line, me)
			addUser(o)
		} else if over && st.open[rBruteForce] == nil && st.open[rBurst] == nil {
			o := a.openFromRing(st, rSlow, &st.fails, r.SlowBruteForce.Capacity+1)
			openUsers(o, time.Duration(r.SlowBruteForce.Capacity)*r.SlowBruteForce.Leak)
		}
	}
	if !a.disabled[rEnum] && hasUser {
		if o := st.open[rEnum]; o != nil {
			o.touch(ns, line, me)
			o.addUser(user, uh, a.opts.MaxListed)
		} else if st.users.countWithin(ns, r.UserEnumeration.Window) >= r.UserEnumeration.Count {
			o := a.openAcc(st, rEnum)
			for i, u := range st.users.vals {
				o.touch(st.users.ns[i], st.users.line[i], me)
				o.addUser(u, st.users.keys[i], a.opts.MaxListed)
			}
			slices.Sort(o.f.Lines)
		}
	}
}

// success handles a successful login; uh is the hash of user.
func (a *Analyzer) success(src host, user string, uh uint64, ns, line int64) {
	r := a.opts.Rules
	me := a.opts.MaxEvidence
	if !a.disabled[rSuccess] {
		if st := a.srcs.peek(keyOf(src)); st != nil && st.fails.within(r.SuccessAfterFailures.Count, r.SuccessAfterFailures.Window, ns) {
			a.source(src, ns)
			o := st.open[rSuccess]
			if o == nil {
				o = a.openFromRing(st, rSuccess, &st.fails, r.SuccessAfterFailures.Count)
				o.f.Count = 0
			}
			o.touch(ns, line, me)
			o.addUser(user, uh, a.opts.MaxListed)
		}
	}
	if !a.disabled[rOffHours] {
		wh := r.WorkHours
		lt := time.Unix(0, ns).In(wh.Location)
		h, mi, sec := lt.Clock()
		tod := time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute + time.Duration(sec)*time.Second
		if !a.workDays[lt.Weekday()] || tod < wh.Start || tod >= wh.End {
			st := a.source(src, ns)
			o := st.open[rOffHours]
			if o == nil {
				o = a.openAcc(st, rOffHours)
			}
			o.touch(ns, line, me)
			o.addUser(user, uh, a.opts.MaxListed)
		}
	}
}

func clock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func dayList(ds []time.Weekday) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.String()[:3])
	}
	return b.String()
}

func (a *Analyzer) noise(src host, ns, line int64) {
	if a.disabled[rPreauth] {
		return
	}
	r := a.opts.Rules.PreauthScan
	st := a.source(src, ns)
	if st.noise.buf == nil {
		st.noise.buf = make([]stamp, r.Count)
	}
	st.noise.push(stamp{ns, line})
	if o := st.open[rPreauth]; o != nil {
		o.touch(ns, line, a.opts.MaxEvidence)
	} else if st.noise.within(r.Count, r.Window, ns) {
		a.openFromRing(st, rPreauth, &st.noise, r.Count)
	}
}

func (a *Analyzer) injection(src host, text string, ns, line int64) {
	if a.disabled[rInject] {
		return
	}
	st := a.source(src, ns)
	o := st.open[rInject]
	if o == nil {
		o = a.openAcc(st, rInject)
		if len(text) > 200 {
			text = text[:200]
		}
		o.f.Detail = "attacker-controlled field imitates log syntax: " + strconv.Quote(text) + "; attributed to the address sshd logged"
	}
	o.touch(ns, line, a.opts.MaxEvidence)
}

func (a *Analyzer) firewall(rec *record, m *fwMatch, ns int64, line int64) {
	a.stats.Recognised++
	if a.h.Event != nil {
		ev := a.baseEvent(rec, ns, line)
		ev.Kind, ev.Role = KindFirewall, RoleInfo
		ev.Src, ev.SrcText, ev.Dst = m.src.Addr, strings.Clone(m.src.Text), m.dst
		ev.Port, ev.SrcPort, ev.Proto = m.dport, m.sport, strings.Clone(m.proto)
		ev.Action, ev.Iface = strings.Clone(m.action), strings.Clone(m.in)
		a.h.Event(ev)
	}
	if !m.hasPort || a.allowed(m.src) {
		return
	}
	st := a.source(m.src, ns)
	me, ml := a.opts.MaxEvidence, a.opts.MaxListed
	if !a.disabled[rRisky] && a.risky[m.dport/64]&(1<<(m.dport%64)) != 0 {
		o := st.open[rRisky]
		if o == nil {
			o = a.openAcc(st, rRisky)
		}
		o.touch(ns, line, me)
		o.addPort(m.dport, ml)
	}
	if !a.disabled[rScan] {
		r := a.opts.Rules.PortScan
		if !st.ports.touch(uint64(m.dport), ns, line) {
			st.ports.insert(m.dport, uint64(m.dport), ns, line, r.Count)
		}
		if o := st.open[rScan]; o != nil {
			o.touch(ns, line, me)
			o.addPort(m.dport, ml)
		} else if st.ports.countWithin(ns, r.Window) >= r.Count {
			o := a.openAcc(st, rScan)
			for i, p := range st.ports.vals {
				o.touch(st.ports.ns[i], st.ports.line[i], me)
				o.addPort(p, ml)
			}
			slices.Sort(o.f.Lines)
		}
	}
}

func (a *Analyzer) conflict(rec *record, m *conflictMatch, ns int64, line int64, kind Kind) {
	a.stats.Recognised++
	if a.h.Event != nil {
		ev := a.baseEvent(rec, ns, line)
		ev.Kind, ev.Role = kind, RoleInfo
		ev.Addr, ev.MAC, ev.OldMAC = m.addr, slices.Clone(m.mac), slices.Clone(m.old)
		ev.Iface, ev.Key = strings.Clone(m.iface), strings.Clone(m.key)
		a.h.Event(ev)
	}
	ri := rConflict
	var k srcKey
	switch {
	case m.addr.IsValid():
		k.addr = m.addr
	case m.key != "":
		ri = rDataConflict
		k.name = "key=" + clipKept(m.key)
	default:
		k.name = "iface=" + clipKept(m.iface)
	}
	if a.disabled[ri] {
		return
	}
	st := a.addrs.get(k)
	if st == nil {
		if k.name != "" {
			k.name = strings.Clone(k.name)
		}
		st = a.addrs.add(k)
		st.key, st.rule = k, ri
		st.flips.buf = make([]stamp, a.opts.Rules.FlipFlops.Count)
	}
	st.lastNS = max(st.lastNS, ns)
	o := st.open
	if o == nil {
		o = &acc{}
		o.f.Rule = ruleNames[ri]
		o.f.Severity = ruleSeverity[ri]
		o.f.Addr = m.addr
		o.f.Key = k.String()
		if m.key != "" {
			o.f.Key = keep(m.key)
		}
		o.f.Detail = m.what
		if m.iface != "" {
			o.f.Detail += " on " + clipKept(m.iface)
		}
		st.open = o
	}
	o.touch(ns, line, a.opts.MaxEvidence)
	o.addMAC(m.old, a.opts.MaxListed)
	o.addMAC(m.mac, a.opts.MaxListed)
	if m.flip {
		st.flips.push(stamp{ns, line})
	}
	ff := a.opts.Rules.FlipFlops
	if ri == rConflict && (o.f.DistinctMACs >= a.opts.Rules.ConflictMACs || st.flips.within(ff.Count, ff.Window, ns)) {
		o.f.Severity = SeverityCritical
	}
}

func (a *Analyzer) longLine(line, n int64) {
	a.stats.LongLines++
	if a.disabled[rLongLine] {
		return
	}
	if a.long == nil {
		a.long = &acc{}
		a.long.f.Rule, a.long.f.Key, a.long.f.Severity = RuleLongLine, "input", ruleSeverity[rLongLine]
	}
	a.long.f.Count++
	a.long.addLine(line, a.opts.MaxEvidence)
	a.longest = max(a.longest, n)
}

// emit hands a finished finding to the handler.
func (a *Analyzer) emit(o *acc, highRisk bool) {
	f := o.f
	if o.firstNS != 0 || o.lastNS != 0 {
		f.First = time.Unix(0, o.firstNS).In(a.opts.Location)
		f.Last = time.Unix(0, o.lastNS).In(a.opts.Location)
	}
	if highRisk {
		f.Severity = f.Severity.raise()
	}
	a.stats.Findings++
	if a.flushing {
		a.final = append(a.final, f)
		return
	}
	if a.h.Finding != nil {
		a.h.Finding(f)
	}
}

func (a *Analyzer) highRisk(k srcKey) bool {
	return a.opts.HighRisk != nil && k.addr.IsValid() && a.opts.HighRisk.Contains(k.addr)
}

// closeRule emits and clears one open finding of st, folding it into the
// source's incident record.
func (a *Analyzer) closeRule(st *srcState, ri int) {
	o := st.open[ri]
	if o == nil {
		return
	}
	st.open[ri] = nil
	a.emit(o, a.highRisk(st.key))
	if (ri < numSrcRules) && (1<<ri)&(sshFamily|fwFamily) != 0 {
		if st.inc == nil {
			st.inc = &acc{}
			st.inc.f.Rule, st.inc.f.Key, st.inc.f.Src, st.inc.f.SrcText = RuleIncident, st.key.String(), st.key.addr, st.text
			st.inc.f.Severity = ruleSeverity[rIncident]
			st.inc.f.Detail = a.detail[rIncident]
			st.inc.firstNS = o.firstNS
		}
		inc := st.inc
		inc.firstNS = min(inc.firstNS, o.firstNS)
		inc.lastNS = max(inc.lastNS, o.lastNS)
		inc.f.Count += o.f.Count
		inc.f.Severity = max(inc.f.Severity, o.f.Severity)
		for _, l := range o.f.Lines {
			if len(inc.f.Lines) < a.opts.MaxEvidence && !slices.Contains(inc.f.Lines, l) {
				inc.f.Lines = append(inc.f.Lines, l)
			}
		}
		if !slices.Contains(inc.f.Related, ruleNames[ri]) {
			inc.f.Related = append(inc.f.Related, ruleNames[ri])
		}
	}
}

// closeSource emits everything st holds (on eviction, expiry or the end).
func (a *Analyzer) closeSource(st *srcState) {
	if st.failN > 0 {
		a.top.addN(host{Addr: st.key.addr, Text: st.text}, st.failN)
		st.failN = 0
	}
	for ri := range numSrcRules {
		a.closeRule(st, ri)
	}
	if st.inc != nil && st.fired&sshFamily != 0 && st.fired&fwFamily != 0 && !a.disabled[rIncident] {
		slices.Sort(st.inc.f.Lines)
		a.emit(st.inc, a.highRisk(st.key))
	}
	st.inc = nil
}

func (a *Analyzer) closeAddr(st *addrState) {
	if st.open != nil {
		o := st.open
		st.open = nil
		a.emit(o, false)
	}
}

// sweep closes findings whose key went quiet and drops state that can no
// longer contribute to any window.
func (a *Analyzer) sweep() {
	now := a.nowNS
	quiet := int64(10 * time.Minute)
	keep := int64(a.keep)
	var drop []srcKey
	a.srcs.each(func(k srcKey, st *srcState) bool {
		idle := now - st.lastNS
		if idle <= quiet {
			return false
		}
		for ri := range numSrcRules {
			if st.open[ri] != nil && now-st.open[ri].lastNS > max(quiet, int64(a.ruleWindow(ri))) {
				a.closeRule(st, ri)
			}
		}
		if idle > keep {
			drop = append(drop, k)
		}
		return true
	})
	for _, k := range drop {
		if st := a.srcs.peek(k); st != nil {
			a.closeSource(st)
		}
		a.srcs.remove(k)
	}
	drop = drop[:0]
	a.addrs.each(func(k srcKey, st *addrState) bool {
		idle := now - st.lastNS
		if idle <= quiet {
			return false
		}
		a.closeAddr(st)
		if idle > keep {
			drop = append(drop, k)
		}
		return true
	})
	for _, k := range drop {
		a.addrs.remove(k)
	}
}

func (a *Analyzer) ruleWindow(ri int) time.Duration {
	r := a.opts.Rules
	switch ri {
	case rBruteForce:
		return r.BruteForce.Window
	case rBurst:
		return time.Duration(r.Burst.Capacity) * r.Burst.Leak
	case rSlow:
		return time.Duration(r.SlowBruteForce.Capacity) * r.SlowBruteForce.Leak
	case rEnum:
		return r.UserEnumeration.Window
	case rPreauth:
		return r.PreauthScan.Window
	case rSuccess:
		return r.SuccessAfterFailures.Window
	case rScan:
		return r.PortScan.Window
	}
	return 0
}

// flushAll emits every open finding at the end of a scan, ordered by first
// time, rule and key.
func (a *Analyzer) flushAll() {
	a.flushing = true
	a.srcs.each(func(_ srcKey, st *srcState) bool {
		a.closeSource(st)
		return true
	})
	a.addrs.each(func(_ srcKey, st *addrState) bool {
		a.closeAddr(st)
		return true
	})
	if a.long != nil {
		a.long.f.Detail = fmt.Sprintf("%d lines longer than %d bytes were skipped (longest %d bytes)", a.long.f.Count, a.opts.MaxLineBytes, a.longest)
		a.emit(a.long, false)
		a.long = nil
	}
	a.flushing = false
	a.stats.Evicted = a.srcs.evicted + a.addrs.evicted + a.conns.evicted
	slices.SortStableFunc(a.final, func(x, y Finding) int {
		if c := x.First.Compare(y.First); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Rule, y.Rule); c != 0 {
			return c
		}
		return cmp.Compare(x.Key, y.Key)
	})
	if a.h.Finding != nil {
		for _, f := range a.final {
			a.h.Finding(f)
		}
	}
	a.final = a.final[:0]
}
