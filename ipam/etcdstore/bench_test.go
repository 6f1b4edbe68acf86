package etcdstore

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/ipam/etcdstore/etcdtest"
	"github.com/stretchr/testify/require"
)

// BenchmarkAllocate measures allocations per second through a real etcd
// server embedded in the test process, its data in a directory on disk
// (b.TempDir; fsync=on is etcd's default durability, every commit
// fsynced before it is acknowledged; fsync=off is UnsafeNoFsync).
// allocators=N is N allocators, each with its own etcd client, allocating
// from one pool at once; batch=K allocates K addresses per owner with
// AllocateN, in one etcd transaction (batch=1: Allocate, one transaction
// per address). watch=off is allocators with Options.NoWatch (each then
// sees the others' pages only through lost compares). allocs/s counts
// addresses. go-ipam's published etcd figure is 368 acquires/s.
func BenchmarkAllocate(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		for _, allocators := range []int{1, 8} {
			for _, batch := range []int{1, 64} {
				name := fmt.Sprintf("fsync=%s/allocators=%d/batch=%d", map[bool]string{true: "on", false: "off"}[fsync], allocators, batch)
				b.Run(name, func(b *testing.B) { benchAllocate(b, fsync, allocators, batch, true) })
				if allocators > 1 {
					b.Run(name+"/watch=off", func(b *testing.B) { benchAllocate(b, fsync, allocators, batch, false) })
				}
			}
		}
	}
}

func benchAllocate(b *testing.B, fsync bool, allocators, batch int, watch bool) {
	c := etcdtest.Start(b, etcdtest.Options{Fsync: fsync})
	spec := ipam.PoolSpec{Name: "p", Subnet: netip.MustParsePrefix("10.0.0.0/8"), Strategy: ipam.Random}
	_ = newAllocator(b, c, Options{}, spec)
	as := make([]*ipam.Allocator, allocators)
	for i := range as {
		var err error
		as[i], err = ipam.NewWithOptions(ctx, dial(b, c, Options{}), ipam.Options{NoWatch: !watch})
		require.NoError(b, err)
		// Load the pool before the clock starts.
		_, err = as[i].Stats(ctx, "p")
		require.NoError(b, err)
	}
	var next atomic.Int64
	var failed atomic.Value
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w, a := range as {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				owner := fmt.Sprintf("b%d-%d", w, i)
				var err error
				if batch == 1 {
					_, err = a.Allocate(ctx, "p", owner)
				} else {
					_, err = a.AllocateN(ctx, "p", owner, batch)
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "allocs/s")
}
