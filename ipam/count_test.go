package ipam

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCountStringParse(t *testing.T) {
	tests := []struct {
		c    Count
		want string
	}{
		{Count{}, "0"},
		{CountOf(42), "42"},
		{CountOf(math.MaxUint64), "18446744073709551615"},
		{Count{hi: 1}, "18446744073709551616"},
		{maxCount, "340282366920938463463374607431768211455"},
		{Count{hi: 1 << 15}, "604462909807314587353088"}, // 2^79
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.c.String())
		p, err := ParseCount(tt.want)
		require.NoError(t, err)
		assert.Equal(t, tt.c, p)
		b, err := json.Marshal(tt.c)
		require.NoError(t, err)
		assert.Equal(t, `"`+tt.want+`"`, string(b))
		var back Count
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, tt.c, back)
	}
	for _, bad := range []string{"", "-1", "1e3", "340282366920938463463374607431768211456", "99999999999999999999999999999999999999999", "12a"} {
		_, err := ParseCount(bad)
		assert.ErrorIs(t, err, ErrCountSyntax, bad)
	}
}

func TestCountArithmetic(t *testing.T) {
	a := CountOf(math.MaxUint64)
	b := a.Add(CountOf(1))
	assert.Equal(t, Count{hi: 1}, b)
	assert.Equal(t, a, b.Sub(CountOf(1)))
	assert.Equal(t, 1, b.Cmp(a))
	assert.Equal(t, -1, a.Cmp(b))
	assert.Equal(t, 0, a.Cmp(a))
	assert.Equal(t, Count{hi: 1 << 10}, b.lsh(10))
	assert.Equal(t, CountOf(1<<54), b.rsh(10))
	_, ok := b.Uint64()
	assert.False(t, ok)
	v, ok := a.Uint64()
	assert.True(t, ok)
	assert.Equal(t, uint64(math.MaxUint64), v)
	assert.InDelta(t, 18446744073709551616.0, b.Float64(), 1)
}

func TestAddrCountRoundTrip(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "10.1.2.3", "255.255.255.255", "::", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		a := addr(s)
		assert.Equal(t, a, countToAddr(addrToCount(a), a.Is4()), s)
	}
}
