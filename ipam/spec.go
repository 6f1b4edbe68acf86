package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go4.org/netipx"
)

// Strategy chooses which free address a pool hands out next.
type Strategy string

// Allocation strategies.
const (
	// Sequential hands out the lowest free address (first free).
	Sequential Strategy = "sequential"
	// RoundRobin hands out the next free address after the last one
	// allocated, wrapping at the end, as CNI host-local does; the position is
	// kept in the store, so it survives restarts and is shared by processes.
	RoundRobin Strategy = "round-robin"
	// Random hands out a random free address. To keep memory proportional to
	// the number of allocations rather than to the pool (a /64), it picks a
	// uniformly random page of 1,024 addresses among the pages already in use
	// while those are on average less than half full, otherwise a uniformly
	// random page of the whole pool, and then a random free slot in it.
	Random Strategy = "random"
	// FIFO hands out never-used addresses first, in order, then released
	// addresses in the order they were released, each only after the pool's
	// Cooldown has passed since its release (Calico's reuse cooldown), so a
	// released address is not handed out while caches elsewhere still map it
	// to the old owner. The FIFO queue holds the 65,536 latest releases;
	// older releases count as cooled down.
	FIFO Strategy = "fifo"
)

// Default utilization thresholds (fractions of the allocatable addresses).
const (
	DefaultWarn     = 0.85
	DefaultCritical = 0.95
)

// Range is one subnet a pool allocates from, with its gateway and optional
// bounds, as a CNI host-local range has them.
type Range struct {
	Subnet     netip.Prefix
	Gateway    netip.Addr // excluded from allocation; zero if none
	RangeStart netip.Addr // first allocatable address; zero: subnet start
	RangeEnd   netip.Addr // last allocatable address; zero: subnet end
}

// PoolSpec describes a pool: where its addresses come from and how they are
// handed out. The allocatable set is
//
//	(range ∩ subnet) − network/broadcast − gateway − reserved
//
// per subnet, unioned over Subnet and Extra. IPv4 subnets shorter than /31
// lose their network and broadcast addresses; /31 keeps both (RFC 3021), /32
// its one address. IPv6 subnets shorter than /127 lose the subnet-router
// anycast address (the all-zero host, RFC 4291); /127 keeps both (RFC 6164).
type PoolSpec struct {
	// Name identifies the pool: 1-253 characters of a-z, 0-9, '-', '.', '_',
	// starting and ending with a letter or digit.
	Name string
	// Cluster and Tenant are optional labels, reported with overlaps.
	Cluster string
	Tenant  string

	Subnet     netip.Prefix
	Gateway    netip.Addr
	RangeStart netip.Addr
	RangeEnd   netip.Addr
	// Extra lists further subnets of the same pool, allocated from after
	// Subnet's (the CNI host-local range-set form). Same address family.
	Extra []Range
	// Reserved addresses are never allocated: single addresses, a-b ranges
	// and CIDRs, all parsed to ranges (see ParseRange). They must lie inside
	// the pool's subnets.
	Reserved []netipx.IPRange

	// Strategy defaults to Sequential.
	Strategy Strategy
	// Cooldown is the FIFO strategy's reuse delay after a release.
	Cooldown time.Duration
	// Warn and Critical are utilization levels in (0, 1]; zero means
	// DefaultWarn and DefaultCritical.
	Warn, Critical float64
}

// ranges returns Subnet's range followed by Extra.
func (s *PoolSpec) ranges() []Range {
	out := make([]Range, 0, 1+len(s.Extra))
	out = append(out, Range{Subnet: s.Subnet, Gateway: s.Gateway, RangeStart: s.RangeStart, RangeEnd: s.RangeEnd})
	return append(out, s.Extra...)
}

// Pool is a compiled, validated PoolSpec: its allocatable set and the
// ordinal numbering of the allocatable addresses. It is immutable and safe
// for concurrent use.
type Pool struct {
	spec        PoolSpec
	is4         bool
	set         *netipx.IPSet
	subnets     []netipx.IPRange // subnet ranges, sorted
	segs        []segment        // allocatable ranges with their first ordinal
	total       Count            // addresses in all subnets
	allocatable Count
}

// segment is one allocatable range; base is the ordinal of from.
type segment struct {
	from, to Count
	base     Count
}

// Spec returns the pool's (normalized) spec.
func (p *Pool) Spec() PoolSpec { return p.spec }

