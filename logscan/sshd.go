package logscan

import (
	"strings"
)

// sshMatch is what the sshd classifier read from one message. Strings are
// views into the line.
type sshMatch struct {
	kind    Kind
	host    host
	port    uint16
	user    string
	hasUser bool
	preauth bool // the message ended in [preauth]
	// namedDisconnect: "Disconnected from invalid|authenticating user U ADDR
	// ... [preauth]" (a failure in extra mode)
	namedDisconnect bool
	// attacker-controlled fields to check for injected log syntax (see
	// injection); checked only when the caller needs it
	field1, field2 string
}

// injected returns the injected text of m's attacker-controlled fields, or "".
func (m *sshMatch) injected() string {
	if v := injection(m.field1); v != "" {
		return v
	}
	return injection(m.field2)
}

// verdict is what a message means to the fail2ban-style connection logic.
type verdict uint8

const (
	vNone   verdict = iota // not an authentication line in this mode
	vFail                  // a failure
	vHelper                // context only (nofail)
	vGained                // a success (nofail unless several users tried)
)

// behaviour returns how m counts in mode and whether it ends the connection
// context (forget).
func (m *sshMatch) behaviour(mode Mode) (verdict, bool) {
	ddos := mode == ModeDDoS || mode == ModeAggressive
	extra := mode == ModeExtra || mode == ModeAggressive
	switch m.kind {
	case KindFailedAuth, KindPAMAuthError, KindRootRefused, KindInvalidUser, KindUserNotAllowed,
		KindRefusedConnect, KindMaxAuthAttempts, KindAccountLocked, KindTooManyFailures:
		return vFail, false
	case KindAuthFailDisconnect, KindChangeOfUser:
		return vFail, true
	case KindFailedPublickey, KindPAMUnixFailure, KindConnectionFrom:
		return vHelper, false
	case KindTooManyHelper, KindReceivedDisconnect, KindClosed:
		return vHelper, true
	case KindClosedPreauth:
		if ddos || (extra && m.namedDisconnect) {
			return vFail, true
		}
		return vHelper, true
	case KindAccepted:
		return vGained, true
	case KindNoIdent, KindKexIdent, KindBadProtocol, KindBannerInvalid, KindDispatchFatal, KindPreauthTimeout:
		if ddos {
			return vFail, false
		}
	case KindSocketReset:
		if ddos {
			return vFail, true
		}
	case KindServerLog:
		if ddos {
			return vHelper, false
		}
	case KindNoAuthMethods:
		if extra {
			return vFail, true
		}
	case KindNegotiation:
		if extra {
			return vFail, false
		}
	}
	return vNone, false
}

// preauthNoise tells the kinds that scanners and banner grabbers produce.
func (m *sshMatch) preauthNoise() bool {
	switch m.kind {
	case KindNoIdent, KindKexIdent, KindBadProtocol, KindSocketReset, KindBannerInvalid, KindDispatchFatal,
		KindPreauthTimeout, KindNoAuthMethods, KindNegotiation, KindBadHandshake, KindClosedPreauth:
		return true
	}
	return false
}

func isSSHD(prog string) bool {
	return prog == "sshd" || prog == "sshd-session" || prog == "sshd-auth"
}

// sshdPrefix strips what sshd or the logging path puts before the message:
// a Solaris "[ID 800047 auth.info]" tag, a "kernel:[ 970.699396]:" prefix and
// "error: ", "fatal: ", "error: PAM: ".
func sshdPrefix(s string) string {
	for range 2 {
		switch {
		case strings.HasPrefix(s, "[ID "):
			if j := strings.IndexByte(s, ']'); j > 0 {
				s = skipSpaces(s[j+1:])
				continue
			}
		case strings.HasPrefix(s, "kernel:"):
			r := s[len("kernel:"):]
			r = strings.TrimPrefix(r, " ")
			if len(r) > 0 && r[0] == '[' {
				if j := strings.IndexByte(r, ']'); j > 0 {
					r = strings.TrimPrefix(r[j+1:], ":")
					s = skipSpaces(r)
					continue
				}
			}
		}
		break
	}
	if r, ok := cut(s, "error: "); ok {
		s = r
		s, _ = cut(s, "PAM: ")
	} else if r, ok := cut(s, "fatal: "); ok {
		s = r
		s, _ = cut(s, "PAM: ")
	}
	return s
}

