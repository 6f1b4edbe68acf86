// Package arpcheck asks the link whether anyone already holds an address: RFC 5227
// duplicate address detection for IPv4 (ARP probes and announcements) and RFC 4862
// DAD for IPv6, over a raw socket, for many addresses at once. Package
// arpchecktest provides an in-memory network to test code built on it.
package arpcheck
