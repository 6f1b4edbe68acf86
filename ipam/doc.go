// Package ipam prevents address conflicts before they happen: it keeps IP pools
// (subnet, gateway, range, reserved addresses and ranges) and allocates addresses
// from them so that no address is ever handed to two owners, across goroutines,
// processes and restarts. It also finds pools of different clusters that overlap
// and warns as a pool fills up.
package ipam
