package pcapscan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/mdlayher/packet"
)

// PacketConn is what ScanLive reads frames from. *packet.Conn (see ListenLive)
// satisfies it; so does any net.PacketConn, which lets tests inject frames.
type PacketConn interface {
	ReadFrom(b []byte) (int, net.Addr, error)
	SetReadDeadline(t time.Time) error
}

// LiveOptions configure ScanLive. The zero value reads Ethernet frames with
// time.Now as the clock and records nothing.
type LiveOptions struct {
	// LinkType of the frames read; 0 means LinkEthernet (what ListenLive
	// delivers).
	LinkType LinkType
	// Writer, when set, receives every frame read, so that what was analysed
	// can be kept and re-read. ScanLive flushes it before returning.
	Writer *Writer
	// Clock stamps frames. Default time.Now.
	Clock func() time.Time
	// Tick is how often, without traffic, quiet entries are checked so that
	// their findings are reported. Default 1 second.
	Tick time.Duration
}

// ethPAll is ETH_P_ALL: every protocol.
const ethPAll = 0x0003

// ListenLive opens a packet socket on ifi that receives every frame sent or
// received on it, in promiscuous mode. It needs CAP_NET_RAW. Close the Conn
// when done.
func ListenLive(ifi *net.Interface) (*packet.Conn, error) {
	c, err := packet.Listen(ifi, packet.Raw, ethPAll, nil)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", ifi.Name, err)
	}
	if err := c.SetPromiscuous(true); err != nil {
		c.Close()
		return nil, fmt.Errorf("promiscuous mode on %s: %w", ifi.Name, err)
	}
	return c, nil
}

// ScanLive reads frames from conn until ctx ends, runs every detector on them
// and calls fn for every finding as soon as it completes (its address or flow
// has been quiet for Options.Window); the findings still open are reported when
// ctx ends. It returns nil when ctx ends, or the first read or write error
// (after reporting the open findings). Frame numbers count from 1 as read.
func (s *Scanner) ScanLive(ctx context.Context, conn PacketConn, o LiveOptions, fn func(Finding)) error {
	if o.LinkType == 0 {
		o.LinkType = LinkEthernet
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	s.Reset()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, defaultMaxPacket)
	finish := func(err error) error {
		s.Flush(fn)
		if o.Writer != nil {
			if ferr := o.Writer.Flush(); err == nil && ferr != nil {
				err = ferr
			}
		}
		return err
	}
	var frame uint64
	for {
		if ctx.Err() != nil {
			return finish(nil)
		}
		if err := conn.SetReadDeadline(o.Clock().Add(o.Tick)); err != nil {
			return finish(fmt.Errorf("live capture: %w", err))
		}
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return finish(nil)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				s.tick(o.Clock().UnixNano(), fn)
				continue
			}
			return finish(fmt.Errorf("live capture: frame %d: %w", frame+1, err))
		}
		frame++
		p := Packet{Data: buf[:n], Length: n, Time: o.Clock(), LinkType: o.LinkType, Frame: frame}
		if o.Writer != nil {
			if err := o.Writer.WritePacket(p.Time, p.Data, p.Length); err != nil {
				return finish(err)
			}
		}
		s.Observe(&p, fn)
		if now := p.Time.UnixNano(); now-s.lastSweep >= int64(o.Tick) {
			s.tick(now, fn)
		}
	}
}

// tick advances the scanner's clock without a frame and reports entries that
// have gone quiet.
func (s *Scanner) tick(now int64, fn func(Finding)) {
	s.emit = fn
	if now > s.now {
		s.now = now
	}
	s.sweep(s.now - int64(s.o.Window))
}
