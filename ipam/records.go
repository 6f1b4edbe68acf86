package ipam

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/bits"
	"net/netip"
	"time"
)

// Store key layout (see Store).
const (
	keyPrefix        = "ipam/v1/"
	poolPrefix       = keyPrefix + "pool/"
	pagePrefix       = keyPrefix + "page/"
	ownerPrefix      = keyPrefix + "owner/"
	quarantinePrefix = keyPrefix + "quarantine/"
	fifoPrefix       = keyPrefix + "fifo/"
	cursorPrefix     = keyPrefix + "cursor/"
	poolsetKey       = keyPrefix + "poolset"
)

func poolKey(name string) string         { return poolPrefix + name }
func ownerKey(pool, owner string) string { return ownerPrefix + pool + "/" + owner }
func ownersPrefix(pool string) string    { return ownerPrefix + pool + "/" }
func quarantineKey(pool string) string   { return quarantinePrefix + pool }
func fifoKey(pool string) string         { return fifoPrefix + pool }
func cursorKey(pool string) string       { return cursorPrefix + pool }
func pagesPrefix(pool string, epoch uint64) string {
	return fmt.Sprintf("%s%s/%016x/", pagePrefix, pool, epoch)
}

// pageKey is pagesPrefix + 32 hex digits of the page index.
func pageKey(prefix string, idx Count) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], idx.hi)
	binary.BigEndian.PutUint64(b[8:], idx.lo)
	return prefix + hex.EncodeToString(b[:])
}

