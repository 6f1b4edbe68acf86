package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
	"time"
)

// maxProblems bounds the problems Verify collects.
const maxProblems = 1000

// Verify checks every invariant of the allocator's store; see VerifyStore.
func (a *Allocator) Verify(ctx context.Context) error { return VerifyStore(ctx, a.store) }

// VerifyStore reads the whole store and checks every invariant, without
// changing anything:
//
//   - every key decodes and belongs to a pool; pages belong to the pool's
//     current epoch and index range; page counts match their bits;
//   - allocations ⊆ allocatable (so ∩ reserved = ∅): every lease's address
//     is allocatable, and its page bit is set;
//   - one owner per address: no address appears in two leases, in one pool
//     or (for pools whose allocatable sets overlap) across pools;
//   - counts consistent: every taken bit has exactly one lease or one
//     quarantine entry; generations are non-zero and not above their page's
//     counter.
//
// It returns nil when the store is sound, or a *VerifyError (ErrCorrupt)
// listing up to 1,000 problems. Cost: O(keys); memory O(pages + leases of
// overlapping pools).
func VerifyStore(ctx context.Context, store Store) error {
	v := &verifier{}
	type poolInfo struct {
		rec   *poolRecord
		pool  *Pool
		pages map[Count]pageBytes
		owned map[Count]*[pageWords]uint64
	}
	pools := map[string]*poolInfo{}
	var order []string
	kvs, err := collect(ctx, store, keyPrefix)
	if err != nil {
		return err
	}
	// Pass 1: pool records.
	for _, kv := range kvs {
		name, ok := strings.CutPrefix(kv.Key, poolPrefix)
		if !ok {
			continue
		}
		rec, err := decodePoolRecord(kv.Value)
		if err != nil {
			v.add(Problem{Pool: name, Key: kv.Key, Msg: err.Error()})
			continue
		}
		if rec.Name != name {
			v.add(Problem{Pool: name, Key: kv.Key, Msg: fmt.Sprintf("record names pool %q", rec.Name)})
		}
		info := &poolInfo{rec: rec, pages: map[Count]pageBytes{}, owned: map[Count]*[pageWords]uint64{}}
		if !rec.Deleted {
			s, err := specFromJSON(name, &rec.Spec)
			if err == nil {
				info.pool, err = Compile(s)
			}
			if err != nil {
				v.add(Problem{Pool: name, Key: kv.Key, Msg: "stored spec: " + err.Error()})
				continue
			}
		}
		pools[name] = info
		order = append(order, name)
	}
	// Pass 2: pages.
	for _, kv := range kvs {
		rest, ok := strings.CutPrefix(kv.Key, pagePrefix)
		if !ok {
			continue
		}
		parts := strings.Split(rest, "/")
		info := pools[parts[0]]
		if len(parts) != 3 || info == nil {
			v.add(Problem{Key: kv.Key, Msg: "page of no pool"})
			continue
		}
		if r := info.rec; (r.Sweep != nil && parts[1] == fmt.Sprintf("%016x", *r.Sweep)) ||
			(r.Pending != nil && parts[1] == fmt.Sprintf("%016x", r.Epoch+1)) {
			continue // a change carried out in steps: old pages to sweep, new ones being written
		}
		if info.pool == nil {
			v.add(Problem{Pool: parts[0], Key: kv.Key, Msg: "page of a removed pool"})
			continue
		}
		if parts[1] != fmt.Sprintf("%016x", info.rec.Epoch) {
			v.add(Problem{Pool: parts[0], Key: kv.Key, Msg: fmt.Sprintf("page of epoch %s, pool is at %016x", parts[1], info.rec.Epoch)})
			continue
		}
		idx, ok := parsePageIndex(parts[2])
		npages := info.pool.allocatable.add64(pageSlots - 1).rsh(pageShift)
		if !ok || idx.Cmp(npages) >= 0 {
			v.add(Problem{Pool: parts[0], Key: kv.Key, Msg: "page index out of range"})
			continue
		}
		capacity := pageSlots
		if idx.Cmp(npages.sub64(1)) == 0 && info.pool.allocatable.lo&(pageSlots-1) != 0 {
			capacity = int(info.pool.allocatable.lo & (pageSlots - 1))
		}
		if err := checkPage(kv.Value, capacity); err != nil {
			v.add(Problem{Pool: parts[0], Key: kv.Key, Msg: err.Error()})
			continue
		}
		pg := pageBytes(kv.Value)
		if info.rec.Pending == nil && pg.gen() < info.rec.GenFloor {
			v.add(Problem{Pool: parts[0], Key: kv.Key, Msg: fmt.Sprintf("page generation %d below the pool's floor %d", pg.gen(), info.rec.GenFloor)})
		}
		info.pages[idx] = pg
	}
	// Pass 3: owners and quarantine.
	claim := func(name string, info *poolInfo, addr netip.Addr, key, what string) (Count, bool) {
		ord, ok := info.pool.ordinal(addr)
		if !ok {
			v.add(Problem{Pool: name, Key: key, Addr: addr.String(), Msg: what + " is not allocatable"})
			return Count{}, false
		}
		idx, slot := ord.rsh(pageShift), int(ord.lo&(pageSlots-1))
		pg := info.pages[idx]
		if pg == nil || !pg.has(slot) {
			v.add(Problem{Pool: name, Key: key, Addr: addr.String(), Msg: what + " but its page bit is clear"})
		}
		o := info.owned[idx]
		if o == nil {
			o = new([pageWords]uint64)
			info.owned[idx] = o
		}
		if o[slot>>6]&(1<<(slot&63)) != 0 {
			v.add(Problem{Pool: name, Key: key, Addr: addr.String(), Msg: what + " but the address already has an owner"})
			return ord, false
		}
		o[slot>>6] |= 1 << (slot & 63)
		return ord, true
	}
	for _, kv := range kvs {
		if rest, ok := strings.CutPrefix(kv.Key, ownerPrefix); ok {
			name, owner, _ := strings.Cut(rest, "/")
			info := pools[name]
			if info == nil || info.pool == nil {
				v.add(Problem{Pool: name, Key: kv.Key, Msg: "owner record of no pool"})
				continue
			}
			if owner == "" {
				v.add(Problem{Pool: name, Key: kv.Key, Msg: "owner record with an empty owner"})
			}
			es, err := decodeOwner(kv.Value)
			if err != nil {
				v.add(Problem{Pool: name, Key: kv.Key, Msg: err.Error()})
				continue
			}
			for _, e := range es {
				ord, ok := claim(name, info, e.addr(), kv.Key, "leased to "+owner)
				if !ok {
					continue
				}
				pg := info.pages[ord.rsh(pageShift)]
				if e.gen == 0 || (pg != nil && e.gen > pg.gen()) {
					v.add(Problem{Pool: name, Key: kv.Key, Addr: e.addr().String(), Msg: fmt.Sprintf("generation %d never issued", e.gen)})
				}
			}
			continue
		}
		if name, ok := strings.CutPrefix(kv.Key, quarantinePrefix); ok {
			info := pools[name]
			if info == nil || info.pool == nil {
				v.add(Problem{Pool: name, Key: kv.Key, Msg: "quarantine record of no pool"})
				continue
			}
			qs, err := decodeQuarantine(kv.Value)
			if err != nil {
				v.add(Problem{Pool: name, Key: kv.Key, Msg: err.Error()})
				continue
			}
			for _, q := range qs {
				claim(name, info, q.Addr, kv.Key, "quarantined")
			}
			continue
		}
		for _, p := range []string{fifoPrefix, cursorPrefix} {
			if name, ok := strings.CutPrefix(kv.Key, p); ok {
				if info := pools[name]; info == nil || info.pool == nil {
					v.add(Problem{Pool: name, Key: kv.Key, Msg: "record of no pool"})
				} else if p == fifoPrefix {
					if _, _, err := decodeFIFO(kv.Value); err != nil {
						v.add(Problem{Pool: name, Key: kv.Key, Msg: err.Error()})
					}
				} else if _, ok := decodeCursor(kv.Value); !ok {
					v.add(Problem{Pool: name, Key: kv.Key, Msg: "malformed cursor record"})
				}
			}
		}
		if !knownKey(kv.Key) {
			v.add(Problem{Key: kv.Key, Msg: "unknown key"})
		}
	}
	// Pass 4: every taken bit has an owner or a quarantine entry.
	for _, name := range order {
		info := pools[name]
		if info.pool == nil {
			continue
		}
		for idx, pg := range info.pages {
			o := info.owned[idx]
			for w := 0; w < pageWords; w++ {
				var ow uint64
				if o != nil {
					ow = o[w]
				}
				if orphan := pg.word(w) &^ ow; orphan != 0 {
					ord := idx.lsh(pageShift).add64(uint64(w*64 + bits.TrailingZeros64(orphan)))
					v.add(Problem{Pool: name, Addr: info.pool.addr(ord).String(),
						Msg: fmt.Sprintf("%d taken address(es) have no owner", bits.OnesCount64(orphan))})
				}
			}
		}
	}
	// Pass 5: one owner per address across pools that overlap.
	var live []*Pool
	for _, name := range order {
		if p := pools[name].pool; p != nil {
			live = append(live, p)
		}
	}
	for _, ov := range FindOverlaps(live...) {
		if ov.Kind != AllocatableOverlap {
			continue
		}
		pa, pb := pools[ov.A.Name], pools[ov.B.Name]
		for idx, pg := range pa.pages {
			if err := ctx.Err(); err != nil {
				return err
			}
			for w := 0; w < pageWords; w++ {
				for word := pg.word(w); word != 0; word &= word - 1 {
					ad := pa.pool.addr(idx.lsh(pageShift).add64(uint64(w*64 + bits.TrailingZeros64(word))))
					if takenIn(pb.pool, pb.pages, ad) {
						v.add(Problem{Pool: ov.A.Name, Addr: ad.String(), Msg: fmt.Sprintf("also taken in overlapping pool %q", ov.B.Name)})
					}
				}
			}
		}
	}
	if len(v.problems) > 0 {
		return &VerifyError{Problems: v.problems}
	}
	return nil
}

