package logscan

import (
	"bytes"
	"errors"
	"io"

	"github.com/addrguard/addrguard/internal/linescan"
)

// lineReader splits a stream into lines in constant memory. A line longer
// than max is never buffered whole: it is skipped chunk by chunk and reported
// with its length.
type lineReader struct {
	r          io.Reader
	buf        []byte
	start, end int
	max        int
	line       int64 // number of the line last returned
	bytes      int64 // bytes consumed so far
	err        error // sticky read error (io.EOF at end)
}

// newLineReader returns a reader of r; buf is reused when it is large
// enough.
func newLineReader(r io.Reader, max int, buf []byte) *lineReader {
	size := 256 << 10
	if max+1 > size {
		size = max + 1
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	return &lineReader{r: r, buf: buf[:cap(buf)], max: max}
}

// next returns the next line without its line ending. For a line longer than
// max it returns long = true, the line's length in n and no content. At the
// end of the stream it returns ok = false; err is nil at a clean end.
func (lr *lineReader) next() (line []byte, n int64, long, ok bool, err error) {
	line, n, long, ok, err, _ = lr.scan(false)
	return line, n, long, ok, err
}

// sshdWord is the word scan(true) looks for: "sshd", by its first and
// last bytes.
var sshdWord = linescan.Word{First: 's', Last: 'd'}

// scan is next; with sshd it also reports in maySSHD whether the line can
// contain "sshd" (false positives possible, no false negatives), found in
// the same pass over the line as its end. Long lines report false.
func (lr *lineReader) scan(sshd bool) (line []byte, n int64, long, ok bool, err error, maySSHD bool) {
	for {
		var i int
		if sshd {
			i, maySSHD = linescan.Line(lr.buf[lr.start:lr.end], '\n', sshdWord)
		} else {
			i = bytes.IndexByte(lr.buf[lr.start:lr.end], '\n')
		}
		if i >= 0 {
			line = lr.buf[lr.start : lr.start+i]
			lr.start += i + 1
			lr.bytes += int64(i + 1)
			lr.line++
			if len(line) > lr.max {
				return nil, int64(len(line)), true, true, nil, false
			}
			return trimCR(line), int64(len(line)), false, true, nil, maySSHD
		}
		if lr.end-lr.start > lr.max {
			// Too long: drop what we have and skip to the next newline.
			skipped := int64(lr.end - lr.start)
			lr.bytes += skipped
			lr.start, lr.end = 0, 0
			total := lr.skipLine()
			lr.line++
			return nil, skipped + total, true, true, nil, false
		}
		if lr.err != nil {
			if lr.start < lr.end { // last line without newline
				line = lr.buf[lr.start:lr.end]
				lr.bytes += int64(len(line))
				lr.start = lr.end
				lr.line++
				return trimCR(line), int64(len(line)), false, true, nil, maySSHD
			}
			if errors.Is(lr.err, io.EOF) {
				return nil, 0, false, false, nil, false
			}
			return nil, 0, false, false, lr.err, false
		}
		lr.fill()
	}
}

// fill compacts the buffer and reads more.
func (lr *lineReader) fill() {
	if lr.start > 0 {
		lr.end = copy(lr.buf, lr.buf[lr.start:lr.end])
		lr.start = 0
	}
	for range 100 {
		n, err := lr.r.Read(lr.buf[lr.end:])
		lr.end += n
		if err != nil {
			lr.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	lr.err = io.ErrNoProgress
}

// skipLine discards input up to and including the next newline and returns
// how many bytes of the line it discarded (without the newline). A read
// error stays in lr.err for the next call of next.
func (lr *lineReader) skipLine() int64 {
	var total int64
	for {
		if i := bytes.IndexByte(lr.buf[lr.start:lr.end], '\n'); i >= 0 {
			total += int64(i)
			lr.bytes += int64(i + 1)
			lr.start += i + 1
			return total
		}
		total += int64(lr.end - lr.start)
		lr.bytes += int64(lr.end - lr.start)
		lr.start, lr.end = 0, 0
		if lr.err != nil {
			return total
		}
		lr.fill()
	}
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}
