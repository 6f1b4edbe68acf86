package ipam

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Lease is one address held by one owner. Generation is unique for every
// allocation of an address, forever: it grows each time the address is
// allocated (also across spec changes, pool removal and re-creation, and
// crashes, since it is committed with the allocation), so a stale Release
// can never free a later owner's lease.
type Lease struct {
	Pool       string     `json:"pool"`
	Addr       netip.Addr `json:"addr"`
	Owner      string     `json:"owner"`
	Generation uint64     `json:"generation"`
	// Allocated is when the lease was created (the allocator's clock).
	Allocated time.Time `json:"allocated"`
}

// Verifier checks an address before it is handed out, for example with an
// ARP or NDP probe (arpcheck) that nobody answers for it. A non-nil error
// quarantines the address: it is neither free nor allocated, Stats counts it,
// and the next candidate is tried. Verifiers run without the pool's lock held.
type Verifier func(ctx context.Context, pool string, addr netip.Addr) error

// OverlapPolicy decides what AddPool does when the new pool's allocatable
// addresses overlap another pool's in the same store.
type OverlapPolicy int

// Overlap policies.
const (
	// RejectOverlap refuses the pool with an *OverlapError (the default).
	RejectOverlap OverlapPolicy = iota
	// WarnOverlap adds the pool, returns the overlaps and logs them.
	WarnOverlap
	// AllowOverlap adds the pool and returns the overlaps.
	AllowOverlap
)

// Options configure an Allocator. The zero value is usable.
type Options struct {
	// Clock returns the current time; time.Now when nil.
	Clock func() time.Time
	// Rand is the source of randomness for the Random strategy; seeded from
	// crypto/rand when nil. Each pool draws its own generator from it.
	Rand rand.Source
	// Verifier, if set, checks every address before it is handed out.
	Verifier Verifier
	// OnLevel is called when a pool's utilization crosses its warn or
	// critical threshold (see LevelEvent). It runs after the operation that
	// caused it, without locks held, on the caller's goroutine.
	OnLevel func(LevelEvent)
	// Hysteresis is how far below a threshold utilization must fall before
	// the level drops again; 0.02 when zero. Negative means none.
	Hysteresis float64
	// Overlap is the policy for pools whose allocatable sets overlap.
	Overlap OverlapPolicy
	// MaxRetries bounds the retries after store conflicts (other processes
	// writing the same keys); 10,000 when zero.
	MaxRetries int
	// Logger receives warnings (overlaps under WarnOverlap, repaired
	// summaries); nothing is logged when nil.
	Logger *slog.Logger
}

// Allocator hands out addresses from pools kept in a Store. It caches the
// decoded allocation pages of the pools it has used and keeps them current
// through the store's compare-and-swap: any number of Allocators, in any
// number of processes, may share one store. It is safe for concurrent use.
type Allocator struct {
	store   Store
	opts    Options
	pools   atomic.Pointer[map[string]*poolState]
	poolsMu sync.Mutex
	randMu  sync.Mutex

	reconMu  sync.Mutex
	suspects map[suspectKey]bool
}

// New returns an Allocator on store with default Options, adding or updating
// the given pools (see AddPool).
func New(ctx context.Context, store Store, pools ...PoolSpec) (*Allocator, error) {
	return NewWithOptions(ctx, store, Options{}, pools...)
}

