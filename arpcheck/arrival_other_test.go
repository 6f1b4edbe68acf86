//go:build !linux

package arpcheck_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/addrguard/addrguard/internal/testnet"
)

type arrivals struct{}

// watchReplies needs Linux packet sockets; elsewhere the benchmark using it
// skips (it needs Linux network namespaces anyway).
func watchReplies(tb testing.TB, h *testnet.Host) *arrivals {
	tb.Skip("reply timestamps need Linux packet sockets")
	return nil
}

func (*arrivals) first(netip.Addr, time.Time) (time.Time, bool) { return time.Time{}, false }
func (*arrivals) reset()                                        {}
