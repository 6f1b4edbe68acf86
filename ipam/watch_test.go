package ipam

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeWatcher is a generic MemoryStore whose watch events the test sends.
type fakeWatcher struct {
	genericStore
	mu      sync.Mutex
	fns     []func(WatchEvent)
	prefix  string
	failing bool
}

func (w *fakeWatcher) Watch(ctx context.Context, prefix string, fn func(WatchEvent)) (func(), error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing {
		return nil, errors.New("no watch today")
	}
	w.fns = append(w.fns, fn)
	w.prefix = prefix
	return func() {}, nil
}

func (w *fakeWatcher) send(ev WatchEvent) {
	w.mu.Lock()
	fn := w.fns[len(w.fns)-1]
	w.mu.Unlock()
	fn(ev)
}

func (w *fakeWatcher) watches() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.fns)
}

func TestWatchEvents(t *testing.T) {
	ms := NewMemoryStore()
	w := &fakeWatcher{genericStore: genericStore{ms}}
	a, err := NewWithOptions(ctx, w, Options{Rand: &seq{}}, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/22")})
	require.NoError(t, err)
	other, err := New(ctx, genericStore{ms}) // writes behind a's back
	require.NoError(t, err)
	st, err := a.Stats(ctx, "p")
	require.NoError(t, err)
	require.Equal(t, 1, w.watches(), "the first load starts the stream")
	assert.Equal(t, keyPrefix, w.prefix)
	assert.Equal(t, "0", st.Allocated.String())

	ls, err := other.AllocateN(ctx, "p", "o", 5)
	require.NoError(t, err)
	st, _ = a.Stats(ctx, "p")
	require.Equal(t, "0", st.Allocated.String(), "no event yet")
	// Deliver the page as a store would.
	kvs, err := ms.Get(ctx, pageKey(pagesPrefix("p", 0), Count{}))
	require.NoError(t, err)
	w.send(WatchEvent{Key: kvs[0].Key, Value: kvs[0].Value, Revision: kvs[0].Revision})
	st, _ = a.Stats(ctx, "p")
	assert.Equal(t, "5", st.Allocated.String())
	// An older event for the same page changes nothing; nor do owner keys,
	// other pools' keys and keys of other epochs.
	w.send(WatchEvent{Key: kvs[0].Key, Value: newPage(0), Revision: kvs[0].Revision - 1})
	w.send(WatchEvent{Key: ownerKey("p", "o"), Value: []byte("x"), Revision: kvs[0].Revision + 10})
	w.send(WatchEvent{Key: pageKey(pagesPrefix("q", 0), Count{}), Value: []byte("x"), Revision: kvs[0].Revision + 10})
	w.send(WatchEvent{Key: pageKey(pagesPrefix("p", 7), Count{}), Value: []byte("x"), Revision: kvs[0].Revision + 10})
	st, _ = a.Stats(ctx, "p")
	assert.Equal(t, "5", st.Allocated.String())
	// A corrupt page makes the pool load again (from the store: 5).
	w.send(WatchEvent{Key: kvs[0].Key, Value: []byte("junk"), Revision: kvs[0].Revision + 20})
	st, _ = a.Stats(ctx, "p")
	assert.Equal(t, "5", st.Allocated.String())

	// A release seen as a newer page.
	require.NoError(t, other.Release(ctx, ls[0]))
	kvs, _ = ms.Get(ctx, pageKey(pagesPrefix("p", 0), Count{}))
	w.send(WatchEvent{Key: kvs[0].Key, Value: kvs[0].Value, Revision: kvs[0].Revision})
	st, _ = a.Stats(ctx, "p")
	assert.Equal(t, "4", st.Allocated.String())

	// A newer pool record reloads the pool.
	_, err = other.AddPool(ctx, PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/21")})
	require.NoError(t, err)
	kvs, _ = ms.Get(ctx, poolKey("p"))
	w.send(WatchEvent{Key: kvs[0].Key, Value: kvs[0].Value, Revision: kvs[0].Revision})
	st, _ = a.Stats(ctx, "p")
	assert.Equal(t, "2048", st.Total.String())

	// The end of the stream reloads every pool and starts a new stream.
	_, err = other.AllocateN(ctx, "p", "o2", 3)
	require.NoError(t, err)
	w.send(WatchEvent{Err: errors.New("compacted")})
	st, _ = a.Stats(ctx, "p")
	assert.Equal(t, "7", st.Allocated.String())
	assert.Equal(t, 2, w.watches())

	// A store that cannot watch now: the allocator works on.
	w.mu.Lock()
	w.failing = true
	w.mu.Unlock()
	w.send(WatchEvent{Err: errors.New("gone")})
	_, err = a.Allocate(ctx, "p", "x")
	require.NoError(t, err)
	assert.Equal(t, 2, w.watches())

	// NoWatch: no stream at all.
	w2 := &fakeWatcher{genericStore: genericStore{ms}}
	b, err := NewWithOptions(ctx, w2, Options{NoWatch: true})
	require.NoError(t, err)
	_, err = b.Stats(ctx, "p")
	require.NoError(t, err)
	assert.Zero(t, w2.watches())
}
