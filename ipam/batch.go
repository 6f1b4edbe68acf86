package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"time"
)

// batch is an allocator transaction being built under the pool's lock.
//
// On a generic store it is copy-on-write page overlays plus the extra
// conditions and operations, committed as one compare-and-swap. On a
// MemoryStore (inplace) it changes the store's own pages directly and keeps
// an undo log; commit then only stamps the revision and applies the record
// writes, all under the locks that were held since the state was read, so
// its conditions hold by construction.
//
// Either way the summaries (full tree, open set, taken) follow the changes
// and abort rolls everything back.
type batch struct {
	ps      *poolState
	inplace bool
	hasSnap bool
	snap    strategySnapshot // restored on a failed commit, before refreshing
	pages   []overlay
	index   map[Count]int
	last    int   // index of the overlay used last, -1 if none
	hint    Count // Sequential: every ordinal below is taken in this batch
	undo    []undoRec
	low0    Count // ps.lowFree at reset, restored by abort
	conds   []Cond
	ops     []Op
}

// pageSeen caches one lookup in a pool's page map (allocations tend to
// stay on one page); whoever adds or removes a key of the map resets it.
type pageSeen struct {
	idx Count
	st  *pageState
	ok  bool
}

// lookup returns ps.pages[idx] through the cache.
func (ps *poolCore) lookup(idx Count) *pageState {
	if ps.seen.ok && ps.seen.idx == idx {
		return ps.seen.st
	}
	st := ps.pages[idx]
	ps.seen = pageSeen{idx: idx, st: st, ok: true}
	return st
}

type overlay struct {
	idx     Count
	val     pageBytes
	st      *pageState // cached page; nil if absent from the cache (generic)
	created bool       // inplace: the page was created by this batch
}

// undoRec reverses one in-place change to a page word.
type undoRec struct {
	st   *pageState
	idx  Count
	word int
	mask uint64
	gen  uint64 // the page's generation counter before (undoSet)
	op   uint8
}

const (
	undoSet   = iota // bits set, generations issued
	undoMark         // bits set without generations
	undoClear        // bits cleared
)

// ownerRef addresses one owner's record: its store key (generic store) or
// its shard of the MemoryStore's owner index.
type ownerRef struct {
	owner string
	key   string      // generic: ownerKey(pool, owner)
	sh    *ownerShard // MemoryStore
	h     uint64
	pos   ownerPos // MemoryStore: where the last read found it
}

func (ps *poolState) ownerRef(owner string) ownerRef {
	if r := ps.region; r != nil {
		sh, h := r.shard(owner)
		sh.prefetchFind(h)
		return ownerRef{owner: owner, sh: sh, h: h}
	}
	return ownerRef{owner: owner, key: ownerKey(ps.name, owner)}
}

// ownerChange is the owner record a commit writes: keep followed by add
// (both empty: delete the record), conditioned on the record's revision.
// It is passed to commit rather than kept in the batch, so that callers'
// small buffers stay on their stacks.
type ownerChange struct {
	ref  *ownerRef
	rev  uint64
	keep []leaseEntry
	add  []leaseEntry
}

func (b *batch) reset(ps *poolState) {
	b.ps = ps
	b.inplace = ps.region != nil
	b.hasSnap = false
	b.snap = strategySnapshot{}
	b.last = -1
	b.hint = Count{}
	b.pages = b.pages[:0]
	b.index = nil
	b.undo = b.undo[:0]
	b.low0 = ps.lowFree
	b.conds = b.conds[:0]
	b.ops = b.ops[:0]
}

