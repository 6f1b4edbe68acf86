// Package etcdstore is an ipam.Store on etcd v3, so that allocators on many
// hosts and clusters share one address space:
//
//	st, err := etcdstore.Dial(ctx, []string{"10.0.0.5:2379", "10.0.0.6:2379"}, etcdstore.Options{})
//	a, err := ipam.New(ctx, st, ipam.PoolSpec{Name: "pods", Subnet: netip.MustParsePrefix("10.96.0.0/16")})
//	lease, err := a.Allocate(ctx, "pods", "pod-uid-1234")
//
// # Guarantees
//
// Every mutation is one etcd transaction whose conditions the server
// evaluates: an allocation commits "this page still has the revision I
// read, this owner still has no record" together with the new page and
// the owner's record. Two processes can therefore never get one address,
// whatever their caches say, and a crash never leaves an address without
// its owner record (or the reverse). Allocators working on different pages
// of a pool do not conflict; the one that loses a compare re-reads the key
// and retries, with backoff, a bounded number of times (ipam.Options).
//
// Leases live in etcd: an allocator that restarts, on any host, finds them
// (Allocate for an owner that holds a lease returns it, so a retried
// request is idempotent, also after a failure whose outcome was unknown).
// ipam.VerifyStore checks the whole key space.
//
// An allocator on this store follows the key space through an etcd watch
// (ipam.Watcher), so its Stats and its choice of free addresses show other
// processes' allocations as they happen.
//
// # Failures
//
// A failed request is an *Error naming the operation, the key and the
// endpoints; an unreachable cluster is an error after Options.RequestTimeout
// (or the caller's context), never an empty answer. A failure of a Commit
// other than a conflict leaves its outcome unknown: it may have been
// applied. Retrying the same ipam operation is safe.
//
// # Limits
//
// etcd refuses transactions of more than --max-txn-ops (128 by default)
// operations: Options.MaxTxnOps tells the store, which refuses larger ones
// before sending them (ipam.ErrTxnTooLarge). One allocation or release
// touches a few keys; AllocateN and ReleaseOwner touch one key per page of
// 1,024 addresses they use. etcd's --max-request-bytes (1.5 MiB by default)
// bounds one owner's record: about 45,000 leases (32 bytes each).
//
// # Layout
//
// All keys are under Options.Prefix ("addrguard/" by default) followed by
// ipam's own layout (see ipam.Store): addrguard/ipam/v1/pool/NAME,
// addrguard/ipam/v1/page/NAME/EPOCH/PAGE, addrguard/ipam/v1/owner/NAME/OWNER
// and so on. Revisions are etcd's mod revisions.
//
// Package etcdtest starts an embedded etcd for tests.
package etcdstore
