package logscan

import (
	"encoding/json"
	"net"
	"net/netip"
	"time"
)

// Kind names the message family of a recognised line. Kinds are stable
// strings; the sshd kinds follow OpenSSH's messages.
type Kind string

// sshd message kinds.
const (
	KindFailedAuth         Kind = "failed-auth"              // Failed password/keyboard-interactive/hostbased/... for USER from ADDR
	KindFailedPublickey    Kind = "failed-publickey"         // Failed publickey for a valid user (a key that did not fit: helper)
	KindPAMAuthError       Kind = "pam-auth-error"           // error: PAM: Authentication failure/error for USER from ADDR
	KindRootRefused        Kind = "root-login-refused"       // ROOT LOGIN REFUSED FROM ADDR
	KindInvalidUser        Kind = "invalid-user"             // Invalid user USER from ADDR
	KindUserNotAllowed     Kind = "user-not-allowed"         // User USER from ADDR not allowed because ...
	KindAccountLocked      Kind = "account-locked"           // User USER not allowed because account is locked
	KindRefusedConnect     Kind = "refused-connect"          // refused connect from NAME (ADDR) (tcp wrappers)
	KindAuthFailDisconnect Kind = "auth-fail-disconnect"     // Received disconnect from ADDR: 3: ...: Auth fail
	KindPAMUnixFailure     Kind = "pam-unix-failure"         // pam_unix(sshd:auth): authentication failure; ... rhost=ADDR
	KindMaxAuthAttempts    Kind = "max-auth-attempts"        // maximum authentication attempts exceeded for USER from ADDR
	KindTooManyFailures    Kind = "too-many-failures"        // Disconnecting: Too many authentication failures [for USER]
	KindTooManyHelper      Kind = "too-many-failures-helper" // Disconnecting invalid user U ADDR port N: Too many authentication failures (already counted)
	KindChangeOfUser       Kind = "change-of-user"           // Disconnecting invalid user U ADDR: Change of username or service not allowed
	KindReceivedDisconnect Kind = "received-disconnect"      // Received disconnect from ADDR: 11: ...
	KindClosedPreauth      Kind = "closed-preauth"           // Connection closed/reset by [.. user U] ADDR ... [preauth]
	KindClosed             Kind = "closed"                   // Connection closed/reset by ADDR (after authentication phase)
	KindAccepted           Kind = "accepted"                 // Accepted METHOD for USER from ADDR
	KindConnectionFrom     Kind = "connection-from"          // Connection from ADDR port N (LogLevel VERBOSE)
	KindNoIdent            Kind = "no-ident"                 // Did not receive identification string from ADDR
	KindKexIdent           Kind = "kex-ident"                // kex_exchange_identification: ...
	KindBadProtocol        Kind = "bad-protocol"             // Bad protocol version identification '...' from ADDR
	KindServerLog          Kind = "ssh-server-log"           // SSH: Server;Ltype: ...;Remote: ADDR-PORT;...
	KindSocketReset        Kind = "socket-reset"             // Read from socket failed: Connection reset by peer
	KindBannerInvalid      Kind = "banner-invalid"           // banner exchange: Connection from ADDR port N: invalid format
	KindDispatchFatal      Kind = "dispatch-fatal"           // ssh_dispatch_run_fatal: Connection from ADDR port N: ...
	KindPreauthTimeout     Kind = "preauth-timeout"          // Timeout before authentication for ADDR
	KindNoAuthMethods      Kind = "no-auth-methods"          // Received disconnect from ADDR: 14: No supported authentication methods available
	KindNegotiation        Kind = "negotiation-failed"       // Unable to negotiate with ADDR: no matching X found
	KindBadHandshake       Kind = "bad-handshake"            // Magic value check failed (...) on obfuscated handshake from ADDR
	KindBreakIn            Kind = "reverse-mismatch"         // Address ADDR maps to NAME, but this does not map back (not a failure)
	KindSessionClose       Kind = "session-close"            // Close session: user U from ADDR (not a failure)
)

