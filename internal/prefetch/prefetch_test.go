package prefetch

import (
	"testing"
	"unsafe"
)

// TestLineNeverFaults: a prefetch of any address, mapped or not, returns.
func TestLineNeverFaults(t *testing.T) {
	buf := make([]byte, 256)
	for _, addr := range []uintptr{
		uintptr(unsafe.Pointer(&buf[0])),
		uintptr(unsafe.Pointer(&buf[255])),
		0,
		1 << 47, // not mapped in any Linux user address space layout Go uses
		^uintptr(0),
	} {
		Line(addr)
	}
}

func BenchmarkLine(b *testing.B) {
	buf := make([]byte, 1<<20)
	base := uintptr(unsafe.Pointer(&buf[0]))
	i := uintptr(0)
	for b.Loop() {
		Line(base + i&(1<<20-1))
		i += 4096 + 64
	}
}
