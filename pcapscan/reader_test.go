package pcapscan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pcapFile renders a classic pcap file with the given byte order and
// resolution; fracs are the raw sub-second fields of each record.
func pcapFile(order byteOrder, nano bool, linkField uint32, recs ...pcapRec) []byte {
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	b := order.AppendUint32(nil, magic)
	b = order.AppendUint16(b, 2)
	b = order.AppendUint16(b, 4)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 0)
	b = order.AppendUint32(b, 65535)
	b = order.AppendUint32(b, linkField)
	for _, r := range recs {
		caplen := r.caplen
		if caplen == 0 {
			caplen = uint32(len(r.data))
		}
		b = order.AppendUint32(b, r.sec)
		b = order.AppendUint32(b, r.frac)
		b = order.AppendUint32(b, caplen)
		b = order.AppendUint32(b, uint32(len(r.data)))
		b = append(b, r.data...)
	}
	return b
}

type pcapRec struct {
	sec, frac uint32
	caplen    uint32 // 0: len(data)
	data      []byte
}

// pcapng block builders.
type ng struct {
	order byteOrder
	b     []byte
}

func (n *ng) block(typ uint32, body []byte) *ng {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	l := uint32(12 + len(body))
	n.b = n.order.AppendUint32(n.b, typ)
	n.b = n.order.AppendUint32(n.b, l)
	n.b = append(n.b, body...)
	n.b = n.order.AppendUint32(n.b, l)
	return n
}

func (n *ng) shb() *ng {
	body := n.order.AppendUint32(nil, 0x1a2b3c4d)
	body = n.order.AppendUint16(body, 1)
	body = n.order.AppendUint16(body, 0)
	body = n.order.AppendUint64(body, ^uint64(0))
	return n.block(blockSHB, body)
}

func (n *ng) idb(lt LinkType, tsresol byte, fcs byte) *ng {
	body := n.order.AppendUint16(nil, uint16(lt))
	body = n.order.AppendUint16(body, 0)
	body = n.order.AppendUint32(body, 0)
	if tsresol != 0 {
		body = n.order.AppendUint16(body, 9)
		body = n.order.AppendUint16(body, 1)
		body = append(body, tsresol, 0, 0, 0)
	}
	if fcs != 0 {
		body = n.order.AppendUint16(body, 13)
		body = n.order.AppendUint16(body, 1)
		body = append(body, fcs, 0, 0, 0)
	}
	body = n.order.AppendUint32(body, 0) // opt_endofopt
	return n.block(blockIDB, body)
}

func (n *ng) epb(iface uint32, ts uint64, data []byte) *ng {
	body := n.order.AppendUint32(nil, iface)
	body = n.order.AppendUint32(body, uint32(ts>>32))
	body = n.order.AppendUint32(body, uint32(ts))
	body = n.order.AppendUint32(body, uint32(len(data)))
	body = n.order.AppendUint32(body, uint32(len(data)))
	return n.block(blockEPB, append(body, data...))
}

func (n *ng) spb(data []byte) *ng {
	return n.block(blockSPB, append(n.order.AppendUint32(nil, uint32(len(data))), data...))
}

func (n *ng) opb(iface uint16, ts uint64, data []byte) *ng {
	body := n.order.AppendUint16(nil, iface)
	body = n.order.AppendUint16(body, 0)
	body = n.order.AppendUint32(body, uint32(ts>>32))
	body = n.order.AppendUint32(body, uint32(ts))
	body = n.order.AppendUint32(body, uint32(len(data)))
	body = n.order.AppendUint32(body, uint32(len(data)))
	return n.block(blockOPB, append(body, data...))
}

func readAll(t *testing.T, r io.Reader) ([]Packet, error) {
	t.Helper()
	rd, err := NewReader(r, ReaderOptions{})
	if err != nil {
		return nil, err
	}
	var out []Packet
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		p.Data = bytes.Clone(p.Data)
		out = append(out, p)
	}
}

func TestReaderPcapMagics(t *testing.T) {
	frame := []byte("0123456789abcdef")
	for _, tt := range []struct {
		name  string
		order byteOrder
		nano  bool
		frac  uint32
		want  int
	}{
		{"little-endian microseconds", binary.LittleEndian, false, 250000, 250000000},
		{"big-endian microseconds", binary.BigEndian, false, 250000, 250000000},
		{"little-endian nanoseconds", binary.LittleEndian, true, 123456789, 123456789},
		{"big-endian nanoseconds", binary.BigEndian, true, 123456789, 123456789},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := pcapFile(tt.order, tt.nano, 1, pcapRec{sec: 1700000000, frac: tt.frac, data: frame})
			pkts, err := readAll(t, bytes.NewReader(data))
			require.NoError(t, err)
			require.Len(t, pkts, 1)
			p := pkts[0]
			assert.Equal(t, frame, p.Data)
			assert.Equal(t, LinkEthernet, p.LinkType)
			assert.Equal(t, time.Unix(1700000000, int64(tt.want)).UTC(), p.Time)
			assert.Equal(t, uint64(1), p.Frame)
			assert.Equal(t, int64(24), p.Offset)
			assert.False(t, p.BadTime)
		})
	}
}