// classifySSHD reads one sshd message (header already removed).
func classifySSHD(msg string, m *sshMatch) bool {
	*m = sshMatch{}
	s := sshdPrefix(msg)
	if s == "" {
		return false
	}
	switch s[0] {
	case 'F':
		if r, ok := cut(s, "Failed "); ok {
			return m.failed(r)
		}
	case 'I', 'i':
		if r, ok := cut(s[1:], "nvalid user "); ok {
			return m.invalidUser(r)
		}
		if r, ok := cut(s[1:], "llegal user "); ok {
			return m.invalidUser(r)
		}
	case 'A':
		if r, ok := cut(s, "Accepted "); ok {
			return m.accepted(r)
		}
		if r, ok := cut(s, "Authentication "); ok {
			return m.pamAuth(r)
		}
		if r, ok := cut(s, "Address "); ok && strings.Contains(r, "POSSIBLE BREAK-IN ATTEMPT") {
			if h, _, ok := parseHost(r); ok && h.Addr.IsValid() {
				m.kind, m.host = KindBreakIn, h
				return true
			}
		}
	case 'a':
		if r, ok := cut(s, "authentication "); ok {
			return m.pamAuth(r)
		}
	case 'U':
		if r, ok := cut(s, "User not known to the underlying authentication module for "); ok {
			if m.greedyUserFrom(r, tailVia) {
				m.kind = KindPAMAuthError
				return true
			}
			return false
		}
		if r, ok := cut(s, "User "); ok {
			return m.userNotAllowed(r)
		}
		if r, ok := cut(s, "Unable to negotiate "); ok {
			return m.negotiate(r)
		}
	case 'R':
		if r, ok := cut(s, "ROOT LOGIN REFUSED"); ok {
			if i := strings.Index(r, " FROM "); i >= 0 {
				if h, n, ok := parseHost(r[i+6:]); ok {
					m.kind, m.host, m.user, m.hasUser = KindRootRefused, h, "ROOT", true
					m.suffixInfo(r[i+6+n:])
					return true
				}
			}
			return false
		}
		if r, ok := cut(s, "Received disconnect from "); ok {
			return m.receivedDisconnect(r)
		}
		if r, ok := cut(s, "Read from socket failed: Connection reset by peer"); ok {
			m.kind = KindSocketReset
			m.suffixInfo(r)
			return true
		}
	case 'r':
		if r, ok := cut(s, "refused connect from "); ok {
			tok := token(r)
			r = r[len(tok):]
			if r2, ok := cut(r, " ("); ok {
				if h, n, ok := parseHost(r2); ok && n < len(r2) && r2[n] == ')' {
					m.kind, m.host = KindRefusedConnect, h
					return true
				}
			}
		}
	case 'p':
		return m.pamUnix(s)
	case 'm':
		if r, ok := cut(s, "maximum authentication attempts exceeded for "); ok {
			if m.greedyUserFrom(r, tailSSH) {
				m.kind = KindMaxAuthAttempts
				if u, ok := cut(m.user, "invalid user "); ok {
					m.user = u
				}
				return true
			}
		}
	case 'D':
		if r, ok := cut(s, "Disconnecting"); ok {
			return m.disconnecting(r)
		}
		if r, ok := cut(s, "Disconnected"); ok {
			return m.closed(r, true)
		}
		if r, ok := cut(s, "Did not receive identification string from "); ok {
			if h, n, ok := parseHost(r); ok {
				m.kind, m.host = KindNoIdent, h
				m.suffixInfo(r[n:])
				return true
			}
		}
	case 'C':
		if r, ok := cut(s, "Connection closed"); ok {
			return m.closed(r, false)
		}
		if r, ok := cut(s, "Connection reset"); ok {
			return m.closed(r, false)
		}
		if r, ok := cut(s, "Connection from "); ok {
			if h, n, ok := parseHost(r); ok {
				m.kind, m.host = KindConnectionFrom, h
				m.portAfter(r[n:])
				return true
			}
		}
		if r, ok := cut(s, "Close session: user "); ok {
			if i := strings.Index(r, " from "); i >= 0 {
				if h, n, ok := parseHost(r[i+6:]); ok {
					m.kind, m.host, m.user, m.hasUser = KindSessionClose, h, r[:i], true
					m.portAfter(r[i+6+n:])
					return true
				}
			}
		}
	case 'k':
		if r, ok := cut(s, "kex_exchange_identification: "); ok {
			r, _ = cut(r, "read: ")
			low := r
			if len(low) > 0 && (low[0] == 'C' || low[0] == 'c') {
				low = low[1:]
			}
			if strings.HasPrefix(low, "lient sent invalid protocol identifier") ||
				strings.HasPrefix(low, "onnection closed by remote host") ||
				strings.HasPrefix(low, "onnection reset by peer") {
				m.kind = KindKexIdent
				return true
			}
		}
	case 'B':
		if r, ok := cut(s, "Bad protocol version identification '"); ok {
			if i := lastIndex(r, "' from "); i >= 0 {
				if h, n, ok := parseHost(r[i+7:]); ok {
					m.kind, m.host = KindBadProtocol, h
					m.portAfter(r[i+7+n:])
					m.field1 = r[:i]
					return true
				}
			}
		}
	case 'S':
		if r, ok := cut(s, "SSH: Server;Ltype: "); ok {
			for _, lt := range [...]string{"Authname;", "Version;", "Kex;"} {
				if r2, ok := cut(r, lt); ok {
					if r3, ok := cut(r2, "Remote: "); ok {
						dash := strings.LastIndexByte(token(r3), '-')
						if dash > 0 {
							if h, n, ok := parseHost(r3[:dash]); ok && n == dash {
								m.kind, m.host = KindServerLog, h
								if p, _, ok := parsePort(r3[dash+1:]); ok {
									m.port = p
								}
								return true
							}
						}
					}
				}
			}
		}
	case 'b':
		if r, ok := cut(s, "banner exchange: Connection from "); ok {
			if h, n, ok := parseHost(r); ok {
				rest := r[n:]
				p, k := onPortOpt(rest)
				if strings.HasPrefix(rest[k:], ": invalid format") {
					m.kind, m.host, m.port = KindBannerInvalid, h, p
					return true
				}
			}
		}
	case 's':
		if r, ok := cut(s, "ssh_dispatch_run_fatal: Connection from "); ok {
			if h, n, ok := parseHost(r); ok {
				m.kind, m.host = KindDispatchFatal, h
				m.portAfter(r[n:])
				m.preauth = strings.HasSuffix(trimSpacesRight(r), "[preauth]")
				return true
			}
		}
	case 'T':
		if r, ok := cut(s, "Timeout before authentication for "); ok {
			r, _ = cut(r, "connection from ")
			if h, n, ok := parseHost(r); ok {
				m.kind, m.host = KindPreauthTimeout, h
				m.portAfter(r[n:])
				return true
			}
		}
	case 'n':
		if r, ok := cut(s, "no matching "); ok {
			if i := strings.Index(r, " found:"); i > 0 && algWords(r[:i]) {
				m.kind = KindNegotiation
				return true
			}
		}
	case 'M':
		if r, ok := cut(s, "Magic value check failed "); ok {
			if i := strings.Index(r, " from "); i >= 0 {
				if h, n, ok := parseHost(r[i+6:]); ok {
					m.kind, m.host = KindBadHandshake, h
					m.portAfter(r[i+6+n:])
					return true
				}
			}
		}
	}
	return false
}

