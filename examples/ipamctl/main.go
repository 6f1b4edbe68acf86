// Command ipamctl manages IP pools and leases with package ipam, in a bbolt
// file or in etcd. Several ipamctl processes may use one file at once; any
// number of them, on any hosts, may use one etcd cluster.
//
//	ipamctl [-store FILE | -etcd ENDPOINTS [-etcd-prefix P]] [-json] COMMAND ...
//	  pool add MANIFEST                       add or update pools (IPPool YAML/JSON or CNI ipam JSON); prints each pool name
//	  pool list                               prints the pools
//	  alloc POOL -owner ID [-n N] [-addr A]   prints one allocated address per line (same owner, N=1: same address)
//	  release POOL (-owner ID | ADDR)         releases the owner's leases or one address
//	  stats POOL                              JSON counts, decimal strings
//	  overlap MANIFEST...                     one line per overlapping pair "A B RANGE"; exit 1 if any
//	  verify                                  checks the store's invariants; exit 0 when sound
//
// -store FILE (default ipamctl.db, or $IPAMCTL_STORE) keeps the state in a
// bbolt file; -etcd host:port,host:port (or $IPAMCTL_ETCD) in etcd, under
// the key prefix -etcd-prefix (default "addrguard/"), waiting at most
// -etcd-timeout (default 5s) for each answer. The two stores are mutually
// exclusive.
//
// Exit status: 0 ok, 1 the condition asked about (overlap, exhausted, an
// unsound store), 2 bad usage or input (the message names it).
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
	"time"

	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/ipam/etcdstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is bad usage or input: exit status 2.
type usageError struct{ msg string }

// Error implements error.
func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