func TestReaderPcapFCSBits(t *testing.T) {
	frame := []byte("0123456789abcdefFCS!")
	// FCS present (bit 26), length 2 x 16 bits = 4 bytes, link type Ethernet.
	data := pcapFile(binary.LittleEndian, false, 2<<28|1<<26|1, pcapRec{data: frame})
	pkts, err := readAll(t, bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, []byte("0123456789abcdef"), pkts[0].Data)
	assert.Equal(t, LinkEthernet, pkts[0].LinkType)
}

func TestReaderRejectsHugeRecord(t *testing.T) {
	ok := pcapRec{data: []byte("first frame")}
	huge := pcapRec{caplen: 0xffffffff, data: []byte("x")}
	data := pcapFile(binary.LittleEndian, false, 1, ok, huge)
	pkts, err := readAll(t, bytes.NewReader(data))
	require.Len(t, pkts, 1, "the frame before the bad record is returned")
	var fe *FormatError
	require.ErrorAs(t, err, &fe)
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.Equal(t, uint64(2), fe.Frame)
	assert.Equal(t, int64(24+16+11), fe.Offset)
	assert.Contains(t, err.Error(), "4294967295")
	assert.Contains(t, err.Error(), "frame 2 at byte 51")
}

func TestReaderTruncated(t *testing.T) {
	data := pcapFile(binary.LittleEndian, false, 1, pcapRec{data: []byte("0123456789")}, pcapRec{data: []byte("0123456789")})
	for cut := 1; cut < len(data); cut++ {
		pkts, err := readAll(t, bytes.NewReader(data[:cut]))
		switch {
		case cut < 24:
			require.Error(t, err, "cut %d", cut)
		case cut == 24+26 || cut == 24:
			require.NoError(t, err, "cut %d ends between records", cut)
		default:
			require.ErrorIs(t, err, ErrTruncated, "cut %d", cut)
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, uint64(len(pkts)+1), fe.Frame)
		}
	}
}

func TestReaderNotCapture(t *testing.T) {
	_, err := NewReader(bytes.NewReader([]byte("GET / HTTP/1.1\r\n")), ReaderOptions{})
	assert.ErrorIs(t, err, ErrNotCapture)
	_, err = NewReader(bytes.NewReader(nil), ReaderOptions{})
	assert.ErrorIs(t, err, ErrNotCapture)
}

func TestReaderInvalidFraction(t *testing.T) {
	// Fractions of 1e9 and 2^31 in a nanosecond file are clamped, never
	// wrapped into the next second or a negative time.
	data := pcapFile(binary.LittleEndian, true, 113,
		pcapRec{sec: 100, frac: 999999999, data: []byte("a")},
		pcapRec{sec: 101, frac: 1000000000, data: []byte("b")},
		pcapRec{sec: 101, frac: 0x80000000, data: []byte("c")})
	rd, err := NewReader(bytes.NewReader(data), ReaderOptions{})
	require.NoError(t, err)
	var times []time.Time
	var bad []bool
	for {
		p, err := rd.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		times, bad = append(times, p.Time), append(bad, p.BadTime)
	}
	assert.Equal(t, []bool{false, true, true}, bad)
	assert.Equal(t, time.Unix(101, 999999999).UTC(), times[1])
	assert.Equal(t, time.Unix(101, 999999999).UTC(), times[2])
	assert.Equal(t, uint64(2), rd.BadTimes())
}

func TestReaderPcapng(t *testing.T) {
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(order.String(), func(t *testing.T) {
			n := &ng{order: order}
			n.shb().
				idb(LinkEthernet, 9, 0).  // nanoseconds
				idb(LinkSLL2, 0, 0).      // default microseconds
				idb(LinkRaw, 0x80|20, 4). // 2^-20 seconds, 4-byte FCS
				block(0x0badf00d, []byte("unknown block, skipped")).
				epb(0, 1767663089500330493, []byte("eth frame")).
				epb(1, 1767663437111897, []byte("sll2 frame")).
				epb(2, 3<<20|1<<19, []byte("raw frameFCS!")).
				spb([]byte("simple")).
				opb(1, 5000000, []byte("obsolete"))
			// A second section: interfaces start again.
			n.shb().idb(LinkIPv4, 3, 0).epb(0, 1500, []byte("second section"))
			pkts, err := readAll(t, iotest.OneByteReader(bytes.NewReader(n.b)))
			require.NoError(t, err)
			require.Len(t, pkts, 6)
			want := []struct {
				data  string
				lt    LinkType
				iface int
				time  time.Time
			}{
				{"eth frame", LinkEthernet, 0, time.Unix(1767663089, 500330493)},
				{"sll2 frame", LinkSLL2, 1, time.Unix(1767663437, 111897000)},
				{"raw frame", LinkRaw, 2, time.Unix(3, 500000000)},
				{"simple", LinkEthernet, 0, time.Time{}},
				{"obsolete", LinkSLL2, 1, time.Unix(5, 0)},
				{"second section", LinkIPv4, 0, time.Unix(1, 500000000)},
			}
			for i, w := range want {
				assert.Equal(t, w.data, string(pkts[i].Data), "frame %d", i+1)
				assert.Equal(t, w.lt, pkts[i].LinkType, "frame %d", i+1)
				assert.Equal(t, w.iface, pkts[i].Interface, "frame %d", i+1)
				if !w.time.IsZero() {
					assert.Equal(t, w.time.UTC(), pkts[i].Time, "frame %d", i+1)
				}
				assert.Equal(t, uint64(i+1), pkts[i].Frame)
			}
		})
	}
}

