package logscan

import (
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// view returns a string sharing b's memory. The analyzer reads every line
// through such views; anything kept beyond the line is copied with
// strings.Clone first.
func view(b []byte) string { return unsafeString(b) }

// maxKept bounds the attacker-controlled text (user names, host names,
// reconcile keys, interface names) that outlives its line: sshd logs at
// most 100 bytes of a user name and a DNS name has at most 253, so only
// forged lines are cut, and no table entry holds more than this per name
// however long the lines are. Events are not cut: they copy their line.
const maxKept = 256

// clipKept returns s cut to at most maxKept bytes at a UTF-8 boundary (a
// view). Table keys go through it, so a name is looked up as it is kept.
func clipKept(s string) string {
	if len(s) <= maxKept {
		return s
	}
	n := maxKept
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// keep returns a copy of s, cut by clipKept, that outlives the line.
func keep(s string) string { return strings.Clone(clipKept(s)) }

func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// host is a remote address as logged: Addr when the text is an IP address
// (IPv4-mapped IPv6 unmapped, zone stripped), Text always (a view until
// cloned).
type host struct {
	Addr netip.Addr
	Text string
}

func (h host) valid() bool { return h.Addr.IsValid() || h.Text != "" }

// text returns the host as logged, or the address when the text was not
// kept.
func (h host) text() string {
	if h.Text != "" {
		return h.Text
	}
	if h.Addr.IsValid() {
		return h.Addr.String()
	}
	return ""
}

func isHostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == ':' || c == '-' || c == '_' || c == '%'
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// parseHost reads an address or host name at the start of s and returns it
// with the number of bytes it used. It accepts IPv4, IPv6 (also in brackets,
// with a zone, or IPv4-mapped) and DNS-like names; a trailing colon (as in
// "from 192.0.2.1: 11: Bye") is not part of the host.
func parseHost(s string) (host, int, bool) {
	if len(s) > 0 && s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return host{}, 0, false
		}
		a, ok := parseIP(s[1:end])
		if !ok {
			return host{}, 0, false
		}
		return host{Addr: a, Text: s[1:end]}, end + 1, true
	}
	// the common case first: a dotted quad that ends the host token is the
	// token, and parseIP would read it the same way
	if a, n, ok := ipv4Prefix(s); ok && (n == len(s) || !isHostByte(s[n])) {
		return host{Addr: a, Text: s[:n]}, n, true
	}
	n := 0
	for n < len(s) && isHostByte(s[n]) {
		n++
	}
	tok := s[:n]
	if a, ok := parseIP(tok); ok {
		return host{Addr: a, Text: tok}, len(tok), true
	}
	// Trailing colons may be punctuation ("from 192.0.2.1: 11: Bye"). Past
	// the whole token (where a zone may end in colons), an address ends in
	// no colon or in "::", so of the other ways to strip them only two can
	// parse: keeping exactly "::", and stripping them all. (Trying every
	// length would make a run of colons quadratic.)
	k := 0
	for k < len(tok) && tok[len(tok)-1-k] == ':' {
		k++
	}
	if k > 2 {
		if a, ok := parseIP(tok[:len(tok)-k+2]); ok {
			return host{Addr: a, Text: tok[:len(tok)-k+2]}, len(tok) - k + 2, true
		}
	}
	if k > 0 {
		tok = tok[:len(tok)-k]
		if a, ok := parseIP(tok); ok {
			return host{Addr: a, Text: tok}, len(tok), true
		}
	}
	if tok == "" || strings.IndexByte(tok, ':') >= 0 || strings.IndexByte(tok, '%') >= 0 {
		return host{}, 0, false
	}
	if !isWordByte(tok[len(tok)-1]) {
		return host{}, 0, false
	}
	return host{Text: tok}, len(tok), true
}

// parseIP parses an address, unmapping IPv4-mapped IPv6 and dropping zones.
// It accepts what netip.ParseAddr accepts but never allocates (a failed
// netip.ParseAddr allocates its error), so attacker-written text costs no
// garbage.
func parseIP(s string) (netip.Addr, bool) {
	if len(s) < 2 {
		return netip.Addr{}, false
	}
	if s[0] != ':' && !isHexDigit(s[0]) {
		return netip.Addr{}, false
	}
	if strings.IndexByte(s, ':') < 0 {
		return parseIPv4(s)
	}
	return parseIPv6(s)
}

