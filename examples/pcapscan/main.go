// Command pcapscan reads packet captures, or a live interface, and reports
// address conflicts and communication anomalies: two hosts claiming one
// address, answered duplicate-address probes, pings answered twice, ARP
// spoofing, retry storms, TCP reconnects, retransmissions and rogue DHCP
// servers.
//
//	pcapscan [-json] [-window DUR] [-header NAME]... FILE...   ('-' = stdin)
//	pcapscan -I IFACE [-duration DUR] [-w OUT.pcap] [-json]     live
//
// Text output is one finding per line; -json prints one JSON object per line
// with the fields kind, severity, first, last (RFC 3339 with nanoseconds),
// count, ip, macs (sorted), vlan, request_id, flow ("A:port-B:port") and frames,
// followed by addrs, evidence (per-MAC timelines) and detail. With several
// files each line also names its file. A progress line goes to stderr for
// files over 100 MB when stderr is a terminal.
//
// The exit status is 0 when no finding is a warning or worse, 1 when some are,
// and 2 on an error (the findings up to the error are still printed).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/addrguard/addrguard/pcapscan"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// headers collects repeated -header flags.
type headers []string

// String implements flag.Value.
func (h *headers) String() string { return strings.Join(*h, ",") }

// Set implements flag.Value: each -header adds a name.
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

const progressThreshold = 100 << 20

// run is the program; it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pcapscan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object per finding and line")
	window := fs.Duration("window", 0, "how close in time evidence must be to count together (default 5m)")
	var hdrs headers
	fs.Var(&hdrs, "header", "HTTP request header holding a request ID (repeatable; default X-Request-ID)")
	iface := fs.String("I", "", "capture live on this interface instead of reading files")
	duration := fs.Duration("duration", 0, "with -I: stop after this long (default: until interrupted)")
	out := fs.String("w", "", "with -I: also write the frames analysed to this pcap file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pcapscan [-json] [-window DUR] [-header NAME]... FILE...   ('-' = stdin)")
		fmt.Fprintln(stderr, "       pcapscan -I IFACE [-duration DUR] [-w OUT.pcap] [-json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts := pcapscan.Options{Window: *window, RequestIDHeaders: hdrs}
	p := &printer{w: bufio.NewWriter(stdout), json: *asJSON}
	defer p.w.Flush()

	if *iface != "" {
		if fs.NArg() > 0 {
			fmt.Fprintln(stderr, "pcapscan: -I reads an interface; give no files")
			return 2
		}
		if err := live(ctx, *iface, *duration, *out, opts, p); err != nil {
			p.w.Flush()
			fmt.Fprintln(stderr, "pcapscan:", err)
			return 2
		}
		return p.status()
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	sc := pcapscan.New(opts)
	failed := false
	for _, name := range fs.Args() {
		if fs.NArg() > 1 {
			p.file = name
		}
		if err := scanOne(ctx, sc, name, stdin, stderr, p); err != nil {
			p.w.Flush()
			fmt.Fprintf(stderr, "pcapscan: %s: %v\n", name, err)
			failed = true
		}
	}
	if failed {
		return 2
	}
	return p.status()
}

func scanOne(ctx context.Context, sc *pcapscan.Scanner, name string, stdin io.Reader, stderr io.Writer, p *printer) error {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
		if fi, err := f.Stat(); err == nil && fi.Size() > progressThreshold && isTerminal(stderr) {
			defer fmt.Fprintln(stderr)
			start := time.Now()
			sc = pcapscan.New(withProgress(sc.Options(), func(read, total int64) {
				mb := float64(read) / 1e6
				fmt.Fprintf(stderr, "\r%s: %3.0f%% (%.0f of %.0f MB, %.0f MB/s)", name,
					100*float64(read)/float64(total), mb, float64(total)/1e6, mb/time.Since(start).Seconds())
			}))
		}
	}
	return sc.ScanContext(ctx, r, p.print)
}

func withProgress(o pcapscan.Options, f func(read, total int64)) pcapscan.Options {
	o.Progress = f
	return o
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func live(ctx context.Context, name string, d time.Duration, out string, opts pcapscan.Options, p *printer) error {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", name, err)
	}
	conn, err := pcapscan.ListenLive(ifi)
	if err != nil {
		return err
	}
	defer conn.Close()
	var lo pcapscan.LiveOptions
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		if lo.Writer, err = pcapscan.NewWriter(f, pcapscan.LinkEthernet, 0); err != nil {
			return err
		}
	}
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	return pcapscan.New(opts).ScanLive(ctx, conn, lo, func(f pcapscan.Finding) {
		p.print(f)
		p.w.Flush() // live findings show at once
	})
}

// printer writes findings as text or JSON lines and remembers the worst
// severity.
type printer struct {
	w     *bufio.Writer
	json  bool
	file  string
	worst pcapscan.Severity
	any   bool
}

func (p *printer) print(f pcapscan.Finding) {
	if !p.any || f.Severity > p.worst {
		p.worst, p.any = f.Severity, true
	}
	if !p.json {
		if p.file != "" {
			p.w.WriteString(p.file + ": ")
		}
		p.w.WriteString(f.String())
		p.w.WriteByte('\n')
		return
	}
	b, err := json.Marshal(f)
	if err != nil { // cannot happen for a Finding; say so rather than hide it
		b = []byte(`{"error":` + strconv.Quote(err.Error()) + `}`)
	}
	if p.file != "" {
		name, _ := json.Marshal(p.file)
		b = append(append(append([]byte(`{"file":`), name...), ','), b[1:]...)
	}
	p.w.Write(b)
	p.w.WriteByte('\n')
}

func (p *printer) status() int {
	if p.any && p.worst >= pcapscan.Warning {
		return 1
	}
	return 0
}