// tail grammars after "from ADDR"
const (
	tailSuff = iota // ( port N| on S| [preauth]){0,3} blanks end
	tailVia         // ( via S)? then tailSuff
	tailSSH         // ( port N| on S){0,2}( sshN)? then tailSuff
)

// suffixEnd reports whether s is ( port N| on S| [preauth]){0,3} and blanks.
func (m *sshMatch) suffixEnd(s string) bool {
	for range 3 {
		switch {
		case strings.HasPrefix(s, " port "):
			p, n, ok := parsePort(s[6:])
			if !ok {
				return false
			}
			m.port = p
			s = s[6+n:]
		case strings.HasPrefix(s, " on "):
			t := token(s[4:])
			if t == "" {
				return false
			}
			s = s[4+len(t):]
		case strings.HasPrefix(s, " [preauth]"):
			m.preauth = true
			s = s[len(" [preauth]"):]
		default:
			return strings.TrimLeft(s, " \t") == ""
		}
	}
	return strings.TrimLeft(s, " \t") == ""
}

// suffixInfo notes port and [preauth] in a tail without requiring a grammar.
func (m *sshMatch) suffixInfo(s string) {
	m.portAfter(s)
	m.preauth = strings.HasSuffix(trimSpacesRight(s), "[preauth]")
}

