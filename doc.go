// Package addrguard is a toolkit for IP address conflicts in multi-cluster
// platforms, where several control planes share one network and two hosts, pods
// or virtual IPs end up claiming the same address. This package holds no code; it
// is the tour. Each subpackage answers one symptom, and none imports another, so a
// program takes only what it needs.
//
// # A pool overlaps another cluster's: ipam
//
// Two control planes hand out addresses from ranges that intersect, or one
// allocator gives an address out twice after a crash or a retried request.
// Package ipam keeps pools (subnet, gateway, range, reserved addresses), finds
// overlaps between clusters' pools, and allocates so that an address never has two
// owners, in memory, in a bbolt file shared by processes, or in etcd.
//
//	pools, err := ipam.ParseManifest(data)             // IPPool YAML/JSON or CNI ipam config
//	alloc, err := ipam.New(ctx, ipam.NewMemoryStore(), pools...)
//	lease, err := alloc.Allocate(ctx, "pool-us-west", "pod-7f3c") // same owner: same lease
//
// # Two hosts answer ARP for one address: arpcheck
//
// Before an address is bound, or after a virtual IP moves, ask the link whether
// someone already holds it. Package arpcheck runs RFC 5227 probes (and IPv6 DAD)
// for many addresses at once over one raw socket and names every MAC that
// answered; arpcheck/arpchecktest is an in-memory network for testing code that
// uses it.
//
//	p, err := arpcheck.New(ifi, arpcheck.Options{Timing: arpcheck.Fast})
//	res, err := p.Probe(ctx, netip.MustParseAddr("192.0.2.10"))
//	if res.Status == arpcheck.InUse { fmt.Println("held by", res.Holders) }
//
// # A retry storm or reconnects in a capture: pcapscan
//
// Someone recorded the traffic while services misbehaved. Package pcapscan
// streams pcap and pcapng files (or a live interface) in constant memory and
// reports one address claimed by several MACs, probes that were answered, pings
// answered twice, repeated request IDs and connections torn down and re-made.
//
//	sc := pcapscan.New(pcapscan.Options{})
//	err := sc.Scan(file, func(f pcapscan.Finding) { fmt.Println(f) })
//	// f.Kind is "arp-conflict", "echo-multi-responder", "tcp-restart", …
//
// # Brute force or a "duplicate address" message in a log: logscan
//
// The system logs say who tried to log in, from where and when, and the kernel,
// NetworkManager or DHCP clients say when an address was found in use. Package
// logscan reads syslog, RFC 5424 and journald lines and reports brute force, user
// enumeration, success after failures, off-hours logins, port scans and address
// conflicts.
//
//	an := logscan.New(logscan.Options{})
//	err := an.Scan(file, func(f logscan.Finding) { fmt.Println(f) })
//	// f.Rule is "brute-force", "address-conflict", "off-hours-login", …
//
// # Two replicas diverged during a partition: reconcile
//
// Both sides of a split changed the same key. Package reconcile tells causally
// ordered writes from concurrent ones with version vectors and dotted version
// vector sets, resolves them by a deterministic policy and writes an audit line
// that every replica renders byte for byte the same.
//
//	merged := reconcile.Sync(replicaA, replicaB)            // siblings kept, nothing lost
//	d := reconcile.LWW[User]().Resolve(merged.Versions())    // winner, discarded, warnings
//	fmt.Println(d.Audit("user:1001"))
//
// # Programs
//
// The examples directory has one program per job (go run ./examples/NAME); the
// README lists them. examples/diagnose puts the packages together: given pool
// manifests and stores, captures, logs and replicated records (and optionally
// the live link), it groups what every package finds by conflicted address and
// says how sure it is and what to do. The sketches above are compiled in
// example_test.go, so they follow the API.
package addrguard
