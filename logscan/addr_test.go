package logscan

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseHost(t *testing.T) {
	tests := []struct {
		in   string
		addr string // "" when the host is only text
		text string
		n    int
		ok   bool
	}{
		{"192.0.2.1 port 22", "192.0.2.1", "192.0.2.1", 9, true},
		{"::ffff:192.0.2.1", "192.0.2.1", "::ffff:192.0.2.1", 16, true},
		{"fe80::1%eth0 port 5", "fe80::1", "fe80::1%eth0", 12, true},
		{"[2001:db8::1]:22", "2001:db8::1", "2001:db8::1", 13, true},
		{"2001:db8::1: 11: Bye", "2001:db8::1", "2001:db8::1", 11, true},
		{"198.51.100.34: 11: Bye", "198.51.100.34", "198.51.100.34", 13, true},
		{"192.030.0.6", "", "192.030.0.6", 11, true},
		{"example.com via 1.2.3.4", "", "example.com", 11, true},
		{"_U2FsdGVkX1_", "", "_U2FsdGVkX1_", 12, true},
		{"", "", "", 0, false},
		{" 1.2.3.4", "", "", 0, false},
		{"host- x", "", "", 0, false},
		{"[2001:db8::1", "", "", 0, false},
		{"::zz", "", "", 0, false},
		{"2001:db8::: 11", "2001:db8::", "2001:db8::", 10, true},
		{"192.0.2.1:: x", "192.0.2.1", "192.0.2.1", 9, true},
		{":::", "::", "::", 2, true},
		{"::::::::::", "::", "::", 2, true},
		{"fe80::1%eth0: x", "fe80::1", "fe80::1%eth0:", 13, true},
	}
	for _, tt := range tests {
		h, n, ok := parseHost(tt.in)
		if assert.Equal(t, tt.ok, ok, tt.in) && ok {
			if tt.addr == "" {
				assert.False(t, h.Addr.IsValid(), tt.in)
			} else {
				assert.Equal(t, tt.addr, h.Addr.String(), tt.in)
			}
			assert.Equal(t, tt.text, h.Text, tt.in)
			assert.Equal(t, tt.n, n, tt.in)
		}
	}
}

func TestParseMAC(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		n    int
	}{
		{"02:00:5e:00:53:01 x", "02:00:5e:00:53:01", 17},
		{"2:0:5e:0:53:4)", "02:00:5e:00:53:04", 13},
		{"02-00-5E-00-53-0A!", "02:00:5e:00:53:0a", 17},
		{"02:00:5e:00:53", "", 0},
		{"02:00:5e:00:53:01:02:03:04", "02:00:5e:00:53:01:02:03", 0}, // 9 groups: not a MAC
		{"0200.5e00.5301", "", 0},
	} {
		m, n, ok := parseMAC(tt.in)
		if tt.want == "" || tt.n == 0 {
			assert.False(t, ok, tt.in)
			continue
		}
		want, _ := net.ParseMAC(tt.want)
		assert.True(t, ok, tt.in)
		assert.Equal(t, want, m, tt.in)
		assert.Equal(t, tt.n, n, tt.in)
	}
}
