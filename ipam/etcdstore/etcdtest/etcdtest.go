// Package etcdtest starts real etcd servers in-process for tests (etcd's
// own embed package, no install needed): one member or a cluster of n, on
// loopback ports chosen free at run time, with their data in t.TempDir(),
// silent, and stopped by t.Cleanup. A member can be stopped or killed and
// restarted on the same data directory and ports, to test what clients do
// while a server is down. It ships beside etcdstore, as httptest beside
// net/http, so that users of etcdstore can test their own code:
//
//	c := etcdtest.Start(t, etcdtest.Options{})
//	st, err := etcdstore.Dial(ctx, c.Endpoints(), etcdstore.Options{})
//
// Importing it compiles the etcd server into the test binary.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Options configure the servers.
type Options struct {
	// Fsync keeps etcd's fsync of its WAL and database; off (UnsafeNoFsync)
	// by default, which is safe for tests that do not crash the machine
	// and much faster on slow disks.
	Fsync bool
	// MaxTxnOps is the server's --max-txn-ops; etcd's default (128) when 0.
	MaxTxnOps uint
	// Dir holds the members' data directories; t.TempDir() when empty
	// (Start, StartN).
	Dir string
}

// Cluster is a set of embedded etcd members.
type Cluster struct {
	opts    Options
	Members []*Member
	initial string
}

// Member is one embedded etcd server.
type Member struct {
	c      *Cluster
	Name   string
	Dir    string
	client url.URL
	peer   url.URL

	mu      sync.Mutex
	etcd    *embed.Etcd   // nil while stopped
	closing chan struct{} // closed when a killed server has closed
}

// Start starts a single-member cluster, or skips the test with the reason
// if the embedded server cannot start.
func Start(t testing.TB, opts Options) *Cluster { return StartN(t, 1, opts) }

// StartN starts an n-member cluster, ready to serve, stopped by the
// test's cleanup, or skips the test with the reason if it cannot start.
func StartN(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c, err := New(n, opts)
	if err != nil {
		t.Skipf("etcdtest: cannot start an embedded etcd server: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// New starts an n-member cluster outside a test (an Example, a tool),
// with its data under opts.Dir, which must be set. The caller stops it
// with Close.
func New(n int, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("etcdtest: Options.Dir not set")
	}
	var lastErr error
	for try := 0; try < 5; try++ { // ports are chosen free, but another process may take one first
		c, err := startN(n, opts, try)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !isBindError(err) {
			break
		}
	}
	return nil, lastErr
}

// Close stops every member.
func (c *Cluster) Close() {
	for _, m := range c.Members {
		m.Stop()
	}
}

func isBindError(err error) bool {
	return strings.Contains(err.Error(), "address already in use") || strings.Contains(err.Error(), "bind")
}

func startN(n int, opts Options, try int) (*Cluster, error) {
	base := opts.Dir
	c := &Cluster{opts: opts}
	var peers []string
	for i := 0; i < n; i++ {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		m := &Member{
			c:      c,
			Name:   fmt.Sprintf("m%d", i),
			Dir:    fmt.Sprintf("%s/try%d-m%d", base, try, i),
			client: url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])},
			peer:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])},
		}
		c.Members = append(c.Members, m)
		peers = append(peers, m.Name+"="+m.peer.String())
	}
	c.initial = strings.Join(peers, ",")
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range c.Members {
		wg.Go(func() { errs[i] = m.start(embed.ClusterStateFlagNew) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// freePorts returns n loopback TCP ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (m *Member) config(state string) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.Dir
	cfg.ListenClientUrls = []url.URL{m.client}
	cfg.AdvertiseClientUrls = []url.URL{m.client}
	cfg.ListenPeerUrls = []url.URL{m.peer}
	cfg.AdvertisePeerUrls = []url.URL{m.peer}
	cfg.InitialCluster = m.c.initial
	cfg.InitialClusterToken = "etcdtest"
	cfg.ClusterState = state
	cfg.UnsafeNoFsync = !m.c.opts.Fsync
	if m.c.opts.MaxTxnOps != 0 {
		cfg.MaxTxnOps = m.c.opts.MaxTxnOps
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.LogOutputs = []string{os.DevNull}
	cfg.ListenMetricsUrls = nil
	// Loopback: elect quickly after a member is killed.
	cfg.TickMs, cfg.ElectionMs = 50, 500
	return cfg
}

func (m *Member) start(state string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd != nil {
		return nil
	}
	if m.closing != nil {
		<-m.closing
		m.closing = nil
	}
	e, err := embed.StartEtcd(m.config(state))
	if err != nil {
		return fmt.Errorf("member %s: %w", m.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("member %s: %w", m.Name, err)
	case <-time.After(60 * time.Second):
		e.Close()
		return fmt.Errorf("member %s: not ready after 60s", m.Name)
	}
	m.etcd = e
	return nil
}

// Endpoints returns the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.client.String())
	}
	return eps
}

// Leader returns the member that is leader now (waiting up to 10 s for an
// election), or nil.
func (c *Cluster) Leader() *Member {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, m := range c.Members {
			m.mu.Lock()
			e := m.etcd
			m.mu.Unlock()
			if e != nil && e.Server.Leader() == e.Server.MemberID() {
				return m
			}
		}
	}
	return nil
}

// Endpoint returns the member's client URL.
func (m *Member) Endpoint() string { return m.client.String() }

// Stop stops the member (a no-op if stopped); its data stays.
func (m *Member) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd != nil {
		m.etcd.Close()
		m.etcd = nil
	}
	if m.closing != nil {
		<-m.closing
		m.closing = nil
	}
}

// Kill stops the member's raft node at once, without handing its
// leadership over, as a crash would (its data stays, as after a process
// crash), and returns; its listeners close in the background (Restart and
// the test's cleanup wait for that).
func (m *Member) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd != nil {
		e := m.etcd
		e.Server.HardStop()
		m.etcd = nil
		done := make(chan struct{})
		m.closing = done
		go func() {
			e.Close()
			close(done)
		}()
	}
}

// Restart starts a stopped member again on the same data directory and
// ports, retrying for a while if a port is still held. It may be called
// from any goroutine.
func (m *Member) Restart() error {
	var err error
	for try := 0; try < 50; try++ {
		if err = m.start(embed.ClusterStateFlagExisting); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("etcdtest: restart %s: %w", m.Name, err)
}
