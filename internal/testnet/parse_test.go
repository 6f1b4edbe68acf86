package testnet

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseNeighbors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Neighbor
		wantErr string
	}{
		{name: "empty", in: `[]`, want: []Neighbor{}},
		{
			name: "reachable and incomplete",
			in: `[{"dst":"192.0.2.1","dev":"eth0","lladdr":"02:a6:00:00:00:01","state":["REACHABLE"]},
			      {"dst":"2001:db8::2","dev":"eth0","state":["FAILED"]}]`,
			want: []Neighbor{
				{Addr: netip.MustParseAddr("192.0.2.1"), MAC: mustMAC("02:a6:00:00:00:01"), State: []string{"REACHABLE"}},
				{Addr: netip.MustParseAddr("2001:db8::2"), State: []string{"FAILED"}},
			},
		},
		{name: "not json", in: `dst 192.0.2.1`, wantErr: "neighbour list: invalid character"},
		{name: "bad dst", in: `[{"dst":"192.0.2.1"},{"dst":"192.0.2.300"}]`, wantErr: `neighbour entry 1: dst "192.0.2.300"`},
		{name: "bad lladdr", in: `[{"dst":"192.0.2.1","lladdr":"zz"}]`, wantErr: `neighbour entry 0: lladdr "zz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNeighbors([]byte(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNeighborHas(t *testing.T) {
	n := Neighbor{State: []string{"STALE", "ROUTER"}}
	assert.True(t, n.Has("STALE"))
	assert.False(t, n.Has("REACHABLE"))
}

func TestParseNetnsList(t *testing.T) {
	in := "agtest-12-1 (id: 3)\nagtest-12-2\n\n  other (id: 0)\n"
	assert.Equal(t, []string{"agtest-12-1", "agtest-12-2", "other"}, ParseNetnsList([]byte(in)))
	assert.Empty(t, ParseNetnsList(nil))
}

func TestOwnerPID(t *testing.T) {
	for _, tt := range []struct {
		name string
		pid  int
		ok   bool
	}{
		{"agtest-4242-7", 4242, true},
		{"agtest-4242", 0, false},
		{"agtest-x-1", 0, false},
		{"agtest--1-1", 0, false},
		{"other-4242-7", 0, false},
	} {
		pid, ok := ownerPID(tt.name)
		assert.Equal(t, tt.ok, ok, tt.name)
		assert.Equal(t, tt.pid, pid, tt.name)
	}
}

func TestParseIfindex(t *testing.T) {
	idx, err := parseIfindex([]byte(`[{"ifindex":7,"ifname":"eth0"}]`))
	require.NoError(t, err)
	assert.Equal(t, 7, idx)
	_, err = parseIfindex([]byte(`[]`))
	assert.ErrorContains(t, err, "want one link")
}

func TestUnavailableNamesTheCause(t *testing.T) {
	reason := unavailable()
	if reason == "" {
		t.Skip("namespaces are available here; the skip message is tested where they are not")
	}
	assert.Regexp(t, `root|ip command|network namespace`, reason)
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
