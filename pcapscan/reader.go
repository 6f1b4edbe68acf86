package pcapscan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/bits"
	"time"
)

// Sentinel errors returned (wrapped in a *FormatError) by Reader and Scan. Test
// for them with errors.Is.
var (
	// ErrNotCapture means the input starts with neither a pcap nor a pcapng magic
	// number.
	ErrNotCapture = errors.New("not a pcap or pcapng capture")
	// ErrTruncated means the input ended inside a header, record or block.
	ErrTruncated = errors.New("truncated capture")
	// ErrCorrupt means a header, record or block holds a value that cannot be
	// right: a length beyond the limits, an unknown interface, mismatched block
	// lengths, an unsupported version.
	ErrCorrupt = errors.New("corrupt capture")
)

// FormatError describes a capture that cannot be read further. Offset is the byte
// offset, from the start of the input, of the record or block at fault; Frame is
// the number (from 1) of the frame that record would have been. Packets read
// before the error are valid.
type FormatError struct {
	Offset int64  // byte offset of the record or block at fault
	Frame  uint64 // number of the frame it would have been, from 1
	Err    error  // ErrNotCapture, ErrTruncated or ErrCorrupt
	Msg    string // what is wrong, naming the bad value
}

// Error returns "frame N at byte OFFSET: MSG: ERR".
func (e *FormatError) Error() string {
	return fmt.Sprintf("frame %d at byte %d: %s: %v", e.Frame, e.Offset, e.Msg, e.Err)
}

// Unwrap returns the sentinel error.
func (e *FormatError) Unwrap() error { return e.Err }

// LinkType is a link-layer header type as registered for pcap and pcapng
// (LINKTYPE_* values, the low 16 bits of the pcap header field).
type LinkType uint16

// Link types the scanner decodes. Others are read and counted but not analysed.
const (
	LinkNull     LinkType = 0   // BSD loopback: 4-byte address family, host byte order
	LinkEthernet LinkType = 1   // Ethernet II / 802.3, with 802.1Q and 802.1ad tags
	LinkRaw      LinkType = 101 // raw IPv4 or IPv6, no link header
	LinkLoop     LinkType = 108 // OpenBSD loopback: 4-byte address family, network order
	LinkSLL      LinkType = 113 // Linux cooked capture v1 (tcpdump -i any, older libpcap)
	LinkIPv4     LinkType = 228 // raw IPv4
	LinkIPv6     LinkType = 229 // raw IPv6
	LinkSLL2     LinkType = 276 // Linux cooked capture v2 (tcpdump -i any)
)

// Format is the container format of a capture.
type Format uint8

// Capture formats.
const (
	FormatPcap   Format = 1 // libpcap, microsecond or nanosecond, either byte order
	FormatPcapng Format = 2 // pcapng, any number of sections and interfaces
)

// Packet is one captured frame. Data aliases the Reader's buffer and is valid only
// until the next call to Next.
type Packet struct {
	// Data is the captured bytes of the frame, without any FCS the capture
	// declares.
	Data []byte
	// Length is the frame's length on the wire (at least len(Data) unless the
	// file claims otherwise).
	Length int
	// Time is the capture timestamp (UTC); zero for a pcapng simple packet
	// block, which has none.
	Time time.Time
	// LinkType is the link-layer header type of Data.
	LinkType LinkType
	// Interface is the pcapng interface index (0 for pcap and live captures).
	Interface int
	// Frame is the frame number, from 1, as Wireshark counts.
	Frame uint64
	// Offset is the byte offset of the frame's record or block in the input.
	Offset int64
	// BadTime is set when the file's timestamp was invalid (a fraction of a
	// second out of range, or a time beyond year 2262); Time then holds the
	// clamped value.
	BadTime bool
}

