// Package logscan reads system logs (BSD syslog, RFC 3339 and RFC 5424
// lines, journald JSON) in constant memory and turns them into findings: SSH
// brute force and user enumeration, success after failures, off-hours
// logins, firewall hits on risky ports and port scans, log injection, and
// messages saying an address is in use by another machine.
//
//	an := logscan.New(logscan.Options{})
//	err := an.Scan(file, func(f logscan.Finding) { fmt.Println(f) })
//	// f.Rule is "brute-force", "address-conflict", "off-hours-login", …
//
// # Reading
//
// The format is detected per line, so mixed and concatenated files work:
// BSD syslog ("Mar  2 09:00:00 host sshd[42]: ..."; also with <PRI>,
// syslogd's <4.3> and <auth.info>, "[Mar  2 09:00:00]"), RFC 3339 prefixes
// as rsyslog writes them on current Debian and Ubuntu, RFC 5424 with
// structured data, journalctl -o json (byte-array and multi-value fields
// included) and "host prog[pid]: msg" lines without a date. BSD dates carry
// no year: it is inferred from Options.Reference (the year before when the
// line would be more than a day after the reference), and a stream that
// runs from December into January moves to the next year.
//
// Any io.Reader works. Memory is bounded: lines longer than
// Options.MaxLineBytes are reported (RuleLongLine) and skipped without being
// buffered, and every table (sources, sshd connections, contested
// addresses) has a fixed capacity with least-recently-used eviction; an
// evicted entry's findings are emitted first. Lists inside a Finding are
// bounded too (MaxEvidence lines, MaxListed users, ports and MACs), and the
// names kept beyond their line (user and host names, reconcile keys) are cut
// to 256 bytes, more than sshd logs of a user name or DNS allows a host
// name, so forged lines cannot make an entry large.
//
// There is no regular expression on the hot path: a header parser, then a
// dispatch on the program and on the first bytes of the message. The source
// address is taken from where sshd puts it, the application-generated tail
// ("from ADDR port N ssh2", "ADDR port N [preauth]"), and parsed with
// net/netip (IPv4-mapped IPv6 is unmapped, zones are dropped). Host names
// and odd forms ("192.030.0.6") stay text in SrcText; nothing is resolved.
//
// # sshd and fail2ban parity
//
// The sshd classifier knows every failure family of fail2ban's sshd filter
// (failed password, publickey, keyboard-interactive and hostbased, invalid
// and disallowed users, PAM failures, maximum authentication attempts,
// pre-auth disconnects and resets, identification, key-exchange, banner and
// negotiation failures, pre-auth timeouts), successes, and the helper lines
// that fail2ban correlates per sshd[pid]. Options.Mode selects normal, ddos,
// extra or aggressive, and the verdicts (failure or not, the address, the
// user, the attempts fail2ban would count) match fail2ban's line for line:
// the tests check all 284 annotated lines of fail2ban's sshd and
// sshd-journal corpus in every mode they name.
//
// # Rules
//
// Each Rule constant documents its default threshold; Options.Rules changes
// any of them. A finding is emitted once it is complete: when its key has
// been quiet for the rule's window (at least ten minutes of log time), when
// its table entry is evicted, or at the end of the stream, so First, Last
// and Count cover the whole episode. Options.Allow and Options.HighRisk are
// netipx.IPSets of sources to ignore and to treat as more severe.
//
// Log injection: user names, protocol identification strings and auth info
// are attacker-controlled. The address is read from where sshd writes it, so
// "Failed password for invalid user x from 192.0.2.66 port 22 ssh2 from
// 198.51.100.20 port 40001 ssh2" is a failure of 198.51.100.20 and a
// RuleLogInjection finding. One form stays ambiguous: a field holding
// "ADDR port N ssh2: " reads exactly like fail2ban's corpus case where the
// auth info after the colon is the injected part; logscan, like fail2ban,
// takes the first address there, and still reports the injection.
//
// Address conflicts come from the kernel (IPv6 duplicate address
// detection; BSD's "arp: ... moved from" and "is using my IP address"),
// NetworkManager, systemd-networkd, dhcpcd, dhclient (DHCPDECLINE), arpwatch
// (flip flop, changed ethernet address) and addrguard's reconcile audit line
// ("Conflict detected for key=..."). A Finding for a conflict carries the
// contested address in Addr and the MACs that claimed it, so it can be
// joined with other sources (a capture's arp-conflict for the same IP).
//
// # Top sources
//
// TopSources (or Analyzer.TopSources after a scan) is the job of
//
//	grep "Failed password" auth.log | awk '{print $11}' | sort | uniq -c | sort -nr
//
// done right: the pipe prints the user name instead of the address for
// "Failed password for invalid user X from ADDR", misses every other failure
// family, breaks on RFC 3339 prefixes, and counts an address injected into a
// user name. BENCHMARKS.md compares the two on the same files.
package logscan