// Other kinds.
const (
	KindFirewall        Kind = "firewall"         // iptables/nftables/ufw kernel packet log
	KindAddressConflict Kind = "address-conflict" // an address in use by another MAC
	KindReconcile       Kind = "reconcile-conflict"
)

// Role tells what a recognised line means for authentication analysis, as
// fail2ban's sshd filter in the selected Mode would count it.
type Role string

// Roles.
const (
	// RoleFailure: an authentication failure attributed to Src.
	RoleFailure Role = "failure"
	// RoleHelper: a line that only carries context for its sshd[pid]
	// connection (the address, the user) or a failure still waiting for its
	// address.
	RoleHelper Role = "helper"
	// RoleSuccess: a successful login.
	RoleSuccess Role = "success"
	// RoleInfo: recognised, but not an authentication event in this mode
	// (firewall hits, conflicts, pre-auth noise outside ddos mode).
	RoleInfo Role = "info"
)

// Event is one recognised line. Strings are copies: an Event stays valid
// after the callback returns.
type Event struct {
	// Line is the 1-based line number in the stream.
	Line int64 `json:"line"`
	// Time is the log time (zero when the line carried none and nothing came
	// before it).
	Time time.Time `json:"time,omitzero"`
	// Format is the header format the line was read in.
	Format Format `json:"format"`
	// Host, Program and PID come from the syslog header or journal fields.
	Host    string `json:"host,omitempty"`
	Program string `json:"program,omitempty"`
	PID     string `json:"pid,omitempty"`
	// Kind is the message family, Role what it means in the selected mode.
	Kind Kind `json:"kind"`
	Role Role `json:"role"`
	// Src is the remote (source) address; SrcText the raw text, which is all
	// there is for host names and odd forms such as "192.030.0.6".
	Src     netip.Addr `json:"src,omitzero"`
	SrcText string     `json:"src_text,omitempty"`
	// Port is the source port (sshd) or the destination port (firewall).
	Port uint16 `json:"port,omitempty"`
	// User is the user name the line named (possibly empty); Users the
	// distinct users seen on this sshd connection so far.
	User  string   `json:"user,omitempty"`
	Users []string `json:"users,omitempty"`
	// Attempts is, for a failure, the number of lines fail2ban would have
	// accumulated in its ticket for this connection.
	Attempts int `json:"attempts,omitempty"`
	// Preauth marks pre-authentication noise (scanners, banner grabbers).
	Preauth bool `json:"preauth,omitempty"`
	// Injection holds the attacker-controlled text that imitated log
	// syntax, when there was any.
	Injection string `json:"injection,omitempty"`
	// Firewall fields.
	Dst     netip.Addr `json:"dst,omitzero"`
	SrcPort uint16     `json:"src_port,omitempty"`
	Proto   string     `json:"proto,omitempty"`
	Action  string     `json:"action,omitempty"` // "BLOCK", a log prefix, or ""
	// Address-conflict fields: the contested address and the MAC that
	// claimed it (and the previous one, for flip-flops and moves).
	Addr   netip.Addr       `json:"addr,omitzero"`
	MAC    net.HardwareAddr `json:"mac,omitempty"`
	OldMAC net.HardwareAddr `json:"old_mac,omitempty"`
	// Iface is the interface a conflict or firewall line names.
	Iface string `json:"iface,omitempty"`
	// Key is the reconcile key of a reconcile audit line.
	Key string `json:"key,omitempty"`
}

// MarshalJSON encodes e with MACs as colon-separated strings.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	var mac, old string
	if len(e.MAC) > 0 {
		mac = e.MAC.String()
	}
	if len(e.OldMAC) > 0 {
		old = e.OldMAC.String()
	}
	return json.Marshal(struct {
		plain
		MAC    string `json:"mac,omitempty"`
		OldMAC string `json:"old_mac,omitempty"`
	}{plain(e), mac, old})
}
