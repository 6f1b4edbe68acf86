//go:build unix

package cputime

import (
	"syscall"
	"time"
)

func usage(children bool) (time.Duration, bool) {
	var self syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil {
		return 0, false
	}
	d := total(&self)
	if children {
		var kids syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids) != nil {
			return 0, false
		}
		d += total(&kids)
	}
	return d, true
}

func total(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
