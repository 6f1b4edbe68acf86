//go:build unix

package pcapscan

import (
	"io"
	"os"
	"syscall"
)

// mapping is a read-only memory map of a capture file, scanned front to back.
// Pages are mapped ahead of the reader in batches (one system call for many
// pages instead of one fault each) and released behind it, so that the
// process's resident memory stays a few megabytes whatever the file's size.
type mapping struct {
	f        *os.File
	all      []byte // the whole file
	data     []byte // from the offset the file was at
	start    int    // offset of data in all
	ahead    int    // all[:ahead] has been populated
	released int    // all[:released] has been released
}

const (
	mapWindow  = 4 << 20 // populated ahead of the reader at a time
	pageAlign  = 1 << 16 // release boundaries, a multiple of any page size
	madvPopRd  = 22      // MADV_POPULATE_READ (Linux 5.14); ignored where unknown
	mapMaxSize = 1 << 46
)

// mapFile maps the rest of a regular file (from its current offset) into
// memory, so that frames are read without copying them through read(2). It
// reports false when the file cannot be mapped (not regular, empty, too
// large); the caller then reads it as a stream.
func mapFile(f *os.File) (*mapping, bool) {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 || fi.Size() > mapMaxSize || fi.Size() != int64(int(fi.Size())) {
		return nil, false
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil || pos >= fi.Size() {
		return nil, false
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, false
	}
	mp := &mapping{f: f, all: m, data: m[pos:], start: int(pos)}
	mp.released = int(pos) &^ (pageAlign - 1)
	mp.ahead = mp.released
	mp.advance(0)
	return mp, true
}

// advance tells the mapping the reader has consumed data[:off]: pages behind
// it (less a margin for the frame being analysed) are released, the next
// window is populated.
func (m *mapping) advance(off int64) {
	at := m.start + int(off)
	if at+mapWindow/2 > m.ahead && m.ahead < len(m.all) {
		end := min(m.ahead+mapWindow, len(m.all))
		if err := madvise(m.all[m.ahead:end], madvPopRd); err != nil {
			_ = madvise(m.all[m.ahead:end], syscall.MADV_WILLNEED)
		}
		m.ahead = end
	}
	if keep := (at - 2*defaultMaxPacket) &^ (pageAlign - 1); keep-m.released >= mapWindow {
		_ = madvise(m.all[m.released:keep], syscall.MADV_DONTNEED)
		m.released = keep
	}
}

// next reports the offset at which advance should next be called.
func (m *mapping) next() int64 { return int64(m.ahead-m.start) - mapWindow/2 }

func (m *mapping) close() {
	_ = syscall.Munmap(m.all)
	_, _ = m.f.Seek(int64(len(m.all)), io.SeekStart)
}

func madvise(b []byte, advice int) error {
	if len(b) == 0 {
		return nil
	}
	return syscall.Madvise(b, advice)
}
