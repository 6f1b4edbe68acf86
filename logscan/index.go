package logscan

import (
	"encoding/binary"
	"hash/maphash"
)

// index is an open-addressing hash table (linear probing, backward-shift
// deletion) from keys to values, with a hash chosen by its user: for
// addresses a multiply-xorshift of the address bits, far cheaper than the
// generic map hash of a struct holding a netip.Addr and a string.
type index[K comparable, V any] struct {
	slots []idxSlot[K, V]
	mask  uint64
	n     int
	hash  func(K) uint64
}

type idxSlot[K comparable, V any] struct {
	key  K
	val  V
	used bool
}

func newIndex[K comparable, V any](hash func(K) uint64) *index[K, V] {
	return &index[K, V]{slots: make([]idxSlot[K, V], 64), mask: 63, hash: hash}
}

func (x *index[K, V]) len() int { return x.n }

func (x *index[K, V]) get(k K) (V, bool) {
	for i := x.hash(k) & x.mask; ; i = (i + 1) & x.mask {
		s := &x.slots[i]
		if !s.used {
			var zero V
			return zero, false
		}
		if s.key == k {
			return s.val, true
		}
	}
}

// ref returns a pointer to k's value, valid until the next put or del;
// nil when k is absent.
func (x *index[K, V]) ref(k K) *V {
	for i := x.hash(k) & x.mask; ; i = (i + 1) & x.mask {
		s := &x.slots[i]
		if !s.used {
			return nil
		}
		if s.key == k {
			return &s.val
		}
	}
}

func (x *index[K, V]) put(k K, v V) {
	if 2*(x.n+1) > len(x.slots) {
		x.grow()
	}
	for i := x.hash(k) & x.mask; ; i = (i + 1) & x.mask {
		s := &x.slots[i]
		if !s.used {
			*s = idxSlot[K, V]{key: k, val: v, used: true}
			x.n++
			return
		}
		if s.key == k {
			s.val = v
			return
		}
	}
}

func (x *index[K, V]) del(k K) {
	i := x.hash(k) & x.mask
	for {
		s := &x.slots[i]
		if !s.used {
			return
		}
		if s.key == k {
			break
		}
		i = (i + 1) & x.mask
	}
	// shift later members of the cluster back over the hole
	j := i
	for {
		j = (j + 1) & x.mask
		s := &x.slots[j]
		if !s.used {
			break
		}
		home := x.hash(s.key) & x.mask
		// move s to the hole at i unless its home lies cyclically in (i, j]
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.slots[i] = *s
			i = j
		}
	}
	x.slots[i] = idxSlot[K, V]{}
	x.n--
}

func (x *index[K, V]) grow() {
	old := x.slots
	x.slots = make([]idxSlot[K, V], 2*len(old))
	x.mask = uint64(len(x.slots) - 1)
	x.n = 0
	for _, s := range old {
		if s.used {
			x.put(s.key, s.val)
		}
	}
}

func (x *index[K, V]) each(f func(K, V)) {
	for _, s := range x.slots {
		if s.used {
			f(s.key, s.val)
		}
	}
}

func mix64(v uint64) uint64 {
	v ^= v >> 33
	v *= 0xff51afd7ed558ccd
	v ^= v >> 33
	v *= 0xc4ceb9fe1a85ec53
	v ^= v >> 33
	return v
}

var nameSeed = maphash.MakeSeed()

func hashSrcKey(k srcKey) uint64 {
	if k.addr.Is4() {
		b := k.addr.As4()
		return mix64(uint64(binary.LittleEndian.Uint32(b[:])) | 4<<32)
	}
	if k.addr.IsValid() {
		b := k.addr.As16()
		return mix64(binary.LittleEndian.Uint64(b[8:]) ^ mix64(binary.LittleEndian.Uint64(b[:8])))
	}
	return maphash.String(nameSeed, k.name)
}
