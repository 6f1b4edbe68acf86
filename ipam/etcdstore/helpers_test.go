package etcdstore

import (
	"context"
	"testing"
	"time"

	"github.com/addrguard/addrguard/ipam/etcdstore/etcdtest"
	"github.com/stretchr/testify/require"
)

var ctx = context.Background()

// startEtcd starts one embedded etcd member for the test.
func startEtcd(t *testing.T) *etcdtest.Cluster {
	t.Helper()
	return etcdtest.Start(t, etcdtest.Options{})
}

// dial returns a Store on c owning its own client, closed at cleanup.
func dial(t testing.TB, c *etcdtest.Cluster, opts Options) *Store {
	t.Helper()
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	s, err := Dial(ctx, c.Endpoints(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}
