package ipam

import "math/bits"

// fullTree is the summary of full pages: a lazily built 64-ary radix tree
// over page indices in which a set bit marks a full page (leaf level) or a
// child whose pages are all full (inner levels). Pages never filled cost
// nothing, so an empty /64 has an empty tree; the first non-full page at or
// after any index is found in O(log64 pages) whatever the fill.
type fullTree struct {
	height int // levels; 64^height >= number of pages
	root   *ftNode
}

type ftNode struct {
	full uint64
	kids *[64]*ftNode // nil at the leaf level
}

func newFullTree(npages Count) fullTree {
	h := 1
	for span := CountOf(64); span.Cmp(npages) < 0 && h < 21; h++ {
		span = span.lsh(6)
	}
	return fullTree{height: h, root: &ftNode{}}
}

func digit(idx Count, level int) int { return int(idx.rsh(uint(6*level)).lo & 63) }

// set marks page idx full or not full.
func (t *fullTree) set(idx Count, full bool) {
	var path [22]*ftNode
	n := t.root
	for lvl := t.height - 1; lvl > 0; lvl-- {
		path[lvl] = n
		d := digit(idx, lvl)
		if n.kids == nil {
			n.kids = new([64]*ftNode)
		}
		k := n.kids[d]
		if k == nil {
			if !full {
				return // absent subtree: nothing full there
			}
			k = &ftNode{}
			n.kids[d] = k
		}
		n = k
	}
	d := uint(digit(idx, 0))
	if full {
		n.full |= 1 << d
	} else {
		n.full &^= 1 << d
	}
	for lvl := 1; lvl < t.height; lvl++ {
		p := path[lvl]
		d := uint(digit(idx, lvl))
		if n.full == ^uint64(0) {
			p.full |= 1 << d
		} else {
			p.full &^= 1 << d
		}
		n = p
	}
}

// isFull reports whether page idx is marked full.
func (t *fullTree) isFull(idx Count) bool {
	n := t.root
	for lvl := t.height - 1; lvl > 0; lvl-- {
		if n.full&(1<<uint(digit(idx, lvl))) != 0 {
			return true
		}
		if n.kids == nil || n.kids[digit(idx, lvl)] == nil {
			return false
		}
		n = n.kids[digit(idx, lvl)]
	}
	return n.full&(1<<uint(digit(idx, 0))) != 0
}

// next returns the first index >= from that is not marked full, or false
// if every index from there to the end of the tree's span is full. Callers
// compare the result with the page count.
func (t *fullTree) next(from Count) (Count, bool) {
	return t.root.next(t.height-1, from)
}

// next searches the subtree at level lvl (covering 64^(lvl+1) pages) for
// the first not-full index >= off, off relative to the subtree.
func (n *ftNode) next(lvl int, off Count) (Count, bool) {
	d := uint(digit(off, lvl))
	mask := ^n.full & (^uint64(0) << d)
	shift := uint(6 * lvl)
	for mask != 0 {
		c := uint(bits.TrailingZeros64(mask))
		mask &^= 1 << c
		base := CountOf(uint64(c)).lsh(shift)
		var rest Count
		if c == d {
			rest = off.Sub(CountOf(uint64(d)).lsh(shift))
		}
		if lvl == 0 {
			return base, true
		}
		if n.kids == nil || n.kids[c] == nil {
			return base.Add(rest), true
		}
		if r, ok := n.kids[c].next(lvl-1, rest); ok {
			return base.Add(r), true
		}
	}
	return Count{}, false
}
