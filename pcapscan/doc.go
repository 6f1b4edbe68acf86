// Package pcapscan reads packet captures (pcap and pcapng files, or a live
// interface) in constant memory and reports the traces address conflicts leave on
// the wire: one address claimed by two MACs, probes that got an answer, pings
// answered twice, a MAC taking over the gateway's address, retry storms,
// connections reset and re-made.
//
//	sc := pcapscan.New(pcapscan.Options{})
//	err := sc.Scan(file, func(f pcapscan.Finding) { fmt.Println(f) })
//	// f.Kind is "arp-conflict", "echo-multi-responder", "tcp-restart", …
//
// # Reading
//
// Reader is the package's own pcap and pcapng reader, standard library only. It
// takes any io.Reader (stdin too) and detects the format by its magic number:
// pcap in microseconds or nanoseconds and either byte order, with the FCS bits
// of the link-type field honoured; pcapng with any number of sections and
// interfaces, each with its own link type, if_tsresol, if_tsoffset and
// if_fcslen, enhanced, simple and obsolete packet blocks, and unknown blocks
// skipped. Frames are handed out as slices of one reusable buffer, valid until
// the next call, so reading allocates nothing per frame. Every length is checked
// before it is trusted: a record claiming more than ReaderOptions.MaxPacket bytes
// (262144 by default) is an ErrCorrupt error, never an allocation, and every
// error is a *FormatError naming the byte offset and the frame number. Invalid
// timestamps (a fraction of a second out of range) are clamped and flagged in
// Packet.BadTime, never wrapped.
//
// Link types: Ethernet with 802.1Q and 802.1ad/QinQ tags (every detector is
// VLAN-aware: an address on two VLANs is two addresses), Linux cooked captures
// v1 and v2 (tcpdump -i any; with SLL2 each interface is its own segment), raw
// IPv4/IPv6, and BSD loopback.
//
// # Detections
//
// Finding.Kind is one of the Kind constants; the strings are part of the API and
// of the JSON output.
//
//   - arp-conflict: one IPv4 address claimed in ARP sender fields by two or more
//     MACs on one segment within Options.Window. Critical when one request got
//     two answers or the claims flip-flop between MACs; warning for a
//     gratuitous ARP from a second host while the first held the address; info
//     when the address simply moved to another MAC (a failover looks like this).
//   - dad-probe-answered: an RFC 5227 probe (ARP from 0.0.0.0) or an IPv6
//     duplicate-address-detection solicitation (from ::) was answered by another
//     MAC within Options.ProbeWindow, or two hosts probed for one address.
//   - ip-mac-conflict: one on-link source address in IP traffic from two or
//     more MACs. Packets that crossed a router (a TTL or hop limit that is not
//     an initial value: 32, 64, 128, 255) do not count, nor do copies of one
//     packet captured twice: the same IP identification and transport header,
//     with a TTL one lower from another MAC (both sides of a router) or the same
//     TTL from the same MAC (a bridge and its port).
//   - echo-multi-responder: one ICMP or ICMPv6 echo target answered from two or
//     more MACs; critical when one echo request got answers from several.
//   - arp-spoof: a MAC took over an address another MAC held. Critical when it
//     claimed an address with an unsolicited or unicast ARP and the routed
//     traffic for the same remote hosts then moved to it from the MAC that
//     carried it before: the next hop was taken over, even when the real
//     gateway never sends ARP (traffic that keeps flapping between two MACs is
//     two routers and is not reported). Warning when a MAC that claims an
//     address of its own claims one another MAC holds.
//   - request-id-repeat: one HTTP/1.x request ID (X-Request-ID unless
//     Options.RequestIDHeaders says otherwise) seen Options.RequestIDRepeats
//     times within Options.RequestIDWindow: a retry storm. TCP retransmissions
//     are not counted as repeats; requests split across segments are not
//     reassembled.
//   - tcp-restart: a new SYN on a 4-tuple that carried data and was not closed
//     with FIN both ways (reset and reconnect, or a peer that lost its state).
//   - tcp-seq-regression: sequence numbers going back beyond what
//     retransmission explains: before the connection's initial sequence
//     number, or further back than the peer's window allowed in flight.
//   - tcp-retransmissions: a flow's retransmission count (data already seen
//     again, SYNs sent again; keep-alives and out-of-order data are not
//     retransmissions, capture duplicates are removed), reported from
//     Options.Retransmissions on: warning when a tenth or more of the flow's
//     segments were retransmitted.
//   - rogue-dhcp: DHCP offers or acks from two or more server identifiers on one
//     segment; critical when two servers answered one transaction.
//   - dhcp-decline: a client declined an address because it found it in use.
//
// Every Finding carries its kind and severity, the times of its first and last
// evidence, a count, the address in question, other addresses involved, the
// MACs (sorted), the VLAN, the frame numbers of its evidence (from 1, as
// Wireshark counts) and, for address findings, one MACEvidence lane per MAC:
// when that MAC claimed the address, answered a ping or a probe, carried the
// traffic, with the frames. A Finding marshals to one JSON object with
// RFC 3339 times and textual addresses.
//
// # Memory and time
//
// A finding is reported when its episode is over: when its address, flow or
// request ID has been quiet for the window, when its table entry is needed for
// newer traffic, or at the end of the capture. All state lives in fixed-size,
// set-associative tables allocated by New and sized by Options.TableSize; a full
// bucket evicts its least recently used entry, reporting what it held. Memory
// therefore stays bounded whatever the capture's size (about 23 MiB of tables
// with the defaults), and addresses are held as pointer-free values that the
// garbage collector never scans. On Linux the tables of a megabyte or more ask
// for transparent huge pages (madvise), which spares the random lookups most
// TLB misses; where the system grants them, a touched table page brings in
// 2 MiB, so the resident size reaches the tables' full size early in a scan.
// BENCHMARKS.md has the measured throughput, the
// allocations per packet and the peak memory, beside tshark's on the same file.
//
// # Live capture
//
// ScanLive runs the same detectors on frames read from a PacketConn: ListenLive
// opens one on an interface through github.com/mdlayher/packet (it needs
// CAP_NET_RAW), and any net.PacketConn can stand in for tests. Findings are
// reported as their episodes end; LiveOptions.Writer records what was analysed
// as a pcap file.
package pcapscan
