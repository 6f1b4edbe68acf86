package ipam

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func storeImpls(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"memory": func(t *testing.T) Store { return NewMemoryStore() },
		// The same store, with allocators on it going through the
		// interface only (as on bbolt) instead of its decoded state.
		"memory-generic": func(t *testing.T) Store { return genericStore{NewMemoryStore()} },
		"bolt": func(t *testing.T) Store {
			s, err := OpenBolt(ctx, filepath.Join(t.TempDir(), "s.db"), BoltOptions{NoSync: true})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			return s
		},
		"bolt-exclusive": func(t *testing.T) Store {
			s, err := OpenBolt(ctx, filepath.Join(t.TempDir(), "s.db"), BoltOptions{NoSync: true, Exclusive: true})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

// The allocator works the same on every store.
func TestAllocatorOnEveryStore(t *testing.T) {
	for name, mk := range storeImpls(t) {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			a, err := NewWithOptions(ctx, s, Options{Rand: &seq{}}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/22"), Strategy: Random})
			require.NoError(t, err)
			ls, err := a.AllocateN(ctx, "p", "bulk", 600)
			require.NoError(t, err)
			l, err := a.Allocate(ctx, "p", "one")
			require.NoError(t, err)
			require.NoError(t, a.Release(ctx, ls[7]))
			assert.ErrorIs(t, a.Release(ctx, ls[7]), ErrStaleLease)
			verifyOK(t, a)
			// A second allocator on the same store sees the same state.
			b, err := New(ctx, s)
			require.NoError(t, err)
			st, err := b.Stats(ctx, "p")
			require.NoError(t, err)
			assert.Equal(t, "600", st.Allocated.String())
			got, err := b.Allocate(ctx, "p", "one")
			require.NoError(t, err)
			assert.Equal(t, l, got)
		})
	}
}

func TestBoltPersistsAndValidates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := OpenBolt(ctx, path, BoltOptions{})
	require.NoError(t, err)
	a, err := New(ctx, s, PoolSpec{Name: "p", Subnet: prefix("192.0.2.0/24")})
	require.NoError(t, err)
	l, err := a.Allocate(ctx, "p", "o")
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s, err = OpenBolt(ctx, path, BoltOptions{})
	require.NoError(t, err)
	a, err = New(ctx, s)
	require.NoError(t, err)
	got, err := a.Allocate(ctx, "p", "o")
	require.NoError(t, err)
	assert.Equal(t, l, got)
	require.NoError(t, s.Close())

	// A bbolt file of something else is refused.
	other := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(other, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("format"), []byte("something 9"))
	}))
	require.NoError(t, db.Close())
	_, err = OpenBolt(ctx, other, BoltOptions{})
	assert.ErrorIs(t, err, ErrBadFile)

	// A value without its revision framing is refused.
	db, err = bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("kv")).Put([]byte("x"), []byte("short")) }))
	require.NoError(t, db.Close())
	_, err = OpenBolt(ctx, path, BoltOptions{})
	assert.ErrorIs(t, err, ErrBadFile)

	// Not a bbolt file at all.
	junk := filepath.Join(t.TempDir(), "junk.db")
	require.NoError(t, os.WriteFile(junk, []byte("hello, not a database, just some bytes here"), 0o600))
	_, err = OpenBolt(ctx, junk, BoltOptions{Timeout: time.Second})
	assert.Error(t, err)
}

func TestBoltLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	held, err := OpenBolt(ctx, path, BoltOptions{Exclusive: true})
	require.NoError(t, err)
	_, err = OpenBolt(ctx, path, BoltOptions{Timeout: 50 * time.Millisecond})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrLockTimeout), "%v", err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = OpenBolt(cctx, path, BoltOptions{Timeout: time.Minute})
	assert.ErrorIs(t, err, context.Canceled)
	require.NoError(t, held.Close())
	s, err := OpenBolt(ctx, path, BoltOptions{Timeout: time.Second})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}
