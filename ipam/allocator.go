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
	// Clock returns the current time. When nil, the allocator uses the
	// process's coarse clock: while allocators use it a goroutine reads
	// the wall clock (time.Now) every millisecond and allocations read
	// that value, so lease times (Lease.Allocated, the FIFO cooldown's
	// release times) have a resolution of about a millisecond and may be
	// that much behind, and the times of all allocators in the process
	// never go back. The goroutine exits after 8 ms without use. Set Clock
	// for exact or simulated times (also under testing/synctest).
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
	// MaxRetries bounds the retries of one operation after store
	// conflicts (other processes writing the same keys); 100 when zero.
	// The operation then fails with an error wrapping ErrConflict that
	// says how many attempts were made.
	MaxRetries int
	// RetryBackoff is the wait before the second retry of an operation
	// after conflicts; it doubles with every further retry up to 64 times
	// itself, with jitter (a uniform draw from the upper half of the wait,
	// from Rand) so that contending processes spread out. The first retry
	// is immediate: it runs on the state the conflict re-read. 1 ms when
	// zero; negative: no waiting.
	RetryBackoff time.Duration
	// Logger receives warnings (overlaps under WarnOverlap, repaired
	// summaries); nothing is logged when nil.
	Logger *slog.Logger
	// NoWatch stops the allocator from following the changes of a store
	// that is a Watcher (etcd). By default it does: its cached view of a
	// pool (Stats, the choice of free addresses) then shows other
	// processes' allocations as they happen, at the cost of one stream
	// from the store, which lasts until the store is closed. Without it
	// the view catches up on a conflict or a Refresh.
	NoWatch bool
}

