package logscan

import "math/bits"

// connCache holds the sshd connection contexts (one per host+program+pid):
// a 4-way set-associative table of fixed size. A full set drops its least
// recently used entry. Lookups and inserts cost a few comparisons and never
// allocate.
type connCache struct {
	meta    []connMeta // 4 per set: one cache line
	states  []connState
	mask    uint64 // number of sets - 1
	tick    uint64
	evicted int64
}

type connMeta struct {
	hash uint64
	used uint64 // tick of last use; 0 = empty
}

const connWays = 4

func newConnCache(capacity int) *connCache {
	sets := 1
	for sets*connWays < capacity {
		sets <<= 1
	}
	return &connCache{meta: make([]connMeta, sets*connWays), states: make([]connState, sets*connWays), mask: uint64(sets - 1)}
}

func (cc *connCache) set(h uint64) (int, []connMeta) {
	i := int(h&cc.mask) * connWays
	return i, cc.meta[i : i+connWays]
}

// get returns the context for key hash h, or nil. Keys are told apart by
// their 64-bit hash alone: two live connections would have to collide in
// 64 bits to be confused.
func (cc *connCache) get(h uint64) *connState {
	base, set := cc.set(h)
	for i := range set {
		s := &set[i]
		if s.hash == h && s.used != 0 {
			cc.tick++
			s.used = cc.tick
			return &cc.states[base+i]
		}
	}
	return nil
}

// add returns a zeroed context for h, replacing the least recently
// used entry of its set when the set is full.
func (cc *connCache) add(h uint64) *connState {
	base, set := cc.set(h)
	v := 0
	for i := range set {
		if set[i].used == 0 {
			v = i
			break
		}
		if set[i].used < set[v].used {
			v = i
		}
	}
	if set[v].used != 0 {
		cc.evicted++
	}
	cc.tick++
	set[v] = connMeta{hash: h, used: cc.tick}
	c := &cc.states[base+v]
	uh, users := c.uh[:0], c.users[:0]
	*c = connState{uh: uh, users: users}
	return c
}

// remove drops the context c (a pointer returned by get or add).
func (cc *connCache) remove(h uint64, c *connState) {
	base, set := cc.set(h)
	for i := range set {
		if &cc.states[base+i] == c {
			set[i].used = 0
			return
		}
	}
}

func (cc *connCache) reset() {
	for i := range cc.meta {
		cc.meta[i].used = 0
	}
	cc.tick, cc.evicted = 0, 0
}

// hashConnKey hashes a connection key (host, program and pid) for the
// connection table. It is a fixed function, not a seeded one: which set a
// connection lands in decides which one a full set evicts, and a scan of
// the same log must give the same findings every time. (The keys come
// from syslog headers, not from text an attacker writes.) Eight bytes a
// round, each round a bijection of the state, then mix64.
func hashConnKey(s string) uint64 {
	h := uint64(len(s)) * 0x9e3779b97f4a7c15
	for ; len(s) >= 8; s = s[8:] {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = bits.RotateLeft64((h^w)*0x9e3779b97f4a7c15, 29)
	}
	var t uint64
	for i := len(s) - 1; i >= 0; i-- {
		t = t<<8 | uint64(s[i])
	}
	return mix64(h ^ t*0xc2b2ae3d27d4eb4f)
}
