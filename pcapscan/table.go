package pcapscan

import (
	"encoding/binary"
	"math/bits"
)

// table is a fixed-size, set-associative hash table: a key lives in one of the
// `ways` slots of its bucket, and inserting into a full bucket evicts the slot
// used least recently. Its memory is fixed when it is made, whatever is put in
// it. A bucket's tags (a few bits of each slot's hash) share one cache line, so
// a lookup reads the keys and values of matching slots only.
type table[K comparable, V any] struct {
	tags  []uint32 // 0: empty slot; else high hash bits with the low bit set
	lasts []int64  // time of last use, for eviction
	keys  []K
	vals  []V
	mask  uint64
	evict func(*K, *V) // called before a slot in use is overwritten
}

const ways = 8

// newTable returns a table with room for at least n entries (rounded up to a
// power of two, at least one bucket).
func newTable[K comparable, V any](n int, evict func(*K, *V)) *table[K, V] {
	if n < ways {
		n = ways
	}
	size := 1 << bits.Len(uint(n-1))
	return &table[K, V]{tags: make([]uint32, size), lasts: make([]int64, size), keys: make([]K, size),
		vals: make([]V, size), mask: uint64(size/ways - 1), evict: evict}
}

func tagOf(h uint64) uint32 { return uint32(h>>32) | 1 }

// get returns the value for key, or nil.
func (t *table[K, V]) get(h uint64, key K) *V {
	b, tag := int(h&t.mask)*ways, tagOf(h)
	for i, tg := range t.tags[b : b+ways] {
		if tg == tag && t.keys[b+i] == key {
			return &t.vals[b+i]
		}
	}
	return nil
}

// upsert returns the value for key, inserting a zero value (and reporting true)
// when it is absent. now stamps the slot for eviction.
func (t *table[K, V]) upsert(h uint64, key K, now int64) (*V, bool) {
	b, tag := int(h&t.mask)*ways, tagOf(h)
	victim := -1
	for i, tg := range t.tags[b : b+ways] {
		switch {
		case tg == tag && t.keys[b+i] == key:
			t.lasts[b+i] = now
			return &t.vals[b+i], false
		case tg == 0:
			if victim < 0 || t.tags[victim] != 0 {
				victim = b + i
			}
		case victim < 0 || (t.tags[victim] != 0 && t.lasts[b+i] < t.lasts[victim]):
			victim = b + i
		}
	}
	if t.tags[victim] != 0 && t.evict != nil {
		t.evict(&t.keys[victim], &t.vals[victim])
	}
	var zero V
	t.tags[victim], t.lasts[victim], t.keys[victim], t.vals[victim] = tag, now, key, zero
	return &t.vals[victim], true
}

// each calls f for every entry; f returns false to remove the entry.
func (t *table[K, V]) each(f func(*K, *V) bool) {
	for i, tg := range t.tags {
		if tg != 0 && !f(&t.keys[i], &t.vals[i]) {
			var zero V
			t.tags[i], t.vals[i] = 0, zero
		}
	}
}

// len reports the number of slots, used or not.
func (t *table[K, V]) len() int { return len(t.tags) }

func (t *table[K, V]) reset() {
	clear(t.tags)
	clear(t.lasts)
	clear(t.keys)
	clear(t.vals)
}

// Hashing: keys are mixed with a fixed multiply-xorshift so that runs are
// reproducible (eviction order, and so the output, does not depend on a seed).
// mix chains the words of a key; final then spreads every input bit over the
// whole word, since tables pick a bucket by the low bits and a multiplication
// only carries bits upwards (without it, IPv4 addresses that differ in their
// last three bytes all fell into one bucket).

// final is the finaliser of MurmurHash3 (fmix64).
func final(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	return h ^ h>>33
}

func mix(h, v uint64) uint64 {
	h ^= v
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>29
}

func hashAddr(h uint64, b ipaddr) uint64 {
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
	return final(mix(mix(h, binary.LittleEndian.Uint64(tail[:])), 0x2545f491))
}

// bitset is a 64 Ki-bit set of hash values, 8 KiB, small enough to stay in the
// CPU's cache.
type bitset [1 << 10]uint64

func (b *bitset) add(h uint64)      { b[h>>54] |= 1 << (h >> 48 & 63) }
func (b *bitset) has(h uint64) bool { return b[h>>54]&(1<<(h>>48&63)) != 0 }
