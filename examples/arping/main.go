// Command arping asks the link whether anyone holds addresses, as iputils
// arping -D does, but for many addresses at once over one raw socket, naming
// every MAC that answered. It also sends gratuitous ARP announcements and
// watches the link for address conflicts.
//
//	arping -I IFACE [-timing rfc|fast] [-timeout DUR] [-first] [-json] ADDR|PREFIX...
//	    probes every address (a prefix means each host address in it) at once
//	    text: "ADDR free" | "ADDR in use by MAC[,MAC...]" | "ADDR unknown: REASON"
//	    -json: one object per line {"addr","status":"free|in_use|unknown","holders":[...],"reason"}
//	arping -I IFACE -announce ADDR        gratuitous ARP announcements
//	arping -I IFACE -monitor [-duration DUR] [-json]   passive conflict monitor
//
// Exit status: 0 all free, 1 at least one in use (or a conflict seen by
// -monitor), 2 error (including any address left unknown while none was in
// use). It needs CAP_NET_RAW (root). IPv6 addresses get RFC 4862 duplicate
// address detection instead of ARP.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
)

const (
	exitFree  = 0
	exitInUse = 1
	exitError = 2
)

// opener opens a Prober on the named interface and returns the addresses
// the interface holds (for -monitor).
type opener func(ifname string, opts arpcheck.Options) (*arpcheck.Prober, []netip.Addr, error)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, openInterface))
}

func openInterface(ifname string, opts arpcheck.Options) (*arpcheck.Prober, []netip.Addr, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, nil, err
	}
	var mine []netip.Addr
	if addrs, err := ifi.Addrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					mine = append(mine, ip.Unmap())
				}
			}
		}
	}
	p, err := arpcheck.New(ifi, opts)
	return p, mine, err
}

type config struct {
	iface    string
	timing   string
	timeout  time.Duration
	first    bool
	json     bool
	announce string
	monitor  bool
	duration time.Duration
	targets  []string
}

func parseArgs(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("arping", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.iface, "I", "", "interface to probe on (required)")
	fs.StringVar(&c.timing, "timing", "rfc", "probe schedule: rfc (RFC 5227, 4-7 s) or fast (200 ms)")
	fs.DurationVar(&c.timeout, "timeout", 0, "give up after this long; addresses not decided by then are unknown")
	fs.BoolVar(&c.first, "first", false, "stop at the first address found in use")
	fs.BoolVar(&c.json, "json", false, "one JSON object per line")
	fs.StringVar(&c.announce, "announce", "", "send gratuitous ARP announcements for this address")
	fs.BoolVar(&c.monitor, "monitor", false, "watch the link passively for conflicts")
	fs.DurationVar(&c.duration, "duration", 0, "how long -monitor watches (default: until interrupted)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: arping -I IFACE [-timing rfc|fast] [-timeout DUR] [-first] [-json] ADDR|PREFIX...")
		fmt.Fprintln(stderr, "       arping -I IFACE -announce ADDR")
		fmt.Fprintln(stderr, "       arping -I IFACE -monitor [-duration DUR] [-json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.targets = fs.Args()
	switch {
	case c.iface == "":
		return c, errors.New("-I IFACE is required")
	case c.timing != "rfc" && c.timing != "fast":
		return c, fmt.Errorf("-timing %q: want rfc or fast", c.timing)
	case c.monitor && (c.announce != "" || len(c.targets) > 0):
		return c, errors.New("-monitor takes no addresses and no -announce")
	case c.announce != "" && len(c.targets) > 0:
		return c, errors.New("-announce takes one address, given as its value")
	case !c.monitor && c.announce == "" && len(c.targets) == 0:
		return c, errors.New("no address or prefix to probe")
	case c.timeout < 0 || c.duration < 0:
		return c, errors.New("-timeout and -duration must not be negative")
	}
	return c, nil
}

// parseTargets turns the arguments into one address sequence, naming the bad
// argument by position.
func parseTargets(args []string) (func(yield func(netip.Addr) bool), error) {
	var addrs []netip.Addr
	var prefixes []netip.Prefix
	for i, a := range args {
		if strings.Contains(a, "/") {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("argument %d (%q): %w", i+1, a, err)
			}
			prefixes = append(prefixes, p)
			continue
		}
		addr, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d (%q): %w", i+1, a, err)
		}
		addrs = append(addrs, addr)
	}
	return func(yield func(netip.Addr) bool) {
		for _, a := range addrs {
			if !yield(a) {
				return
			}
		}
		for _, p := range prefixes {
			for a := range arpcheck.Hosts(p) {
				if !yield(a) {
					return
				}
			}
		}
	}, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, open opener) int {
	c, err := parseArgs(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitFree
		}
		fmt.Fprintln(stderr, "arping:", err)
		return exitError
	}
	timing := arpcheck.RFC
	if c.timing == "fast" {
		timing = arpcheck.Fast
	}
	var targets func(yield func(netip.Addr) bool)
	var announce netip.Addr
	if c.announce != "" {
		if announce, err = netip.ParseAddr(c.announce); err != nil {
			fmt.Fprintf(stderr, "arping: -announce %q: %v\n", c.announce, err)
			return exitError
		}
	} else if !c.monitor {
		if targets, err = parseTargets(c.targets); err != nil {
			fmt.Fprintln(stderr, "arping:", err)
			return exitError
		}
	}
	p, mine, err := open(c.iface, arpcheck.Options{Timing: timing})
	if err != nil {
		fmt.Fprintf(stderr, "arping: %s: %v\n", c.iface, err)
		return exitError
	}
	defer p.Close()

	switch {
	case c.announce != "":
		if err := p.Announce(ctx, announce); err != nil {
			fmt.Fprintln(stderr, "arping:", err)
			return exitError
		}
		fmt.Fprintf(stdout, "%s announced %d times from %s\n", announce, timing.AnnounceNum, p.MAC())
		return exitFree
	case c.monitor:
		return monitor(ctx, c, p, mine, stdout, stderr)
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	enc := json.NewEncoder(stdout)
	var inUse, unknown int
	err = p.ProbeAll(ctx, targets, arpcheck.BatchOptions{StopOnConflict: c.first}, func(r arpcheck.Result) {
		switch r.Status {
		case arpcheck.InUse:
			inUse++
		case arpcheck.Unknown:
			unknown++
		}
		if c.json {
			_ = enc.Encode(r)
			return
		}
		fmt.Fprintln(stdout, r)
	})
	switch {
	case inUse > 0:
		if err != nil {
			fmt.Fprintln(stderr, "arping:", err)
		}
		return exitInUse
	case err != nil:
		fmt.Fprintln(stderr, "arping:", err)
		return exitError
	case unknown > 0:
		return exitError
	}
	return exitFree
}

func monitor(ctx context.Context, c config, p *arpcheck.Prober, mine []netip.Addr, stdout, stderr io.Writer) int {
	if c.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.duration)
		defer cancel()
	}
	enc := json.NewEncoder(stdout)
	seen := 0
	err := p.Monitor(ctx, arpcheck.MonitorOptions{Mine: mine}, func(e arpcheck.Event) {
		seen++
		if c.json {
			_ = enc.Encode(e)
			return
		}
		fmt.Fprintln(stdout, e.At.Format(time.RFC3339Nano), e)
	})
	if err != nil {
		fmt.Fprintln(stderr, "arping:", err)
		return exitError
	}
	if seen > 0 {
		return exitInUse
	}
	return exitFree
}
