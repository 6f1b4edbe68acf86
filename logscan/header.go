package logscan

import (
	"strings"
	"time"
)

// Format is the header format a line was read in.
type Format uint8

// Formats recognised per line.
const (
	FormatUnknown Format = iota
	FormatBSD            // Mon dd hh:mm:ss host prog[pid]: msg (RFC 3164, also with <PRI>, [date], <fac.sev>)
	FormatRFC3339        // 2006-01-02T15:04:05.000000+01:00 host prog[pid]: msg (rsyslog on Debian/Ubuntu)
	FormatRFC5424        // <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG
	FormatJournal        // journalctl -o json
	FormatBare           // host prog[pid]: msg, no time (journalctl -o short without date, fail2ban journal tests)
)

var formatNames = [...]string{"unknown", "bsd", "rfc3339", "rfc5424", "journal", "bare"}

// String returns the format's name.
func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "format?"
}

// MarshalText encodes f as its name ("bsd", "rfc3339", ...).
func (f Format) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// record is a parsed line header. All strings are views into the line (or
// into the journal scratch buffer).
type record struct {
	format  Format
	ns      int64 // log time, Unix nanoseconds
	hasTime bool
	host    string
	prog    string
	pid     string
	msg     string
	conn    string // host and tag as one span of the line ("web1 sshd[42]:"), when they are contiguous
	date    dateParts
}

// dateParts is a date as read, resolved to a time only for lines that need
// one (timeCtx.resolve): lines of programs nobody analyses cost no time
// arithmetic.
type dateParts struct {
	kind         uint8 // dateNone, dateBSD, dateISO
	local        bool
	mon, day     uint8
	h, m, s      uint8
	year         int32
	nsec, offset int32
}

const (
	dateNone = iota
	dateBSD
	dateISO
)

// resolve returns the Unix time of d.
func (tc *timeCtx) resolve(d *dateParts) int64 {
	if d.kind == dateBSD {
		return tc.bsd(time.Month(d.mon), int(d.day), int(d.h), int(d.m), int(d.s), int(d.nsec))
	}
	return tc.iso(int(d.year), time.Month(d.mon), int(d.day), int(d.h), int(d.m), int(d.s), int(d.nsec), int(d.offset), d.local)
}

// timeCtx turns header dates into times: it holds the zone, the reference
// for year inference and a one-hour cache so most lines cost no time.Date.
type timeCtx struct {
	loc      *time.Location
	ref      time.Time
	refLimit int64 // ref + 24h (Unix ns): BSD dates after it belong to the year before
	refYear  int

	cacheOK            bool
	cMon               time.Month
	cDay, cHour, cYear int
	cBase              int64
	prevMon            time.Month
	prevYear           int
	havePrev           bool
	isoOK              bool
	isoY, isoD, isoH   int
	isoMon             time.Month
	isoBase            int64
	isoOffset          int
	isoLocal           bool

	// The last BSD date read, through the blank after its clock, and its
	// parts: syslog stamps have second resolution, so consecutive lines
	// often carry the same one, and reading it again is one comparison.
	bsdKey  [24]byte
	bsdLen  int
	bsdDate dateParts
}

func newTimeCtx(loc *time.Location, ref time.Time) *timeCtx {
	return &timeCtx{loc: loc, ref: ref, refLimit: ref.Add(24 * time.Hour).UnixNano(), refYear: ref.In(loc).Year()}
}

// bsd resolves a date without year. The reference's year is assumed, or the
// year before when that would put the line more than a day after the
// reference; inside a stream, December followed by January moves to the next
// year.
func (tc *timeCtx) bsd(mon time.Month, day, hour, min, sec, nsec int) int64 {
	if !(tc.cacheOK && mon == tc.cMon && day == tc.cDay && hour == tc.cHour) {
		year := tc.refYear
		base := time.Date(year, mon, day, hour, 0, 0, 0, tc.loc)
		if base.UnixNano() > tc.refLimit {
			year--
			base = time.Date(year, mon, day, hour, 0, 0, 0, tc.loc)
		}
		if tc.havePrev && tc.prevMon == time.December && mon == time.January && tc.prevYear+1 > year {
			year = tc.prevYear + 1
			base = time.Date(year, mon, day, hour, 0, 0, 0, tc.loc)
		}
		tc.cacheOK, tc.cMon, tc.cDay, tc.cHour, tc.cYear, tc.cBase = true, mon, day, hour, year, base.UnixNano()
	}
	t := tc.cBase + int64(min)*int64(time.Minute) + int64(sec)*int64(time.Second) + int64(nsec)
	year := tc.cYear
	if year == tc.refYear && t > tc.refLimit {
		// the hour that holds the limit: decide per line
		year--
		t = time.Date(year, mon, day, hour, min, sec, nsec, tc.loc).UnixNano()
	}
	tc.prevMon, tc.prevYear, tc.havePrev = mon, year, true
	return t
}