// Name returns the pool's name.
func (p *Pool) Name() string { return p.spec.Name }

// Allocatable returns the allocatable set.
func (p *Pool) Allocatable() *netipx.IPSet { return p.set }

// Subnets returns the pool's subnets as ranges, sorted.
func (p *Pool) Subnets() []netipx.IPRange { return slices.Clone(p.subnets) }

// Total returns the number of addresses in the pool's subnets.
func (p *Pool) Total() Count { return p.total }

// Size returns the number of allocatable addresses.
func (p *Pool) Size() Count { return p.allocatable }

// Contains reports whether addr is allocatable in the pool.
func (p *Pool) Contains(addr netip.Addr) bool { return p.set.Contains(addr.Unmap()) }

// ordinal returns addr's ordinal among the allocatable addresses.
func (p *Pool) ordinal(addr netip.Addr) (Count, bool) {
	if addr.Is4() != p.is4 {
		return Count{}, false
	}
	v := addrToCount(addr)
	i, found := slices.BinarySearchFunc(p.segs, v, func(s segment, v Count) int { return s.from.Cmp(v) })
	if !found {
		if i == 0 {
			return Count{}, false
		}
		i--
	}
	s := &p.segs[i]
	if v.Cmp(s.to) > 0 {
		return Count{}, false
	}
	return s.base.Add(v.Sub(s.from)), true
}

// addr returns the address with ordinal ord (ord < Size()).
func (p *Pool) addr(ord Count) netip.Addr {
	s := &p.segs[p.segment(ord)]
	return countToAddr(s.from.Add(ord.Sub(s.base)), p.is4)
}

// segment returns the index of the segment holding ordinal ord.
func (p *Pool) segment(ord Count) int {
	if len(p.segs) == 1 {
		return 0
	}
	i, found := slices.BinarySearchFunc(p.segs, ord, func(s segment, v Count) int { return s.base.Cmp(v) })
	if !found {
		i--
	}
	return i
}

