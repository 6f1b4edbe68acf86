package logscan

// connCache holds the sshd connection contexts (one per host+program+pid):
// a 4-way set-associative table of fixed size. A full set drops its least
// recently used entry. Lookups and inserts cost a few comparisons and never
// allocate.
type connCache struct {
	slots   []connSlot
	mask    uint64 // number of sets - 1
	tick    uint64
	evicted int64
}

type connSlot struct {
	hash uint64
	used uint64 // tick of last use; 0 = empty
	c    connState
}

const connWays = 4

func newConnCache(capacity int) *connCache {
	sets := 1
	for sets*connWays < capacity {
		sets <<= 1
	}
	return &connCache{slots: make([]connSlot, sets*connWays), mask: uint64(sets - 1)}
}

func (cc *connCache) set(h uint64) []connSlot {
	i := (h & cc.mask) * connWays
	return cc.slots[i : i+connWays]
}

// get returns the context for key hash h, or nil. Keys are told apart by
// their 64-bit hash alone: two live connections would have to collide in
// 64 bits to be confused.
func (cc *connCache) get(h uint64) *connState {
	set := cc.set(h)
	for i := range set {
		s := &set[i]
		if s.used != 0 && s.hash == h {
			cc.tick++
			s.used = cc.tick
			return &s.c
		}
	}
	return nil
}

// add returns a zeroed context for h, replacing the least recently
// used entry of its set when the set is full.
func (cc *connCache) add(h uint64) *connState {
	set := cc.set(h)
	victim := &set[0]
	for i := range set {
		s := &set[i]
		if s.used == 0 {
			victim = s
			break
		}
		if s.used < victim.used {
			victim = s
		}
	}
	if victim.used != 0 {
		cc.evicted++
	}
	uh, users := victim.c.uh[:0], victim.c.users[:0]
	cc.tick++
	*victim = connSlot{hash: h, used: cc.tick}
	victim.c.uh, victim.c.users = uh, users
	return &victim.c
}

// remove drops the context c (a pointer returned by get or add).
func (cc *connCache) remove(h uint64, c *connState) {
	set := cc.set(h)
	for i := range set {
		s := &set[i]
		if &s.c == c {
			s.used = 0
			return
		}
	}
}

func (cc *connCache) reset() {
	for i := range cc.slots {
		cc.slots[i].used = 0
	}
	cc.tick, cc.evicted = 0, 0
}
