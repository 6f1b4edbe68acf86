package ipam

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go4.org/netipx"
)

func TestFindOverlaps(t *testing.T) {
	specs := []PoolSpec{
		{Name: "us-west", Cluster: "c1", Subnet: prefix("10.100.0.0/16"), Gateway: addr("10.100.0.1")},
		{Name: "us-west", Cluster: "c2", Subnet: prefix("10.100.128.0/17"), RangeStart: addr("10.100.200.0")},
		{Name: "split-lo", Subnet: prefix("192.0.2.0/24"), RangeEnd: addr("192.0.2.99")},
		{Name: "split-hi", Subnet: prefix("192.0.2.0/24"), RangeStart: addr("192.0.2.100")},
		{Name: "v6-a", Subnet: prefix("2001:db8::/64"), Reserved: []netipx.IPRange{mustRange(t, "2001:db8::8000:0:0:0/65")}},
		{Name: "v6-b", Subnet: prefix("2001:db8::/63")},
		{Name: "alone", Subnet: prefix("198.51.100.0/24")},
		{Name: "multi", Subnet: prefix("10.200.0.0/24"), Extra: []Range{{Subnet: prefix("10.201.0.0/24")}}},
		{Name: "multi-b", Subnet: prefix("10.200.0.128/25"), Extra: []Range{{Subnet: prefix("10.201.0.0/25")}}},
	}
	ovs, err := OverlapsOf(specs...)
	require.NoError(t, err)
	type row struct{ a, ac, b, bc, kind, ranges, size string }
	var got []row
	for _, o := range ovs {
		got = append(got, row{o.A.Name, o.A.Cluster, o.B.Name, o.B.Cluster, string(o.Kind), o.RangeString(), o.Size.String()})
	}
	want := []row{
		{"us-west", "c1", "us-west", "c2", "subnet", "10.100.128.0/17", "32768"},
		{"us-west", "c1", "us-west", "c2", "allocatable", "10.100.200.0-10.100.255.254", "14335"},
		{"split-lo", "", "split-hi", "", "subnet", "192.0.2.0/24", "256"},
		{"v6-a", "", "v6-b", "", "subnet", "2001:db8::/64", "18446744073709551616"},
		{"v6-a", "", "v6-b", "", "allocatable", "2001:db8::1-2001:db8::7fff:ffff:ffff:ffff", "9223372036854775807"},
		{"multi", "", "multi-b", "", "subnet", "10.200.0.128/25,10.201.0.0/25", "256"},
		{"multi", "", "multi-b", "", "allocatable", "10.200.0.129-10.200.0.254,10.201.0.1-10.201.0.126", "252"},
	}
	assert.Equal(t, want, got)
	b, err := json.Marshal(ovs[0])
	require.NoError(t, err)
	assert.JSONEq(t, `{"a":{"name":"us-west","cluster":"c1"},"b":{"name":"us-west","cluster":"c2"},"kind":"subnet","ranges":["10.100.128.0-10.100.255.255"],"size":"32768"}`, string(b))
	assert.Empty(t, FindOverlaps())
}

// The sweep must agree with comparing every pair.
func TestFindOverlapsMatchesPairwise(t *testing.T) {
	r := &seq{x: 7}
	var pools []*Pool
	for i := 0; i < 300; i++ {
		bits := 20 + int(r.Uint64()%9)
		base := uint64(10<<24) | (r.Uint64()%(1<<12))<<12
		p := prefixFromCount(base, bits)
		pl, err := Compile(PoolSpec{Name: "p" + CountOf(uint64(i)).String(), Subnet: p})
		require.NoError(t, err)
		pools = append(pools, pl)
	}
	ovs := FindOverlaps(pools...)
	n := 0
	for i := range pools {
		for j := i + 1; j < len(pools); j++ {
			if pools[i].subnets[0].Overlaps(pools[j].subnets[0]) {
				n++
			}
		}
	}
	subnetPairs := 0
	for _, o := range ovs {
		if o.Kind == SubnetOverlap {
			subnetPairs++
		}
	}
	assert.Equal(t, n, subnetPairs)
	assert.Greater(t, n, 10)
}
