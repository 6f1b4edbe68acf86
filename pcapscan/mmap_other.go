//go:build !unix

package pcapscan

import "os"

// mapping is not available here: files are read as streams.
type mapping struct{ data []byte }

func mapFile(*os.File) (*mapping, bool) { return nil, false }
func (m *mapping) advance(int64)        {}
func (m *mapping) next() int64          { return 1 << 62 }
func (m *mapping) close()               {}
