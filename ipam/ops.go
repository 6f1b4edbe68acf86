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
	return Lease{Pool: pool, Addr: e.addr, Owner: owner, Generation: e.gen, Allocated: time.Unix(0, e.at).UTC()}
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

// allocate appends the leases to out.
func (a *Allocator) allocate(ctx context.Context, pool, owner string, n int, want netip.Addr, out []Lease) ([]Lease, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	ps, err := a.locked(ctx, pool)
	if err != nil {
		return nil, err
	}
	var ev *LevelEvent
	defer func() {
		ps.mu.Unlock()
		a.fire(ev)
	}()
	okey := ownerKey(pool, owner)
	var (
		entries  []leaseEntry
		ownerRev uint64
		known    bool // entries/ownerRev were read (else: assumed absent)
		verified []Count
		epoch    = ps.rec.Epoch
		pageRead bool
		reloaded bool
	)
	if n > 1 || want.IsValid() || a.opts.Verifier != nil {
		if entries, ownerRev, err = a.readOwner(ctx, okey); err != nil {
			return nil, err
		}
		known = true
	}
outer:
	for attempt := 0; ; attempt++ {
		if attempt > a.opts.MaxRetries {
			return nil, fmt.Errorf("%w: pool %q: gave up after %d retries", ErrConflict, pool, attempt)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if ps.rec.Epoch != epoch {
			verified, epoch = nil, ps.rec.Epoch
		}
		if known {
			if want.IsValid() {
				for _, e := range entries {
					if e.addr == want {
						return append(out, a.leaseOf(pool, owner, e)), nil
					}
				}
			} else if len(entries) >= n {
				for i := 0; i < n; i++ {
					out = append(out, a.leaseOf(pool, owner, entries[i]))
				}
				return out, nil
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
					b.take(o, false)
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
			passed, err := a.verify(ctx, ps, cands)
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
		now := a.opts.Clock().UnixNano()
		var one [1]leaseEntry
		added := one[:0]
		if need > 1 {
			added = make([]leaseEntry, 0, need)
		}
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
					b.abort()
					ps.restore(snap)
					// Our view may be stale (other processes released
					// addresses): read the store once before giving up.
					if !reloaded {
						reloaded = true
						if err := a.load(ctx, ps); err != nil {
							return nil, err
						}
						continue outer
					}
					return nil, ps.exhausted(a.opts.Clock)
				}
			}
			gen := b.take(ord, true)
			ps.noteAllocated(ord, !want.IsValid())
			added = append(added, leaseEntry{addr: ps.pool.addr(ord), gen: gen, at: now})
		}
		ps.strategyOps(b)
		b.snap = &snap
		b.conds = append(b.conds, Cond{Key: okey, Revision: ownerRev})
		{
			val := make([]byte, 0, 1+ownerEntry*(len(entries)+len(added)))
			val = append(val, ownerVersion)
			for _, e := range entries {
				val = appendEntry(val, e)
			}
			for _, e := range added {
				val = appendEntry(val, e)
			}
			b.ops = append(b.ops, Op{Key: okey, Value: val})
		}
		if _, err := a.commit(ctx, b); err != nil {
			if !retryable(err) {
				return nil, err
			}
			var ce *ConflictError
			if errors.As(err, &ce) && ce.Key == okey {
				if entries, ownerRev, err = a.readOwner(ctx, okey); err != nil {
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
		for i := 0; i < n; i++ {
			var e leaseEntry
			if i < len(entries) {
				e = entries[i]
			} else {
				e = added[i-len(entries)]
			}
			out = append(out, a.leaseOf(pool, owner, e))
		}
		return out, nil
	}
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

// verify runs the Verifier on candidates without the pool's lock, then
// quarantines those that failed. Called and returning with ps.mu held.
func (a *Allocator) verify(ctx context.Context, ps *poolState, cands []Count) ([]Count, error) {
	if ps.pending == nil {
		ps.pending = map[Count]struct{}{}
	}
	addrs := make([]netip.Addr, len(cands))
	for i, o := range cands {
		ps.pending[o] = struct{}{}
		addrs[i] = ps.pool.addr(o)
	}
	epoch := ps.rec.Epoch
	ps.mu.Unlock()
	errs := make([]error, len(cands))
	var ctxErr error
	for i, ad := range addrs {
		if ctxErr = ctx.Err(); ctxErr != nil {
			break
		}
		errs[i] = a.opts.Verifier(ctx, ps.name, ad)
	}
	ps.mu.Lock()
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
		rev, err := a.commit(ctx, b)
		if err == nil {
			ps.quarantine, ps.qRev = q, rev
			return nil
		}
		if !retryable(err) {
			return err
		}
	}
	return fmt.Errorf("%w: pool %q: quarantine: too many retries", ErrConflict, ps.name)
}

// Quarantined lists the pool's quarantined addresses.
func (a *Allocator) Quarantined(ctx context.Context, pool string) ([]QuarantineEntry, error) {
	ps, err := a.locked(ctx, pool)
	if err != nil {
		return nil, err
	}
	defer ps.mu.Unlock()
	if err := a.load(ctx, ps); err != nil {
		return nil, err
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
		rev, err := a.commit(ctx, b)
		if err == nil {
			ps.quarantine, ps.qRev = q, rev
			ev = a.levelEvent(ps)
			return nil
		}
		if !retryable(err) {
			return err
		}
	}
	return fmt.Errorf("%w: pool %q: too many retries", ErrConflict, pool)
}

// Release frees the lease's address if lease is still current: the owner
// holds that address with that generation. Otherwise it returns
// ErrStaleLease and changes nothing, so a late or repeated release can never
// free an address that was released and allocated again since.
func (a *Allocator) Release(ctx context.Context, lease Lease) error {
	_, err := a.release(ctx, lease.Pool, lease.Owner, func(e leaseEntry) bool {
		return e.addr == lease.Addr.Unmap() && e.gen == lease.Generation
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
	return Lease{}, fmt.Errorf("%w: pool %q: too many retries", ErrConflict, pool)
}

func (a *Allocator) release(ctx context.Context, pool, owner string, match func(leaseEntry) bool, exact bool) ([]Lease, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	ps, err := a.locked(ctx, pool)
	if err != nil {
		return nil, err
	}
	var ev *LevelEvent
	defer func() { ps.mu.Unlock(); a.fire(ev) }()
	okey := ownerKey(pool, owner)
	for attempt := 0; attempt <= a.opts.MaxRetries; attempt++ {
		entries, rev, err := a.readOwner(ctx, okey)
		if err != nil {
			return nil, err
		}
		var keep []leaseEntry
		var gone []Lease
		b := &ps.tx
		b.reset(ps)
		snap := ps.snapshot()
		now := a.opts.Clock().UnixNano()
		for _, e := range entries {
			if !match(e) {
				keep = append(keep, e)
				continue
			}
			ord, ok := ps.pool.ordinal(e.addr)
			if !ok {
				b.abort()
				return nil, fmt.Errorf("%w: pool %q: lease %s of %q outside the pool", ErrCorrupt, pool, e.addr, owner)
			}
			b.free(ord)
			ps.noteReleased(e.addr, now)
			gone = append(gone, a.leaseOf(pool, owner, e))
		}
		if len(gone) == 0 {
			if exact {
				return nil, fmt.Errorf("%w: owner %q does not hold that lease in pool %q", ErrStaleLease, owner, pool)
			}
			return nil, nil
		}
		ps.strategyOps(b)
		b.snap = &snap
		b.conds = append(b.conds, Cond{Key: okey, Revision: rev})
		if len(keep) == 0 {
			b.ops = append(b.ops, Op{Key: okey, Delete: true})
		} else {
			b.ops = append(b.ops, Op{Key: okey, Value: encodeOwner(keep)})
		}
		if _, err := a.commit(ctx, b); err != nil {
			if !retryable(err) {
				return nil, err
			}
			continue
		}
		ev = a.levelEvent(ps)
		return gone, nil
	}
	return nil, fmt.Errorf("%w: pool %q: too many retries", ErrConflict, pool)
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