// Allocator hands out addresses from pools kept in a Store. On a
// MemoryStore it works on the store's own decoded pool state, under the
// store's locks; on other stores it caches the decoded allocation pages of
// the pools it has used and keeps them current through the store's
// compare-and-swap. Either way any number of Allocators, in any number of
// processes (other stores) or goroutines, may share one store. It is safe
// for concurrent use.
type Allocator struct {
	store   Store
	mem     *MemoryStore // store, when it is exactly a *MemoryStore
	opts    Options
	nowNano func() int64 // opts.Clock in Unix nanoseconds
	pools   atomic.Pointer[map[string]*poolState]
	last    atomic.Pointer[poolState] // the pool used last
	poolsMu sync.Mutex
	randMu  sync.Mutex

	reconMu  sync.Mutex
	suspects map[suspectKey]bool

	watcher  Watcher // the store, if it is one and Options allow
	watchMu  sync.Mutex
	watching bool
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
	var nowNano func() int64
	if opts.Clock == nil {
		opts.Clock, nowNano = defaultClock.now, defaultClock.nowNano
	} else {
		clock := opts.Clock
		nowNano = func() int64 { return clock().UnixNano() }
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
		opts.MaxRetries = 100
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = time.Millisecond
	}
	a := &Allocator{store: store, opts: opts, nowNano: nowNano}
	// Only the MemoryStore itself: a type wrapping or embedding it (to
	// instrument Commit, say) must see every transaction.
	if ms, ok := store.(*MemoryStore); ok {
		a.mem = ms
	} else if w, ok := store.(Watcher); ok && !opts.NoWatch {
		a.watcher = w
	}
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

// poolCore is the decoded state of one pool: the compiled spec, the
// allocation pages with their summaries, and the strategy records. On a
// MemoryStore it lives in the store's region for the pool and is the
// truth, shared by every Allocator on the store (its pages map is the
// store's); on other stores each Allocator keeps its own, as a cache.
//
// mu guards every field. On a MemoryStore, allocateFast holds it shared
// (read-locked) while it takes an address: it changes only the words, taken
// count and generation of one page's value, that page's rev, the pool's
// lowFree and taken, all with atomic operations, and only where no summary
// changes (see fastpath.go). Everything else, and every other operation,
// holds mu exclusively, so plain reads and writes under the exclusive lock
// never meet those atomic ones.
type poolCore struct {
	mu     sync.RWMutex
	name   string
	key    string     // poolKey(name)
	region *memRegion // non-nil: the MemoryStore's shared state

	loaded     bool
	version    uint64 // region version loaded (shared)
	loads      uint64 // loads completed, for the allocators' levels
	pool       *Pool
	rec        *poolRecord
	recRev     uint64
	pagePrefix string
	npages     Count
	lastCap    int // capacity of the last page
	pages      map[Count]*pageState
	seen       pageSeen // a cached lookup in pages
	full       fullTree
	open       openSet
	nonOpen    Count // ordinals taken on pages that are not in open (full ones)

	// Written by every allocation, also under the read lock (allocateFast):
	// on a cache line of their own, away from the fields only read there.
	_       [64]byte
	lowFree Count // every ordinal below is taken
	taken   Count
	_       [64]byte

	quarantine []QuarantineEntry
	qRev       uint64
	fifoFresh  Count
	fifo       []fifoEntryT
	fifoSet    map[netip.Addr]int64
	fifoRev    uint64
	cursor     Count
	hasCursor  bool

	pending map[Count]struct{}

	// Generic stores: pages whose commit lost to another process lately.
	// Random passes over them when picking among the open pages, so that
	// allocators in different processes spread over different pages
	// instead of all filling the one open page they all know. Forgotten
	// after contendedFor commits.
	contended    map[Count]struct{}
	sinceContend int
	home         Count // Random's current page (generic stores)
	hasHome      bool

	// scratch, reused under mu
	tx batch
}

// poolState is one Allocator's handle on a pool: the (own or shared) core
// plus what is the Allocator's alone. Its fields are guarded by core.mu.
type poolState struct {
	*poolCore
	level      Level
	levelLoads uint64 // core.loads when level was last set from scratch
	rng        *rand.Rand
}

type pageState struct {
	key string    // store key (cached pages of a generic store)
	rev uint64    // 0: absent
	val pageBytes // nil: absent
	raw []byte    // MemoryStore: a value written there that is not a page
}

// openSet holds the pages that are neither empty nor full (for Random).
type openSet struct {
	list []Count
	pos  map[Count]int
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

// state returns this allocator's (possibly unloaded) handle on pool name.
func (a *Allocator) state(name string) (*poolState, error) {
	if ps := a.last.Load(); ps != nil && ps.name == name {
		return ps, nil
	}
	if ps := (*a.pools.Load())[name]; ps != nil {
		a.last.Store(ps)
		return ps, nil
	}
	var core *poolCore
	if a.mem != nil {
		r := a.mem.region(name)
		if r == nil {
			return nil, fmt.Errorf("%w %q", ErrUnknownPool, name)
		}
		core = &r.core
	}
	a.poolsMu.Lock()
	defer a.poolsMu.Unlock()
	old := *a.pools.Load()
	if ps := old[name]; ps != nil {
		return ps, nil
	}
	m := make(map[string]*poolState, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if core == nil {
		core = &poolCore{name: name, key: poolKey(name)}
	}
	ps := &poolState{poolCore: core}
	a.randMu.Lock()
	ps.rng = rand.New(rand.NewPCG(a.opts.Rand.Uint64(), a.opts.Rand.Uint64()))
	a.randMu.Unlock()
	m[name] = ps
	a.pools.Store(&m)
	return ps, nil
}

// errPendingChange: the shared state cannot load while a spec change or
// removal is pending; lockPool completes it with no lock held.
var errPendingChange = errors.New("ipam: pool change pending")

// lockPool locks the pool for an operation (on a MemoryStore also the
// owner's shard, after the pool, when ref is given) and makes sure its state
// is loaded and current. On error nothing stays locked.
func (a *Allocator) lockPool(ctx context.Context, ps *poolState, ref *ownerRef) error {
	for attempt := 0; ; attempt++ {
		ps.mu.Lock()
		if ref != nil && ref.sh != nil {
			ref.sh.mu.Lock()
		}
		err := a.ensure(ctx, ps)
		if err == nil {
			a.syncLevel(ps)
			return nil
		}
		a.unlockPool(ps, ref)
		if !errors.Is(err, errPendingChange) || attempt >= a.opts.MaxRetries {
			return err
		}
		if err := a.completePending(ctx, ps.name); err != nil && !errors.As(err, new(*SpecChangeError)) {
			return err
		}
	}
}

// lockShared is lockPool on a MemoryStore with read called once the pool
// and then the owner's shard are locked; if read reports done, the pool is
// unlocked again (only the shard stays locked). On error nothing stays
// locked. The pool lock comes first: an allocation that held its shard while
// it waited for the pool made every owner of that shard wait too, and with
// more goroutines than CPUs the two locks convoyed (16 goroutines on 2 CPUs
// ran at half the speed of 1 CPU).
//
// held says the caller holds the pool lock already (allocateShared's
// TryLock); on error it is released all the same.
func (a *Allocator) lockShared(ctx context.Context, ps *poolState, ref *ownerRef, held bool, read func() (done bool, err error)) (bool, error) {
	for attempt := 0; ; attempt++ {
		err := ctx.Err()
		if err == nil && ps.region.store.closed.Load() {
			err = errClosed
		}
		if err != nil {
			if held {
				ps.mu.Unlock()
			}
			return false, err
		}
		if !held {
			lockSpin(&ps.mu)
		}
		held = false
		lockSpin(&ref.sh.mu)
		done, err := read()
		if err != nil {
			ps.mu.Unlock()
			ref.sh.mu.Unlock()
			return false, err
		}
		if done {
			ps.mu.Unlock()
			return true, nil
		}
		err = a.ensure(ctx, ps)
		if err == nil {
			a.syncLevel(ps)
			return false, nil
		}
		ps.mu.Unlock()
		ref.sh.mu.Unlock()
		if !errors.Is(err, errPendingChange) || attempt >= a.opts.MaxRetries {
			return false, err
		}
		if err := a.completePending(ctx, ps.name); err != nil && !errors.As(err, new(*SpecChangeError)) {
			return false, err
		}
	}
}

// lockSpin locks m, retrying TryLock for a moment first. The locks of a
// shared pool are held for well under a microsecond, less than parking and
// waking a goroutine costs, and sync.Mutex does not spin while other
// goroutines wait to run (as they do when more goroutines than CPUs
// allocate); without this, every collision of two allocations parks one.
func lockSpin[M interface {
	TryLock() bool
	Lock()
}](m M) {
	for range 64 {
		if m.TryLock() {
			return
		}
	}
	m.Lock()
}

// syncLevel sets this allocator's level for the pool from scratch after the
// state was (re)loaded. Called with the pool lock held.
func (a *Allocator) syncLevel(ps *poolState) {
	if ps.levelLoads != ps.loads {
		ps.level = levelFor(ps.utilization(), LevelOK, ps.pool.spec.Warn, ps.pool.spec.Critical, a.opts.Hysteresis)
		ps.levelLoads = ps.loads
	}
}

// unlockPool undoes lockPool.
func (a *Allocator) unlockPool(ps *poolState, ref *ownerRef) {
	ps.mu.Unlock()
	if ref != nil && ref.sh != nil {
		ref.sh.mu.Unlock()
	}
}

// ensure loads the pool's state unless it is loaded and current. Called
// with ps.mu held.
func (a *Allocator) ensure(ctx context.Context, ps *poolState) error {
	if r := ps.region; r != nil {
		if r.store.closed.Load() {
			return errClosed
		}
		if ps.loaded && ps.version == r.version {
			return nil
		}
		return a.loadShared(ps)
	}
	if ps.loaded {
		return nil
	}
	return a.load(ctx, ps)
}

// locked returns the pool's state, loaded and locked; the caller unlocks
// ps.mu.
func (a *Allocator) locked(ctx context.Context, name string) (*poolState, error) {
	ps, err := a.state(name)
	if err != nil {
		return nil, err
	}
	if err := a.lockPool(ctx, ps, nil); err != nil {
		return nil, err
	}
	return ps, nil
}

// load reads the pool's state from the store (a full refresh of a generic
// store's cache).
func (a *Allocator) load(ctx context.Context, ps *poolState) error {
	ps.loaded = false
	a.startWatch(ctx)
	rec, kvs, err := a.getPoolRecord(ctx, ps.name, quarantineKey(ps.name), fifoKey(ps.name), cursorKey(ps.name))
	if err != nil {
		return err
	}
	if rec == nil {
		return fmt.Errorf("%w %q", ErrUnknownPool, ps.name)
	}
	if rec.Pending != nil || rec.Sweep != nil {
		if err := a.completePending(ctx, ps.name); err != nil {
			return err
		}
		if err := a.sweep(ctx, ps.name); err != nil {
			return err
		}
		return a.load(ctx, ps)
	}
	if err := ps.setRecord(rec, kvs[0].Revision); err != nil {
		return err
	}
	ps.pages = map[Count]*pageState{}
	for kv, err := range a.store.Scan(ctx, ps.pagePrefix) {
		if err != nil {
			return err
		}
		idx, ok := parsePageIndex(kv.Key[len(ps.pagePrefix):])
		if !ok {
			return fmt.Errorf("%w: pool %q: stray page key %q", ErrCorrupt, ps.name, kv.Key)
		}
		st := &pageState{key: kv.Key, rev: kv.Revision, val: pageBytes(kv.Value)}
		if err := ps.addPage(idx, st); err != nil {
			return err
		}
		ps.pages[idx] = st
	}
	if err := ps.setRecords(kvs[1].Value, kvs[1].Revision, kvs[2].Value, kvs[2].Revision, kvs[3].Value); err != nil {
		return err
	}
	ps.loads++
	ps.level = levelFor(ps.utilization(), LevelOK, ps.pool.spec.Warn, ps.pool.spec.Critical, a.opts.Hysteresis)
	ps.levelLoads = ps.loads
	ps.loaded = true
	return nil
}

// loadShared builds the shared state from the MemoryStore region it lives
// in. Called with ps.mu (the region's pool lock) held: no Store method may
// be called here.
func (a *Allocator) loadShared(ps *poolState) error {
	r := ps.region
	ps.loaded = false
	e := r.small[famPool]
	if e.rev == 0 {
		return fmt.Errorf("%w %q", ErrUnknownPool, ps.name)
	}
	rec, err := decodePoolRecord(e.val)
	if err != nil {
		return fmt.Errorf("%w: pool %q: %v", ErrCorrupt, ps.name, err)
	}
	if rec.Pending != nil {
		return errPendingChange
	}
	if err := ps.setRecord(rec, e.rev); err != nil {
		return err
	}
	pages := r.epochs[rec.Epoch]
	if pages == nil {
		pages = map[Count]*pageState{}
		r.epochs[rec.Epoch] = pages
	}
	for idx, st := range pages {
		if st.rev == 0 {
			continue
		}
		if err := ps.addPage(idx, st); err != nil {
			return err
		}
	}
	ps.pages = pages
	q, f := r.small[famQuarantine], r.small[famFIFO]
	if err := ps.setRecords(q.val, q.rev, f.val, f.rev, r.small[famCursor].val); err != nil {
		return err
	}
	ps.version = r.version
	ps.loads++
	ps.loaded = true
	return nil
}

// setRecord installs the pool record and the compiled pool, with empty page
// summaries.
func (ps *poolCore) setRecord(rec *poolRecord, rev uint64) error {
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
	ps.pool, ps.rec, ps.recRev = pool, rec, rev
	ps.pagePrefix = pagesPrefix(ps.name, rec.Epoch)
	ps.npages = pool.allocatable.add64(pageSlots - 1).rsh(pageShift)
	ps.lastCap = pageSlots
	if r := int(pool.allocatable.lo & (pageSlots - 1)); r != 0 {
		ps.lastCap = r
	}
	ps.full = newFullTree(ps.npages)
	ps.hasHome, ps.contended = false, nil
	ps.open, ps.nonOpen = openSet{}, Count{}
	ps.taken = Count{}
	ps.seen = pageSeen{}
	ps.lowFree = Count{}
	return nil
}

// addPage checks a page read from the store and counts it in the
// summaries.
func (ps *poolCore) addPage(idx Count, st *pageState) error {
	if idx.Cmp(ps.npages) >= 0 {
		return fmt.Errorf("%w: pool %q: stray page %s", ErrCorrupt, ps.name, pageKey(ps.pagePrefix, idx))
	}
	v := []byte(st.val)
	if st.raw != nil {
		v = st.raw
	}
	if err := checkPage(v, ps.capacity(idx)); err != nil {
		return fmt.Errorf("%w: pool %q: key %q: %v", ErrCorrupt, ps.name, pageKey(ps.pagePrefix, idx), err)
	}
	ps.account(idx, 0, st.val.taken())
	return nil
}

// setRecords decodes the quarantine, FIFO and cursor records.
func (ps *poolCore) setRecords(q []byte, qRev uint64, f []byte, fRev uint64, c []byte) error {
	var err error
	if ps.quarantine, err = decodeQuarantine(q); err != nil {
		return fmt.Errorf("%w: pool %q: %v", ErrCorrupt, ps.name, err)
	}
	ps.qRev = qRev
	if ps.fifoFresh, ps.fifo, err = decodeFIFO(f); err != nil {
		return fmt.Errorf("%w: pool %q: %v", ErrCorrupt, ps.name, err)
	}
	ps.fifoRev = fRev
	ps.fifoSet = make(map[netip.Addr]int64, len(ps.fifo))
	for _, e := range ps.fifo {
		ps.fifoSet[e.addr] = e.at
	}
	ps.hasCursor = false
	if a, ok := decodeCursor(c); ok {
		if ord, ok := ps.pool.ordinal(a); ok {
			ps.cursor, ps.hasCursor = ord, true
		}
	}
	return nil
}

// capacity returns the number of ordinals in page idx.
func (ps *poolCore) capacity(idx Count) int {
	if idx.Cmp(ps.npages.sub64(1)) == 0 {
		return ps.lastCap
	}
	return pageSlots
}

// account updates the summaries for page idx going from old to new taken.
func (ps *poolCore) account(idx Count, old, new int) {
	if old == new {
		return
	}
	ps.taken = ps.taken.add64(uint64(new)).sub64(uint64(old))
	c := ps.capacity(idx)
	wasOpen, isOpen := old > 0 && old < c, new > 0 && new < c
	// nonOpen is kept rather than the open pages' count, so that an
	// allocation on an open page that leaves it open (allocateFast) changes
	// only taken.
	if !wasOpen {
		ps.nonOpen = ps.nonOpen.sub64(uint64(old))
	}
	if !isOpen {
		ps.nonOpen = ps.nonOpen.add64(uint64(new))
	}
	switch {
	case wasOpen && !isOpen:
		ps.open.remove(idx)
	case isOpen && !wasOpen:
		ps.open.add(idx)
	}
	if (old == c) != (new == c) {
		ps.full.set(idx, new == c)
	}
}

func (ps *poolCore) utilization() float64 {
	n := ps.pool.allocatable.Float64()
	if n == 0 {
		return 0
	}
	return ps.taken.Float64() / n
}

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
// includes every change it made and every change by others it has seen:
// on a store that is a Watcher (etcd) as they happen, otherwise when a
// conflict or Refresh reads them. Use Refresh first for an exact view of a
// store other processes write to. On a MemoryStore the view is the store's
// own and always exact.
func (a *Allocator) Stats(ctx context.Context, pool string) (Stats, error) {
	ps, err := a.locked(ctx, pool)
	if err != nil {
		return Stats{}, err
	}
	defer ps.mu.Unlock()
	return ps.stats(), nil
}

// Refresh re-reads the pool's state from the store: O(pages in use).
// On a MemoryStore the view is always exact and this only re-derives it.
func (a *Allocator) Refresh(ctx context.Context, pool string) error {
	ps, err := a.state(pool)
	if err != nil {
		return err
	}
	ps.mu.Lock()
	ps.loaded = false
	ps.mu.Unlock()
	if err := a.lockPool(ctx, ps, nil); err != nil {
		return err
	}
	ps.mu.Unlock()
	return nil
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
	if from.Cmp(ps.lowFree) < 0 {
		from = ps.lowFree
	}
	idx := from.rsh(pageShift)
	slot := int(from.lo & (pageSlots - 1))
	for {
		next, ok := ps.full.next(idx)
		if !ok || next.Cmp(ps.npages) >= 0 {
			return Count{}, false
		}
		if next != idx { // from's page is full: a later page, from its start
			idx, slot = next, 0
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

// sequentialBatch reports whether a batch can take addresses a bitmap word
// at a time: Sequential, and nothing to pass over.
func (ps *poolState) sequentialBatch() bool {
	return ps.pool.spec.Strategy == Sequential && len(ps.pending) == 0 && len(ps.fifoSet) == 0
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
	picked := false
	generic := ps.region == nil
	switch {
	case generic:
		// Other processes may write any page, and this allocator's view of
		// a page it does not write goes stale: keep to a home page, chosen
		// at random, while it has room and no other process competes for
		// it, so that allocators spread over pages and rarely conflict.
		if ps.hasHome && !ps.isContended(ps.home) {
			if n, ok := ps.full.next(ps.home); ok && n == ps.home {
				idx, picked = ps.home, true
			}
		}
	case len(ps.open.list) > 0 && ps.taken.Sub(ps.nonOpen).Cmp(CountOf(uint64(len(ps.open.list))*pageSlots/2)) < 0:
		idx, picked = ps.open.list[ps.rng.IntN(len(ps.open.list))], true
	}
	for try := 0; !picked; try++ {
		r := randBelow(ps.rng, ps.npages)
		var ok bool
		if idx, ok = ps.full.next(r); !ok || idx.Cmp(ps.npages) >= 0 {
			if idx, ok = ps.full.next(Count{}); !ok || idx.Cmp(ps.npages) >= 0 {
				return Count{}, false
			}
		}
		if !generic || try >= 3 || !ps.isContended(idx) {
			picked = true
			ps.home, ps.hasHome = idx, generic
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
	now := a.nowNano()
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

// snapshot saves the strategy state (Sequential and Random have none).
func (ps *poolState) snapshot() strategySnapshot {
	switch ps.pool.spec.Strategy {
	case RoundRobin:
		return strategySnapshot{cursor: ps.cursor, hasCursor: ps.hasCursor}
	case FIFO:
		return strategySnapshot{fresh: ps.fifoFresh, fifo: slices.Clone(ps.fifo)}
	}
	return strategySnapshot{}
}

func (ps *poolState) restore(s strategySnapshot) {
	switch ps.pool.spec.Strategy {
	case RoundRobin:
		ps.cursor, ps.hasCursor = s.cursor, s.hasCursor
	case FIFO:
		ps.fifoFresh = s.fresh
		ps.fifo = s.fifo
		ps.fifoSet = make(map[netip.Addr]int64, len(ps.fifo))
		for _, e := range ps.fifo {
			ps.fifoSet[e.addr] = e.at
		}
	}
}
