package logscan

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseHeader(t *testing.T) {
	ref := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		name            string
		line            string
		format          Format
		time            time.Time // zero: no time
		host, prog, pid string
		msg             string
		loc             *time.Location
	}{
		{"bsd", "Jun 14 09:00:01 web1 sshd[42]: Failed password", FormatBSD, time.Date(2026, 6, 14, 9, 0, 1, 0, time.UTC), "web1", "sshd", "42", "Failed password", nil},
		{"bsd unpadded day", "Feb 7 16:01:07 linux-m899 sshd[5106]: x", FormatBSD, time.Date(2026, 2, 7, 16, 1, 7, 0, time.UTC), "linux-m899", "sshd", "5106", "x", nil},
		{"bsd zero-padded day", "Jul 05 18:22:44 mercury sshd[4669]: x", FormatBSD, time.Date(2025, 7, 5, 18, 22, 44, 0, time.UTC), "mercury", "sshd", "4669", "x", nil},
		{"bsd no host", "Jun 14 09:00:01 sshd[9]: x", FormatBSD, time.Date(2026, 6, 14, 9, 0, 1, 0, time.UTC), "", "sshd", "9", "x", nil},
		{"bsd bracket tag", "Jun 14 09:00:01 [sshd]: x y", FormatBSD, time.Date(2026, 6, 14, 9, 0, 1, 0, time.UTC), "", "sshd", "", "x y", nil},
		{"bsd bracket tag no colon", "Jun 14 09:00:01 h [sshd] x", FormatBSD, time.Date(2026, 6, 14, 9, 0, 1, 0, time.UTC), "h", "sshd", "", "x", nil},
		{"bsd pri", "<38>Jun 14 09:00:01 h sshd[1]: x", FormatBSD, time.Date(2026, 6, 14, 9, 0, 1, 0, time.UTC), "h", "sshd", "1", "x", nil},
		{"bsd verbose", "Apr  2 17:51:27 <4.3> pancake sshd[55624]: x", FormatBSD, time.Date(2026, 4, 2, 17, 51, 27, 0, time.UTC), "pancake", "sshd", "55624", "x", nil},
		{"bsd very verbose", "Mar 19 23:48:18 <auth.info> pancake sshd[1]: x", FormatBSD, time.Date(2026, 3, 19, 23, 48, 18, 0, time.UTC), "pancake", "sshd", "1", "x", nil},
		{"bsd bracketed date", "[Jun 14 09:00:01] machine test-demo(pam_unix)[13709] x", FormatBSD, time.Date(2026, 6, 14, 9, 0, 1, 0, time.UTC), "machine", "test-demo", "13709", "x", nil},
		{"bsd in zone", "Jun 14 09:00:01 h sshd[1]: x", FormatBSD, time.Date(2026, 6, 14, 8, 0, 1, 0, time.UTC), "h", "sshd", "1", "x", cet},
		{"bsd kernel", "Jun 14 09:00:01 h kernel: [  970.699396] IN=eth0", FormatBSD, time.Date(2026, 6, 14, 9, 0, 1, 0, time.UTC), "h", "kernel", "", "[  970.699396] IN=eth0", nil},
		{"bsd fraction", "Jun 14 09:00:01.250 h sshd[1]: x", FormatBSD, time.Date(2026, 6, 14, 9, 0, 1, 250e6, time.UTC), "h", "sshd", "1", "x", nil},
		{"rfc3339", "2015-04-16T18:02:50.321974+00:00 host sshd[2716]: x", FormatRFC3339, time.Date(2015, 4, 16, 18, 2, 50, 321974000, time.UTC), "host", "sshd", "2716", "x", nil},
		{"rfc3339 offset", "2023-11-14T00:20:42.738197+01:00 myserver sshd[1]: x", FormatRFC3339, time.Date(2023, 11, 13, 23, 20, 42, 738197000, time.UTC), "myserver", "sshd", "1", "x", nil},
		{"rfc3339 Z", "2026-03-02T09:10:00Z web1 sshd[4300]: x", FormatRFC3339, time.Date(2026, 3, 2, 9, 10, 0, 0, time.UTC), "web1", "sshd", "4300", "x", nil},
		{"iso local", "2005-06-21 16:55:09 machine sshd[1]: x", FormatRFC3339, time.Date(2005, 6, 21, 15, 55, 9, 0, time.UTC), "machine", "sshd", "1", "x", cet},
		{"iso UTC word", "2005-06-21 14:55:10 UTC machine sshd[1]: x", FormatRFC3339, time.Date(2005, 6, 21, 14, 55, 10, 0, time.UTC), "machine", "sshd", "1", "x", cet},
		{"rfc5424", "<38>1 2019-07-08T17:40:16.954167-04:00 hostname.example.com sshd 57915 - - Failed unknown", FormatRFC5424, time.Date(2019, 7, 8, 21, 40, 16, 954167000, time.UTC), "hostname.example.com", "sshd", "57915", "Failed unknown", nil},
		{"rfc5424 sd", `<38>1 2019-07-08T17:40:17.954167-04:00 h sshd 55555 ID47 [timeQuality tzKnown="1" isSynced="0"][xxx@123 test="[brackets\] \"q\""] msg here`, FormatRFC5424, time.Date(2019, 7, 8, 21, 40, 17, 954167000, time.UTC), "h", "sshd", "55555", "msg here", nil},
		{"rfc5424 nil fields and BOM", "<13>1 - - - - - - \ufeffhello", FormatRFC5424, time.Time{}, "", "", "", "hello", nil},
		{"bare", "srv sshd[123]: Connection from 192.0.2.5", FormatBare, time.Time{}, "srv", "sshd", "123", "Connection from 192.0.2.5", nil},
		{"bare kernel prefix in message", "srv sshd[20878]: kernel:[  970.699396]: Failed", FormatBare, time.Time{}, "srv", "sshd", "20878", "kernel:[  970.699396]: Failed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := tt.loc
			if loc == nil {
				loc = time.UTC
			}
			tc := newTimeCtx(loc, ref)
			var rec record
			require.True(t, tc.parseHeader(tt.line, &rec))
			assert.Equal(t, tt.format, rec.format)
			assert.Equal(t, !tt.time.IsZero(), rec.hasTime)
			if !tt.time.IsZero() {
				assert.Equal(t, tt.time, time.Unix(0, rec.ns).UTC())
			}
			assert.Equal(t, tt.host, rec.host)
			assert.Equal(t, tt.prog, rec.prog)
			assert.Equal(t, tt.pid, rec.pid)
			assert.Equal(t, tt.msg, rec.msg)
		})
	}
}

