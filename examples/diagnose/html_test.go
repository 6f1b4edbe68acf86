package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleHTML writes the HTML report of the bundled samples with -html and
// returns its path.
func sampleHTML(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.html")
	code, out, errs := runMain(t, "-html", path)
	require.Equal(t, exitIncidents, code, errs)
	require.Contains(t, out, "INC-1 CRITICAL", "-html writes the text report to stdout too")
	return path
}

var laneLabel = regexp.MustCompile(`<text class="lane-label"[^>]*>([^<]*)</text>`)

// TestHTMLSelfContained: one file, no script, nothing fetched; a timeline
// with a lane per MAC and a bar per pool.
func TestHTMLSelfContained(t *testing.T) {
	data, err := os.ReadFile(sampleHTML(t))
	require.NoError(t, err)
	html := string(data)
	for _, banned := range []string{"<script", "src=", "href=", "@import", "<link", "<iframe", "<img", "<object", "<embed", "javascript:", "http://", "https://"} {
		assert.NotContains(t, strings.ToLower(html), banned)
	}
	assert.NotRegexp(t, `url\(\s*['"]?[^#'"\s]`, html, "url() only for patterns inside the document")
	assert.Contains(t, html, `<svg class="addrmap"`, "the overlapping pools on one address axis")
	assert.Contains(t, html, ">198.51.100.77</text>")
	var labels []string
	for _, m := range laneLabel.FindAllStringSubmatch(html, -1) {
		labels = append(labels, m[1])
	}
	assert.Equal(t, []string{eastMAC, westMAC}, labels, "one lane per MAC")
	assert.Contains(t, html, "pod/web-7f3c (node cp-1)")
	assert.Contains(t, html, "vip/api (node cp-2)")
	assert.Equal(t, 4, strings.Count(html, `<svg class="poolbar"`), "a bar per pool")
	assert.Equal(t, 4, strings.Count(html, ">warn 85%<"))
	assert.Equal(t, 4, strings.Count(html, ">crit 95%<"))
	for _, kind := range []string{"claimed (ARP)", "answered a ping", "probed (RFC 5227)", "named in a log"} {
		assert.Contains(t, html, kind, "legend")
	}
	assert.Contains(t, html, "<title>02:58:00.321Z arp-probe (frame 10)</title>", "marks say what and which frame")
	assert.Contains(t, html, "Resolution: Version B wins (lww by timestamp); discarded: Version A")
}

// TestHTMLChromium opens the report in headless Chromium: it renders, the
// screenshot is not blank (and shows the timeline's marks), and the
// rendered SVG has both MACs' lanes.
func TestHTMLChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("needs Debian's chromium package (apt-get install -y chromium) to render the HTML report")
	}
	path := sampleHTML(t)
	browse := func(t *testing.T, extra ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir()}, extra...)
		cmd := exec.CommandContext(ctx, chromium, append(args, "file://"+path)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		require.NoError(t, cmd.Run(), "chromium: %s", errb.String())
		return out.Bytes()
	}
	t.Run("screenshot", func(t *testing.T) {
		t.Parallel()
		shot := filepath.Join(t.TempDir(), "report.png")
		browse(t, "--screenshot="+shot, "--window-size=1200,2000")
		f, err := os.Open(shot)
		require.NoError(t, err)
		defer f.Close()
		img, err := png.Decode(f)
		require.NoError(t, err)
		b := img.Bounds()
		require.Equal(t, 1200, b.Dx())
		require.Equal(t, 2000, b.Dy())
		colors := map[uint32]int{}
		near := func(r, g, bl uint32, want [3]uint32) bool {
			d := func(a, b uint32) uint32 {
				if a > b {
					return a - b
				}
				return b - a
			}
			return d(r, want[0]) < 24 && d(g, want[1]) < 24 && d(bl, want[2]) < 24
		}
		var claim, ping, critical, background int
		bg := img.At(2, 2)
		br, bgg, bb, _ := bg.RGBA()
		for y := b.Min.Y; y < b.Max.Y; y += 2 {
			for x := b.Min.X; x < b.Max.X; x += 2 {
				r, g, bl, _ := img.At(x, y).RGBA()
				r, g, bl = r>>8, g>>8, bl>>8
				colors[r<<16|g<<8|bl]++
				switch {
				case r == br>>8 && g == bgg>>8 && bl == bb>>8:
					background++
				case near(r, g, bl, [3]uint32{0x25, 0x63, 0xeb}):
					claim++
				case near(r, g, bl, [3]uint32{0x16, 0xa3, 0x4a}):
					ping++
				case near(r, g, bl, [3]uint32{0xb9, 0x1c, 0x1c}):
					critical++
				}
			}
		}
		total := (b.Dx() / 2) * (b.Dy() / 2)
		t.Logf("%d colours, background %d of %d samples, claim marks %d, ping marks %d, critical red %d", len(colors), background, total, claim, ping, critical)
		assert.Greater(t, len(colors), 64, "a page with text and graphics has many colours")
		assert.Less(t, background, total*9/10, "not blank")
		assert.Greater(t, claim, 20, "the timeline's claim marks are drawn")
		assert.Greater(t, ping, 10, "the timeline's ping marks are drawn")
		assert.Greater(t, critical, 50, "the critical incident's colour")
	})
	t.Run("dom", func(t *testing.T) {
		t.Parallel()
		dom := string(browse(t, "--dump-dom"))
		require.Contains(t, dom, "<svg", "the DOM Chromium built holds the SVG")
		var labels []string
		for _, m := range laneLabel.FindAllStringSubmatch(dom, -1) {
			labels = append(labels, m[1])
		}
		assert.Equal(t, []string{eastMAC, westMAC}, labels, "the timeline has a lane for each MAC")
		assert.Contains(t, dom, "198.51.100.77 is held by two hosts")
	})
}