func takenIn(p *Pool, pages map[Count]pageBytes, a netip.Addr) bool {
	ord, ok := p.ordinal(a)
	if !ok {
		return false
	}
	pg := pages[ord.rsh(pageShift)]
	return pg != nil && pg.has(int(ord.lo&(pageSlots-1)))
}

func knownKey(k string) bool {
	if k == poolsetKey {
		return true
	}
	for _, p := range []string{poolPrefix, pagePrefix, ownerPrefix, quarantinePrefix, fifoPrefix, cursorPrefix} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

type verifier struct{ problems []Problem }

func (v *verifier) add(p Problem) {
	if len(v.problems) < maxProblems {
		v.problems = append(v.problems, p)
	}
}

func collect(ctx context.Context, store Store, prefix string) ([]KV, error) {
	var out []KV
	for kv, err := range store.Scan(ctx, prefix) {
		if err != nil {
			return nil, err
		}
		out = append(out, kv)
	}
	return out, nil
}

// ReconcileResult reports one Reconcile pass.
type ReconcileResult struct {
	Checked  int     `json:"checked"`  // leases old enough to be checked
	Suspects []Lease `json:"suspects"` // seen dead for the first time this pass
	Released []Lease `json:"released"` // seen dead on this and the previous pass, released
	Errors   int     `json:"errors"`   // isLive calls that failed (treated as live)
}

type suspectKey struct {
	pool, owner string
	addr        netip.Addr
	gen         uint64
}

// Reconcile is one garbage-collection pass over every pool: it asks isLive
// about each lease at least minAge old, and releases a lease only when it
// was reported dead on this pass and on the previous one, with the same
// generation; the release itself checks the generation again, so a lease
// re-allocated meanwhile is never touched. Leases younger than minAge (an
// allocation racing the pass) are skipped. An isLive error counts as live.
// Call it periodically; suspects are kept in the Allocator between passes.
func (a *Allocator) Reconcile(ctx context.Context, isLive func(context.Context, Lease) (bool, error), minAge time.Duration) (ReconcileResult, error) {
	var res ReconcileResult
	pools, err := a.Pools(ctx)
	if err != nil {
		return res, err
	}
	now := a.opts.Clock()
	a.reconMu.Lock()
	defer a.reconMu.Unlock()
	next := map[suspectKey]bool{}
	for _, p := range pools {
		var leases []Lease
		for l, err := range a.Leases(ctx, p.Name) {
			if err != nil {
				return res, err
			}
			leases = append(leases, l)
		}
		for _, l := range leases {
			if now.Sub(l.Allocated) < minAge {
				continue
			}
			res.Checked++
			alive, err := isLive(ctx, l)
			if err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				res.Errors++
				continue
			}
			if alive {
				continue
			}
			k := suspectKey{l.Pool, l.Owner, l.Addr, l.Generation}
			if !a.suspects[k] {
				next[k] = true
				res.Suspects = append(res.Suspects, l)
				continue
			}
			switch err := a.Release(ctx, l); {
			case err == nil:
				res.Released = append(res.Released, l)
			case errors.Is(err, ErrStaleLease):
			default:
				return res, err
			}
		}
	}
	a.suspects = next
	return res, nil
}
