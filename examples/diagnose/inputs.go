package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/addrguard/addrguard/arpcheck"
	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/logscan"
	"github.com/addrguard/addrguard/pcapscan"
	"github.com/addrguard/addrguard/reconcile"
)

// The bundled samples: two clusters' pool manifests and IPAM stores, a
// capture recorded in test namespaces, an auth.log and a replicated lease
// record. See testdata/samples/README.md.
//
//go:embed testdata/samples
var samplesFS embed.FS

// samplesDir is where the samples live in the repository; reports name the
// sample files by it.
const samplesDir = "examples/diagnose/testdata/samples"

// Sample file names, in the order they are read.
var (
	samplePools   = []string{"east-pools.yaml", "west-pools.yaml"}
	sampleStores  = []string{"east.db", "west.db"}
	samplePcaps   = []string{"capture.pcap"}
	sampleLogs    = []string{"auth.log"}
	sampleRecords = []string{"lease-record.json"}
)

// inputs is everything read, before correlation.
type inputs struct {
	files    []Input
	pools    []*poolInfo
	overlaps []ipam.Overlap
	captures []captureFinding
	logs     []logFinding
	marks    map[netip.Addr][]logMark // address-conflict lines, per address
	records  []recordInfo
	probes   []arpcheck.Result
	stores   []*storeView

	display func(path string) string // the name a report gives a file
	cleanup []func()
}

func (in *inputs) close() {
	for _, f := range slices.Backward(in.cleanup) {
		f()
	}
}

// poolInfo is one pool with where it came from and, from a store, its counts.
type poolInfo struct {
	pool    *ipam.Pool
	sources []string
	stats   *ipam.Stats
	store   *storeView
}

func (p *poolInfo) ref() ipam.PoolRef {
	s := p.pool.Spec()
	return ipam.PoolRef{Name: s.Name, Cluster: s.Cluster, Tenant: s.Tenant}
}

// storeView is an open ipam store.
type storeView struct {
	name  string
	alloc *ipam.Allocator
}

type captureFinding struct {
	file string
	f    pcapscan.Finding
}

type logFinding struct {
	file string
	f    logscan.Finding
}

// logMark is one log line about a contested address, for the timelines.
type logMark struct {
	file string
	ev   logscan.Event
}

// maxMarks bounds the log lines kept per address for the timeline.
const maxMarks = 64

type recordInfo struct {
	file     string
	key      string
	addr     netip.Addr // the address the key names, if any
	nodes    []string
	decision reconcile.Decision[any]
}

// load reads every input named on the command line (or the bundled samples).
func load(ctx context.Context, c *config, prog *progress) (*inputs, error) {
	in := &inputs{marks: map[netip.Addr][]logMark{}, display: func(p string) string { return p }}
	ok := false
	defer func() {
		if !ok {
			in.close()
		}
	}()
	if c.samples {
		dir, err := extractSamples()
		if err != nil {
			return nil, err
		}
		in.cleanup = append(in.cleanup, func() { os.RemoveAll(dir) })
		in.display = func(p string) string {
			if rel, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(rel, "..") {
				return samplesDir + "/" + filepath.ToSlash(rel)
			}
			return p
		}
		join := func(names []string) list {
			var l list
			for _, n := range names {
				l = append(l, filepath.Join(dir, n))
			}
			return l
		}
		c.pools, c.stores, c.pcaps, c.logs, c.records = join(samplePools), join(sampleStores), join(samplePcaps), join(sampleLogs), join(sampleRecords)
	}
	for _, p := range c.pools {
		if err := in.loadManifest(p); err != nil {
			return nil, err
		}
	}
	for _, p := range c.stores {
		if err := in.loadStore(ctx, p); err != nil {
			return nil, err
		}
	}
	var compiled []*ipam.Pool
	for _, p := range in.pools {
		compiled = append(compiled, p.pool)
	}
	in.overlaps = ipam.FindOverlaps(compiled...)
	for _, p := range c.pcaps {
		if err := in.loadCapture(ctx, p, prog); err != nil {
			return nil, err
		}
	}
	for _, p := range c.logs {
		if err := in.loadLog(ctx, p, c.loc, prog); err != nil {
			return nil, err
		}
	}
	for _, p := range c.records {
		if err := in.loadRecord(p, c.policy); err != nil {
			return nil, err
		}
	}
	ok = true
	return in, nil
}

