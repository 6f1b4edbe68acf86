package ipam

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
)

// AddPool adds the pool, or changes it if a pool of that name exists, and
// returns the allocatable overlaps with the store's other pools.
//
// Overlaps are handled by Options.Overlap: RejectOverlap (the default)
// returns an *OverlapError (ErrOverlap) and changes nothing. A change that
// would reserve or cut away allocated addresses returns a *SpecChangeError
// (ErrAlreadyAllocated) listing the affected leases and changes nothing.
// Otherwise the allocation state is carried over to the new spec in one
// transaction (O(addresses taken)); generations keep growing. Adding an
// identical spec is a no-op. Pool additions and changes are serialized
// through one store key, so two processes cannot add overlapping pools at
// once.
func (a *Allocator) AddPool(ctx context.Context, spec PoolSpec) ([]Overlap, error) {
	p, err := Compile(spec)
	if err != nil {
		return nil, err
	}
	name := p.spec.Name
	sj := specToJSON(&p.spec)
	for attempt := 0; attempt <= a.opts.MaxRetries; attempt++ {
		if err := a.retryWait(ctx, attempt); err != nil {
			return nil, err
		}
		rec, kvs, err := a.getPoolRecord(ctx, name, poolsetKey)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			if rec.Sweep != nil {
				if err := a.sweep(ctx, name); err != nil {
					return nil, err
				}
				continue
			}
			if rec.Pending != nil {
				if err := a.completePending(ctx, name); err != nil && !errors.As(err, new(*SpecChangeError)) {
					return nil, err
				}
				continue
			}
		}
		others, err := a.otherPools(ctx, name)
		if err != nil {
			return nil, err
		}
		ovs := overlapsWith(p, others)
		if len(ovs) > 0 {
			switch a.opts.Overlap {
			case RejectOverlap:
				return ovs, &OverlapError{Pool: name, Overlaps: ovs}
			case WarnOverlap:
				if a.opts.Logger != nil {
					for _, o := range ovs {
						a.opts.Logger.Warn("ipam: pools overlap", "pool", name, "other", o.B.Name, "ranges", o.RangeString())
					}
				}
			}
		}
		setOp := Op{Key: poolsetKey, Value: binary.BigEndian.AppendUint64(nil, kvs[1].Revision+1)}
		setCond := Cond{Key: poolsetKey, Revision: kvs[1].Revision}
		if rec != nil && !rec.Deleted {
			if sameSpec(&rec.Spec, &sj) {
				return ovs, nil
			}
			rec.Pending = &pendingChange{Spec: &sj}
			_, err := a.store.Commit(ctx, Txn{
				Conds: []Cond{{Key: poolKey(name), Revision: kvs[0].Revision}, setCond},
				Ops:   []Op{{Key: poolKey(name), Value: encodePoolRecord(rec)}, setOp},
			})
			if retryable(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if err := a.completePending(ctx, name); err != nil {
				return nil, err
			}
			a.invalidate(name)
			return ovs, nil
		}
		nr := &poolRecord{Name: name, Spec: sj}
		if rec != nil { // re-created after removal: continue above old generations
			nr.Epoch, nr.GenFloor = rec.Epoch+1, rec.GenFloor
		}
		_, err = a.store.Commit(ctx, Txn{
			Conds: []Cond{{Key: poolKey(name), Revision: kvs[0].Revision}, setCond},
			Ops:   []Op{{Key: poolKey(name), Value: encodePoolRecord(nr)}, setOp},
		})
		if retryable(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		a.invalidate(name)
		return ovs, nil
	}
	return nil, gaveUp(fmt.Sprintf("add pool %q", name), a.opts.MaxRetries+1)
}

func sameSpec(x, y *specJSON) bool {
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(bx) == string(by)
}

// invalidate drops the cached state of a pool so the next use reloads it.
func (a *Allocator) invalidate(name string) {
	ps, err := a.state(name)
	if err != nil {
		return
	}
	ps.mu.Lock()
	ps.loaded = false
	ps.mu.Unlock()
}

// otherPools compiles every live pool in the store except name.
func (a *Allocator) otherPools(ctx context.Context, name string) ([]*Pool, error) {
	var out []*Pool
	for kv, err := range a.store.Scan(ctx, poolPrefix) {
		if err != nil {
			return nil, err
		}
		n := kv.Key[len(poolPrefix):]
		if n == name {
			continue
		}
		rec, err := decodePoolRecord(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrCorrupt, kv.Key, err)
		}
		if rec.Deleted {
			continue
		}
		s, err := specFromJSON(n, &rec.Spec)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrCorrupt, kv.Key, err)
		}
		p, err := Compile(s)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrCorrupt, kv.Key, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Pools returns the specs of every pool in the store, by name.
