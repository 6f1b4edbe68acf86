package arpchecktest

import (
	"bufio"
	"encoding/binary"
	"io"
)

// WritePcap writes the frame log to w as a pcap file (nanosecond timestamps of
// the fake clock, link type Ethernet) that tcpdump, tshark and Wireshark read.
// Frames lost on the wire are included: a capture at their sender saw them.
func (n *Network) WritePcap(w io.Writer) error {
	return WritePcap(w, n.Frames())
}

// WritePcap writes frames to w as a pcap file with nanosecond timestamps.
func WritePcap(w io.Writer, frames []Frame) error {
	bw := bufio.NewWriter(w)
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b23c4d) // nanosecond pcap
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1) // LINKTYPE_ETHERNET
	if _, err := bw.Write(hdr[:]); err != nil {
		return err
	}
	for _, f := range frames {
		var rec [16]byte
		binary.LittleEndian.PutUint32(rec[0:], uint32(f.At.Unix()))
		binary.LittleEndian.PutUint32(rec[4:], uint32(f.At.Nanosecond()))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(f.Data)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(f.Data)))
		if _, err := bw.Write(rec[:]); err != nil {
			return err
		}
		if _, err := bw.Write(f.Data); err != nil {
			return err
		}
	}
	return bw.Flush()
}
