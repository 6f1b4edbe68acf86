package etcdstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/ipam/etcdstore/etcdtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	workers   = 8
	perWorker = 1000
)

func poolSpec(strategy ipam.Strategy) ipam.PoolSpec {
	return ipam.PoolSpec{Name: "p", Subnet: netip.MustParsePrefix("10.0.0.0/16"), Strategy: strategy}
}

// newAllocator dials its own client and returns an allocator on it.
func newAllocator(t testing.TB, c *etcdtest.Cluster, opts Options, specs ...ipam.PoolSpec) *ipam.Allocator {
	t.Helper()
	s := dial(t, c, opts)
	a, err := ipam.New(ctx, s, specs...)
	require.NoError(t, err)
	return a
}

// checkStore checks the store holds exactly the leases in want (address
// to owner), plus possibly one lease of each owner in maybe (allocations
// whose commit outcome the caller could not know and did not retry), with
// the owner index agreeing, and that VerifyStore finds nothing wrong.
func checkStore(t *testing.T, a *ipam.Allocator, want map[netip.Addr]string, maybe map[string]bool) {
	t.Helper()
	got := map[netip.Addr]string{}
	for l, err := range a.Leases(ctx, "p") {
		require.NoError(t, err)
		if prev, ok := got[l.Addr]; ok {
			t.Fatalf("address %s has two owners: %q and %q", l.Addr, prev, l.Owner)
		}
		got[l.Addr] = l.Owner
	}
	for addr, owner := range want {
		assert.Equal(t, owner, got[addr], "allocation of %s reported successful is lost", addr)
	}
	extra := 0
	for addr, owner := range got {
		if _, ok := want[addr]; ok {
			continue
		}
		if maybe[owner] {
			extra++
			continue
		}
		t.Errorf("address %s held by %q, which no allocator reported", addr, owner)
	}
	// The owner index (which Leases read) agrees; Lookup on a sample of
	// owners reads their records one by one.
	byOwner := map[string][]netip.Addr{}
	for addr, owner := range want {
		byOwner[owner] = append(byOwner[owner], addr)
	}
	n := 0
	for owner, addrs := range byOwner {
		if n++; n%50 != 1 {
			continue
		}
		ls, err := a.Lookup(ctx, "p", owner)
		require.NoError(t, err)
		var got []netip.Addr
		for _, l := range ls {
			got = append(got, l.Addr)
		}
		slices.SortFunc(addrs, netip.Addr.Compare)
		slices.SortFunc(got, netip.Addr.Compare)
		assert.Equal(t, addrs, got, "owner %q", owner)
	}
	require.NoError(t, a.Refresh(ctx, "p"))
	st, err := a.Stats(ctx, "p")
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(len(want)+extra), st.Allocated.String())
	require.NoError(t, a.Verify(ctx))
	t.Logf("%d allocations, %d more with unknown outcome present", len(want), extra)
}

