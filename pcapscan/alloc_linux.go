//go:build linux

package pcapscan

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on x86-64 and arm64 Linux.
const hugePage = 2 << 20

// largeSlice returns a zeroed slice of n values of T for a table. A slice of
// a megabyte or more is aligned to a huge page and the kernel is asked to
// back it with transparent huge pages (madvise MADV_HUGEPAGE; where THP is
// off it is a no-op): the tables are read at random, and with 4 KiB pages
// nearly every lookup missed the TLB, which costs a page walk (two levels of
// them in a virtual machine). T must hold no pointers: the memory is a byte
// slice as far as the garbage collector knows.
func largeSlice[T any](n int) []T {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if size < hugePage/2 {
		return make([]T, n)
	}
	b := make([]byte, size+hugePage)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (hugePage - 1))
	_ = syscall.Madvise(b[off:], syscall.MADV_HUGEPAGE)
	return unsafe.Slice((*T)(unsafe.Pointer(&b[off])), n)
}
