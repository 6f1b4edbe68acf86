package logscan

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go4.org/netipx"
)

// Mode selects which sshd messages count as failures, as the mode parameter
// of fail2ban's sshd filter does. The zero value is ModeNormal.
type Mode int

// Modes of the sshd failure rules.
const (
	// ModeNormal counts authentication failures only.
	ModeNormal Mode = iota
	// ModeDDoS adds pre-authentication noise: missing or bad protocol
	// identification, key-exchange identification errors, resets and
	// disconnects before authentication, timeouts.
	ModeDDoS
	// ModeExtra adds negotiation failures (no matching cipher, MAC, key
	// exchange), "no authentication methods" and pre-auth disconnects of
	// named users.
	ModeExtra
	// ModeAggressive combines ModeDDoS and ModeExtra.
	ModeAggressive
)

var modeNames = [...]string{"normal", "ddos", "extra", "aggressive"}

// String returns the mode's name as fail2ban spells it.
func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("mode(%d)", int(m))
	}
	return modeNames[m]
}

// ParseMode parses "normal", "ddos", "extra" or "aggressive" ("" is normal).
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return ModeNormal, nil
	}
	for i, n := range modeNames {
		if s == n {
			return Mode(i), nil
		}
	}
	return 0, &OptionError{Field: "Mode", Msg: fmt.Sprintf("unknown mode %q (want normal, ddos, extra or aggressive)", s)}
}

// ErrInvalidOptions is wrapped by every *OptionError.
var ErrInvalidOptions = errors.New("logscan: invalid options")

// OptionError names an option that cannot be used.
type OptionError struct {
	Field string // the Options field, e.g. "Rules.BruteForce.Window"
	Msg   string
}

func (e *OptionError) Error() string { return "logscan: option " + e.Field + ": " + e.Msg }

// Unwrap returns ErrInvalidOptions.
func (e *OptionError) Unwrap() error { return ErrInvalidOptions }

// Window is a count threshold over an exact sliding time window.
type Window struct {
	Count  int           // events needed (≥ 1)
	Window time.Duration // inside this span
}

// Bucket is a leaky bucket: each event adds one; Leak drains one every Leak
// period; the bucket overflows when its level exceeds Capacity.
type Bucket struct {
	Capacity int
	Leak     time.Duration
}

// WorkHours defines when logins are expected. Logins outside [Start, End) on
// a working day, or on any other day, are off-hours.
type WorkHours struct {
	// Start and End are offsets from midnight (default 8h and 18h).
	Start, End time.Duration
	// Days are the working days (default Monday to Friday).
	Days []time.Weekday
	// Location is the zone the hours are meant in (default Options.Location).
	Location *time.Location
}

// Rules holds every threshold. Zero fields take the defaults documented with
// each rule (see Rule constants).
type Rules struct {
	BruteForce           Window // default 5 in 10 min
	Burst                Bucket // default capacity 5, leak 10 s
	SlowBruteForce       Bucket // default capacity 10, leak 60 s
	UserEnumeration      Window // default 5 distinct users in 10 min
	PreauthScan          Window // default 10 in 10 min
	SuccessAfterFailures Window // default 3 failures in the hour before
	PortScan             Window // default 15 distinct ports in 60 s
	// FlipFlops: an address whose owner changed this often inside the
	// window is a critical conflict (default 3 in 10 min).
	FlipFlops Window
	// ConflictMACs: an address claimed by this many MACs is critical
	// (default 2).
	ConflictMACs int
	// RiskyPorts are the high-risk destination ports (default 22, 23, 445,
	// 3306, 3389, 5432, 5900, 6379).
	RiskyPorts []uint16
	// WorkHours for RuleOffHoursLogin.
	WorkHours WorkHours
	// Disable turns rules off.
	Disable []Rule
}

// Options configures an Analyzer. The zero value is ready to use.
type Options struct {
	// Mode selects which sshd lines are failures (default ModeNormal, the
	// same lines fail2ban's sshd filter reports in that mode).
	Mode Mode
	// Location is the zone of timestamps that carry no offset (BSD syslog)
	// and of working hours (default time.Local).
	Location *time.Location
	// Reference is "now" for year inference of BSD timestamps, which have no
	// year: the reference's year is assumed, or the year before when that
	// puts the line more than a day after the reference. Default: Clock().
	Reference time.Time
	// Clock supplies the reference when Reference is zero (default time.Now).
	Clock func() time.Time
	// MaxLineBytes is the longest line analysed (default 64 KiB); longer
	// lines are reported as a RuleLongLine finding and skipped without being
	// buffered.
	MaxLineBytes int
	// MaxSources bounds the per-source state table (default 65536); the
	// least recently seen source is evicted (its findings are emitted first).
	MaxSources int
	// MaxConnections bounds the sshd connection (sshd[pid]) table (default
	// 1024, ten times sshd's default MaxStartups limit of 100 unauthenticated
	// connections); entries also expire 5 minutes of log time after their
	// last line.
	MaxConnections int
	// MaxAddresses bounds the address-conflict table (default 16384).
	MaxAddresses int
	// MaxEvidence bounds Finding.Lines (default 32, the first lines kept).
	MaxEvidence int
	// MaxListed bounds Finding.Users, Ports and MACs (default 16).
	MaxListed int
	// Allow lists sources that are never reported (trusted networks).
	Allow *netipx.IPSet
	// HighRisk lists sources whose findings are raised one severity.
	HighRisk *netipx.IPSet
	// Rules holds the thresholds.
	Rules Rules
	// Logger receives debug records (evictions, malformed journal lines);
	// nil discards them.
	Logger *slog.Logger
}

