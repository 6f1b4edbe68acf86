// Package prefetch asks the processor to start loading a cache line without
// waiting for it. The hash tables of pcapscan and ipam use it to overlap the
// cache miss of a slot they will touch soon with work they do meanwhile.
//
// Line is one PREFETCHT0 instruction on amd64 and one PRFM PLDL1KEEP on
// arm64; elsewhere, and with the purego build tag, it does nothing. A
// prefetch never faults, whatever the address, and never changes what a
// program computes: only how long it waits.
package prefetch