// ReaderOptions bound what a Reader accepts. The zero value gives the defaults.
type ReaderOptions struct {
	// MaxPacket is the largest captured length accepted for one frame; a record
	// or block claiming more is an ErrCorrupt error, never an allocation.
	// Default 262144 (libpcap's largest snapshot length).
	MaxPacket int
	// MaxInterfaces bounds the pcapng interfaces per section. Default 1024.
	MaxInterfaces int
}

const (
	defaultMaxPacket     = 262144
	defaultMaxInterfaces = 1024
	// maxSkip is the largest unknown pcapng block skipped without buffering
	// (it is read through, never held); larger lengths are corrupt.
	maxSkip = 1 << 30
)

type ifaceInfo struct {
	link     LinkType
	snaplen  uint32
	fcs      int   // FCS bytes to strip
	tsDiv    int64 // units per second when power of ten (tsPow2 == 0)
	tsPow2   uint8 // exponent when power of two
	tsOffset int64 // seconds added to every timestamp
}

// Reader reads frames from a pcap or pcapng stream through one reusable buffer:
// after the first frames it allocates nothing, whatever the input's length.
type Reader struct {
	r   io.Reader
	buf []byte
	pos int   // start of unread data in buf
	end int   // end of data in buf
	off int64 // input offset of buf[0]
	eof bool
	err error // sticky read error

	format    Format
	be        bool // big-endian section or file
	nano      bool // pcap nanosecond timestamps
	frame     uint64
	maxPacket int
	maxIfaces int
	pcapIface ifaceInfo
	ifaces    []ifaceInfo
	badTimes  uint64
	stalls    int
}

// NewReader reads the file header (or first section header) of a pcap or pcapng
// stream from r and returns a Reader positioned at the first frame. The format is
// detected by its magic number. Errors are *FormatError values.
func NewReader(r io.Reader, o ReaderOptions) (*Reader, error) {
	o.defaults()
	// Room for two of the largest records, so that sliding the tail of one
	// read never leaves less than a whole record; at least 64 KiB.
	size := max(4*(o.MaxPacket+4096), 64<<10)
	rd := &Reader{r: r, buf: make([]byte, size), maxPacket: o.MaxPacket, maxIfaces: o.MaxInterfaces}
	if err := rd.start(); err != nil {
		return nil, err
	}
	return rd, nil
}

// start reads the magic number and, for pcap, the file header.
func (rd *Reader) start() error {
	if err := rd.fill(4); err != nil {
		if errors.Is(err, ErrTruncated) && rd.end == 0 {
			return rd.errorf(0, ErrNotCapture, "empty input")
		}
		return err
	}
	magic := rd.buf[0:4]
	switch {
	case string(magic) == "\xd4\xc3\xb2\xa1":
		rd.format = FormatPcap
	case string(magic) == "\xa1\xb2\xc3\xd4":
		rd.format, rd.be = FormatPcap, true
	case string(magic) == "\x4d\x3c\xb2\xa1":
		rd.format, rd.nano = FormatPcap, true
	case string(magic) == "\xa1\xb2\x3c\x4d":
		rd.format, rd.be, rd.nano = FormatPcap, true, true
	case string(magic) == "\x0a\x0d\x0d\x0a":
		rd.format = FormatPcapng
	default:
		return rd.errorf(0, ErrNotCapture, fmt.Sprintf("unknown magic % x", magic))
	}
	if rd.format == FormatPcap {
		return rd.readPcapHeader()
	}
	return nil
}

// NewReaderBytes is NewReader for a capture already in memory: frames alias
// data, which is never copied.
func NewReaderBytes(data []byte, o ReaderOptions) (*Reader, error) {
	o.defaults()
	rd := &Reader{buf: data, end: len(data), eof: true, maxPacket: o.MaxPacket, maxIfaces: o.MaxInterfaces}
	if err := rd.start(); err != nil {
		return nil, err
	}
	return rd, nil
}

func (o *ReaderOptions) defaults() {
	if o.MaxPacket <= 0 {
		o.MaxPacket = defaultMaxPacket
	}
	if o.MaxInterfaces <= 0 {
		o.MaxInterfaces = defaultMaxInterfaces
	}
}