// portAfter reads " port N" at the start of s.
func (m *sshMatch) portAfter(s string) {
	if r, ok := cut(s, " port "); ok {
		if p, _, ok := parsePort(r); ok {
			m.port = p
		}
	}
}

// onPortOpt consumes ( port N| on S){0,2} and returns the port and length.
func onPortOpt(s string) (uint16, int) {
	var port uint16
	n := 0
	for range 2 {
		r := s[n:]
		switch {
		case strings.HasPrefix(r, " port "):
			p, k, ok := parsePort(r[6:])
			if !ok {
				return port, n
			}
			port = p
			n += 6 + k
		case strings.HasPrefix(r, " on "):
			t := token(r[4:])
			if t == "" {
				return port, n
			}
			n += 4 + len(t)
		default:
			return port, n
		}
	}
	return port, n
}

// sshVersion consumes " ssh2" (or ssh1, ssh) at the start of s.
func sshVersion(s string) int {
	if !strings.HasPrefix(s, " ssh") {
		return 0
	}
	n := 4
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	if n < len(s) && isWordByte(s[n]) {
		return 0
	}
	return n
}

// tailOK checks what follows "from ADDR" against grammar g.
func (m *sshMatch) tailOK(s string, g int) bool {
	switch g {
	case tailVia:
		if r, ok := cut(s, " via "); ok {
			t := token(r)
			if t == "" {
				return false
			}
			s = r[len(t):]
		}
	case tailSSH:
		p, n := onPortOpt(s)
		if n > 0 {
			m.port = p
		}
		s = s[n:]
		s = s[sshVersion(s):]
	}
	return m.suffixEnd(s)
}

// greedyUserFrom matches "USER from ADDR<tail>" with the user as long as
// possible (the last " from " whose tail fits), which keeps injected
// " from <ip>" text inside the user name.
func (m *sshMatch) greedyUserFrom(r string, g int) bool {
	end := len(r)
	for {
		i := lastIndex(r[:end], " from ")
		if i < 0 {
			return false
		}
		if h, n, ok := parseHost(r[i+6:]); ok && m.tailOK(r[i+6+n:], g) {
			m.host, m.user, m.hasUser = h, r[:i], true
			m.field1 = m.user
			return true
		}
		end = i
	}
}

// lazyUserFrom matches "USER from ADDR<tail>" with the user as short as
// possible.
func (m *sshMatch) lazyUserFrom(r string, g int) bool {
	start := 0
	for {
		i := strings.Index(r[start:], " from ")
		if i < 0 {
			return false
		}
		i += start
		if h, n, ok := parseHost(r[i+6:]); ok && m.tailOK(r[i+6+n:], g) {
			m.host, m.user, m.hasUser = h, r[:i], true
			m.field1 = m.user
			return true
		}
		start = i + 1
	}
}

// hostAt reads "ADDR( port N| on S){0,2}( sshN)?" at the start of s into
// m.host and m.port and returns the rest. It writes m in place, where a
// host returned through a closure and then copied into m cost a tenth of
// the line.
func (m *sshMatch) hostAt(s string) (string, bool) {
	h, n, ok := parseHost(s)
	if !ok {
		return "", false
	}
	m.host = h
	s = s[n:]
	p, k := onPortOpt(s)
	m.port = p
	s = s[k:]
	return s[sshVersion(s):], true
}

