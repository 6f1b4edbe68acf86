package ipam

import (
	"context"
	"encoding/binary"
	"hash/maphash"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/addrguard/addrguard/internal/prefetch"
)

// MemoryStore is the in-memory Store, and the default. It is safe for
// concurrent use.
//
// Through the Store methods it behaves like any other store: byte values,
// per-key revisions, an atomic multi-key compare-and-swap, consistent
// snapshots. Inside, it keeps each pool's keys (pool record, pages, owner
// records, quarantine, FIFO and cursor records: see Store) decoded in a
// region of their own, with the pool's lock, and the Allocators using the
// store work on that state directly: an allocation checks and changes the
// page and the owner record in one critical section, which is a
// compare-and-swap that cannot fail, so nothing is encoded, copied or
// retried, and every Allocator on the store sees the same state. A single
// allocation from a Sequential pool that finds the pool's lock taken holds
// it shared instead and takes its bit with an atomic compare-and-swap (see
// fastpath.go), so that goroutines on several CPUs allocate from one pool
// side by side. The
// Store methods encode and decode a region's values as they pass; other
// keys are kept as given.
//
// Costs: an Allocate or Release takes a few hundred nanoseconds and no heap
// allocation beyond the owner index's amortized growth. An owner holding
// one lease takes about 60 bytes (a slot in a sharded open-addressing
// index; the owner string is the caller's, not copied, so pass a clone of
// a substring of something large), one holding a
// sequential batch a few dozen bytes per run of consecutive addresses,
// other records 32 bytes a lease; pages about 250 bytes per 1,024
// addresses in use. Get and Scan copy page values and encode owner
// records. Commit copies page values and keeps other values as given, so
// callers must not modify a Value after passing it to Commit, nor one
// returned by Get or Scan.
type MemoryStore struct {
	mu      sync.RWMutex // exclusive: Commit, Close, new regions; shared: Get, Scan, Len
	closed  atomic.Bool
	_       [64]byte
	rev     atomic.Uint64 // on a cache line of its own: every allocation bumps it
	_       [56]byte
	m       map[string]memEntry   // keys outside every region
	regions map[string]*memRegion // by pool name
	seed    maphash.Seed
}

type memEntry struct {
	rev uint64
	val []byte
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{m: map[string]memEntry{}, regions: map[string]*memRegion{}, seed: maphash.MakeSeed()}
}

// Families of a pool's keys (see Store), kept in the pool's region.
const (
	famPool = iota
	famQuarantine
	famFIFO
	famCursor
	famPage
	famOwner
	numSmall = famPage // families of one key per pool
)

// route locates a key in a pool's region.
type route struct {
	name  string
	fam   int
	epoch uint64 // famPage
	idx   Count  // famPage
	owner string // famOwner
}

// routeKey parses a key of a pool's families. Keys that are not in the
// exact form the allocator writes (a page index in upper-case hex, an empty
// owner, a pool name with a slash) are not routed: they stay in the plain
// map, where Scan and VerifyStore still find them.
func routeKey(k string) (route, bool) {
	rest, ok := strings.CutPrefix(k, keyPrefix)
	if !ok {
		return route{}, false
	}
	var r route
	family, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return route{}, false
	}
	switch family {
	case "pool":
		r.fam, r.name = famPool, rest
	case "quarantine":
		r.fam, r.name = famQuarantine, rest
	case "fifo":
		r.fam, r.name = famFIFO, rest
	case "cursor":
		r.fam, r.name = famCursor, rest
	case "page":
		name, tail, ok := strings.Cut(rest, "/")
		if !ok || len(tail) != 16+1+32 || tail[16] != '/' {
			return route{}, false
		}
		epoch, ok1 := parseHex64(tail[:16])
		hi, ok2 := parseHex64(tail[17:33])
		lo, ok3 := parseHex64(tail[33:])
		if !ok1 || !ok2 || !ok3 {
			return route{}, false
		}
		r = route{name: name, fam: famPage, epoch: epoch, idx: Count{hi: hi, lo: lo}}
	case "owner":
		name, owner, ok := strings.Cut(rest, "/")
		if !ok || owner == "" {
			return route{}, false
		}
		r = route{name: name, fam: famOwner, owner: owner}
	default:
		return route{}, false
	}
	if !regionName(r.name) {
		return route{}, false
	}
	return r, true
}

