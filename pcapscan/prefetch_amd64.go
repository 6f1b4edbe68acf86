//go:build amd64

package pcapscan

import "unsafe"

// prefetch asks the processor to start loading the cache line holding p and
// returns at once; nothing waits for the load.
//
//go:noescape
func prefetch(p unsafe.Pointer)