func (a *Allocator) Pools(ctx context.Context) ([]PoolSpec, error) {
	var out []PoolSpec
	for kv, err := range a.store.Scan(ctx, poolPrefix) {
		if err != nil {
			return nil, err
		}
		rec, err := decodePoolRecord(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrCorrupt, kv.Key, err)
		}
		if rec.Deleted {
			continue
		}
		s, err := specFromJSON(rec.Name, &rec.Spec)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrCorrupt, kv.Key, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// RemovePool removes an empty pool. A pool with leases returns a
// *SpecChangeError listing them. Quarantined addresses are dropped. A
// tombstone keeps the pool's generation floor, so a pool re-created under
// the same name never reissues a generation.
func (a *Allocator) RemovePool(ctx context.Context, name string) error {
	for attempt := 0; attempt <= a.opts.MaxRetries; attempt++ {
		if err := a.retryWait(ctx, attempt); err != nil {
			return err
		}
		rec, kvs, err := a.getPoolRecord(ctx, name, poolsetKey)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("%w %q", ErrUnknownPool, name)
		}
		if rec.Sweep != nil {
			if err := a.sweep(ctx, name); err != nil {
				return err
			}
			continue
		}
		if rec.Deleted {
			return fmt.Errorf("%w %q", ErrUnknownPool, name)
		}
		if rec.Pending != nil {
			if err := a.completePending(ctx, name); err != nil && !errors.As(err, new(*SpecChangeError)) {
				return err
			}
			continue
		}
		rec.Pending = &pendingChange{Remove: true}
		_, err = a.store.Commit(ctx, Txn{
			Conds: []Cond{{Key: poolKey(name), Revision: kvs[0].Revision}, {Key: poolsetKey, Revision: kvs[1].Revision}},
			Ops: []Op{{Key: poolKey(name), Value: encodePoolRecord(rec)},
				{Key: poolsetKey, Value: binary.BigEndian.AppendUint64(nil, kvs[1].Revision+1)}},
		})
		if retryable(err) {
			continue
		}
		if err != nil {
			return err
		}
		err = a.completePending(ctx, name)
		a.invalidate(name)
		return err
	}
	return gaveUp(fmt.Sprintf("remove pool %q", name), a.opts.MaxRetries+1)
}

