package arpcheck_test

import (
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/mdlayher/ethernet"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	ourMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	peerMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	thirdMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}
	addr10   = netip.MustParseAddr("192.0.2.10")
	addr11   = netip.MustParseAddr("192.0.2.11")
	v6addr   = netip.MustParseAddr("2001:db8::10")
	nonce    = [6]byte{1, 2, 3, 4, 5, 6}
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	require.NoError(t, err)
	return b
}

// Golden frames, byte for byte: what goes on the wire.
func TestFrameGolden(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"probe", arpcheck.AppendProbe(nil, ourMAC, addr10), `
			ffffffffffff 020000000001 0806
			0001 0800 06 04 0001 020000000001 00000000 000000000000 c000020a
			000000000000000000000000000000000000`},
		{"announcement", arpcheck.AppendAnnouncement(nil, ourMAC, addr10), `
			ffffffffffff 020000000001 0806
			0001 0800 06 04 0001 020000000001 c000020a 000000000000 c000020a
			000000000000000000000000000000000000`},
		{"reply", arpcheck.AppendARPReply(nil, peerMAC, addr10, ourMAC, netip.IPv4Unspecified()), `
			020000000001 020000000002 0806
			0001 0800 06 04 0002 020000000002 c000020a 020000000001 00000000
			000000000000000000000000000000000000`},
		{"dad solicitation", arpcheck.AppendDADSolicit(nil, ourMAC, v6addr, nonce), `
			3333ff000010 020000000001 86dd
			60000000 0020 3a ff
			00000000000000000000000000000000
			ff0200000000000000000001ff000010
			87 00 35ba 00000000 20010db8000000000000000000000010
			0e01 010203040506`},
		{"unsolicited advertisement", arpcheck.AppendUnsolicitedAdvert(nil, ourMAC, v6addr), `
			333300000001 020000000001 86dd
			60000000 0020 3a ff
			20010db8000000000000000000000010
			ff020000000000000000000000000001
			88 00 f90c 20000000 20010db8000000000000000000000010
			0201 020000000001`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, hex.EncodeToString(unhex(t, tt.want)), hex.EncodeToString(tt.got))
			// mdlayher/ethernet reads the same header.
			var ef ethernet.Frame
			require.NoError(t, ef.UnmarshalBinary(tt.got))
			f, err := arpcheck.ParseFrame(tt.got)
			require.NoError(t, err)
			assert.Equal(t, ef.Source.String(), f.EthSrc.String())
			assert.Equal(t, ef.Destination.String(), f.EthDst.String())
		})
	}
}

func TestParseFrame(t *testing.T) {
	f, err := arpcheck.ParseFrame(arpcheck.AppendProbe(nil, ourMAC, addr10))
	require.NoError(t, err)
	assert.Equal(t, arpcheck.OpARPRequest, f.Op)
	assert.True(t, f.IsProbe())
	assert.False(t, f.IsAnnouncement())
	assert.Equal(t, netip.IPv4Unspecified(), f.SenderIP)
	assert.Equal(t, addr10, f.TargetIP)
	assert.Equal(t, ourMAC.String(), f.SenderMAC.String())

	f, err = arpcheck.ParseFrame(arpcheck.AppendAnnouncement(nil, ourMAC, addr10))
	require.NoError(t, err)
	assert.True(t, f.IsAnnouncement())
	assert.False(t, f.IsProbe())

	f, err = arpcheck.ParseFrame(arpcheck.AppendDADSolicit(nil, ourMAC, v6addr, nonce))
	require.NoError(t, err)
	assert.Equal(t, arpcheck.OpNeighborSolicit, f.Op)
	assert.True(t, f.IsProbe())
	assert.True(t, f.HasNonce)
	assert.Equal(t, nonce, f.Nonce)
	assert.Nil(t, f.SenderMAC)
	assert.Equal(t, v6addr, f.TargetIP)

	f, err = arpcheck.ParseFrame(arpcheck.AppendUnsolicitedAdvert(nil, ourMAC, v6addr))
	require.NoError(t, err)
	assert.Equal(t, arpcheck.OpNeighborAdvert, f.Op)
	assert.Equal(t, ourMAC.String(), f.SenderMAC.String())
	assert.Equal(t, v6addr, f.SenderIP)
}

