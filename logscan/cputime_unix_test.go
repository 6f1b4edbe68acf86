//go:build linux || darwin || freebsd || netbsd || openbsd

package logscan

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user + system) of this process and of the
// children it waited for.
func cpuTime() (time.Duration, bool) {
	var self, kids syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids) != nil {
		return 0, false
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime), true
}