// regionName reports whether name can name a region: the keys of a pool
// name without a slash parse back to that name.
func regionName(name string) bool { return name != "" && !strings.Contains(name, "/") }

// parseHex64 parses exactly 16 lower-case hex digits.
func parseHex64(s string) (uint64, bool) {
	if len(s) != 16 {
		return 0, false
	}
	var v uint64
	for i := 0; i < 16; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// memRegion holds one pool's keys, decoded. core.mu (the pool lock) guards
// core and the fields after it; each owner shard has its own lock. Lock
// order: core.mu, then owner shards (in index order). Store methods take
// every lock of the regions they touch; allocators take one owner's shard
// and the pool lock.
type memRegion struct {
	store *MemoryStore
	name  string
	keys  [numSmall]string // full keys of the one-key families

	core poolCore // the allocators' shared state for the pool

	small   [numSmall]memEntry
	epochs  map[uint64]map[Count]*pageState // pages by epoch and index
	version uint64                          // bumped by every Commit writing into the region

	owners [ownerShards]ownerShard
}

func (s *MemoryStore) newRegion(name string) *memRegion {
	r := &memRegion{store: s, name: name, epochs: map[uint64]map[Count]*pageState{}}
	r.keys = [numSmall]string{poolKey(name), quarantineKey(name), fifoKey(name), cursorKey(name)}
	r.core.name, r.core.key, r.core.region = name, r.keys[famPool], r
	for i := range r.owners {
		r.owners[i].seed = s.seed
	}
	return r
}

// region returns pool name's region, creating it; nil if name cannot name
// one (no pool can be called that).
func (s *MemoryStore) region(name string) *memRegion {
	if !regionName(name) {
		return nil
	}
	s.mu.RLock()
	r := s.regions[name]
	s.mu.RUnlock()
	if r != nil {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r = s.regions[name]; r == nil {
		r = s.newRegion(name)
		s.regions[name] = r
	}
	return r
}

func (r *memRegion) lockAll() {
	r.core.mu.Lock()
	for i := range r.owners {
		r.owners[i].mu.Lock()
	}
}

func (r *memRegion) unlockAll() {
	r.core.mu.Unlock()
	for i := range r.owners {
		r.owners[i].mu.Unlock()
	}
}

// lockRegions locks every region in rs (deduplicated, in name order) and
// returns them for unlockRegions.
func lockRegions(rs []*memRegion) []*memRegion {
	if len(rs) > 1 {
		slices.SortFunc(rs, func(a, b *memRegion) int { return strings.Compare(a.name, b.name) })
		rs = slices.Compact(rs)
	}
	for _, r := range rs {
		r.lockAll()
	}
	return rs
}

func unlockRegions(rs []*memRegion) {
	for _, r := range rs {
		r.unlockAll()
	}
}

// shard returns the owner's shard and hash.
func (r *memRegion) shard(owner string) (*ownerShard, uint64) {
	h := maphash.String(r.store.seed, owner)
	return &r.owners[h>>(64-ownerShardBits)], h
}

// get returns the value and revision of a routed key (nil, 0: absent).
// Page values are copies; owner records are encoded afresh or returned as
// given to Commit.
func (r *memRegion) get(rt route) ([]byte, uint64) {
	switch rt.fam {
	case famPage:
		st := r.epochs[rt.epoch][rt.idx]
		if st == nil || st.rev == 0 {
			return nil, 0
		}
		if st.raw != nil {
			return st.raw, st.rev
		}
		return append([]byte(nil), st.val...), st.rev
	case famOwner:
		sh, h := r.shard(rt.owner)
		return sh.getBytes(h, rt.owner)
	}
	e := r.small[rt.fam]
	return e.val, e.rev
}

// revision returns a routed key's revision (0: absent).
func (r *memRegion) revision(rt route) uint64 {
	switch rt.fam {
	case famPage:
		if st := r.epochs[rt.epoch][rt.idx]; st != nil {
			return st.rev
		}
		return 0
	case famOwner:
		sh, h := r.shard(rt.owner)
		return sh.revision(h, rt.owner)
	}
	return r.small[rt.fam].rev
}

// apply puts or deletes a routed key at revision rev.
func (r *memRegion) apply(rt route, op Op, rev uint64) {
	r.version++
	switch rt.fam {
	case famPage:
		pages := r.epochs[rt.epoch]
		if op.Delete {
			if pages != nil {
				delete(pages, rt.idx)
				if len(pages) == 0 {
					delete(r.epochs, rt.epoch)
				}
			}
			return
		}
		if pages == nil {
			pages = map[Count]*pageState{}
			r.epochs[rt.epoch] = pages
		}
		st := pages[rt.idx]
		if st == nil {
			st = &pageState{}
			pages[rt.idx] = st
		}
		st.rev = rev
		if len(op.Value) == pageSize {
			if st.val == nil {
				st.val = make(pageBytes, pageSize)
			}
			copy(st.val, op.Value)
			st.raw = nil
		} else {
			st.val, st.raw = nil, op.Value
			if st.raw == nil {
				st.raw = []byte{}
			}
		}
	case famOwner:
		sh, h := r.shard(rt.owner)
		if op.Delete {
			sh.remove(h, rt.owner)
		} else {
			sh.putBytes(h, rt.owner, op.Value, rev)
		}
	default:
		if op.Delete {
			r.small[rt.fam] = memEntry{}
		} else {
			r.small[rt.fam] = memEntry{rev: rev, val: op.Value}
		}
	}
}

// overlaps reports whether some key of the region could have prefix.
func (r *memRegion) overlaps(prefix string) bool {
	for _, k := range r.keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	for _, base := range [...]string{pagePrefix + r.name + "/", ownersPrefix(r.name)} {
		if strings.HasPrefix(base, prefix) || strings.HasPrefix(prefix, base) {
			return true
		}
	}
	return false
}

// scan appends the region's keys with prefix, unsorted.
func (r *memRegion) scan(prefix string, out []KV) []KV {
	for fam, k := range r.keys {
		if e := r.small[fam]; e.rev != 0 && strings.HasPrefix(k, prefix) {
			out = append(out, KV{Key: k, Value: e.val, Revision: e.rev})
		}
	}
	if base := pagePrefix + r.name + "/"; strings.HasPrefix(base, prefix) || strings.HasPrefix(prefix, base) {
		for epoch, pages := range r.epochs {
			pp := pagesPrefix(r.name, epoch)
			if !strings.HasPrefix(pp, prefix) && !strings.HasPrefix(prefix, pp) {
				continue
			}
			for idx, st := range pages {
				if st.rev == 0 {
					continue
				}
				k := pageKey(pp, idx)
				if !strings.HasPrefix(k, prefix) {
					continue
				}
				v := st.raw
				if v == nil {
					v = append([]byte(nil), st.val...)
				}
				out = append(out, KV{Key: k, Value: v, Revision: st.rev})
			}
		}
	}
	if base := ownersPrefix(r.name); strings.HasPrefix(base, prefix) || strings.HasPrefix(prefix, base) {
		for i := range r.owners {
			sh := &r.owners[i]
			sh.each(func(slot uint32, s *ownerSlot) {
				if k := base + s.owner(); strings.HasPrefix(k, prefix) {
					v, rev := sh.encode(slot)
					out = append(out, KV{Key: k, Value: v, Revision: rev})
				}
			})
		}
	}
	return out
}

// count returns the number of keys held.
func (r *memRegion) count() int {
	n := 0
	for _, e := range r.small {
		if e.rev != 0 {
			n++
		}
	}
	for _, pages := range r.epochs {
		for _, st := range pages {
			if st.rev != 0 {
				n++
			}
		}
	}
	for i := range r.owners {
		n += r.owners[i].live
	}
	return n
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, keys ...string) ([]KV, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]KV, len(keys))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return nil, errClosed
	}
	var routes []route
	var regs []*memRegion
	for i, k := range keys {
		if rt, ok := routeKey(k); ok {
			if r := s.regions[rt.name]; r != nil {
				if routes == nil {
					routes = make([]route, len(keys))
				}
				routes[i] = rt
				regs = append(regs, r)
				continue
			}
		}
	}
	regs = lockRegions(regs)
	defer unlockRegions(regs)
	for i, k := range keys {
		out[i].Key = k
		if routes != nil && routes[i].name != "" {
			out[i].Value, out[i].Revision = s.regions[routes[i].name].get(routes[i])
			continue
		}
		if e, ok := s.m[k]; ok {
			out[i].Value, out[i].Revision = e.val, e.rev
		}
	}
	return out, nil
}