// completePending finishes (or aborts) a spec change or removal recorded in
// the pool record. The pool is frozen while the record is pending: every
// allocation and release conditions on the record's revision, so the scan
// below sees a state nobody can change. Any allocator finding a pending
// record runs this, so a crash between freezing and migrating leaves no
// stuck pool. Returns *SpecChangeError if the change was aborted because it
// would cut away leases.
func (a *Allocator) completePending(ctx context.Context, name string) error {
	for attempt := 0; attempt <= a.opts.MaxRetries; attempt++ {
		if err := a.retryWait(ctx, attempt); err != nil {
			return err
		}
		rec, kvs, err := a.getPoolRecord(ctx, name, quarantineKey(name), fifoKey(name), cursorKey(name))
		if err != nil || rec == nil {
			return err
		}
		if rec.Pending == nil {
			return nil
		}
		if rec.Sweep != nil { // an earlier change's pages go first
			if err := a.sweep(ctx, name); err != nil {
				return err
			}
			continue
		}
		oldSpec, err := specFromJSON(name, &rec.Spec)
		if err != nil {
			return fmt.Errorf("%w: pool %q: %v", ErrCorrupt, name, err)
		}
		oldPool, err := Compile(oldSpec)
		if err != nil {
			return fmt.Errorf("%w: pool %q: %v", ErrCorrupt, name, err)
		}
		var newPool *Pool
		if !rec.Pending.Remove {
			ns, err := specFromJSON(name, rec.Pending.Spec)
			if err != nil {
				return fmt.Errorf("%w: pool %q: pending spec: %v", ErrCorrupt, name, err)
			}
			if newPool, err = Compile(ns); err != nil {
				return fmt.Errorf("%w: pool %q: pending spec: %v", ErrCorrupt, name, err)
			}
		}
		// Read the frozen state.
		prefix := pagesPrefix(name, rec.Epoch)
		var conds []Cond
		var ops []Op
		floor := rec.GenFloor
		var takenAddrs []Count // ordinals in the new pool
		var cut []Count        // old ordinals not allocatable in the new pool
		for kv, err := range a.store.Scan(ctx, prefix) {
			if err != nil {
				return err
			}
			idx, ok := parsePageIndex(kv.Key[len(prefix):])
			if !ok || len(kv.Value) != pageSize {
				return fmt.Errorf("%w: pool %q: bad page key %q", ErrCorrupt, name, kv.Key)
			}
			conds = append(conds, Cond{Key: kv.Key, Revision: kv.Revision})
			ops = append(ops, Op{Key: kv.Key, Delete: true})
			pg := pageBytes(kv.Value)
			floor = max(floor, pg.gen())
			for w := 0; w < pageWords; w++ {
				word := pg.word(w)
				for word != 0 {
					bit := bits.TrailingZeros64(word)
					word &= word - 1
					ord := idx.lsh(pageShift).add64(uint64(w*64 + bit))
					if newPool == nil {
						cut = append(cut, ord)
						continue
					}
					if n, ok := newPool.ordinal(oldPool.addr(ord)); ok {
						takenAddrs = append(takenAddrs, n)
					} else {
						cut = append(cut, ord)
					}
				}
			}
		}
		quar, err := decodeQuarantine(kvs[1].Value)
		if err != nil {
			return fmt.Errorf("%w: pool %q: %v", ErrCorrupt, name, err)
		}
		isQ := map[Count]bool{}
		for _, q := range quar {
			if o, ok := oldPool.ordinal(q.Addr); ok {
				isQ[o] = true
			}
		}
		var affected []Lease
		cutSet := map[Count]bool{}
		for _, o := range cut {
			if !isQ[o] {
				cutSet[o] = true
			}
		}
		if len(cutSet) > 0 {
			for l, err := range a.Leases(ctx, name) {
				if err != nil {
					return err
				}
				if o, ok := oldPool.ordinal(l.Addr); ok && cutSet[o] {
					affected = append(affected, l)
				}
			}
			if len(affected) == 0 { // taken bits without an owner: corrupt
				return fmt.Errorf("%w: pool %q: %d taken address(es) have no owner", ErrCorrupt, name, len(cutSet))
			}
			rec.Pending = nil
			_, err := a.store.Commit(ctx, Txn{
				Conds: []Cond{{Key: poolKey(name), Revision: kvs[0].Revision}},
				Ops:   []Op{{Key: poolKey(name), Value: encodePoolRecord(rec)}},
			})
			if retryable(err) {
				continue
			}
			if err != nil {
				return err
			}
			return &SpecChangeError{Pool: name, Affected: affected}
		}
		// Build the new epoch.
		nr := &poolRecord{Name: name, Spec: rec.Spec, Epoch: rec.Epoch + 1, GenFloor: floor + 1}
		conds = append(conds, Cond{Key: poolKey(name), Revision: kvs[0].Revision},
			Cond{Key: quarantineKey(name), Revision: kvs[1].Revision},
			Cond{Key: fifoKey(name), Revision: kvs[2].Revision})
		if rec.Pending.Remove {
			nr.Deleted = true
			for _, k := range []string{quarantineKey(name), fifoKey(name), cursorKey(name)} {
				ops = append(ops, Op{Key: k, Delete: true})
			}
		} else {
			nr.Spec = *rec.Pending.Spec
			np := pagesPrefix(name, nr.Epoch)
			pages := map[Count]pageBytes{}
			for _, o := range takenAddrs {
				idx := o.rsh(pageShift)
				pg := pages[idx]
				if pg == nil {
					pg = newPage(nr.GenFloor)
					pages[idx] = pg
				}
				pg.mark(int(o.lo & (pageSlots - 1)))
			}
			idxs := make([]Count, 0, len(pages))
			for idx := range pages {
				idxs = append(idxs, idx)
			}
			slices.SortFunc(idxs, Count.Cmp)
			for _, idx := range idxs {
				ops = append(ops, Op{Key: pageKey(np, idx), Value: pages[idx]})
			}
			var keepQ []QuarantineEntry
			for _, q := range quar {
				if newPool.Contains(q.Addr) {
					keepQ = append(keepQ, q)
				}
			}
			if len(keepQ) > 0 {
				ops = append(ops, Op{Key: quarantineKey(name), Value: encodeQuarantine(keepQ)})
			} else {
				ops = append(ops, Op{Key: quarantineKey(name), Delete: true})
			}
			if kvs[2].Revision != 0 {
				fresh, es, err := decodeFIFO(kvs[2].Value)
				if err != nil {
					return fmt.Errorf("%w: pool %q: %v", ErrCorrupt, name, err)
				}
				nf := newPool.allocatable
				if fresh.Cmp(oldPool.allocatable) < 0 {
					nf = newPool.ordinalCeil(oldPool.addr(fresh))
				}
				es = slices.DeleteFunc(es, func(e fifoEntryT) bool { return !newPool.Contains(e.addr) })
				ops = append(ops, Op{Key: fifoKey(name), Value: encodeFIFO(nf, es)})
			}
		}
		ops = append(ops, Op{Key: poolKey(name), Value: encodePoolRecord(nr)})
		if limit := a.txnLimit(); limit > 0 && (len(conds) > limit || len(ops) > limit) {
			err := a.completeInSteps(ctx, name, rec, nr, kvs, conds, ops, limit)
			if retryable(err) {
				continue
			}
			return err
		}
		_, err = a.store.Commit(ctx, Txn{Conds: conds, Ops: ops})
		if retryable(err) {
			continue
		}
		return err
	}
	return gaveUp(fmt.Sprintf("pool %q: completing a change", name), a.opts.MaxRetries+1)
}

