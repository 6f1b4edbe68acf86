package cputime

import (
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSelfGrows: spinning for 50 ms of wall time adds CPU time, and no
// more than the wall time times the threads that could have run.
func TestSelfGrows(t *testing.T) {
	before, ok := Self()
	if !ok {
		t.Skip("no CPU time on " + runtime.GOOS)
	}
	start := time.Now()
	x := 1
	for time.Since(start) < 50*time.Millisecond {
		x = x*31 + 7
	}
	wall := time.Since(start)
	after, ok := Self()
	require.True(t, ok)
	used := after - before
	assert.Greater(t, used, 10*time.Millisecond, "spun %v (x %d)", wall, x)
	assert.Less(t, used, wall*time.Duration(runtime.NumCPU()+1))
}

// TestWithChildren counts a child's CPU time once it has been waited for.
func TestWithChildren(t *testing.T) {
	if _, ok := WithChildren(); !ok {
		t.Skip("no CPU time on " + runtime.GOOS)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	before, _ := WithChildren()
	self0, _ := Self()
	// The child spins in the shell for a while: about 100 ms of CPU.
	cmd := exec.Command(sh, "-c", `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done`)
	require.NoError(t, cmd.Run())
	after, _ := WithChildren()
	self1, _ := Self()
	child := (after - before) - (self1 - self0)
	assert.Greater(t, child, 5*time.Millisecond, "the child's CPU time")
}