func parsePageIndex(s string) (Count, bool) {
	if len(s) != 32 {
		return Count{}, false
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil || hex.EncodeToString(b[:]) != s {
		return Count{}, false
	}
	return Count{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}, true
}

// Page encoding, version 1 (pageSize bytes):
//
//	[0]      version (1)
//	[1:4]    zero
//	[4:8]    taken: number of bits set, uint32 little-endian
//	[8:16]   last generation issued for an address of this page, uint64 LE
//	[16:144] bitmap: bit i of word i/64 (little-endian words) is ordinal
//	         page*1024+i; set means allocated or quarantined
const (
	pageShift    = 10
	pageSlots    = 1 << pageShift
	pageWords    = pageSlots / 64
	pageHeader   = 16
	pageSize     = pageHeader + pageSlots/8
	pageVersion  = 1
	ownerVersion = 1
	ownerEntry   = 32
	fifoVersion  = 1
	fifoEntry    = 24
	fifoMax      = 1 << 16
	recordV      = 1
)

type pageBytes []byte

func newPage(gen uint64) pageBytes {
	p := make(pageBytes, pageSize)
	p[0] = pageVersion
	binary.LittleEndian.PutUint64(p[8:], gen)
	return p
}

func (p pageBytes) taken() int        { return int(binary.LittleEndian.Uint32(p[4:])) }
func (p pageBytes) gen() uint64       { return binary.LittleEndian.Uint64(p[8:]) }
func (p pageBytes) word(i int) uint64 { return binary.LittleEndian.Uint64(p[pageHeader+8*i:]) }
func (p pageBytes) setWord(i int, w uint64) {
	binary.LittleEndian.PutUint64(p[pageHeader+8*i:], w)
}
func (p pageBytes) setTaken(n int)    { binary.LittleEndian.PutUint32(p[4:], uint32(n)) }
func (p pageBytes) setGen(g uint64)   { binary.LittleEndian.PutUint64(p[8:], g) }
func (p pageBytes) has(slot int) bool { return p.word(slot>>6)&(1<<(slot&63)) != 0 }

// set marks slot and returns the new generation for it.
func (p pageBytes) set(slot int) uint64 {
	p.setWord(slot>>6, p.word(slot>>6)|1<<(slot&63))
	binary.LittleEndian.PutUint32(p[4:], uint32(p.taken()+1))
	g := p.gen() + 1
	binary.LittleEndian.PutUint64(p[8:], g)
	return g
}

// mark sets slot without issuing a generation (quarantine, migration).
func (p pageBytes) mark(slot int) {
	p.setWord(slot>>6, p.word(slot>>6)|1<<(slot&63))
	binary.LittleEndian.PutUint32(p[4:], uint32(p.taken()+1))
}

func (p pageBytes) clear(slot int) {
	p.setWord(slot>>6, p.word(slot>>6)&^(1<<(slot&63)))
	binary.LittleEndian.PutUint32(p[4:], uint32(p.taken()-1))
}

// nextFree returns the first clear slot in [from, limit), or -1.
func (p pageBytes) nextFree(from, limit int) int {
	for i := from >> 6; i < pageWords && i<<6 < limit; i++ {
		w := ^p.word(i)
		if i == from>>6 {
			w &= ^uint64(0) << (from & 63)
		}
		if w != 0 {
			s := i<<6 + bits.TrailingZeros64(w)
			if s < limit {
				return s
			}
			return -1
		}
	}
	return -1
}

// checkPage validates an encoded page against its capacity.
func checkPage(v []byte, capacity int) error {
	if len(v) != pageSize {
		return fmt.Errorf("page is %d bytes, want %d", len(v), pageSize)
	}
	p := pageBytes(v)
	if p[0] != pageVersion {
		return fmt.Errorf("page version %d, want %d", p[0], pageVersion)
	}
	n := 0
	for i := 0; i < pageWords; i++ {
		w := p.word(i)
		n += bits.OnesCount64(w)
		if hi := i<<6 + 64; hi > capacity {
			keep := capacity - i<<6
			var mask uint64
			if keep > 0 {
				mask = ^uint64(0) << keep
			} else {
				mask = ^uint64(0)
			}
			if w&mask != 0 {
				return fmt.Errorf("page has bits set beyond its capacity %d", capacity)
			}
		}
	}
	if n != p.taken() {
		return fmt.Errorf("page counts %d taken but has %d bits set", p.taken(), n)
	}
	return nil
}

// leaseEntry is one lease in an owner record, in the record's form and
// free of pointers (so large records cost the garbage collector nothing):
// the address in 16 bytes (IPv4 as IPv4-mapped), the generation and the
// allocation time.
type leaseEntry struct {
	a16 [16]byte
	gen uint64
	at  int64 // allocation time, Unix nanoseconds
}

func newLeaseEntry(a netip.Addr, gen uint64, at int64) leaseEntry {
	return leaseEntry{a16: a.As16(), gen: gen, at: at}
}

// addr returns the lease's address (IPv4 unmapped).
func (e *leaseEntry) addr() netip.Addr { return netip.AddrFrom16(e.a16).Unmap() }

// Owner record encoding, version 1: [0] version, then 32-byte entries in
// allocation order: address (16 bytes, IPv4 as IPv4-mapped), generation
// (uint64 big-endian), allocation time (int64 Unix ns, big-endian).
func encodeOwner(es []leaseEntry) []byte {
	b := make([]byte, 1, 1+ownerEntry*len(es))
	b[0] = ownerVersion
	for _, e := range es {
		b = appendEntry(b, e)
	}
	return b
}

func appendEntry(b []byte, e leaseEntry) []byte {
	b = append(b, e.a16[:]...)
	b = binary.BigEndian.AppendUint64(b, e.gen)
	return binary.BigEndian.AppendUint64(b, uint64(e.at))
}

func decodeOwner(v []byte) ([]leaseEntry, error) {
	if len(v) < 1+ownerEntry || v[0] != ownerVersion || (len(v)-1)%ownerEntry != 0 {
		return nil, fmt.Errorf("owner record of %d bytes is malformed", len(v))
	}
	es := make([]leaseEntry, 0, (len(v)-1)/ownerEntry)
	for b := v[1:]; len(b) > 0; b = b[ownerEntry:] {
		es = append(es, leaseEntry{
			a16: [16]byte(b[:16]),
			gen: binary.BigEndian.Uint64(b[16:]),
			at:  int64(binary.BigEndian.Uint64(b[24:])),
		})
	}
	return es, nil
}

// poolRecord is the stored pool: JSON, version 1.
type poolRecord struct {
	V        int      `json:"v"`
	Name     string   `json:"name"`
	Spec     specJSON `json:"spec"`
	Epoch    uint64   `json:"epoch"`    // page key epoch; bumped by every spec change
	GenFloor uint64   `json:"genFloor"` // generation counter of pages created in this epoch
	Deleted  bool     `json:"deleted,omitempty"`
	// Pending is a spec change or removal in progress: the pool is frozen
	// (allocations and releases complete it first; see completePending).
	Pending *pendingChange `json:"pending,omitempty"`
	// Sweep is an earlier epoch whose pages are still to be deleted: a
	// change carried out in steps on a store with a transaction limit
	// (TxnLimiter) switches epochs first and deletes the old pages after;
	// whoever finds this set finishes the deletion (see sweep).
	Sweep *uint64 `json:"sweep,omitempty"`
}

type pendingChange struct {
	Spec   *specJSON `json:"spec,omitempty"`
	Remove bool      `json:"remove,omitempty"`
}

func encodePoolRecord(r *poolRecord) []byte {
	r.V = recordV
	b, _ := json.Marshal(r)
	return b
}

func decodePoolRecord(v []byte) (*poolRecord, error) {
	var r poolRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("pool record: %v", err)
	}
	if r.V != recordV {
		return nil, fmt.Errorf("pool record version %d, want %d", r.V, recordV)
	}
	return &r, nil
}