// failed reads "METHOD for [invalid user ]USER from ADDR [port N] [sshN][: INFO]".
func (m *sshMatch) failed(r string) bool {
	method := token(r)
	if method == "" {
		return false
	}
	rest, ok := cut(r[len(method):], " for ")
	if !ok {
		return false
	}
	kind := KindFailedAuth
	invalid := strings.HasPrefix(rest, "invalid user ")
	if method == "publickey" && !invalid {
		kind = KindFailedPublickey
	}
	// each reading below that parses an address (m.hostAt) sets m.host and
	// m.port; set fills in the rest when the reading holds
	set := func(user, info string) bool {
		m.kind, m.user, m.hasUser = kind, user, true
		m.field1, m.field2 = user, info
		return true
	}
	if invalid {
		u := rest[len("invalid user "):]
		if i := indexFrom(u); i >= 0 {
			user := u[:i]
			if tail, ok := m.hostAt(u[i+6:]); ok {
				if user != "" && strings.IndexByte(user, ' ') < 0 {
					if info, ok := cut(tail, ": "); ok {
						return set(user, info)
					}
				}
				if strings.TrimSpace(tail) == "" {
					return set(user, "")
				}
			}
		}
	}
	// a user without blanks followed by auth info or by nothing (the
	// common case: read the address once, not again below)
	if sp := strings.IndexByte(rest, ' '); sp > 0 && strings.HasPrefix(rest[sp:], " from ") {
		if tail, ok := m.hostAt(rest[sp+6:]); ok {
			if info, ok := cut(tail, ": "); ok {
				return set(rest[:sp], info)
			}
			// what the rule below finds when this " from " is the last
			if strings.TrimSpace(tail) == "" && strings.IndexByte(rest[:sp], ':') < 0 && !strings.Contains(rest[sp+5:], " from ") {
				return set(rest[:sp], "")
			}
		}
	}
	// otherwise the user runs to the last " from " and holds no colon
	// (fail2ban lets anything without " from " follow; we want the end of
	// the line or auth info, so "user x from" cannot make "from" the host)
	if i := lastIndex(rest, " from "); i > 0 && strings.IndexByte(rest[:i], ':') < 0 {
		if tail, ok := m.hostAt(rest[i+6:]); ok && (strings.TrimSpace(tail) == "" || strings.HasPrefix(tail, ": ")) {
			user := rest[:i]
			user, _ = cut(user, "invalid user ")
			return set(user, "")
		}
	}
	return false
}

// indexFrom is strings.Index(s, " from ") made quick for the common case
// of a user name without blanks: the first blank then starts the first
// " from ", if it starts one.
func indexFrom(s string) int {
	sp := len(token(s))
	if strings.HasPrefix(s[sp:], " from ") {
		return sp
	}
	return strings.Index(s, " from ")
}

// invalidUser reads "USER from ADDR[ port N]" after "Invalid user ".
func (m *sshMatch) invalidUser(r string) bool {
	if m.lazyUserFrom(r, tailSSH) {
		m.kind = KindInvalidUser
		return true
	}
	return false
}

// pamAuth reads "(failure|error|failed) for USER from ADDR[ via S]".
func (m *sshMatch) pamAuth(r string) bool {
	for _, w := range [...]string{"failure for ", "error for ", "failed for "} {
		if rest, ok := cut(r, w); ok {
			if m.greedyUserFrom(rest, tailVia) {
				m.kind = KindPAMAuthError
				if u, ok := cut(m.user, "illegal user "); ok {
					m.user = u
				}
				return true
			}
			return false
		}
	}
	return false
}

var notAllowedReasons = [...]string{
	" not allowed because not listed in AllowUsers",
	" not allowed because listed in DenyUsers",
	" not allowed because not in any group",
	" not allowed because a group is listed in DenyGroups",
	" not allowed because none of user's groups are listed in AllowGroups",
}

