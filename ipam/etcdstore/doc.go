// Package etcdstore is an ipam.Store on etcd v3, so that allocators on many
// hosts and clusters share one address space.
package etcdstore