// Scan implements Store. The snapshot is taken when iteration starts, with
// the locks of every pool region the prefix reaches held at once; it costs
// one pass over the matching keys (encoding owner records) plus sorting.
func (s *MemoryStore) Scan(ctx context.Context, prefix string) iter.Seq2[KV, error] {
	return func(yield func(KV, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(KV{}, err)
			return
		}
		kvs, err := s.snapshot(prefix)
		if err != nil {
			yield(KV{}, err)
			return
		}
		slices.SortFunc(kvs, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
		for _, kv := range kvs {
			if !yield(kv, nil) {
				return
			}
		}
	}
}

func (s *MemoryStore) snapshot(prefix string) ([]KV, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return nil, errClosed
	}
	var kvs []KV
	for k, e := range s.m {
		if strings.HasPrefix(k, prefix) {
			kvs = append(kvs, KV{Key: k, Value: e.val, Revision: e.rev})
		}
	}
	var regs []*memRegion
	for _, r := range s.regions {
		if r.overlaps(prefix) {
			regs = append(regs, r)
		}
	}
	regs = lockRegions(regs)
	defer unlockRegions(regs)
	for _, r := range regs {
		kvs = r.scan(prefix, kvs)
	}
	return kvs, nil
}

// Commit implements Store.
func (s *MemoryStore) Commit(ctx context.Context, txn Txn) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0, errClosed
	}
	condRoutes := make([]route, len(txn.Conds))
	opRoutes := make([]route, len(txn.Ops))
	var regs []*memRegion
	for i, c := range txn.Conds {
		if rt, ok := routeKey(c.Key); ok {
			if r := s.regions[rt.name]; r != nil {
				condRoutes[i] = rt
				regs = append(regs, r)
			}
		}
	}
	for i, op := range txn.Ops {
		if rt, ok := routeKey(op.Key); ok {
			r := s.regions[rt.name]
			if r == nil {
				if op.Delete {
					continue
				}
				r = s.newRegion(rt.name)
				s.regions[rt.name] = r
			}
			opRoutes[i] = rt
			regs = append(regs, r)
		}
	}
	regs = lockRegions(regs)
	defer unlockRegions(regs)
	for i, c := range txn.Conds {
		var rev uint64
		if rt := condRoutes[i]; rt.name != "" {
			rev = s.regions[rt.name].revision(rt)
		} else {
			rev = s.m[c.Key].rev
		}
		if rev != c.Revision {
			return 0, &ConflictError{Key: c.Key}
		}
	}
	rev := s.rev.Add(1)
	for i, op := range txn.Ops {
		if rt := opRoutes[i]; rt.name != "" {
			s.regions[rt.name].apply(rt, op, rev)
			continue
		}
		if op.Delete {
			delete(s.m, op.Key)
			continue
		}
		s.m[op.Key] = memEntry{rev: rev, val: op.Value}
	}
	return rev, nil
}