// iso resolves a date with year; offset is in seconds east of UTC, local
// means the text carried no offset (Options.Location applies).
func (tc *timeCtx) iso(year int, mon time.Month, day, hour, min, sec, nsec, offset int, local bool) int64 {
	if !(tc.isoOK && year == tc.isoY && mon == tc.isoMon && day == tc.isoD && hour == tc.isoH && local == tc.isoLocal && (local || offset == tc.isoOffset)) {
		var base int64
		if local {
			base = time.Date(year, mon, day, hour, 0, 0, 0, tc.loc).UnixNano()
		} else {
			base = time.Date(year, mon, day, hour, 0, 0, 0, time.UTC).UnixNano() - int64(offset)*int64(time.Second)
		}
		tc.isoOK, tc.isoY, tc.isoMon, tc.isoD, tc.isoH, tc.isoOffset, tc.isoLocal, tc.isoBase = true, year, mon, day, hour, offset, local, base
	}
	tc.prevMon, tc.prevYear, tc.havePrev = mon, year, true
	return tc.isoBase + int64(min)*int64(time.Minute) + int64(sec)*int64(time.Second) + int64(nsec)
}

// month reads a three-letter English month abbreviation.
func month(s string) (time.Month, bool) {
	if len(s) < 3 {
		return 0, false
	}
	c0, c1, c2 := s[0]|0x20, s[1]|0x20, s[2]|0x20
	switch c0 {
	case 'j':
		if c1 == 'a' && c2 == 'n' {
			return time.January, true
		}
		if c1 == 'u' && c2 == 'n' {
			return time.June, true
		}
		if c1 == 'u' && c2 == 'l' {
			return time.July, true
		}
	case 'f':
		if c1 == 'e' && c2 == 'b' {
			return time.February, true
		}
	case 'm':
		if c1 == 'a' && c2 == 'r' {
			return time.March, true
		}
		if c1 == 'a' && c2 == 'y' {
			return time.May, true
		}
	case 'a':
		if c1 == 'p' && c2 == 'r' {
			return time.April, true
		}
		if c1 == 'u' && c2 == 'g' {
			return time.August, true
		}
	case 's':
		if c1 == 'e' && c2 == 'p' {
			return time.September, true
		}
	case 'o':
		if c1 == 'c' && c2 == 't' {
			return time.October, true
		}
	case 'n':
		if c1 == 'o' && c2 == 'v' {
			return time.November, true
		}
	case 'd':
		if c1 == 'e' && c2 == 'c' {
			return time.December, true
		}
	}
	return 0, false
}

func digits2(s string, i int) (int, bool) {
	if i+2 > len(s) || !isDigit(s[i]) || !isDigit(s[i+1]) {
		return 0, false
	}
	return int(s[i]-'0')*10 + int(s[i+1]-'0'), true
}

// parseClock reads hh:mm:ss[.frac] at s[i:] and returns the end index.
func parseClock(s string, i int) (h, m, sec, nsec, end int, ok bool) {
	var ok1, ok2, ok3 bool
	h, ok1 = digits2(s, i)
	m, ok2 = digits2(s, i+3)
	sec, ok3 = digits2(s, i+6)
	if !ok1 || !ok2 || !ok3 || s[i+2] != ':' || s[i+5] != ':' || h > 23 || m > 59 || sec > 60 {
		return 0, 0, 0, 0, 0, false
	}
	end = i + 8
	if end < len(s) && (s[end] == '.' || s[end] == ',') {
		j := end + 1
		scale := 100000000
		for j < len(s) && isDigit(s[j]) {
			if scale > 0 {
				nsec += int(s[j]-'0') * scale
				scale /= 10
			}
			j++
		}
		if j == end+1 {
			return 0, 0, 0, 0, 0, false
		}
		end = j
	}
	return h, m, sec, nsec, end, true
}

