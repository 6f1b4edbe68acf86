package etcdstore

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/ipam/etcdstore/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// faultRun is eight allocators allocating while disrupt breaks the
// cluster and mend repairs it.
type faultRun struct {
	mu      sync.Mutex
	want    map[netip.Addr]string
	maybe   map[string]bool // owners whose outcome was unknown and not retried
	ok      atomic.Int64
	errs    atomic.Int64
	errSeen []error
}

const faultPerWorker = 120

// runFault runs the allocators on c. Each allocation that fails is an
// unknown outcome: odd allocations retry the same owner until it succeeds
// (ipam is idempotent per owner: a retry returns the lease if the failed
// attempt committed), even ones give the owner up (its lease may or may not
// exist). Once a quarter of the allocations are done it calls disrupt,
// waits until every allocator has seen an error (allErr) or until another
// eighth of the allocations are done, and calls mend.
func runFault(t *testing.T, c *etcdtest.Cluster, allErr bool, disrupt, mend func()) *faultRun {
	first := newAllocator(t, c, Options{}, poolSpec(ipam.Random))
	r := &faultRun{want: map[netip.Addr]string{}, maybe: map[string]bool{}}
	sawErr := make([]atomic.Bool, workers)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		a := newAllocator(t, c, Options{RequestTimeout: 300 * time.Millisecond, DialTimeout: time.Second})
		wg.Go(func() {
			for i := 0; i < faultPerWorker && rctx.Err() == nil; i++ {
				owner := fmt.Sprintf("g%d-%d", w, i)
				for rctx.Err() == nil {
					l, err := a.Allocate(rctx, "p", owner)
					if err == nil {
						r.mu.Lock()
						if prev, ok := r.want[l.Addr]; ok {
							t.Errorf("%s handed to %q and %q", l.Addr, prev, owner)
						}
						r.want[l.Addr] = owner
						delete(r.maybe, owner)
						r.mu.Unlock()
						r.ok.Add(1)
						break
					}
					r.errs.Add(1)
					sawErr[w].Store(true)
					r.mu.Lock()
					if len(r.errSeen) < 3 {
						r.errSeen = append(r.errSeen, err)
					}
					r.mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					if i%2 == 0 {
						r.mu.Lock()
						r.maybe[owner] = true
						r.mu.Unlock()
						break
					}
				}
			}
		})
	}
	waitFor(t, "a quarter of the allocations", func() bool { return r.ok.Load() >= workers*faultPerWorker/4 })
	start := time.Now()
	disrupt()
	t.Logf("disrupted after %d allocations, in %v", r.ok.Load(), time.Since(start))
	at := r.ok.Load()
	waitFor(t, "the outage to show", func() bool {
		if !allErr {
			return r.ok.Load() >= at+workers*faultPerWorker/8
		}
		for i := range sawErr {
			if !sawErr[i].Load() {
				return false
			}
		}
		return true
	})
	mend()
	wg.Wait()
	require.NoError(t, rctx.Err(), "allocators did not finish")
	t.Logf("%d allocations, %d errors, e.g. %v", r.ok.Load(), r.errs.Load(), r.errSeen)
	for _, err := range r.errSeen {
		var e *Error
		if assert.ErrorAs(t, err, &e, "an outage error names the operation and endpoints") {
			assert.NotEmpty(t, e.Endpoints)
		}
	}
	checkStore(t, first, r.want, r.maybe)
	return r
}

// The only etcd server stops mid-run and restarts on its data: the
// allocators fail while it is down, then carry on, and no address is lost
// or has two owners.
func TestServerRestart(t *testing.T) {
	c := startEtcd(t)
	m := c.Members[0]
	r := runFault(t, c, true, m.Stop, func() { require.NoError(t, m.Restart()) })
	assert.NotZero(t, r.errs.Load())
}

// A three-member cluster loses its leader mid-run; clients know every
// member. Nothing is lost or doubled.
func TestLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-member cluster")
	}
	c := etcdtest.StartN(t, 3, etcdtest.Options{})
	var killed *etcdtest.Member
	runFault(t, c, false, func() {
		killed = c.Leader()
		require.NotNil(t, killed, "no leader")
		killed.Kill()
	}, func() {})
	// The old leader rejoins and has every allocation.
	require.NoError(t, killed.Restart())
	s, err := Dial(ctx, []string{killed.Endpoint()}, Options{})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, ipam.VerifyStore(ctx, s))
}

// waitFor polls cond (a wait for an outside event, not a timing check).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