func TestParseHeaderRejects(t *testing.T) {
	tc := newTimeCtx(time.UTC, time.Now())
	for _, line := range []string{
		"",
		"   indented continuation",
		"just some words here",
		"Jun 99 09:00:01 h sshd[1]: x",
		"Jun 14 25:00:01 h sshd[1]: x",
		"2026-13-01T00:00:00Z h sshd[1]: x",
		"2026-01-01T00:00:00+99:00 h sshd[1]: x",
		"<38>1 notatime h sshd 1 - - x",
		`<38>1 2019-07-08T17:40:17Z h sshd 1 - [unterminated x`,
		"<38>1 2019-07-08T17:40:17Z h",
	} {
		var rec record
		assert.False(t, tc.parseHeader(line, &rec), "%q", line)
	}
}

func TestYearInference(t *testing.T) {
	// fail2ban's rule: the reference's year, or the year before when that
	// is more than a day in the future.
	ref := time.Date(2005, 8, 14, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		line string
		year int
	}{
		{"Jul 27 00:00:00 h p: x", 2005},
		{"Aug 15 09:59:59 h p: x", 2005}, // within a day of the reference
		{"Aug 15 10:00:01 h p: x", 2004}, // a day and a second after
		{"Nov 23 00:00:00 h p: x", 2004},
		{"Jan  1 00:00:00 h p: x", 2005},
	} {
		tc := newTimeCtx(time.UTC, ref)
		var rec record
		require.True(t, tc.parseHeader(tt.line, &rec))
		assert.Equal(t, tt.year, time.Unix(0, rec.ns).UTC().Year(), tt.line)
	}
}

func TestYearRollover(t *testing.T) {
	// A stream that runs from December into January moves to the next
	// year, also when the reference (say the file's mtime) is December 31.
	ref := time.Date(2025, 12, 31, 23, 59, 0, 0, time.UTC)
	tc := newTimeCtx(time.UTC, ref)
	var got []string
	for _, l := range []string{
		"Dec 31 23:58:00 h p: x",
		"Dec 31 23:59:59 h p: x",
		"Jan  1 00:00:01 h p: x",
		"Jan  1 00:05:00 h p: x",
	} {
		var rec record
		require.True(t, tc.parseHeader(l, &rec))
		got = append(got, time.Unix(0, rec.ns).UTC().Format(time.DateTime))
	}
	assert.Equal(t, []string{"2025-12-31 23:58:00", "2025-12-31 23:59:59", "2026-01-01 00:00:01", "2026-01-01 00:05:00"}, got)

	// Without the December line, January is this year's (2025 would be
	// the inference from a reference of 2025-06-01).
	tc = newTimeCtx(time.UTC, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	var rec record
	require.True(t, tc.parseHeader("Jan  1 00:00:01 h p: x", &rec))
	assert.Equal(t, 2025, time.Unix(0, rec.ns).UTC().Year())
}

func TestScanYearRollover(t *testing.T) {
	// the same through the analyzer: findings spanning New Year
	var b strings.Builder
	for i, ts := range []string{"Dec 31 23:59:50", "Dec 31 23:59:55", "Jan  1 00:00:01", "Jan  1 00:00:05", "Jan  1 00:00:09"} {
		b.WriteString(ts + " h sshd[" + string(rune('1'+i)) + "]: Failed password for root from 192.0.2.1 port 22 ssh2\n")
	}
	var fs []Finding
	require.NoError(t, New(Options{Location: time.UTC, Reference: time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)}).Scan(strings.NewReader(b.String()), func(f Finding) { fs = append(fs, f) }))
	bf := findingsOf(fs, RuleBruteForce)
	require.Len(t, bf, 1, "five failures in 19 seconds across New Year")
	assert.Equal(t, time.Date(2025, 12, 31, 23, 59, 50, 0, time.UTC), bf[0].First)
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 9, 0, time.UTC), bf[0].Last)
}
