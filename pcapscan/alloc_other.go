//go:build !linux

package pcapscan

// largeSlice returns a zeroed slice of n values of T for a table (see the
// Linux version, which backs large tables with huge pages).
func largeSlice[T any](n int) []T { return make([]T, n) }
