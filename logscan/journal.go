package logscan

import (
	"strings"
	"unicode/utf8"
)

// journalParser reads one journald JSON object (journalctl -o json) per line
// without reflection. Values of the fields it needs are decoded into a
// scratch buffer that is reused for every line; every other value is skipped.
// Byte-array values ([104,105]) and multi-value fields (["a","b"]) are
// accepted; of a multi-value field the first value is used.
type journalParser struct {
	scratch []byte
}

// journal fields we use
const (
	jfMessage = iota
	jfHostname
	jfIdentifier
	jfComm
	jfPID
	jfSyslogPID
	jfRealtime
	jfSourceRealtime
	jfTransport
	jfCount
)

func journalField(k string) int {
	switch k {
	case "MESSAGE":
		return jfMessage
	case "_HOSTNAME":
		return jfHostname
	case "SYSLOG_IDENTIFIER":
		return jfIdentifier
	case "_COMM":
		return jfComm
	case "_PID":
		return jfPID
	case "SYSLOG_PID":
		return jfSyslogPID
	case "__REALTIME_TIMESTAMP":
		return jfRealtime
	case "_SOURCE_REALTIME_TIMESTAMP":
		return jfSourceRealtime
	case "_TRANSPORT":
		return jfTransport
	}
	return -1
}

type span struct {
	direct     string // value straight from the line (no escapes)
	off, n     int    // or a range of scratch
	inScratch  bool
	present    bool
	numberLike bool
}

// parse fills rec from the JSON object s. It reports false for malformed
// objects and objects without MESSAGE.
func (p *journalParser) parse(s string, rec *record) bool {
	*rec = record{format: FormatJournal}
	p.scratch = p.scratch[:0]
	var spans [jfCount]span
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '{' {
		return false
	}
	i = skipWS(s, i+1)
	if i < len(s) && s[i] == '}' {
		return false
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return false
		}
		kend := strings.IndexByte(s[i+1:], '"')
		if kend < 0 {
			return false
		}
		key := s[i+1 : i+1+kend]
		i = skipWS(s, i+2+kend)
		if i >= len(s) || s[i] != ':' {
			return false
		}
		i = skipWS(s, i+1)
		f := -1
		if strings.IndexByte(key, '\\') < 0 {
			f = journalField(key)
		}
		var ok bool
		if f >= 0 && !spans[f].present {
			i, ok = p.value(s, i, &spans[f])
		} else {
			i, ok = skipValue(s, i, 0)
		}
		if !ok {
			return false
		}
		i = skipWS(s, i)
		if i >= len(s) {
			return false
		}
		if s[i] == '}' {
			break
		}
		if s[i] != ',' {
			return false
		}
		i = skipWS(s, i+1)
	}
	if !spans[jfMessage].present {
		return false
	}
	get := func(f int) string {
		sp := spans[f]
		if sp.inScratch {
			return view(p.scratch[sp.off : sp.off+sp.n])
		}
		return sp.direct
	}
	rec.msg = get(jfMessage)
	rec.host = get(jfHostname)
	rec.prog = get(jfIdentifier)
	if rec.prog == "" {
		rec.prog = get(jfComm)
	}
	if get(jfTransport) == "kernel" && rec.prog == "" {
		rec.prog = "kernel"
	}
	rec.pid = get(jfSyslogPID)
	if rec.pid == "" {
		rec.pid = get(jfPID)
	}
	ts := get(jfSourceRealtime)
	if ts == "" {
		ts = get(jfRealtime)
	}
	if us, ok := atoi(ts); ok {
		rec.ns, rec.hasTime = int64(us)*1000, true
	}
	return true
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
		i++
	}
	return i
}

// value decodes the value at s[i:] into sp: a string, a number (kept as
// text), a byte array, or the first element of an array of those.
func (p *journalParser) value(s string, i int, sp *span) (int, bool) {
	if i >= len(s) {
		return i, false
	}
	switch c := s[i]; {
	case c == '"':
		return p.str(s, i, sp)
	case c == '[':
		j := skipWS(s, i+1)
		if j < len(s) && s[j] == ']' {
			sp.present = true
			return j + 1, true
		}
		if j < len(s) && (isDigit(s[j]) || s[j] == '-') {
			return p.byteArray(s, i, sp)
		}
		// multi-value: decode the first element, skip the rest
		var ok bool
		j, ok = p.value(s, j, sp)
		if !ok {
			return j, false
		}
		for {
			j = skipWS(s, j)
			if j >= len(s) {
				return j, false
			}
			if s[j] == ']' {
				return j + 1, true
			}
			if s[j] != ',' {
				return j, false
			}
			j, ok = skipValue(s, skipWS(s, j+1), 1)
			if !ok {
				return j, false
			}
		}
	case c == '-' || isDigit(c):
		j := i
		for j < len(s) && (isDigit(s[j]) || s[j] == '-' || s[j] == '+' || s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
			j++
		}
		sp.direct, sp.present, sp.numberLike = s[i:j], true, true
		return j, true
	default:
		return skipValue(s, i, 0)
	}
}

