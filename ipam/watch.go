package ipam

import (
	"context"
	"strings"
)

// startWatch makes sure the allocator follows the store's changes, if the
// store is a Watcher: one stream for every key under ipam/v1/, started
// before the first pool is read (so no change between the read and the
// stream is missed) and again after the stream broke. Called from load,
// with a pool lock held; onWatch never holds watchMu and a pool lock at
// once, so the two cannot deadlock.
func (a *Allocator) startWatch(ctx context.Context) {
	if a.watcher == nil {
		return
	}
	a.watchMu.Lock()
	defer a.watchMu.Unlock()
	if a.watching {
		return
	}
	// The stream outlives this call (its stop is not kept): it ends with
	// the store.
	if _, err := a.watcher.Watch(ctx, keyPrefix, a.onWatch); err != nil {
		if a.opts.Logger != nil {
			a.opts.Logger.Warn("ipam: cannot watch the store; the cache follows it through conflicts only", "err", err)
		}
		return
	}
	a.watching = true
}

// onWatch applies one change to the cached state of the pool it belongs
// to: a page newer than the cached one replaces it (so Stats and the
// allocator's choices see other processes' allocations); a newer pool,
// quarantine or FIFO record marks the pool for a reload. Changes this
// allocator made itself are no newer than its cache and are skipped. When
// the stream ends (Err), every pool is marked for a reload, which starts a
// new stream.
//
// The cache only steers the choice of addresses: every allocation still
// commits with the revisions it read as conditions, so an event that comes
// late, or never, costs at most a lost compare and a retry.
func (a *Allocator) onWatch(ev WatchEvent) {
	if ev.Err != nil {
		a.watchMu.Lock()
		a.watching = false
		a.watchMu.Unlock()
		for _, ps := range *a.pools.Load() {
			if ps.region == nil {
				ps.mu.Lock()
				ps.loaded = false
				ps.mu.Unlock()
			}
		}
		if a.opts.Logger != nil {
			a.opts.Logger.Warn("ipam: store watch ended; pools will be read again", "err", ev.Err)
		}
		return
	}
	var name, rest string
	var family int
	for fam, p := range []string{pagePrefix, poolPrefix, quarantinePrefix, fifoPrefix} {
		if r, ok := strings.CutPrefix(ev.Key, p); ok {
			family, rest = fam, r
			break
		}
	}
	if rest == "" {
		return // owner records are read from the store; cursors are hints
	}
	name = rest
	if family == 0 {
		name, _, _ = strings.Cut(rest, "/")
	}
	ps := (*a.pools.Load())[name]
	if ps == nil || ps.region != nil {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.loaded {
		return // the next use reads everything
	}
	switch family {
	case 0:
		idx, ok := Count{}, false
		if r, in := strings.CutPrefix(ev.Key, ps.pagePrefix); in {
			idx, ok = parsePageIndex(r)
		}
		if !ok {
			return // another epoch: the pool record's change reloads
		}
		if st := ps.pages[idx]; st != nil && ev.Revision <= st.rev {
			return
		}
		rev, val := ev.Revision, ev.Value
		if ev.Deleted {
			rev, val = 0, nil
		}
		if err := ps.applyPage(idx, ev.Key, rev, val); err != nil {
			ps.loaded = false
		}
	case 1:
		if ev.Revision > ps.recRev {
			ps.loaded = false
		}
	case 2:
		if ev.Revision > ps.qRev {
			ps.loaded = false
		}
	case 3:
		if ev.Revision > ps.fifoRev {
			ps.loaded = false
		}
	}
}
