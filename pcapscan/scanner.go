package pcapscan

import (
	"cmp"
	"context"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"
)

// Options tune the detectors. The zero value gives the documented defaults.
type Options struct {
	// Window is how close in time evidence must be to count together: two
	// MACs claiming one address, a takeover and the traffic that follows it.
	// An address, flow or server quiet for Window has its findings reported
	// and its state dropped. Default 5 minutes.
	Window time.Duration
	// ReplyWindow is how long after one ARP request or one echo request the
	// answers count as answers to it ("two answers to one request").
	// Default 1 second.
	ReplyWindow time.Duration
	// ProbeWindow is how long after an ARP probe or DAD solicitation an
	// answer counts as answering it. Default 3 seconds (RFC 5227's
	// PROBE_WAIT + PROBE_NUM*PROBE_MAX is under 4 s; ANNOUNCE_WAIT is 2 s).
	ProbeWindow time.Duration
	// DuplicateWindow is how far apart two copies of one IP packet (same
	// identification and transport header; TTL one lower behind a router, or
	// equal from the same MAC) may be to count as one packet seen twice.
	// Default 1 second.
	DuplicateWindow time.Duration
	// RequestIDHeaders are the HTTP request headers holding a request ID,
	// matched case-insensitively. Default ["X-Request-ID"].
	RequestIDHeaders []string
	// RequestIDRepeats is how many sightings of one request ID within
	// RequestIDWindow make a retry storm. Default 3.
	RequestIDRepeats int
	// RequestIDWindow bounds a retry storm in time. Default 1 minute.
	RequestIDWindow time.Duration
	// Retransmissions is the per-flow retransmission count from which a
	// tcp-retransmissions finding is reported (warning when at least a tenth
	// of the flow's data segments were retransmitted, info otherwise).
	// Default 3.
	Retransmissions int
	// TableSize is the number of entries in each address table (ARP claims,
	// IP sources, next hops, MACs, request IDs); the flow table has four
	// times as many. Memory is fixed by it: about 5.5 KiB per entry in all
	// tables together, so the default 4096 uses about 23 MiB. At most
	// 1<<20 (about 5.5 GiB).
	TableSize int
	// MaxPacket bounds a frame's captured length; see ReaderOptions.
	MaxPacket int
	// Progress, when set, is called with the bytes read so far and the total
	// (-1 when unknown) about every 16 MiB of input and once at the end.
	Progress func(read, total int64)
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Window, 5*time.Minute)
	def(&o.ReplyWindow, time.Second)
	def(&o.ProbeWindow, 3*time.Second)
	def(&o.DuplicateWindow, time.Second)
	def(&o.RequestIDWindow, time.Minute)
	if len(o.RequestIDHeaders) == 0 {
		o.RequestIDHeaders = []string{"X-Request-ID"}
	}
	if o.RequestIDRepeats <= 0 {
		o.RequestIDRepeats = 3
	}
	if o.Retransmissions <= 0 {
		o.Retransmissions = 3
	}
	if o.TableSize <= 0 {
		o.TableSize = 4096
	}
	o.TableSize = min(o.TableSize, maxTableSize)
}

// maxTableSize bounds Options.TableSize.
const maxTableSize = 1 << 20

// Stats counts what a scan saw.
type Stats struct {
	Packets    uint64 // frames read
	Bytes      uint64 // captured bytes of those frames
	Undecoded  uint64 // frames of a link type or protocol not analysed
	Duplicates uint64 // IP packets recognised as copies of one seen just before
	BadTimes   uint64 // frames whose timestamp was invalid (clamped)
	Evicted    uint64 // table entries dropped to make room before their time
}

