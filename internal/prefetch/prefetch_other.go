//go:build !(amd64 || arm64) || purego

package prefetch

// Line would ask the processor to bring the cache line holding addr closer;
// on this architecture (or with the purego tag) it does nothing.
func Line(addr uintptr) {}