func TestReaderPcapngCorrupt(t *testing.T) {
	good := func() *ng { return (&ng{order: binary.LittleEndian}).shb().idb(LinkEthernet, 0, 0) }
	tests := []struct {
		name string
		data func() []byte
		want error
		msg  string
	}{
		{"block length not a multiple of 4", func() []byte {
			b := good().b
			return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(b, blockEPB), 13)
		}, ErrCorrupt, "length 13"},
		{"trailing length differs", func() []byte {
			b := good().epb(0, 0, []byte("abcd")).b
			binary.LittleEndian.PutUint32(b[len(b)-4:], 99)
			return b
		}, ErrCorrupt, "trailing length 99"},
		{"unknown interface", func() []byte { return good().epb(7, 0, []byte("abcd")).b }, ErrCorrupt, "interface 7"},
		{"captured length beyond block", func() []byte {
			b := good().epb(0, 0, []byte("abcd")).b
			binary.LittleEndian.PutUint32(b[len(b)-4-4-4-4:], 4000) // caplen field
			return b
		}, ErrCorrupt, "4000"},
		{"huge block", func() []byte {
			b := good().b
			return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(b, blockEPB), 0xfffffffc)
		}, ErrCorrupt, "4294967292"},
		{"truncated block", func() []byte { b := good().epb(0, 0, []byte("abcdefgh")).b; return b[:len(b)-6] }, ErrTruncated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, bytes.NewReader(tt.data()))
			require.ErrorIs(t, err, tt.want)
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, uint64(1), fe.Frame)
			assert.Positive(t, fe.Offset)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestReaderZeroAllocs(t *testing.T) {
	var recs []pcapRec
	for i := range 1000 {
		recs = append(recs, pcapRec{sec: uint32(i), data: make([]byte, 60+i%1400)})
	}
	data := pcapFile(binary.LittleEndian, false, 1, recs...)
	r := bytes.NewReader(data)
	rd, err := NewReader(r, ReaderOptions{})
	require.NoError(t, err)
	for range 10 {
		_, err := rd.Next()
		require.NoError(t, err)
	}
	allocs := testing.AllocsPerRun(900, func() {
		if _, err := rd.Next(); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs)
}

func TestWriterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkSLL2, 8)
	require.NoError(t, err)
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
	require.NoError(t, w.WritePacket(at, []byte("0123456789"), 0))
	require.Error(t, w.WritePacket(time.Unix(-5, 0), nil, 0))
	require.NoError(t, w.Flush())
	pkts, err := readAll(t, &buf)
	require.NoError(t, err)
	require.Len(t, pkts, 1)
	assert.Equal(t, "01234567", string(pkts[0].Data), "cut to the snapshot length")
	assert.Equal(t, 10, pkts[0].Length)
	assert.Equal(t, at, pkts[0].Time)
	assert.Equal(t, LinkSLL2, pkts[0].LinkType)
}

// byteOrder is a byte order that can append.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func TestReaderPacketsIterator(t *testing.T) {
	data := pcapFile(binary.LittleEndian, false, 1, pcapRec{data: []byte("a")}, pcapRec{data: []byte("bb")}, pcapRec{caplen: 1 << 30, data: []byte("c")})
	rd, err := NewReaderBytes(data, ReaderOptions{})
	require.NoError(t, err)
	var sizes []int
	var errs []error
	for p, err := range rd.Packets() {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sizes = append(sizes, len(p.Data))
	}
	assert.Equal(t, []int{1, 2}, sizes)
	require.Len(t, errs, 1, "one error, then the iterator stops")
	assert.ErrorIs(t, errs[0], ErrCorrupt)

	// Stopping early is allowed.
	rd, err = NewReaderBytes(data, ReaderOptions{})
	require.NoError(t, err)
	for range rd.Packets() {
		break
	}
	p, err := rd.Next()
	require.NoError(t, err)
	assert.Equal(t, uint64(2), p.Frame)
}
