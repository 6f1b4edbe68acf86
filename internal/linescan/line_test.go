package linescan

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

var sshd = Word{'s', 'd'}

func TestLine(t *testing.T) {
	long := strings.Repeat("session opened for user deploy; ", 10)
	for _, c := range []struct {
		b     string
		maybe bool
	}{
		{"", false},
		{"\n", false},
		{"sshd\n", true},
		{"sshd", true},
		{"shd\nsshd", false},
		{"ssh\nd", true}, // s at 1, d at 4: cut by the line end, reported (allowed)
		{"s\nsd", true},  // likewise
		{"x sshd[1]: Failed\nsshd", true},
		{"Mar  2 00:00:07 web1 CRON[31337]: pam_unix(cron:session): session opened\nMar  2 sshd", false},
		{long + "\n", false},
		{long + "sshd\n", true},
		{long + "\nsshd", false},
		{long, false},
	} {
		want := strings.IndexByte(c.b, '\n')
		end, maybe := Line([]byte(c.b), '\n', sshd)
		if end != want || maybe != c.maybe {
			t.Errorf("Line(%.40q) = %d, %v; want %d, %v", c.b, end, maybe, want, c.maybe)
		}
		if e, m := lineGo([]byte(c.b), '\n', 's', 'd'); e != want || m != c.maybe {
			t.Errorf("lineGo(%.40q) = %d, %v; want %d, %v", c.b, e, m, want, c.maybe)
		}
	}
}

// Every position of the word and of the line end in lines up to 70 bytes,
// so that the sixteen-wide steps, the byte-wise tail and their borders
// all meet both.
func TestLineEveryPosition(t *testing.T) {
	for n := 0; n <= 150; n++ {
		for nl := -1; nl < n; nl++ {
			for at := -1; at+4 <= n; at++ {
				b := bytes.Repeat([]byte("s..dx"), n/5+1)[:n] // near misses everywhere
				if at >= 0 {
					copy(b[at:], "sshd")
				}
				if nl >= 0 {
					b[nl] = '\n'
				}
				ge, gm := lineGo(b, '\n', 's', 'd')
				if e, m := line(b, '\n', 's', 'd'); e != ge || m != gm {
					t.Fatalf("%q: line = %d, %v; Go %d, %v", b, e, m, ge, gm)
				}
				if e, m := lineFast(b, '\n', 's', 'd'); e != ge || m != gm {
					t.Fatalf("%q: lineFast = %d, %v; Go %d, %v", b, e, m, ge, gm)
				}
				// no false negative: a whole word before the end is seen
				if end := bytes.IndexByte(b, '\n'); end < 0 || bytes.Contains(b[:end], []byte("sshd")) {
					if i := bytes.Index(b, []byte("sshd")); i >= 0 && (end < 0 || i+4 <= end) && !gm {
						t.Fatalf("%q: the word at %d was missed", b, i)
					}
				}
			}
		}
	}
}

func TestLineRandomAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 600)
	for range 60000 {
		for i := range buf {
			buf[i] = "sd\nx"[r.IntN(4)]
		}
		lo := r.IntN(len(buf))
		hi := lo + r.IntN(len(buf)-lo+1)
		b := buf[lo:hi]
		ge, gm := lineGo(b, '\n', 's', 'd')
		if e, m := line(b, '\n', 's', 'd'); e != ge || m != gm {
			t.Fatalf("buf[%d:%d]: line = %d, %v; Go %d, %v", lo, hi, e, m, ge, gm)
		}
		if e, m := lineFast(b, '\n', 's', 'd'); e != ge || m != gm {
			t.Fatalf("buf[%d:%d]: lineFast = %d, %v; Go %d, %v", lo, hi, e, m, ge, gm)
		}
	}
}

func FuzzLine(f *testing.F) {
	f.Add([]byte("Mar  2 00:00:01 web1 sshd[4242]: Failed password\nnext"), byte('\n'), byte('s'), byte('d'))
	f.Add([]byte("ssssddd\n"), byte('\n'), byte('s'), byte('d'))
	f.Fuzz(func(t *testing.T, b []byte, sep, first, last byte) {
		ge, gm := lineGo(b, sep, first, last)
		if e, m := line(b, sep, first, last); e != ge || m != gm {
			t.Fatalf("line = %d, %v; Go %d, %v", e, m, ge, gm)
		}
		e, m := lineFast(b, sep, first, last)
		if e != ge || m != gm {
			t.Fatalf("lineFast = %d, %v; Go %d, %v", e, m, ge, gm)
		}
		if want := bytes.IndexByte(b, sep); e != want {
			t.Fatalf("end %d, IndexByte %d", e, want)
		}
	})
}

// BenchmarkLine splits a buffer of 2,000 auth.log lines (about 100 bytes
// each, none with "sshd"), as logscan's reader does: per line.
func BenchmarkLine(b *testing.B) {
	one := "Mar  2 00:00:07 web1 CRON[31337]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n"
	buf := []byte(strings.Repeat(one, 2000))
	b.Run("linescan", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			for off := 0; off < len(buf); {
				e, m := Line(buf[off:], '\n', sshd)
				if e < 0 || m {
					b.Fatal(e, m)
				}
				off += e + 1
			}
		}
	})
	b.Run("bytes.IndexByte", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			for off := 0; off < len(buf); {
				e := bytes.IndexByte(buf[off:], '\n')
				if e < 0 {
					b.Fatal(e)
				}
				off += e + 1
			}
		}
	})
}