// txnLimit returns the store's limit on conditions and operations per
// transaction (0: none).
func (a *Allocator) txnLimit() int {
	if l, ok := a.store.(TxnLimiter); ok {
		return l.MaxTxnOps()
	}
	return 0
}

// completeInSteps carries out a pending change whose single transaction
// (conds, ops: the old pages' conditions and deletions, the new epoch's
// pages, the records) would exceed the store's limit, in steps that each
// leave the pool consistent:
//
//  1. the new epoch's pages, in transactions of at most limit puts, each
//     conditioned on the pending pool record (the pool stays frozen, and
//     nothing reads the new epoch yet; a crash here leaves the record
//     pending, and whoever completes it writes the same pages again);
//  2. one transaction switching the pool record to the new epoch (with the
//     quarantine and FIFO records), marking the old epoch for sweeping;
//  3. the old epoch's pages deleted (sweep), which anyone finding the mark
//     finishes after a crash.
func (a *Allocator) completeInSteps(ctx context.Context, name string, rec, nr *poolRecord, kvs []KV, conds []Cond, ops []Op, limit int) error {
	recCond := Cond{Key: poolKey(name), Revision: kvs[0].Revision}
	oldPrefix := pagesPrefix(name, rec.Epoch)
	var puts, final []Op
	for _, op := range ops {
		switch {
		case strings.HasPrefix(op.Key, oldPrefix):
			// deleted by the sweep
		case strings.HasPrefix(op.Key, pagePrefix):
			puts = append(puts, op)
		case op.Key != poolKey(name):
			final = append(final, op)
		}
	}
	for len(puts) > 0 {
		n := min(len(puts), limit)
		if _, err := a.store.Commit(ctx, Txn{Conds: []Cond{recCond}, Ops: puts[:n]}); err != nil {
			return err
		}
		puts = puts[n:]
	}
	old := rec.Epoch
	nr.Sweep = &old
	final = append(final, Op{Key: poolKey(name), Value: encodePoolRecord(nr)})
	var finalConds []Cond
	for _, c := range conds {
		if !strings.HasPrefix(c.Key, pagePrefix) {
			finalConds = append(finalConds, c)
		}
	}
	if _, err := a.store.Commit(ctx, Txn{Conds: finalConds, Ops: final}); err != nil {
		return err
	}
	return a.sweep(ctx, name)
}