// Format reports the container format detected.
func (r *Reader) Format() Format { return r.format }

// LinkType reports the pcap file's link type, or for pcapng that of the first
// interface of the current section (0 before any interface is described).
func (r *Reader) LinkType() LinkType {
	if r.format == FormatPcap {
		return r.pcapIface.link
	}
	if len(r.ifaces) > 0 {
		return r.ifaces[0].link
	}
	return 0
}

// Offset reports how many bytes of input have been consumed.
func (r *Reader) Offset() int64 { return r.off + int64(r.pos) }

// BadTimes reports how many frames so far had an invalid timestamp.
func (r *Reader) BadTimes() uint64 { return r.badTimes }

func (r *Reader) errorf(at int64, sentinel error, msg string) error {
	return &FormatError{Offset: at, Frame: r.frame + 1, Err: sentinel, Msg: msg}
}

// fill makes at least n unread bytes available at buf[pos:]. n must not exceed
// len(buf).
func (r *Reader) fill(n int) error {
	for r.end-r.pos < n {
		if r.err != nil {
			return r.err
		}
		if r.eof {
			return r.errorf(r.Offset(), ErrTruncated, fmt.Sprintf("need %d bytes, input ends after %d", n, r.end-r.pos))
		}
		if r.pos+n > len(r.buf) {
			// Slide the unread tail to the front.
			copy(r.buf, r.buf[r.pos:r.end])
			r.off += int64(r.pos)
			r.end -= r.pos
			r.pos = 0
		}
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		if err == io.EOF {
			r.eof = true
		} else if err != nil {
			r.err = fmt.Errorf("frame %d at byte %d: read: %w", r.frame+1, r.Offset(), err)
		} else if m == 0 {
			// A reader returning (0, nil) forever would spin here.
			r.stalls++
			if r.stalls > 100 {
				r.err = fmt.Errorf("frame %d at byte %d: read: %w", r.frame+1, r.Offset(), io.ErrNoProgress)
			}
			continue
		}
		r.stalls = 0
	}
	return nil
}

// atEOF reports whether no more input remains.
func (r *Reader) atEOF() (bool, error) {
	for r.end == r.pos {
		if r.err != nil {
			return false, r.err
		}
		if r.eof {
			return true, nil
		}
		if err := r.fill(1); err != nil && r.err == nil && !r.eof {
			return false, err
		}
	}
	return false, nil
}

// skip discards n bytes, reading through them without buffering.
func (r *Reader) skip(n int64) error {
	for n > 0 {
		if r.end == r.pos {
			if err := r.fill(1); err != nil {
				return err
			}
		}
		k := int64(r.end - r.pos)
		if k > n {
			k = n
		}
		r.pos += int(k)
		n -= k
	}
	return nil
}

func (r *Reader) u16(b []byte) uint16 {
	if r.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *Reader) u32(b []byte) uint32 {
	if r.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *Reader) readPcapHeader() error {
	if err := r.fill(24); err != nil {
		return err
	}
	h := r.buf[r.pos : r.pos+24]
	if major := r.u16(h[4:]); major != 2 {
		return r.errorf(0, ErrCorrupt, fmt.Sprintf("pcap version %d.%d unsupported", major, r.u16(h[6:])))
	}
	lt := r.u32(h[20:])
	r.pcapIface = ifaceInfo{link: LinkType(lt & 0xffff), snaplen: r.u32(h[16:]), tsDiv: 1e6}
	if r.nano {
		r.pcapIface.tsDiv = 1e9
	}
	if lt&0x04000000 != 0 {
		r.pcapIface.fcs = 2 * int(lt>>28)
	}
	r.pos += 24
	return nil
}