// parseBSDDate reads "Mmm dd hh:mm:ss" (day padded with a space or a zero,
// or not padded) at s[i:].
func (tc *timeCtx) parseBSDDate(s string, i int, d *dateParts) (int, bool) {
	if n := tc.bsdLen; n > 0 && len(s)-i >= n && s[i:i+n] == string(tc.bsdKey[:n]) {
		*d = tc.bsdDate
		return i + n - 1, true
	}
	mon, ok := month(s[i:])
	if !ok || i+3 >= len(s) || s[i+3] != ' ' {
		return 0, false
	}
	j := i + 4
	if j < len(s) && s[j] == ' ' {
		j++
	}
	day := 0
	k := j
	for k < len(s) && k-j < 2 && isDigit(s[k]) {
		day = day*10 + int(s[k]-'0')
		k++
	}
	if k == j || day < 1 || day > 31 || k >= len(s) || s[k] != ' ' {
		return 0, false
	}
	k++
	if k+8 > len(s) {
		return 0, false
	}
	h, m, sec, nsec, end, ok := parseClock(s, k)
	if !ok {
		return 0, false
	}
	*d = dateParts{kind: dateBSD, mon: uint8(mon), day: uint8(day), h: uint8(h), m: uint8(m), s: uint8(sec), nsec: int32(nsec)}
	if end < len(s) && s[end] == ' ' && end+1-i <= len(tc.bsdKey) {
		// The blank ends the clock, so the same bytes always read the same.
		tc.bsdLen = copy(tc.bsdKey[:], s[i:end+1])
		tc.bsdDate = *d
	}
	return end, true
}

// parseISODate reads an RFC 3339 timestamp (also with a space instead of T,
// without offset, or followed by " UTC"/" GMT") at s[i:].
func (tc *timeCtx) parseISODate(s string, i int, dp *dateParts) (int, bool) {
	if i+19 > len(s) || s[i+4] != '-' || s[i+7] != '-' || (s[i+10] != 'T' && s[i+10] != ' ') {
		return 0, false
	}
	y := 0
	for k := i; k < i+4; k++ {
		if !isDigit(s[k]) {
			return 0, false
		}
		y = y*10 + int(s[k]-'0')
	}
	mo, ok1 := digits2(s, i+5)
	d, ok2 := digits2(s, i+8)
	if !ok1 || !ok2 || mo < 1 || mo > 12 || d < 1 || d > 31 {
		return 0, false
	}
	h, m, sec, nsec, end, ok := parseClock(s, i+11)
	if !ok {
		return 0, false
	}
	offset, local := 0, true
	if end < len(s) {
		switch c := s[end]; {
		case c == 'Z' || c == 'z':
			local = false
			end++
		case c == '+' || c == '-':
			oh, ok1 := digits2(s, end+1)
			if !ok1 {
				return 0, false
			}
			k := end + 3
			if k < len(s) && s[k] == ':' {
				k++
			}
			om, ok2 := digits2(s, k)
			if !ok2 || oh > 23 || om > 59 {
				return 0, false
			}
			offset = oh*3600 + om*60
			if c == '-' {
				offset = -offset
			}
			local = false
			end = k + 2
		case c == ' ' && (strings.HasPrefix(s[end:], " UTC") || strings.HasPrefix(s[end:], " GMT")):
			if end+4 == len(s) || s[end+4] == ' ' {
				local = false
				end += 4
			}
		}
	}
	*dp = dateParts{kind: dateISO, year: int32(y), mon: uint8(mo), day: uint8(d), h: uint8(h), m: uint8(m), s: uint8(sec), nsec: int32(nsec), offset: int32(offset), local: local}
	return end, true
}

// parseHeader reads the header of a text line (every format but journald
// JSON) into rec. It reports false for lines it cannot read.
func (tc *timeCtx) parseHeader(s string, rec *record) bool {
	if !tc.parseHeaderLazy(s, rec) {
		return false
	}
	if rec.date.kind != dateNone {
		rec.ns = tc.resolve(&rec.date)
	}
	return true
}

