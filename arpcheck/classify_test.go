package arpcheck_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, b []byte) *arpcheck.Frame {
	t.Helper()
	f, err := arpcheck.ParseFrame(b)
	require.NoError(t, err)
	return &f
}

func withEthSrc(b []byte, mac net.HardwareAddr) []byte {
	c := append([]byte(nil), b...)
	copy(c[6:12], mac)
	return c
}

func unicast(b []byte, mac net.HardwareAddr) []byte {
	c := append([]byte(nil), b...)
	copy(c[0:6], mac)
	return c
}

func TestClassify(t *testing.T) {
	vrrp := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x07}
	zero := netip.IPv4Unspecified()
	v6 := netip.IPv6Unspecified()
	tests := []struct {
		name  string
		addr  netip.Addr
		phase arpcheck.Phase
		frame []byte
		want  arpcheck.Verdict
	}{
		// Probing, IPv4.
		{"reply from holder", addr10, arpcheck.PhaseProbing, arpcheck.AppendARPReply(nil, peerMAC, addr10, ourMAC, zero), arpcheck.Conflict},
		{"request from holder", addr10, arpcheck.PhaseProbing, arpcheck.AppendAnnouncement(nil, peerMAC, addr10), arpcheck.Conflict},
		{"simultaneous probe", addr10, arpcheck.PhaseProbing, arpcheck.AppendProbe(nil, peerMAC, addr10), arpcheck.SimultaneousProbe},
		{"unicast probe is not a simultaneous probe", addr10, arpcheck.PhaseProbing, unicast(arpcheck.AppendProbe(nil, peerMAC, addr10), ourMAC), arpcheck.Unrelated},
		{"probe with spoofed ethernet source", addr10, arpcheck.PhaseProbing, withEthSrc(arpcheck.AppendProbe(nil, peerMAC, addr10), thirdMAC), arpcheck.Mismatch},
		{"reply with differing ethernet source still conflicts", addr10, arpcheck.PhaseProbing, withEthSrc(arpcheck.AppendARPReply(nil, peerMAC, addr10, ourMAC, zero), thirdMAC), arpcheck.Conflict},
		{"our own probe echoed", addr10, arpcheck.PhaseProbing, arpcheck.AppendProbe(nil, ourMAC, addr10), arpcheck.Own},
		{"own vrrp mac", addr10, arpcheck.PhaseProbing, arpcheck.AppendAnnouncement(nil, vrrp, addr10), arpcheck.Own},
		{"other address", addr10, arpcheck.PhaseProbing, arpcheck.AppendARPReply(nil, peerMAC, addr11, ourMAC, zero), arpcheck.Unrelated},
		{"probe for other address", addr10, arpcheck.PhaseProbing, arpcheck.AppendProbe(nil, peerMAC, addr11), arpcheck.Unrelated},
		{"ordinary request for the address", addr10, arpcheck.PhaseProbing, arpcheck.AppendARPReply(nil, peerMAC, addr11, ourMAC, addr10), arpcheck.Unrelated},
		{"arp never conflicts with ipv6", v6addr, arpcheck.PhaseProbing, arpcheck.AppendAnnouncement(nil, peerMAC, addr10), arpcheck.Unrelated},
		// Announced, IPv4: only the sender-IP rule.
		{"announced: sender ip", addr10, arpcheck.PhaseAnnounced, arpcheck.AppendAnnouncement(nil, peerMAC, addr10), arpcheck.Conflict},
		{"announced: reply", addr10, arpcheck.PhaseAnnounced, arpcheck.AppendARPReply(nil, peerMAC, addr10, ourMAC, addr11), arpcheck.Conflict},
		{"announced: probe for it is not a conflict", addr10, arpcheck.PhaseAnnounced, arpcheck.AppendProbe(nil, peerMAC, addr10), arpcheck.Unrelated},
		{"announced: own", addr10, arpcheck.PhaseAnnounced, arpcheck.AppendAnnouncement(nil, ourMAC, addr10), arpcheck.Own},
		// IPv6.
		{"advert for target", v6addr, arpcheck.PhaseProbing, arpcheck.AppendUnsolicitedAdvert(nil, peerMAC, v6addr), arpcheck.Conflict},
		{"advert after announce", v6addr, arpcheck.PhaseAnnounced, arpcheck.AppendUnsolicitedAdvert(nil, peerMAC, v6addr), arpcheck.Conflict},
		{"dad probe with other nonce", v6addr, arpcheck.PhaseProbing, arpcheck.AppendDADSolicit(nil, peerMAC, v6addr, [6]byte{9}), arpcheck.SimultaneousProbe},
		{"our dad probe looped back", v6addr, arpcheck.PhaseProbing, withEthSrc(arpcheck.AppendDADSolicit(nil, ourMAC, v6addr, nonce), peerMAC), arpcheck.Own},
		{"dad probe after announce", v6addr, arpcheck.PhaseAnnounced, arpcheck.AppendDADSolicit(nil, peerMAC, v6addr, [6]byte{9}), arpcheck.Unrelated},
		{"advert for other target", v6addr, arpcheck.PhaseProbing, arpcheck.AppendUnsolicitedAdvert(nil, peerMAC, netip.MustParseAddr("2001:db8::11")), arpcheck.Unrelated},
		{"solicitation from the address", v6addr, arpcheck.PhaseAnnounced,
			arpcheck.AppendNeighborAdvert(nil, peerMAC, v6addr, netip.MustParseAddr("2001:db8::99"), ourMAC, v6, false), arpcheck.Conflict},
		{"ndp never conflicts with ipv4", addr10, arpcheck.PhaseProbing, arpcheck.AppendUnsolicitedAdvert(nil, peerMAC, v6addr), arpcheck.Unrelated},
		{"invalid address", netip.Addr{}, arpcheck.PhaseProbing, arpcheck.AppendAnnouncement(nil, peerMAC, addr10), arpcheck.Unrelated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &arpcheck.Check{Addr: tt.addr, Phase: tt.phase, MAC: ourMAC, OwnMACs: []net.HardwareAddr{vrrp}, Nonce: nonce}
			f := parse(t, tt.frame)
			if tt.name == "solicitation from the address" {
				f.Op = arpcheck.OpNeighborSolicit // an NS whose source is the address
			}
			got := arpcheck.Classify(c, f)
			assert.Equal(t, tt.want, got, "got %s, want %s", got, tt.want)
		})
	}
}

func TestVerdictStrings(t *testing.T) {
	for v, s := range map[arpcheck.Verdict]string{arpcheck.Unrelated: "unrelated", arpcheck.Own: "own", arpcheck.Mismatch: "mismatch",
		arpcheck.Conflict: "conflict", arpcheck.SimultaneousProbe: "simultaneous-probe"} {
		assert.Equal(t, s, v.String())
	}
}
