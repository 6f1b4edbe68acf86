//go:build !linux

package arpcheck

import (
	"errors"
	"fmt"
	"net"
)

// withLinkChecks has nothing to add where there are no packet sockets.
func withLinkChecks(_ *net.Interface, t Transport) Transport { return t }

// New opens a raw socket on ifi; raw Ethernet sockets (AF_PACKET) exist on
// Linux only, so elsewhere it fails. NewFromTransport works everywhere.
func New(ifi *net.Interface, opts Options) (*Prober, error) {
	if err := checkInterface(ifi); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("arpcheck: %s: %w", ifi.Name, errors.ErrUnsupported)
}
