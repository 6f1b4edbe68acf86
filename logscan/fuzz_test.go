package logscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// seeds returns the lines of the package's own testdata, for seed corpora.
func seeds(f *testing.F) []string {
	var out []string
	for _, name := range []string{"conflicts.log", "rfc3339.log", "injection.log", "journal.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	}
	out = append(out,
		"<38>1 2019-07-08T17:40:17.954167-04:00 hostname.example.com sshd 55555 - [timeQuality tzKnown=\"1\"][x@1 t=\"[b\\]\"] Failed unknown for invalid user r from 192.0.2.2 port 5 ssh2",
		"[Jun 21 16:55:03] <auth.info> machine kernel: [  970.699396] @vserver_demo test-demo(pam_unix)[13709] [ID 255 test] F2B: failure from 192.0.2.3",
		"Apr  2 17:51:27 <4.3> pancake sshd[55624]: error: PAM: authentication error for nick from example.com",
		"srv sshd[20878]: kernel:[  970.699396]: Failed keyboard-interactive for <invalid username> from 205.186.180.55 port 42742 ssh2",
		"Mar  3 00:17:22 [sshd]: User root from 211.188.220.49 not allowed because not listed in AllowUsers",
		"2005-06-21 14:55:10 UTC machine sshd[1]: Invalid user a from 192.0.2.10",
	)
	return out
}

// FuzzHeader: the text header parser never panics, and what it returns are
// pieces of its input.
func FuzzHeader(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	tc := newTimeCtx(time.UTC, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	f.Fuzz(func(t *testing.T, s string) {
		var rec record
		if !tc.parseHeader(s, &rec) {
			return
		}
		for _, part := range []string{rec.host, rec.prog, rec.pid, rec.msg} {
			if !strings.Contains(s, part) {
				t.Fatalf("header part %q is not in %q", part, s)
			}
		}
		if rec.format == FormatUnknown {
			t.Fatalf("parsed %q without a format", s)
		}
	})
}

// FuzzHostTag: the one-pass reader of "host prog[pid]: msg" agrees with the
// general one wherever it accepts a line.
func FuzzHostTag(f *testing.F) {
	for _, s := range []string{"web1 sshd[42]: Failed", "h kernel: [1.0] IN=", "h [sshd] x", "sshd[1]: x", "h prog:x", "h p(q)[1]: x", "h p[1]:  x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var fast, slow record
		if !fastHostTag(s, &fast) {
			return
		}
		slowHostTag(s, &slow)
		if fast != slow {
			t.Fatalf("%q: fast %+v, general %+v", s, fast, slow)
		}
	})
}

// FuzzJournal: the journald parser agrees with encoding/json on MESSAGE
// whenever the object is valid JSON with one string MESSAGE.
func FuzzJournal(f *testing.F) {
	for _, s := range seeds(f) {
		if strings.HasPrefix(s, "{") {
			f.Add(s)
		}
	}
	f.Add(`{"MESSAGE":"a\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t","_PID":["1","2"]}`)
	f.Add(`{"MESSAGE":[104,105],"X":{"a":[1,[2,{"b":null}]]}}`)
	var p journalParser
	f.Fuzz(func(t *testing.T, s string) {
		var rec record
		ok := p.parse(s, &rec)
		// journald writes invalid UTF-8 as byte arrays; encoding/json would
		// replace it, we keep the bytes
		if strings.Count(s, `"MESSAGE"`) != 1 || !utf8.ValidString(s) || !json.Valid([]byte(s)) {
			return
		}
		var obj map[string]any
		if json.Unmarshal([]byte(s), &obj) != nil {
			return
		}
		msg, isString := obj["MESSAGE"].(string)
		if !isString {
			return
		}
		if !ok {
			t.Fatalf("valid object %q not read", s)
		}
		if rec.msg != msg {
			t.Fatalf("MESSAGE %q, encoding/json says %q, in %q", rec.msg, msg, s)
		}
	})
}

// FuzzSSHD: the classifier never panics; an address it reports appears in
// the message; and the address sshd put at the end is never displaced by
// one injected into the user name.
func FuzzSSHD(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Add("x from 192.0.2.66 port 22 ssh2")
	f.Add("Jan  1 00:00:00 h sshd[1]: Accepted password for root from 192.0.2.66 port 22 ssh2")
	f.Fuzz(func(t *testing.T, s string) {
		var m sshMatch
		if classifySSHD(s, &m) && m.host.Text != "" && !strings.Contains(s, m.host.Text) {
			t.Fatalf("host %q not in %q", m.host.Text, s)
		}
		if strings.ContainsAny(s, ":\n") {
			return
		}
		for _, line := range []string{
			"Failed password for invalid user " + s + " from 198.51.100.1 port 22 ssh2",
			"Connection closed by authenticating user " + s + " 198.51.100.1 port 22 [preauth]",
			"Invalid user " + s + " from 198.51.100.1 port 22",
		} {
			if !classifySSHD(line, &m) {
				continue
			}
			if got := m.host.Addr.String(); got != "198.51.100.1" {
				t.Fatalf("%q attributed to %s", line, got)
			}
		}
	})
}

// FuzzFirewall and conflicts: no panic, sources are addresses.
func FuzzFirewallConflict(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add("kernel", s)
		f.Add("arpwatch", s)
	}
	for _, p := range []string{"NetworkManager", "systemd-networkd", "dhcpcd", "dhclient"} {
		f.Add(p, "eth0: hardware address 2:0:0:0:0:1 claims 192.0.2.1")
	}
	f.Fuzz(func(t *testing.T, prog, msg string) {
		var fm fwMatch
		if classifyFirewall(msg, &fm) && !fm.src.Addr.IsValid() {
			t.Fatalf("firewall line %q without a source address", msg)
		}
		var cm conflictMatch
		if classifyConflict(prog, msg, &cm) && !cm.addr.IsValid() && cm.iface == "" {
			t.Fatalf("conflict %q names neither address nor interface", msg)
		}
		reconcileConflict(msg, &cm)
	})
}