// parseIPv6 reads the RFC 4291 text form: up to eight groups of one to
// four hex digits, at most one "::" standing for one or more zero groups,
// optionally a dotted quad in place of the last two groups, and an
// optional non-empty %zone (dropped).
func parseIPv6(s string) (netip.Addr, bool) {
	if z := strings.IndexByte(s, '%'); z >= 0 {
		if z == len(s)-1 {
			return netip.Addr{}, false
		}
		s = s[:z]
	}
	var ip [16]byte
	ellipsis := -1 // where "::" stands, in bytes of ip
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if s == "" {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		n, v := 0, 0
		for n < len(s) && isHexDigit(s[n]) {
			if n == 4 {
				return netip.Addr{}, false
			}
			v = v<<4 | int(hexVal(s[n]))
			n++
		}
		if n == 0 {
			return netip.Addr{}, false
		}
		if n < len(s) && s[n] == '.' { // a dotted quad ends the address
			if i > 12 { // no room; with fewer groups and no "::" the end rejects it
				return netip.Addr{}, false
			}
			a4, ok := parseIPv4(s)
			if !ok {
				return netip.Addr{}, false
			}
			b := a4.As4()
			copy(ip[i:], b[:])
			i += 4
			s = ""
			break
		}
		ip[i], ip[i+1] = byte(v>>8), byte(v)
		i += 2
		s = s[n:]
		if s == "" {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			s = s[1:]
			if s == "" {
				break
			}
		}
	}
	if s != "" {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" stands for at least one group
	}
	return netip.AddrFrom16(ip).Unmap(), true
}

// parseIPv4 reads a dotted quad as netip.ParseAddr does (no leading zeros):
// four fields of one to three digits, each read in one step.
func parseIPv4(s string) (netip.Addr, bool) {
	if a, n, ok := ipv4Prefix(s); ok && n == len(s) {
		return a, true
	}
	return netip.Addr{}, false
}

// ipv4Prefix reads a dotted quad (as parseIPv4 does) at the start of s and
// returns it with its length; what follows is not looked at.
func ipv4Prefix(s string) (netip.Addr, int, bool) {
	var b [4]byte
	i := 0
	for f := range 4 {
		if f > 0 {
			if i >= len(s) || s[i] != '.' {
				return netip.Addr{}, 0, false
			}
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return netip.Addr{}, 0, false
		}
		v := int(s[i] - '0')
		i++
		if v != 0 { // a leading 0 stands alone
			for k := 0; k < 2 && i < len(s) && isDigit(s[i]); k++ {
				v = v*10 + int(s[i]-'0')
				i++
			}
			if v > 255 {
				return netip.Addr{}, 0, false
			}
		}
		b[f] = byte(v)
	}
	return netip.AddrFrom4(b), i, true
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parsePort reads decimal digits at the start of s as a port.
func parsePort(s string) (uint16, int, bool) {
	n, v := 0, 0
	for n < len(s) && isDigit(s[n]) {
		v = v*10 + int(s[n]-'0')
		if v > 65535 {
			return 0, 0, false
		}
		n++
	}
	if n == 0 {
		return 0, 0, false
	}
	return uint16(v), n, true
}

// atoi reads a non-negative decimal number that must fill s.
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	return v, true
}

// parseMAC reads a MAC address written with colons or dashes, with one or
// two hex digits per byte (arpwatch drops leading zeros).
func parseMAC(s string) (net.HardwareAddr, int, bool) {
	var buf [20]byte
	n, i := 0, 0
	for {
		start := i
		v := 0
		for i < len(s) && i-start < 2 && isHexDigit(s[i]) {
			v = v<<4 | int(hexVal(s[i]))
			i++
		}
		if i == start || n == len(buf) {
			return nil, 0, false
		}
		buf[n] = byte(v)
		n++
		if i < len(s) && (s[i] == ':' || s[i] == '-') && i+1 < len(s) && isHexDigit(s[i+1]) {
			i++
			continue
		}
		break
	}
	if i < len(s) && isHexDigit(s[i]) {
		return nil, 0, false
	}
	if n != 6 && n != 8 && n != 20 {
		return nil, 0, false
	}
	m := make(net.HardwareAddr, n)
	copy(m, buf[:n])
	return m, i, true
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// cut returns s without prefix and whether s had it.
func cut(s, prefix string) (string, bool) {
	if strings.HasPrefix(s, prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// lastIndex is strings.LastIndex for the short separators the sshd
// grammar looks for from the end (" from "): a backward scan comparing the
// separator's second byte first, where strings.LastIndex rolls a hash over
// every byte.
func lastIndex(s, sep string) int {
	n := len(sep)
	if n < 2 {
		return strings.LastIndex(s, sep)
	}
	c0, c1 := sep[0], sep[1]
	for i := len(s) - n; i >= 0; i-- {
		if s[i+1] == c1 && s[i] == c0 && s[i:i+n] == sep {
			return i
		}
	}
	return -1
}

// skipSpaces drops leading blanks.
func skipSpaces(s string) string {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return s[i:]
}

func trimSpacesRight(s string) string {
	i := len(s)
	for i > 0 && (s[i-1] == ' ' || s[i-1] == '\t') {
		i--
	}
	return s[:i]
}

// token returns the text up to the first blank.
func token(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			return s[:i]
		}
	}
	return s
}