// NewWithOptions is New with options.
func NewWithOptions(ctx context.Context, store Store, opts Options, pools ...PoolSpec) (*Allocator, error) {
	if store == nil {
		return nil, errors.New("ipam: nil store")
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Rand == nil {
		var seed [32]byte
		_, _ = crand.Read(seed[:])
		opts.Rand = rand.NewChaCha8(seed)
	}
	if opts.Hysteresis == 0 {
		opts.Hysteresis = 0.02
	} else if opts.Hysteresis < 0 {
		opts.Hysteresis = 0
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 10000
	}
	a := &Allocator{store: store, opts: opts}
	m := map[string]*poolState{}
	a.pools.Store(&m)
	for _, p := range pools {
		if _, err := a.AddPool(ctx, p); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Store returns the allocator's store.
func (a *Allocator) Store() Store { return a.store }

// poolState is the allocator's cached view of one pool.
type poolState struct {
	mu   sync.Mutex
	name string
	key  string // poolKey(name)

	loaded     bool
	pool       *Pool
	rec        *poolRecord
	recRev     uint64
	pagePrefix string
	npages     Count
	lastCap    int // capacity of the last page
	pages      map[Count]*pageState
	full       fullTree
	open       openSet
	taken      Count

	quarantine []QuarantineEntry
	qRev       uint64
	fifoFresh  Count
	fifo       []fifoEntryT
	fifoSet    map[netip.Addr]int64
	fifoRev    uint64
	cursor     Count
	hasCursor  bool

	level   Level
	rng     *rand.Rand
	pending map[Count]struct{}

	// scratch, reused under mu
	tx batch
}

type pageState struct {
	key string
	rev uint64
	val pageBytes // nil: absent
}

// openSet holds the pages that are neither empty nor full (for Random).
type openSet struct {
	list  []Count
	pos   map[Count]int
	taken int
}

func (o *openSet) add(idx Count) {
	if o.pos == nil {
		o.pos = map[Count]int{}
	}
	o.pos[idx] = len(o.list)
	o.list = append(o.list, idx)
}

func (o *openSet) remove(idx Count) {
	i, ok := o.pos[idx]
	if !ok {
		return
	}
	last := o.list[len(o.list)-1]
	o.list[i] = last
	o.pos[last] = i
	o.list = o.list[:len(o.list)-1]
	delete(o.pos, idx)
}

// state returns the (possibly unloaded) state of pool name.
func (a *Allocator) state(name string) *poolState {
	if ps := (*a.pools.Load())[name]; ps != nil {
		return ps
	}
	a.poolsMu.Lock()
	defer a.poolsMu.Unlock()
	old := *a.pools.Load()
	if ps := old[name]; ps != nil {
		return ps
	}
	m := make(map[string]*poolState, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	ps := &poolState{name: name, key: poolKey(name)}
	a.randMu.Lock()
	ps.rng = rand.New(rand.NewPCG(a.opts.Rand.Uint64(), a.opts.Rand.Uint64()))
	a.randMu.Unlock()
	m[name] = ps
	a.pools.Store(&m)
	return ps
}

// locked returns the pool's state, loaded and locked; the caller unlocks.
func (a *Allocator) locked(ctx context.Context, name string) (*poolState, error) {
	ps := a.state(name)
	ps.mu.Lock()
	if !ps.loaded {
		if err := a.load(ctx, ps); err != nil {
			ps.mu.Unlock()
			return nil, err
		}
	}
	return ps, nil
}

// load reads the pool's state from the store (a full refresh).
func (a *Allocator) load(ctx context.Context, ps *poolState) error {
	ps.loaded = false
	kvs, err := a.store.Get(ctx, poolKey(ps.name), quarantineKey(ps.name), fifoKey(ps.name), cursorKey(ps.name))
	if err != nil {
		return err
	}
	if kvs[0].Revision == 0 {
		return fmt.Errorf("%w %q", ErrUnknownPool, ps.name)
	}
	rec, err := decodePoolRecord(kvs[0].Value)
	if err != nil {
		return fmt.Errorf("%w: pool %q: %v", ErrCorrupt, ps.name, err)
	}
	if rec.Pending != nil {
		if err := a.completePending(ctx, ps.name); err != nil {
			return err
		}
		return a.load(ctx, ps)
	}
	if rec.Deleted {
		return fmt.Errorf("%w %q (removed)", ErrUnknownPool, ps.name)
	}
	spec, err := specFromJSON(ps.name, &rec.Spec)
	if err != nil {
		return fmt.Errorf("%w: pool %q: stored spec: %v", ErrCorrupt, ps.name, err)
	}
	pool, err := Compile(spec)
	if err != nil {
		return fmt.Errorf("%w: pool %q: stored spec: %v", ErrCorrupt, ps.name, err)
	}
	ps.pool, ps.rec, ps.recRev = pool, rec, kvs[0].Revision
	ps.pagePrefix = pagesPrefix(ps.name, rec.Epoch)
	ps.npages = pool.allocatable.add64(pageSlots - 1).rsh(pageShift)
	ps.lastCap = pageSlots
	if r := int(pool.allocatable.lo & (pageSlots - 1)); r != 0 {
		ps.lastCap = r
	}
	ps.pages = map[Count]*pageState{}
	ps.full = newFullTree(ps.npages)
	ps.open = openSet{}
	ps.taken = Count{}
	for kv, err := range a.store.Scan(ctx, ps.pagePrefix) {
		if err != nil {
			return err
		}
		idx, ok := parsePageIndex(kv.Key[len(ps.pagePrefix):])
		if !ok || idx.Cmp(ps.npages) >= 0 {
			return fmt.Errorf("%w: pool %q: stray page key %q", ErrCorrupt, ps.name, kv.Key)
		}
		if err := checkPage(kv.Value, ps.capacity(idx)); err != nil {
			return fmt.Errorf("%w: pool %q: key %q: %v", ErrCorrupt, ps.name, kv.Key, err)
		}
		ps.pages[idx] = &pageState{key: kv.Key, rev: kv.Revision, val: pageBytes(kv.Value)}
		ps.account(idx, 0, pageBytes(kv.Value).taken())
	}
	if ps.quarantine, err = decodeQuarantine(kvs[1].Value); err != nil {
		return fmt.Errorf("%w: pool %q: %v", ErrCorrupt, ps.name, err)
	}
	ps.qRev = kvs[1].Revision
	if ps.fifoFresh, ps.fifo, err = decodeFIFO(kvs[2].Value); err != nil {
		return fmt.Errorf("%w: pool %q: %v", ErrCorrupt, ps.name, err)
	}
	ps.fifoRev = kvs[2].Revision
	ps.fifoSet = make(map[netip.Addr]int64, len(ps.fifo))
	for _, e := range ps.fifo {
		ps.fifoSet[e.addr] = e.at
	}
	ps.hasCursor = false
	if c, ok := decodeCursor(kvs[3].Value); ok {
		if ord, ok := pool.ordinal(c); ok {
			ps.cursor, ps.hasCursor = ord, true
		}
	}
	ps.level = levelFor(ps.utilization(), LevelOK, pool.spec.Warn, pool.spec.Critical, a.opts.Hysteresis)
	ps.loaded = true
	return nil
}

// capacity returns the number of ordinals in page idx.
func (ps *poolState) capacity(idx Count) int {
	if idx.Cmp(ps.npages.sub64(1)) == 0 {
		return ps.lastCap
	}
	return pageSlots
}

// account updates the summaries for page idx going from old to new taken.
func (ps *poolState) account(idx Count, old, new int) {
	if old == new {
		return
	}
	ps.taken = ps.taken.add64(uint64(new)).sub64(uint64(old))
	c := ps.capacity(idx)
	wasOpen, isOpen := old > 0 && old < c, new > 0 && new < c
	switch {
	case wasOpen && isOpen:
		ps.open.taken += new - old
	case wasOpen:
		ps.open.remove(idx)
		ps.open.taken -= old
	case isOpen:
		ps.open.add(idx)
		ps.open.taken += new
	}
	if (old == c) != (new == c) {
		ps.full.set(idx, new == c)
	}
}

func (ps *poolState) utilization() float64 {
	n := ps.pool.allocatable.Float64()
	if n == 0 {
		return 0
	}
	return ps.taken.Float64() / n
}

// batch is an allocator transaction being built under the pool's lock:
// copy-on-write page overlays plus the extra conditions and operations.
// The summaries (full tree, open set, taken) follow the overlays, and are
// rolled back with abort.
type batch struct {
	ps    *poolState
	snap  *strategySnapshot // restored on a failed commit, before refreshing
	pages []overlay
	index map[Count]int
	last  int   // index of the overlay used last, -1 if none
	hint  Count // Sequential: every ordinal below is taken in this batch
	conds []Cond
	ops   []Op
}

type overlay struct {
	idx Count
	val pageBytes
	st  *pageState // cached page; nil if absent from the cache
}

func (b *batch) reset(ps *poolState) {
	b.ps = ps
	b.snap = nil
	b.last = -1
	b.hint = Count{}
	b.pages = b.pages[:0]
	b.index = nil
	b.conds = b.conds[:0]
	b.ops = b.ops[:0]
}

// find returns the position of page idx's overlay, or -1.
func (b *batch) find(idx Count) int {
	if b.last >= 0 && b.pages[b.last].idx == idx {
		return b.last
	}
	if b.index != nil {
		if i, ok := b.index[idx]; ok {
			b.last = i
			return i
		}
		return -1
	}
	for i := range b.pages {
		if b.pages[i].idx == idx {
			b.last = i
			return i
		}
	}
	return -1
}

// page returns the writable overlay of page idx, creating it from the cache.
func (b *batch) page(idx Count) pageBytes {
	if i := b.find(idx); i >= 0 {
		return b.pages[i].val
	}
	var v pageBytes
	st := b.ps.pages[idx]
	if st != nil && st.val != nil {
		v = make(pageBytes, pageSize)
		copy(v, st.val)
	} else {
		v = newPage(b.ps.rec.GenFloor)
	}
	b.pages = append(b.pages, overlay{idx: idx, val: v, st: st})
	b.last = len(b.pages) - 1
	if b.index != nil {
		b.index[idx] = len(b.pages) - 1
	} else if len(b.pages) > 8 {
		b.index = make(map[Count]int, 16)
		for i := range b.pages {
			b.index[b.pages[i].idx] = i
		}
	}
	return v
}

// view returns the current bytes of page idx: overlay, cache, or nil.
func (b *batch) view(idx Count) pageBytes {
	if i := b.find(idx); i >= 0 {
		return b.pages[i].val
	}
	if st := b.ps.pages[idx]; st != nil {
		return st.val
	}
	return nil
}

// take marks ordinal ord in the overlay and returns its new generation.
func (b *batch) take(ord Count, gen bool) uint64 {
	idx, slot := ord.rsh(pageShift), int(ord.lo&(pageSlots-1))
	p := b.page(idx)
	old := p.taken()
	var g uint64
	if gen {
		g = p.set(slot)
	} else {
		p.mark(slot)
	}
	b.ps.account(idx, old, old+1)
	return g
}

// free clears ordinal ord in the overlay.
func (b *batch) free(ord Count) {
	idx, slot := ord.rsh(pageShift), int(ord.lo&(pageSlots-1))
	p := b.page(idx)
	if !p.has(slot) {
		return
	}
	old := p.taken()
	p.clear(slot)
	b.ps.account(idx, old, old-1)
}

// isTaken reports whether ord is taken in the current view.
func (b *batch) isTaken(ord Count) bool {
	v := b.view(ord.rsh(pageShift))
	return v != nil && v.has(int(ord.lo&(pageSlots-1)))
}

// txn assembles the transaction: the pool record's revision, every touched
// page's revision, and the extra conditions and operations.
func (b *batch) txn() Txn {
	ps := b.ps
	conds := append(b.conds, Cond{Key: ps.key, Revision: ps.recRev})
	ops := b.ops
	for i := range b.pages {
		o := &b.pages[i]
		st := o.st
		if st == nil {
			st = &pageState{key: pageKey(ps.pagePrefix, o.idx)}
			o.st = st
		}
		conds = append(conds, Cond{Key: st.key, Revision: st.rev})
		ops = append(ops, Op{Key: st.key, Value: o.val})
	}
	b.conds, b.ops = conds, ops
	return Txn{Conds: conds, Ops: ops}
}

// committed installs the overlays as the cached pages at revision rev.
func (b *batch) committed(rev uint64) {
	ps := b.ps
	for _, o := range b.pages {
		st := o.st
		if ps.pages[o.idx] != st {
			ps.pages[o.idx] = st
		}
		st.rev, st.val = rev, o.val
	}
	b.pages = b.pages[:0]
	b.index = nil
	b.last = -1
}

// abort rolls the summaries back to the cached pages.
func (b *batch) abort() {
	ps := b.ps
	for _, o := range b.pages {
		var old int
		if st := o.st; st != nil && st.val != nil {
			old = st.val.taken()
		}
		ps.account(o.idx, o.val.taken(), old)
	}
	b.pages = b.pages[:0]
	b.index = nil
	b.last = -1
	b.hint = Count{}
}

// commit runs the batch's transaction. On a conflict it refreshes what the
// conflicting key caches and reports errConflictRetry.
func (a *Allocator) commit(ctx context.Context, b *batch) (uint64, error) {
	rev, err := a.store.Commit(ctx, b.txn())
	if err == nil {
		b.committed(rev)
		return rev, nil
	}
	b.abort()
	if b.snap != nil {
		b.ps.restore(*b.snap)
	}
	var ce *ConflictError
	if errors.As(err, &ce) {
		if rerr := a.refreshKey(ctx, b.ps, ce.Key); rerr != nil {
			return 0, rerr
		}
	}
	return 0, err
}

// refreshKey re-reads one conflicting key into the cache.
func (a *Allocator) refreshKey(ctx context.Context, ps *poolState, key string) error {
	if len(key) > len(ps.pagePrefix) && key[:len(ps.pagePrefix)] == ps.pagePrefix {
		idx, ok := parsePageIndex(key[len(ps.pagePrefix):])
		if ok {
			kvs, err := a.store.Get(ctx, key)
			if err != nil {
				return err
			}
			kv := kvs[0]
			if kv.Revision != 0 {
				if err := checkPage(kv.Value, ps.capacity(idx)); err != nil {
					return fmt.Errorf("%w: key %q: %v", ErrCorrupt, key, err)
				}
			}
			st := ps.pages[idx]
			old := 0
			if st == nil {
				st = &pageState{key: key}
				ps.pages[idx] = st
			} else if st.val != nil {
				old = st.val.taken()
			}
			st.rev, st.val = kv.Revision, pageBytes(kv.Value)
			if kv.Revision == 0 {
				st.val = nil
			}
			nw := 0
			if st.val != nil {
				nw = st.val.taken()
			}
			ps.account(idx, old, nw)
			return nil
		}
	}
	switch key {
	case quarantineKey(ps.name), fifoKey(ps.name), poolKey(ps.name):
		return a.load(ctx, ps)
	}
	return nil // owner keys: the caller re-reads them
}

// retryable reports whether err is a conflict worth retrying.
func retryable(err error) bool { return errors.Is(err, ErrConflict) }

// Level is a pool's utilization level.
type Level int

// Utilization levels.
const (
	LevelOK Level = iota
	LevelWarn
	LevelCritical
)

// String returns a readable form.
func (l Level) String() string {
	switch l {
	case LevelOK:
		return "ok"
	case LevelWarn:
		return "warn"
	case LevelCritical:
		return "critical"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// MarshalText renders "ok", "warn" or "critical".
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses "ok", "warn" or "critical".
func (l *Level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "ok":
		*l = LevelOK
	case "warn":
		*l = LevelWarn
	case "critical":
		*l = LevelCritical
	default:
		return fmt.Errorf("ipam: unknown level %q", b)
	}
	return nil
}

// levelFor applies the thresholds with hysteresis: a level is entered at its
// threshold and left only below threshold-h.
func levelFor(u float64, cur Level, warn, crit, h float64) Level {
	switch {
	case u >= crit:
		return LevelCritical
	case cur == LevelCritical && u >= crit-h:
		return LevelCritical
	case u >= warn:
		return LevelWarn
	case cur >= LevelWarn && u >= warn-h:
		return LevelWarn
	}
	return LevelOK
}

// LevelEvent reports a pool crossing a utilization threshold.
type LevelEvent struct {
	Pool  string    `json:"pool"`
	From  Level     `json:"from"`
	To    Level     `json:"to"`
	Stats Stats     `json:"stats"`
	At    time.Time `json:"at"`
}

// Stats are a pool's exact counts. Total is every address in the pool's
// subnets; Reserved those not allocatable (network, broadcast, gateway,
// reserved, outside the range); Free = Total - Reserved - Allocated -
// Quarantined. Utilization is (Allocated+Quarantined) / (Total-Reserved).
type Stats struct {
	Pool        string  `json:"pool"`
	Total       Count   `json:"total"`
	Reserved    Count   `json:"reserved"`
	Allocated   Count   `json:"allocated"`
	Quarantined Count   `json:"quarantined"`
	Free        Count   `json:"free"`
	Utilization float64 `json:"utilization"`
	Level       Level   `json:"level"`
}

func (ps *poolState) stats() Stats {
	q := CountOf(uint64(len(ps.quarantine)))
	p := ps.pool
	return Stats{
		Pool:        ps.name,
		Total:       p.total,
		Reserved:    p.total.Sub(p.allocatable),
		Allocated:   ps.taken.Sub(q),
		Quarantined: q,
		Free:        p.allocatable.Sub(ps.taken),
		Utilization: ps.utilization(),
		Level:       ps.level,
	}
}

// Stats returns the pool's counts in O(1) from this allocator's view, which
// includes every change it made and every change by others it has seen
// (a conflict or Refresh reads them). Use Refresh first for an exact view
// of a store other processes write to.
func (a *Allocator) Stats(ctx context.Context, pool string) (Stats, error) {
	ps, err := a.locked(ctx, pool)
	if err != nil {
		return Stats{}, err
	}
	defer ps.mu.Unlock()
	return ps.stats(), nil
}

// Refresh re-reads the pool's state from the store: O(pages in use).
func (a *Allocator) Refresh(ctx context.Context, pool string) error {
	ps := a.state(pool)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return a.load(ctx, ps)
}

// levelEvent recomputes the pool's level after a change, returning the event
// to fire (after unlocking) if it changed.
func (a *Allocator) levelEvent(ps *poolState) *LevelEvent {
	nl := levelFor(ps.utilization(), ps.level, ps.pool.spec.Warn, ps.pool.spec.Critical, a.opts.Hysteresis)
	if nl == ps.level {
		return nil
	}
	ev := &LevelEvent{Pool: ps.name, From: ps.level, To: nl, At: a.opts.Clock()}
	ps.level = nl
	ev.Stats = ps.stats()
	return ev
}

func (a *Allocator) fire(ev *LevelEvent) {
	if ev != nil && a.opts.OnLevel != nil {
		a.opts.OnLevel(*ev)
	}
}

// randBelow returns a uniform random Count in [0, n), n > 0.
func randBelow(r *rand.Rand, n Count) Count {
	if n.hi == 0 {
		return CountOf(r.Uint64N(n.lo))
	}
	for {
		c := Count{hi: r.Uint64N(n.hi + 1), lo: r.Uint64()}
		if c.Cmp(n) < 0 {
			return c
		}
	}
}

// nextFree returns the first free ordinal at or after from (no wrap),
// skipping ordinals rejected by skip.
func (b *batch) nextFree(from Count, skip func(Count) bool) (Count, bool) {
	ps := b.ps
	idx := from.rsh(pageShift)
	slot := int(from.lo & (pageSlots - 1))
	for {
		var ok bool
		if idx, ok = ps.full.next(idx); !ok || idx.Cmp(ps.npages) >= 0 {
			return Count{}, false
		}
		c := ps.capacity(idx)
		v := b.view(idx)
		for s := slot; s < c; s++ {
			if v != nil {
				if s = v.nextFree(s, c); s < 0 {
					break
				}
			}
			ord := idx.lsh(pageShift).add64(uint64(s))
			if skip == nil || !skip(ord) {
				return ord, true
			}
		}
		idx, slot = idx.add64(1), 0
	}
}

// pick chooses the next free ordinal by the pool's strategy.
func (a *Allocator) pick(b *batch) (Count, bool) {
	ps := b.ps
	skip := ps.skipFunc(a.opts.Clock)
	switch ps.pool.spec.Strategy {
	case RoundRobin:
		from := Count{}
		if ps.hasCursor {
			from = ps.cursor.add64(1)
		}
		if o, ok := b.nextFree(from, skip); ok {
			return o, true
		}
		return b.nextFree(Count{}, skip)
	case Random:
		return a.pickRandom(b, skip)
	case FIFO:
		return a.pickFIFO(b)
	}
	// Sequential: within a batch nothing is freed, so every ordinal below
	// the last one picked stays taken.
	o, ok := b.nextFree(b.hint, skip)
	if ok {
		b.hint = o.add64(1)
	}
	return o, ok
}

// skipFunc returns the ordinals to pass over: pending verification, and
// (FIFO) addresses cooling down. nil when there are none.
func (ps *poolState) skipFunc(clock func() time.Time) func(Count) bool {
	if len(ps.pending) == 0 && len(ps.fifoSet) == 0 {
		return nil
	}
	return func(o Count) bool {
		if _, ok := ps.pending[o]; ok {
			return true
		}
		if len(ps.fifoSet) > 0 {
			if _, ok := ps.fifoSet[ps.pool.addr(o)]; ok {
				return true
			}
		}
		return false
	}
}

func (a *Allocator) pickRandom(b *batch, skip func(Count) bool) (Count, bool) {
	ps := b.ps
	if ps.pool.allocatable.IsZero() {
		return Count{}, false
	}
	var idx Count
	if n := len(ps.open.list); n > 0 && ps.open.taken*2 < n*pageSlots {
		idx = ps.open.list[ps.rng.IntN(n)]
	} else {
		r := randBelow(ps.rng, ps.npages)
		var ok bool
		if idx, ok = ps.full.next(r); !ok || idx.Cmp(ps.npages) >= 0 {
			if idx, ok = ps.full.next(Count{}); !ok || idx.Cmp(ps.npages) >= 0 {
				return Count{}, false
			}
		}
	}
	c := ps.capacity(idx)
	start := idx.lsh(pageShift).add64(uint64(ps.rng.IntN(c)))
	if o, ok := b.nextFree(start, skip); ok {
		return o, true
	}
	return b.nextFree(Count{}, skip)
}

func (a *Allocator) pickFIFO(b *batch) (Count, bool) {
	ps := b.ps
	skip := ps.skipFunc(a.opts.Clock)
	if o, ok := b.nextFree(ps.fifoFresh, skip); ok {
		return o, true
	}
	now := a.opts.Clock().UnixNano()
	cool := int64(ps.pool.spec.Cooldown)
	for _, e := range ps.fifo {
		if now-e.at < cool {
			break
		}
		if o, ok := ps.pool.ordinal(e.addr); ok && !b.isTaken(o) {
			if _, p := ps.pending[o]; !p {
				return o, true
			}
		}
	}
	// Releases older than the queue holds, or ones explicitly allocated
	// and freed out of order: any free address not cooling.
	return b.nextFree(Count{}, func(o Count) bool {
		if _, p := ps.pending[o]; p {
			return true
		}
		at, queued := ps.fifoSet[ps.pool.addr(o)]
		return queued && now-at < cool
	})
}

// exhausted builds the ExhaustedError for the pool.
func (ps *poolState) exhausted(clock func() time.Time) error {
	e := &ExhaustedError{Pool: ps.name, Quarantined: CountOf(uint64(len(ps.quarantine)))}
	now := clock().UnixNano()
	for _, f := range ps.fifo {
		if now-f.at < int64(ps.pool.spec.Cooldown) {
			e.CoolingDown++
		}
	}
	return e
}

// noteAllocated updates strategy state for an ordinal just allocated
// (picked by the strategy, or explicitly requested); strategyOps persists it.
func (ps *poolState) noteAllocated(ord Count, picked bool) {
	switch ps.pool.spec.Strategy {
	case RoundRobin:
		ps.cursor, ps.hasCursor = ord, true
	case FIFO:
		addr := ps.pool.addr(ord)
		if picked && ord.Cmp(ps.fifoFresh) >= 0 {
			ps.fifoFresh = ord.add64(1)
		}
		if _, ok := ps.fifoSet[addr]; ok {
			delete(ps.fifoSet, addr)
			ps.fifo = slices.DeleteFunc(ps.fifo, func(e fifoEntryT) bool { return e.addr == addr })
		}
	}
}

// strategyOps appends the conditions and writes that persist strategy state.
func (ps *poolState) strategyOps(b *batch) {
	switch ps.pool.spec.Strategy {
	case RoundRobin:
		if ps.hasCursor {
			b.ops = append(b.ops, Op{Key: cursorKey(ps.name), Value: encodeCursor(ps.pool.addr(ps.cursor))})
		}
	case FIFO:
		b.conds = append(b.conds, Cond{Key: fifoKey(ps.name), Revision: ps.fifoRev})
		b.ops = append(b.ops, Op{Key: fifoKey(ps.name), Value: encodeFIFO(ps.fifoFresh, ps.fifo)})
	}
}

// strategySnapshot saves strategy state so a failed commit can restore it.
type strategySnapshot struct {
	cursor    Count
	hasCursor bool
	fresh     Count
	fifo      []fifoEntryT
}

func (ps *poolState) snapshot() strategySnapshot {
	s := strategySnapshot{cursor: ps.cursor, hasCursor: ps.hasCursor, fresh: ps.fifoFresh}
	if ps.pool.spec.Strategy == FIFO {
		s.fifo = slices.Clone(ps.fifo)
	}
	return s
}

func (ps *poolState) restore(s strategySnapshot) {
	ps.cursor, ps.hasCursor, ps.fifoFresh = s.cursor, s.hasCursor, s.fresh
	if ps.pool.spec.Strategy == FIFO {
		ps.fifo = s.fifo
		ps.fifoSet = make(map[netip.Addr]int64, len(ps.fifo))
		for _, e := range ps.fifo {
			ps.fifoSet[e.addr] = e.at
		}
	}
}