// extractSamples copies the embedded samples to a new temporary directory
// (the IPAM stores are opened as files, with their lock files beside them).
func extractSamples() (string, error) {
	dir, err := os.MkdirTemp("", "diagnose-samples-")
	if err != nil {
		return "", err
	}
	err = fs.WalkDir(samplesFS, "testdata/samples", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := samplesFS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, d.Name()), b, 0o600)
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("bundled samples: %w", err)
	}
	return dir, nil
}

// fileError names the flag and the file of a bad input; os errors lose their
// repeated path.
func (in *inputs) fileError(flagName, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err
	}
	return &usageError{fmt.Sprintf("-%s %s: %v", flagName, in.display(path), err)}
}

// openInput opens a regular file; directories and missing files are errors.
func openInput(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, errors.New("is a directory")
	}
	return f, fi.Size(), nil
}

func (in *inputs) addPool(p *ipam.Pool, source string, st *ipam.Stats, sv *storeView) {
	s := p.Spec()
	for _, q := range in.pools {
		qs := q.pool.Spec()
		if qs.Name == s.Name && qs.Cluster == s.Cluster && qs.Tenant == s.Tenant {
			q.sources = append(q.sources, source)
			if sv != nil && q.store == nil { // a store's spec is the truth
				q.pool, q.stats, q.store = p, st, sv
			}
			return
		}
	}
	in.pools = append(in.pools, &poolInfo{pool: p, sources: []string{source}, stats: st, store: sv})
}

func (in *inputs) loadManifest(path string) error {
	f, _, err := openInput(path)
	if err != nil {
		return in.fileError("pool", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, ipam.MaxManifestSize+1))
	f.Close()
	if err != nil {
		return in.fileError("pool", path, err)
	}
	specs, err := ipam.ParseManifest(data)
	if err != nil {
		return in.fileError("pool", path, fmt.Errorf("not a pool manifest: %w", err))
	}
	if len(specs) == 0 {
		return in.fileError("pool", path, errors.New("not a pool manifest: no IPPool or CNI host-local pool in it"))
	}
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		p, err := ipam.Compile(s)
		if err != nil {
			return in.fileError("pool", path, err)
		}
		in.addPool(p, in.display(path), nil, nil)
		names = append(names, poolName(p.Spec().Cluster, s.Name))
	}
	in.files = append(in.files, Input{Kind: "pool", File: in.display(path), Summary: fmt.Sprintf("%d pools: %s", len(specs), strings.Join(names, ", "))})
	return nil
}

