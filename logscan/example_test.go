package logscan_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/addrguard/addrguard/logscan"
)

const authLog = `Mar  2 09:00:01 web1 sshd[101]: Failed password for invalid user admin from 203.0.113.9 port 40001 ssh2
Mar  2 09:00:02 web1 sshd[102]: Failed password for invalid user oracle from 203.0.113.9 port 40002 ssh2
Mar  2 09:00:03 web1 sshd[103]: Failed password for root from 203.0.113.9 port 40003 ssh2
Mar  2 09:00:04 web1 sshd[104]: Invalid user test from 203.0.113.9 port 40004
Mar  2 09:00:05 web1 sshd[105]: Failed password for invalid user pi from 203.0.113.9 port 40005 ssh2
Mar  2 09:00:06 web1 sshd[106]: Failed password for alice from 198.51.100.4 port 50000 ssh2
`

func Example() {
	an := logscan.New(logscan.Options{
		Location:  time.UTC,
		Reference: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC),
	})
	err := an.Scan(strings.NewReader(authLog), func(f logscan.Finding) {
		fmt.Println(f.Rule, f.Key, f.Severity, f.Count, f.Lines)
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// brute-force 203.0.113.9 high 5 [1 2 3 4 5]
	// user-enumeration 203.0.113.9 high 5 [1 2 3 4 5]
}

func ExampleTopSources() {
	rows, err := logscan.TopSources(context.Background(), strings.NewReader(authLog), logscan.Options{Location: time.UTC}, 10)
	if err != nil {
		fmt.Println(err)
	}
	for _, r := range rows {
		fmt.Println(r)
	}
	// Output:
	//       5 203.0.113.9
	//       1 198.51.100.4
}

// Address conflicts carry the contested address and the MACs, to be joined
// with other sources by address.
func ExampleAnalyzer_Scan_conflict() {
	logs := `Mar  2 09:00:03 node1 NetworkManager[809]: <warn>  [1772442003.4400] device (eth0): IP address 192.0.2.20 cannot be configured because it is already in use in the network by host 02:00:5e:00:53:02
Mar  2 09:00:08 node2 arpwatch: flip flop 192.0.2.20 2:0:5e:0:53:4 (2:0:5e:0:53:2) eth0
`
	an := logscan.New(logscan.Options{Location: time.UTC, Reference: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)})
	_ = an.Scan(strings.NewReader(logs), func(f logscan.Finding) {
		fmt.Println(f.Rule, f.Addr, f.Severity, f.MACs, f.Lines)
	})
	// Output:
	// address-conflict 192.0.2.20 critical [02:00:5e:00:53:02 02:00:5e:00:53:04] [1 2]
}

// Events show how each line was read; in aggressive mode pre-auth
// disconnects count as failures, as in fail2ban's sshd filter.
func ExampleAnalyzer_ScanContext_events() {
	logs := `Mar  2 09:00:00 web1 sshd[7]: Connection closed by authenticating user root 203.0.113.9 port 40000 [preauth]
Mar  2 09:00:01 web1 sshd[8]: Accepted publickey for deploy from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:abc
`
	for _, mode := range []logscan.Mode{logscan.ModeNormal, logscan.ModeAggressive} {
		an := logscan.New(logscan.Options{Mode: mode, Location: time.UTC})
		_ = an.ScanContext(context.Background(), strings.NewReader(logs), logscan.Handler{
			Event: func(e logscan.Event) { fmt.Println(mode, e.Line, e.Kind, e.Role, e.Src, e.User) },
		})
	}
	// Output:
	// normal 1 closed-preauth helper 203.0.113.9 root
	// normal 2 accepted success 198.51.100.4 deploy
	// aggressive 1 closed-preauth failure 203.0.113.9 root
	// aggressive 2 accepted success 198.51.100.4 deploy
}

// Trusted networks are never reported; high-risk sources are raised one
// severity.
func ExampleOptions_allow() {
	var allow, risky netipx.IPSetBuilder
	allow.AddPrefix(netip.MustParsePrefix("198.51.100.0/24"))
	risky.AddPrefix(netip.MustParsePrefix("203.0.113.0/24"))
	allowSet, _ := allow.IPSet()
	riskySet, _ := risky.IPSet()
	an := logscan.New(logscan.Options{
		Location: time.UTC,
		Allow:    allowSet,
		HighRisk: riskySet,
		Rules:    logscan.Rules{Disable: []logscan.Rule{logscan.RuleBurst, logscan.RuleUserEnumeration}},
	})
	_ = an.Scan(strings.NewReader(authLog), func(f logscan.Finding) {
		fmt.Println(f.Rule, f.Key, f.Severity)
	})
	// Output:
	// brute-force 203.0.113.9 critical
}