// QuarantineEntry is an address that failed verification: taken out of
// circulation (neither free nor allocated) until released with Unquarantine.
type QuarantineEntry struct {
	Addr   netip.Addr `json:"addr"`
	At     time.Time  `json:"at"`
	Reason string     `json:"reason"`
}

type quarantineRecord struct {
	V       int               `json:"v"`
	Entries []QuarantineEntry `json:"entries"`
}

func encodeQuarantine(es []QuarantineEntry) []byte {
	b, _ := json.Marshal(quarantineRecord{V: recordV, Entries: es})
	return b
}

func decodeQuarantine(v []byte) ([]QuarantineEntry, error) {
	if v == nil {
		return nil, nil
	}
	var r quarantineRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("quarantine record: %v", err)
	}
	if r.V != recordV {
		return nil, fmt.Errorf("quarantine record version %d, want %d", r.V, recordV)
	}
	for i := range r.Entries {
		r.Entries[i].Addr = r.Entries[i].Addr.Unmap()
	}
	return r.Entries, nil
}

// fifoEntryT is a released address and when it was released.
type fifoEntryT struct {
	addr netip.Addr
	at   int64
}

// FIFO record encoding, version 1: [0] version, [1:17] fresh cursor (the
// ordinal below which every address has been handed out once, 128-bit
// big-endian), then 24-byte entries oldest first: address (16 bytes) and
// release time (int64 Unix ns big-endian).
func encodeFIFO(fresh Count, es []fifoEntryT) []byte {
	b := make([]byte, 17, 17+fifoEntry*len(es))
	b[0] = fifoVersion
	binary.BigEndian.PutUint64(b[1:], fresh.hi)
	binary.BigEndian.PutUint64(b[9:], fresh.lo)
	for _, e := range es {
		a := e.addr.As16()
		b = append(b, a[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(e.at))
	}
	return b
}

func decodeFIFO(v []byte) (Count, []fifoEntryT, error) {
	if v == nil {
		return Count{}, nil, nil
	}
	if len(v) < 17 || v[0] != fifoVersion || (len(v)-17)%fifoEntry != 0 {
		return Count{}, nil, fmt.Errorf("fifo record of %d bytes is malformed", len(v))
	}
	fresh := Count{hi: binary.BigEndian.Uint64(v[1:]), lo: binary.BigEndian.Uint64(v[9:])}
	es := make([]fifoEntryT, 0, (len(v)-17)/fifoEntry)
	for b := v[17:]; len(b) > 0; b = b[fifoEntry:] {
		es = append(es, fifoEntryT{addr: netip.AddrFrom16([16]byte(b[:16])).Unmap(), at: int64(binary.BigEndian.Uint64(b[16:]))})
	}
	return fresh, es, nil
}

// Cursor record, version 1: [0] version, [1:17] last allocated address.
func encodeCursor(a netip.Addr) []byte {
	b := make([]byte, 17)
	b[0] = recordV
	a16 := a.As16()
	copy(b[1:], a16[:])
	return b
}

func decodeCursor(v []byte) (netip.Addr, bool) {
	if len(v) != 17 || v[0] != recordV {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(v[1:])).Unmap(), true
}
