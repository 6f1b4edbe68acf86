package arpcheck

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type testTask struct {
	sched
	id int
}

func (*testTask) fire(*Prober, time.Time) {}

// The scheduler's heap against a sorted list, through random pushes,
// reschedules and removals: pops come by time, then in order of scheduling,
// and every task knows its place.
func TestTaskHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	p := &Prober{epoch: time.Unix(0, 0)}
	tasks := make([]*testTask, 200)
	for i := range tasks {
		tasks[i] = &testTask{sched: sched{idx: -1}, id: i}
	}
	for range 5000 {
		tk := tasks[r.IntN(len(tasks))]
		switch r.IntN(3) {
		case 0, 1: // (re)schedule, few distinct times so that ties are common
			p.schedule(tk, p.epoch.Add(time.Duration(r.IntN(20))))
		case 2:
			p.unschedule(tk)
		}
		for i, s := range p.tasks {
			require.Equal(t, i, s.idx)
		}
	}
	queued := slices.Clone([]*sched(p.tasks))
	slices.SortFunc(queued, func(a, b *sched) int {
		if a.key != b.key {
			return int(a.key - b.key)
		}
		return int(a.seq) - int(b.seq)
	})
	var got []*sched
	for len(p.tasks) > 0 {
		got = append(got, p.tasks.remove(0))
	}
	assert.Equal(t, queued, got)
	for _, s := range got {
		assert.Equal(t, -1, s.idx)
		assert.Equal(t, s.at.Sub(p.epoch), time.Duration(s.key))
	}
}
