package arpcheck_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"testing"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/arpcheck/arpchecktest"
	"github.com/mdlayher/ethernet"
)

func seedFrames() [][]byte {
	zero := netip.IPv4Unspecified()
	seeds := [][]byte{
		arpcheck.AppendProbe(nil, ourMAC, addr10),
		arpcheck.AppendAnnouncement(nil, peerMAC, addr10),
		arpcheck.AppendARPReply(nil, peerMAC, addr10, ourMAC, zero),
		arpcheck.AppendDADSolicit(nil, peerMAC, v6addr, nonce),
		arpcheck.AppendUnsolicitedAdvert(nil, peerMAC, v6addr),
		arpcheck.AppendNeighborAdvert(nil, peerMAC, v6addr, v6addr, ourMAC, netip.MustParseAddr("2001:db8::1"), true),
		{},
	}
	return append(seeds, arpchecktest.Garbage(thirdMAC)...)
}

// FuzzParseFrame: any bytes parse or fail cleanly; what parses agrees with
// mdlayher/ethernet on the header and survives a rebuild.
func FuzzParseFrame(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := arpcheck.ParseFrame(b)
		if err != nil {
			return
		}
		var ef ethernet.Frame
		if ef.UnmarshalBinary(b) == nil && ef.VLAN == nil && ef.ServiceVLAN == nil {
			if !bytes.Equal(ef.Source, fr.EthSrc) || !bytes.Equal(ef.Destination, fr.EthDst) {
				t.Fatalf("ethernet header: ours %s>%s, mdlayher %s>%s", fr.EthSrc, fr.EthDst, ef.Source, ef.Destination)
			}
		}
		switch fr.Op {
		case arpcheck.OpARPRequest, arpcheck.OpARPReply:
			if !fr.SenderIP.Is4() || !fr.TargetIP.Is4() || len(fr.SenderMAC) != 6 || len(fr.TargetMAC) != 6 {
				t.Fatalf("arp fields: %+v", fr)
			}
			if fr.IsProbe() && fr.Op == arpcheck.OpARPRequest {
				rebuilt := arpcheck.AppendProbe(nil, fr.SenderMAC, fr.TargetIP)
				if again, err := arpcheck.ParseFrame(rebuilt); err != nil || again.TargetIP != fr.TargetIP {
					t.Fatalf("rebuilt probe: %v %+v", err, again)
				}
			}
		case arpcheck.OpNeighborSolicit, arpcheck.OpNeighborAdvert:
			if !fr.SenderIP.Is6() || !fr.TargetIP.Is6() || fr.TargetIP.IsMulticast() {
				t.Fatalf("ndp fields: %+v", fr)
			}
			if fr.SenderMAC != nil && len(fr.SenderMAC) != 6 {
				t.Fatalf("ndp link-layer option: %v", fr.SenderMAC)
			}
		default:
			t.Fatalf("parsed with op %v", fr.Op)
		}
	})
}

// FuzzClassify: the classifier's invariants hold for any frame and address.
func FuzzClassify(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s, []byte{192, 0, 2, 10}, false)
		f.Add(s, v6addr.AsSlice(), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, addrBytes []byte, announced bool) {
		fr, err := arpcheck.ParseFrame(b)
		if err != nil {
			return
		}
		addr, ok := netip.AddrFromSlice(addrBytes)
		if !ok {
			return
		}
		phase := arpcheck.PhaseProbing
		if announced {
			phase = arpcheck.PhaseAnnounced
		}
		c := &arpcheck.Check{Addr: addr, Phase: phase, MAC: ourMAC, Nonce: nonce}
		v := arpcheck.Classify(c, &fr)
		if (bytes.Equal(fr.EthSrc, ourMAC) || bytes.Equal(fr.SenderMAC, ourMAC)) && v != arpcheck.Own {
			t.Fatalf("frame from our MAC classified %s", v)
		}
		if phase == arpcheck.PhaseAnnounced && (v == arpcheck.SimultaneousProbe || v == arpcheck.Mismatch) {
			t.Fatalf("after announcing only the sender rule applies, got %s", v)
		}
		if v == arpcheck.Conflict || v == arpcheck.SimultaneousProbe {
			if fr.SenderIP != addr && fr.TargetIP != addr {
				t.Fatalf("%s about %s from a frame about %s/%s", v, addr, fr.SenderIP, fr.TargetIP)
			}
			if addr.Is4() != (fr.Op == arpcheck.OpARPRequest || fr.Op == arpcheck.OpARPReply) {
				t.Fatalf("%s across families: %s and %v", v, addr, fr.Op)
			}
		}
		// Pure: the same input gives the same verdict, and the frame is untouched.
		before := append([]byte(nil), b...)
		if again := arpcheck.Classify(c, &fr); again != v || !bytes.Equal(before, b) {
			t.Fatalf("not pure: %s then %s", v, again)
		}
		// A frame from one of our own MACs is Own whatever it says.
		c.OwnMACs = []net.HardwareAddr{fr.EthSrc}
		if len(fr.EthSrc) == 6 && arpcheck.Classify(c, &fr) != arpcheck.Own {
			t.Fatal("own MAC not recognised")
		}
	})
}

// FuzzResultJSON: any JSON a tool hands back either fails to unmarshal into a
// Result or survives a round trip unchanged.
func FuzzResultJSON(f *testing.F) {
	f.Add([]byte(`{"addr":"192.0.2.10","status":"in_use","holders":[{"mac":"02:00:00:00:00:02","eth_src":"02:00:00:00:00:03","kind":"probing","first_seen":"2026-01-01T00:00:01Z","last_seen":"2026-01-01T00:00:02Z","frames":2,"proxy_arp":true}],"reason":"probing","probes_sent":1,"started":"2026-01-01T00:00:00Z","decided":"2026-01-01T00:00:02Z"}`))
	f.Add([]byte(`{"addr":"2001:db8::1","status":"free","probes_sent":3}`))
	f.Add([]byte(`{"addr":"192.0.2.11","status":"unknown","reason":"link down","probes_sent":0}`))
	f.Add([]byte(`{"status":"maybe"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r arpcheck.Result
		if json.Unmarshal(b, &r) != nil {
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal %+v: %v", r, err)
		}
		var back arpcheck.Result
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("unmarshal own output %s: %v", out, err)
		}
		again, _ := json.Marshal(back)
		if !bytes.Equal(out, again) {
			t.Fatalf("round trip:\n%s\n%s", out, again)
		}
	})
}
