package testnet_test

import (
	"fmt"

	"github.com/addrguard/addrguard/internal/testnet"
)

// A test reads a namespace's neighbour cache to check what ARP taught it; the
// parser behind Host.Neighbors also reads saved ip -j neigh output.
func ExampleParseNeighbors() {
	out := []byte(`[{"dst":"192.0.2.1","dev":"eth0","lladdr":"02:a6:00:00:00:01","state":["REACHABLE"]},
	                {"dst":"192.0.2.7","dev":"eth0","state":["FAILED"]}]`)
	neigh, err := testnet.ParseNeighbors(out)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range neigh {
		fmt.Println(n.Addr, n.MAC, n.State)
	}
	// Output:
	// 192.0.2.1 02:a6:00:00:00:01 [REACHABLE]
	// 192.0.2.7  [FAILED]
}
