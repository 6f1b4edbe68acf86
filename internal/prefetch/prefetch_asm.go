//go:build (amd64 || arm64) && !purego

package prefetch

// Line asks the processor to bring the cache line holding addr closer and
// returns at once.
//
//go:noescape
func Line(addr uintptr)
