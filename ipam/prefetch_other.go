//go:build !(amd64 || arm64) || purego

package ipam

// prefetch is a no-op where no assembly is provided (see prefetch_asm.go).
func prefetch(addr uintptr) {}
