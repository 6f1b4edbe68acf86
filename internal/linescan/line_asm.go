//go:build amd64 && !purego

package linescan

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2

//go:noescape
func line(b []byte, sep, first, last byte) (end int, maybe bool)

//go:noescape
func lineAVX2(b []byte, sep, first, last byte) (end, next int, maybe bool)

// lineFast is line, 64 positions a step where the processor has AVX2.
func lineFast(b []byte, sep, first, last byte) (int, bool) {
	if !useAVX2 || len(b) < 67 {
		return line(b, sep, first, last)
	}
	end, next, maybe := lineAVX2(b, sep, first, last)
	if end >= 0 {
		return end, maybe
	}
	e, m := line(b[next:], sep, first, last)
	if e >= 0 {
		e += next
	}
	return e, maybe || m
}
