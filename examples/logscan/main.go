// Command logscan reads system logs (BSD syslog, RFC 3339, RFC 5424,
// journalctl -o json) and reports brute force, user enumeration, success
// after failures, off-hours logins, risky ports, port scans, log injection
// and address conflicts.
//
//	logscan [-json] [-events] [-mode normal|ddos|extra|aggressive] [-tz ZONE] [-ref TIME] FILE...   ('-' = stdin)
//
// Text output is a "top sources" table (count, source) like
// `grep "Failed password" | awk | sort | uniq -c | sort -nr` would print if
// it were right, then one finding per line. -json prints one JSON object per
// finding, -events one JSON object per recognised line. The exit status is 0
// when there was no finding, 1 when there were findings, 2 on errors.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // -tz works on machines without a zone database

	"go4.org/netipx"

	"github.com/addrguard/addrguard/logscan"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type fileFinding struct {
	File string `json:"file,omitempty"`
	logscan.Finding
}

type fileEvent struct {
	File string `json:"file,omitempty"`
	logscan.Event
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("logscan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object per finding")
	events := fs.Bool("events", false, "print one JSON object per recognised line")
	mode := fs.String("mode", "normal", "which sshd lines are failures: normal, ddos, extra or aggressive (as fail2ban's sshd filter)")
	tz := fs.String("tz", "", "zone of timestamps without offset and of working hours (IANA name; default local)")
	ref := fs.String("ref", "", "reference time for year inference of BSD dates (RFC 3339 or YYYY-MM-DD; default now)")
	top := fs.Int("top", 10, "rows of the top-sources table (0: all)")
	allow := fs.String("allow", "", "comma-separated prefixes never reported (e.g. 192.0.2.0/24,2001:db8::/32)")
	highRisk := fs.String("high-risk", "", "comma-separated prefixes whose findings are raised one severity")
	maxLine := fs.Int("max-line", 0, "longest line analysed in bytes (default 65536)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: logscan [-json] [-events] [-mode normal|ddos|extra|aggressive] [-tz ZONE] [-ref TIME] FILE...   ('-' = stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	files := fs.Args()
	if len(files) == 0 {
		fs.Usage()
		return 2
	}
	opts, err := options(*mode, *tz, *ref, *allow, *highRisk, *maxLine)
	if err != nil {
		fmt.Fprintln(stderr, "logscan:", err)
		return 2
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	an := logscan.New(opts)
	var findings []fileFinding
	nFindings := 0
	counts := map[string]*logscan.SourceCount{}
	status := 0
	for _, name := range files {
		label := name
		if len(files) == 1 {
			label = ""
		}
		h := logscan.Handler{Finding: func(f logscan.Finding) {
			nFindings++
			switch {
			case *asJSON:
				if err := enc.Encode(fileFinding{label, f}); err != nil {
					status = 2
				}
			case !*events:
				findings = append(findings, fileFinding{label, f})
			}
		}}
		if *events {
			h.Event = func(e logscan.Event) {
				if err := enc.Encode(fileEvent{label, e}); err != nil {
					status = 2
				}
			}
		}
		if err := scanFile(an, name, stdin, h); err != nil {
			fmt.Fprintln(stderr, "logscan:", err)
			status = 2
			continue
		}
		for _, row := range an.TopSources(0) {
			k := row.SrcText
			if row.Src.IsValid() {
				k = row.Src.String()
			}
			if c := counts[k]; c != nil {
				c.Count += row.Count
			} else {
				r := row
				counts[k] = &r
			}
		}
	}
	if !*asJSON && !*events {
		printText(out, counts, findings, *top)
	}
	if status != 0 {
		return status
	}
	if nFindings > 0 {
		return 1
	}
	return 0
}

func scanFile(an *logscan.Analyzer, name string, stdin io.Reader, h logscan.Handler) error {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	if err := an.ScanContext(context.Background(), r, h); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func printText(w io.Writer, counts map[string]*logscan.SourceCount, findings []fileFinding, top int) {
	rows := make([]logscan.SourceCount, 0, len(counts))
	for _, c := range counts {
		rows = append(rows, *c)
	}
	slices.SortFunc(rows, func(a, b logscan.SourceCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		if a.Src.IsValid() != b.Src.IsValid() {
			if a.Src.IsValid() {
				return -1
			}
			return 1
		}
		if c := a.Src.Compare(b.Src); c != 0 {
			return c
		}
		return strings.Compare(a.SrcText, b.SrcText)
	})
	if top > 0 && len(rows) > top {
		rows = rows[:top]
	}
	fmt.Fprintln(w, "# top sources (authentication failures)")
	for _, r := range rows {
		fmt.Fprintln(w, r.String())
	}
	fmt.Fprintf(w, "# findings: %d\n", len(findings))
	for _, f := range findings {
		if f.File != "" {
			fmt.Fprintf(w, "%s: ", f.File)
		}
		fmt.Fprintln(w, f.Finding.String())
	}
}

func options(mode, tz, ref, allow, highRisk string, maxLine int) (logscan.Options, error) {
	var o logscan.Options
	var err error
	if o.Mode, err = logscan.ParseMode(mode); err != nil {
		return o, err
	}
	if tz != "" {
		if o.Location, err = time.LoadLocation(tz); err != nil {
			return o, fmt.Errorf("-tz %q: %w", tz, err)
		}
	}
	if ref != "" {
		loc := o.Location
		if loc == nil {
			loc = time.Local
		}
		t, err := time.Parse(time.RFC3339, ref)
		if err != nil {
			if t, err = time.ParseInLocation("2006-01-02", ref, loc); err != nil {
				return o, fmt.Errorf("-ref %q: want RFC 3339 or YYYY-MM-DD", ref)
			}
		}
		o.Reference = t
	}
	if o.Allow, err = prefixSet("-allow", allow); err != nil {
		return o, err
	}
	if o.HighRisk, err = prefixSet("-high-risk", highRisk); err != nil {
		return o, err
	}
	o.MaxLineBytes = maxLine
	return o, nil
}

func prefixSet(flagName, list string) (*netipx.IPSet, error) {
	if list == "" {
		return nil, nil
	}
	var b netipx.IPSetBuilder
	for i, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			b.AddPrefix(p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s: item %d %q is neither a prefix nor an address", flagName, i+1, s)
		}
		b.Add(a)
	}
	return b.IPSet()
}
