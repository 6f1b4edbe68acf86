// Package testnet builds private network topologies for addrguard's tests: network
// namespaces joined by veth pairs or by a bridge, created from a Go test running as
// root and torn down with t.Cleanup, also when the test fails.
//
//	testnet.Require(t)            // skips unless root with working namespaces
//	a, b := testnet.Pair(t)       // two namespaces joined by one veth pair
//	hosts := testnet.Switch(t, 4) // four namespaces on one bridge, like a LAN
//	a.AddAddr(netip.MustParsePrefix("192.0.2.1/24"))
//	a.Do(func() error { /* open a raw socket here: it stays in a's namespace */ })
//
// Every host has one interface named "eth0" with a locally administered MAC
// (02:…), brought up together with its loopback. Addresses are whatever the test
// adds; tests use the documentation ranges 192.0.2.0/24, 198.51.100.0/24,
// 203.0.113.0/24 and 2001:db8::/32.
//
// # Why the ip command
//
// Topologies are built with iproute2's ip command (ip netns, ip link, ip addr)
// rather than with a netlink library. Every step is then the same command a person
// would type to reproduce a failing test by hand, the command's own error text
// reaches the test log, and the package adds no dependency beyond
// golang.org/x/sys, which Do needs for setns(2). The price is a fork per step, a
// few milliseconds each, which is negligible next to what the tests measure.
//
// # Names and cleanup
//
// Namespaces are named "agtest-PID-N". Each one is registered for deletion the
// moment it exists, so a topology that fails half-way is still removed; deleting a
// namespace destroys the veth ends and bridge inside it. Nothing is created in the
// namespace the test runs in. Require also removes namespaces left behind by test
// processes that no longer exist (killed with SIGKILL, say), so crashed runs do not
// accumulate.
package testnet