// FuzzReader: the line reader returns every line up to the limit exactly
// and reports longer ones, whatever the read sizes.
func FuzzReader(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc"), uint8(2))
	f.Add([]byte(strings.Repeat("x", 300)+"\nshort\n"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, lim uint8) {
		limit := 64 + int(lim)
		var r io.Reader = bytes.NewReader(data)
		if lim%2 == 1 {
			r = iotest.OneByteReader(r)
		}
		lr := newLineReader(r, limit, nil)
		want := bytes.Split(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] == '\n' {
			want = want[:len(want)-1]
		}
		if len(data) == 0 {
			want = nil
		}
		i := 0
		for {
			line, n, long, ok, err := lr.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if i >= len(want) {
				t.Fatalf("extra line %q", line)
			}
			w := want[i]
			if int(n) != len(w) {
				t.Fatalf("line %d: length %d, want %d", i+1, n, len(w))
			}
			if long != (len(w) > limit) {
				t.Fatalf("line %d of %d bytes: long=%v with limit %d", i+1, len(w), long, limit)
			}
			if !long && !bytes.Equal(line, bytes.TrimSuffix(w, []byte("\r"))) {
				t.Fatalf("line %d: %q, want %q", i+1, line, w)
			}
			i++
		}
		if i != len(want) {
			t.Fatalf("%d lines, want %d", i, len(want))
		}
		if lr.bytes != int64(len(data)) {
			t.Fatalf("consumed %d bytes of %d", lr.bytes, len(data))
		}
		checkSSHDScan(t, data, limit, lim%2 == 1)
	})
}

// checkSSHDScan reads data with scan(true) and checks that it returns the
// lines next returns, and maySSHD for every line that contains "sshd".
func checkSSHDScan(t *testing.T, data []byte, limit int, oneByte bool) {
	t.Helper()
	reader := func() io.Reader {
		if oneByte {
			return iotest.OneByteReader(bytes.NewReader(data))
		}
		return iotest.HalfReader(bytes.NewReader(data))
	}
	plain, masked := newLineReader(reader(), limit, nil), newLineReader(reader(), limit, nil)
	for n := 1; ; n++ {
		line, size, long, ok, err := plain.next()
		mline, msize, mlong, mok, merr, maybe := masked.scan(true)
		if !bytes.Equal(line, mline) || size != msize || long != mlong || ok != mok || !errors.Is(merr, err) {
			t.Fatalf("line %d: scan(true) %q %d %v %v %v, next %q %d %v %v %v", n, mline, msize, mlong, mok, merr, line, size, long, ok, err)
		}
		if !ok {
			break
		}
		if bytes.Contains(line, []byte("sshd")) && !maybe {
			t.Fatalf("line %d %q holds sshd, maySSHD false", n, line)
		}
	}
}

// Three megabytes of lines of every length around linescan's 16- and
// 64-byte steps, "sshd" anywhere in them, some longer than the limit, read
// in halved chunk sizes: scan(true) agrees with next.
func TestScanSSHDAgainstNext(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	var b bytes.Buffer
	for b.Len() < 3<<20 {
		n := r.IntN(300)
		if r.IntN(50) == 0 {
			n = 4000 + r.IntN(9000) // sometimes over the limit
		}
		line := make([]byte, n)
		for i := range line {
			line[i] = "abcsd {"[r.IntN(7)]
		}
		if n >= 4 && r.IntN(3) == 0 {
			copy(line[r.IntN(n-3):], "sshd")
		}
		b.Write(line)
		b.WriteString([]string{"\n", "\r\n"}[r.IntN(2)])
	}
	checkSSHDScan(t, b.Bytes(), 8192, false)
	checkSSHDScan(t, b.Bytes()[:b.Len()-1], 8192, false) // no final newline
}