// parseHeaderLazy is parseHeader without resolving the date: rec.date holds
// it and rec.ns is zero.
func (tc *timeCtx) parseHeaderLazy(s string, rec *record) bool {
	*rec = record{}
	i := 0
	if len(s) > 0 && s[0] == '<' { // <PRI>
		j := 1
		for j < len(s) && j < 5 && isDigit(s[j]) {
			j++
		}
		if j > 1 && j < len(s) && s[j] == '>' {
			i = j + 1
			if i+1 < len(s) && isDigit(s[i]) && s[i] != '0' {
				k := i
				for k < len(s) && k-i < 3 && isDigit(s[k]) {
					k++
				}
				if k < len(s) && s[k] == ' ' {
					return tc.parse5424(s, k+1, rec)
				}
			}
		}
	}
	rest := ""
	switch {
	case i < len(s) && s[i] == '[' && i+1 < len(s) && !isDigit(s[i+1]):
		end, ok := tc.parseBSDDate(s, i+1, &rec.date)
		if !ok || end >= len(s) || s[end] != ']' {
			rec.date = dateParts{}
			return tc.parseBare(s, rec)
		}
		rec.format, rec.hasTime = FormatBSD, true
		rest = s[end+1:]
	case i < len(s) && isDigit(s[i]):
		end, ok := tc.parseISODate(s, i, &rec.date)
		if !ok {
			return false
		}
		rec.format, rec.hasTime = FormatRFC3339, true
		rest = s[end:]
	default:
		end, ok := tc.parseBSDDate(s, i, &rec.date)
		if !ok {
			return tc.parseBare(s, rec)
		}
		rec.format, rec.hasTime = FormatBSD, true
		rest = s[end:]
	}
	rest = skipSpaces(rest)
	// syslogd -v / -vv: <4.3> or <auth.info>
	if len(rest) > 2 && rest[0] == '<' {
		if j := strings.IndexByte(rest, '>'); j > 0 && strings.IndexByte(rest[:j], '.') > 0 && strings.IndexByte(rest[:j], ' ') < 0 {
			rest = skipSpaces(rest[j+1:])
		}
	}
	splitHostTag(rest, rec)
	return true
}

// parseBare reads "host prog[pid]: msg" without a date.
func (tc *timeCtx) parseBare(s string, rec *record) bool {
	if s == "" || s[0] == ' ' {
		return false
	}
	tok := token(s)
	if !isTag(tok) {
		rest := skipSpaces(s[len(tok):])
		if !isTag(token(rest)) {
			return false
		}
	}
	splitHostTag(s, rec)
	if rec.prog == "" {
		return false
	}
	rec.format = FormatBare
	return true
}

// isTag tells a syslog tag ("sshd[1]:", "kernel:", "[sshd]") from a host.
func isTag(tok string) bool {
	if tok == "" {
		return false
	}
	return tok[len(tok)-1] == ':' || strings.IndexByte(tok, '[') >= 0 || tok[len(tok)-1] == ')'
}

// splitHostTag reads "[host] tag msg".
func splitHostTag(rest string, rec *record) {
	if !fastHostTag(rest, rec) {
		slowHostTag(rest, rec)
	}
}

// slowHostTag reads every shape splitHostTag accepts.
func slowHostTag(rest string, rec *record) {
	start := rest
	tok := token(rest)
	if !isTag(tok) {
		after := skipSpaces(rest[len(tok):])
		if t2 := token(after); isTag(t2) {
			rec.host = tok
			rest, tok = after, t2
		} else {
			rec.host = tok
			rec.msg = after
			return
		}
	}
	parseTag(tok, rec)
	rec.conn = start[:len(start)-len(rest)+len(tok)]
	rec.msg = skipSpaces(rest[len(tok):])
}

