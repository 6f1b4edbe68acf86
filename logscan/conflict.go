package logscan

import (
	"net"
	"net/netip"
	"strings"
)

// conflictMatch is one message saying an address is in use elsewhere.
type conflictMatch struct {
	addr  netip.Addr
	mac   net.HardwareAddr // the other claimant (or the new owner of a flip)
	old   net.HardwareAddr // the previous owner (flip-flop, moved, changed)
	iface string
	flip  bool   // the owner changed (arpwatch flip flop, BSD "moved")
	key   string // reconcile audit key
	what  string // short description
}

// classifyConflict reads address-conflict messages of the kernel (IPv6 DAD,
// BSD arp), NetworkManager, systemd-networkd, dhcpcd, dhclient and arpwatch.
func classifyConflict(prog, msg string, m *conflictMatch) bool {
	*m = conflictMatch{}
	switch prog {
	case "kernel":
		return m.kernel(msg)
	case "NetworkManager":
		return m.networkManager(msg)
	case "systemd-networkd":
		return m.networkd(msg)
	case "dhcpcd":
		return m.dhcpcd(msg)
	case "dhclient":
		return m.dhclient(msg)
	case "arpwatch":
		return m.arpwatch(msg)
	}
	return false
}

func (m *conflictMatch) kernel(s string) bool {
	if len(s) > 0 && s[0] == '[' { // kernel time stamp
		if j := strings.IndexByte(s, ']'); j > 0 {
			s = skipSpaces(s[j+1:])
		}
	}
	if i := strings.Index(s, "IPv6 duplicate address "); i >= 0 {
		// "IPv6: eth0: IPv6 duplicate address ADDR [used by MAC ]detected!"
		pre := strings.TrimSuffix(trimSpacesRight(s[:i]), ":")
		if k := strings.LastIndexAny(pre, " :"); k >= 0 {
			pre = pre[k+1:]
		}
		m.iface = pre
		r := s[i+len("IPv6 duplicate address "):]
		a, n, ok := addrAt(r)
		if !ok {
			return false
		}
		m.addr = a
		r = r[n:]
		if r2, ok := cut(r, " used by "); ok {
			if mac, k, ok := parseMAC(r2); ok {
				m.mac = mac
				r = r2[k:]
			}
		}
		if !strings.HasPrefix(r, " detected") {
			return false
		}
		m.what = "kernel IPv6 duplicate address detection"
		return true
	}
	if r, ok := cut(s, "arp: "); ok {
		// BSD: "arp: ADDR moved from MAC to MAC on IF"
		if a, n, ok := addrAt(r); ok {
			r2, ok := cut(r[n:], " moved from ")
			if !ok {
				return false
			}
			old, k, ok := parseMAC(r2)
			if !ok {
				return false
			}
			r2, ok = cut(r2[k:], " to ")
			if !ok {
				return false
			}
			mac, k, ok := parseMAC(r2)
			if !ok {
				return false
			}
			m.addr, m.old, m.mac, m.flip = a, old, mac, true
			if r3, ok := cut(r2[k:], " on "); ok {
				m.iface = token(r3)
			}
			m.what = "kernel arp: address moved to another MAC"
			return true
		}
		// BSD: "arp: MAC is using my IP address ADDR on IF!"
		mac, k, ok := parseMAC(r)
		if !ok {
			return false
		}
		r2, ok := cut(r[k:], " is using my IP address ")
		if !ok {
			return false
		}
		a, n, ok := addrAt(r2)
		if !ok {
			return false
		}
		m.addr, m.mac = a, mac
		if r3, ok := cut(r2[n:], " on "); ok {
			m.iface = strings.TrimSuffix(token(r3), "!")
		}
		m.what = "kernel arp: another host is using our address"
		return true
	}
	return false
}

func (m *conflictMatch) networkManager(s string) bool {
	const mid = " cannot be configured because it is already in use in the network by host "
	i := strings.Index(s, mid)
	if i < 0 {
		return false
	}
	pre := s[:i]
	j := strings.LastIndex(pre, "address ")
	if j < 0 {
		return false
	}
	a, n, ok := addrAt(pre[j+len("address "):])
	if !ok || j+len("address ")+n != len(pre) {
		return false
	}
	mac, _, ok := parseMAC(s[i+len(mid):])
	if !ok {
		return false
	}
	m.addr, m.mac = a, mac
	if k := strings.Index(pre, "device ("); k >= 0 {
		if e := strings.IndexByte(pre[k:], ')'); e > 0 {
			m.iface = pre[k+len("device (") : k+e]
		}
	}
	m.what = "NetworkManager address conflict detection"
	return true
}

