package ipam_test

import (
	"testing"

	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/ipam/storetest"
)

// TestStoreContract runs the shared Store contract on the memory and bbolt
// stores (the etcd store runs it in its own package).
func TestStoreContract(t *testing.T) {
	for name, open := range ipam.StoreImpls(t) {
		t.Run(name, func(t *testing.T) { storetest.Run(t, open) })
	}
}
