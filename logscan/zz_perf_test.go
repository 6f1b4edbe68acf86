package logscan

import (
	"bytes"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZPerf(t *testing.T) {
	if os.Getenv("ZZPERF") == "" {
		t.Skip()
	}
	runtime.LockOSThread()
	for _, name := range []string{"auth-22.log", "auth-57.log"} {
		data, err := os.ReadFile("/tmp/logscan-bench/" + name)
		data = data[:bytes.LastIndexByte(data[:16<<20], '\n')+1]
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(data, []byte("\n"))
		for _, mode := range modes() {
			best := time.Hour
			for range 25 {
				c0 := threadCPU()
				if mode == "top" {
					TopSources(t.Context(), bytes.NewReader(data), Options{Location: time.UTC}, 0)
				} else {
					New(Options{Location: time.UTC, Reference: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}).Scan(bytes.NewReader(data), func(Finding) {})
				}
				best = min(best, threadCPU()-c0)
			}
			t.Logf("%s %s: %v cpu, %.0f MB/s, %.2f M lines/s, %.0f ns/line", name, mode, best, float64(len(data))/best.Seconds()/1e6, float64(lines)/best.Seconds()/1e6, float64(best.Nanoseconds())/float64(lines))
		}
	}
}

func modes() []string {
	if m := os.Getenv("ZZMODE"); m != "" {
		return []string{m}
	}
	return []string{"top", "analyze"}
}