func (m *conflictMatch) networkd(s string) bool {
	const tail = ", as an address conflict was detected."
	i := strings.Index(s, tail)
	if i < 0 {
		return false
	}
	pre := s[:i]
	j := strings.LastIndexByte(pre, ' ')
	if j < 0 {
		return false
	}
	at := pre[j+1:]
	if k := strings.IndexByte(at, '/'); k >= 0 {
		at = at[:k]
	}
	a, ok := parseIP(at)
	if !ok {
		return false
	}
	m.addr = a
	if k := strings.Index(pre, ": "); k > 0 && strings.IndexByte(pre[:k], ' ') < 0 {
		m.iface = pre[:k]
	}
	m.what = "systemd-networkd address conflict detection"
	return true
}

func (m *conflictMatch) dhcpcd(s string) bool {
	iface := ""
	if k := strings.Index(s, ": "); k > 0 && strings.IndexByte(s[:k], ' ') < 0 {
		iface, s = s[:k], s[k+2:]
	}
	if r, ok := cut(s, "hardware address "); ok {
		mac, k, ok := parseMAC(r)
		if !ok {
			return false
		}
		r2, ok := cut(r[k:], " claims ")
		if !ok {
			return false
		}
		a, _, ok := addrAt(r2)
		if !ok {
			return false
		}
		m.addr, m.mac, m.iface = a, mac, iface
		m.what = "dhcpcd: another host claims the address"
		return true
	}
	if r, ok := cut(s, "DAD detected "); ok {
		a, _, ok := addrAt(r)
		if !ok {
			return false
		}
		m.addr, m.iface = a, iface
		m.what = "dhcpcd duplicate address detection"
		return true
	}
	return false
}

func (m *conflictMatch) dhclient(s string) bool {
	r, ok := cut(s, "DHCPDECLINE ")
	if !ok {
		return false
	}
	if r2, ok := cut(r, "of "); ok {
		a, n, ok := addrAt(r2)
		if !ok {
			return false
		}
		m.addr = a
		r = skipSpaces(r2[n:])
	}
	if r2, ok := cut(r, "on "); ok {
		m.iface = token(r2)
	}
	if !m.addr.IsValid() && m.iface == "" {
		return false
	}
	m.what = "dhclient declined an offered address (in use)"
	return true
}

func (m *conflictMatch) arpwatch(s string) bool {
	var r string
	var ok bool
	for _, p := range [...]string{"flip flop ", "changed ethernet address ", "reused old ethernet address "} {
		if r, ok = cut(s, p); ok {
			m.what = "arpwatch " + strings.TrimSpace(p)
			break
		}
	}
	if !ok {
		return false
	}
	a, n, ok := addrAt(r)
	if !ok {
		return false
	}
	r = skipSpaces(r[n:])
	mac, k, ok := parseMAC(r)
	if !ok {
		return false
	}
	r = skipSpaces(r[k:])
	if len(r) > 0 && r[0] == '(' {
		if old, k, ok := parseMAC(r[1:]); ok && k+1 < len(r) && r[k+1] == ')' {
			m.old = old
			r = skipSpaces(r[k+2:])
		}
	}
	m.addr, m.mac, m.flip = a, mac, true
	m.iface = token(r)
	return true
}

// addrAt reads an IP address at the start of s.
func addrAt(s string) (netip.Addr, int, bool) {
	h, n, ok := parseHost(s)
	if !ok || !h.Addr.IsValid() {
		return netip.Addr{}, 0, false
	}
	return h.Addr, n, true
}

// reconcileConflict reads addrguard's reconcile audit line
// "[WARN] Conflict detected for key=KEY". The key names an address when it
// is one, or when its last ':'- or '/'-separated part is one
// ("ip:192.0.2.10", "pool-a/192.0.2.10").
func reconcileConflict(msg string, m *conflictMatch) bool {
	*m = conflictMatch{}
	s := strings.TrimPrefix(msg, "[WARN] ")
	r, ok := cut(s, "Conflict detected for key=")
	if !ok {
		return false
	}
	key := token(r)
	if key == "" {
		return false
	}
	m.key = key
	m.what = "reconcile: concurrent writes to one key"
	if a, ok := parseIP(key); ok {
		m.addr = a
		return true
	}
	for _, sep := range [...]string{":", "/"} {
		if i := strings.Index(key, sep); i >= 0 {
			if a, ok := parseIP(key[i+1:]); ok {
				m.addr = a
				return true
			}
		}
	}
	return true
}
