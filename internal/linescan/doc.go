// Package linescan finds the end of a line and, in the same pass, whether
// the line may contain a four-byte word: every position is tested for
// the line end and for the word's first and last bytes, 32 positions per
// instruction on amd64 processors with AVX2 and sixteen on the others
// (SSE2, which every amd64 processor has). logscan
// uses it to read only the lines that can be sshd's when it counts the
// sources of sshd failures: one pass over a line tells where it ends and
// whether "sshd" can be in it, for about what finding the line end alone
// costs, and a line that cannot is passed over without parsing its header.
//
// Other architectures, and the purego build tag, use a loop in Go with the
// same results.
package linescan

// Word is a four-byte word to look for: its first and last bytes.
type Word struct{ First, Last byte }

// Line returns the index of the first sep in b (-1 if none) and whether a
// position i before it has b[i] == w.First and b[i+3] == w.Last: true
// whenever the four bytes at some i < end form a word starting with First
// and ending with Last (a word cut by sep may also report true). Without
// sep in b, the report covers all of b.
func Line(b []byte, sep byte, w Word) (end int, maybe bool) {
	return lineFast(b, sep, w.First, w.Last)
}

// lineGo is line in Go.
func lineGo(b []byte, sep, first, last byte) (int, bool) {
	maybe := false
	for i, c := range b {
		if c == sep {
			return i, maybe
		}
		if c == first && i+3 < len(b) && b[i+3] == last {
			maybe = true
		}
	}
	return -1, maybe
}