// byteArray decodes [104,105,...] into scratch.
func (p *journalParser) byteArray(s string, i int, sp *span) (int, bool) {
	off := len(p.scratch)
	j := i + 1
	for {
		j = skipWS(s, j)
		v, n := 0, 0
		for j < len(s) && isDigit(s[j]) && n < 4 {
			v = v*10 + int(s[j]-'0')
			j++
			n++
		}
		if n == 0 || v > 255 {
			return j, false
		}
		p.scratch = append(p.scratch, byte(v))
		j = skipWS(s, j)
		if j >= len(s) {
			return j, false
		}
		if s[j] == ']' {
			*sp = span{off: off, n: len(p.scratch) - off, inScratch: true, present: true}
			return j + 1, true
		}
		if s[j] != ',' {
			return j, false
		}
		j++
	}
}

// str decodes the JSON string at s[i] == '"'.
func (p *journalParser) str(s string, i int, sp *span) (int, bool) {
	j := i + 1
	k := strings.IndexByte(s[j:], '"')
	if k < 0 {
		return j, false
	}
	if strings.IndexByte(s[j:j+k], '\\') < 0 {
		*sp = span{direct: s[j : j+k], present: true}
		return j + k + 1, true
	}
	off := len(p.scratch)
	for j < len(s) {
		c := s[j]
		switch {
		case c == '"':
			*sp = span{off: off, n: len(p.scratch) - off, inScratch: true, present: true}
			return j + 1, true
		case c != '\\':
			p.scratch = append(p.scratch, c)
			j++
			continue
		}
		if j+1 >= len(s) {
			return j, false
		}
		e := s[j+1]
		j += 2
		switch e {
		case '"', '\\', '/':
			p.scratch = append(p.scratch, e)
		case 'b':
			p.scratch = append(p.scratch, '\b')
		case 'f':
			p.scratch = append(p.scratch, '\f')
		case 'n':
			p.scratch = append(p.scratch, '\n')
		case 'r':
			p.scratch = append(p.scratch, '\r')
		case 't':
			p.scratch = append(p.scratch, '\t')
		case 'u':
			r, ok := hex4(s, j)
			if !ok {
				return j, false
			}
			j += 4
			if r >= 0xD800 && r < 0xDC00 && j+6 <= len(s) && s[j] == '\\' && s[j+1] == 'u' {
				if r2, ok := hex4(s, j+2); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
					j += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError
			}
			p.scratch = utf8.AppendRune(p.scratch, r)
		default:
			return j, false
		}
	}
	return j, false
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for k := i; k < i+4; k++ {
		if !isHexDigit(s[k]) {
			return 0, false
		}
		r = r<<4 | rune(hexVal(s[k]))
	}
	return r, true
}

// skipValue skips any JSON value at s[i:]; depth bounds nesting.
func skipValue(s string, i int, depth int) (int, bool) {
	if i >= len(s) || depth > 32 {
		return i, false
	}
	switch c := s[i]; c {
	case '"':
		j := i + 1
		for {
			k := strings.IndexByte(s[j:], '"')
			if k < 0 {
				return len(s), false
			}
			// count the backslashes before the quote
			bs := 0
			for m := j + k - 1; m >= j && s[m] == '\\'; m-- {
				bs++
			}
			j += k + 1
			if bs%2 == 0 {
				return j, true
			}
		}
	case '[', '{':
		closer := byte(']')
		if c == '{' {
			closer = '}'
		}
		j := skipWS(s, i+1)
		if j < len(s) && s[j] == closer {
			return j + 1, true
		}
		for {
			if c == '{' {
				var ok bool
				j, ok = skipValue(s, j, depth+1) // key
				if !ok {
					return j, false
				}
				j = skipWS(s, j)
				if j >= len(s) || s[j] != ':' {
					return j, false
				}
				j = skipWS(s, j+1)
			}
			var ok bool
			j, ok = skipValue(s, j, depth+1)
			if !ok {
				return j, false
			}
			j = skipWS(s, j)
			if j >= len(s) {
				return j, false
			}
			if s[j] == closer {
				return j + 1, true
			}
			if s[j] != ',' {
				return j, false
			}
			j = skipWS(s, j+1)
		}
	default:
		j := i
		for j < len(s) && s[j] != ',' && s[j] != '}' && s[j] != ']' && s[j] != ' ' {
			j++
		}
		if j == i {
			return j, false
		}
		return j, true
	}
}