// userNotAllowed reads "USER from ADDR not allowed because ..." and
// "USER not allowed because account is locked".
func (m *sshMatch) userNotAllowed(r string) bool {
	start := 0
	for {
		i := strings.Index(r[start:], " from ")
		if i < 0 {
			break
		}
		i += start
		if h, n, ok := parseHost(r[i+6:]); ok {
			tail := r[i+6+n:]
			for _, reason := range notAllowedReasons {
				if t, ok := cut(tail, reason); ok && m.suffixEnd(t) {
					m.kind, m.host, m.user, m.hasUser = KindUserNotAllowed, h, r[:i], true
					m.field1 = m.user
					return true
				}
			}
		}
		start = i + 1
	}
	if i := strings.Index(r, " not allowed because account is locked"); i > 0 {
		m.kind, m.user, m.hasUser = KindAccountLocked, r[:i], true
		m.preauth = strings.HasSuffix(trimSpacesRight(r), "[preauth]")
		return true
	}
	return false
}

// receivedDisconnect reads "ADDR[ port N]: CODE: TEXT".
func (m *sshMatch) receivedDisconnect(r string) bool {
	h, n, ok := parseHost(r)
	if !ok {
		return false
	}
	rest := r[n:]
	p, k := onPortOpt(rest)
	rest = rest[k:]
	if len(rest) == 0 || rest[0] != ':' {
		return false
	}
	rest = skipSpaces(rest[1:])
	code := 0
	j := 0
	for j < len(rest) && isDigit(rest[j]) && j < 4 {
		code = code*10 + int(rest[j]-'0')
		j++
	}
	if j == 0 || j >= len(rest) || rest[j] != ':' {
		return false
	}
	text := rest[j+1:]
	m.host, m.port = h, p
	m.preauth = strings.HasSuffix(trimSpacesRight(text), "[preauth]")
	switch code {
	case 3:
		if i := lastIndex(text, ": Auth fail"); i >= 0 && m.suffixEnd(text[i+len(": Auth fail"):]) {
			m.kind = KindAuthFailDisconnect
			return true
		}
	case 11:
		m.kind = KindReceivedDisconnect
		return true
	case 14:
		t := skipSpaces(text)
		if strings.HasPrefix(t, "No supported authentication methods available") ||
			strings.HasPrefix(t, "No authentication methods available") {
			m.kind = KindNoAuthMethods
			return true
		}
	}
	return false
}

// pamUnix reads "pam_X(sshd:auth): authentication failure; ... ruser=U rhost=ADDR [user=U]".
func (m *sshMatch) pamUnix(s string) bool {
	r, ok := cut(s, "pam_")
	if !ok {
		return false
	}
	j := 0
	for j < len(r) && r[j] >= 'a' && r[j] <= 'z' {
		j++
	}
	if j == 0 {
		return false
	}
	r, ok = cut(r[j:], "(sshd:auth):")
	if !ok {
		return false
	}
	r = skipSpaces(r)
	r, ok = cut(r, "authentication failure;")
	if !ok {
		return false
	}
	var ruser, user string
	var haveRuser, haveRhost, haveUser bool
	for r != "" {
		r = skipSpaces(r)
		t := token(r)
		if t == "" {
			break
		}
		r = r[len(t):]
		switch {
		case strings.HasPrefix(t, "ruser="):
			ruser, haveRuser = t[6:], true
		case strings.HasPrefix(t, "rhost="):
			h, n, ok := parseHost(t[6:])
			if !ok || n != len(t)-6 {
				return false
			}
			m.host, haveRhost = h, true
		case strings.HasPrefix(t, "user="):
			user, haveUser = t[5:], true
		case t == "[preauth]":
			m.preauth = true
		}
	}
	if !haveRuser || !haveRhost {
		return false
	}
	m.kind = KindPAMUnixFailure
	if haveUser && user != "" {
		m.user, m.hasUser = user, true
	} else if ruser != "" {
		m.user, m.hasUser = ruser, true
	}
	return true
}

