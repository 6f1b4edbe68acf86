package testnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// Neighbor is one entry of a neighbour cache.
type Neighbor struct {
	Addr  netip.Addr
	MAC   net.HardwareAddr // nil while the entry is incomplete or failed
	State []string         // kernel NUD states, e.g. ["REACHABLE"] or ["STALE"]
}

// Has reports whether the entry carries state s (for example "FAILED").
func (n Neighbor) Has(s string) bool { return slices.Contains(n.State, s) }

// ParseNeighbors parses the output of ip -j neigh show: a JSON array of objects
// with "dst", an optional "lladdr" and "state". Entries are returned in input
// order. An entry whose dst or lladdr is not an address is an error naming the
// entry's position (from 0) and the bad value.
func ParseNeighbors(data []byte) ([]Neighbor, error) {
	var raw []struct {
		Dst    string   `json:"dst"`
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("neighbour list: %w", err)
	}
	out := make([]Neighbor, 0, len(raw))
	for i, r := range raw {
		addr, err := netip.ParseAddr(r.Dst)
		if err != nil {
			return nil, fmt.Errorf("neighbour entry %d: dst %q: %w", i, r.Dst, err)
		}
		n := Neighbor{Addr: addr, State: r.State}
		if r.LLAddr != "" {
			n.MAC, err = net.ParseMAC(r.LLAddr)
			if err != nil {
				return nil, fmt.Errorf("neighbour entry %d: lladdr %q: %w", i, r.LLAddr, err)
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseNetnsList parses the output of ip netns list, one namespace per line,
// optionally followed by " (id: N)", and returns the names.
func ParseNetnsList(data []byte) []string {
	var names []string
	for line := range bytes.Lines(data) {
		fields := bytes.Fields(line)
		if len(fields) > 0 {
			names = append(names, string(fields[0]))
		}
	}
	return names
}

// parseIfindex reads "ifindex" from the output of ip -j link show DEV.
func parseIfindex(data []byte) (int, error) {
	var links []struct {
		Ifindex int `json:"ifindex"`
	}
	if err := json.Unmarshal(data, &links); err != nil {
		return 0, fmt.Errorf("link list: %w", err)
	}
	if len(links) != 1 || links[0].Ifindex <= 0 {
		return 0, fmt.Errorf("link list: want one link with an ifindex, got %s", data)
	}
	return links[0].Ifindex, nil
}
