package ipam

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go4.org/netipx"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in       string
		from, to string
		err      string
	}{
		{in: "10.0.0.5", from: "10.0.0.5", to: "10.0.0.5"},
		{in: " 10.100.0.100-10.100.0.110 ", from: "10.100.0.100", to: "10.100.0.110"},
		{in: "10.100.0.100 - 10.100.0.110", from: "10.100.0.100", to: "10.100.0.110"},
		{in: "10.0.0.0/28", from: "10.0.0.0", to: "10.0.0.15"},
		{in: "2001:db8::/126", from: "2001:db8::", to: "2001:db8::3"},
		{in: "::ffff:10.0.0.1", from: "10.0.0.1", to: "10.0.0.1"},
		{in: "::ffff:10.0.0.0/120", from: "10.0.0.0", to: "10.0.0.255"},
		{in: "::ffff:10.0.0.1-10.0.0.3", from: "10.0.0.1", to: "10.0.0.3"},
		{in: "", err: "empty"},
		{in: "10.0.0.9-10.0.0.1", err: "reversed"},
		{in: "10.0.0.1-2001:db8::1", err: "mixed address families"},
		{in: "10.0.0.1/24", err: "not canonical: the CIDR is 10.0.0.0/24"},
		{in: "10.0.0.300", err: "not an address"},
		{in: "10.0.0.1-", err: "end"},
		{in: "-10.0.0.1", err: "start"},
		{in: "fe80::1%eth0", err: "zones"},
		{in: "10.0.0.0/33", err: "not a CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseRange(tt.in)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.ErrorIs(t, err, ErrSyntax)
				assert.Contains(t, err.Error(), tt.in)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, netipx.IPRangeFrom(addr(tt.from), addr(tt.to)), r)
		})
	}
}

func TestCompileCounts(t *testing.T) {
	tests := []struct {
		name             string
		spec             PoolSpec
		total, allocable string
		first, last      string
	}{
		{"v4 /24 with gateway", PoolSpec{Subnet: prefix("10.0.0.0/24"), Gateway: addr("10.0.0.1")}, "256", "253", "10.0.0.2", "10.0.0.254"},
		{"v4 /30", PoolSpec{Subnet: prefix("192.0.2.0/30")}, "4", "2", "192.0.2.1", "192.0.2.2"},
		{"v4 /31 RFC 3021", PoolSpec{Subnet: prefix("192.0.2.0/31")}, "2", "2", "192.0.2.0", "192.0.2.1"},
		{"v4 /32", PoolSpec{Subnet: prefix("192.0.2.7/32")}, "1", "1", "192.0.2.7", "192.0.2.7"},
		{"v6 /126 skips subnet-router anycast", PoolSpec{Subnet: prefix("2001:db8::/126")}, "4", "3", "2001:db8::1", "2001:db8::3"},
		{"v6 /127 RFC 6164", PoolSpec{Subnet: prefix("2001:db8::/127")}, "2", "2", "2001:db8::", "2001:db8::1"},
		{"v6 /128", PoolSpec{Subnet: prefix("2001:db8::5/128")}, "1", "1", "2001:db8::5", "2001:db8::5"},
		{"v6 /64 exact", PoolSpec{Subnet: prefix("2001:db8::/64")}, "18446744073709551616", "18446744073709551615", "2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff"},
		{"v6 /48 above 2^64", PoolSpec{Subnet: prefix("2001:db8::/48"), Gateway: addr("2001:db8::1")}, "1208925819614629174706176", "1208925819614629174706174", "2001:db8::2", "2001:db8:0:ffff:ffff:ffff:ffff:ffff"},
		{"range and reserved", PoolSpec{Subnet: prefix("10.100.0.0/16"), Gateway: addr("10.100.0.1"), RangeStart: addr("10.100.0.10"), RangeEnd: addr("10.100.0.200"),
			Reserved: []netipx.IPRange{netipx.IPRangeFrom(addr("10.100.0.100"), addr("10.100.0.110")), netipx.IPRangeFrom(addr("10.100.0.10"), addr("10.100.0.10"))}},
			"65536", "179", "10.100.0.11", "10.100.0.200"},
		{"extra ranges", PoolSpec{Subnet: prefix("10.0.0.0/30"), Extra: []Range{{Subnet: prefix("10.0.1.0/30"), Gateway: addr("10.0.1.1")}}}, "8", "3", "10.0.0.1", "10.0.1.2"},
		{"mapped inputs unmapped", PoolSpec{Subnet: prefix("::ffff:10.0.0.0/120"), Gateway: addr("::ffff:10.0.0.1")}, "256", "253", "10.0.0.2", "10.0.0.254"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name = "p"
			p, err := Compile(tt.spec)
			require.NoError(t, err)
			assert.Equal(t, tt.total, p.Total().String())
			assert.Equal(t, tt.allocable, p.Size().String())
			assert.Equal(t, addr(tt.first), p.addr(Count{}))
			assert.Equal(t, addr(tt.last), p.addr(p.Size().Sub(CountOf(1))))
			o, ok := p.ordinal(addr(tt.last))
			assert.True(t, ok)
			assert.Equal(t, p.Size().Sub(CountOf(1)), o)
			assert.Equal(t, Sequential, p.Spec().Strategy)
			assert.Equal(t, DefaultWarn, p.Spec().Warn)
		})
	}
}

