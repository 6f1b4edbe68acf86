// Package ipam prevents address conflicts before they happen: it keeps IP pools
// (subnet, gateway, range, reserved addresses and ranges) and allocates addresses
// from them so that no address is ever handed to two owners, across goroutines,
// processes and restarts. It also finds pools of different clusters that overlap
// and warns as a pool fills up.
//
// # Pools
//
// A PoolSpec names a subnet (plus, in the CNI range-set form, Extra subnets),
// a gateway, optional rangeStart/rangeEnd and a reserved set of addresses,
// a-b ranges and CIDRs. Compile validates it (errors name the field and the
// value: a non-canonical subnet, a gateway outside it, a reversed range…) and
// builds the allocatable set once with netipx.IPSetBuilder:
//
//	(range ∩ subnet) − network/broadcast − gateway − reserved
//
// ParseManifest reads what platform teams already have: IPPool manifests in
// YAML or JSON, and CNI host-local configurations, including the "ranges"
// list-of-range-sets form. Counts are exact 128-bit Counts, so an IPv6 /48
// reports 1208925819614629174706176 addresses, not a rounded float.
//
// # Allocation
//
// An Allocator hands out Leases {Pool, Addr, Owner, Generation}. Allocating
// for an owner that already holds a lease returns that lease (a retried CNI
// ADD gets the same address); AllocateN gives an owner n addresses in one
// transaction; AllocateAddr takes a specific address. Release checks the
// generation, which grows with every allocation of an address and is never
// reused (not after a release, a spec change, a pool's removal and
// re-creation, nor a crash), so a late release of an old lease fails with
// ErrStaleLease instead of freeing the next owner's address.
//
// Allocation state lives in ordinal space over the allocatable ranges, in
// bitmap pages of 1,024 addresses created when first used, with a radix
// summary of full pages: an empty /8 or /64 costs nothing, and the next free
// address is found in O(log pages) at any fill. Strategies are Sequential,
// RoundRobin (host-local), Random and FIFO with a reuse cooldown (Calico),
// chosen per pool. An optional Verifier (for example an ARP probe built with
// package arpcheck, which ipam does not import) checks each address before
// it is handed out; addresses that fail are quarantined. Pools report warn
// and critical utilization levels with hysteresis through Options.OnLevel.
//
// # Stores
//
// The Store is the truth; its only mutation is an atomic multi-key
// compare-and-swap on per-key revisions (see Store for the key layout and
// the versioned value encodings). Every allocation commits the address's
// page and the owner's record in one transaction, conditioned on the
// revisions the allocator read, so two allocators (in one process or many)
// can never both win an address: the loser re-reads and retries. The
// MemoryStore is the default; BoltStore keeps the state in a bbolt file that
// several processes share, one transaction per operation; package
// ipam/etcdstore keeps it in etcd v3 for allocators on many hosts (one etcd
// transaction per operation, its revisions compared by the server). Lost
// compares are retried after re-reading, with jittered backoff, at most
// Options.MaxRetries times; the error then wraps ErrConflict. Package
// ipam/storetest checks any Store against the contract.
//
// Two optional interfaces let a store say more. A TxnLimiter (etcd's
// --max-txn-ops) bounds every transaction: spec changes and removals of
// pools with more pages than that are carried out in steps that a crash
// cannot leave half-done (the next allocator completes them). A Watcher
// streams changes: the Allocator keeps its cached pages current from it,
// so Stats and its choice of addresses show other processes' allocations
// as they happen. Caches only steer; the store's compare decides.
//
// The MemoryStore keeps each pool's keys decoded (pages, an owner index,
// the strategy records), and Allocators on it work on that state directly
// instead of through byte values: an allocation reads and changes the page
// and the owner's record under the store's locks, a compare-and-swap that
// cannot fail, so nothing is encoded, copied or retried, and every Allocator
// on the store shares one state. Through the Store methods the MemoryStore
// still answers exactly as a plain map of bytes would, so VerifyStore reads
// the truth. A type wrapping a MemoryStore is used through the interface.
//
// The duplicate-address bugs of other IPAMs do not have a place to happen
// here: there is no read-modify-write without a compare; releases match a
// unique generation, not a name; garbage collection (Reconcile) releases a
// lease only after two dead sightings and through the same generation check;
// there is no free list to hold an address twice (the bitmap is the free
// set); and addresses are normalized (Addr.Unmap) so 4- and 16-byte forms
// of one IPv4 address are one address. VerifyStore checks all of it.
//
// # Overlaps
//
// FindOverlaps sorts every pool's ranges once and sweeps them, reporting each
// overlapping pair with the intersecting ranges, separately for subnets and
// for allocatable sets; pools of different clusters may share a name.
// AddPool applies an OverlapPolicy (reject, warn, allow) against the store's
// other pools.
package ipam