// setSnap saves the strategy state to restore if the commit fails.
func (b *batch) setSnap(s strategySnapshot) {
	if st := b.ps.pool.spec.Strategy; st == RoundRobin || st == FIFO { // the others have none
		b.snap, b.hasSnap = s, true
	}
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

// page returns the writable overlay of page idx, creating it from the cache
// (generic) or the page itself, created if absent (inplace).
func (b *batch) page(idx Count) (pageBytes, *pageState) {
	if i := b.find(idx); i >= 0 {
		return b.pages[i].val, b.pages[i].st
	}
	st := b.ps.lookup(idx)
	var v pageBytes
	created := false
	switch {
	case b.inplace:
		if st == nil {
			st = &pageState{val: newPage(b.ps.rec.GenFloor)}
			b.ps.pages[idx] = st
			b.ps.seen = pageSeen{}
			created = true
		}
		v = st.val
	case st != nil && st.val != nil:
		v = make(pageBytes, pageSize)
		copy(v, st.val)
	default:
		v = newPage(b.ps.rec.GenFloor)
	}
	b.pages = append(b.pages, overlay{idx: idx, val: v, st: st, created: created})
	b.last = len(b.pages) - 1
	if b.index != nil {
		b.index[idx] = len(b.pages) - 1
	} else if len(b.pages) > 8 {
		b.index = make(map[Count]int, 16)
		for i := range b.pages {
			b.index[b.pages[i].idx] = i
		}
	}
	return v, st
}

// view returns the current bytes of page idx: overlay, cache, or nil.
func (b *batch) view(idx Count) pageBytes {
	if i := b.find(idx); i >= 0 {
		return b.pages[i].val
	}
	if st := b.ps.lookup(idx); st != nil {
		return st.val
	}
	return nil
}

// take marks ordinal ord and returns its new generation (gen), or 0. With
// gen the ordinal must be free; without, marking a taken one changes
// nothing (so an undo never frees what it did not take).
func (b *batch) take(ord Count, gen bool) uint64 {
	idx, slot := ord.rsh(pageShift), int(ord.lo&(pageSlots-1))
	p, st := b.page(idx)
	if !gen && p.has(slot) {
		return 0
	}
	old := p.taken()
	var g uint64
	if b.inplace {
		op := uint8(undoMark)
		if gen {
			op = undoSet
		}
		b.undo = append(b.undo, undoRec{st: st, idx: idx, word: slot >> 6, mask: 1 << (slot & 63), gen: p.gen(), op: op})
	}
	if gen {
		g = p.set(slot)
	} else {
		p.mark(slot)
	}
	b.ps.account(idx, old, old+1)
	if ord == b.ps.lowFree {
		b.ps.lowFree = ord.add64(1)
	}
	return g
}

// free clears ordinal ord.
func (b *batch) free(ord Count) {
	idx, slot := ord.rsh(pageShift), int(ord.lo&(pageSlots-1))
	p, st := b.page(idx)
	if !p.has(slot) {
		return
	}
	if b.inplace {
		b.undo = append(b.undo, undoRec{st: st, idx: idx, word: slot >> 6, mask: 1 << (slot & 63), op: undoClear})
	}
	old := p.taken()
	p.clear(slot)
	b.ps.account(idx, old, old-1)
	if ord.Cmp(b.ps.lowFree) < 0 {
		b.ps.lowFree = ord
	}
}

// isTaken reports whether ord is taken in the current view.
func (b *batch) isTaken(ord Count) bool {
	v := b.view(ord.rsh(pageShift))
	return v != nil && v.has(int(ord.lo&(pageSlots-1)))
}

// takeSequential takes the first n free ordinals at or after b.hint, a
// bitmap word (up to 64 addresses) at a time, and gives their leases
// (generations in address order) to sink. It returns false when fewer are
// free; the caller then aborts.
func (b *batch) takeSequential(n int, sink *leaseSink) bool {
	ps := b.ps
	from := b.hint
	if from.Cmp(ps.lowFree) < 0 {
		from = ps.lowFree
	}
	idx := from.rsh(pageShift)
	slot := int(from.lo & (pageSlots - 1))
	for n > 0 {
		next, ok := ps.full.next(idx)
		if !ok || next.Cmp(ps.npages) >= 0 {
			return false
		}
		if next != idx {
			idx, slot = next, 0
		}
		c := ps.capacity(idx)
		p, st := b.page(idx)
		base := idx.lsh(pageShift)
		for w := slot >> 6; w<<6 < c && n > 0; w++ {
			free := ^p.word(w)
			if w == slot>>6 {
				free &= ^uint64(0) << (slot & 63)
			}
			if lim := c - w<<6; lim < 64 {
				free &= 1<<lim - 1
			}
			if free == 0 {
				continue
			}
			sel := lowestBits(free, n)
			k := bits.OnesCount64(sel)
			old, g := p.taken(), p.gen()
			if b.inplace {
				b.undo = append(b.undo, undoRec{st: st, idx: idx, word: w, mask: sel, gen: g, op: undoSet})
			}
			p.setWord(w, p.word(w)|sel)
			p.setTaken(old + k)
			p.setGen(g + uint64(k))
			ps.account(idx, old, old+k)
			for m := sel; m != 0; {
				// Each stretch of adjacent bits is a run of ordinals.
				at := bits.TrailingZeros64(m)
				l := bits.TrailingZeros64(^(m >> at))
				ord := base.add64(uint64(w<<6 + at))
				sink.add(ord, g+1, l)
				g += uint64(l)
				b.hint = ord.add64(uint64(l))
				if at+l == 64 {
					break
				}
				m &^= (1<<l - 1) << at
			}
			n -= k
		}
		idx, slot = idx.add64(1), 0
	}
	// Every ordinal below from was taken, and the run took every free one
	// from there to the last it took.
	ps.lowFree = b.hint
	return true
}

// leaseRun is n leases of consecutive addresses from a16 with consecutive
// generations from gen, allocated together at at: how a sequential batch
// is kept (a /8 filled in batches is some 16,000 runs).
type leaseRun struct {
	a16 [16]byte
	gen uint64
	at  int64
	n   uint64
}

// each calls fn with every lease of the run.
func (r *leaseRun) each(fn func(leaseEntry)) {
	c := addrToCount(netip.AddrFrom16(r.a16))
	for i := uint64(0); i < r.n; i++ {
		fn(leaseEntry{a16: countToAddr(c.add64(i), false).As16(), gen: r.gen + i, at: r.at})
	}
}

// runsLen returns the number of leases in runs.
func runsLen(runs []leaseRun) int {
	n := 0
	for i := range runs {
		n += int(runs[i].n)
	}
	return n
}

// expandRuns appends the leases of runs to es.
func expandRuns(es []leaseEntry, runs []leaseRun) []leaseEntry {
	es = slices.Grow(es, runsLen(runs))
	for i := range runs {
		runs[i].each(func(e leaseEntry) { es = append(es, e) })
	}
	return es
}

// leaseSink collects the leases takeSequential hands out, as entries or
// (asRuns) as runs, split where the pool's address segments end.
type leaseSink struct {
	pool   *Pool
	now    int64
	asRuns bool
	es     []leaseEntry
	runs   []leaseRun
	next   Count // address after the last run's end
	seg    int
	segOK  bool
}

// add takes the n ordinals from ord with generations from gen.
func (s *leaseSink) add(ord Count, gen uint64, n int) {
	p := s.pool
	for n > 0 {
		if !s.segOK || ord.Cmp(p.segs[s.seg].base) < 0 || ord.Sub(p.segs[s.seg].base).Cmp(p.segs[s.seg].to.Sub(p.segs[s.seg].from)) > 0 {
			s.seg, s.segOK = p.segment(ord), true
		}
		sg := &p.segs[s.seg]
		off := ord.Sub(sg.base)
		k := n
		if room := sg.to.Sub(sg.from).Sub(off).add64(1); room.Cmp(CountOf(uint64(k))) < 0 {
			k = int(room.lo)
		}
		a := sg.from.Add(off)
		if s.asRuns {
			if l := len(s.runs) - 1; l >= 0 && s.next == a && s.runs[l].gen+s.runs[l].n == gen && s.runs[l].at == s.now {
				s.runs[l].n += uint64(k)
			} else {
				s.runs = append(s.runs, leaseRun{a16: countToAddr(a, p.is4).As16(), gen: gen, at: s.now, n: uint64(k)})
			}
			s.next = a.add64(uint64(k))
		} else {
			for i := 0; i < k; i++ {
				s.es = append(s.es, newLeaseEntry(countToAddr(a.add64(uint64(i)), p.is4), gen+uint64(i), s.now))
			}
		}
		ord, gen, n = ord.add64(uint64(k)), gen+uint64(k), n-k
	}
}

// lowestBits returns the lowest n set bits of x (all of them if fewer).
func lowestBits(x uint64, n int) uint64 {
	if bits.OnesCount64(x) <= n {
		return x
	}
	var r uint64
	for ; n > 0; n-- {
		low := x & -x
		r |= low
		x ^= low
	}
	return r
}

// txn assembles a generic store's transaction: the pool record's revision,
// every touched page's revision, the owner record, and the extra
// conditions and operations.
func (b *batch) txn(oc *ownerChange) Txn {
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
	if oc != nil {
		conds = append(conds, Cond{Key: oc.ref.key, Revision: oc.rev})
		if len(oc.keep)+len(oc.add) == 0 {
			ops = append(ops, Op{Key: oc.ref.key, Delete: true})
		} else {
			v := make([]byte, 1, 1+ownerEntry*(len(oc.keep)+len(oc.add)))
			v[0] = ownerVersion
			for _, e := range oc.keep {
				v = appendEntry(v, e)
			}
			for _, e := range oc.add {
				v = appendEntry(v, e)
			}
			ops = append(ops, Op{Key: oc.ref.key, Value: v})
		}
	}
	b.conds, b.ops = conds, ops
	return Txn{Conds: conds, Ops: ops}
}

// committed installs the changes as the cached pages at revision rev.
func (b *batch) committed(rev uint64) {
	ps := b.ps
	for _, o := range b.pages {
		st := o.st
		if !b.inplace && ps.pages[o.idx] != st {
			ps.pages[o.idx] = st
			ps.seen = pageSeen{}
		}
		st.rev = rev
		if !b.inplace {
			st.val = o.val
		}
	}
	b.pages = b.pages[:0]
	b.index = nil
	b.last = -1
	b.undo = b.undo[:0]
}

// abort rolls the pages (inplace) and the summaries back.
func (b *batch) abort() {
	ps := b.ps
	if b.inplace {
		for i := len(b.undo) - 1; i >= 0; i-- {
			u := &b.undo[i]
			p := u.st.val
			old := p.taken()
			k := bits.OnesCount64(u.mask)
			switch u.op {
			case undoSet, undoMark:
				p.setWord(u.word, p.word(u.word)&^u.mask)
				p.setTaken(old - k)
				if u.op == undoSet {
					p.setGen(u.gen)
				}
			case undoClear:
				p.setWord(u.word, p.word(u.word)|u.mask)
				p.setTaken(old + k)
			}
			ps.account(u.idx, old, p.taken())
		}
		for _, o := range b.pages {
			if o.created {
				delete(ps.pages, o.idx)
				ps.seen = pageSeen{}
			}
		}
		b.undo = b.undo[:0]
	} else {
		for _, o := range b.pages {
			var old int
			if st := o.st; st != nil && st.val != nil {
				old = st.val.taken()
			}
			ps.account(o.idx, o.val.taken(), old)
		}
	}
	b.pages = b.pages[:0]
	b.index = nil
	b.last = -1
	b.hint = Count{}
	if b.low0.Cmp(ps.lowFree) < 0 {
		ps.lowFree = b.low0
	}
}

// commit runs the batch. On a generic store a conflict refreshes what the
// conflicting key caches and is returned (errors.Is ErrConflict) for the
// caller to retry.
func (a *Allocator) commit(ctx context.Context, b *batch, oc *ownerChange) (uint64, error) {
	if b.inplace {
		return a.commitShared(ctx, b, oc)
	}
	rev, err := a.store.Commit(ctx, b.txn(oc))
	if err == nil {
		if b.ps.contended != nil {
			if b.ps.sinceContend++; b.ps.sinceContend >= contendedFor {
				b.ps.contended, b.ps.sinceContend = nil, 0
			}
		}
		b.committed(rev)
		b.ps.wrote(b.ops, rev)
		return rev, nil
	}
	b.abort()
	if b.hasSnap {
		b.ps.restore(b.snap)
	}
	var ce *ConflictError
	if errors.As(err, &ce) {
		if rerr := a.refreshKey(ctx, b.ps, ce.Key); rerr != nil {
			return 0, rerr
		}
	}
	return 0, err
}

// commitShared commits an inplace batch into the MemoryStore region it
// changed. Called with the region's pool lock and (if the batch writes an
// owner record) the owner's shard lock held since the state was read: the
// pool record, the pages, the strategy records and the owner record all
// still have the revisions the batch read, which is the condition a
// generic commit would check.
func (a *Allocator) commitShared(ctx context.Context, b *batch, oc *ownerChange) (uint64, error) {
	rev, err := a.commitPages(ctx, b, oc)
	if err == nil && oc != nil {
		writeOwner(oc, nil, nil, rev)
	}
	return rev, err
}

// commitPages is the part of commitShared that needs the pool lock: it
// stamps the pages and writes the strategy records at a new revision.
// The caller then writes oc's owner record at that revision (writeOwner)
// before it unlocks the owner's shard, which it may do after unlocking the
// pool: Store methods lock every shard of a region, so none sees one
// without the other. Nothing is changed if it fails.
func (a *Allocator) commitPages(ctx context.Context, b *batch, oc *ownerChange) (uint64, error) {
	ps := b.ps
	r := ps.region
	fail := func(err error) (uint64, error) {
		b.abort()
		if b.hasSnap {
			ps.restore(b.snap)
		}
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if r.store.closed.Load() {
		return fail(errClosed)
	}
	if oc != nil && !oc.ref.sh.room(oc.ref.pos) { // an owner found always has room
		return fail(fmt.Errorf("ipam: pool %q: owner index shard full (%d owners)", ps.name, ownerMaxSlots))
	}
	rev := r.store.rev.Add(1)
	b.committed(rev)
	for _, op := range b.ops {
		for fam, k := range r.keys {
			if k == op.Key {
				if op.Delete {
					r.small[fam] = memEntry{}
				} else {
					r.small[fam] = memEntry{rev: rev, val: op.Value}
				}
			}
		}
	}
	ps.wrote(b.ops, rev)
	return rev, nil
}

// writeOwner writes oc's owner record at revision rev, adopting adopt or
// runs as the record if not nil (see ownerShard.write); the owner's shard
// is locked, and commitPages checked there is room.
func writeOwner(oc *ownerChange, adopt []leaseEntry, runs []leaseRun, rev uint64) {
	oc.ref.sh.write(oc.ref.h, oc.ref.owner, oc.ref.pos, rev, oc.keep, oc.add, adopt, runs)
	oc.ref.pos = ownerPos{}
}

// wrote records the revision of the strategy records a commit wrote.
func (ps *poolCore) wrote(ops []Op, rev uint64) {
	for _, op := range ops {
		if op.Key == fifoKey(ps.name) {
			ps.fifoRev = rev
		}
	}
}

// refreshKey re-reads one conflicting key of a generic store into the
// cache.
func (a *Allocator) refreshKey(ctx context.Context, ps *poolState, key string) error {
	if len(key) > len(ps.pagePrefix) && key[:len(ps.pagePrefix)] == ps.pagePrefix {
		idx, ok := parsePageIndex(key[len(ps.pagePrefix):])
		if ok {
			kvs, err := a.store.Get(ctx, key)
			if err != nil {
				return err
			}
			ps.noteContended(idx)
			return ps.applyPage(idx, key, kvs[0].Revision, kvs[0].Value)
		}
	}
	switch key {
	case quarantineKey(ps.name), fifoKey(ps.name), poolKey(ps.name):
		return a.load(ctx, ps)
	}
	return nil // owner keys: the caller re-reads them
}

// contendedFor is how many commits a page lost to another process stays
// avoided by Random (see poolCore.contended).
const contendedFor = 256

// noteContended records that a commit on page idx lost to another process.
func (ps *poolCore) noteContended(idx Count) {
	if ps.contended == nil || len(ps.contended) >= 64 {
		ps.contended = map[Count]struct{}{}
	}
	ps.contended[idx] = struct{}{}
	ps.sinceContend = 0
}

// isContended reports whether page idx lost a commit lately.
func (ps *poolCore) isContended(idx Count) bool {
	_, ok := ps.contended[idx]
	return ok
}

// applyPage installs a value of page idx read from the store (rev 0:
// absent) in a generic store's cache, with its summaries.
func (ps *poolCore) applyPage(idx Count, key string, rev uint64, val []byte) error {
	if rev != 0 {
		if err := checkPage(val, ps.capacity(idx)); err != nil {
			return fmt.Errorf("%w: key %q: %v", ErrCorrupt, key, err)
		}
	}
	st := ps.pages[idx]
	old := 0
	if base := idx.lsh(pageShift); base.Cmp(ps.lowFree) < 0 {
		ps.lowFree = base // others may have freed addresses there
	}
	if st == nil {
		st = &pageState{key: key}
		ps.pages[idx] = st
		ps.seen = pageSeen{}
	} else if st.val != nil {
		old = st.val.taken()
	}
	st.rev, st.val = rev, pageBytes(val)
	if rev == 0 {
		st.val = nil
	}
	nw := 0
	if st.val != nil {
		nw = st.val.taken()
	}
	ps.account(idx, old, nw)
	return nil
}

// retryable reports whether err is a conflict worth retrying.
func retryable(err error) bool { return errors.Is(err, ErrConflict) }

// retryWait waits before retry number retry (1 for the first) of an
// operation after a conflict: not at all for the first, then
// RetryBackoff doubling to 64 times it, jittered into the upper half of the
// wait. It returns ctx's error if ctx ends first.
func (a *Allocator) retryWait(ctx context.Context, retry int) error {
	if retry <= 1 || a.opts.RetryBackoff < 0 {
		return ctx.Err()
	}
	d := a.opts.RetryBackoff << min(retry-2, 6)
	a.randMu.Lock()
	j := time.Duration(a.opts.Rand.Uint64() % uint64(d/2+1))
	a.randMu.Unlock()
	t := time.NewTimer(d/2 + j)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gaveUp is the error of an operation that lost the store's compare on
// every one of its attempts.
func gaveUp(what string, attempts int) error {
	return fmt.Errorf("%w: %s: gave up after %d attempts", ErrConflict, what, attempts)
}
