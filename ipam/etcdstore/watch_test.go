package etcdstore

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/addrguard/addrguard/ipam"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func allocated(t *testing.T, a *ipam.Allocator) string {
	t.Helper()
	st, err := a.Stats(ctx, "p")
	require.NoError(t, err)
	return st.Allocated.String()
}

// A second allocator (its own client, as a second process would have) sees
// the first one's allocations, releases and spec changes through the
// watch: no polling, no Refresh, no conflict first.
func TestWatchKeepsViewCurrent(t *testing.T) {
	c := startEtcd(t)
	spec := ipam.PoolSpec{Name: "p", Subnet: netip.MustParsePrefix("10.0.0.0/20")}
	a := newAllocator(t, c, Options{}, spec)
	b := newAllocator(t, c, Options{})
	unwatched, err := ipam.NewWithOptions(ctx, dial(t, c, Options{}), ipam.Options{NoWatch: true})
	require.NoError(t, err)
	require.Equal(t, "0", allocated(t, b))
	require.Equal(t, "0", allocated(t, unwatched))

	var ls []ipam.Lease
	for i := 0; i < 100; i++ {
		l, err := a.Allocate(ctx, "p", fmt.Sprint("o", i))
		require.NoError(t, err)
		ls = append(ls, l)
	}
	_, err = a.AllocateN(ctx, "p", "bulk", 2000) // several pages
	require.NoError(t, err)
	waitFor(t, "b to see 2,100 allocations", func() bool { return allocated(t, b) == "2100" })
	for _, l := range ls[:50] {
		require.NoError(t, a.Release(ctx, l))
	}
	waitFor(t, "b to see the releases", func() bool { return allocated(t, b) == "2050" })
	// Without the watch, the view is the one loaded.
	assert.Equal(t, "0", allocated(t, unwatched))

	// A spec change (a new epoch of pages) makes b read the pool again.
	spec.Subnet = netip.MustParsePrefix("10.0.0.0/19")
	_, err = a.AddPool(ctx, spec)
	require.NoError(t, err)
	waitFor(t, "b to see the new spec", func() bool {
		st, err := b.Stats(ctx, "p")
		require.NoError(t, err)
		return st.Total.String() == "8192" && st.Allocated.String() == "2050"
	})
	require.NoError(t, b.Verify(ctx))
}

// A stale view cannot hand out an address twice: an allocator that has
// not seen another's allocations (no watch) picks addresses it believes
// free, loses the compare on the server, re-reads and picks others.
func TestStaleViewCannotDoubleAllocate(t *testing.T) {
	c := startEtcd(t)
	a := newAllocator(t, c, Options{}, poolSpec(ipam.Sequential))
	stale, err := ipam.NewWithOptions(ctx, dial(t, c, Options{}), ipam.Options{NoWatch: true})
	require.NoError(t, err)
	require.Equal(t, "0", allocated(t, stale)) // loaded while empty

	held := map[netip.Addr]string{}
	ls, err := a.AllocateN(ctx, "p", "first", 300)
	require.NoError(t, err)
	for _, l := range ls {
		held[l.Addr] = l.Owner
	}
	require.Equal(t, "0", allocated(t, stale), "still the stale view")
	for i := 0; i < 20; i++ {
		l, err := stale.Allocate(ctx, "p", fmt.Sprint("late", i))
		require.NoError(t, err)
		require.NotContains(t, held, l.Addr, "handed out twice")
		held[l.Addr] = l.Owner
	}
	// A specific address the stale view believes free is refused.
	_, err = stale.AllocateAddr(ctx, "p", "x", ls[299].Addr)
	require.ErrorIs(t, err, ipam.ErrAlreadyAllocated)
	checkStore(t, a, held, nil)
}