const usage = `usage: ipamctl [-store FILE | -etcd ENDPOINTS [-etcd-prefix P] [-etcd-timeout D]] [-json] COMMAND ...
  pool add MANIFEST                       add or update pools (IPPool YAML/JSON or CNI ipam JSON)
  pool list                               list pools
  alloc POOL -owner ID [-n N] [-addr A]   allocate; one address per line
  release POOL (-owner ID | ADDR)         release the owner's leases or one address
  stats POOL                              JSON counts
  overlap MANIFEST...                     overlapping pairs "A B RANGE"; exit 1 if any
  verify                                  check the store's invariants
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ipamctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	store := fs.String("store", envOr("IPAMCTL_STORE", "ipamctl.db"), "bbolt store file")
	etcd := fs.String("etcd", os.Getenv("IPAMCTL_ETCD"), "etcd endpoints, comma-separated")
	prefix := fs.String("etcd-prefix", etcdstore.DefaultPrefix, "prefix of the keys in etcd")
	timeout := fs.Duration("etcd-timeout", etcdstore.DefaultDialTimeout, "how long to wait for etcd to answer")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "ipamctl: %v\n%s", err, usage)
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c := &cli{store: *store, etcdPrefix: *prefix, etcdTimeout: *timeout, json: *asJSON, out: stdout}
	var err error
	switch {
	case set["store"] && set["etcd"]:
		err = usagef("-store and -etcd are mutually exclusive: give one")
	case (set["etcd-prefix"] || set["etcd-timeout"]) && *etcd == "":
		err = usagef("-etcd-prefix and -etcd-timeout need -etcd")
	case *etcd != "" && !set["store"]:
		for _, ep := range strings.Split(*etcd, ",") {
			if ep = strings.TrimSpace(ep); ep == "" {
				err = usagef("-etcd %q: empty endpoint", *etcd)
				break
			}
			c.etcd = append(c.etcd, ep)
		}
	}
	if err == nil {
		err = c.dispatch(ctx, fs.Args())
	}
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ipamctl: %v\n", err)
		return 2
	case errors.Is(err, errCondition), errors.Is(err, ipam.ErrExhausted), errors.Is(err, ipam.ErrOverlap):
		fmt.Fprintf(stderr, "ipamctl: %v\n", err)
		return 1
	case errors.Is(err, ipam.ErrInvalidSpec), errors.Is(err, ipam.ErrSyntax), errors.Is(err, ipam.ErrUnknownPool),
		errors.Is(err, ipam.ErrNotInPool), errors.Is(err, ipam.ErrReserved), errors.Is(err, ipam.ErrAlreadyAllocated),
		errors.Is(err, ipam.ErrNotAllocated), errors.Is(err, ipam.ErrNotVerified):
		fmt.Fprintf(stderr, "ipamctl: %v\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "ipamctl: %v\n", err)
	return 1
}

// errCondition marks "the condition asked about" (exit 1).
var errCondition = conditionError{}

type conditionError struct{}

// Error implements error.
func (conditionError) Error() string { return "" }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type cli struct {
	store       string
	etcd        []string // endpoints; the store is etcd when set
	etcdPrefix  string
	etcdTimeout time.Duration
	json        bool
	out         io.Writer
}

// openStore opens the bbolt file or dials etcd.
func (c *cli) openStore(ctx context.Context) (ipam.Store, error) {
	if len(c.etcd) > 0 {
		return etcdstore.Dial(ctx, c.etcd, etcdstore.Options{Prefix: c.etcdPrefix, DialTimeout: c.etcdTimeout, RequestTimeout: c.etcdTimeout})
	}
	return ipam.OpenBolt(ctx, c.store, ipam.BoltOptions{})
}

func (c *cli) open(ctx context.Context) (*ipam.Allocator, func(), error) {
	st, err := c.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	a, err := ipam.New(ctx, st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return a, func() { st.Close() }, nil
}

// parseInterleaved parses flags that may come before or after positional
// arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("missing command\n%s", usage)
	}
	switch args[0] {
	case "pool":
		if len(args) >= 2 && args[1] == "list" {
			return c.poolList(ctx)
		}
		if len(args) != 3 || args[1] != "add" {
			return usagef("usage: pool add MANIFEST | pool list")
		}
		return c.poolAdd(ctx, args[2])
	case "alloc":
		return c.alloc(ctx, args[1:])
	case "release":
		return c.release(ctx, args[1:])
	case "stats":
		if len(args) != 2 {
			return usagef("usage: stats POOL")
		}
		return c.stats(ctx, args[1])
	case "overlap":
		return c.overlap(args[1:])
	case "verify":
		if len(args) != 1 {
			return usagef("usage: verify")
		}
		return c.verify(ctx)
	}
	return usagef("unknown command %q\n%s", args[0], usage)
}

func readManifest(path string) ([]ipam.PoolSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	specs, err := ipam.ParseManifest(data)
	if err != nil {
		return nil, usagef("%s: %v", path, err)
	}
	return specs, nil
}

func (c *cli) poolAdd(ctx context.Context, path string) error {
	specs, err := readManifest(path)
	if err != nil {
		return err
	}
	a, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	for _, s := range specs {
		if _, err := a.AddPool(ctx, s); err != nil {
			return err
		}
		fmt.Fprintln(c.out, s.Name)
	}
	return nil
}

func (c *cli) poolList(ctx context.Context) error {
	a, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	specs, err := a.Pools(ctx)
	if err != nil {
		return err
	}
	if c.json {
		b, err := ipam.MarshalManifest(specs...)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.out, string(b))
		return nil
	}
	for _, s := range specs {
		fmt.Fprintf(c.out, "%s %s\n", s.Name, s.Subnet)
	}
	return nil
}

func (c *cli) alloc(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("alloc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	owner := fs.String("owner", "", "owner identity (required)")
	n := fs.Int("n", 1, "number of addresses the owner should hold")
	addr := fs.String("addr", "", "allocate this address")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *owner == "" {
		return usagef("usage: alloc POOL -owner ID [-n N] [-addr A]")
	}
	if *n < 1 {
		return usagef("alloc: -n %d: must be at least 1", *n)
	}
	a, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	var leases []ipam.Lease
	if *addr != "" {
		ip, perr := netip.ParseAddr(*addr)
		if perr != nil {
			return usagef("alloc: -addr %q: not an IP address", *addr)
		}
		l, err := a.AllocateAddr(ctx, pos[0], *owner, ip)
		if err != nil {
			return err
		}
		leases = []ipam.Lease{l}
	} else if leases, err = a.AllocateN(ctx, pos[0], *owner, *n); err != nil {
		return err
	}
	if c.json {
		return json.NewEncoder(c.out).Encode(leases)
	}
	var b strings.Builder
	for _, l := range leases {
		b.WriteString(l.Addr.String())
		b.WriteByte('\n')
	}
	_, err = io.WriteString(c.out, b.String())
	return err
}

func (c *cli) release(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	owner := fs.String("owner", "", "release every lease of this owner")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 || (*owner == "") == (len(pos) == 1) {
		return usagef("usage: release POOL (-owner ID | ADDR)")
	}
	a, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	var leases []ipam.Lease
	if *owner != "" {
		if leases, err = a.ReleaseOwner(ctx, pos[0], *owner); err != nil {
			return err
		}
	} else {
		ip, perr := netip.ParseAddr(pos[1])
		if perr != nil {
			return usagef("release: %q: not an IP address", pos[1])
		}
		l, err := a.ReleaseAddr(ctx, pos[0], ip)
		if err != nil {
			return err
		}
		leases = []ipam.Lease{l}
	}
	if c.json {
		return json.NewEncoder(c.out).Encode(leases)
	}
	for _, l := range leases {
		fmt.Fprintf(c.out, "%s %s\n", l.Addr, l.Owner)
	}
	return nil
}

func (c *cli) stats(ctx context.Context, pool string) error {
	a, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	st, err := a.Stats(ctx, pool)
	if err != nil {
		return err
	}
	out := struct {
		Pool        string     `json:"pool"`
		Total       ipam.Count `json:"total"`
		Reserved    ipam.Count `json:"reserved"`
		Allocated   ipam.Count `json:"allocated"`
		Quarantined ipam.Count `json:"quarantined"`
		Free        ipam.Count `json:"free"`
		Utilization float64    `json:"utilization"`
	}{st.Pool, st.Total, st.Reserved, st.Allocated, st.Quarantined, st.Free, st.Utilization}
	return json.NewEncoder(c.out).Encode(out)
}

func (c *cli) overlap(paths []string) error {
	if len(paths) == 0 {
		return usagef("usage: overlap MANIFEST...")
	}
	var specs []ipam.PoolSpec
	for _, p := range paths {
		s, err := readManifest(p)
		if err != nil {
			return err
		}
		specs = append(specs, s...)
	}
	ovs, err := ipam.OverlapsOf(specs...)
	if err != nil {
		return usagef("%v", err)
	}
	if c.json {
		if ovs == nil {
			ovs = []ipam.Overlap{}
		}
		if err := json.NewEncoder(c.out).Encode(ovs); err != nil {
			return err
		}
	} else {
		// Allocatable sets lie inside the subnets, so every allocatable
		// overlap has a subnet overlap; -json shows both kinds.
		for _, o := range ovs {
			if o.Kind == ipam.SubnetOverlap {
				fmt.Fprintf(c.out, "%s %s %s\n", o.A.Name, o.B.Name, o.RangeString())
			}
		}
	}
	if len(ovs) > 0 {
		return fmt.Errorf("pools overlap%w", errCondition)
	}
	return nil
}

func (c *cli) verify(ctx context.Context) error {
	st, err := c.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	err = ipam.VerifyStore(ctx, st)
	var ve *ipam.VerifyError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Fprintln(c.out, p)
		}
		return fmt.Errorf("store unsound: %d problem(s)%w", len(ve.Problems), errCondition)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(c.out, "ok")
	return nil
}
