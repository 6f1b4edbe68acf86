//go:build unix

package ipam

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// fileLock is an exclusive flock(2) on a lock file beside the store. Unlike
// bbolt's own lock (retried every 50 ms) it is polled with a short backoff,
// so processes taking turns on one store wait microseconds, not 50 ms.
type fileLock struct{ f *os.File }

// ErrLockTimeout is returned when another process holds the store's lock
// longer than the timeout.
var ErrLockTimeout = errors.New("ipam: timed out waiting for the store's file lock")

func lockFile(ctx context.Context, path string, timeout time.Duration, mode os.FileMode) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, mode)
	if err != nil {
		return nil, fmt.Errorf("ipam: lock file: %w", err)
	}
	deadline := time.Now().Add(timeout)
	wait := 20 * time.Microsecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("ipam: lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w %s after %v", ErrLockTimeout, path, timeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
		if wait < 2*time.Millisecond {
			wait *= 2
		}
	}
}

func (l *fileLock) unlock() {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}
