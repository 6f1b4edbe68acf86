package ipam

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHelperProcess is not a test: the multi-process tests re-execute the
// test binary to run it as a separate allocator process.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("IPAM_HELPER")
	if mode == "" {
		t.Skip("helper process for the multi-process tests")
	}
	err := helperMain(mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func helperMain(mode string) error {
	ctx := context.Background()
	// Kill -9 is a process crash, not a machine crash: the page cache
	// survives it, so fsync does not matter here and is skipped for speed.
	st, err := OpenBolt(ctx, os.Getenv("IPAM_STORE"), BoltOptions{NoSync: true, Timeout: time.Minute})
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := New(ctx, st)
	if err != nil {
		return err
	}
	id := os.Getenv("IPAM_ID")
	n, _ := strconv.Atoi(os.Getenv("IPAM_N"))
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	switch mode {
	case "alloc": // n single allocations, distinct owners
		for i := 0; i < n; i++ {
			l, err := a.Allocate(ctx, "p", fmt.Sprintf("%s-%d", id, i))
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s %s %d\n", l.Addr, l.Owner, l.Generation)
		}
	case "churn": // forever: batches, singles and releases, until killed
		for i := 0; ; i++ {
			owner := fmt.Sprintf("%s-%d", id, i)
			if i%3 == 0 {
				if _, err := a.AllocateN(ctx, "p", owner, 50); err != nil {
					return err
				}
			} else if l, err := a.Allocate(ctx, "p", owner); err != nil {
				return err
			} else if i%2 == 0 {
				if err := a.Release(ctx, l); err != nil {
					return err
				}
			}
			if i == 1 {
				fmt.Fprintln(w, "working")
				w.Flush()
			}
			if i%7 == 0 {
				if _, err := a.ReleaseOwner(ctx, "p", fmt.Sprintf("%s-%d", id, i-6)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func helperCmd(t *testing.T, mode, store, id string, n int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "IPAM_HELPER="+mode, "IPAM_STORE="+store, "IPAM_ID="+id, "IPAM_N="+strconv.Itoa(n))
	return cmd
}

// TestMultiProcess: 8 processes × 500 allocations on one bbolt file give
// 4,000 distinct addresses and a sound store.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	store := filepath.Join(t.TempDir(), "ipam.db")
	st, err := OpenBolt(ctx, store, BoltOptions{})
	require.NoError(t, err)
	_, err = New(ctx, st, PoolSpec{Name: "p", Subnet: prefix("10.20.0.0/16"), Gateway: addr("10.20.0.1")})
	require.NoError(t, err)
	require.NoError(t, st.Close())

	const procs, per = 8, 500
	outs := make([][]byte, procs)
	var wg sync.WaitGroup
	for i := 0; i < procs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := helperCmd(t, "alloc", store, fmt.Sprint("proc", i), per)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			assert.NoError(t, err, "process %d: %s", i, stderr.String())
			outs[i] = out
		}()
	}
	wg.Wait()
	owners := map[netip.Addr]string{}
	for _, out := range outs {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			require.Len(t, f, 3, "line %q", line)
			a := netip.MustParseAddr(f[0])
			if prev, dup := owners[a]; dup {
				t.Fatalf("%s handed to %s and %s", a, prev, f[1])
			}
			owners[a] = f[1]
		}
	}
	assert.Len(t, owners, procs*per)
	st, err = OpenBolt(ctx, store, BoltOptions{})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, VerifyStore(ctx, st))
	a, err := New(ctx, st)
	require.NoError(t, err)
	s, err := a.Stats(ctx, "p")
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(procs*per), s.Allocated.String())
	for l, err := range a.Leases(ctx, "p") {
		require.NoError(t, err)
		require.Equal(t, owners[l.Addr], l.Owner)
	}
}

// TestCrashMidBatch: processes allocating, batching and releasing on one
// bbolt file are killed with SIGKILL at random points; the file reopens,
// verifies, has no address with two owners, and keeps working.
func TestCrashMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	store := filepath.Join(t.TempDir(), "ipam.db")
	st, err := OpenBolt(ctx, store, BoltOptions{})
	require.NoError(t, err)
	_, err = New(ctx, st, PoolSpec{Name: "p", Subnet: prefix("10.30.0.0/16"), Strategy: RoundRobin})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	for round := 0; round < 3; round++ {
		var cmds []*exec.Cmd
		for i := 0; i < 4; i++ {
			cmd := helperCmd(t, "churn", store, fmt.Sprintf("r%dp%d", round, i), 0)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			cmds = append(cmds, cmd)
			// Wait until it has committed work, then let it run on.
			line, err := bufio.NewReader(out).ReadString('\n')
			require.NoError(t, err, "helper: %s", stderr.String())
			require.Equal(t, "working\n", line)
		}
		time.Sleep(time.Duration(100+150*round) * time.Millisecond)
		for _, cmd := range cmds {
			require.NoError(t, cmd.Process.Kill()) // SIGKILL
			_ = cmd.Wait()
		}
		st, err := OpenBolt(ctx, store, BoltOptions{})
		require.NoError(t, err, "reopen after kill -9, round %d", round)
		require.NoError(t, VerifyStore(ctx, st), "round %d", round)
		a, err := New(ctx, st)
		require.NoError(t, err)
		s, err := a.Stats(ctx, "p")
		require.NoError(t, err)
		t.Logf("round %d: %s allocated after the kill", round, s.Allocated)
		require.False(t, s.Allocated.IsZero(), "the processes did work before being killed")
		_, err = a.AllocateN(ctx, "p", fmt.Sprint("after", round), 10)
		require.NoError(t, err)
		require.NoError(t, VerifyStore(ctx, st))
		require.NoError(t, st.Close())
	}
}