// fastHostTag reads the common "host prog[pid]: msg" and "host prog: msg"
// in one pass; it reports false for every other shape.
func fastHostTag(rest string, rec *record) bool {
	sp := 0 // host names are short: one loop beats three IndexByte calls
	for sp < len(rest) && rest[sp] != ' ' {
		if rest[sp] == '[' || rest[sp] == '\t' {
			return false // the first word is a tag: no host
		}
		sp++
	}
	if sp == 0 || sp == len(rest) {
		return false
	}
	host := rest[:sp]
	if c := host[len(host)-1]; c == ':' || c == ')' || c == ']' {
		return false // the first word is a tag: no host
	}
	t := rest[sp+1:]
	j := 0
	for j < len(t) && t[j] != '[' && t[j] != ':' && t[j] != ' ' && t[j] != '(' && t[j] != '\t' {
		j++
	}
	if j == 0 || j+1 >= len(t) {
		return false
	}
	end := 0 // length of the tag within t, its colon included
	switch t[j] {
	case '[':
		k := j + 1
		for k < len(t) && isDigit(t[k]) {
			k++
		}
		if k == j+1 || k+1 >= len(t) || t[k] != ']' || t[k+1] != ':' {
			return false
		}
		rec.pid = t[j+1 : k]
		end = k + 2
	case ':':
		end = j + 1
	default:
		return false
	}
	if end < len(t) && t[end] != ' ' {
		return false
	}
	rec.host, rec.prog = host, t[:j]
	rec.conn = rest[:sp+1+end]
	rec.msg = skipSpaces(t[end:])
	return true
}

// parseTag reads prog[pid]:, prog:, [prog]:, prog(sub)[pid]:, [prog][pid].
func parseTag(tok string, rec *record) {
	tok = strings.TrimSuffix(tok, ":")
	if len(tok) > 0 && tok[0] == '[' {
		end := strings.IndexByte(tok, ']')
		if end < 0 {
			rec.prog = tok[1:]
			return
		}
		rec.prog = tok[1:end]
		tok = tok[end+1:]
		if len(tok) > 1 && tok[0] == '[' && tok[len(tok)-1] == ']' {
			rec.pid = tok[1 : len(tok)-1]
		}
		return
	}
	end := 0
	for end < len(tok) && tok[end] != '[' && tok[end] != '(' {
		end++
	}
	rec.prog = tok[:end]
	tok = tok[end:]
	if len(tok) > 0 && tok[0] == '(' {
		if k := strings.IndexByte(tok, ')'); k >= 0 {
			tok = tok[k+1:]
		}
	}
	if len(tok) > 1 && tok[0] == '[' && tok[len(tok)-1] == ']' {
		rec.pid = tok[1 : len(tok)-1]
	}
}

// parse5424 reads the rest of an RFC 5424 line from s[i:] (after "<PRI>1 ").
func (tc *timeCtx) parse5424(s string, i int, rec *record) bool {
	rec.format = FormatRFC5424
	rest := s[i:]
	ts := token(rest)
	if ts != "-" {
		end, ok := tc.parseISODate(ts, 0, &rec.date)
		if !ok || end != len(ts) {
			return false
		}
		rec.hasTime = true
	}
	fields := [4]string{}
	rest = rest[len(ts):]
	span := rest
	for k := range fields {
		if len(rest) == 0 || rest[0] != ' ' {
			return false
		}
		rest = rest[1:]
		fields[k] = token(rest)
		if fields[k] == "" {
			return false
		}
		rest = rest[len(fields[k]):]
	}
	nilable := func(v string) string {
		if v == "-" {
			return ""
		}
		return v
	}
	rec.host, rec.prog, rec.pid = nilable(fields[0]), nilable(fields[1]), nilable(fields[2])
	rec.conn = span[:len(span)-len(rest)-len(fields[3])-1]
	if len(rest) == 0 {
		return true
	}
	if rest[0] != ' ' {
		return false
	}
	rest = rest[1:]
	// structured data: "-" or [id k="v" ...]...
	if strings.HasPrefix(rest, "-") {
		rest = rest[1:]
	} else if strings.HasPrefix(rest, "[") {
		j := 0
		for j < len(rest) && rest[j] == '[' {
			j++
			inQuote := false
			for j < len(rest) {
				c := rest[j]
				if inQuote {
					if c == '\\' {
						j += 2
						continue
					}
					if c == '"' {
						inQuote = false
					}
				} else if c == '"' {
					inQuote = true
				} else if c == ']' {
					break
				}
				j++
			}
			if j >= len(rest) {
				return false
			}
			j++ // ']'
		}
		rest = rest[j:]
	} else {
		return false
	}
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	rest = strings.TrimPrefix(rest, "\ufeff")
	rec.msg = rest
	return true
}
