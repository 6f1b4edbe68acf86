// Package logscan reads system logs (BSD syslog, RFC 3339 and RFC 5424 lines,
// journald JSON) in constant memory and turns them into findings: SSH brute force
// and user enumeration, success after failures, off-hours logins, firewall hits on
// risky ports and port scans, and messages saying an address is in use by another
// machine.
package logscan
