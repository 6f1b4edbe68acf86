package ipam

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"time"
)

// ErrNotAllocated: the address is not allocated to anyone.
var ErrNotAllocated = errors.New("ipam: address not allocated")

// Allocate returns a lease on a free address of pool for owner. It is
// idempotent: if owner already holds a lease in the pool, that lease is
// returned and nothing is allocated (so a retried CNI ADD gets the same
// address). The lease and the address's page are committed in one store
// transaction, so a crash never leaves an address with two owners.
func (a *Allocator) Allocate(ctx context.Context, pool, owner string) (Lease, error) {
	var buf [1]Lease
	ls, err := a.allocate(ctx, pool, owner, 1, netip.Addr{}, buf[:0])
	if err != nil {
		return Lease{}, err
	}
	return ls[0], nil
}

// AllocateAddr allocates the specific address addr to owner. If owner
// already holds addr, its lease is returned. Errors: ErrNotInPool,
// ErrReserved (not allocatable), ErrAlreadyAllocated (another owner holds
// it), ErrNotVerified (quarantined, or the Verifier rejected it now).
func (a *Allocator) AllocateAddr(ctx context.Context, pool, owner string, addr netip.Addr) (Lease, error) {
	if !addr.IsValid() {
		return Lease{}, fmt.Errorf("%w: invalid address", ErrNotInPool)
	}
	var buf [1]Lease
	ls, err := a.allocate(ctx, pool, owner, 1, addr.WithZone("").Unmap(), buf[:0])
	if err != nil {
		return Lease{}, err
	}
	return ls[0], nil
}

// AllocateN makes sure owner holds at least n leases in pool and returns
// the first n (in allocation order), allocating only the missing ones, all
// in one store transaction (one critical section, one bbolt transaction).
// Like Allocate it is idempotent. If fewer than the missing number are free,
// nothing is allocated and the error is ErrExhausted.
func (a *Allocator) AllocateN(ctx context.Context, pool, owner string, n int) ([]Lease, error) {
	if n <= 0 {
		return nil, fmt.Errorf("ipam: allocate %d addresses: count must be positive", n)
	}
	return a.allocate(ctx, pool, owner, n, netip.Addr{}, make([]Lease, 0, n))
}

func (a *Allocator) leaseOf(pool, owner string, e leaseEntry) Lease {
	return Lease{Pool: pool, Addr: e.addr(), Owner: owner, Generation: e.gen, Allocated: time.Unix(0, e.at).UTC()}
}

// appendLeases appends the leases of es to out, converting an allocation
// time once for each run of leases allocated together.
func appendLeases(out []Lease, pool, owner string, es []leaseEntry) []Lease {
	switch len(es) {
	case 0:
		return out
	case 1:
		e := &es[0]
		return append(out, Lease{Pool: pool, Addr: e.addr(), Owner: owner, Generation: e.gen, Allocated: time.Unix(0, e.at).UTC()})
	}
	out = slices.Grow(out, len(es))
	var t time.Time
	var tAt int64
	for i := range es {
		e := &es[i]
		if i == 0 || e.at != tAt {
			t, tAt = time.Unix(0, e.at).UTC(), e.at
		}
		out = append(out, Lease{Pool: pool, Addr: e.addr(), Owner: owner, Generation: e.gen, Allocated: t})
	}
	return out
}

func (a *Allocator) readOwner(ctx context.Context, key string) ([]leaseEntry, uint64, error) {
	kvs, err := a.store.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	if kvs[0].Revision == 0 {
		return nil, 0, nil
	}
	es, err := decodeOwner(kvs[0].Value)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: key %q: %v", ErrCorrupt, key, err)
	}
	return es, kvs[0].Revision, nil
}

// readOwnerRef reads owner's leases (appended to buf) and its record's
// revision, through the store (generic) or from the MemoryStore's owner
// index (whose shard the caller holds locked).
func (a *Allocator) readOwnerRef(ctx context.Context, ps *poolState, ref *ownerRef, buf []leaseEntry) ([]leaseEntry, uint64, error) {
	if ref.sh == nil {
		return a.readOwner(ctx, ref.key)
	}
	es, rev, pos, err := ref.sh.read(ref.h, ref.owner, buf)
	ref.pos = pos
	if err != nil {
		return nil, 0, fmt.Errorf("%w: key %q: %v", ErrCorrupt, ownerKey(ps.name, ref.owner), err)
	}
	return es, rev, nil
}

