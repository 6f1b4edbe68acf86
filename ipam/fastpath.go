package ipam

import (
	"context"
	"encoding/binary"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// The shared fast path: on a MemoryStore, an allocation of one address
// for a new owner of a Sequential pool that finds the pool's lock taken
// holds it shared, not exclusively, so that allocations on several CPUs
// run side by side instead of queueing for the lock (and for the cache
// lines it protects, which an exclusive holder on another CPU has to fetch
// one by one while everyone waits). One that finds the lock free takes it
// exclusively, which costs a single goroutine less than the atomic
// operations below.
//
// Under the read lock the only writes are atomic: one bit of a page's
// bitmap (compare-and-swap, so two allocations cannot take one bit), the
// page's taken count and generation, the page's rev, and the pool's taken
// and lowFree. The fast path only applies where nothing else changes: the
// page is cached, neither empty before nor full after (so the open set and
// the full tree stay as they are), the utilization level stays (no event),
// no verification or FIFO cooldown is pending, and the state is current.
// Anything else, including every Release and every other strategy, goes to
// the exclusive path, which sees a state no fast path is in the middle of.
//
// A fast path reserves its place on the page and in the pool count
// (compare-and-swap, checking the page stays open and the level stays)
// before it looks for the bit, and gives the reservation back if it then
// turns to the exclusive path. The counts can run ahead of the bitmaps
// only while fast paths are under way, which only other fast paths see,
// and a count running ahead only sends them to the exclusive path sooner.

// fastPathOK: the fast path's atomic operations work on the page's
// encoded bytes, so the machine's byte order must be the encoding's
// (little-endian), and 64-bit atomics on struct fields need a 64-bit
// platform.
var fastPathOK = binary.NativeEndian.Uint16([]byte{1, 0}) == 1 && unsafe.Sizeof(uintptr(0)) == 8

// For tests: fastPathOff turns the fast path off, fastPathAlways makes
// every eligible allocation try it (not only those that find the pool lock
// taken), and testFastPath is called for every allocation it completes.
var (
	fastPathOff    bool
	fastPathAlways bool
	testFastPath   func()
)

// fastOK reports whether ps's state allows the fast path. Called with the
// read lock held: it only reads fields the exclusive lock guards.
func (ps *poolState) fastOK() bool {
	return ps.loaded && ps.version == ps.region.version && ps.levelLoads == ps.loads &&
		ps.pool.spec.Strategy == Sequential && len(ps.pending) == 0 && len(ps.fifoSet) == 0 &&
		ps.lowFree.hi == 0 && ps.taken.hi == 0
}

// allocateFast allocates one address for owner on a MemoryStore's
// Sequential pool under the pool's read lock, or returns the owner's lease
// if it holds one. It reports false, having changed nothing, when the
// exclusive path must decide (allocateShared then runs as ever), errors
// included: a cancelled context, a closed store, a corrupt owner record, a
// full owner index.
func (a *Allocator) allocateFast(ctx context.Context, ps *poolState, ref *ownerRef, pool, owner string, out []Lease) ([]Lease, bool) {
	if !fastPathOK || fastPathOff || ctx.Err() != nil || ps.region.store.closed.Load() {
		return nil, false
	}
	ps.mu.RLock()
	if !ps.fastOK() {
		ps.mu.RUnlock()
		return nil, false
	}
	// The shard lock orders this allocation with any other for the same
	// owner, as on the exclusive path.
	lockSpin(&ref.sh.mu)
	var one [1]leaseEntry
	es, _, err := a.readOwnerRef(ctx, ps, ref, one[:0])
	if err != nil || len(es) > 0 || !ref.sh.room(ref.pos) {
		// A corrupt record and a full shard are reported by the exclusive
		// path; an owner's lease is its answer here too (idempotent).
		ps.mu.RUnlock()
		ref.sh.mu.Unlock()
		if err == nil && len(es) > 0 {
			return appendLeases(out, pool, owner, es[:1]), true
		}
		return nil, false
	}
	now := a.nowNano()
	ord, gen, st, ok := a.takeFast(ps)
	if !ok {
		ps.mu.RUnlock()
		ref.sh.mu.Unlock()
		return nil, false
	}
	// The page's rev only grows: another fast path on the page may have
	// drawn a later revision and stored it first.
	rev := ps.region.store.rev.Add(1)
	for {
		cur := atomic.LoadUint64(&st.rev)
		if cur >= rev || atomic.CompareAndSwapUint64(&st.rev, cur, rev) {
			break
		}
	}
	e := newLeaseEntry(ps.pool.addr(ord), gen, now)
	ps.mu.RUnlock()
	ref.sh.writeOne(ref.h, owner, ref.pos, rev, e)
	ref.sh.mu.Unlock()
	if testFastPath != nil {
		testFastPath()
	}
	return append(out, a.leaseOf(pool, owner, e)), true
}

// pageU32 and pageU64 address a field of an encoded page for atomic use;
// a page's bytes are allocated 8-aligned (make), which takeFast checks.
func pageU32(p pageBytes, off int) *uint32 { return (*uint32)(unsafe.Pointer(&p[off])) }
func pageU64(p pageBytes, off int) *uint64 { return (*uint64)(unsafe.Pointer(&p[off])) }

// takeFast takes the first free ordinal on the page of lowFree, returning
// it with its generation and page; false (nothing changed) when the
// exclusive path must: the page is absent, would go from empty or to full,
// has nothing free from lowFree on, or the pool would change level.
func (a *Allocator) takeFast(ps *poolState) (Count, uint64, *pageState, bool) {
	low := atomic.LoadUint64(&ps.lowFree.lo)
	idx := CountOf(low >> pageShift)
	if idx.Cmp(ps.npages) >= 0 {
		return Count{}, 0, nil, false
	}
	slot, c := int(low&(pageSlots-1)), ps.capacity(idx)
	var st *pageState
	if ps.seen.ok && ps.seen.idx == idx { // read, not updated: a plain field
		st = ps.seen.st
	} else {
		st = ps.pages[idx]
	}
	if st == nil || len(st.val) != pageSize || uintptr(unsafe.Pointer(&st.val[0]))%8 != 0 || slot >= c {
		return Count{}, 0, nil, false
	}
	// Compare-and-swap, not add: a page's count must never pass through a
	// value that lets another fast path take a page from empty, or to full.
	p := st.val
	taken := pageU32(p, 4)
	for {
		t := atomic.LoadUint32(taken)
		if t == 0 || int(t)+1 >= c {
			return Count{}, 0, nil, false
		}
		if atomic.CompareAndSwapUint32(taken, t, t+1) {
			break
		}
	}
	sp := ps.pool.spec
	for {
		nt := atomic.LoadUint64(&ps.taken.lo)
		if levelFor(float64(nt+1)/ps.pool.allocatable.Float64(), ps.level, sp.Warn, sp.Critical, a.opts.Hysteresis) != ps.level {
			atomic.AddUint32(taken, ^uint32(0))
			return Count{}, 0, nil, false
		}
		if atomic.CompareAndSwapUint64(&ps.taken.lo, nt, nt+1) {
			break
		}
	}
	// Every bit passed over is set, and bits are only cleared under the
	// exclusive lock, so everything from lowFree to the one taken is taken.
	found := -1
scan:
	for i := slot >> 6; i < pageWords && i<<6 < c; i++ {
		wp := pageU64(p, pageHeader+8*i)
		for {
			w := atomic.LoadUint64(wp)
			free := ^w
			if i == slot>>6 {
				free &= ^uint64(0) << (slot & 63)
			}
			if free == 0 {
				break
			}
			b := bits.TrailingZeros64(free)
			if i<<6+b >= c {
				break scan
			}
			if atomic.CompareAndSwapUint64(wp, w, w|1<<b) {
				found = i<<6 + b
				break scan
			}
		}
	}
	if found < 0 {
		atomic.AddUint64(&ps.taken.lo, ^uint64(0))
		atomic.AddUint32(taken, ^uint32(0))
		return Count{}, 0, nil, false
	}
	gen := atomic.AddUint64(pageU64(p, 8), 1)
	ord := low&^(pageSlots-1) + uint64(found)
	for {
		cur := atomic.LoadUint64(&ps.lowFree.lo)
		if cur > ord || atomic.CompareAndSwapUint64(&ps.lowFree.lo, cur, ord+1) {
			break
		}
	}
	return CountOf(ord), gen, st, true
}