// Len returns the number of keys held.
func (s *MemoryStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := len(s.m)
	for _, r := range s.regions {
		r.lockAll()
		n += r.count()
		r.unlockAll()
	}
	return n
}

// Close implements Store; later calls fail, Allocators' included.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	return nil
}

// The owner index of a region: ownerShards shards picked by the top bits of
// the owner's hash, each an open-addressing table (linear probing,
// tombstones, at most 3/4 used) of 32-bit entries pointing into an arena of
// fixed-size slots. A slot holds an owner with one lease inline (the common
// case: 56 bytes); a record of several leases is kept beside it as entries
// (no pointers, 32 bytes a lease), and one a Commit wrote in any other form
// as the bytes given.
const (
	ownerShardBits = 4
	ownerShards    = 1 << ownerShardBits
	ownerChunkBits = 10
	ownerChunk     = 1 << ownerChunkBits
	ownerSlotBits  = 25 // index entry: 7 bits of hash tag, 25 bits of slot+1
	ownerSlotMask  = 1<<ownerSlotBits - 1
	ownerMaxSlots  = ownerSlotMask - 1
	ownerTomb      = ^uint32(0) // a deleted entry (its slot field is no slot)
)

type ownerShard struct {
	mu     sync.Mutex
	index  []uint32      // 0: empty; ownerTomb; else tag<<ownerSlotBits | slot+1
	live   int           // owners held
	tombs  int           // tombstones in index
	chunks [][]ownerSlot // the first grows by append up to ownerChunk
	used   uint32        // slots handed out
	free   []uint32      // released slots
	aside  map[uint32]ownerAside
	seed   maphash.Seed // the store's
	// index as of the last rehash, published for prefetchFind, which
	// reads it without the lock.
	pub atomic.Pointer[[]uint32]
	_   [64]byte // keeps neighbouring shards' locks off one cache line
}