// Compile validates spec and builds its allocatable set. Errors are
// *SpecError naming the field and value.
func Compile(spec PoolSpec) (*Pool, error) {
	s := spec
	s.Extra = slices.Clone(spec.Extra)
	s.Reserved = slices.Clone(spec.Reserved)
	bad := func(field, value, format string, args ...any) error {
		return &SpecError{Pool: s.Name, Field: field, Value: value, Msg: fmt.Sprintf(format, args...)}
	}
	if err := checkPoolName(s.Name); err != nil {
		return nil, &SpecError{Field: "name", Value: s.Name, Msg: err.Error()}
	}
	if s.Strategy == "" {
		s.Strategy = Sequential
	}
	switch s.Strategy {
	case Sequential, RoundRobin, Random, FIFO:
	default:
		return nil, bad("strategy", string(s.Strategy), "unknown strategy (want sequential, round-robin, random or fifo)")
	}
	if s.Cooldown < 0 {
		return nil, bad("cooldown", s.Cooldown.String(), "must not be negative")
	}
	if s.Warn == 0 {
		s.Warn = DefaultWarn
	}
	if s.Critical == 0 {
		s.Critical = DefaultCritical
	}
	if !(s.Warn > 0 && s.Warn <= 1) {
		return nil, bad("warn", fmt.Sprint(s.Warn), "must be in (0, 1]")
	}
	if !(s.Critical > 0 && s.Critical <= 1) {
		return nil, bad("critical", fmt.Sprint(s.Critical), "must be in (0, 1]")
	}
	if s.Warn > s.Critical {
		return nil, bad("warn", fmt.Sprint(s.Warn), "is above critical %v", s.Critical)
	}

	rs := s.ranges()
	var b netipx.IPSetBuilder
	var is4 bool
	p := &Pool{}
	for i := range rs {
		r := &rs[i]
		path := func(f string) string {
			if i == 0 {
				return f
			}
			return fmt.Sprintf("extra[%d].%s", i-1, f)
		}
		if !r.Subnet.IsValid() {
			return nil, bad(path("subnet"), "", "missing")
		}
		if a := r.Subnet.Addr(); a.Is4In6() {
			bits := r.Subnet.Bits() - 96
			if bits < 0 {
				return nil, bad(path("subnet"), r.Subnet.String(), "IPv4-mapped prefix shorter than ::ffff:0:0/96")
			}
			r.Subnet = netip.PrefixFrom(a.Unmap(), bits)
		}
		if r.Subnet.Addr().Zone() != "" {
			return nil, bad(path("subnet"), r.Subnet.String(), "zones are not allowed")
		}
		if m := r.Subnet.Masked(); m != r.Subnet {
			return nil, bad(path("subnet"), r.Subnet.String(), "not canonical: the subnet is %s", m)
		}
		if r.Subnet.Addr().Is6() && r.Subnet.Bits() == 0 {
			return nil, bad(path("subnet"), r.Subnet.String(), "too large: an IPv6 pool must be /1 or longer")
		}
		if i == 0 {
			is4 = r.Subnet.Addr().Is4()
		} else if r.Subnet.Addr().Is4() != is4 {
			return nil, bad(path("subnet"), r.Subnet.String(), "mixed address families: the pool's first subnet is %s", rs[0].Subnet)
		}
		sub := netipx.RangeOfPrefix(r.Subnet)
		for j := range p.subnets {
			if p.subnets[j].Overlaps(sub) {
				return nil, bad(path("subnet"), r.Subnet.String(), "overlaps the pool's subnet %s", p.subnets[j])
			}
		}
		p.subnets = append(p.subnets, sub)
		p.total = p.total.Add(rangeSize(sub.From(), sub.To()))

		check := func(field string, a *netip.Addr) error {
			if !a.IsValid() {
				return nil
			}
			*a = a.Unmap()
			if a.Zone() != "" {
				return bad(path(field), a.String(), "zones are not allowed")
			}
			if a.Is4() != is4 {
				return bad(path(field), a.String(), "mixed address families: the subnet is %s", r.Subnet)
			}
			if !r.Subnet.Contains(*a) {
				return bad(path(field), a.String(), "outside the subnet %s", r.Subnet)
			}
			return nil
		}
		for _, f := range []struct {
			name string
			a    *netip.Addr
		}{{"gateway", &r.Gateway}, {"rangeStart", &r.RangeStart}, {"rangeEnd", &r.RangeEnd}} {
			if err := check(f.name, f.a); err != nil {
				return nil, err
			}
		}
		lo, hi := hostBounds(r.Subnet)
		start, end := lo, hi
		if r.RangeStart.IsValid() {
			start = r.RangeStart
		}
		if r.RangeEnd.IsValid() {
			end = r.RangeEnd
		}
		if r.RangeStart.IsValid() && r.RangeEnd.IsValid() && r.RangeStart.Compare(r.RangeEnd) > 0 {
			return nil, bad(path("rangeStart"), r.RangeStart.String(), "after rangeEnd %s", r.RangeEnd)
		}
		if start.Compare(lo) < 0 {
			start = lo
		}
		if end.Compare(hi) > 0 {
			end = hi
		}
		if start.Compare(end) <= 0 {
			b.AddRange(netipx.IPRangeFrom(start, end))
		}
		if r.Gateway.IsValid() {
			b.Remove(r.Gateway)
		}
		if i == 0 {
			s.Subnet, s.Gateway, s.RangeStart, s.RangeEnd = r.Subnet, r.Gateway, r.RangeStart, r.RangeEnd
		} else {
			s.Extra[i-1] = *r
		}
	}
	slices.SortFunc(p.subnets, func(a, b netipx.IPRange) int { return a.From().Compare(b.From()) })
	for i := range s.Reserved {
		r := s.Reserved[i]
		field := fmt.Sprintf("reserved[%d]", i)
		from, to := r.From().Unmap(), r.To().Unmap()
		if !from.IsValid() || !to.IsValid() || from.Is4() != to.Is4() || from.Compare(to) > 0 {
			return nil, bad(field, r.String(), "not a valid range")
		}
		if from.Is4() != is4 {
			return nil, bad(field, r.String(), "mixed address families: the subnet is %s", s.Subnet)
		}
		r = netipx.IPRangeFrom(from, to)
		inside := false
		for _, sub := range p.subnets {
			if sub.From().Compare(from) <= 0 && to.Compare(sub.To()) <= 0 {
				inside = true
				break
			}
		}
		if !inside {
			return nil, bad(field, r.String(), "outside the pool's subnets")
		}
		s.Reserved[i] = r
		b.RemoveRange(r)
	}
	set, err := b.IPSet()
	if err != nil {
		return nil, bad("subnet", s.Subnet.String(), "building the allocatable set: %v", err)
	}
	p.spec, p.is4, p.set = s, is4, set
	var ord Count
	for _, r := range set.Ranges() {
		from, to := addrToCount(r.From()), addrToCount(r.To())
		p.segs = append(p.segs, segment{from: from, to: to, base: ord})
		ord = ord.Add(to.Sub(from).add64(1))
	}
	p.allocatable = ord
	return p, nil
}