// FuzzAnalyzer feeds whole streams through every rule with tiny tables.
func FuzzAnalyzer(f *testing.F) {
	var all strings.Builder
	for _, s := range seeds(f) {
		f.Add(s + "\n" + s + "\n")
		all.WriteString(s + "\n")
	}
	f.Add(all.String())
	f.Fuzz(func(t *testing.T, s string) {
		an := New(Options{Location: time.UTC, MaxSources: 2, MaxConnections: 4, MaxAddresses: 2, MaxEvidence: 3, MaxListed: 2, MaxLineBytes: 200})
		err := an.ScanContext(t.Context(), strings.NewReader(s), Handler{
			Finding: func(fd Finding) {
				if len(fd.Lines) > 3 || len(fd.Users) > 2 || len(fd.Ports) > 2 || len(fd.MACs) > 2 {
					t.Fatalf("finding over its bounds: %+v", fd)
				}
				if fd.Count <= 0 {
					t.Fatalf("finding without events: %+v", fd)
				}
			},
			Event: func(e Event) {
				if e.Line < 1 {
					t.Fatalf("event without line: %+v", e)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// parseHostRef is parseHost as first written: it tries every way of
// stripping trailing colons (quadratic in a run of colons).
func parseHostRef(s string) (host, int, bool) {
	if len(s) > 0 && s[0] == '[' {
		return parseHost(s)
	}
	n := 0
	for n < len(s) && isHostByte(s[n]) {
		n++
	}
	tok := s[:n]
	for tok != "" {
		if a, ok := parseIP(tok); ok {
			return host{Addr: a, Text: tok}, len(tok), true
		}
		if tok[len(tok)-1] != ':' {
			break
		}
		tok = tok[:len(tok)-1]
	}
	if tok == "" || strings.IndexByte(tok, ':') >= 0 || strings.IndexByte(tok, '%') >= 0 || !isWordByte(tok[len(tok)-1]) {
		return host{}, 0, false
	}
	return host{Text: tok}, len(tok), true
}

// FuzzParseHost: parseHost, which tries at most two ways of stripping
// trailing colons, agrees with trying every way.
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"192.0.2.1: 11: Bye", "2001:db8::: 11", "::::", "1.2.3.4::", "fe80::1%eth0:", "a:", "example.com:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, n, ok := parseHost(s)
		wh, wn, wok := parseHostRef(s)
		if h != wh || n != wn || ok != wok {
			t.Fatalf("parseHost(%q) = %+v, %d, %v; trying every strip gives %+v, %d, %v", s, h, n, ok, wh, wn, wok)
		}
	})
}

// FuzzParseIP: parseIP (which never allocates) agrees with net/netip.
func FuzzParseIP(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "::", "::1", "1::", "2001:db8::1", "::ffff:192.0.2.1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4",
		"1:2:3:4:5:6:7::", "::1:2:3:4:5:6:7", "fe80::1%eth0", "fe80::1%", "1:::2", "1::2::3", "12345::", "::1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", ":1", "1:", "::ffff:01.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseIP(s)
		want, err := netip.ParseAddr(s)
		if err != nil {
			if ok {
				t.Fatalf("parseIP(%q) = %v, netip says %v", s, got, err)
			}
			return
		}
		want = want.WithZone("").Unmap()
		if !ok || got != want {
			t.Fatalf("parseIP(%q) = %v, %v; netip says %v", s, got, ok, want)
		}
	})
}

// FuzzParseIPv4: the fast dotted-quad parser agrees with net/netip.
func FuzzParseIPv4(f *testing.F) {
	f.Add("192.0.2.1")
	f.Add("192.030.0.6")
	f.Fuzz(func(t *testing.T, s string) {
		want, err := netip.ParseAddr(s)
		got, ok := parseIPv4(s)
		if ok && (err != nil || want != got) {
			t.Fatalf("parseIPv4(%q) = %v, netip says %v, %v", s, got, want, err)
		}
		if !ok && err == nil && want.Is4() {
			t.Fatalf("parseIPv4(%q) rejected %v", s, want)
		}
	})
}

// FuzzLastIndex: lastIndex agrees with strings.LastIndex, indexFrom with
// strings.Index.
func FuzzLastIndex(f *testing.F) {
	f.Add("root from 192.0.2.1 from x from 198.51.100.1 port 2 ssh2", " from ")
	f.Add("aaa", "a")
	f.Add("", "ab")
	f.Add("a\tb from c from d", "x")
	f.Fuzz(func(t *testing.T, s, sep string) {
		if got, want := lastIndex(s, sep), strings.LastIndex(s, sep); got != want {
			t.Fatalf("lastIndex(%q, %q) = %d, strings.LastIndex says %d", s, sep, got, want)
		}
		if got, want := indexFrom(s), strings.Index(s, " from "); got != want {
			t.Fatalf("indexFrom(%q) = %d, strings.Index says %d", s, got, want)
		}
	})
}
