package pcapscan

import (
	"encoding/binary"
	"math/bits"
	"unsafe"

	"github.com/addrguard/addrguard/internal/prefetch"
)

// table is a fixed-size, set-associative hash table: a key lives in one of the
// `ways` slots of its bucket, and inserting into a full bucket evicts the slot
// used least recently. Its memory is fixed when it is made, whatever is put in
// it. A bucket's tags (a few bits of each slot's hash) and use times share one
// cache line, and a slot holds its key beside its value, so that a lookup
// touches that line and the lines of the slot it finds.
type table[K comparable, V any] struct {
	buckets []bucket
	slots   []slot[K, V]
	shift   uint8        // 64 - log2(len(buckets)): the bucket is h >> shift
	evict   func(*K, *V) // called before a slot in use is overwritten
}

const ways = 8

// bucket is the index of ways slots, 64 bytes.
type bucket struct {
	tags  [ways]uint32 // 0: empty slot; else low hash bits with the low bit set
	lasts [ways]uint32 // coarse time of last use (useUnit), for eviction
}

type slot[K, V any] struct {
	key K
	val V
}

// useUnit is the resolution of the use times kept for eviction: about a
// millisecond, so that 32 bits span 49 days and compare with wrap-around.
const useUnit = 20 // bits of nanoseconds dropped

func useTime(now int64) uint32 { return uint32(now >> useUnit) }

// newTable returns a table with room for at least n entries (rounded up to a
// power of two, at least one bucket).
func newTable[K comparable, V any](n int, evict func(*K, *V)) *table[K, V] {
	if n < ways {
		n = ways
	}
	size := 1 << bits.Len(uint(n-1))
	return &table[K, V]{buckets: largeSlice[bucket](size / ways), slots: largeSlice[slot[K, V]](size),
		shift: uint8(64 - bits.Len(uint(size/ways-1))), evict: evict}
}

// bucketOf picks a bucket by the top bits of h, the best mixed ones of a
// multiplicative hash (a shift of 64 leaves 0: a table of one bucket).
func (t *table[K, V]) bucketOf(h uint64) int { return int(h >> t.shift) }

func tagOf(h uint64) uint32 { return uint32(h) | 1 }

// wayOf is the slot of its bucket a key takes when that slot is free, and so
// the one looked at first (the three hash bits below those of the bucket).
// Reading its tag and its key do not depend on each other, so the processor
// fetches both lines at once instead of reading the tags, searching them and
// only then fetching the slot.
func (t *table[K, V]) wayOf(h uint64) int { return int(h>>(t.shift-3)) & (ways - 1) }

// touch starts fetching what a lookup of h reads first, the bucket and the
// first two cache lines of the key's own slot, and returns at once: a lookup
// made a little later, after other work, then finds them in the cache or on
// their way, and the cache misses of several tables overlap instead of
// following one another.
func (t *table[K, V]) touch(h uint64) {
	bi, w := t.bucketOf(h), t.wayOf(h)
	sl := uintptr(unsafe.Pointer(&t.slots[bi*ways+w]))
	prefetch.Line(uintptr(unsafe.Pointer(&t.buckets[bi])))
	prefetch.Line(sl)
	if unsafe.Sizeof(t.slots[0]) >= 128 {
		prefetch.Line(sl + 64)
	}
}

// get returns the value for key, or nil.
func (t *table[K, V]) get(h uint64, key K) *V {
	bi, tag := t.bucketOf(h), tagOf(h)
	bk, sl := &t.buckets[bi], t.slots[bi*ways:bi*ways+ways]
	if w := t.wayOf(h); bk.tags[w] == tag && sl[w].key == key {
		return &sl[w].val
	}
	for i, tg := range bk.tags {
		if tg == tag && sl[i].key == key {
			return &sl[i].val
		}
	}
	return nil
}

