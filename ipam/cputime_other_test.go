//go:build !unix

package ipam

import "time"

// processCPU is not available here; cpuMeter then reports nothing.
func processCPU() time.Duration { return -1 }