// allocate appends the leases to out.
func (a *Allocator) allocate(ctx context.Context, pool, owner string, n int, want netip.Addr, out []Lease) ([]Lease, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	ps, err := a.state(pool)
	if err != nil {
		return nil, err
	}
	if ps.region != nil && a.opts.Verifier == nil && !want.IsValid() {
		return a.allocateShared(ctx, ps, pool, owner, n, out)
	}
	ref := ps.ownerRef(owner)
	if err := a.lockPool(ctx, ps, &ref); err != nil {
		return nil, err
	}
	var ev *LevelEvent
	defer func() {
		a.unlockPool(ps, &ref)
		a.fire(ev)
	}()
	// On a MemoryStore (shared) the state read under the locks is the
	// store's own: nothing can be stale, so there is nothing to re-read.
	shared := ps.region != nil
	var (
		one      [1]leaseEntry
		entries  []leaseEntry
		ownerRev uint64
		known    bool // entries/ownerRev were read (else: assumed absent)
		verified []Count
		epoch    = ps.rec.Epoch
		pageRead = shared
		reloaded = shared
	)
	conflicts := 0 // commits lost
	if !shared && (n > 1 || want.IsValid() || a.opts.Verifier != nil) {
		if entries, ownerRev, err = a.readOwner(ctx, ref.key); err != nil {
			return nil, err
		}
		known = true
	}
outer:
	for attempt := 0; ; attempt++ {
		if attempt > a.opts.MaxRetries || conflicts > a.opts.MaxRetries {
			return nil, gaveUp(fmt.Sprintf("pool %q: allocate for owner %q", pool, owner), attempt)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if shared {
			// Read under the owner's shard lock, afresh on every round (a
			// Verifier runs with the locks released).
			if entries, ownerRev, err = a.readOwnerRef(ctx, ps, &ref, one[:0]); err != nil {
				return nil, err
			}
			known = true
		}
		if ps.rec.Epoch != epoch {
			verified, epoch = nil, ps.rec.Epoch
		}
		if known {
			if want.IsValid() {
				for _, e := range entries {
					if e.addr() == want {
						return append(out, a.leaseOf(pool, owner, e)), nil
					}
				}
			} else if len(entries) >= n {
				return appendLeases(out, pool, owner, entries[:n]), nil
			}
		}
		need := n - len(entries)
		if want.IsValid() {
			need = 1
		}
		b := &ps.tx
		b.reset(ps)
		snap := ps.snapshot()
		var wantOrd Count
		if want.IsValid() {
			ord, ok := ps.pool.ordinal(want)
			if !ok {
				return nil, ps.classify(want)
			}
			if b.isTaken(ord) {
				if ps.isQuarantined(want) {
					return nil, fmt.Errorf("%w: %s in pool %q is quarantined", ErrNotVerified, want, pool)
				}
				if !pageRead {
					pageRead = true
					if err := a.refreshKey(ctx, ps, pageKey(ps.pagePrefix, ord.rsh(pageShift))); err != nil {
						return nil, err
					}
					continue
				}
				return nil, fmt.Errorf("%w: %s in pool %q", ErrAlreadyAllocated, want, pool)
			}
			wantOrd = ord
		}
		// Verification happens outside the lock, before the allocation.
		if a.opts.Verifier != nil && len(verified) < need {
			var cands []Count
			if want.IsValid() {
				cands = []Count{wantOrd}
			} else {
				for _, o := range verified {
					b.take(o, false) // no-op if taken meanwhile
				}
				for len(verified)+len(cands) < need {
					o, ok := a.pick(b)
					if !ok {
						b.abort()
						ps.restore(snap)
						if !reloaded {
							reloaded = true
							if err := a.load(ctx, ps); err != nil {
								return nil, err
							}
							continue outer
						}
						return nil, ps.exhausted(a.opts.Clock)
					}
					b.take(o, false)
					cands = append(cands, o)
				}
				b.abort()
				ps.restore(snap)
			}
			passed, err := a.verify(ctx, ps, &ref, cands)
			if err != nil {
				return nil, err
			}
			if ps.rec.Epoch != epoch {
				continue
			}
			verified = append(verified, passed...)
			if want.IsValid() && len(passed) == 0 {
				return nil, fmt.Errorf("%w: %s in pool %q", ErrNotVerified, want, pool)
			}
			continue
		}
		now := a.nowNano()
		var addedBuf [1]leaseEntry
		added := addedBuf[:0]
		if need > 1 {
			added = make([]leaseEntry, 0, need)
		}
		exhausted := false
		if !want.IsValid() && len(verified) == 0 {
			var ok bool
			added, ok = a.takeN(b, need, now, added)
			exhausted = !ok
		} else {
			for i := 0; i < need; i++ {
				var ord Count
				switch {
				case want.IsValid():
					ord = wantOrd
				case i < len(verified):
					ord = verified[i]
					if b.isTaken(ord) {
						// Taken by another process meanwhile: verify anew.
						verified = slices.Delete(verified, i, i+1)
						b.abort()
						ps.restore(snap)
						continue outer
					}
				default:
					var ok bool
					if ord, ok = a.pick(b); !ok {
						exhausted = true
					}
				}
				if exhausted {
					break
				}
				gen := b.take(ord, true)
				ps.noteAllocated(ord, !want.IsValid())
				added = append(added, newLeaseEntry(ps.pool.addr(ord), gen, now))
			}
		}
		if exhausted {
			b.abort()
			ps.restore(snap)
			if !known {
				// The owner was assumed to hold nothing: it may hold a
				// lease already, which is the answer then.
				if entries, ownerRev, err = a.readOwner(ctx, ref.key); err != nil {
					return nil, err
				}
				known = true
				continue outer
			}
			// Our view may be stale (other processes released addresses):
			// read the store once before giving up.
			if !reloaded {
				reloaded = true
				if err := a.load(ctx, ps); err != nil {
					return nil, err
				}
				continue outer
			}
			return nil, ps.exhausted(a.opts.Clock)
		}
		ps.strategyOps(b)
		b.setSnap(snap)
		if _, err := a.commit(ctx, b, &ownerChange{ref: &ref, rev: ownerRev, keep: entries, add: added}); err != nil {
			if !retryable(err) {
				return nil, err
			}
			conflicts++
			if err := a.retryWait(ctx, conflicts); err != nil {
				return nil, err
			}
			var ce *ConflictError
			if errors.As(err, &ce) && conflicts > 1 && ce.Key != ref.key {
				// Others wrote on during the wait: read the key again, or
				// the retry is likely to lose on the same stale revision.
				if err := a.refreshKey(ctx, ps, ce.Key); err != nil {
					return nil, err
				}
			}
			if errors.As(err, &ce) && ce.Key == ref.key {
				if entries, ownerRev, err = a.readOwner(ctx, ref.key); err != nil {
					return nil, err
				}
				known = true
			}
			continue
		}
		ev = a.levelEvent(ps)
		if want.IsValid() {
			return append(out, a.leaseOf(pool, owner, added[0])), nil
		}
		out = appendLeases(out, pool, owner, entries)
		return appendLeases(out, pool, owner, added), nil
	}
}

// takeN takes need free ordinals by the pool's strategy (a sequential
// batch a bitmap word at a time) and appends their leases to added; false
// when the pool has fewer (the caller aborts).
func (a *Allocator) takeN(b *batch, need int, now int64, added []leaseEntry) ([]leaseEntry, bool) {
	ps := b.ps
	if need > 1 && ps.sequentialBatch() {
		sink := leaseSink{pool: ps.pool, now: now, es: added}
		ok := b.takeSequential(need, &sink)
		return sink.es, ok
	}
	for i := 0; i < need; i++ {
		e, ok := a.takeOne(b, now)
		if !ok {
			return added, false
		}
		added = append(added, e)
	}
	return added, true
}

// takeOne takes one free ordinal by the pool's strategy.
func (a *Allocator) takeOne(b *batch, now int64) (leaseEntry, bool) {
	ord, ok := a.pick(b)
	if !ok {
		return leaseEntry{}, false
	}
	gen := b.take(ord, true)
	b.ps.noteAllocated(ord, true)
	return newLeaseEntry(b.ps.pool.addr(ord), gen, now), true
}

// allocateShared is Allocate and AllocateN on a MemoryStore without a
// Verifier. One address for a new owner of a Sequential pool whose lock is
// taken is allocateFast's, with the pool read-locked. Otherwise the
// owner's shard is locked throughout, the pool lock only while the pages
// are picked and stamped, so allocations for owners of different shards
// overlap their owner-index work. The owner record is
// written after the pool lock is released, with the shard still locked:
// Store methods lock every shard of the region, so none sees the page
// without the record, and a release of this owner waits for the shard.
func (a *Allocator) allocateShared(ctx context.Context, ps *poolState, pool, owner string, n int, out []Lease) ([]Lease, error) {
	ref := ps.ownerRef(owner)
	// An allocation that finds the pool lock free takes it, as it costs
	// less than the fast path's atomic operations; one that finds it taken
	// tries the fast path, which shares it.
	held := !fastPathAlways && ps.mu.TryLock()
	if !held && n == 1 {
		if res, ok := a.allocateFast(ctx, ps, &ref, pool, owner, out); ok {
			return res, nil
		}
	}
	var (
		one      [1]leaseEntry
		entries  []leaseEntry
		ownerRev uint64
		now      int64
	)
	done, err := a.lockShared(ctx, ps, &ref, held, func() (bool, error) {
		var err error
		entries, ownerRev, err = a.readOwnerRef(ctx, ps, &ref, one[:0])
		if err != nil || len(entries) >= n {
			return err == nil, err
		}
		now = a.nowNano() // before the pool lock, which allocations contend for
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if done { // idempotent: the owner holds enough already
		ref.sh.mu.Unlock()
		return appendLeases(out, pool, owner, entries[:n]), nil
	}
	need := n - len(entries)
	if st := ps.pool.spec.Strategy; need == 1 && len(entries) == 0 && (st == Sequential || st == Random) {
		return a.allocateOne(ctx, ps, &ref, pool, owner, now, out)
	}
	b := &ps.tx
	b.reset(ps)
	snap := ps.snapshot()
	// A batch for a new owner becomes the owner's record as it is (adopt),
	// or as runs when sequential; a single lease stays on the stack.
	var (
		single [1]leaseEntry
		added  []leaseEntry
		adopt  []leaseEntry
		runs   []leaseRun
		ok     bool
	)
	switch {
	case need == 1:
		single[0], ok = a.takeOne(b, now)
		added = single[:1]
	case len(entries) == 0 && ps.sequentialBatch():
		sink := leaseSink{pool: ps.pool, now: now, asRuns: true}
		ok = b.takeSequential(need, &sink)
		runs = sink.runs
		if runs == nil {
			runs = []leaseRun{}
		}
	default:
		var many []leaseEntry
		many, ok = a.takeN(b, need, now, make([]leaseEntry, 0, need))
		added = many
		if len(entries) == 0 {
			adopt = many
		}
	}
	var ev *LevelEvent
	oc := ownerChange{ref: &ref, rev: ownerRev, keep: entries, add: added}
	var rev uint64
	if !ok {
		b.abort()
		ps.restore(snap)
		err = ps.exhausted(a.opts.Clock)
	} else {
		ps.strategyOps(b)
		b.setSnap(snap)
		if rev, err = a.commitPages(ctx, b, &oc); err == nil {
			ev = a.levelEvent(ps)
		}
	}
	ps.mu.Unlock()
	if err == nil {
		writeOwner(&oc, adopt, runs, rev)
	}
	ref.sh.mu.Unlock()
	a.fire(ev)
	if err != nil {
		return nil, err
	}
	out = appendLeases(out, pool, owner, entries)
	out = appendLeaseRuns(out, pool, owner, runs)
	return appendLeases(out, pool, owner, added), nil
}

// allocateOne is allocateShared's common case: one lease for a new owner
// by a strategy without state of its own (Sequential, Random). The checks
// a commit makes come first, so the page is stamped directly, with no undo
// record, overlay or batch. Called with the owner's shard and the pool
// locked; it unlocks both.
func (a *Allocator) allocateOne(ctx context.Context, ps *poolState, ref *ownerRef, pool, owner string, now int64, out []Lease) ([]Lease, error) {
	var (
		e   leaseEntry
		rev uint64
		ev  *LevelEvent
	)
	// The context and the store's state were checked as the locks were
	// taken (lockShared, ensure).
	var err error
	switch {
	case !ref.sh.room(ref.pos):
		err = fmt.Errorf("ipam: pool %q: owner index shard full (%d owners)", ps.name, ownerMaxSlots)
	default:
		ord, ok := ps.sequentialNext()
		if !ok {
			b := &ps.tx
			b.reset(ps)
			if ord, ok = a.pick(b); !ok {
				err = ps.exhausted(a.opts.Clock)
				break
			}
		}
		idx, slot := ord.rsh(pageShift), int(ord.lo&(pageSlots-1))
		st := ps.lookup(idx)
		if st == nil {
			st = &pageState{val: newPage(ps.rec.GenFloor)}
			ps.pages[idx] = st
			ps.seen = pageSeen{}
		}
		old := st.val.taken()
		gen := st.val.set(slot)
		ps.account(idx, old, old+1)
		if ord == ps.lowFree {
			ps.lowFree = ord.add64(1)
		}
		rev = ps.region.store.rev.Add(1)
		st.rev = rev
		e = newLeaseEntry(ps.pool.addr(ord), gen, now)
		ev = a.levelEvent(ps)
	}
	ps.mu.Unlock()
	if err == nil {
		ref.sh.writeOne(ref.h, owner, ref.pos, rev, e)
	}
	ref.sh.mu.Unlock()
	a.fire(ev)
	if err != nil {
		return nil, err
	}
	return append(out, a.leaseOf(pool, owner, e)), nil
}

// sequentialNext is pick for a Sequential pool when the first free
// address lies on the page of lowFree (every ordinal below lowFree is
// taken), as it nearly always does: one look at that page, without the
// batch, the summary tree or a skip function to set up, all of it under
// the pool lock. It reports false when the pool is not Sequential, when
// pending verifications or a FIFO cooldown could exclude addresses, and
// when that page has nothing free from lowFree on: pick decides then.
func (ps *poolState) sequentialNext() (Count, bool) {
	if ps.pool.spec.Strategy != Sequential || len(ps.pending) > 0 || len(ps.fifoSet) > 0 {
		return Count{}, false
	}
	low := ps.lowFree
	idx := low.rsh(pageShift)
	if idx.Cmp(ps.npages) >= 0 {
		return Count{}, false
	}
	slot, c := int(low.lo&(pageSlots-1)), ps.capacity(idx)
	if slot >= c {
		return Count{}, false
	}
	st := ps.lookup(idx)
	if st == nil || st.val == nil { // an absent page is all free
		return low, true
	}
	if s := st.val.nextFree(slot, c); s >= 0 {
		return idx.lsh(pageShift).add64(uint64(s)), true
	}
	return Count{}, false
}

// appendLeaseRuns appends the leases of runs to out.
func appendLeaseRuns(out []Lease, pool, owner string, runs []leaseRun) []Lease {
	if len(runs) == 0 {
		return out
	}
	out = slices.Grow(out, runsLen(runs))
	for i := range runs {
		r := &runs[i]
		t, ad := time.Unix(0, r.at).UTC(), netip.AddrFrom16(r.a16).Unmap()
		for k := uint64(0); k < r.n; k++ {
			out = append(out, Lease{Pool: pool, Addr: ad, Owner: owner, Generation: r.gen + k, Allocated: t})
			ad = ad.Next()
		}
	}
	return out
}

// classify explains why addr has no ordinal in the pool.
func (ps *poolState) classify(addr netip.Addr) error {
	for _, s := range ps.pool.subnets {
		if s.Contains(addr) {
			return fmt.Errorf("%w: %s in pool %q is not allocatable", ErrReserved, addr, ps.name)
		}
	}
	return fmt.Errorf("%w: %s is outside pool %q", ErrNotInPool, addr, ps.name)
}

func (ps *poolState) isQuarantined(addr netip.Addr) bool {
	for _, q := range ps.quarantine {
		if q.Addr == addr {
			return true
		}
	}
	return false
}

// verify runs the Verifier on candidates without the pool's locks, then
// quarantines those that failed. Called and returning with the locks of
// lockPool(ps, ref) held; on a MemoryStore the state is current again on
// return (or an error is returned).
func (a *Allocator) verify(ctx context.Context, ps *poolState, ref *ownerRef, cands []Count) ([]Count, error) {
	if ps.pending == nil {
		ps.pending = map[Count]struct{}{}
	}
	addrs := make([]netip.Addr, len(cands))
	for i, o := range cands {
		ps.pending[o] = struct{}{}
		addrs[i] = ps.pool.addr(o)
	}
	epoch := ps.rec.Epoch
	a.unlockPool(ps, ref)
	errs := make([]error, len(cands))
	var ctxErr error
	for i, ad := range addrs {
		if ctxErr = ctx.Err(); ctxErr != nil {
			break
		}
		errs[i] = a.opts.Verifier(ctx, ps.name, ad)
	}
	if ps.region != nil {
		if err := a.lockPool(ctx, ps, ref); err != nil {
			// Hold the locks again for the caller's deferred unlock.
			ps.mu.Lock()
			if ref.sh != nil {
				ref.sh.mu.Lock()
			}
			for _, o := range cands {
				delete(ps.pending, o)
			}
			return nil, err
		}
	} else {
		ps.mu.Lock()
	}
	for _, o := range cands {
		delete(ps.pending, o)
	}
	if ctxErr != nil {
		return nil, ctxErr
	}
	if ps.rec.Epoch != epoch || !ps.loaded {
		return nil, nil
	}
	var passed []Count
	var bad []QuarantineEntry
	var badOrds []Count
	now := a.opts.Clock()
	for i, o := range cands {
		if errs[i] == nil {
			passed = append(passed, o)
			continue
		}
		reason := errs[i].Error()
		if len(reason) > 200 {
			reason = reason[:200]
		}
		bad = append(bad, QuarantineEntry{Addr: addrs[i], At: now.UTC(), Reason: reason})
		badOrds = append(badOrds, o)
	}
	if len(bad) > 0 {
		if err := a.quarantine(ctx, ps, badOrds, bad); err != nil {
			return nil, err
		}
	}
	return passed, nil
}

// quarantine marks ords taken and records them as quarantined.
func (a *Allocator) quarantine(ctx context.Context, ps *poolState, ords []Count, es []QuarantineEntry) error {
	for attempt := 0; attempt <= a.opts.MaxRetries; attempt++ {
		if err := a.retryWait(ctx, attempt); err != nil {
			return err
		}
		b := &ps.tx
		b.reset(ps)
		var add []QuarantineEntry
		for i, o := range ords {
			if !b.isTaken(o) {
				b.take(o, false)
				add = append(add, es[i])
			}
		}
		if len(add) == 0 {
			return nil
		}
		q := append(slices.Clone(ps.quarantine), add...)
		b.conds = append(b.conds, Cond{Key: quarantineKey(ps.name), Revision: ps.qRev})
		b.ops = append(b.ops, Op{Key: quarantineKey(ps.name), Value: encodeQuarantine(q)})
		rev, err := a.commit(ctx, b, nil)
		if err == nil {
			ps.quarantine, ps.qRev = q, rev
			return nil
		}
		if !retryable(err) {
			return err
		}
	}
	return gaveUp(fmt.Sprintf("pool %q: quarantine", ps.name), a.opts.MaxRetries+1)
}

// Quarantined lists the pool's quarantined addresses.
func (a *Allocator) Quarantined(ctx context.Context, pool string) ([]QuarantineEntry, error) {
	ps, err := a.locked(ctx, pool)
	if err != nil {
		return nil, err
	}
	defer ps.mu.Unlock()
	if ps.region == nil { // a generic store's cache may be stale
		if err := a.load(ctx, ps); err != nil {
			return nil, err
		}
	}
	return slices.Clone(ps.quarantine), nil
}

// Unquarantine returns a quarantined address to the free set.
func (a *Allocator) Unquarantine(ctx context.Context, pool string, addr netip.Addr) error {
	addr = addr.WithZone("").Unmap()
	ps, err := a.locked(ctx, pool)
	if err != nil {
		return err
	}
	var ev *LevelEvent
	defer func() { ps.mu.Unlock(); a.fire(ev) }()
	for attempt := 0; attempt <= a.opts.MaxRetries; attempt++ {
		if err := a.retryWait(ctx, attempt); err != nil {
			return err
		}
		if !ps.isQuarantined(addr) {
			return fmt.Errorf("%w: %s is not quarantined in pool %q", ErrNotAllocated, addr, pool)
		}
		ord, ok := ps.pool.ordinal(addr)
		if !ok {
			return ps.classify(addr)
		}
		b := &ps.tx
		b.reset(ps)
		b.free(ord)
		q := slices.DeleteFunc(slices.Clone(ps.quarantine), func(e QuarantineEntry) bool { return e.Addr == addr })
		b.conds = append(b.conds, Cond{Key: quarantineKey(ps.name), Revision: ps.qRev})
		b.ops = append(b.ops, Op{Key: quarantineKey(ps.name), Value: encodeQuarantine(q)})
		rev, err := a.commit(ctx, b, nil)
		if err == nil {
			ps.quarantine, ps.qRev = q, rev
			ev = a.levelEvent(ps)
			return nil
		}
		if !retryable(err) {
			return err
		}
	}
	return gaveUp(fmt.Sprintf("pool %q: unquarantine %s", pool, addr), a.opts.MaxRetries+1)
}

// Release frees the lease's address if lease is still current: the owner
// holds that address with that generation. Otherwise it returns
// ErrStaleLease and changes nothing, so a late or repeated release can never
// free an address that was released and allocated again since.
func (a *Allocator) Release(ctx context.Context, lease Lease) error {
	_, err := a.release(ctx, lease.Pool, lease.Owner, func(e leaseEntry) bool {
		return e.addr() == lease.Addr.Unmap() && e.gen == lease.Generation
	}, true)
	return err
}

// ReleaseOwner frees every lease owner holds in pool (found through the owner
// index, one key per owner) in one transaction and returns them. An owner
// with no lease is not an error: the result is empty.
func (a *Allocator) ReleaseOwner(ctx context.Context, pool, owner string) ([]Lease, error) {
	return a.release(ctx, pool, owner, func(leaseEntry) bool { return true }, false)
}

// ReleaseAddr frees addr whoever holds it and returns the lease released.
// It finds the owner by scanning the pool's owner index, O(leases); prefer
// Release or ReleaseOwner where the owner is known.
func (a *Allocator) ReleaseAddr(ctx context.Context, pool string, addr netip.Addr) (Lease, error) {
	addr = addr.WithZone("").Unmap()
	for attempt := 0; attempt <= a.opts.MaxRetries; attempt++ {
		if err := a.retryWait(ctx, attempt); err != nil {
			return Lease{}, err
		}
		l, err := a.LeaseOf(ctx, pool, addr)
		if err != nil {
			return Lease{}, err
		}
		if err := a.Release(ctx, l); err != nil {
			if errors.Is(err, ErrStaleLease) {
				continue // changed hands meanwhile: look again
			}
			return Lease{}, err
		}
		return l, nil
	}
	return Lease{}, gaveUp(fmt.Sprintf("pool %q: release %s", pool, addr), a.opts.MaxRetries+1)
}

// release frees owner's leases that match. With exact (Release) no match
// is ErrStaleLease and the leases are not returned.
func (a *Allocator) release(ctx context.Context, pool, owner string, match func(leaseEntry) bool, exact bool) ([]Lease, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	ps, err := a.state(pool)
	if err != nil {
		return nil, err
	}
	ref := ps.ownerRef(owner)
	var (
		one     [1]leaseEntry
		entries []leaseEntry
		rev     uint64
	)
	shared := ps.region != nil
	if shared {
		// As allocateShared: the pool lock only around the page changes.
		if _, err := a.lockShared(ctx, ps, &ref, false, func() (bool, error) {
			var err error
			entries, rev, err = a.readOwnerRef(ctx, ps, &ref, one[:0])
			return false, err
		}); err != nil {
			return nil, err
		}
	} else if err := a.lockPool(ctx, ps, &ref); err != nil {
		return nil, err
	}
	var ev *LevelEvent
	poolLocked := true
	defer func() {
		if poolLocked {
			ps.mu.Unlock()
		}
		if shared {
			ref.sh.mu.Unlock()
		}
		a.fire(ev)
	}()
	for attempt := 0; attempt <= a.opts.MaxRetries; attempt++ {
		if err := a.retryWait(ctx, attempt); err != nil {
			return nil, err
		}
		if !shared {
			if entries, rev, err = a.readOwner(ctx, ref.key); err != nil {
				return nil, err
			}
		}
		var keep []leaseEntry
		var gone []Lease
		freed := 0
		b := &ps.tx
		b.reset(ps)
		snap := ps.snapshot()
		var now int64
		if ps.pool.spec.Strategy == FIFO {
			now = a.nowNano()
		}
		for _, e := range entries {
			if !match(e) {
				keep = append(keep, e)
				continue
			}
			ord, ok := ps.pool.ordinal(e.addr())
			if !ok {
				b.abort()
				ps.restore(snap)
				return nil, fmt.Errorf("%w: pool %q: lease %s of %q outside the pool", ErrCorrupt, pool, e.addr(), owner)
			}
			b.free(ord)
			ps.noteReleased(e.addr(), now)
			freed++
			if !exact {
				gone = append(gone, a.leaseOf(pool, owner, e))
			}
		}
		if freed == 0 {
			if exact {
				return nil, fmt.Errorf("%w: owner %q does not hold that lease in pool %q", ErrStaleLease, owner, pool)
			}
			return nil, nil
		}
		ps.strategyOps(b)
		b.setSnap(snap)
		oc := ownerChange{ref: &ref, rev: rev, keep: keep}
		if shared {
			rev, err := a.commitPages(ctx, b, &oc)
			if err != nil {
				return nil, err
			}
			ev = a.levelEvent(ps)
			ps.mu.Unlock()
			poolLocked = false
			writeOwner(&oc, nil, nil, rev)
			return gone, nil
		}
		if _, err := a.commit(ctx, b, &oc); err != nil {
			if !retryable(err) {
				return nil, err
			}
			continue
		}
		ev = a.levelEvent(ps)
		return gone, nil
	}
	return nil, gaveUp(fmt.Sprintf("pool %q: release for owner %q", pool, owner), a.opts.MaxRetries+1)
}

// noteReleased queues a released address for FIFO reuse.
func (ps *poolState) noteReleased(addr netip.Addr, now int64) {
	if ps.pool.spec.Strategy != FIFO {
		return
	}
	ps.fifo = append(ps.fifo, fifoEntryT{addr: addr, at: now})
	ps.fifoSet[addr] = now
	if len(ps.fifo) > fifoMax {
		delete(ps.fifoSet, ps.fifo[0].addr)
		ps.fifo = ps.fifo[1:]
	}
}

// Lookup returns owner's leases in pool, in allocation order.
func (a *Allocator) Lookup(ctx context.Context, pool, owner string) ([]Lease, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	es, _, err := a.readOwner(ctx, ownerKey(pool, owner))
	if err != nil {
		return nil, err
	}
	out := make([]Lease, len(es))
	for i, e := range es {
		out[i] = a.leaseOf(pool, owner, e)
	}
	return out, nil
}

// Leases yields every lease of pool, ordered by owner, from one store
// snapshot. It holds one owner's record in memory at a time.
func (a *Allocator) Leases(ctx context.Context, pool string) iter.Seq2[Lease, error] {
	return func(yield func(Lease, error) bool) {
		prefix := ownersPrefix(pool)
		for kv, err := range a.store.Scan(ctx, prefix) {
			if err != nil {
				yield(Lease{}, err)
				return
			}
			es, err := decodeOwner(kv.Value)
			if err != nil {
				yield(Lease{}, fmt.Errorf("%w: key %q: %v", ErrCorrupt, kv.Key, err))
				return
			}
			owner := kv.Key[len(prefix):]
			for _, e := range es {
				if !yield(a.leaseOf(pool, owner, e), nil) {
					return
				}
			}
		}
	}
}

// LeaseOf returns the lease holding addr, scanning the owner index
// (O(leases)). ErrNotAllocated if nobody holds it.
func (a *Allocator) LeaseOf(ctx context.Context, pool string, addr netip.Addr) (Lease, error) {
	addr = addr.WithZone("").Unmap()
	ps, err := a.locked(ctx, pool)
	if err != nil {
		return Lease{}, err
	}
	_, ok := ps.pool.ordinal(addr)
	cerr := error(nil)
	if !ok {
		cerr = ps.classify(addr)
	}
	ps.mu.Unlock()
	if cerr != nil {
		return Lease{}, cerr
	}
	for l, err := range a.Leases(ctx, pool) {
		if err != nil {
			return Lease{}, err
		}
		if l.Addr == addr {
			return l, nil
		}
	}
	return Lease{}, fmt.Errorf("%w: %s in pool %q", ErrNotAllocated, addr, pool)
}
