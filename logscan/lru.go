package logscan

// lru is a bounded map that evicts its least recently used entry. Evicted
// nodes are recycled for the next insert, so a full table allocates nothing
// more.
type lru[K comparable, V any] struct {
	m          *index[K, *lruNode[K, V]]
	head, tail *lruNode[K, V] // head: most recent
	cap        int
	free       *lruNode[K, V]
	tick       uint64
	onEvict    func(*V)
	evicted    int64
}

type lruNode[K comparable, V any] struct {
	key        K
	moved      uint64 // l.tick when last moved to the front
	prev, next *lruNode[K, V]
	val        V
}

func newLRU[K comparable, V any](capacity int, hash func(K) uint64, onEvict func(*V)) *lru[K, V] {
	return &lru[K, V]{m: newIndex[K, *lruNode[K, V]](hash), cap: capacity, onEvict: onEvict}
}

func (l *lru[K, V]) len() int { return l.m.len() }

// get returns the value for k and marks it recently used. A node moved to
// the front within the last cap/8 gets stays where it is: the order is
// LRU up to that slack, and hot entries cost no list surgery.
func (l *lru[K, V]) get(k K) *V {
	n, ok := l.m.get(k)
	if !ok {
		return nil
	}
	l.tick++
	if l.tick-n.moved > uint64(l.cap/8) {
		n.moved = l.tick
		l.toFront(n)
	}
	return &n.val
}

// peek returns the value for k without touching its recency.
func (l *lru[K, V]) peek(k K) *V {
	if n, ok := l.m.get(k); ok {
		return &n.val
	}
	return nil
}

// add inserts k (which must be absent) with a zero value and returns it,
// evicting the least recently used entry when the table is full.
func (l *lru[K, V]) add(k K) *V {
	if l.m.len() >= l.cap && l.tail != nil {
		old := l.tail
		if l.onEvict != nil {
			l.onEvict(&old.val)
		}
		l.evicted++
		l.unlink(old)
		l.m.del(old.key)
		old.next = l.free
		l.free = old
	}
	n := l.free
	if n != nil {
		l.free = n.next
		var zero V
		n.val, n.next, n.prev = zero, nil, nil
	} else {
		n = new(lruNode[K, V])
	}
	n.key = k
	l.tick++
	n.moved = l.tick
	l.m.put(k, n)
	l.pushFront(n)
	return &n.val
}

// remove deletes k.
func (l *lru[K, V]) remove(k K) {
	n, ok := l.m.get(k)
	if !ok {
		return
	}
	l.unlink(n)
	l.m.del(k)
	var zero V
	n.val = zero
	n.next = l.free
	l.free = n
}

// each calls f from the least to the most recently used entry while f
// returns true. f must not modify the table.
func (l *lru[K, V]) each(f func(K, *V) bool) {
	for n := l.tail; n != nil; n = n.prev {
		if !f(n.key, &n.val) {
			return
		}
	}
}

func (l *lru[K, V]) toFront(n *lruNode[K, V]) {
	if l.head == n {
		return
	}
	l.unlink(n)
	l.pushFront(n)
}

func (l *lru[K, V]) pushFront(n *lruNode[K, V]) {
	n.prev = nil
	n.next = l.head
	if l.head != nil {
		l.head.prev = n
	}
	l.head = n
	if l.tail == nil {
		l.tail = n
	}
}

func (l *lru[K, V]) unlink(n *lruNode[K, V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else if l.head == n {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else if l.tail == n {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}