// hostBounds returns the first and last usable host address of a subnet.
func hostBounds(p netip.Prefix) (lo, hi netip.Addr) {
	r := netipx.RangeOfPrefix(p)
	lo, hi = r.From(), r.To()
	bits := p.Bits()
	if p.Addr().Is4() {
		if bits < 31 {
			lo, hi = lo.Next(), hi.Prev()
		}
		return lo, hi
	}
	if bits < 127 {
		lo = lo.Next()
	}
	return lo, hi
}

// checkPoolName validates a pool name (a DNS-subdomain-like name, so it is a
// safe store key component).
func checkPoolName(name string) error {
	if name == "" {
		return fmt.Errorf("missing")
	}
	if len(name) > 253 {
		return fmt.Errorf("longer than 253 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if alnum {
			continue
		}
		if (c == '-' || c == '.' || c == '_') && i > 0 && i < len(name)-1 {
			continue
		}
		return fmt.Errorf("character %d %q not allowed (want a-z, 0-9, and '-', '.', '_' inside)", i, string(rune(c)))
	}
	return nil
}

// checkOwner validates an owner identity.
func checkOwner(owner string) error {
	if owner == "" {
		return fmt.Errorf("ipam: owner: %w", errEmpty)
	}
	if len(owner) > 1024 {
		return fmt.Errorf("ipam: owner %.40q...: longer than 1024 bytes", owner)
	}
	return nil
}

var errEmpty = fmt.Errorf("must not be empty")

// ParseRange parses a reserved-set entry: a single address ("10.0.0.5"), an
// inclusive range ("10.100.0.100-10.100.0.110", spaces around '-' allowed) or
// a CIDR ("10.0.0.0/28", which must be canonical). IPv4-mapped IPv6 addresses
// are unmapped.
func ParseRange(s string) (netipx.IPRange, error) {
	in := strings.TrimSpace(s)
	fail := func(format string, args ...any) (netipx.IPRange, error) {
		return netipx.IPRange{}, &ParseError{Msg: fmt.Sprintf("range %q: %s", s, fmt.Sprintf(format, args...))}
	}
	if in == "" {
		return fail("empty")
	}
	if strings.Contains(in, "/") {
		p, err := netip.ParsePrefix(in)
		if err != nil {
			return fail("not a CIDR: %v", err)
		}
		if p.Addr().Zone() != "" {
			return fail("zones are not allowed")
		}
		if m := p.Masked(); m != p {
			return fail("not canonical: the CIDR is %s", m)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return fail("IPv4-mapped prefix shorter than /96")
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return netipx.RangeOfPrefix(p), nil
	}
	if i := strings.IndexByte(in, '-'); i >= 0 {
		a, err := netip.ParseAddr(strings.TrimSpace(in[:i]))
		if err != nil {
			return fail("start: %v", err)
		}
		z, err := netip.ParseAddr(strings.TrimSpace(in[i+1:]))
		if err != nil {
			return fail("end: %v", err)
		}
		if a.Zone() != "" || z.Zone() != "" {
			return fail("zones are not allowed")
		}
		a, z = a.Unmap(), z.Unmap()
		if a.Is4() != z.Is4() {
			return fail("mixed address families")
		}
		if a.Compare(z) > 0 {
			return fail("reversed: %s is after %s", a, z)
		}
		return netipx.IPRangeFrom(a, z), nil
	}
	a, err := netip.ParseAddr(in)
	if err != nil {
		return fail("not an address, a-b range or CIDR: %v", err)
	}
	if a.Zone() != "" {
		return fail("zones are not allowed")
	}
	a = a.Unmap()
	return netipx.IPRangeFrom(a, a), nil
}

// formatRange renders a range as a CIDR when it is exactly one prefix, as a
// single address when it holds one, and as "a-b" otherwise.
func formatRange(r netipx.IPRange) string {
	if r.From() == r.To() {
		return r.From().String()
	}
	if p, ok := r.Prefix(); ok {
		return p.String()
	}
	return r.String()
}
