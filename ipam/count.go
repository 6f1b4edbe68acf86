package ipam

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"strconv"
)

// Count is an exact unsigned 128-bit number of addresses. Every IPv4 or IPv6
// pool's size fits (the largest, ::/0 less its subnet-router anycast
// address, is 2^128-1), so counts for an IPv6 /64 or /48 are exact where a
// uint64 or float64 would wrap or round. The zero value is 0. Count is
// comparable and marshals to JSON as a decimal string.
type Count struct {
	hi, lo uint64
}

// CountOf returns n as a Count.
func CountOf(n uint64) Count { return Count{lo: n} }

// maxCount is 2^128-1.
var maxCount = Count{hi: math.MaxUint64, lo: math.MaxUint64}

// IsZero reports whether c is 0.
func (c Count) IsZero() bool { return c.hi|c.lo == 0 }

// Uint64 returns c as a uint64 and whether it fits.
func (c Count) Uint64() (uint64, bool) { return c.lo, c.hi == 0 }

// Float64 returns c rounded to the nearest float64.
func (c Count) Float64() float64 {
	return float64(c.hi)*(1<<64) + float64(c.lo)
}

// Cmp returns -1, 0 or +1 as c is less than, equal to or greater than d.
func (c Count) Cmp(d Count) int {
	switch {
	case c.hi < d.hi:
		return -1
	case c.hi > d.hi:
		return 1
	case c.lo < d.lo:
		return -1
	case c.lo > d.lo:
		return 1
	}
	return 0
}

// Add returns c+d, wrapping modulo 2^128.
func (c Count) Add(d Count) Count {
	lo, carry := bits.Add64(c.lo, d.lo, 0)
	return Count{hi: c.hi + d.hi + carry, lo: lo}
}

// Sub returns c-d, wrapping modulo 2^128.
func (c Count) Sub(d Count) Count {
	lo, borrow := bits.Sub64(c.lo, d.lo, 0)
	return Count{hi: c.hi - d.hi - borrow, lo: lo}
}

func (c Count) add64(n uint64) Count {
	lo, carry := bits.Add64(c.lo, n, 0)
	return Count{hi: c.hi + carry, lo: lo}
}

func (c Count) sub64(n uint64) Count {
	lo, borrow := bits.Sub64(c.lo, n, 0)
	return Count{hi: c.hi - borrow, lo: lo}
}

func (c Count) rsh(n uint) Count {
	switch {
	case n == 0:
		return c
	case n >= 128:
		return Count{}
	case n >= 64:
		return Count{lo: c.hi >> (n - 64)}
	}
	return Count{hi: c.hi >> n, lo: c.lo>>n | c.hi<<(64-n)}
}

func (c Count) lsh(n uint) Count {
	switch {
	case n == 0:
		return c
	case n >= 128:
		return Count{}
	case n >= 64:
		return Count{hi: c.lo << (n - 64)}
	}
	return Count{hi: c.hi<<n | c.lo>>(64-n), lo: c.lo << n}
}

// divmod10 returns c/10 and c%10.
func (c Count) divmod10() (Count, uint64) {
	qhi := c.hi / 10
	r := c.hi % 10
	qlo, rem := bits.Div64(r, c.lo, 10)
	return Count{hi: qhi, lo: qlo}, rem
}

// String returns c in decimal.
func (c Count) String() string {
	if c.hi == 0 {
		return strconv.FormatUint(c.lo, 10)
	}
	var buf [40]byte
	i := len(buf)
	for !c.IsZero() {
		var d uint64
		c, d = c.divmod10()
		i--
		buf[i] = byte('0' + d)
	}
	return string(buf[i:])
}

// ErrCountSyntax is returned by ParseCount for input that is not a decimal
// number below 2^128.
var ErrCountSyntax = errors.New("ipam: invalid count")

// ParseCount parses a decimal number in [0, 2^128).
func ParseCount(s string) (Count, error) {
	if s == "" || len(s) > 39 {
		return Count{}, fmt.Errorf("%w %q", ErrCountSyntax, s)
	}
	var c Count
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < '0' || ch > '9' {
			return Count{}, fmt.Errorf("%w %q: byte %d is not a digit", ErrCountSyntax, s, i)
		}
		// c = c*10 + d, checking for overflow.
		hi8, lo8 := c.lsh(3), c.lsh(1)
		if c.hi>>61 != 0 {
			return Count{}, fmt.Errorf("%w %q: too large", ErrCountSyntax, s)
		}
		n := hi8.Add(lo8)
		if n.Cmp(hi8) < 0 {
			return Count{}, fmt.Errorf("%w %q: too large", ErrCountSyntax, s)
		}
		m := n.add64(uint64(ch - '0'))
		if m.Cmp(n) < 0 {
			return Count{}, fmt.Errorf("%w %q: too large", ErrCountSyntax, s)
		}
		c = m
	}
	return c, nil
}

// MarshalText implements encoding.TextMarshaler (decimal).
func (c Count) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (decimal).
func (c *Count) UnmarshalText(b []byte) error {
	v, err := ParseCount(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// addrToCount returns the address's integer value (IPv4 in the low 32 bits).
func addrToCount(a netip.Addr) Count {
	if a.Is4() {
		b := a.As4()
		return Count{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var c Count
	for i := 0; i < 8; i++ {
		c.hi = c.hi<<8 | uint64(b[i])
		c.lo = c.lo<<8 | uint64(b[8+i])
	}
	return c
}

// countToAddr returns the address whose integer value is c, in the family
// given by is4.
func countToAddr(c Count, is4 bool) netip.Addr {
	if is4 {
		v := uint32(c.lo)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(c.hi >> (8 * i))
		b[15-i] = byte(c.lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

// rangeSize returns the number of addresses in r (to-from+1). The full IPv6
// space would be 2^128, which does not fit; callers never build such a range
// because the subnet-router anycast address is always excluded.
func rangeSize(from, to netip.Addr) Count {
	return addrToCount(to).Sub(addrToCount(from)).add64(1)
}
