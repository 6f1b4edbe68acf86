package ipam

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// limitStore refuses transactions over its limit, as etcd does, and can
// fail (as a crash would stop the writer) at its failAt-th commit.
type limitStore struct {
	genericStore
	limit   int
	commits atomic.Int64
	failAt  int64 // 0: never
	biggest atomic.Int64
}

var errCrash = errors.New("crash")

func (s *limitStore) MaxTxnOps() int { return s.limit }

func (s *limitStore) Commit(ctx context.Context, txn Txn) (uint64, error) {
	if len(txn.Conds) > s.limit || len(txn.Ops) > s.limit {
		return 0, fmt.Errorf("%w: %d conds, %d ops", ErrTxnTooLarge, len(txn.Conds), len(txn.Ops))
	}
	if n := s.commits.Add(1); s.failAt != 0 && n >= s.failAt {
		return 0, errCrash
	}
	if m := int64(max(len(txn.Conds), len(txn.Ops))); m > s.biggest.Load() {
		s.biggest.Store(m)
	}
	return s.genericStore.Commit(ctx, txn)
}

func countPages(t *testing.T, s Store, pool string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for kv, err := range s.Scan(ctx, pagePrefix+pool+"/") {
		require.NoError(t, err)
		n[strings.Split(kv.Key, "/")[4]]++
	}
	return n
}

// fillPages gives 20 owners 1,000 addresses each (20 pages used), in
// transactions within the limit.
func fillPages(t *testing.T, a *Allocator) map[string][]Lease {
	t.Helper()
	held := map[string][]Lease{}
	for i := 0; i < 20; i++ {
		owner := fmt.Sprint("o", i)
		ls, err := a.AllocateN(ctx, "p", owner, 1000)
		require.NoError(t, err)
		held[owner] = ls
	}
	return held
}

func checkHeld(t *testing.T, a *Allocator, held map[string][]Lease) {
	t.Helper()
	for owner, want := range held {
		got, err := a.Lookup(ctx, "p", owner)
		require.NoError(t, err)
		assert.Equal(t, want, got, owner)
	}
	require.NoError(t, a.Verify(ctx))
}

// A spec change over more pages than a transaction may hold is carried out
// in steps, none over the limit.
func TestSpecChangeInSteps(t *testing.T) {
	ms := NewMemoryStore()
	s := &limitStore{genericStore: genericStore{ms}, limit: 6}
	a, err := New(ctx, s, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/16")})
	require.NoError(t, err)
	held := fillPages(t, a)
	require.Equal(t, map[string]int{"0000000000000000": 20}, countPages(t, ms, "p"))

	_, err = a.AddPool(ctx, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/15")})
	require.NoError(t, err)
	assert.LessOrEqual(t, s.biggest.Load(), int64(6))
	assert.Equal(t, map[string]int{"0000000000000001": 20}, countPages(t, ms, "p"), "old epoch swept")
	checkHeld(t, a, held)
	st, err := a.Stats(ctx, "p")
	require.NoError(t, err)
	assert.Equal(t, "20000", st.Allocated.String())
	assert.Equal(t, "131072", st.Total.String())
	// The pool works on: allocate, release.
	l, err := a.Allocate(ctx, "p", "new")
	require.NoError(t, err)
	require.NoError(t, a.Release(ctx, held["o3"][0]))
	held["new"] = []Lease{l}
	held["o3"] = held["o3"][1:]
	checkHeld(t, a, held)

	// Removal in steps: release everything, remove, re-create.
	for owner := range held {
		_, err := a.ReleaseOwner(ctx, "p", owner)
		require.NoError(t, err)
	}
	require.NoError(t, a.RemovePool(ctx, "p"))
	assert.Empty(t, countPages(t, ms, "p"))
	require.NoError(t, a.Verify(ctx))
	_, err = a.AddPool(ctx, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/16")})
	require.NoError(t, err)
	l, err = a.Allocate(ctx, "p", "again")
	require.NoError(t, err)
	assert.Greater(t, l.Generation, held["o0"][999].Generation, "generations keep growing")
}

// A change that stops at any step (the writer crashed) is completed by the
// next allocator that uses the pool, and no lease is lost meanwhile.
func TestSpecChangeInStepsCrash(t *testing.T) {
	// Commits of the change: 1 freezes, 4 write the 20 new pages (6 at a
	// time), 1 switches the epoch, 4 sweep, 1 clears the mark.
	for crashAt := int64(1); crashAt <= 11; crashAt++ {
		t.Run(fmt.Sprint("commit", crashAt), func(t *testing.T) {
			ms := NewMemoryStore()
			s := &limitStore{genericStore: genericStore{ms}, limit: 6}
			a, err := New(ctx, s, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/16")})
			require.NoError(t, err)
			held := fillPages(t, a)
			s.failAt = s.commits.Load() + crashAt
			_, err = a.AddPool(ctx, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/15")})
			require.ErrorIs(t, err, errCrash)
			// Half-done changes are still sound.
			require.NoError(t, VerifyStore(ctx, ms))

			s2 := &limitStore{genericStore: genericStore{ms}, limit: 6}
			b, err := New(ctx, s2)
			require.NoError(t, err)
			st, err := b.Stats(ctx, "p")
			require.NoError(t, err)
			assert.Equal(t, "20000", st.Allocated.String())
			if crashAt > 1 { // the change was recorded: completed
				assert.Equal(t, "131072", st.Total.String())
				assert.Equal(t, map[string]int{"0000000000000001": 20}, countPages(t, ms, "p"))
			} else {
				assert.Equal(t, "65536", st.Total.String())
			}
			checkHeld(t, b, held)
		})
	}
}