// ownerSlot is one owner's record: a single lease inline, or (one.gen 0)
// the record kept aside (ownerAside). The owner string is kept as
// its data pointer and a 32-bit length, which leaves room in 56 bytes for
// the low 32 bits of its hash: the index is rebuilt from the slots alone,
// without reading (or hashing) the strings again.
type ownerSlot struct {
	name unsafe.Pointer // the owner string's bytes; nil: a free slot
	nlen uint32
	hash uint32 // uint32 of the owner's hash
	one  leaseEntry
	rev  uint64
}

func (s *ownerSlot) owner() string { return unsafe.String((*byte)(s.name), s.nlen) }

func (s *ownerSlot) is(owner string) bool { return int(s.nlen) == len(owner) && s.owner() == owner }

// ownerPos is where find left an owner: found at slot (index position
// pos), or absent, pos then being where it would be inserted. It stays
// valid while the shard's lock is held and the shard is not changed.
type ownerPos struct {
	pos   int
	slot  uint32
	found bool
	valid bool
}

func (sh *ownerShard) slot(i uint32) *ownerSlot {
	return &sh.chunks[i>>ownerChunkBits][i&(ownerChunk-1)]
}

// The index uses the low 32 bits of an owner's hash (the top bits pick
// the shard): the low ones for the position, the top 7 as a tag that
// spares most comparisons of strings.
func ownerTag(h32 uint32) uint32 { return h32 >> (32 - 7) }

// prefetchNext starts loading the slot add will hand out next, so that the
// next new owner of the shard does not wait for it: slots are reused from
// the free list and handed out in order, but the shards' streams of slots
// interleave too thinly for the hardware to follow.
func (sh *ownerShard) prefetchNext() {
	slot := sh.used
	if n := len(sh.free); n > 0 {
		slot = sh.free[n-1]
	}
	c, i := int(slot>>ownerChunkBits), int(slot&(ownerChunk-1))
	if c < len(sh.chunks) && i < len(sh.chunks[c]) {
		a := uintptr(unsafe.Pointer(&sh.chunks[c][i]))
		prefetch.Line(a)
		prefetch.Line(a + unsafe.Sizeof(ownerSlot{}) - 1) // a slot may straddle two lines
	}
}

