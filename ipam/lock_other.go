//go:build !unix

package ipam

import (
	"context"
	"errors"
	"os"
	"time"
)

// fileLock is a no-op where flock(2) is missing: bbolt's own file lock
// (with BoltOptions.Timeout) serializes processes there.
type fileLock struct{}

// ErrLockTimeout is returned when another process holds the store's lock
// longer than the timeout.
var ErrLockTimeout = errors.New("ipam: timed out waiting for the store's file lock")

func lockFile(context.Context, string, time.Duration, os.FileMode) (*fileLock, error) {
	return &fileLock{}, nil
}

func (l *fileLock) unlock() {}
