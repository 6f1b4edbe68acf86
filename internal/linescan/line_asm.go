//go:build amd64 && !purego

package linescan

import (
	"math/bits"

	"golang.org/x/sys/cpu"
)

var useAVX2 = cpu.X86.HasAVX2

//go:noescape
func line(b []byte, sep, first, last byte) (end int, maybe bool)

//go:noescape
func lineAVX2(b []byte, sep, first, last byte) (i int, seps, cands uint64, maybe bool)

// lineFast is line, 64 positions a step where the processor has AVX2.
func lineFast(b []byte, sep, first, last byte) (int, bool) {
	if !useAVX2 || len(b) < 67 {
		return line(b, sep, first, last)
	}
	i, seps, cands, maybe := lineAVX2(b, sep, first, last)
	if seps != 0 { // the sep is in b[i:i+64]; its candidates below it count
		pos := bits.TrailingZeros64(seps)
		return i + pos, maybe || cands&(1<<pos-1) != 0
	}
	e, m := line(b[i:], sep, first, last)
	if e >= 0 {
		e += i
	}
	return e, maybe || m
}