// prefetchFind starts loading the index entry where find will start to
// look for an owner of hash h, so that the cache miss, likely in an index
// of many owners, is taken before the locks rather than while holding them.
// It reads the index published at the last rehash; a stale one only makes
// the prefetch useless.
func (sh *ownerShard) prefetchFind(h uint64) {
	if p := sh.pub.Load(); p != nil && len(*p) > 0 {
		ix := *p
		prefetch.Line(uintptr(unsafe.Pointer(&ix[int(uint32(h))&(len(ix)-1)])))
	}
}

// find locates owner.
func (sh *ownerShard) find(h uint64, owner string) ownerPos {
	if len(sh.index) == 0 {
		return ownerPos{pos: -1, valid: true}
	}
	mask := len(sh.index) - 1
	tag := ownerTag(uint32(h)) << ownerSlotBits
	ins := -1
	for i := int(uint32(h)) & mask; ; i = (i + 1) & mask {
		v := sh.index[i]
		switch {
		case v == 0:
			if ins < 0 {
				ins = i
			}
			return ownerPos{pos: ins, valid: true}
		case v == ownerTomb:
			if ins < 0 {
				ins = i
			}
		case v&^ownerSlotMask == tag:
			if s := sh.slot(v&ownerSlotMask - 1); s.is(owner) {
				return ownerPos{pos: i, slot: v&ownerSlotMask - 1, found: true, valid: true}
			}
		}
	}
}

// add inserts owner, absent, at p (from find) and returns its new slot, or
// false when the shard is full.
func (sh *ownerShard) add(h uint64, owner string, p ownerPos) (uint32, bool) {
	var slot uint32
	if n := len(sh.free); n > 0 {
		slot = sh.free[n-1]
		sh.free = sh.free[:n-1]
	} else {
		if sh.used >= ownerMaxSlots {
			return 0, false
		}
		slot = sh.used
		sh.used++
		c := int(slot >> ownerChunkBits)
		switch {
		case c == 0:
			if len(sh.chunks) == 0 {
				sh.chunks = append(sh.chunks, nil)
			}
			sh.chunks[0] = append(sh.chunks[0], ownerSlot{})
		case c == len(sh.chunks):
			sh.chunks = append(sh.chunks, make([]ownerSlot, ownerChunk))
		}
	}
	if p.pos < 0 || sh.index[p.pos] == 0 && (sh.live+sh.tombs+1)*4 > len(sh.index)*3 {
		sh.rehash()
		p = sh.find(h, owner) // absent: the insertion point
	}
	s := sh.slot(slot)
	s.name, s.nlen, s.hash = unsafe.Pointer(unsafe.StringData(owner)), uint32(len(owner)), uint32(h)
	if sh.index[p.pos] == ownerTomb {
		sh.tombs--
	}
	sh.index[p.pos] = ownerTag(uint32(h))<<ownerSlotBits | (slot + 1)
	sh.live++
	return slot, true
}

// rehash rebuilds the index without tombstones, doubling it if it is more
// than 3/8 full of owners (first use: 8 entries).
func (sh *ownerShard) rehash() {
	n := max(8, len(sh.index))
	if (sh.live+1)*8 > n*3 {
		n *= 2
	}
	if n == len(sh.index) {
		clear(sh.index) // only tombstones to drop: rebuild in place
	} else {
		sh.index = make([]uint32, n)
		ix := sh.index
		sh.pub.Store(&ix)
	}
	sh.tombs = 0
	mask := n - 1
	// Walk the arena, not the old index: slots are read in order, and
	// carry their hash.
	sh.each(func(slot uint32, s *ownerSlot) {
		i := int(s.hash) & mask
		for sh.index[i] != 0 {
			i = (i + 1) & mask
		}
		sh.index[i] = ownerTag(s.hash)<<ownerSlotBits | (slot + 1)
	})
}

