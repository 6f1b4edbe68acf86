//go:build linux

package arpcheck

import (
	"errors"
	"fmt"
	"net"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// New opens a raw AF_PACKET socket on ifi and returns a Prober using it. It needs
// CAP_NET_RAW. A classic BPF filter is attached before the socket is bound, so
// the socket never queues anything but incoming IPv4-over-Ethernet ARP and
// ICMPv6 neighbour solicitations and advertisements; frames the host sends
// (PACKET_OUTGOING) are dropped in the kernel too.
//
// The interface needs no IP address. Loopback and NOARP interfaces and those
// without an Ethernet address give ErrNotARPable.
//
// Open the socket inside the network namespace it is for: it stays there.
func New(ifi *net.Interface, opts Options) (*Prober, error) {
	if err := checkInterface(ifi); err != nil {
		return nil, err
	}
	prog, err := bpf.Assemble(Filter())
	if err != nil {
		return nil, fmt.Errorf("arpcheck: assemble filter: %w", err)
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: prog})
	if err != nil {
		return nil, fmt.Errorf("arpcheck: open packet socket on %s: %w", ifi.Name, linkError(err))
	}
	lc := &linuxConn{Conn: c, name: ifi.Name}
	lc.growReadBuffer(4 << 20)
	st, err := lc.LinkState()
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	if st.NoARP {
		_ = c.Close()
		return nil, fmt.Errorf("arpcheck: %s: %w (NOARP)", ifi.Name, ErrNotARPable)
	}
	p, err := NewFromTransport(ifi, lc, opts)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return p, nil
}

// withLinkChecks gives a *packet.Conn on Linux what the socket New opens has:
// LinkState and ReadQueued, so that a Prober on it notices a link down or
// without carrier, and replies not yet read, before a free verdict.
func withLinkChecks(ifi *net.Interface, t Transport) Transport {
	if c, ok := t.(*packet.Conn); ok {
		return &linuxConn{Conn: c, name: ifi.Name}
	}
	return t
}

// linuxConn adds LinkState and ReadQueued to a packet socket. The flags are read with an ioctl
// on the socket itself, so they come from the socket's network namespace
// whichever thread asks.
type linuxConn struct {
	*packet.Conn
	name string
}

func (c *linuxConn) LinkState() (LinkState, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return LinkState{}, err
	}
	var flags uint16
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		ifr, err := unix.NewIfreq(c.name)
		if err != nil {
			ioErr = err
			return
		}
		if ioErr = unix.IoctlIfreq(int(fd), unix.SIOCGIFFLAGS, ifr); ioErr == nil {
			flags = ifr.Uint16()
		}
	})
	if err = errors.Join(err, ioErr); err != nil {
		return LinkState{}, fmt.Errorf("arpcheck: flags of %s: %w", c.name, linkError(err))
	}
	return LinkState{
		Up:      flags&unix.IFF_UP != 0,
		Carrier: flags&unix.IFF_RUNNING != 0,
		NoARP:   flags&unix.IFF_NOARP != 0,
	}, nil
}

// ReadQueued reports whether frames wait in the socket's receive queue: for a
// packet socket SIOCINQ gives the length of the first.
func (c *linuxConn) ReadQueued() (bool, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	var n int
	var ioErr error
	if err := rc.Control(func(fd uintptr) { n, ioErr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return false, err
	}
	return n > 0, ioErr
}

// growReadBuffer asks for a receive buffer of n bytes, past rmem_max when
// privileged; a smaller buffer only means drops show up sooner in Stats.
func (c *linuxConn) growReadBuffer(n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
	})
}
