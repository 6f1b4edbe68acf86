package testnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"
)

var pingSeq atomic.Uint32

// ErrNoReply is returned by Ping when no echo reply arrived in time.
var ErrNoReply = errors.New("no echo reply")

// Ping sends one ICMP or ICMPv6 echo request from the host's namespace to dst and
// waits up to timeout for the matching reply, which it returns the sender of. It
// needs no ping binary. Routing decides the outgoing interface, as for ping(8).
func (h *Host) Ping(dst netip.Addr, timeout time.Duration) error {
	return h.Do(func() error { return ping(dst, timeout) })
}

func ping(dst netip.Addr, timeout time.Duration) error {
	network, reqType, replyType := "ip4:icmp", byte(8), byte(0)
	if dst.Is6() && !dst.Is4In6() {
		network, reqType, replyType = "ip6:ipv6-icmp", 128, 129
	}
	dst = dst.Unmap()
	conn, err := net.ListenPacket(network, "")
	if err != nil {
		return fmt.Errorf("ping %s: %w", dst, err)
	}
	defer conn.Close()

	id := uint16(os.Getpid())
	seq := uint16(pingSeq.Add(1))
	msg := make([]byte, 16)
	msg[0] = reqType
	binary.BigEndian.PutUint16(msg[4:], id)
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[8:], "addrguard")
	if reqType == 8 {
		// The kernel fills in the ICMPv6 checksum; ICMPv4's is ours to compute.
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	}
	deadline := time.Now().Add(timeout)
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := conn.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}); err != nil {
		return fmt.Errorf("ping %s: %w", dst, err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("ping %s: %w within %v", dst, ErrNoReply, timeout)
			}
			return fmt.Errorf("ping %s: %w", dst, err)
		}
		r := buf[:n]
		src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		if len(r) >= 8 && r[0] == replyType && src.Unmap() == dst.WithZone("") &&
			binary.BigEndian.Uint16(r[4:]) == id && binary.BigEndian.Uint16(r[6:]) == seq {
			return nil
		}
	}
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
