package logscan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIndexAgainstMap runs random puts and deletes against a Go map; a
// weak hash forces long clusters so backward-shift deletion is exercised.
func TestIndexAgainstMap(t *testing.T) {
	for _, hash := range []struct {
		name string
		f    func(srcKey) uint64
	}{{"real", hashSrcKey}, {"clustered", func(k srcKey) uint64 { return hashSrcKey(k) & 7 }}} {
		t.Run(hash.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			x := newIndex[srcKey, int](hash.f)
			ref := map[srcKey]int{}
			key := func() srcKey {
				n := rng.IntN(300)
				if n%10 == 0 {
					return srcKey{name: fmt.Sprintf("host%d.example", n)}
				}
				return srcKey{addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(n)})}
			}
			for i := range 20000 {
				k := key()
				switch rng.IntN(4) {
				case 0:
					x.put(k, i)
					ref[k] = i
				case 1:
					if p := x.ref(k); p != nil {
						*p += 7
						ref[k] += 7
					} else {
						_, had := ref[k]
						require.False(t, had, "ref lost %v", k)
					}
				case 2, 3:
					x.del(k)
					delete(ref, k)
				}
				if i%500 == 0 {
					require.Equal(t, len(ref), x.len())
					for rk, rv := range ref {
						v, ok := x.get(rk)
						require.True(t, ok, "%v lost", rk)
						require.Equal(t, rv, v)
					}
					seen := 0
					x.each(func(k srcKey, v int) {
						seen++
						assert.Equal(t, ref[k], v)
					})
					require.Equal(t, len(ref), seen)
				}
			}
		})
	}
}

func TestParseIPv4MatchesNetip(t *testing.T) {
	for _, s := range []string{"192.0.2.1", "0.0.0.0", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1..3.4", ".1.2.3", "1.2.3.", "192.030.0.6", "1.2.3.4a", ""} {
		want, err := netip.ParseAddr(s)
		got, ok := parseIPv4(s)
		assert.Equal(t, err == nil, ok, s)
		if ok {
			assert.Equal(t, want, got, s)
		}
	}
}
