package etcdstore

import (
	"testing"

	"github.com/addrguard/addrguard/ipam"
	"github.com/addrguard/addrguard/ipam/storetest"
)

func TestStoreContract(t *testing.T) {
	c := startEtcd(t)
	storetest.Run(t, func(t *testing.T) ipam.Store {
		// A fresh prefix per case: one server, independent stores. A small
		// scan page exercises paging.
		return dial(t, c, Options{Prefix: "contract/" + t.Name() + "/", ScanPage: 100})
	})
}
