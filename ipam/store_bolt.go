package ipam

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltOptions configure a BoltStore.
type BoltOptions struct {
	// Timeout bounds the wait for the file lock held by other processes;
	// 10s when zero. The context passed to each operation also bounds it.
	Timeout time.Duration
	// Exclusive keeps the database open and locked from OpenBolt until
	// Close: fastest, but other processes wait until then. Without it
	// (the default) every operation locks the file, opens the database,
	// runs one transaction and closes it, so several processes can share
	// the file at once.
	Exclusive bool
	// NoSync skips fsync after each commit: faster, and a machine crash (not
	// a process crash) may lose recent commits. For tests and benchmarks.
	NoSync bool
	// Mode is the permission of a new file; 0o600 when zero.
	Mode os.FileMode
}

// BoltStore is a durable Store in one bbolt file. Each Commit is one bbolt
// read-write transaction, so a process killed at any point leaves either
// the whole transaction or none of it. Processes serialize on a lock file
// (PATH.lock) held for one operation at a time (or for the store's life
// with Exclusive). The file's format is checked when it is opened.
//
// On-disk layout, format 1: bucket "meta" holds "format" ("addrguard-ipam
// 1") and "rev" (the store's revision counter, uint64 big-endian); bucket
// "kv" maps each key to its revision (uint64 big-endian) followed by its
// value.
type BoltStore struct {
	path string
	opts BoltOptions

	mu   sync.Mutex // serializes this process's operations
	db   *bolt.DB   // open database (Exclusive mode only)
	lock *fileLock  // held lock (Exclusive mode only)
}

var (
	boltMeta   = []byte("meta")
	boltKV     = []byte("kv")
	boltFormat = []byte("addrguard-ipam 1")
)

// ErrBadFile is returned when a bbolt file is not an ipam store of a
// supported format, or its contents fail the checks made on open.
var ErrBadFile = errors.New("ipam: not a valid ipam bbolt store")

// OpenBolt opens (creating if needed) the bbolt store at path and checks
// its format and the framing of every value: O(keys).
func OpenBolt(ctx context.Context, path string, opts BoltOptions) (*BoltStore, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Mode == 0 {
		opts.Mode = 0o600
	}
	s := &BoltStore{path: path, opts: opts}
	err := s.do(ctx, func(db *bolt.DB) error {
		if err := db.Update(func(tx *bolt.Tx) error {
			m, err := tx.CreateBucketIfNotExists(boltMeta)
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists(boltKV); err != nil {
				return err
			}
			switch f := m.Get([]byte("format")); {
			case f == nil:
				if m.Get([]byte("rev")) != nil || tx.Bucket(boltKV).Stats().KeyN > 0 {
					return fmt.Errorf("%w: %s: data without a format marker", ErrBadFile, path)
				}
				if err := m.Put([]byte("format"), boltFormat); err != nil {
					return err
				}
				return m.Put([]byte("rev"), make([]byte, 8))
			case !bytes.Equal(f, boltFormat):
				return fmt.Errorf("%w: %s: format %q, want %q", ErrBadFile, path, f, boltFormat)
			}
			return nil
		}); err != nil {
			return err
		}
		return db.View(func(tx *bolt.Tx) error {
			rb := tx.Bucket(boltMeta).Get([]byte("rev"))
			if len(rb) != 8 {
				return fmt.Errorf("%w: %s: malformed revision counter", ErrBadFile, path)
			}
			top := binary.BigEndian.Uint64(rb)
			return tx.Bucket(boltKV).ForEach(func(k, v []byte) error {
				if len(v) < 8 {
					return fmt.Errorf("%w: %s: key %q: value of %d bytes has no revision", ErrBadFile, path, k, len(v))
				}
				if r := binary.BigEndian.Uint64(v); r == 0 || r > top {
					return fmt.Errorf("%w: %s: key %q: revision %d outside 1..%d", ErrBadFile, path, k, r, top)
				}
				return nil
			})
		})
	})
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// do runs fn with the database open and the file locked.
func (s *BoltStore) do(ctx context.Context, fn func(*bolt.DB) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		return fn(s.db)
	}
	if s.path == "" {
		return errClosed
	}
	l, err := lockFile(ctx, s.path+".lock", s.opts.Timeout, s.opts.Mode)
	if err != nil {
		return err
	}
	db, err := bolt.Open(s.path, s.opts.Mode, &bolt.Options{Timeout: s.opts.Timeout, NoSync: s.opts.NoSync, FreelistType: bolt.FreelistMapType})
	if err != nil {
		l.unlock()
		return fmt.Errorf("ipam: open %s: %w", s.path, err)
	}
	if s.opts.Exclusive {
		s.db, s.lock = db, l
		return fn(db)
	}
	err = fn(db)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	l.unlock()
	return err
}

// Path returns the file's path.
func (s *BoltStore) Path() string { return s.path }

// Get implements Store.
func (s *BoltStore) Get(ctx context.Context, keys ...string) ([]KV, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]KV, len(keys))
	err := s.do(ctx, func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(boltKV)
			for i, k := range keys {
				out[i].Key = k
				if v := b.Get([]byte(k)); v != nil {
					out[i].Revision = binary.BigEndian.Uint64(v)
					out[i].Value = bytes.Clone(v[8:])
				}
			}
			return nil
		})
	})
	return out, err
}

// Scan implements Store: the matching keys are read in one read-only
// transaction (a snapshot) and yielded after it ends, so the memory used is
// that of the matching keys and values.
func (s *BoltStore) Scan(ctx context.Context, prefix string) iter.Seq2[KV, error] {
	return func(yield func(KV, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(KV{}, err)
			return
		}
		var kvs []KV
		err := s.do(ctx, func(db *bolt.DB) error {
			return db.View(func(tx *bolt.Tx) error {
				c := tx.Bucket(boltKV).Cursor()
				p := []byte(prefix)
				for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
					if len(v) < 8 {
						return fmt.Errorf("%w: key %q: value has no revision", ErrBadFile, k)
					}
					kvs = append(kvs, KV{Key: string(k), Revision: binary.BigEndian.Uint64(v), Value: bytes.Clone(v[8:])})
				}
				return nil
			})
		})
		if err != nil {
			yield(KV{}, err)
			return
		}
		for _, kv := range kvs {
			if !yield(kv, nil) {
				return
			}
		}
	}
}

// Commit implements Store as one bbolt read-write transaction.
func (s *BoltStore) Commit(ctx context.Context, txn Txn) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev uint64
	err := s.do(ctx, func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(boltKV)
			for _, c := range txn.Conds {
				var r uint64
				if v := b.Get([]byte(c.Key)); v != nil {
					r = binary.BigEndian.Uint64(v)
				}
				if r != c.Revision {
					return &ConflictError{Key: c.Key}
				}
			}
			m := tx.Bucket(boltMeta)
			rev = binary.BigEndian.Uint64(m.Get([]byte("rev"))) + 1
			if err := m.Put([]byte("rev"), binary.BigEndian.AppendUint64(nil, rev)); err != nil {
				return err
			}
			for _, op := range txn.Ops {
				if op.Delete {
					if err := b.Delete([]byte(op.Key)); err != nil {
						return err
					}
					continue
				}
				v := make([]byte, 8+len(op.Value))
				binary.BigEndian.PutUint64(v, rev)
				copy(v[8:], op.Value)
				if err := b.Put([]byte(op.Key), v); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// Close implements Store.
func (s *BoltStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.db != nil {
		err = s.db.Close()
		s.db = nil
	}
	if s.lock != nil {
		s.lock.unlock()
		s.lock = nil
	}
	s.path = ""
	return err
}
