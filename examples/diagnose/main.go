// Command diagnose looks at what you have (pool manifests and IPAM stores,
// packet captures, system logs, replicated records, and optionally the live
// link) and says what is wrong, how sure it is, and what to do. It runs the
// whole addrguard toolkit and groups what the packages find by conflict, not by
// tool: an address claimed by two MACs in a capture, a "duplicate address" log
// line for it, the overlapping range of two clusters' pools that holds it, and
// the replicated lease record both control planes wrote for it are one
// incident.
//
//	diagnose                       run on the bundled samples (no root, no network)
//	diagnose [-pool MANIFEST]... [-store FILE]... [-pcap FILE]... [-log FILE]...
//	         [-record FILE]... [-policy lww|priority-lww|delete-wins|add-wins|manual]
//	         [-I IFACE [-probe ADDR|PREFIX]... [-timing rfc|fast]] [-tz ZONE]
//	         [-json] [-html FILE] [-webhook URL [-webhook-timeout DUR] [-webhook-retries N]]
//
// Inputs, each flag repeatable:
//
//	-pool     IPPool YAML/JSON or CNI host-local configuration (package ipam)
//	-store    an ipam bbolt store as examples/ipamctl writes it: pools, leases, utilization
//	-pcap     pcap or pcapng capture (package pcapscan)
//	-log      syslog, RFC 5424 or journald JSON log (package logscan)
//	-record   a replicated record: {"key": K, "replicas": {NODE: RECORD, ...}},
//	          each RECORD in package reconcile's JSON form
//	-I/-probe probe addresses live with RFC 5227 (package arpcheck; needs root
//	          or CAP_NET_RAW); without -probe, the addresses of the incidents found
//
// The report lists incidents, most severe first: severity, confidence (with the
// reasons), evidence (frame numbers, log lines, pool names and the overlapping
// range, record keys, probe answers) and the playbook's recommended actions.
// -json prints it as one JSON document; -html FILE also writes a self-contained
// HTML report (inline SVG: one timeline per conflicted address with a lane per
// MAC, and a utilization bar per pool), no scripts, no external assets.
// -webhook URL posts every critical incident as JSON (bounded retries with
// backoff, a timeout per attempt) and logs warnings to stderr.
//
// Progress goes to stderr for inputs over 16 MB when stderr is a terminal.
// Exit status: 0 no incident, 1 incidents, 2 error (bad usage or input: the
// message names the file; a webhook that could not be reached).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // -tz works on machines without a zone database

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/reconcile"
)

const (
	exitClean     = 0
	exitIncidents = 1
	exitError     = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, env{open: openProber})
	stop()
	os.Exit(code)
}

// env holds what the tests replace: how a prober is opened and the webhook's
// backoff.
type env struct {
	open    opener
	backoff time.Duration // first retry delay of the webhook; 500ms when zero
}

// list collects a repeatable flag.
type list []string

// String implements flag.Value.
func (l *list) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value.
func (l *list) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)
	return nil
}

// config is the parsed command line.
type config struct {
	pools, stores, pcaps, logs, records, probes list

	policy         string
	iface, timing  string
	tz             string
	json           bool
	html           string
	webhook        string
	webhookTimeout time.Duration
	webhookRetries int

	loc     *time.Location
	targets []netip.Prefix // -probe values (a single address is a /32 or /128)
	samples bool           // no input given: the bundled samples
}

const usageLine = `usage: diagnose [-pool MANIFEST]... [-store FILE]... [-pcap FILE]... [-log FILE]... [-record FILE]...
                [-policy NAME] [-I IFACE [-probe ADDR|PREFIX]... [-timing rfc|fast]] [-tz ZONE]
                [-json] [-html FILE] [-webhook URL [-webhook-timeout DUR] [-webhook-retries N]]
       diagnose            (no input: the bundled samples)`

// usageError is bad usage or input: exit status 2.
type usageError struct{ msg string }

