package ipam

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go4.org/netipx"
)

func mustRange(t testing.TB, s string) netipx.IPRange {
	t.Helper()
	r, err := ParseRange(s)
	require.NoError(t, err)
	return r
}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seq is a deterministic rand.Source.
type seq struct{ x uint64 }

func (s *seq) Uint64() uint64 {
	s.x += 0x9e3779b97f4a7c15
	z := s.x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func newAlloc(t testing.TB, opts Options, specs ...PoolSpec) (*Allocator, *MemoryStore) {
	t.Helper()
	st := NewMemoryStore()
	if opts.Rand == nil {
		opts.Rand = &seq{}
	}
	a, err := NewWithOptions(context.Background(), st, opts, specs...)
	require.NoError(t, err)
	return a, st
}

func verifyOK(t testing.TB, a *Allocator) {
	t.Helper()
	require.NoError(t, a.Verify(context.Background()))
}

func netipPrefixZero() netip.Prefix { return netip.Prefix{} }

func prefixFromCount(v uint64, bits int) netip.Prefix {
	return netip.PrefixFrom(countToAddr(CountOf(v), true), bits).Masked()
}

// genericStore hides a MemoryStore's type, so an Allocator on it goes
// through the Store interface only, as on bbolt or etcd.
type genericStore struct{ Store }

// testPath is one way Allocators can use a MemoryStore: "shared" works on
// the store's decoded pool regions directly (the fast path), "generic" sees
// only the Store interface, and "mixed" has the first allocator of a test
// shared and any other generic, on the same store.
type testPath struct {
	name          string
	first, second bool // generic?
}

var testPaths = []testPath{{"shared", false, false}, {"generic", true, true}, {"mixed", false, true}}

// forPaths runs f once for each path.
func forPaths(t *testing.T, f func(t *testing.T, p testPath)) {
	for _, p := range testPaths {
		t.Run(p.name, func(t *testing.T) { f(t, p) })
	}
}

func (p testPath) wrap(st *MemoryStore, generic bool) Store {
	if generic {
		return genericStore{st}
	}
	return st
}

// newAlloc is newAlloc for the path's first allocator.
func (p testPath) newAlloc(t testing.TB, opts Options, specs ...PoolSpec) (*Allocator, *MemoryStore) {
	t.Helper()
	st := NewMemoryStore()
	if opts.Rand == nil {
		opts.Rand = &seq{}
	}
	a, err := NewWithOptions(context.Background(), p.wrap(st, p.first), opts, specs...)
	require.NoError(t, err)
	require.Equal(t, !p.first, a.mem != nil, "path %s", p.name)
	return a, st
}

// other returns another allocator on the store (its MemoryStore, if s is
// a genericStore), generic or not as the path says.
func (p testPath) other(ctx context.Context, s Store, opts Options, specs ...PoolSpec) (*Allocator, error) {
	if g, ok := s.(genericStore); ok {
		s = g.Store
	}
	return NewWithOptions(ctx, p.wrap(s.(*MemoryStore), p.second), opts, specs...)
}

// verifyAlong runs VerifyStore on st over and over in a goroutine, asserting
// each time that the store is sound, until the returned function is called;
// that function waits for the goroutine and returns how many checks ran.
func verifyAlong(t *testing.T, st Store) (stop func() int) {
	done, checked := make(chan struct{}), make(chan struct{})
	checks := 0
	go func() {
		defer close(checked)
		for {
			select {
			case <-done:
				return
			default:
			}
			assert.NoError(t, VerifyStore(ctx, st))
			checks++
		}
	}()
	return func() int {
		close(done)
		<-checked
		return checks
	}
}