// Scanner runs every detector over a stream of frames. Make one with New (the
// zero value is not usable); its memory is allocated by New and does not grow
// with the input. A Scanner is not safe for concurrent use; use one per
// goroutine, and Scan one capture after another with it.
type Scanner struct {
	o       Options
	headers [][]byte

	arp   *table[addrKey, arpEntry]
	ips   *table[addrKey, ipEntry]
	paths *table[addrKey, pathEntry]
	// remote has a bit set for every address ever seen behind a router, so
	// that most packets skip the paths lookup (a set bit may be a collision:
	// it only costs that lookup).
	remote bitset
	macs   *table[macKey, macEntry]
	spoof  *table[spoofKey, spoofEntry]
	flows  *table[flowKey, flowState]
	reqs   *table[uint64, reqEntry]
	dhcp   *table[dhcpKey, dhcpEntry]
	dups   []dupEntry

	emit      func(Finding)
	now       int64
	lastSweep int64
	sinceSwp  int
	sweepGap  int64 // capture time between sweeps
	stats     Stats
	pending   []Finding
	now0      []Finding // spare buffer for findings reported outside sweeps
	dirty     bool      // state has been touched since New or Reset

	// method values made once, so that passing them allocates nothing
	arpDone   func(*addrKey, *arpEntry)
	ipDone    func(*addrKey, *ipEntry)
	flowDone  func(*flowKey, *flowState)
	spoofDone func(*spoofKey, *spoofEntry)
	dhcpDone  func(*dhcpKey, *dhcpEntry)
	reqDone   func(*uint64, *reqEntry)

	// scratch, reused for every frame
	fk   flowKey // TCP flow of the frame, its hash and direction
	fh   uint64
	fdir int
	f    frame
	ip   ipPacket
	tcp  tcpSegment
	udp  udpDatagram
	icm  icmpMessage
	ar   arpPacket
	dh   dhcpMessage
}

// New returns a Scanner with opts (zero fields take their defaults).
func New(opts Options) *Scanner {
	opts.defaults()
	s := &Scanner{o: opts, sweepGap: max(int64(opts.Window/10), int64(time.Second))}
	for _, h := range opts.RequestIDHeaders {
		s.headers = append(s.headers, []byte(strings.ToLower(h)))
	}
	n := opts.TableSize
	s.arp = newTable(n, evictWith(s, s.arpFindings))
	s.ips = newTable(n, evictWith(s, s.ipFindings))
	s.paths = newTable[addrKey, pathEntry](n, nil)
	s.macs = newTable[macKey, macEntry](n, nil)
	s.spoof = newTable(n/4, evictWith(s, s.spoofFinding))
	s.flows = newTable(4*n, evictWith(s, s.flowFindings))
	s.reqDone = func(_ *uint64, e *reqEntry) { s.reqFinding(e) }
	s.reqs = newTable(n, evictWith(s, s.reqDone))
	s.dhcp = newTable(n/16, evictWith(s, s.dhcpFinding))
	s.dups = largeSlice[dupEntry](2 * n)
	s.arpDone, s.ipDone, s.flowDone = s.arpFindings, s.ipFindings, s.flowFindings
	s.spoofDone, s.dhcpDone = s.spoofFinding, s.dhcpFinding
	return s
}

// Options returns the options in force, defaults filled in.
func (s *Scanner) Options() Options { return s.o }

// Stats returns the counters of the current or last scan.
func (s *Scanner) Stats() Stats { return s.stats }

// Reset drops all state and counters, as before a new capture.
func (s *Scanner) Reset() {
	// Tables as New made them are already zero: clearing them would only
	// fault in pages the capture may never use.
	if s.dirty {
		s.arp.reset()
		s.ips.reset()
		s.paths.reset()
		clear(s.remote[:])
		s.macs.reset()
		s.spoof.reset()
		s.flows.reset()
		s.reqs.reset()
		s.dhcp.reset()
		clear(s.dups)
		s.dirty = false
	}
	s.now, s.lastSweep, s.sinceSwp, s.stats = 0, 0, 0, Stats{}
	s.pending = s.pending[:0]
}

// Scan reads a pcap or pcapng capture from r and calls fn for every finding. It
// is ScanContext with a background context.
func (s *Scanner) Scan(r io.Reader, fn func(Finding)) error {
	return s.ScanContext(context.Background(), r, fn)
}

const progressEvery = 16 << 20

