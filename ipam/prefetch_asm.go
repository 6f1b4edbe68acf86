//go:build (amd64 || arm64) && !purego

package ipam

// prefetch asks the CPU to bring the cache line holding addr closer,
// without waiting for it (and without faulting on any address). The owner
// index uses it to load the slot the next new owner will take.
//
//go:noescape
func prefetch(addr uintptr)
