// Package reconcile repairs replicated data after a partition: version vectors and
// dotted version vector sets tell causally ordered writes from concurrent ones,
// policies resolve write-write and delete-update conflicts deterministically, and
// every conflict leaves an audit line that is identical on every replica.
package reconcile
