package logscan

import (
	"net/netip"
	"strings"
)

// fwMatch is one netfilter packet log line (iptables LOG, nftables log, ufw).
type fwMatch struct {
	action  string // "[UFW BLOCK]" → "BLOCK", "IPTABLES-DROP:" → "IPTABLES-DROP", "" without prefix
	in      string
	src     host
	dst     netip.Addr
	proto   string
	sport   uint16
	dport   uint16
	hasPort bool
}

// classifyFirewall reads a kernel message holding a netfilter packet log:
// an optional log prefix, then IN= OUT= ... SRC= DST= ... PROTO= SPT= DPT=.
// UFW AUDIT and ALLOW lines are skipped (false): they are not hits.
func classifyFirewall(msg string, m *fwMatch) bool {
	*m = fwMatch{}
	s := msg
	// kernel time stamp "[12345.678901] "
	if len(s) > 0 && s[0] == '[' && len(s) > 1 && (s[1] == ' ' || isDigit(s[1])) {
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return false
		}
		s = skipSpaces(s[j+1:])
	}
	in := strings.Index(s, "IN=")
	if in < 0 || (in > 0 && s[in-1] != ' ') {
		return false
	}
	prefix := trimSpacesRight(s[:in])
	if prefix != "" {
		if strings.HasPrefix(prefix, "[UFW ") && strings.HasSuffix(prefix, "]") {
			act := prefix[len("[UFW ") : len(prefix)-1]
			if strings.HasPrefix(act, "AUDIT") || strings.HasPrefix(act, "ALLOW") {
				return false
			}
			m.action = act
		} else {
			m.action = strings.TrimSuffix(prefix, ":")
		}
	}
	s = s[in:]
	haveOut := false
	for s != "" {
		s = skipSpaces(s)
		t := token(s)
		if t == "" {
			break
		}
		s = s[len(t):]
		eq := strings.IndexByte(t, '=')
		if eq <= 0 {
			continue
		}
		k, v := t[:eq], t[eq+1:]
		switch k {
		case "IN":
			if m.in == "" {
				m.in = v
			}
		case "OUT":
			haveOut = true
		case "SRC":
			if h, n, ok := parseHost(v); ok && n == len(v) && h.Addr.IsValid() {
				m.src = h
			}
		case "DST":
			if a, ok := parseIP(v); ok {
				m.dst = a
			}
		case "PROTO":
			m.proto = v
		case "SPT":
			if p, n, ok := parsePort(v); ok && n == len(v) {
				m.sport = p
			}
		case "DPT":
			if p, n, ok := parsePort(v); ok && n == len(v) {
				m.dport, m.hasPort = p, true
			}
		}
	}
	return haveOut && m.src.valid()
}