// upsert returns the value for key, inserting a zero value (and reporting true)
// when it is absent. now stamps the slot for eviction.
func (t *table[K, V]) upsert(h uint64, key K, now int64) (*V, bool) {
	bi, tag := t.bucketOf(h), tagOf(h)
	bk, sl := &t.buckets[bi], t.slots[bi*ways:bi*ways+ways]
	use := useTime(now)
	w := t.wayOf(h)
	if bk.tags[w] == tag && sl[w].key == key {
		bk.lasts[w] = use
		return &sl[w].val, false
	}
	for i, tg := range bk.tags {
		if tg == tag && sl[i].key == key {
			bk.lasts[i] = use
			return &sl[i].val, false
		}
	}
	// The key's own way when free, else the first empty slot, else the one
	// used least recently.
	victim := w
	if bk.tags[w] != 0 {
		victim = 0
		for i, tg := range bk.tags {
			if tg == 0 {
				victim = i
				break
			}
			if int32(bk.lasts[i]-bk.lasts[victim]) < 0 {
				victim = i
			}
		}
	}
	s := &sl[victim]
	if bk.tags[victim] != 0 && t.evict != nil {
		t.evict(&s.key, &s.val)
	}
	bk.tags[victim], bk.lasts[victim] = tag, use
	s.key = key
	var zero V
	s.val = zero
	return &s.val, true
}

// each calls f for every entry; f returns false to remove the entry.
func (t *table[K, V]) each(f func(*K, *V) bool) {
	for bi := range t.buckets {
		bk := &t.buckets[bi]
		for i, tg := range bk.tags {
			if s := &t.slots[bi*ways+i]; tg != 0 && !f(&s.key, &s.val) {
				bk.tags[i] = 0
				var zero V
				s.val = zero
			}
		}
	}
}

// len reports the number of slots, used or not.
func (t *table[K, V]) len() int { return len(t.slots) }

// reset empties the table. Only the tags are cleared: a slot whose tag is 0
// is never read, and upsert writes the key and a zero value when it takes
// one, so clearing the slots too (most of the table's memory) would be wasted.
func (t *table[K, V]) reset() {
	clear(t.buckets)
}

// Hashing: keys are mixed with a fixed multiply-xorshift so that runs are
// reproducible (eviction order, and so the output, does not depend on a seed).
// mix chains the words of a key. A multiplication only carries bits upwards,
// so the top bits of the result depend on every input bit and the low ones
// only on the low input bits: tables pick the bucket and the way by the top
// bits (picked by the low bits, IPv4 addresses that differ in their last
// three bytes all fell into one bucket), and use the low bits, into which
// mix's final shift folds the high ones, only as tags. final spreads every
// bit over the whole word, for uses that need the low bits too.

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

// hashAddr mixes an address into h: one word for an IPv4 address (whose
// first eight bytes are zero), two for others.
func hashAddr(h uint64, b ipaddr) uint64 {
	if hi := binary.LittleEndian.Uint64(b[:8]); hi != 0 {
		h = mix(h, hi)
	}
	return mix(h, binary.LittleEndian.Uint64(b[8:]))
}

func hashMAC(h uint64, m mac) uint64 {
	return mix(h, uint64(m[0])|uint64(m[1])<<8|uint64(m[2])<<16|uint64(m[3])<<24|uint64(m[4])<<32|uint64(m[5])<<40)
}

// hashSeg starts the hash of a key on segment s. The Linux ifindex, set only
// by SLL2 captures, takes a word of its own when it is not zero.
func hashSeg(s segment) uint64 {
	h := uint64(0x51ed27)
	if s.ifindex != 0 {
		h = mix(h, uint64(s.ifindex))
	}
	return mix(h, uint64(s.iface)<<32|uint64(s.vlan)<<16|uint64(s.outer))
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

// filterHash is a cheap hash of k for a bitset, which reads its top 16 bits:
// one multiplication, as every packet tests its destination against the
// remote set.
func (k addrKey) filterHash() uint64 {
	lo, hi := binary.LittleEndian.Uint64(k.addr[8:]), binary.LittleEndian.Uint64(k.addr[:8])
	seg := uint64(k.seg.ifindex)<<32 ^ uint64(k.seg.iface)<<24 ^ uint64(k.seg.vlan)<<12 ^ uint64(k.seg.outer)
	return (lo ^ bits.RotateLeft64(hi, 31) ^ seg) * 0x9e3779b97f4a7c15
}

// bitset is a 64 Ki-bit set of hash values, 8 KiB, small enough to stay in the
// CPU's cache.
type bitset [1 << 10]uint64

func (b *bitset) add(h uint64)      { b[h>>54] |= 1 << (h >> 48 & 63) }
func (b *bitset) has(h uint64) bool { return b[h>>54]&(1<<(h>>48&63)) != 0 }
