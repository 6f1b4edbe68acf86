package arpcheck

import "golang.org/x/net/bpf"

// Offsets and values the kernel filter tests.
const (
	packetOutgoing = 4 // PACKET_OUTGOING in skb->pkt_type
	acceptBytes    = 512
)

// Filter returns the classic BPF program New attaches to its socket before
// binding it: it drops frames the host sent (packet type PACKET_OUTGOING) and
// accepts only Ethernet frames carrying IPv4-over-Ethernet ARP (hardware type 1,
// protocol 0x0800, lengths 6 and 4) or ICMPv6 neighbour solicitations and
// advertisements without extension headers, truncated to 512 bytes.
//
// The first two instructions read the packet type, which only the kernel
// knows; FilterBody is the rest, which golang.org/x/net/bpf's VM can run.
func Filter() []bpf.Instruction {
	return append([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: uint8(len(FilterBody()) - 1)}, // to the final drop,
	}, FilterBody()...)
}

// FilterBody is Filter without the packet-type test.
func FilterBody() []bpf.Instruction {
	return []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0806, SkipFalse: 5},
		/* 2 */ bpf.LoadAbsolute{Off: 14, Size: 4}, // hardware type, protocol type
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x00010800, SkipFalse: 10},
		/* 4 */ bpf.LoadAbsolute{Off: 18, Size: 2}, // hardware length, protocol length
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0604, SkipFalse: 8},
		/* 6 */ bpf.RetConstant{Val: acceptBytes},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x86dd, SkipFalse: 6}, // A still holds the EtherType
		/* 8 */ bpf.LoadAbsolute{Off: 20, Size: 1}, // IPv6 next header
		/* 9 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: protoICMPv6, SkipFalse: 4},
		/* 10 */ bpf.LoadAbsolute{Off: 54, Size: 1}, // ICMPv6 type
		/* 11 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpv6NS, SkipTrue: 1},
		/* 12 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpv6NA, SkipFalse: 1},
		/* 13 */ bpf.RetConstant{Val: acceptBytes},
		/* 14 */ bpf.RetConstant{Val: 0},
	}
}
