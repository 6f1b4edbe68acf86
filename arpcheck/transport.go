package arpcheck

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/mdlayher/packet"
)

// Transport carries whole Ethernet frames for a Prober. *packet.Conn from
// github.com/mdlayher/packet satisfies it, and so does arpchecktest's in-memory
// endpoint. ReadFrom must return an error once Close has been called. WriteTo
// must not keep b or addr after it returns: the Prober reuses both.
//
// A transport may also implement JoinGroup (needed for IPv6 DAD, to hear other
// hosts' solicitations), Stats (receive drops are then reported), LinkState
// (the link is then checked before each call and before each free verdict) and
// ReadQueuer; *packet.Conn has the first two, and gets the other two from
// NewFromTransport on Linux, like the transport New opens.
type Transport interface {
	ReadFrom(b []byte) (int, net.Addr, error)
	WriteTo(b []byte, addr net.Addr) (int, error)
	Close() error
}

// LinkState is the state of the interface under a transport.
type LinkState struct {
	Up      bool // administratively up (IFF_UP)
	Carrier bool // operationally up (IFF_RUNNING)
	NoARP   bool // IFF_NOARP set
}

// LinkStater is the optional interface of a Transport that can report its link.
type LinkStater interface {
	LinkState() (LinkState, error)
}

// ReadQueuer is the optional interface of a Transport that can tell whether
// frames it received wait to be read. Before it declares an address free, a
// Prober waits until frames that arrived in time have been read, since the
// answer may be among them; the transport New opens has it (SIOCINQ).
type ReadQueuer interface {
	ReadQueued() (bool, error)
}

type groupJoiner interface {
	JoinGroup(addr net.HardwareAddr) error
}

type groupLeaver interface {
	LeaveGroup(addr net.HardwareAddr) error
}

type statser interface {
	Stats() (*packet.Stats, error)
}

// linkError maps the errors a socket gives for a missing or down link to
// ErrLinkDown, keeping the original.
func linkError(err error) error {
	if err == nil || errors.Is(err, ErrLinkDown) {
		return err
	}
	if errors.Is(err, syscall.ENETDOWN) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("%w: %w", ErrLinkDown, err)
	}
	return err
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, ErrClosed)
}

func checkInterface(ifi *net.Interface) error {
	if ifi == nil {
		return fmt.Errorf("arpcheck: %w: nil interface", ErrBadOptions)
	}
	if ifi.Flags&net.FlagLoopback != 0 {
		return fmt.Errorf("arpcheck: %s: %w (loopback)", ifi.Name, ErrNotARPable)
	}
	if len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("arpcheck: %s: %w (hardware address %q is not Ethernet)", ifi.Name, ErrNotARPable, ifi.HardwareAddr)
	}
	return nil
}
