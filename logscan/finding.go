package logscan

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Rule names the detection that produced a Finding. Rule values are stable
// strings meant for JSON output, alerting and joins with other tools.
type Rule string

// The rules an Analyzer applies. Every threshold is set in Options.Rules; the
// defaults are given with each rule.
const (
	// RuleBruteForce: at least BruteForce.Count (5) authentication failures from
	// one source inside any BruteForce.Window (10 min), exact sliding window.
	RuleBruteForce Rule = "brute-force"
	// RuleBurst: a leaky bucket per source (capacity 5, one leak per 10 s,
	// CrowdSec's ssh-bf) overflowed.
	RuleBurst Rule = "burst"
	// RuleSlowBruteForce: a slow leaky bucket per source (capacity 10, one leak
	// per 60 s, CrowdSec's ssh-slow-bf) overflowed. It is meant for attacks
	// paced to stay under the other rules, so it is not opened while a
	// brute-force or burst finding is open for the source.
	RuleSlowBruteForce Rule = "slow-brute-force"
	// RuleUserEnumeration: at least 5 distinct user names tried from one source
	// inside 10 min.
	RuleUserEnumeration Rule = "user-enumeration"
	// RulePreauthScan: at least 10 pre-authentication disconnects, banner,
	// key-exchange or identification failures from one source inside 10 min.
	// These are kept apart from authentication failures (in the normal mode
	// they never count towards brute force).
	RulePreauthScan Rule = "preauth-scan"
	// RuleSuccessAfterFailures: a successful login from a source that had at
	// least 3 failures in the previous hour (likely compromise).
	RuleSuccessAfterFailures Rule = "success-after-failures"
	// RuleOffHoursLogin: a successful login outside the configured working
	// hours and days (Monday to Friday, 08:00 to 18:00 in Options.Location).
	RuleOffHoursLogin Rule = "off-hours-login"
	// RuleRiskyPort: firewall log lines for packets from one source to a
	// high-risk port (22, 23, 445, 3306, 3389, 5432, 5900, 6379).
	RuleRiskyPort Rule = "risky-port"
	// RulePortScan: at least 15 distinct destination ports from one source
	// inside 60 s in firewall log lines.
	RulePortScan Rule = "port-scan"
	// RuleAddressConflict: a message saying an address is in use by another
	// machine. Critical when the address was claimed by 2 or more MACs, or
	// flipped 3 or more times inside 10 min.
	RuleAddressConflict Rule = "address-conflict"
	// RuleDataConflict: an addrguard reconcile audit line ("Conflict detected
	// for key=...") whose key does not name an address.
	RuleDataConflict Rule = "data-conflict"
	// RuleLogInjection: an attacker-controlled field (user name, protocol
	// identification, auth info) carries text that imitates " from <ip>",
	// " port N" or a syslog header. The failure is attributed to the address
	// sshd logged, never to the injected one.
	RuleLogInjection Rule = "log-injection"
	// RuleIncident: one source that has both sshd findings and firewall
	// findings; the incident names the rules it combines in Related.
	RuleIncident Rule = "incident"
	// RuleLongLine: lines longer than Options.MaxLineBytes; they were skipped
	// without being buffered.
	RuleLongLine Rule = "long-line"
)

// Severity orders findings. The zero value is SeverityInfo.
type Severity int

// Severities from least to most urgent.
const (
	SeverityInfo Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// String returns the lower-case name of s ("info" ... "critical").
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "severity(" + strconv.Itoa(int(s)) + ")"
	}
	return severityNames[s]
}

// MarshalText encodes s as its name.
func (s Severity) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(severityNames) {
		return nil, fmt.Errorf("logscan: severity %d out of range", int(s))
	}
	return []byte(severityNames[s]), nil
}

// UnmarshalText decodes a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if string(b) == n {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("logscan: unknown severity %q", b)
}

func (s Severity) raise() Severity {
	if s < SeverityCritical {
		return s + 1
	}
	return s
}