// Packets returns an iterator over the remaining frames. It stops after the
// last frame, or yields one error (never io.EOF) and stops. Each Packet's Data
// is valid until the loop continues.
//
//	for p, err := range rd.Packets() {
//		if err != nil { return err }
//		use(p)
//	}
func (r *Reader) Packets() iter.Seq2[Packet, error] {
	return func(yield func(Packet, error) bool) {
		for {
			p, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(p, err) || err != nil {
				return
			}
		}
	}
}

// Next returns the next frame, or io.EOF after the last one. Any other error is a
// *FormatError (or a read error from the underlying reader); frames returned
// before it are valid. The returned Data is valid until the next call.
func (r *Reader) Next() (Packet, error) {
	var p Packet
	err := r.read(&p)
	return p, err
}

// read is Next writing into p, which saves copying the Packet twice.
func (r *Reader) read(p *Packet) error {
	if r.format == FormatPcap {
		return r.nextPcap(p)
	}
	return r.nextPcapng(p)
}

func (r *Reader) nextPcap(p *Packet) error {
	at := r.Offset()
	if r.end-r.pos < 16 { // else a record header is buffered
		if done, err := r.atEOF(); done || err != nil {
			if err == nil {
				err = io.EOF
			}
			return err
		}
		if err := r.fill(16); err != nil {
			return err
		}
	}
	h := r.buf[r.pos : r.pos+16]
	var sec, frac, caplen, origlen uint32
	if r.be {
		sec, frac = binary.BigEndian.Uint32(h[0:]), binary.BigEndian.Uint32(h[4:])
		caplen, origlen = binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:])
	} else {
		sec, frac = binary.LittleEndian.Uint32(h[0:]), binary.LittleEndian.Uint32(h[4:])
		caplen, origlen = binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
	}
	if caplen > uint32(r.maxPacket) {
		return r.errorf(at, ErrCorrupt, fmt.Sprintf("record claims %d captured bytes, limit %d", caplen, r.maxPacket))
	}
	n := 16 + int(caplen)
	if r.end-r.pos < n {
		if err := r.fill(n); err != nil {
			return err
		}
	}
	r.frame++
	// Field by field: cheaper than building a Packet and copying it.
	p.Data, p.Length, p.LinkType, p.Interface = r.buf[r.pos+16:r.pos+n], int(origlen), r.pcapIface.link, 0
	p.Frame, p.Offset, p.BadTime = r.frame, at, false
	r.pos += n
	if limit := uint32(r.pcapIface.tsDiv); frac >= limit {
		frac, p.BadTime = limit-1, true
		r.badTimes++
	}
	p.Time = time.Unix(int64(sec), int64(frac)*(1e9/r.pcapIface.tsDiv)).UTC()
	r.stripFCS(p, r.pcapIface.fcs)
	return nil
}

func (r *Reader) stripFCS(p *Packet, fcs int) {
	if fcs > 0 && len(p.Data) >= fcs && p.Length == len(p.Data) {
		p.Data = p.Data[:len(p.Data)-fcs]
		p.Length -= fcs
	}
}

// pcapng block types.
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockOPB = 0x00000002
	blockSPB = 0x00000003
	blockEPB = 0x00000006
)

