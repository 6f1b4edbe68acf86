package pcapscan

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// table is a fixed-size, set-associative hash table: a key lives in one of the
// `ways` slots of its bucket, and inserting into a full bucket evicts the slot
// used least recently. Its memory is fixed when it is made, whatever is put in it.
type table[K comparable, V any] struct {
	slots []slot[K, V]
	mask  uint64
	evict func(*K, *V) // called before a slot in use is overwritten
}

type slot[K comparable, V any] struct {
	used bool
	last int64 // time of last use, for eviction
	key  K
	val  V
}

const ways = 8

// newTable returns a table with room for at least n entries (rounded up to a
// power of two, at least one bucket).
func newTable[K comparable, V any](n int, evict func(*K, *V)) *table[K, V] {
	if n < ways {
		n = ways
	}
	size := 1 << bits.Len(uint(n-1))
	return &table[K, V]{slots: make([]slot[K, V], size), mask: uint64(size/ways - 1), evict: evict}
}

// get returns the value for key, or nil.
func (t *table[K, V]) get(h uint64, key K) *V {
	b := int(h&t.mask) * ways
	for i := b; i < b+ways; i++ {
		s := &t.slots[i]
		if s.used && s.key == key {
			return &s.val
		}
	}
	return nil
}

// upsert returns the value for key, inserting a zero value (and reporting true)
// when it is absent. now stamps the slot for eviction.
func (t *table[K, V]) upsert(h uint64, key K, now int64) (*V, bool) {
	b := int(h&t.mask) * ways
	victim := -1
	for i := b; i < b+ways; i++ {
		s := &t.slots[i]
		if !s.used {
			if victim < 0 || t.slots[victim].used {
				victim = i
			}
			continue
		}
		if s.key == key {
			s.last = now
			return &s.val, false
		}
		if victim < 0 || (t.slots[victim].used && s.last < t.slots[victim].last) {
			victim = i
		}
	}
	s := &t.slots[victim]
	if s.used && t.evict != nil {
		t.evict(&s.key, &s.val)
	}
	var zero V
	s.used, s.last, s.key, s.val = true, now, key, zero
	return &s.val, true
}

// remove drops the entry for key, if present.
func (t *table[K, V]) remove(h uint64, key K) {
	b := int(h&t.mask) * ways
	for i := b; i < b+ways; i++ {
		s := &t.slots[i]
		if s.used && s.key == key {
			var zero V
			s.used, s.val = false, zero
			return
		}
	}
}

// each calls f for every entry; f returns false to remove the entry.
func (t *table[K, V]) each(f func(*K, *V) bool) {
	for i := range t.slots {
		s := &t.slots[i]
		if s.used && !f(&s.key, &s.val) {
			var zero V
			s.used, s.val = false, zero
		}
	}
}

func (t *table[K, V]) reset() { clear(t.slots) }

// Hashing: keys are mixed with a fixed multiply-xorshift so that runs are
// reproducible (eviction order, and so the output, does not depend on a seed).

func mix(h, v uint64) uint64 {
	h ^= v
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>29
}

func hashAddr(h uint64, a netip.Addr) uint64 {
	b := a.As16()
	return mix(mix(h, binary.LittleEndian.Uint64(b[:8])), binary.LittleEndian.Uint64(b[8:]))
}

func hashMAC(h uint64, m mac) uint64 {
	return mix(h, uint64(m[0])|uint64(m[1])<<8|uint64(m[2])<<16|uint64(m[3])<<24|uint64(m[4])<<32|uint64(m[5])<<40)
}

func hashSeg(s segment) uint64 {
	return mix(mix(0x51ed27, uint64(s.ifindex)), uint64(s.iface)<<32|uint64(s.vlan)<<16|uint64(s.outer))
}

func hashBytes(b []byte) uint64 {
	h := uint64(len(b))
	for len(b) >= 8 {
		h = mix(h, binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	var tail [8]byte
	copy(tail[:], b)
	return mix(mix(h, binary.LittleEndian.Uint64(tail[:])), 0x2545f491)
}
