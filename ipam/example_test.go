package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/addrguard/addrguard/ipam"
)

func Example() {
	ctx := context.Background()
	pools, err := ipam.ParseManifest([]byte(`
apiVersion: mcp.example.com/v1
kind: IPPool
metadata: {name: pool-us-west}
spec:
  subnet: "10.100.0.0/16"
  gateway: "10.100.0.1"
  reservedIPs: ["10.100.0.100-10.100.0.110"]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	alloc, err := ipam.New(ctx, ipam.NewMemoryStore(), pools...)
	if err != nil {
		fmt.Println(err)
		return
	}
	lease, _ := alloc.Allocate(ctx, "pool-us-west", "pod-7f3c")
	again, _ := alloc.Allocate(ctx, "pool-us-west", "pod-7f3c") // a retried CNI ADD
	fmt.Println(lease.Addr, again.Addr == lease.Addr)
	st, _ := alloc.Stats(ctx, "pool-us-west")
	fmt.Println(st.Total, st.Reserved, st.Allocated, st.Free)
	// Output:
	// 10.100.0.2 true
	// 65536 14 1 65521
}

func ExampleAllocator_Release() {
	ctx := context.Background()
	alloc, _ := ipam.New(ctx, ipam.NewMemoryStore(), ipam.PoolSpec{Name: "p", Subnet: netip.MustParsePrefix("192.0.2.0/30")})
	old, _ := alloc.Allocate(ctx, "p", "pod-a")
	_ = alloc.Release(ctx, old)
	renewed, _ := alloc.Allocate(ctx, "p", "pod-a") // same address, new generation
	err := alloc.Release(ctx, old)                  // a late retry of the first release
	fmt.Println(renewed.Addr == old.Addr, errors.Is(err, ipam.ErrStaleLease))
	// Output: true true
}

func ExampleFindOverlaps() {
	east, _ := ipam.ParseManifest([]byte(`{"kind":"IPPool","metadata":{"name":"pods","labels":{"cluster":"east"}},"spec":{"subnet":"10.100.0.0/16"}}`))
	west, _ := ipam.ParseManifest([]byte(`{"kind":"IPPool","metadata":{"name":"pods","labels":{"cluster":"west"}},"spec":{"subnet":"10.100.128.0/17","rangeStart":"10.100.200.0"}}`))
	ovs, _ := ipam.OverlapsOf(append(east, west...)...)
	for _, o := range ovs {
		fmt.Printf("%s/%s %s/%s %s %s (%s addresses)\n", o.A.Cluster, o.A.Name, o.B.Cluster, o.B.Name, o.Kind, o.RangeString(), o.Size)
	}
	// Output:
	// east/pods west/pods subnet 10.100.128.0/17 (32768 addresses)
	// east/pods west/pods allocatable 10.100.200.0-10.100.255.254 (14335 addresses)
}

func ExampleParseManifest_cni() {
	specs, _ := ipam.ParseManifest([]byte(`{"cniVersion":"1.0.0","name":"dual","type":"bridge",
	  "ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.2.0/24","gateway":"10.1.2.1"}],[{"subnet":"2001:db8:1::/64"}]]}}`))
	for _, s := range specs {
		p, _ := ipam.Compile(s)
		fmt.Println(s.Name, s.Subnet, p.Size())
	}
	// Output:
	// dual-0 10.1.2.0/24 253
	// dual-1 2001:db8:1::/64 18446744073709551615
}

func ExampleOpenBolt() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ipam")
	defer os.RemoveAll(dir)
	store, err := ipam.OpenBolt(ctx, filepath.Join(dir, "ipam.db"), ipam.BoltOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	alloc, _ := ipam.New(ctx, store, ipam.PoolSpec{Name: "vips", Subnet: netip.MustParsePrefix("198.51.100.0/24"), Strategy: ipam.RoundRobin})
	leases, _ := alloc.AllocateN(ctx, "vips", "lb-1", 3) // one transaction
	for _, l := range leases {
		fmt.Println(l.Addr)
	}
	fmt.Println(ipam.VerifyStore(ctx, store))
	// Output:
	// 198.51.100.1
	// 198.51.100.2
	// 198.51.100.3
	// <nil>
}

func ExampleOptions_verifier() {
	ctx := context.Background()
	inUse := netip.MustParseAddr("192.0.2.1") // say, an ARP probe got an answer
	alloc, _ := ipam.NewWithOptions(ctx, ipam.NewMemoryStore(), ipam.Options{
		Verifier: func(ctx context.Context, pool string, a netip.Addr) error {
			if a == inUse {
				return fmt.Errorf("%s answered by 02:00:5e:00:53:01", a)
			}
			return nil
		},
		OnLevel: func(e ipam.LevelEvent) { fmt.Println("level", e.From, "->", e.To) },
	}, ipam.PoolSpec{Name: "p", Subnet: netip.MustParsePrefix("192.0.2.0/29"), Warn: 0.5, Critical: 0.8})
	l, _ := alloc.Allocate(ctx, "p", "vm-1")
	fmt.Println(l.Addr)
	_, _ = alloc.Allocate(ctx, "p", "vm-2")
	st, _ := alloc.Stats(ctx, "p")
	fmt.Println(st.Allocated, st.Quarantined, st.Free)
	// Output:
	// 192.0.2.2
	// level ok -> warn
	// 2 1 3
}