func TestParseFrameErrors(t *testing.T) {
	probe := arpcheck.AppendProbe(nil, ourMAC, addr10)
	ns := arpcheck.AppendDADSolicit(nil, ourMAC, v6addr, nonce)
	mod := func(b []byte, i int, v byte) []byte {
		c := append([]byte(nil), b...)
		c[i] = v
		return c
	}
	ipv4 := mod(probe, 12, 0x08)
	ipv4[13] = 0x00
	otherICMP := mod(ns, 54, 128) // echo request
	withSLL := append(append([]byte(nil), ns...), 1, 1, 2, 0, 0, 0, 0, 9)
	withSLL[19] += 8 // payload length
	tests := []struct {
		name   string
		frame  []byte
		notARP bool
		field  string
		offset int
	}{
		{"short ethernet", probe[:10], false, "ethernet header", 0},
		{"ipv4", ipv4, true, "", 0},
		{"arp over token ring", mod(probe, 15, 6), true, "", 0},
		{"truncated arp header", probe[:18], false, "arp header", 14},
		{"hardware length", mod(probe, 18, 8), false, "arp hardware length", 18},
		{"protocol length", mod(probe, 19, 16), false, "arp protocol length", 19},
		{"truncated addresses", probe[:30], false, "arp addresses", 22},
		{"operation", mod(probe, 21, 3), false, "arp operation", 20},
		{"ipv6 header", ns[:40], false, "ipv6 header", 14},
		{"ipv6 version", mod(ns, 14, 0x40), false, "ipv6 version", 14},
		{"payload length", mod(ns, 18, 0xff), false, "ipv6 payload length", 18},
		{"other icmpv6", otherICMP, true, "", 0},
		{"hop limit", mod(ns, 21, 64), false, "ipv6 hop limit", 21},
		{"icmp code", mod(ns, 55, 1), false, "icmpv6 code", 55},
		{"option length zero", mod(ns, len(ns)-7, 0), false, "ndp option", 78},
		{"source ll from ::", withSLL, false, "ndp source link-layer option", 78},
		{"multicast target", mod(ns, 62, 0xff), false, "ndp target", 62},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := arpcheck.ParseFrame(tt.frame)
			require.Error(t, err)
			if tt.notARP {
				assert.ErrorIs(t, err, arpcheck.ErrNotARP)
				return
			}
			assert.ErrorIs(t, err, arpcheck.ErrMalformed)
			var fe *arpcheck.FrameError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, tt.field, fe.Field)
			assert.Equal(t, tt.offset, fe.Offset)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
}

func TestSolicitedNodeGroup(t *testing.T) {
	g, mac := arpcheck.SolicitedNodeGroup(netip.MustParseAddr("2001:db8::abcd:1234"))
	assert.Equal(t, "ff02::1:ffcd:1234", g.String())
	assert.Equal(t, "33:33:ff:cd:12:34", mac.String())
	all, allMAC := arpcheck.AllNodes()
	assert.Equal(t, "ff02::1", all.String())
	assert.Equal(t, "33:33:00:00:00:01", allMAC.String())
}

func TestMLDReportGolden(t *testing.T) {
	group, _ := arpcheck.SolicitedNodeGroup(v6addr)
	got := arpcheck.AppendMLDReport(nil, ourMAC, group)
	want := unhex(t, `
		333300000016 020000000001 86dd
		60000000 0024 00 01
		00000000000000000000000000000000
		ff020000000000000000000000000016
		3a 00 05 02 0000 01 00
		8f 00 0000 0000 0001
		04 00 0000 ff0200000000000000000001ff000010`)
	// The checksum, computed independently: one's complement sum over the
	// pseudo-header (::, ff02::16, length 28, next header 58) and the message.
	sum := uint32(0xff02) + 0x16 + 28 + 58
	msg := append([]byte(nil), got[62:]...)
	msg[2], msg[3] = 0, 0
	for i := 0; i < len(msg); i += 2 {
		sum += uint32(msg[i])<<8 | uint32(msg[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	want[64], want[65] = byte(^sum>>8), byte(^sum)
	assert.Equal(t, hex.EncodeToString(want), hex.EncodeToString(got))
	_, err := arpcheck.ParseFrame(got)
	assert.ErrorIs(t, err, arpcheck.ErrNotARP, "MLD is not for the prober to read")
}
