package ipam

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// losingStore loses the compare of every commit that writes a page, as if
// another process always got there first.
type losingStore struct {
	Store
	commits atomic.Int64
	onLose  func(n int64)
}

func (s *losingStore) Commit(ctx context.Context, txn Txn) (uint64, error) {
	for _, op := range txn.Ops {
		if len(op.Key) > len(pagePrefix) && op.Key[:len(pagePrefix)] == pagePrefix {
			n := s.commits.Add(1)
			if s.onLose != nil {
				s.onLose(n)
			}
			return 0, &ConflictError{Key: op.Key}
		}
	}
	return s.Store.Commit(ctx, txn)
}

// A lost compare is retried with backoff, a bounded number of times, and
// the error says so.
func TestConflictRetriesAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(a *Allocator) error
	}{
		{"Allocate", func(a *Allocator) error { _, err := a.Allocate(ctx, "p", "o"); return err }},
		{"AllocateN", func(a *Allocator) error { _, err := a.AllocateN(ctx, "p", "o", 5); return err }},
		{"AllocateAddr", func(a *Allocator) error { _, err := a.AllocateAddr(ctx, "p", "o", addr("10.0.0.9")); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &losingStore{Store: NewMemoryStore()}
			a, err := NewWithOptions(ctx, st, Options{MaxRetries: 4, RetryBackoff: time.Microsecond, Rand: &seq{}}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/24")})
			require.NoError(t, err)
			err = tc.run(a)
			require.ErrorIs(t, err, ErrConflict)
			assert.Contains(t, err.Error(), "gave up after")
			assert.Contains(t, err.Error(), `owner "o"`)
			assert.Equal(t, int64(5), st.commits.Load(), "1 attempt + MaxRetries retries")
		})
	}
}

// A cancelled context ends the backoff wait.
func TestConflictBackoffHonoursContext(t *testing.T) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := &losingStore{Store: NewMemoryStore(), onLose: func(n int64) {
		if n == 2 {
			cancel() // during the second retry's (hour-long) wait
		}
	}}
	a, err := NewWithOptions(ctx, st, Options{RetryBackoff: time.Hour, Rand: &seq{}}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/24")})
	require.NoError(t, err)
	_, err = a.Allocate(cctx, "p", "o")
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, int64(2), st.commits.Load())
}
