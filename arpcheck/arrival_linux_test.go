//go:build linux

package arpcheck_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/internal/testnet"
	"golang.org/x/sys/unix"
)

// arrivals records when ARP replies reach a host's eth0, by the kernel's
// receive timestamp on a packet socket of its own (SO_TIMESTAMPNS): the
// moment a reply arrives, independent of the prober under test.
type arrivals struct {
	mu      sync.Mutex
	replies []arrival
}

type arrival struct {
	from netip.Addr // ARP sender IP
	at   time.Time  // kernel receive time (wall clock)
}

// watchReplies starts recording the ARP replies arriving on h's eth0 until the
// test ends.
func watchReplies(tb testing.TB, h *testnet.Host) *arrivals {
	tb.Helper()
	const proto = unix.ETH_P_ARP>>8 | unix.ETH_P_ARP&0xff<<8 // in network order
	var fd int
	err := h.Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return err
		}
		tv := unix.Timeval{Usec: 50_000} // so that the reader sees the end of the test
		if err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: h.Index})
	})
	if err != nil {
		tb.Fatalf("reply watcher in %s: %v", h.Netns, err)
	}
	a := &arrivals{}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		buf, oob := make([]byte, 128), make([]byte, 128)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				continue // timeout: look at stop again
			}
			f, err := arpcheck.ParseFrame(buf[:n])
			if err != nil || f.Op != arpcheck.OpARPReply {
				continue
			}
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
					ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
					a.mu.Lock()
					a.replies = append(a.replies, arrival{f.SenderIP, time.Unix(ts.Unix())})
					a.mu.Unlock()
				}
			}
		}
	}()
	tb.Cleanup(func() {
		close(stop)
		<-stopped
		_ = unix.Close(fd)
	})
	return a
}

// first returns when the first reply from addr arrived at or after since,
// waiting up to a second for the watcher to read it.
func (a *arrivals) first(addr netip.Addr, since time.Time) (time.Time, bool) {
	deadline := time.Now().Add(time.Second)
	for {
		a.mu.Lock()
		for _, r := range a.replies {
			if r.from == addr && !r.at.Before(since) {
				a.mu.Unlock()
				return r.at, true
			}
		}
		a.mu.Unlock()
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(time.Millisecond)
	}
}

// reset forgets the replies recorded so far.
func (a *arrivals) reset() {
	a.mu.Lock()
	a.replies = a.replies[:0]
	a.mu.Unlock()
}
