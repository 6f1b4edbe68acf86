package logscan

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestTopTable: IPv4 sources, IPv6 sources and names share one bound and
// one order (count, then addresses before names, then address order).
func TestTopTable(t *testing.T) {
	v4 := func(s string) host { return host{Addr: netip.MustParseAddr(s), Text: s} }
	name := func(s string) host { return host{Text: s} }
	tests := []struct {
		name   string
		max    int
		adds   []host
		want   []string
		others int64
	}{
		{"mixed", 10, []host{v4("192.0.2.2"), name("b.example"), v4("2001:db8::1"), v4("192.0.2.2"), name("a.example"), v4("2001:db8::1"), v4("198.51.100.1"), v4("192.0.2.10")},
			[]string{"2 192.0.2.2", "2 2001:db8::1", "1 192.0.2.10", "1 198.51.100.1", "1 a.example", "1 b.example"}, 0},
		{"bound across kinds", 2, []host{v4("192.0.2.1"), name("h.example"), v4("2001:db8::1"), v4("192.0.2.2"), v4("192.0.2.1"), name("h.example")},
			[]string{"2 192.0.2.1", "2 h.example"}, 2},
		{"bound of IPv6 and names", 2, []host{v4("2001:db8::1"), name("h.example"), v4("192.0.2.1"), v4("2001:db8::1")},
			[]string{"2 2001:db8::1", "1 h.example"}, 1},
		{"invalid hosts are not counted", 4, []host{{}, v4("192.0.2.1")}, []string{"1 192.0.2.1"}, 0},
		{"empty", 4, nil, nil, 0},
	}
	for _, tc := range tests {
		tt := topTable{max: tc.max}
		for _, h := range tc.adds {
			tt.add(h)
		}
		var got []string
		for _, r := range tt.rows(0) {
			got = append(got, strings.TrimSpace(r.String()))
			if r.Src.IsValid() {
				assert.Equal(t, r.Src.String(), r.SrcText, tc.name)
			}
		}
		assert.Equal(t, tc.want, got, tc.name)
		assert.Equal(t, tc.others, tt.other, tc.name)
		if len(tc.want) > 1 {
			assert.Len(t, tt.rows(1), 1, tc.name)
		}
	}
}