// disconnecting reads the text after "Disconnecting".
func (m *sshMatch) disconnecting(r string) bool {
	if rest, ok := cut(r, ": Too many authentication failures"); ok {
		m.kind = KindTooManyFailures
		if u, ok := cut(rest, " for "); ok {
			t := token(u)
			if m.suffixEnd(u[len(t):]) {
				m.user, m.hasUser = t, true
				return true
			}
			// a user with blanks: everything before the suffix
			u = trimSpacesRight(u)
			u = strings.TrimSuffix(u, " [preauth]")
			m.preauth = true
			m.user, m.hasUser = u, true
			m.field1 = u
			return true
		}
		m.preauth = strings.Contains(rest, "[preauth]")
		return true
	}
	r, _ = cut(r, " from")
	var u string
	var ok bool
	if u, ok = cut(r, " invalid user "); !ok {
		if u, ok = cut(r, " authenticating user "); !ok {
			return false
		}
	}
	user := token(u)
	rest, ok := cut(u[len(user):], " ")
	if !ok {
		return false
	}
	h, n, ok := parseHost(rest)
	if !ok {
		return false
	}
	rest = rest[n:]
	p, k := onPortOpt(rest)
	rest = rest[k:]
	rest, ok = cut(rest, ":")
	if !ok {
		return false
	}
	rest = skipSpaces(rest)
	m.host, m.port, m.user, m.hasUser = h, p, user, true
	switch {
	case strings.HasPrefix(rest, "Change of username or service not allowed:") &&
		strings.HasSuffix(trimSpacesRight(rest), "[preauth]"):
		m.kind, m.preauth = KindChangeOfUser, true
		return true
	case strings.HasPrefix(rest, "Too many authentication failures"):
		m.kind = KindTooManyHelper
		m.preauth = strings.HasSuffix(trimSpacesRight(rest), "[preauth]")
		return true
	}
	return false
}

// closed reads what follows "Connection closed", "Connection reset" or
// "Disconnected": " by|from [invalid|authenticating user U] ADDR[ port N][ on S][ [preauth]]".
func (m *sshMatch) closed(r string, disconnected bool) bool {
	if rest, ok := cut(r, " by"); ok {
		r = rest
	} else if rest, ok := cut(r, " from"); ok {
		r = rest
	} else {
		return false
	}
	named := false
	var u string
	if rest, ok := cut(r, " invalid user "); ok {
		u, named = rest, true
	} else if rest, ok := cut(r, " authenticating user "); ok {
		u, named = rest, true
	}
	if named {
		// Read from the end: [preauth], port, then the address;
		// the user is everything before (it may hold blanks and addresses).
		s := trimSpacesRight(u)
	strip:
		for range 3 {
			if strings.HasSuffix(s, " [preauth]") {
				s = s[:len(s)-len(" [preauth]")]
				m.preauth = true
				continue
			}
			sp := strings.LastIndexByte(s, ' ')
			if sp <= 0 {
				break
			}
			last, before := s[sp+1:], s[:sp]
			switch {
			case strings.HasSuffix(before, " port"):
				p, n, ok := parsePort(last)
				if !ok || n != len(last) {
					break strip
				}
				m.port = p
				s = before[:len(before)-len(" port")]
			default:
				break strip
			}
		}
		sp := strings.LastIndexByte(s, ' ')
		hostText := s[sp+1:]
		h, n, ok := parseHost(hostText)
		if !ok || n != len(hostText) {
			return false
		}
		if sp < 0 {
			return false
		}
		m.user = s[:sp]
		m.host, m.hasUser = h, true
		m.field1 = m.user
		m.kind = KindClosed
		if m.preauth {
			m.kind = KindClosedPreauth
			m.namedDisconnect = disconnected
		}
		return true
	}
	rest, ok := cut(r, " ")
	if !ok {
		return false
	}
	h, n, ok := parseHost(rest)
	if !ok {
		return false
	}
	if !m.suffixEnd(rest[n:]) {
		return false
	}
	m.host = h
	m.kind = KindClosed
	if m.preauth {
		m.kind = KindClosedPreauth
	}
	return true
}

// accepted reads "METHOD for USER from ADDR port N ...".
func (m *sshMatch) accepted(r string) bool {
	method := token(r)
	if method == "" {
		return false
	}
	for i := 0; i < len(method); i++ {
		if !isWordByte(method[i]) && method[i] != '-' {
			return false
		}
	}
	rest, ok := cut(r[len(method):], " for ")
	if !ok {
		return false
	}
	user := token(rest)
	rest, ok = cut(rest[len(user):], " from ")
	if !ok || user == "" {
		return false
	}
	h, n, ok := parseHost(rest)
	if !ok {
		return false
	}
	if n < len(rest) && rest[n] != ' ' && rest[n] != '\t' {
		return false
	}
	m.kind, m.host, m.user, m.hasUser = KindAccepted, h, user, true
	m.portAfter(rest[n:])
	return true
}