// Finding is one conclusion drawn from a stream: a rule that fired for a key
// (usually a source address, for conflicts the contested address). Lists are
// bounded by Options.MaxEvidence and Options.MaxListed; the Distinct counts
// say how many values there were in all.
type Finding struct {
	// Rule that fired.
	Rule Rule `json:"rule"`
	// Key groups findings of one rule: the source ("192.0.2.7"), the
	// contested address of a conflict, or the reconcile key.
	Key string `json:"key"`
	// Severity of the finding.
	Severity Severity `json:"severity"`
	// Count is the number of events behind the finding (failures, hits,
	// conflict messages).
	Count int `json:"count"`
	// Lines are evidence line numbers (1-based, in the scanned stream), the
	// first Options.MaxEvidence of them.
	Lines []int64 `json:"lines"`
	// Users are distinct user names involved, in order of first appearance
	// (each cut to 256 bytes; sshd itself logs at most 100).
	Users []string `json:"users,omitempty"`
	// First and Last are the log times of the first and last evidence.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Src is the source address (the attacker, the scanner), when one was
	// logged as an address. Host names and odd forms stay in SrcText, never
	// resolved.
	Src netip.Addr `json:"src,omitzero"`
	// SrcText is the source as it was first logged (for host names and odd
	// forms such as "192.030.0.6" it is all there is), cut to 256 bytes.
	SrcText string `json:"src_text,omitempty"`
	// Addr is the contested address of an address conflict.
	Addr netip.Addr `json:"addr,omitzero"`
	// MACs are the hardware addresses that claimed Addr, in order of first
	// appearance.
	MACs []net.HardwareAddr `json:"macs,omitempty"`
	// Ports are distinct destination ports (firewall rules), in order of
	// first appearance.
	Ports []uint16 `json:"ports,omitempty"`
	// DistinctUsers, DistinctPorts and DistinctMACs count every distinct value
	// seen, also those beyond the listed ones (up to 1024 tracked).
	DistinctUsers int `json:"distinct_users,omitempty"`
	DistinctPorts int `json:"distinct_ports,omitempty"`
	DistinctMACs  int `json:"distinct_macs,omitempty"`
	// Related lists the rules an incident combines.
	Related []Rule `json:"related,omitempty"`
	// Detail is a short human-readable explanation.
	Detail string `json:"detail,omitempty"`
}

// String renders f on one line, for terminals and logs.
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Severity.String())
	b.WriteByte(' ')
	b.WriteString(string(f.Rule))
	b.WriteByte(' ')
	b.WriteString(f.Key)
	fmt.Fprintf(&b, " count=%d", f.Count)
	if !f.First.IsZero() {
		b.WriteString(" first=")
		b.WriteString(f.First.Format(time.RFC3339))
		b.WriteString(" last=")
		b.WriteString(f.Last.Format(time.RFC3339))
	}
	if len(f.MACs) > 0 {
		b.WriteString(" macs=")
		for i, m := range f.MACs {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(m.String())
		}
	}
	if len(f.Users) > 0 {
		b.WriteString(" users=")
		b.WriteString(strconv.Quote(strings.Join(f.Users, ",")))
	}
	if len(f.Ports) > 0 {
		b.WriteString(" ports=")
		for i, p := range f.Ports {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(int(p)))
		}
	}
	if len(f.Related) > 0 {
		b.WriteString(" related=")
		for i, r := range f.Related {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(string(r))
		}
	}
	if len(f.Lines) > 0 {
		b.WriteString(" lines=")
		for i, l := range f.Lines {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(l, 10))
		}
	}
	if f.Detail != "" {
		b.WriteString(": ")
		b.WriteString(f.Detail)
	}
	return b.String()
}

// MarshalJSON encodes f with MACs as colon-separated strings.
func (f Finding) MarshalJSON() ([]byte, error) {
	type plain Finding
	return json.Marshal(struct {
		plain
		MACs []string `json:"macs,omitempty"`
	}{plain: plain(f), MACs: macStrings(f.MACs)})
}

// UnmarshalJSON decodes what MarshalJSON produced.
func (f *Finding) UnmarshalJSON(b []byte) error {
	type plain Finding
	var v struct {
		plain
		MACs []string `json:"macs,omitempty"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Finding(v.plain)
	f.MACs = nil
	for _, s := range v.MACs {
		m, err := net.ParseMAC(s)
		if err != nil {
			return fmt.Errorf("logscan: finding mac %q: %w", s, err)
		}
		f.MACs = append(f.MACs, m)
	}
	return nil
}

func macStrings(ms []net.HardwareAddr) []string {
	if len(ms) == 0 {
		return nil
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}
