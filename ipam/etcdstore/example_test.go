package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/ipam/etcdstore"
	"github.com/addrguard/addrguard/ipam/etcdstore/etcdtest"
)

// Two allocators, as on two hosts, share one pool through etcd (here an
// embedded one); the second sees the first one's lease.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "etcdstore-example")
	defer os.RemoveAll(dir)
	cluster, err := etcdtest.New(1, etcdtest.Options{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()

	hostA, err := etcdstore.Dial(ctx, cluster.Endpoints(), etcdstore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hostA.Close()
	a, err := ipam.New(ctx, hostA, ipam.PoolSpec{Name: "pods", Subnet: netip.MustParsePrefix("192.0.2.0/24")})
	if err != nil {
		fmt.Println(err)
		return
	}
	l, err := a.Allocate(ctx, "pods", "pod-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("host A:", l.Addr, l.Owner)

	hostB, err := etcdstore.Dial(ctx, cluster.Endpoints(), etcdstore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hostB.Close()
	b, err := ipam.New(ctx, hostB)
	if err != nil {
		fmt.Println(err)
		return
	}
	l, _ = b.Allocate(ctx, "pods", "pod-2")
	fmt.Println("host B:", l.Addr, l.Owner)
	again, _ := b.Allocate(ctx, "pods", "pod-1") // idempotent per owner, on any host
	fmt.Println("host B:", again.Addr, again.Owner)
	fmt.Println("verify:", ipam.VerifyStore(ctx, hostB))
	// Output:
	// host A: 192.0.2.1 pod-1
	// host B: 192.0.2.2 pod-2
	// host B: 192.0.2.1 pod-1
	// verify: <nil>
}

// A cluster that does not answer is an error naming the operation and the
// endpoints, never an empty store.
func ExampleDial_unreachable() {
	ctx := context.Background()
	_, err := etcdstore.Dial(ctx, []string{"127.0.0.1:1"}, etcdstore.Options{DialTimeout: 200 * time.Millisecond})
	var e *etcdstore.Error
	if errors.As(err, &e) {
		fmt.Println(e.Op, e.Endpoints)
	}
	// Output:
	// dial 127.0.0.1:1
}