// ScanContext reads a pcap or pcapng capture (format detected by magic) from r,
// runs every detector and calls fn for every finding, in order of first
// evidence within each batch; findings still open at the end are reported
// before it returns. State is reset first, so each call analyses one capture.
//
// A truncated or corrupt capture, or a read error, ends the scan: the findings
// up to that point are still reported and the error (a *FormatError for the
// capture itself) is returned. It checks ctx between frames.
func (s *Scanner) ScanContext(ctx context.Context, r io.Reader, fn func(Finding)) error {
	s.Reset()
	total := inputSize(r)
	rd, err := NewReader(r, ReaderOptions{MaxPacket: s.o.MaxPacket})
	if err != nil {
		return err
	}
	var nextProgress int64 = progressEvery
	var p Packet
	for {
		if err := rd.read(&p); err != nil {
			s.Flush(fn)
			if s.o.Progress != nil {
				s.o.Progress(rd.Offset(), total)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		s.Observe(&p, fn)
		if s.stats.Packets&1023 == 0 {
			if err := ctx.Err(); err != nil {
				s.Flush(fn)
				return err
			}
			if s.o.Progress != nil && rd.Offset() >= nextProgress {
				s.o.Progress(rd.Offset(), total)
				nextProgress = rd.Offset() + progressEvery
			}
		}
	}
}

func inputSize(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	case interface{ Size() int64 }:
		return v.Size()
	case interface{ Len() int }:
		return int64(v.Len())
	}
	return -1
}

// sweepEvery is how many frames pass at least between two sweeps of the
// tables for entries that have been quiet longer than the window; a tenth of
// the window (at least a second) of capture time must pass too, so that an
// entry is reported at most that long after its window closed.
const sweepEvery = 8192

// Observe runs the detectors on one frame. Findings that complete (their
// address or flow went quiet, or their entry had to make room) are passed to
// emit. Frames must come in capture order; a timestamp earlier than one seen
// before is treated as that earlier time for windows.
func (s *Scanner) Observe(p *Packet, emit func(Finding)) {
	s.emit = emit
	s.dirty = true
	s.stats.Packets++
	s.stats.Bytes += uint64(len(p.Data))
	if p.BadTime {
		s.stats.BadTimes++
	}
	ts := s.now // a frame without a time (pcapng simple packet block)
	if !p.Time.IsZero() {
		ts = p.Time.UnixNano()
	}
	if ts > s.now {
		s.now = ts
	}
	s.sinceSwp++
	if s.sinceSwp >= sweepEvery && s.now-s.lastSweep >= s.sweepGap {
		s.sweep(s.now - int64(s.o.Window))
	}
	f := &s.f
	*f = frame{}
	if !decodeLink(p.LinkType, p.Data, f) {
		s.stats.Undecoded++
		return
	}
	f.seg.iface = uint16(p.Interface)
	switch f.etype {
	case etherARP:
		if decodeARP(f.payload, &s.ar) {
			s.onARP(p, ts)
			return
		}
	case etherIPv4:
		if decodeIPv4(f.payload, &s.ip) {
			s.onIP(p, ts)
			return
		}
	case etherIPv6:
		if decodeIPv6(f.payload, &s.ip) {
			s.onIP(p, ts)
			return
		}
	}
	s.stats.Undecoded++
}

// Flush reports every finding still open, sorted by first evidence, and drops
// the state they came from. Call it at the end of a stream fed through Observe.
func (s *Scanner) Flush(emit func(Finding)) {
	s.emit = emit
	s.sweep(1<<63 - 1)
}

// sweep reports and drops entries whose last evidence is before cutoff.
func (s *Scanner) sweep(cutoff int64) {
	s.sinceSwp, s.lastSweep = 0, s.now
	s.pending = s.pending[:0]
	sweepTable(s.arp, cutoff, s.arpDone)
	sweepTable(s.ips, cutoff, s.ipDone)
	sweepTable(s.spoof, cutoff, s.spoofDone)
	sweepTable(s.flows, cutoff, s.flowDone)
	reqCut := cutoff
	if cutoff != 1<<63-1 {
		reqCut = s.now - int64(s.o.RequestIDWindow)
	}
	s.reqs.each(func(k *uint64, e *reqEntry) bool {
		if e.first >= reqCut {
			return true
		}
		s.reqFinding(e)
		return false
	})
	sweepTable(s.dhcp, cutoff, s.dhcpDone)
	sweepTable(s.paths, cutoff, nil)
	sweepTable(s.macs, cutoff, nil)
	s.flushPending()
}

// report queues a finding during a sweep, or emits it at once otherwise.
func (s *Scanner) report(f Finding) {
	s.pending = append(s.pending, f)
}

func (s *Scanner) flushPending() {
	slices.SortStableFunc(s.pending, func(a, b Finding) int {
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return a.IP.Compare(b.IP)
	})
	for _, f := range s.pending {
		if s.emit != nil {
			s.emit(f)
		}
	}
	clear(s.pending)
	s.pending = s.pending[:0]
}

// beginNow starts reporting outside a sweep: findings reported until endNow
// are emitted at once (sorted) by endNow.
func (s *Scanner) beginNow() []Finding {
	saved := s.pending
	s.pending = s.now0[:0]
	return saved
}

func (s *Scanner) endNow(saved []Finding) {
	s.flushPending()
	s.now0 = s.pending[:0]
	s.pending = saved
}

// reportNow reports the findings of one entry at once.
func reportNow[K, V any](s *Scanner, report func(*K, *V), k *K, v *V) {
	saved := s.beginNow()
	report(k, v)
	s.endNow(saved)
}

// evictWith returns a table's eviction callback: an entry that has to make
// room reports its findings first. It is made once, in New.
func evictWith[K, V any](s *Scanner, report func(*K, *V)) func(*K, *V) {
	return func(k *K, v *V) {
		s.stats.Evicted++
		reportNow(s, report, k, v)
	}
}

// entry is a table value that knows the time of its latest evidence.
type entry[V any] interface {
	*V
	lastSeen() int64
}

// current returns the entry for k in t, inserting it when absent. An entry whose
// last evidence is older than the window is an episode that has ended: its
// findings are reported (by done, when not nil) and it starts again empty.
func current[K interface {
	comparable
	hash() uint64
}, V any, PV entry[V]](s *Scanner, t *table[K, V], k K, ts int64, done func(*K, *V)) *V {
	return currentHashed[K, V, PV](s, t, k, k.hash(), ts, done)
}

// currentHashed is current with the key's hash already computed.
func currentHashed[K comparable, V any, PV entry[V]](s *Scanner, t *table[K, V], k K, h uint64, ts int64, done func(*K, *V)) *V {
	v, fresh := t.upsert(h, k, ts)
	if !fresh && PV(v).lastSeen() < ts-int64(s.o.Window) {
		if done != nil {
			kk := k
			reportNow(s, done, &kk, v)
		}
		var zero V
		*v = zero
	}
	return v
}

// sweepTable reports (by done, when not nil) and drops the entries of t whose
// last evidence is before cutoff.
func sweepTable[K comparable, V any, PV entry[V]](t *table[K, V], cutoff int64, done func(*K, *V)) {
	t.each(func(k *K, v *V) bool {
		if PV(v).lastSeen() >= cutoff {
			return true
		}
		if done != nil {
			done(k, v)
		}
		return false
	})
}

// addrKey identifies an address on a segment.
type addrKey struct {
	seg  segment
	addr ipaddr
}

func (k addrKey) hash() uint64 { return hashAddr(hashSeg(k.seg), k.addr) }

// macKey identifies a MAC on a segment.
type macKey struct {
	seg segment
	m   mac
}

func (k macKey) hash() uint64 { return hashMAC(hashSeg(k.seg), k.m) }

// base fills the fields every address finding shares.
func (k addrKey) base(kind Kind) Finding {
	return Finding{Kind: kind, IP: k.addr.netip(), VLAN: k.seg.vlan, OuterVLAN: k.seg.outer, Interface: int(k.seg.iface)}
}