func (r *Reader) nextPcapng(out *Packet) error {
	for {
		if done, err := r.atEOF(); done || err != nil {
			if err == nil {
				err = io.EOF
			}
			return err
		}
		at := r.Offset()
		if err := r.fill(8); err != nil {
			return err
		}
		h := r.buf[r.pos:]
		btype := r.u32(h[0:])
		if btype == blockSHB {
			if err := r.readSHB(at); err != nil {
				return err
			}
			continue
		}
		blen := r.u32(h[4:])
		if blen < 12 || blen%4 != 0 {
			return r.errorf(at, ErrCorrupt, fmt.Sprintf("block type %#x has length %d", btype, blen))
		}
		switch btype {
		case blockIDB, blockEPB, blockSPB, blockOPB:
		default:
			if blen > maxSkip {
				return r.errorf(at, ErrCorrupt, fmt.Sprintf("block type %#x claims %d bytes", btype, blen))
			}
			if err := r.skip(int64(blen)); err != nil {
				return err
			}
			continue
		}
		if int(blen) > r.maxPacket+4096 {
			return r.errorf(at, ErrCorrupt, fmt.Sprintf("block type %#x claims %d bytes, limit %d", btype, blen, r.maxPacket+4096))
		}
		if err := r.fill(int(blen)); err != nil {
			return err
		}
		b := r.buf[r.pos : r.pos+int(blen)]
		if tail := r.u32(b[blen-4:]); tail != blen {
			return r.errorf(at, ErrCorrupt, fmt.Sprintf("block type %#x length %d, trailing length %d", btype, blen, tail))
		}
		r.pos += int(blen)
		body := b[8 : blen-4]
		if btype == blockIDB {
			if err := r.readIDB(at, body); err != nil {
				return err
			}
			continue
		}
		p, err := r.packetBlock(at, btype, body)
		if err != nil {
			return err
		}
		*out = p
		return nil
	}
}

func (r *Reader) readSHB(at int64) error {
	if err := r.fill(12); err != nil {
		return err
	}
	h := r.buf[r.pos:]
	switch string(h[8:12]) {
	case "\x1a\x2b\x3c\x4d":
		r.be = true
	case "\x4d\x3c\x2b\x1a":
		r.be = false
	default:
		return r.errorf(at, ErrCorrupt, fmt.Sprintf("section header byte-order magic % x", h[8:12]))
	}
	blen := r.u32(h[4:])
	if blen < 28 || blen%4 != 0 || int(blen) > r.maxPacket+4096 {
		return r.errorf(at, ErrCorrupt, fmt.Sprintf("section header length %d", blen))
	}
	if err := r.fill(int(blen)); err != nil {
		return err
	}
	b := r.buf[r.pos : r.pos+int(blen)]
	if tail := r.u32(b[blen-4:]); tail != blen {
		return r.errorf(at, ErrCorrupt, fmt.Sprintf("section header length %d, trailing length %d", blen, tail))
	}
	if major := r.u16(b[12:]); major != 1 {
		return r.errorf(at, ErrCorrupt, fmt.Sprintf("pcapng version %d unsupported", major))
	}
	r.pos += int(blen)
	r.ifaces = r.ifaces[:0]
	return nil
}

