// Package cputime reads the CPU time this process has used, for the
// benchmarks that report CPU time beside wall time: on a machine shared
// with other work, wall time counts the waits for a core and CPU time
// does not.
package cputime

import "time"

// Self returns the user and system CPU time this process has used so far,
// every thread included (the garbage collector's too). ok is false where
// the platform does not report it.
func Self() (d time.Duration, ok bool) { return usage(false) }

// WithChildren is Self plus the CPU time of the child processes this
// process has waited for (a benchmark that runs a peer tool as a child).
func WithChildren() (d time.Duration, ok bool) { return usage(true) }
