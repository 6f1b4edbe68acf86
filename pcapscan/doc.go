// Package pcapscan reads packet captures (pcap and pcapng files, or a live
// interface) in constant memory and reports the traces address conflicts leave on
// the wire: one address claimed by two MACs, probes that got an answer, pings
// answered twice, retry storms, connections reset and re-made.
package pcapscan