// Error implements error.
func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func parseArgs(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("diagnose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(&c.pools, "pool", "pool manifest: IPPool YAML/JSON or CNI host-local config (repeatable)")
	fs.Var(&c.stores, "store", "ipam bbolt store, as examples/ipamctl writes it (repeatable)")
	fs.Var(&c.pcaps, "pcap", "pcap or pcapng capture (repeatable)")
	fs.Var(&c.logs, "log", "system log: syslog, RFC 5424 or journald JSON (repeatable)")
	fs.Var(&c.records, "record", `replicated record {"key": K, "replicas": {NODE: RECORD}} (repeatable)`)
	fs.StringVar(&c.policy, "policy", "lww", "policy for data conflicts: lww, priority-lww, delete-wins, add-wins or manual")
	fs.StringVar(&c.iface, "I", "", "probe live on this interface (needs root or CAP_NET_RAW)")
	fs.Var(&c.probes, "probe", "with -I: address or prefix to probe (repeatable; default: the incidents' addresses)")
	fs.StringVar(&c.timing, "timing", "rfc", "with -I: probe schedule, rfc (RFC 5227, 4-7 s) or fast (200 ms)")
	fs.StringVar(&c.tz, "tz", "", "zone of log times without offset and of working hours (IANA name; default local, UTC for the samples)")
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
	fs.StringVar(&c.html, "html", "", "also write a self-contained HTML report to this file")
	fs.StringVar(&c.webhook, "webhook", "", "POST each critical incident as JSON to this URL")
	fs.DurationVar(&c.webhookTimeout, "webhook-timeout", 10*time.Second, "timeout of one webhook attempt")
	fs.IntVar(&c.webhookRetries, "webhook-retries", 3, "retries after a failed webhook attempt (0 to 10)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, usageLine)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (inputs are given with -pool, -store, -pcap, -log, -record)", fs.Arg(0))
	}
	if _, err := reconcile.ParsePolicy[any](c.policy); err != nil {
		return nil, usagef("-policy %q: want lww, priority-lww, delete-wins, add-wins or manual", c.policy)
	}
	if c.timing != "rfc" && c.timing != "fast" {
		return nil, usagef("-timing %q: want rfc or fast", c.timing)
	}
	if len(c.probes) > 0 && c.iface == "" {
		return nil, usagef("-probe needs -I IFACE, the interface to probe on")
	}
	for _, p := range c.probes {
		pfx, err := parseTarget(p)
		if err != nil {
			return nil, usagef("-probe %q: %v", p, err)
		}
		c.targets = append(c.targets, pfx)
	}
	if c.webhook != "" {
		if err := checkURL(c.webhook); err != nil {
			return nil, usagef("-webhook %q: %v", c.webhook, err)
		}
	}
	if c.webhookTimeout <= 0 {
		return nil, usagef("-webhook-timeout %v: must be positive", c.webhookTimeout)
	}
	if c.webhookRetries < 0 || c.webhookRetries > 10 {
		return nil, usagef("-webhook-retries %d: want 0 to 10", c.webhookRetries)
	}
	c.samples = len(c.pools)+len(c.stores)+len(c.pcaps)+len(c.logs)+len(c.records) == 0 && c.iface == ""
	switch {
	case c.tz != "":
		loc, err := time.LoadLocation(c.tz)
		if err != nil {
			return nil, usagef("-tz %q: %v", c.tz, err)
		}
		c.loc = loc
	case c.samples:
		c.loc = time.UTC // the samples were written in UTC
	default:
		c.loc = time.Local
	}
	return c, nil
}

// parseTarget reads an address (as a one-address prefix) or a prefix.
func parseTarget(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// run is the program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, e env) int {
	c, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitClean
	}
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "diagnose:", err)
		}
		return exitError
	}
	prog := newProgress(stderr)
	in, err := load(ctx, c, prog)
	if err != nil {
		fmt.Fprintln(stderr, "diagnose:", err)
		return exitError
	}
	defer in.close()
	rep := correlate(in, c)
	if c.iface != "" {
		targets := c.targets
		if len(targets) == 0 {
			targets = rep.conflictTargets()
		}
		if len(targets) == 0 {
			fmt.Fprintf(stderr, "diagnose: -I %s: nothing to probe (no -probe given and no conflicted address found)\n", c.iface)
		} else {
			if err := probe(ctx, c, e.open, targets, in); err != nil {
				fmt.Fprintln(stderr, "diagnose:", err)
				return exitError
			}
			rep = correlate(in, c)
		}
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "diagnose:", err)
			return exitError
		}
	} else {
		writeText(stdout, rep)
	}
	if c.html != "" {
		if err := writeHTMLFile(c.html, rep); err != nil {
			fmt.Fprintln(stderr, "diagnose:", err)
			return exitError
		}
	}
	if c.webhook != "" {
		h := hook{url: c.webhook, timeout: c.webhookTimeout, retries: c.webhookRetries, backoff: e.backoff, log: stderr}
		if err := h.deliver(ctx, rep); err != nil {
			fmt.Fprintln(stderr, "diagnose:", err)
			return exitError
		}
	}
	if len(rep.Incidents) > 0 {
		return exitIncidents
	}
	return exitClean
}

// opener opens a prober on the named interface.
type opener func(ifname string, opts arpcheck.Options) (*arpcheck.Prober, error)
