package ipam

import "testing"

// StoreImpls exports the stores every store-generic test runs on, for the
// external tests (package ipam_test).
func StoreImpls(t *testing.T) map[string]func(t *testing.T) Store { return storeImpls(t) }
