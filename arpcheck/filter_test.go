package arpcheck_test

import (
	"net/netip"
	"testing"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/bpf"
)

func TestFilterBody(t *testing.T) {
	vm, err := bpf.NewVM(arpcheck.FilterBody())
	require.NoError(t, err)
	probe := arpcheck.AppendProbe(nil, ourMAC, addr10)
	ns := arpcheck.AppendDADSolicit(nil, ourMAC, v6addr, nonce)
	na := arpcheck.AppendUnsolicitedAdvert(nil, ourMAC, v6addr)
	mod := func(b []byte, i int, v byte) []byte {
		c := append([]byte(nil), b...)
		c[i] = v
		return c
	}
	tests := []struct {
		name  string
		frame []byte
		pass  bool
	}{
		{"arp probe", probe, true},
		{"arp reply", arpcheck.AppendARPReply(nil, peerMAC, addr10, ourMAC, netip.IPv4Unspecified()), true},
		{"dad solicitation", ns, true},
		{"advertisement", na, true},
		{"ipv4", mod(mod(probe, 12, 0x08), 13, 0x00), false},
		{"arp over ieee802", mod(probe, 15, 6), false},
		{"arp for ipv6 protocol", mod(probe, 16, 0x86), false},
		{"arp with 8-byte hardware addresses", mod(probe, 18, 8), false},
		{"icmpv6 echo", mod(ns, 54, 128), false},
		{"router advertisement", mod(ns, 54, 134), false},
		{"ipv6 udp", mod(ns, 20, 17), false},
		{"vlan tagged", mod(mod(probe, 12, 0x81), 13, 0x00), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := vm.Run(tt.frame)
			require.NoError(t, err)
			if tt.pass {
				assert.Equal(t, 512, n, "accepted, truncated to 512 bytes")
			} else {
				assert.Zero(t, n)
			}
		})
	}
	// The whole filter assembles and starts with the outgoing-packet test.
	prog, err := bpf.Assemble(arpcheck.Filter())
	require.NoError(t, err)
	assert.Len(t, prog, len(arpcheck.FilterBody())+2)
	assert.Equal(t, bpf.LoadExtension{Num: bpf.ExtType}, arpcheck.Filter()[0])
}
