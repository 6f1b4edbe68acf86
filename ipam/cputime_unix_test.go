//go:build unix

package ipam

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) the process has used so
// far, every thread included (the garbage collector's too).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