func (in *inputs) loadStore(ctx context.Context, path string) error {
	f, size, err := openInput(path)
	if err != nil {
		return in.fileError("store", path, err)
	}
	f.Close()
	if size == 0 {
		return in.fileError("store", path, errors.New("empty file, not an ipam store"))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := ipam.OpenBolt(ctx, path, ipam.BoltOptions{Timeout: 10 * time.Second})
	if err != nil {
		return in.fileError("store", path, fmt.Errorf("not an ipam store: %w", err))
	}
	in.cleanup = append(in.cleanup, func() { st.Close() })
	alloc, err := ipam.New(ctx, st)
	if err != nil {
		return in.fileError("store", path, err)
	}
	sv := &storeView{name: in.display(path), alloc: alloc}
	in.stores = append(in.stores, sv)
	specs, err := alloc.Pools(ctx)
	if err != nil {
		return in.fileError("store", path, err)
	}
	var names []string
	for _, s := range specs {
		p, err := ipam.Compile(s)
		if err != nil {
			return in.fileError("store", path, err)
		}
		if err := alloc.Refresh(ctx, s.Name); err != nil {
			return in.fileError("store", path, err)
		}
		stats, err := alloc.Stats(ctx, s.Name)
		if err != nil {
			return in.fileError("store", path, err)
		}
		in.addPool(p, sv.name, &stats, sv)
		names = append(names, fmt.Sprintf("%s %s of %s allocated", poolName(s.Cluster, s.Name), stats.Allocated, p.Size()))
	}
	in.files = append(in.files, Input{Kind: "store", File: sv.name, Summary: fmt.Sprintf("%d pools: %s", len(specs), strings.Join(names, ", "))})
	return nil
}

func (in *inputs) loadCapture(ctx context.Context, path string, prog *progress) error {
	f, size, err := openInput(path)
	if err != nil {
		return in.fileError("pcap", path, err)
	}
	defer f.Close()
	name := in.display(path)
	opts := pcapscan.Options{}
	done := prog.start(name, size)
	opts.Progress = func(read, total int64) { prog.update(read) }
	sc := pcapscan.New(opts)
	n := 0
	err = sc.ScanContext(ctx, f, func(fd pcapscan.Finding) {
		in.captures = append(in.captures, captureFinding{file: name, f: fd})
		n++
	})
	done()
	st := sc.Stats()
	summary := fmt.Sprintf("%d frames, %d findings", st.Packets, n)
	switch {
	case errors.Is(err, pcapscan.ErrTruncated):
		summary += " (the capture is truncated: " + err.Error() + "; frames before it were analysed)"
	case errors.Is(err, pcapscan.ErrNotCapture):
		return in.fileError("pcap", path, errors.New("not a pcap or pcapng capture"))
	case err != nil:
		return in.fileError("pcap", path, err)
	}
	in.files = append(in.files, Input{Kind: "pcap", File: name, Summary: summary})
	return nil
}

func (in *inputs) loadLog(ctx context.Context, path string, loc *time.Location, prog *progress) error {
	f, size, err := openInput(path)
	if err != nil {
		return in.fileError("log", path, err)
	}
	defer f.Close()
	name := in.display(path)
	head := make([]byte, 4096)
	hn, _ := io.ReadFull(f, head)
	if bytes.IndexByte(head[:hn], 0) >= 0 {
		return in.fileError("log", path, errors.New("not a system log: binary data"))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return in.fileError("log", path, err)
	}
	an := logscan.New(logscan.Options{Location: loc})
	n := 0
	done := prog.start(name, size)
	err = an.ScanContext(ctx, prog.reader(f), logscan.Handler{
		Finding: func(fd logscan.Finding) {
			in.logs = append(in.logs, logFinding{file: name, f: fd})
			n++
		},
		Event: func(e logscan.Event) {
			if e.Kind == logscan.KindAddressConflict && e.Addr.IsValid() && len(in.marks[e.Addr]) < maxMarks {
				in.marks[e.Addr] = append(in.marks[e.Addr], logMark{file: name, ev: e})
			}
		},
	})
	done()
	if err != nil {
		return in.fileError("log", path, err)
	}
	st := an.Stats()
	if bad := st.Unparsed + st.Malformed; st.Recognised == 0 && bad > 0 && 2*bad >= st.Lines {
		return in.fileError("log", path, fmt.Errorf("not a system log: %d of its %d lines have no syslog, RFC 5424 or journald header", bad, st.Lines))
	}
	in.files = append(in.files, Input{Kind: "log", File: name, Summary: fmt.Sprintf("%d lines, %d recognised, %d findings", st.Lines, st.Recognised, n)})
	return nil
}

// recordFile is the form of a -record file: one key and each replica's record
// of it in package reconcile's JSON form.
type recordFile struct {
	Key      string                     `json:"key"`
	Replicas map[string]json.RawMessage `json:"replicas"`
}

// maxRecordSize bounds a -record file.
const maxRecordSize = 64 << 20

func (in *inputs) loadRecord(path, policyName string) error {
	f, _, err := openInput(path)
	if err != nil {
		return in.fileError("record", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	f.Close()
	if err != nil {
		return in.fileError("record", path, err)
	}
	if len(data) > maxRecordSize {
		return in.fileError("record", path, fmt.Errorf("larger than %d MiB", maxRecordSize>>20))
	}
	ri, err := parseRecordFile(data, policyName)
	if err != nil {
		return in.fileError("record", path, err)
	}
	ri.file = in.display(path)
	in.records = append(in.records, ri)
	d, nodes := ri.decision, ri.nodes
	summary := fmt.Sprintf("key %s on %d replicas: no conflict", ri.key, len(nodes))
	if d.Conflict() {
		summary = fmt.Sprintf("key %s on %d replicas: %d concurrent versions", ri.key, len(nodes), len(d.Versions))
	}
	in.files = append(in.files, Input{Kind: "record", File: ri.file, Summary: summary})
	return nil
}

// parseRecordFile reads a -record file: it merges the replicas' records with
// reconcile.Sync and resolves the result by the policy.
func parseRecordFile(data []byte, policyName string) (recordInfo, error) {
	var rf recordFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rf); err != nil {
		return recordInfo{}, fmt.Errorf(`not a replicated record ({"key": K, "replicas": {NODE: RECORD, ...}}): %v`, err)
	}
	if rf.Key == "" || len(rf.Replicas) == 0 {
		return recordInfo{}, errors.New(`not a replicated record: want "key" and at least one of "replicas"`)
	}
	nodes := make([]string, 0, len(rf.Replicas))
	for n := range rf.Replicas {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	var merged reconcile.Record[any]
	for _, n := range nodes {
		var r reconcile.Record[any]
		if err := json.Unmarshal(rf.Replicas[n], &r); err != nil {
			return recordInfo{}, fmt.Errorf("replica %q: %v", n, err)
		}
		merged = reconcile.Sync(merged, r)
	}
	policy, err := reconcile.ParsePolicy[any](policyName)
	if err != nil {
		return recordInfo{}, err
	}
	return recordInfo{key: rf.Key, addr: keyAddr(rf.Key), nodes: nodes, decision: policy.Resolve(merged.Versions())}, nil
}

// keyAddr returns the address a record key names: the key itself, or its part
// after the first ':' or '/' ("lease/192.0.2.10", "ip:192.0.2.10"), as
// logscan reads reconcile audit lines.
func keyAddr(key string) netip.Addr {
	if a, err := netip.ParseAddr(key); err == nil {
		return a.Unmap()
	}
	for _, sep := range []string{":", "/"} {
		if i := strings.Index(key, sep); i >= 0 {
			if a, err := netip.ParseAddr(key[i+1:]); err == nil {
				return a.Unmap()
			}
		}
	}
	return netip.Addr{}
}

// openProber opens an arpcheck prober on a real interface.
func openProber(ifname string, opts arpcheck.Options) (*arpcheck.Prober, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	return arpcheck.New(ifi, opts)
}

// maxProbe bounds the addresses one run probes.
const maxProbe = 1 << 16

// probe runs arpcheck on the targets and adds the results to in.
func probe(ctx context.Context, c *config, open opener, targets []netip.Prefix, in *inputs) error {
	n := 0
	for _, t := range targets {
		if t.IsSingleIP() {
			n++
		} else if bits := t.Addr().BitLen() - t.Bits(); bits >= 17 {
			return &usageError{fmt.Sprintf("-probe %s: more than %d addresses", t, maxProbe)}
		} else {
			n += 1 << bits
		}
	}
	if n > maxProbe {
		return &usageError{fmt.Sprintf("-probe: %d addresses, more than %d", n, maxProbe)}
	}
	timing := arpcheck.RFC
	if c.timing == "fast" {
		timing = arpcheck.Fast
	}
	p, err := open(c.iface, arpcheck.Options{Timing: timing})
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("-I %s: probing opens a raw socket, which needs root or CAP_NET_RAW: run diagnose with sudo (or give the binary cap_net_raw), or leave out -I (%v)", c.iface, err)
		}
		return fmt.Errorf("-I %s: %w", c.iface, err)
	}
	defer p.Close()
	seen := map[netip.Addr]bool{} // at most maxProbe entries
	addrs := func(yield func(netip.Addr) bool) {
		for _, t := range targets {
			hosts := arpcheck.Hosts(t)
			if t.IsSingleIP() {
				hosts = func(y func(netip.Addr) bool) { y(t.Addr()) }
			}
			for a := range hosts {
				if seen[a] {
					continue
				}
				seen[a] = true
				if !yield(a) {
					return
				}
			}
		}
	}
	var results []arpcheck.Result
	err = p.ProbeAll(ctx, addrs, arpcheck.BatchOptions{}, func(r arpcheck.Result) { results = append(results, r) })
	if err != nil {
		return fmt.Errorf("-I %s: %w", c.iface, err)
	}
	slices.SortFunc(results, func(a, b arpcheck.Result) int { return a.Addr.Compare(b.Addr) })
	in.probes = results
	inUse, unknown := 0, 0
	for _, r := range results {
		switch r.Status {
		case arpcheck.InUse:
			inUse++
		case arpcheck.Unknown:
			unknown++
		}
	}
	in.files = append(in.files, Input{Kind: "probe", File: c.iface, Summary: fmt.Sprintf("%d addresses probed from %s: %d in use, %d free, %d unknown", len(results), p.MAC(), inUse, len(results)-inUse-unknown, unknown)})
	return nil
}

// poolName renders cluster/name, or name without a cluster.
func poolName(cluster, name string) string {
	if cluster == "" {
		return name
	}
	return cluster + "/" + name
}