// removeAt deletes the owner found at p.
func (sh *ownerShard) removeAt(p ownerPos) {
	mask := len(sh.index) - 1
	if sh.index[(p.pos+1)&mask] == 0 {
		sh.index[p.pos] = 0 // end of a probe run: no tombstone needed
	} else {
		sh.index[p.pos] = ownerTomb
		sh.tombs++
	}
	sh.live--
	*sh.slot(p.slot) = ownerSlot{}
	sh.clearAside(p.slot)
	sh.free = append(sh.free, p.slot)
}

// remove deletes owner if present.
func (sh *ownerShard) remove(h uint64, owner string) {
	if p := sh.find(h, owner); p.found {
		sh.removeAt(p)
	}
}

// each calls fn for every owner held.
func (sh *ownerShard) each(fn func(slot uint32, s *ownerSlot)) {
	for c, chunk := range sh.chunks {
		for i := range chunk {
			if s := &chunk[i]; s.name != nil {
				fn(uint32(c)<<ownerChunkBits|uint32(i), s)
			}
		}
	}
}

// ownerAside is a record kept beside its slot: several leases, as
// entries or as runs (a sequential batch), or bytes a Commit wrote that are
// not a single lease.
type ownerAside struct {
	es   []leaseEntry
	runs []leaseRun
	raw  []byte
	kind uint8
}

const (
	asideEntries = iota
	asideRuns
	asideRaw
)

// setAside keeps a record beside slot.
func (sh *ownerShard) setAside(slot uint32, a ownerAside) {
	if sh.aside == nil {
		sh.aside = map[uint32]ownerAside{}
	}
	sh.aside[slot] = a
}

// clearAside drops a slot's record kept beside it.
func (sh *ownerShard) clearAside(slot uint32) {
	if sh.aside != nil {
		delete(sh.aside, slot)
	}
}

// encode returns the slot's record bytes and revision.
func (sh *ownerShard) encode(slot uint32) ([]byte, uint64) {
	s := sh.slot(slot)
	if s.one.gen != 0 {
		return appendEntry([]byte{ownerVersion}, s.one), s.rev
	}
	switch a := sh.aside[slot]; a.kind {
	case asideEntries:
		return encodeOwner(a.es), s.rev
	case asideRuns:
		b := make([]byte, 1, 1+ownerEntry*runsLen(a.runs))
		b[0] = ownerVersion
		for i := range a.runs {
			a.runs[i].each(func(e leaseEntry) { b = appendEntry(b, e) })
		}
		return b, s.rev
	default:
		return a.raw, s.rev
	}
}

func (sh *ownerShard) getBytes(h uint64, owner string) ([]byte, uint64) {
	if p := sh.find(h, owner); p.found {
		return sh.encode(p.slot)
	}
	return nil, 0
}

// revision returns owner's record revision (0: absent).
func (sh *ownerShard) revision(h uint64, owner string) uint64 {
	if p := sh.find(h, owner); p.found {
		return sh.slot(p.slot).rev
	}
	return 0
}

// putBytes stores an encoded record as given (inline when it is one lease
// with a non-zero generation, which round-trips exactly).
func (sh *ownerShard) putBytes(h uint64, owner string, v []byte, rev uint64) {
	slot, ok := sh.upsert(h, owner, ownerPos{})
	if !ok {
		return // unreachable in practice: 2^25 owners in one shard
	}
	s := sh.slot(slot)
	s.rev = rev
	sh.clearAside(slot)
	if len(v) == 1+ownerEntry && v[0] == ownerVersion {
		if g := binary.BigEndian.Uint64(v[17:]); g != 0 {
			s.one = leaseEntry{a16: [16]byte(v[1:17]), gen: g, at: int64(binary.BigEndian.Uint64(v[25:]))}
			return
		}
	}
	s.one = leaseEntry{}
	sh.setAside(slot, ownerAside{raw: v, kind: asideRaw})
}

