package pcapscan_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/addrguard/addrguard/pcapscan"
)

// arpFrame builds an Ethernet ARP frame (op 1 request, 2 reply).
func arpFrame(op byte, sender net.HardwareAddr, senderIP netip.Addr, target net.HardwareAddr, targetIP netip.Addr) []byte {
	dst := target
	if op == 1 {
		dst = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	b := append(append([]byte{}, dst...), sender...)
	b = append(b, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, op)
	b = append(append(b, sender...), senderIP.AsSlice()...)
	return append(append(b, target...), targetIP.AsSlice()...)
}

// twoAnswers records, as a pcap file, one ARP request answered by two hosts.
func twoAnswers() []byte {
	asker := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x30}
	a, b := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}, net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	askerIP, shared := netip.MustParseAddr("192.0.2.30"), netip.MustParseAddr("192.0.2.10")
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	var buf bytes.Buffer
	w, _ := pcapscan.NewWriter(&buf, pcapscan.LinkEthernet, 0)
	w.WritePacket(start, arpFrame(1, asker, askerIP, make(net.HardwareAddr, 6), shared), 0)
	w.WritePacket(start.Add(time.Millisecond), arpFrame(2, a, shared, asker, askerIP), 0)
	w.WritePacket(start.Add(2*time.Millisecond), arpFrame(2, b, shared, asker, askerIP), 0)
	w.Flush()
	return buf.Bytes()
}

// Scan a capture (a file, stdin, any io.Reader) and print each finding.
func Example() {
	sc := pcapscan.New(pcapscan.Options{})
	err := sc.Scan(bytes.NewReader(twoAnswers()), func(f pcapscan.Finding) {
		fmt.Println(f.Kind, f.Severity, f.IP, f.MACs, f.Frames)
		fmt.Println(f.Detail)
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// arp-conflict critical 192.0.2.10 [02:00:00:00:00:0a 02:00:00:00:00:0b] [2 3]
	// two answers to one request
}

// Findings are JSON-friendly: one object per line is what the pcapscan
// program prints with -json.
func ExampleFinding_MarshalJSON() {
	sc := pcapscan.New(pcapscan.Options{})
	enc := json.NewEncoder(os.Stdout)
	_ = sc.Scan(bytes.NewReader(twoAnswers()), func(f pcapscan.Finding) {
		f.Evidence = nil // keep the example short
		_ = enc.Encode(f)
	})
	// Output:
	// {"kind":"arp-conflict","severity":"critical","first":"2026-03-01T12:00:00.001Z","last":"2026-03-01T12:00:00.002Z","count":2,"ip":"192.0.2.10","macs":["02:00:00:00:00:0a","02:00:00:00:00:0b"],"vlan":0,"request_id":"","flow":"","frames":[2,3],"detail":"two answers to one request"}
}

// The per-MAC evidence is a timeline lane for each MAC that claimed the
// address.
func ExampleMACEvidence() {
	sc := pcapscan.New(pcapscan.Options{})
	_ = sc.Scan(bytes.NewReader(twoAnswers()), func(f pcapscan.Finding) {
		for _, lane := range f.Evidence {
			for _, ev := range lane.Events {
				fmt.Println(lane.MAC, ev.Time.Format("15:04:05.000"), ev.Frame, ev.What)
			}
		}
	})
	// Output:
	// 02:00:00:00:00:0a 12:00:00.001 2 arp-reply
	// 02:00:00:00:00:0b 12:00:00.002 3 arp-reply
}

// A Reader walks the frames of a capture without allocating per frame.
func ExampleReader() {
	rd, err := pcapscan.NewReader(bytes.NewReader(twoAnswers()), pcapscan.ReaderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		p, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(p.Frame, p.LinkType == pcapscan.LinkEthernet, len(p.Data), p.Time.Format(time.StampMilli))
	}
	// Output:
	// 1 true 42 Mar  1 12:00:00.000
	// 2 true 42 Mar  1 12:00:00.001
	// 3 true 42 Mar  1 12:00:00.002
}

// Packets ranges over the frames of a capture.
func ExampleReader_Packets() {
	rd, err := pcapscan.NewReaderBytes(twoAnswers(), pcapscan.ReaderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	n := 0
	for p, err := range rd.Packets() {
		if err != nil {
			fmt.Println(err)
			return
		}
		n += len(p.Data)
	}
	fmt.Println(n, "bytes")
	// Output:
	// 126 bytes
}

// A damaged capture still yields the findings before the damage, and an error
// naming the byte offset and frame number.
func ExampleFormatError() {
	data := twoAnswers()
	data = data[:len(data)-10] // cut inside the third frame
	sc := pcapscan.New(pcapscan.Options{})
	err := sc.Scan(bytes.NewReader(data), func(f pcapscan.Finding) { fmt.Println(f.Kind) })
	fmt.Println(err)
	// Output:
	// frame 3 at byte 140: need 58 bytes, input ends after 48: truncated capture
}

// Feed frames from any source with Observe, then Flush at the end.
func ExampleScanner_Observe() {
	sc := pcapscan.New(pcapscan.Options{})
	rd, _ := pcapscan.NewReader(bytes.NewReader(twoAnswers()), pcapscan.ReaderOptions{})
	print := func(f pcapscan.Finding) { fmt.Println(f.Kind, f.Count) }
	for {
		p, err := rd.Next()
		if err != nil {
			break
		}
		sc.Observe(&p, print)
	}
	sc.Flush(print)
	fmt.Println(sc.Stats().Packets, "packets")
	// Output:
	// arp-conflict 2
	// 3 packets
}