const (
	defaultMaxLine  = 64 << 10
	defaultSources  = 65536
	defaultConns    = 1024
	defaultAddrs    = 16384
	defaultEvidence = 32
	defaultListed   = 16
	connTTL         = 5 * time.Minute
)

var defaultRiskyPorts = []uint16{22, 23, 445, 3306, 3389, 5432, 5900, 6379}

// withDefaults fills zero fields and validates the rest.
func (o Options) withDefaults() (Options, error) {
	if o.Mode < ModeNormal || o.Mode > ModeAggressive {
		return o, &OptionError{Field: "Mode", Msg: fmt.Sprintf("unknown mode %d", int(o.Mode))}
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	ints := []struct {
		p    *int
		def  int
		name string
	}{
		{&o.MaxLineBytes, defaultMaxLine, "MaxLineBytes"},
		{&o.MaxSources, defaultSources, "MaxSources"},
		{&o.MaxConnections, defaultConns, "MaxConnections"},
		{&o.MaxAddresses, defaultAddrs, "MaxAddresses"},
		{&o.MaxEvidence, defaultEvidence, "MaxEvidence"},
		{&o.MaxListed, defaultListed, "MaxListed"},
		{&o.Rules.ConflictMACs, 2, "Rules.ConflictMACs"},
	}
	for _, f := range ints {
		if *f.p < 0 {
			return o, &OptionError{Field: f.name, Msg: fmt.Sprintf("negative value %d", *f.p)}
		}
		if *f.p == 0 {
			*f.p = f.def
		}
	}
	if o.MaxLineBytes < 64 {
		return o, &OptionError{Field: "MaxLineBytes", Msg: fmt.Sprintf("%d is below the minimum of 64", o.MaxLineBytes)}
	}
	windows := []struct {
		p    *Window
		def  Window
		name string
	}{
		{&o.Rules.BruteForce, Window{5, 10 * time.Minute}, "Rules.BruteForce"},
		{&o.Rules.UserEnumeration, Window{5, 10 * time.Minute}, "Rules.UserEnumeration"},
		{&o.Rules.PreauthScan, Window{10, 10 * time.Minute}, "Rules.PreauthScan"},
		{&o.Rules.SuccessAfterFailures, Window{3, time.Hour}, "Rules.SuccessAfterFailures"},
		{&o.Rules.PortScan, Window{15, time.Minute}, "Rules.PortScan"},
		{&o.Rules.FlipFlops, Window{3, 10 * time.Minute}, "Rules.FlipFlops"},
	}
	for _, w := range windows {
		if w.p.Count < 0 || w.p.Window < 0 {
			return o, &OptionError{Field: w.name, Msg: fmt.Sprintf("negative threshold %d in %v", w.p.Count, w.p.Window)}
		}
		if w.p.Count == 0 {
			w.p.Count = w.def.Count
		}
		if w.p.Window == 0 {
			w.p.Window = w.def.Window
		}
		if w.p.Count > 4096 {
			return o, &OptionError{Field: w.name + ".Count", Msg: fmt.Sprintf("%d is above the maximum of 4096", w.p.Count)}
		}
	}
	buckets := []struct {
		p    *Bucket
		def  Bucket
		name string
	}{
		{&o.Rules.Burst, Bucket{5, 10 * time.Second}, "Rules.Burst"},
		{&o.Rules.SlowBruteForce, Bucket{10, time.Minute}, "Rules.SlowBruteForce"},
	}
	for _, b := range buckets {
		if b.p.Capacity < 0 || b.p.Leak < 0 {
			return o, &OptionError{Field: b.name, Msg: fmt.Sprintf("negative bucket %d per %v", b.p.Capacity, b.p.Leak)}
		}
		if b.p.Capacity == 0 {
			b.p.Capacity = b.def.Capacity
		}
		if b.p.Leak == 0 {
			b.p.Leak = b.def.Leak
		}
	}
	if o.Rules.RiskyPorts == nil {
		o.Rules.RiskyPorts = defaultRiskyPorts
	}
	wh := &o.Rules.WorkHours
	if wh.Start == 0 && wh.End == 0 {
		wh.Start, wh.End = 8*time.Hour, 18*time.Hour
	}
	if wh.Start < 0 || wh.End > 24*time.Hour || wh.Start > wh.End {
		return o, &OptionError{Field: "Rules.WorkHours", Msg: fmt.Sprintf("hours %v to %v are not inside one day", wh.Start, wh.End)}
	}
	if wh.Days == nil {
		wh.Days = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	}
	if wh.Location == nil {
		wh.Location = o.Location
	}
	for _, r := range o.Rules.Disable {
		if _, ok := ruleIndex[r]; !ok {
			return o, &OptionError{Field: "Rules.Disable", Msg: fmt.Sprintf("unknown rule %q", r)}
		}
	}
	return o, nil
}