// room reports whether the owner found at p (from find) can be written:
// it is there, or a slot is free.
func (sh *ownerShard) room(p ownerPos) bool {
	return p.found || len(sh.free) > 0 || sh.used < ownerMaxSlots
}

// upsert returns owner's slot, adding it if absent; p is find's result if
// valid.
func (sh *ownerShard) upsert(h uint64, owner string, p ownerPos) (uint32, bool) {
	if !p.valid {
		p = sh.find(h, owner)
	}
	if p.found {
		return p.slot, true
	}
	return sh.add(h, owner, p)
}

// writeOne replaces owner's record with the single lease e (gen > 0) at
// revision rev; p is find's result if valid, and there is room.
func (sh *ownerShard) writeOne(h uint64, owner string, p ownerPos, rev uint64, e leaseEntry) {
	if p.valid && !p.found {
		// A new owner: add hands out a zeroed slot with nothing aside, so
		// it is only written. (Reading it first would wait for the cache
		// miss that writing leaves to the store buffer.)
		slot, ok := sh.add(h, owner, p)
		if ok {
			s := sh.slot(slot)
			s.rev, s.one = rev, e
			sh.prefetchNext()
		}
		return
	}
	slot, ok := sh.upsert(h, owner, p)
	if !ok {
		return // commitPages or allocateOne checked room
	}
	s := sh.slot(slot)
	if s.one.gen == 0 {
		sh.clearAside(slot)
	}
	s.rev, s.one = rev, e
}

// read returns owner's leases (appended to buf), its record's revision and
// where it was found.
func (sh *ownerShard) read(h uint64, owner string, buf []leaseEntry) ([]leaseEntry, uint64, ownerPos, error) {
	p := sh.find(h, owner)
	if !p.found {
		return buf, 0, p, nil
	}
	s := sh.slot(p.slot)
	if s.one.gen != 0 {
		return append(buf, s.one), s.rev, p, nil
	}
	switch a := sh.aside[p.slot]; a.kind {
	case asideEntries:
		return append(buf, a.es...), s.rev, p, nil
	case asideRuns:
		return expandRuns(buf, a.runs), s.rev, p, nil
	default:
		es, err := decodeOwner(a.raw)
		if err != nil {
			return buf, s.rev, p, err
		}
		return append(buf, es...), s.rev, p, nil
	}
}

// write replaces owner's record at revision rev with keep followed by add
// (copied), deleting it when both are empty; or, if adopt or runs is not
// nil, with that, which the caller gives up. p is find's result if valid.
func (sh *ownerShard) write(h uint64, owner string, p ownerPos, rev uint64, keep, add, adopt []leaseEntry, runs []leaseRun) bool {
	if runs != nil {
		slot, ok := sh.upsert(h, owner, p)
		if ok {
			s := sh.slot(slot)
			s.rev, s.one = rev, leaseEntry{}
			sh.setAside(slot, ownerAside{runs: runs, kind: asideRuns})
		}
		return ok
	}
	if adopt != nil {
		keep, add = nil, adopt
	}
	n := len(keep) + len(add)
	if n == 0 {
		if !p.valid {
			p = sh.find(h, owner)
		}
		if p.found {
			sh.removeAt(p)
		}
		return true
	}
	slot, ok := sh.upsert(h, owner, p)
	if !ok {
		return false
	}
	s := sh.slot(slot)
	s.rev = rev
	if n == 1 {
		one := add
		if len(keep) == 1 {
			one = keep
		}
		if one[0].gen != 0 {
			if s.one.gen == 0 {
				sh.clearAside(slot)
			}
			s.one = one[0]
			return true
		}
	}
	es := adopt
	if es == nil || n == 1 {
		es = make([]leaseEntry, 0, n)
		es = append(append(es, keep...), add...)
	}
	s.one = leaseEntry{}
	sh.setAside(slot, ownerAside{es: es, kind: asideEntries})
	return true
}
