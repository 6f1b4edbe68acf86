package logscan

import (
	"testing"
	"time"
)

// Micro benchmarks of the stages a failure line goes through.
var failMsg = "Failed password for invalid user admin from 198.51.100.77 port 40001 ssh2"
var failLineText = "Mar  2 09:00:00 web1 sshd[4242]: " + failMsg

func BenchmarkStageHeader(b *testing.B) {
	tc := newTimeCtx(time.UTC, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	var rec record
	b.ReportAllocs()
	for b.Loop() {
		tc.parseHeader(failLineText, &rec)
	}
}

func BenchmarkStageClassify(b *testing.B) {
	var m sshMatch
	b.ReportAllocs()
	for b.Loop() {
		classifySSHD(failMsg, &m)
	}
}

func BenchmarkStageFailureLine(b *testing.B) {
	for _, top := range []bool{false, true} {
		name := "analyze"
		if top {
			name = "top"
		}
		b.Run(name, func(b *testing.B) {
			an := New(Options{Location: time.UTC})
			an.topOnly = top
			an.reset(Handler{})
			line := []byte(failLineText)
			b.ReportAllocs()
			n := int64(0)
			for b.Loop() {
				n++
				an.line(line, n)
			}
		})
	}
}
