package testnet

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParseNeighbors feeds arbitrary bytes to the ip -j neigh parser. It must
// never panic, must return either entries or an error, and whatever it accepts
// must survive a round trip: written back in ip's JSON form and parsed again, the
// same entries come out.
func FuzzParseNeighbors(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"dst":"192.0.2.1","dev":"eth0","lladdr":"02:a6:00:00:00:01","state":["REACHABLE"]}]`))
	f.Add([]byte(`[{"dst":"fe80::1%eth0","lladdr":"02:a6:00:00:00:02","state":["STALE","ROUTER"]}]`))
	f.Add([]byte(`[{"dst":"192.0.2.9","state":["FAILED"]}]`))
	f.Add([]byte(`[{"dst":"192.0.2.9","lladdr":"00:00:00:00:00:00:00:01"}]`))
	f.Add([]byte(`[{"dst":null}]`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		neigh, err := ParseNeighbors(data)
		if err != nil {
			require.Nil(t, neigh)
			return
		}
		type entry struct {
			Dst    string   `json:"dst"`
			LLAddr string   `json:"lladdr,omitempty"`
			State  []string `json:"state"`
		}
		back := make([]entry, len(neigh))
		for i, n := range neigh {
			require.True(t, n.Addr.IsValid(), "entry %d", i)
			back[i] = entry{Dst: n.Addr.String(), State: n.State}
			if n.MAC != nil {
				back[i].LLAddr = n.MAC.String()
			}
		}
		again, err := json.Marshal(back)
		require.NoError(t, err)
		neigh2, err := ParseNeighbors(again)
		require.NoError(t, err, "re-parsing %s", again)
		require.Equal(t, neigh, neigh2)
	})
}