// negotiate reads "with ADDR[ port N]: no matching X found." and "a X".
func (m *sshMatch) negotiate(r string) bool {
	if rest, ok := cut(r, "with "); ok {
		h, n, ok := parseHost(rest)
		if !ok {
			return false
		}
		rest = rest[n:]
		p, k := onPortOpt(rest)
		rest, ok = cut(rest[k:], ": no matching ")
		if !ok {
			return false
		}
		if i := strings.Index(rest, " found."); i > 0 && algWords(rest[:i]) {
			m.kind, m.host, m.port = KindNegotiation, h, p
			m.preauth = strings.HasSuffix(trimSpacesRight(rest), "[preauth]")
			return true
		}
		return false
	}
	if rest, ok := cut(r, "a "); ok && rest != "" && isWordByte(rest[0]) {
		m.kind = KindNegotiation
		m.preauth = strings.HasSuffix(trimSpacesRight(rest), "[preauth]")
		return true
	}
	return false
}

// algWords accepts one to four words naming an algorithm kind ("cipher",
// "key exchange method", "host key type").
func algWords(s string) bool {
	words, n := 1, 0 // words so far, bytes in the current word
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == ' ':
			if n == 0 || words == 4 {
				return false
			}
			words, n = words+1, 0
		case isWordByte(s[i]):
			n++
		default:
			return false
		}
	}
	return n > 0
}

// injection returns the part of an attacker-controlled field that imitates
// log syntax: " from <address>", " port N", or a syslog header; "" when the
// field is clean. It looks at the start of each word (after a blank or a
// quote) and costs time linear in the field.
func injection(field string) string {
	if len(field) < 4 {
		return ""
	}
	for i := 0; i < len(field); i++ {
		if i > 0 && field[i-1] != ' ' && field[i-1] != '\'' {
			continue
		}
		if injectedAt(field[i:], i > 0) {
			return field
		}
	}
	return ""
}

// injectedAt reports whether the word starting s imitates log syntax;
// inside is false at the start of the field.
func injectedAt(s string, inside bool) bool {
	switch c := s[0]; {
	case c == 'f' && strings.HasPrefix(s, "from "):
		h, _, ok := parseHost(s[5:])
		return ok && h.Addr.IsValid()
	case c == 'p' && inside && strings.HasPrefix(s, "port "):
		_, _, ok := parsePort(s[5:])
		return ok
	case c == 'r' && strings.HasPrefix(s, "rhost="), c == 's' && strings.HasPrefix(s, "sshd["):
		return true
	}
	if inside && isHexDigit(s[0]) && addrWord(s) {
		return true
	}
	if len(s) > 4 && s[3] == ' ' {
		if _, ok := month(s); ok && bsdDateAhead(s) {
			return true
		}
	}
	return false
}

// addrWord reports whether s starts with an IP address followed by a blank
// or the end. Words that cannot be one (an IPv4 address has three dots, an
// IPv6 address two colons or more) are turned away in one pass.
func addrWord(s string) bool {
	dots, colons := 0, 0
	for n := 0; n < len(s) && isHostByte(s[n]); n++ {
		switch s[n] {
		case '.':
			dots++
		case ':':
			colons++
		}
	}
	if dots != 3 && colons < 2 {
		return false
	}
	h, k, ok := parseHost(s)
	return ok && h.Addr.IsValid() && (k == len(s) || s[k] == ' ')
}

// bsdDateAhead checks for "Mmm dd hh:mm:ss" at the start of s.
func bsdDateAhead(s string) bool {
	j := 4
	if j < len(s) && s[j] == ' ' {
		j++
	}
	k := j
	for k < len(s) && k-j < 2 && isDigit(s[k]) {
		k++
	}
	if k == j || k >= len(s) || s[k] != ' ' || k+9 > len(s) {
		return false
	}
	_, _, _, _, _, ok := parseClock(s, k+1)
	return ok
}
