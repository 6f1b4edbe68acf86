package ipam

import (
	"cmp"
	"slices"

	"go4.org/netipx"
)

// OverlapKind says what overlaps: the pools' subnets, or the addresses they
// actually hand out.
type OverlapKind string

// Overlap kinds.
const (
	// SubnetOverlap: the subnets intersect. Harmless on its own when the
	// pools split one subnet into disjoint ranges; a routing conflict when
	// the pools belong to different networks.
	SubnetOverlap OverlapKind = "subnet"
	// AllocatableOverlap: both pools can hand out the same addresses, so
	// one address can get two owners.
	AllocatableOverlap OverlapKind = "allocatable"
)

// PoolRef names a pool in an overlap report.
type PoolRef struct {
	Name    string `json:"name"`
	Cluster string `json:"cluster,omitempty"`
	Tenant  string `json:"tenant,omitempty"`
}

// Overlap is one pair of pools that intersect, of one kind, with the
// intersecting ranges (sorted, disjoint) and their total size.
type Overlap struct {
	A      PoolRef          `json:"a"`
	B      PoolRef          `json:"b"`
	Kind   OverlapKind      `json:"kind"`
	Ranges []netipx.IPRange `json:"ranges"`
	Size   Count            `json:"size"`
	pa, pb int              // input positions, for ordering
}

// RangeString renders the intersection: a CIDR, an address or an a-b range
// per range, comma-separated.
func (o Overlap) RangeString() string {
	s := ""
	for i, r := range o.Ranges {
		if i > 0 {
			s += ","
		}
		s += formatRange(r)
	}
	return s
}

func refOf(p *Pool) PoolRef {
	return PoolRef{Name: p.spec.Name, Cluster: p.spec.Cluster, Tenant: p.spec.Tenant}
}

// OverlapsOf compiles specs and returns their overlaps (see FindOverlaps).
func OverlapsOf(specs ...PoolSpec) ([]Overlap, error) {
	pools := make([]*Pool, len(specs))
	for i, s := range specs {
		p, err := Compile(s)
		if err != nil {
			return nil, err
		}
		pools[i] = p
	}
	return FindOverlaps(pools...), nil
}

// FindOverlaps reports every pair of pools whose subnets intersect and,
// separately, every pair whose allocatable sets intersect, by sorting all
// ranges once and sweeping: O(n log n + k) for n ranges and k overlapping
// range pairs. Pairs come in input order (A before B), subnet before
// allocatable for each pair. Pools of different clusters with the same name
// are distinct pools.
func FindOverlaps(pools ...*Pool) []Overlap {
	out := sweep(pools, SubnetOverlap, func(p *Pool) []netipx.IPRange { return p.subnets })
	out = append(out, sweep(pools, AllocatableOverlap, func(p *Pool) []netipx.IPRange { return p.set.Ranges() })...)
	slices.SortStableFunc(out, func(x, y Overlap) int {
		if c := cmp.Compare(x.pa, y.pa); c != 0 {
			return c
		}
		if c := cmp.Compare(x.pb, y.pb); c != 0 {
			return c
		}
		return cmpBool(x.Kind != SubnetOverlap, y.Kind != SubnetOverlap)
	})
	return out
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

type sweepItem struct {
	v6       bool
	from, to Count
	pool     int
}

func sweep(pools []*Pool, kind OverlapKind, ranges func(*Pool) []netipx.IPRange) []Overlap {
	var items []sweepItem
	for i, p := range pools {
		for _, r := range ranges(p) {
			items = append(items, sweepItem{v6: r.From().Is6(), from: addrToCount(r.From()), to: addrToCount(r.To()), pool: i})
		}
	}
	slices.SortFunc(items, func(x, y sweepItem) int {
		if c := cmpBool(x.v6, y.v6); c != 0 {
			return c
		}
		return x.from.Cmp(y.from)
	})
	type pair struct{ a, b int }
	idx := map[pair]int{}
	var out []Overlap
	var active []sweepItem
	for _, it := range items {
		keep := active[:0]
		for _, ac := range active {
			if ac.v6 == it.v6 && ac.to.Cmp(it.from) >= 0 {
				keep = append(keep, ac)
			}
		}
		active = keep
		for _, ac := range active {
			if ac.pool == it.pool {
				continue
			}
			to := ac.to
			if it.to.Cmp(to) < 0 {
				to = it.to
			}
			a, b := ac.pool, it.pool
			if a > b {
				a, b = b, a
			}
			k := pair{a, b}
			j, ok := idx[k]
			if !ok {
				j = len(out)
				idx[k] = j
				out = append(out, Overlap{A: refOf(pools[a]), B: refOf(pools[b]), Kind: kind, pa: a, pb: b})
			}
			o := &out[j]
			o.Ranges = append(o.Ranges, netipx.IPRangeFrom(countToAddr(it.from, !it.v6), countToAddr(to, !it.v6)))
			o.Size = o.Size.Add(to.Sub(it.from).add64(1))
		}
		active = append(active, it)
	}
	for i := range out {
		slices.SortFunc(out[i].Ranges, func(x, y netipx.IPRange) int { return x.From().Compare(y.From()) })
	}
	return out
}

// overlapsWith returns the allocatable overlaps between p and others.
func overlapsWith(p *Pool, others []*Pool) []Overlap {
	var out []Overlap
	for _, o := range FindOverlaps(append([]*Pool{p}, others...)...) {
		if o.Kind == AllocatableOverlap && o.pa == 0 {
			out = append(out, o)
		}
	}
	return out
}