// sweep deletes the pages of the epoch the pool record marks for sweeping
// (a change completed in steps) and clears the mark. Pages of an earlier
// epoch are read by nobody, so they are deleted without conditions, at
// most the store's transaction limit at a time.
func (a *Allocator) sweep(ctx context.Context, name string) error {
	limit := a.txnLimit()
	if limit <= 0 {
		limit = 1024
	}
	for attempt := 0; attempt <= a.opts.MaxRetries; attempt++ {
		if err := a.retryWait(ctx, attempt); err != nil {
			return err
		}
		rec, kvs, err := a.getPoolRecord(ctx, name)
		if err != nil || rec == nil {
			return err
		}
		if rec.Sweep == nil {
			return nil
		}
		if *rec.Sweep >= rec.Epoch && !rec.Deleted {
			return fmt.Errorf("%w: pool %q: sweep of epoch %d at epoch %d", ErrCorrupt, name, *rec.Sweep, rec.Epoch)
		}
		var dels []Op
		flush := func() error {
			if len(dels) == 0 {
				return nil
			}
			_, err := a.store.Commit(ctx, Txn{Ops: dels})
			dels = dels[:0]
			return err
		}
		for kv, err := range a.store.Scan(ctx, pagesPrefix(name, *rec.Sweep)) {
			if err != nil {
				return err
			}
			if dels = append(dels, Op{Key: kv.Key, Delete: true}); len(dels) == limit {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		rec.Sweep = nil
		_, err = a.store.Commit(ctx, Txn{Conds: []Cond{{Key: poolKey(name), Revision: kvs[0].Revision}}, Ops: []Op{{Key: poolKey(name), Value: encodePoolRecord(rec)}}})
		if !retryable(err) {
			return err
		}
	}
	return gaveUp(fmt.Sprintf("pool %q: deleting the pages of an earlier epoch", name), a.opts.MaxRetries+1)
}

// ordinalCeil returns the ordinal of the first allocatable address >= addr
// (Size() if none).
func (p *Pool) ordinalCeil(addr netip.Addr) Count {
	if addr.Is4() != p.is4 {
		return p.allocatable
	}
	v := addrToCount(addr)
	for _, s := range p.segs {
		if v.Cmp(s.to) <= 0 {
			if v.Cmp(s.from) <= 0 {
				return s.base
			}
			return s.base.Add(v.Sub(s.from))
		}
	}
	return p.allocatable
}

// getPoolRecord reads pool name's record together with keys, in one Get:
// kvs[0] is the record's key, the rest follow in order. rec is nil when the
// pool has no record; a record that does not decode is ErrCorrupt.
func (a *Allocator) getPoolRecord(ctx context.Context, name string, keys ...string) (rec *poolRecord, kvs []KV, err error) {
	kvs, err = a.store.Get(ctx, append([]string{poolKey(name)}, keys...)...)
	if err != nil {
		return nil, nil, err
	}
	if kvs[0].Revision == 0 {
		return nil, kvs, nil
	}
	if rec, err = decodePoolRecord(kvs[0].Value); err != nil {
		return nil, nil, fmt.Errorf("%w: pool %q: %v", ErrCorrupt, name, err)
	}
	return rec, kvs, nil
}
