package pcapscan

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Writer writes frames to a pcap file (nanosecond timestamps, little-endian),
// which tcpdump, Wireshark and Reader all read. It buffers; call Flush when
// done.
type Writer struct {
	w       *bufio.Writer
	snaplen int
	hdr     [16]byte
}

// NewWriter writes a pcap file header for link type lt and frames of at most
// snaplen bytes (0 means 262144) to w.
func NewWriter(w io.Writer, lt LinkType, snaplen int) (*Writer, error) {
	if snaplen <= 0 {
		snaplen = defaultMaxPacket
	}
	pw := &Writer{w: bufio.NewWriterSize(w, 64<<10), snaplen: snaplen}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b23c4d)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], uint32(snaplen))
	binary.LittleEndian.PutUint32(h[20:], uint32(lt))
	if _, err := pw.w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcap writer: header: %w", err)
	}
	return pw, nil
}

// WritePacket writes one frame captured at t whose length on the wire was
// length (at least len(data); 0 means len(data)). Data beyond the snapshot
// length is cut. Times before 1970 or after 2106 cannot be written.
func (pw *Writer) WritePacket(t time.Time, data []byte, length int) error {
	sec := t.Unix()
	if sec < 0 || sec > 1<<32-1 {
		return fmt.Errorf("pcap writer: time %v outside the pcap range", t)
	}
	if length < len(data) {
		length = len(data)
	}
	if len(data) > pw.snaplen {
		data = data[:pw.snaplen]
	}
	binary.LittleEndian.PutUint32(pw.hdr[0:], uint32(sec))
	binary.LittleEndian.PutUint32(pw.hdr[4:], uint32(t.Nanosecond()))
	binary.LittleEndian.PutUint32(pw.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(pw.hdr[12:], uint32(length))
	if _, err := pw.w.Write(pw.hdr[:]); err != nil {
		return fmt.Errorf("pcap writer: %w", err)
	}
	if _, err := pw.w.Write(data); err != nil {
		return fmt.Errorf("pcap writer: %w", err)
	}
	return nil
}

// Flush writes buffered data to the underlying writer.
func (pw *Writer) Flush() error { return pw.w.Flush() }