func TestCompileErrors(t *testing.T) {
	base := func() PoolSpec {
		return PoolSpec{Name: "p", Subnet: prefix("10.0.0.0/24"), Gateway: addr("10.0.0.1")}
	}
	tests := []struct {
		name   string
		mod    func(*PoolSpec)
		field  string
		substr string
	}{
		{"missing name", func(s *PoolSpec) { s.Name = "" }, "name", "missing"},
		{"bad name", func(s *PoolSpec) { s.Name = "Pool/1" }, "name", "not allowed"},
		{"missing subnet", func(s *PoolSpec) { s.Subnet = netipPrefixZero() }, "subnet", "missing"},
		{"non-canonical subnet", func(s *PoolSpec) { s.Subnet = prefix("10.0.0.1/24") }, "subnet", "not canonical: the subnet is 10.0.0.0/24"},
		{"gateway outside", func(s *PoolSpec) { s.Gateway = addr("10.0.1.1") }, "gateway", "outside the subnet 10.0.0.0/24"},
		{"gateway family", func(s *PoolSpec) { s.Gateway = addr("2001:db8::1") }, "gateway", "mixed address families"},
		{"rangeStart after rangeEnd", func(s *PoolSpec) { s.RangeStart, s.RangeEnd = addr("10.0.0.50"), addr("10.0.0.40") }, "rangeStart", "after rangeEnd 10.0.0.40"},
		{"range outside", func(s *PoolSpec) { s.RangeEnd = addr("10.0.1.40") }, "rangeEnd", "outside the subnet"},
		{"reserved outside", func(s *PoolSpec) {
			s.Reserved = []netipx.IPRange{netipx.IPRangeFrom(addr("10.0.0.250"), addr("10.0.1.5"))}
		}, "reserved[0]", "outside the pool's subnets"},
		{"reserved reversed", func(s *PoolSpec) {
			s.Reserved = []netipx.IPRange{netipx.IPRangeFrom(addr("10.0.0.9"), addr("10.0.0.1"))}
		}, "reserved[0]", "not a valid range"},
		{"reserved family", func(s *PoolSpec) {
			s.Reserved = []netipx.IPRange{netipx.IPRangeFrom(addr("2001:db8::1"), addr("2001:db8::1"))}
		}, "reserved[0]", "mixed address families"},
		{"extra family", func(s *PoolSpec) { s.Extra = []Range{{Subnet: prefix("2001:db8::/64")}} }, "extra[0].subnet", "mixed address families"},
		{"extra overlaps", func(s *PoolSpec) { s.Extra = []Range{{Subnet: prefix("10.0.0.128/25")}} }, "extra[0].subnet", "overlaps"},
		{"v6 /0", func(s *PoolSpec) { s.Subnet, s.Gateway = prefix("::/0"), addr("::1") }, "subnet", "too large"},
		{"strategy", func(s *PoolSpec) { s.Strategy = "lifo" }, "strategy", "unknown strategy"},
		{"cooldown", func(s *PoolSpec) { s.Cooldown = -1 }, "cooldown", "negative"},
		{"warn above critical", func(s *PoolSpec) { s.Warn, s.Critical = 0.9, 0.8 }, "warn", "above critical"},
		{"critical > 1", func(s *PoolSpec) { s.Critical = 1.5 }, "critical", "(0, 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.mod(&s)
			_, err := Compile(s)
			require.Error(t, err)
			var se *SpecError
			require.True(t, errors.As(err, &se), "%T", err)
			assert.Equal(t, tt.field, se.Field)
			assert.Contains(t, err.Error(), tt.substr)
			assert.ErrorIs(t, err, ErrInvalidSpec)
		})
	}
}

func TestPoolNameAndOwnerChecks(t *testing.T) {
	for _, ok := range []string{"a", "pool-us-west", "p.1_x", "0"} {
		assert.NoError(t, checkPoolName(ok), ok)
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a/b", "a b", string(make([]byte, 254))} {
		assert.Error(t, checkPoolName(bad), bad)
	}
	assert.Error(t, checkOwner(""))
	assert.Error(t, checkOwner(string(make([]byte, 1025))))
	assert.NoError(t, checkOwner("pod/ns/x y"))
}
