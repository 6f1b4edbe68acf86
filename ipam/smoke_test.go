package ipam

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"go4.org/netipx"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	specs, err := ParseManifest([]byte(`apiVersion: mcp.example.com/v1
kind: IPPool
metadata: {name: pool-us-west}
spec:
  subnet: "10.100.0.0/16"
  gateway: "10.100.0.1"
  reservedIPs: ["10.100.0.100-10.100.0.110"]
`))
	require.NoError(t, err)
	a, err := New(ctx, NewMemoryStore(), specs...)
	require.NoError(t, err)
	l, err := a.Allocate(ctx, "pool-us-west", "pod-1")
	require.NoError(t, err)
	require.Equal(t, netip.MustParseAddr("10.100.0.2"), l.Addr)
	l2, err := a.Allocate(ctx, "pool-us-west", "pod-1")
	require.NoError(t, err)
	require.Equal(t, l, l2)
	ls, err := a.AllocateN(ctx, "pool-us-west", "bulk", 200)
	require.NoError(t, err)
	require.Len(t, ls, 200)
	st, err := a.Stats(ctx, "pool-us-west")
	require.NoError(t, err)
	t.Logf("%+v", st)
	require.NoError(t, a.Verify(ctx))
	require.NoError(t, a.Release(ctx, l))
	require.ErrorIs(t, a.Release(ctx, l), ErrStaleLease)
	require.NoError(t, a.Verify(ctx))
	specs[0].Reserved = append(specs[0].Reserved, MustRange("10.100.0.5"))
	_, err = a.AddPool(ctx, specs[0])
	require.ErrorIs(t, err, ErrAlreadyAllocated)
	t.Log(err)
	specs[0].Reserved[1] = MustRange("10.100.200.5")
	_, err = a.AddPool(ctx, specs[0])
	require.NoError(t, err)
	require.NoError(t, a.Verify(ctx))
	st, err = a.Stats(ctx, "pool-us-west")
	require.NoError(t, err)
	t.Logf("%+v", st)
	l3, err := a.Allocate(ctx, "pool-us-west", "pod-1")
	require.NoError(t, err)
	t.Log(l3)
}

func MustRange(s string) netipx.IPRange {
	r, err := ParseRange(s)
	if err != nil {
		panic(err)
	}
	return r
}