func TestConcurrentAllocators(t *testing.T) {
	for _, tc := range []struct {
		name     string
		strategy ipam.Strategy
		n        int
	}{
		{"random", ipam.Random, perWorker},
		// Every allocator races for the lowest free address: the
		// worst case for conflicts, so fewer.
		{"sequential", ipam.Sequential, perWorker / 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startEtcd(t)
			first := newAllocator(t, c, Options{}, poolSpec(tc.strategy))
			var (
				mu   sync.Mutex
				want = map[netip.Addr]string{}
				wg   sync.WaitGroup
				errs = make([]error, workers)
			)
			var conflicts atomic.Int64
			for w := 0; w < workers; w++ {
				// Own client, own allocator.
				a, err := ipam.New(ctx, &countingStore{Store: dial(t, c, Options{}), conflicts: &conflicts})
				require.NoError(t, err)
				wg.Go(func() {
					for i := 0; i < tc.n; i++ {
						owner := fmt.Sprintf("g%d-%d", w, i)
						l, err := a.Allocate(ctx, "p", owner)
						if err != nil {
							errs[w] = err
							return
						}
						mu.Lock()
						if prev, ok := want[l.Addr]; ok {
							errs[w] = fmt.Errorf("%s handed to %q and %q", l.Addr, prev, owner)
						}
						want[l.Addr] = owner
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			require.Len(t, want, workers*tc.n)
			checkStore(t, first, want, nil)
			t.Logf("%d conflicts", conflicts.Load())
			if tc.strategy == ipam.Random {
				// Allocators keep to pages of their own: few lost compares
				// (a property of the page choice, not of timing).
				assert.Less(t, conflicts.Load(), int64(workers*tc.n/20))
			}
		})
	}
}

// countingStore counts lost compares of a *Store (still a Watcher and a
// TxnLimiter, as allocators use it by default).
type countingStore struct {
	*Store
	conflicts *atomic.Int64
}

func (s *countingStore) Commit(ctx context.Context, txn ipam.Txn) (uint64, error) {
	r, err := s.Store.Commit(ctx, txn)
	if errors.Is(err, ipam.ErrConflict) {
		s.conflicts.Add(1)
	}
	return r, err
}

// TestHelperProcess is not a test: TestProcesses re-executes the test
// binary to run it as a separate allocator process.
func TestHelperProcess(t *testing.T) {
	eps := os.Getenv("ETCDSTORE_HELPER_ENDPOINTS")
	if eps == "" {
		t.Skip("helper process for TestProcesses")
	}
	if err := helperMain(strings.Split(eps, ","), os.Getenv("ETCDSTORE_HELPER_ID")); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func helperMain(eps []string, id string) error {
	s, err := Dial(ctx, eps, Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	a, err := ipam.New(ctx, s)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for i := 0; i < perWorker; i++ {
		l, err := a.Allocate(ctx, "p", fmt.Sprintf("%s-%d", id, i))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s %s\n", l.Addr, l.Owner)
	}
	return nil
}

// Eight processes, each its own allocator and client, allocate 1,000
// addresses each from one pool.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 processes")
	}
	c := startEtcd(t)
	first := newAllocator(t, c, Options{}, poolSpec(ipam.Random))
	exe, err := os.Executable()
	require.NoError(t, err)
	outs := make([]bytes.Buffer, workers)
	errs := make([]bytes.Buffer, workers)
	var cmds []*exec.Cmd
	for w := 0; w < workers; w++ {
		cmd := exec.Command(exe, "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), "ETCDSTORE_HELPER_ENDPOINTS="+strings.Join(c.Endpoints(), ","), fmt.Sprintf("ETCDSTORE_HELPER_ID=p%d", w))
		cmd.Stdout, cmd.Stderr = &outs[w], &errs[w]
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
	}
	for w, cmd := range cmds {
		require.NoError(t, cmd.Wait(), "process %d: %s", w, errs[w].String())
	}
	want := map[netip.Addr]string{}
	for w := range outs {
		for line := range strings.Lines(outs[w].String()) {
			f := strings.Fields(line)
			require.Len(t, f, 2, "process %d: %q", w, line)
			a := netip.MustParseAddr(f[0])
			if prev, ok := want[a]; ok {
				t.Fatalf("%s handed to %q and %q", a, prev, f[1])
			}
			want[a] = f[1]
		}
	}
	require.Len(t, want, workers*perWorker)
	checkStore(t, first, want, nil)
}

// A spec change of a pool with more pages in use than one etcd
// transaction may carry (--max-txn-ops 128) is carried out in steps.
func TestSpecChangeOverTxnLimit(t *testing.T) {
	c := startEtcd(t)
	spec := ipam.PoolSpec{Name: "p", Subnet: netip.MustParsePrefix("10.0.0.0/14")}
	a := newAllocator(t, c, Options{}, spec)
	want := map[netip.Addr]string{}
	for i := 0; i < 130; i++ { // 130 pages of 1,024: more conditions than 128
		owner := fmt.Sprint("o", i)
		ls, err := a.AllocateN(ctx, "p", owner, 1000)
		require.NoError(t, err)
		for _, l := range ls {
			want[l.Addr] = owner
		}
	}
	spec.Subnet = netip.MustParsePrefix("10.0.0.0/13")
	_, err := a.AddPool(ctx, spec)
	require.NoError(t, err)
	st, err := a.Stats(ctx, "p")
	require.NoError(t, err)
	assert.Equal(t, "524288", st.Total.String())
	checkStore(t, a, want, nil)
}

// Leases and the owner index live in etcd: a new allocator, after the old
// one's process and the etcd server restarted, finds them.
func TestLeasesSurviveRestart(t *testing.T) {
	c := startEtcd(t)
	s1, err := Dial(ctx, c.Endpoints(), Options{})
	require.NoError(t, err)
	a, err := ipam.New(ctx, s1, poolSpec(ipam.Random))
	require.NoError(t, err)
	l, err := a.Allocate(ctx, "p", "o")
	require.NoError(t, err)
	bulk, err := a.AllocateN(ctx, "p", "bulk", 10)
	require.NoError(t, err)
	require.NoError(t, s1.Close())
	_, err = a.Allocate(ctx, "p", "other")
	require.ErrorIs(t, err, ErrClosed)
	c.Members[0].Stop()
	require.NoError(t, c.Members[0].Restart())

	b := newAllocator(t, c, Options{})
	got, err := b.Allocate(ctx, "p", "o")
	require.NoError(t, err)
	assert.Equal(t, l, got, "same owner, same lease")
	ls, err := b.Lookup(ctx, "p", "bulk")
	require.NoError(t, err)
	assert.Equal(t, bulk, ls)
	owner, err := b.LeaseOf(ctx, "p", bulk[3].Addr)
	require.NoError(t, err)
	assert.Equal(t, bulk[3], owner)
	require.NoError(t, b.Release(ctx, l))
	require.ErrorIs(t, b.Release(ctx, l), ipam.ErrStaleLease)
	st, err := b.Stats(ctx, "p")
	require.NoError(t, err)
	assert.Equal(t, "10", st.Allocated.String())
	require.NoError(t, b.Verify(ctx))
}
