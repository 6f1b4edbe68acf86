package addrguard_test

// The sketches of the package tour (doc.go), compiled so that they follow the
// packages' API. They have no Output comment: they need a network, a capture
// or a log, so go test compiles them without running them.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/logscan"
	"github.com/addrguard/addrguard/pcapscan"
	"github.com/addrguard/addrguard/reconcile"
)

func Example_ipam() {
	ctx := context.Background()
	data, _ := os.ReadFile("pools.yaml")
	pools, err := ipam.ParseManifest(data)                        // IPPool YAML/JSON or CNI ipam config
	alloc, err := ipam.New(ctx, ipam.NewMemoryStore(), pools...)  // or a bbolt file, or etcd
	lease, err := alloc.Allocate(ctx, "pool-us-west", "pod-7f3c") // same owner: same lease
	fmt.Println(lease.Addr, err)
}

func Example_arpcheck() {
	ctx := context.Background()
	ifi, _ := net.InterfaceByName("eth0")
	p, err := arpcheck.New(ifi, arpcheck.Options{Timing: arpcheck.Fast})
	if err != nil {
		return
	}
	res, err := p.Probe(ctx, netip.MustParseAddr("192.0.2.10"))
	if res.Status == arpcheck.InUse {
		fmt.Println("held by", res.Holders)
	}
}

func Example_pcapscan() {
	file, _ := os.Open("capture.pcapng")
	sc := pcapscan.New(pcapscan.Options{})
	err := sc.Scan(file, func(f pcapscan.Finding) { fmt.Println(f) })
	// f.Kind is "arp-conflict", "echo-multi-responder", "tcp-restart", …
	_ = err
}

func Example_logscan() {
	file, _ := os.Open("/var/log/auth.log")
	an := logscan.New(logscan.Options{})
	err := an.Scan(file, func(f logscan.Finding) { fmt.Println(f) })
	// f.Rule is "brute-force", "address-conflict", "off-hours-login", …
	_ = err
}

type User struct{ Name string }

func Example_reconcile() {
	var replicaA, replicaB reconcile.Record[User]
	merged := reconcile.Sync(replicaA, replicaB)          // siblings kept, nothing lost
	d := reconcile.LWW[User]().Resolve(merged.Versions()) // winner, discarded, warnings
	fmt.Println(d.Audit("user:1001"))
}