func (r *Reader) readIDB(at int64, body []byte) error {
	if len(body) < 8 {
		return r.errorf(at, ErrCorrupt, "interface description block too short")
	}
	if len(r.ifaces) >= r.maxIfaces {
		return r.errorf(at, ErrCorrupt, fmt.Sprintf("more than %d interfaces in one section", r.maxIfaces))
	}
	ifc := ifaceInfo{link: LinkType(r.u16(body[0:])), snaplen: r.u32(body[4:]), tsDiv: 1e6}
	opts := body[8:]
	for len(opts) >= 4 {
		code, olen := r.u16(opts[0:]), int(r.u16(opts[2:]))
		if code == 0 {
			break
		}
		padded := (olen + 3) &^ 3
		if 4+padded > len(opts) {
			return r.errorf(at, ErrCorrupt, fmt.Sprintf("interface option %d claims %d bytes", code, olen))
		}
		v := opts[4 : 4+olen]
		switch {
		case code == 9 && olen >= 1: // if_tsresol
			res := v[0]
			if res&0x80 != 0 {
				e := res & 0x7f
				if e > 63 {
					return r.errorf(at, ErrCorrupt, fmt.Sprintf("if_tsresol 2^-%d unsupported", e))
				}
				ifc.tsPow2, ifc.tsDiv = e, 0
				if e == 0 {
					ifc.tsDiv = 1
				}
			} else {
				if res > 18 {
					return r.errorf(at, ErrCorrupt, fmt.Sprintf("if_tsresol 10^-%d unsupported", res))
				}
				ifc.tsDiv = 1
				for range res {
					ifc.tsDiv *= 10
				}
			}
		case code == 13 && olen >= 1: // if_fcslen, in bytes
			ifc.fcs = int(v[0])
		case code == 14 && olen == 8: // if_tsoffset, seconds
			if r.be {
				ifc.tsOffset = int64(binary.BigEndian.Uint64(v))
			} else {
				ifc.tsOffset = int64(binary.LittleEndian.Uint64(v))
			}
		}
		opts = opts[4+padded:]
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

func (r *Reader) packetBlock(at int64, btype uint32, body []byte) (Packet, error) {
	var (
		ifIdx          int
		tsHi, tsLo     uint32
		caplen, length uint32
		data           []byte
		hasTime        = true
	)
	switch btype {
	case blockEPB, blockOPB:
		if len(body) < 20 {
			return Packet{}, r.errorf(at, ErrCorrupt, fmt.Sprintf("block type %#x: packet block too short", btype))
		}
		if btype == blockEPB {
			ifIdx = int(r.u32(body[0:]))
		} else { // obsolete packet block: 16-bit interface, 16-bit drops count
			ifIdx = int(r.u16(body[0:]))
		}
		tsHi, tsLo = r.u32(body[4:]), r.u32(body[8:])
		caplen, length = r.u32(body[12:]), r.u32(body[16:])
		data = body[20:]
	case blockSPB:
		if len(body) < 4 {
			return Packet{}, r.errorf(at, ErrCorrupt, "simple packet block too short")
		}
		length = r.u32(body[0:])
		data = body[4:]
		caplen = uint32(len(data))
		if length < caplen {
			caplen = length
		}
		hasTime = false
	}
	if ifIdx >= len(r.ifaces) {
		return Packet{}, r.errorf(at, ErrCorrupt, fmt.Sprintf("packet for interface %d, section has %d", ifIdx, len(r.ifaces)))
	}
	ifc := &r.ifaces[ifIdx]
	if btype == blockSPB && ifc.snaplen > 0 && caplen > ifc.snaplen {
		caplen = ifc.snaplen
	}
	if caplen > uint32(len(data)) {
		return Packet{}, r.errorf(at, ErrCorrupt, fmt.Sprintf("packet claims %d captured bytes, block holds %d", caplen, len(data)))
	}
	r.frame++
	p := Packet{Data: data[:caplen], Length: int(length), LinkType: ifc.link, Interface: ifIdx, Frame: r.frame, Offset: at}
	if hasTime {
		p.Time, p.BadTime = ifc.time(uint64(tsHi)<<32 | uint64(tsLo))
		if p.BadTime {
			r.badTimes++
		}
	}
	r.stripFCS(&p, ifc.fcs)
	return p, nil
}

// time converts a pcapng timestamp in the interface's units to a time, clamping
// (and reporting) values whose seconds do not fit.
func (ifc *ifaceInfo) time(ts uint64) (time.Time, bool) {
	var sec, nsec uint64
	if ifc.tsDiv > 0 {
		div := uint64(ifc.tsDiv)
		sec = ts / div
		rem := ts % div
		if div <= 1e9 {
			nsec = rem * (1e9 / div)
		} else {
			nsec = rem / (div / 1e9)
		}
	} else {
		e := ifc.tsPow2
		sec = ts >> e
		rem := ts & (1<<e - 1)
		hi, lo := bits.Mul64(rem, 1e9)
		nsec, _ = bits.Div64(hi, lo, 1<<e) // hi < 1<<e as rem < 1<<e
	}
	const maxSec int64 = math.MaxInt64/1_000_000_000 - 1
	bad := false
	s := int64(sec)
	if sec > uint64(maxSec) {
		s, bad = maxSec, true
	}
	if s2 := s + ifc.tsOffset; (ifc.tsOffset > 0 && s2 < s) || s2 > maxSec || s2 < -maxSec {
		bad = true
	} else {
		s = s2
	}
	return time.Unix(s, int64(nsec)).UTC(), bad
}
