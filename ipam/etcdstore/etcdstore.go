package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/addrguard/addrguard/ipam"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Defaults for the zero Options.
const (
	DefaultPrefix         = "addrguard/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxTxnOps      = 128
	DefaultScanPage       = 512
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Prefix is put before every key ipam uses ("ipam/v1/..."), so that
	// several tenants or tools share one etcd; DefaultPrefix when empty.
	Prefix string
	// Logger receives warnings (a watch that broke); nothing is logged
	// when nil. The etcd client's own logging is switched off.
	Logger *slog.Logger
	// DialTimeout bounds Dial's wait for a first connection;
	// DefaultDialTimeout when zero.
	DialTimeout time.Duration
	// RequestTimeout bounds each request (Get, Commit, one page of a Scan)
	// besides the caller's context, so that an unreachable cluster is an
	// error instead of a wait; DefaultRequestTimeout when zero, none when
	// negative.
	RequestTimeout time.Duration
	// MaxTxnOps is the most conditions, and the most operations, that one
	// transaction may carry: the cluster's --max-txn-ops, 128 by default
	// (DefaultMaxTxnOps when zero). Larger transactions fail with
	// ipam.ErrTxnTooLarge before anything is sent; they are never split.
	MaxTxnOps int
	// ScanPage is how many keys one request of a Scan reads;
	// DefaultScanPage when zero.
	ScanPage int
}

// Store is an ipam.Store on etcd v3. Every Commit is one etcd transaction
// whose conditions are evaluated by the server: "absent" compares the key's
// create revision with 0, "revision R" its mod revision with R. A Store's
// revisions are etcd's. It also implements ipam.TxnLimiter and
// ipam.Watcher. It is safe for concurrent use.
type Store struct {
	cli    *clientv3.Client
	owned  bool
	opts   Options
	prefix string
	eps    string // for error messages

	ctx    context.Context // cancelled by Close: ends watches
	cancel context.CancelFunc
	closed atomic.Bool
	wg     sync.WaitGroup
}

var (
	_ ipam.Store      = (*Store)(nil)
	_ ipam.TxnLimiter = (*Store)(nil)
	_ ipam.Watcher    = (*Store)(nil)
)

// ErrClosed: the Store was closed.
var ErrClosed = errors.New("etcdstore: store closed")

// Error is a failed etcd request, with what was asked and of whom.
type Error struct {
	Op        string // "dial", "get", "scan", "commit", "watch"
	Key       string // the first key (get, commit) or the prefix (scan, watch), as sent to etcd
	N         int    // number of keys (get) or operations (commit)
	Endpoints string // the client's endpoints, comma-separated
	Err       error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("etcdstore: ")
	b.WriteString(e.Op)
	switch e.Op {
	case "get":
		fmt.Fprintf(&b, " %d key(s) from %q", e.N, e.Key)
	case "commit":
		fmt.Fprintf(&b, " %d op(s)", e.N)
		if e.Key != "" {
			fmt.Fprintf(&b, " from %q", e.Key)
		}
	case "scan", "watch":
		fmt.Fprintf(&b, " prefix %q", e.Key)
	}
	fmt.Fprintf(&b, " (endpoints %s): %v", e.Endpoints, e.Err)
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns a Store on an existing client, which it does not own: Close
// leaves the client open.
func New(cli *clientv3.Client, opts Options) (*Store, error) {
	if cli == nil {
		return nil, errors.New("etcdstore: nil client")
	}
	return newStore(cli, false, opts), nil
}

// Dial connects to the etcd cluster at endpoints ("host:port" or URLs) and
// returns a Store owning the client (Close closes it). It waits up to
// DialTimeout (and ctx) for a first answer from the cluster, so a wrong
// address is an error here rather than at the first allocation.
func Dial(ctx context.Context, endpoints []string, opts Options) (*Store, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("etcdstore: dial: no endpoints")
	}
	dt := opts.DialTimeout
	if dt <= 0 {
		dt = DefaultDialTimeout
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: dt,
		Context:     context.WithoutCancel(ctx),
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, &Error{Op: "dial", Endpoints: strings.Join(endpoints, ","), Err: err}
	}
	s := newStore(cli, true, opts)
	// One cheap read proves the cluster answers (and has a leader).
	cctx, cancel := context.WithTimeout(ctx, dt)
	defer cancel()
	if _, err := cli.Get(cctx, s.prefix+"ipam/", clientv3.WithCountOnly(), clientv3.WithLimit(1)); err != nil {
		cli.Close()
		return nil, s.wrap(ctx, "dial", "", 0, err)
	}
	return s, nil
}

func newStore(cli *clientv3.Client, owned bool, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.MaxTxnOps <= 0 {
		opts.MaxTxnOps = DefaultMaxTxnOps
	}
	if opts.ScanPage <= 0 {
		opts.ScanPage = DefaultScanPage
	}
	s := &Store{cli: cli, owned: owned, opts: opts, prefix: opts.Prefix, eps: strings.Join(cli.Endpoints(), ",")}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Client returns the etcd client.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix returns the prefix of every key the Store writes.
func (s *Store) Prefix() string { return s.prefix }

// MaxTxnOps implements ipam.TxnLimiter.
func (s *Store) MaxTxnOps() int { return s.opts.MaxTxnOps }

// Close ends the Store's watches and, if the Store dialled its client,
// closes the client. Further calls fail with ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	if s.owned {
		return s.cli.Close()
	}
	return nil
}

// reqCtx bounds one request by RequestTimeout.
func (s *Store) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opts.RequestTimeout > 0 {
		return context.WithTimeout(ctx, s.opts.RequestTimeout)
	}
	return ctx, func() {}
}

// wrap turns a client error into an *Error; a caller's cancelled context
// shows as its own error (errors.Is context.Canceled).
func (s *Store) wrap(ctx context.Context, op, key string, n int, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%v)", cerr, err)
	}
	return &Error{Op: op, Key: key, N: n, Endpoints: s.eps, Err: err}
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Get implements ipam.Store: one linearizable read of all keys at one
// revision (one transaction; more keys than MaxTxnOps are read in several,
// pinned to the first one's revision).
func (s *Store) Get(ctx context.Context, keys ...string) ([]ipam.KV, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := make([]ipam.KV, len(keys))
	for i, k := range keys {
		out[i].Key = k
	}
	if len(keys) == 0 {
		return out, nil
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	if len(keys) == 1 {
		resp, err := s.cli.Get(rctx, s.prefix+keys[0])
		if err != nil {
			return nil, s.wrap(ctx, "get", s.prefix+keys[0], 1, err)
		}
		if len(resp.Kvs) > 0 {
			out[0].Value, out[0].Revision = resp.Kvs[0].Value, uint64(resp.Kvs[0].ModRevision)
		}
		return out, nil
	}
	var rev int64
	for lo := 0; lo < len(keys); lo += s.opts.MaxTxnOps {
		hi := min(lo+s.opts.MaxTxnOps, len(keys))
		ops := make([]clientv3.Op, 0, hi-lo)
		for _, k := range keys[lo:hi] {
			if rev != 0 {
				ops = append(ops, clientv3.OpGet(s.prefix+k, clientv3.WithRev(rev)))
			} else {
				ops = append(ops, clientv3.OpGet(s.prefix+k))
			}
		}
		resp, err := s.cli.Txn(rctx).Then(ops...).Commit()
		if err != nil {
			return nil, s.wrap(ctx, "get", s.prefix+keys[lo], len(keys), err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for i, r := range resp.Responses {
			if kvs := r.GetResponseRange().GetKvs(); len(kvs) > 0 {
				out[lo+i].Value, out[lo+i].Revision = kvs[0].Value, uint64(kvs[0].ModRevision)
			}
		}
	}
	return out, nil
}

// Scan implements ipam.Store: the keys with prefix in key order, read
// ScanPage at a time, all at the revision of the first page (one
// snapshot), so memory is bounded by a page and writes during the scan are
// not seen. If etcd compacts that revision away before the scan ends, the
// scan fails (errors.Is rpctypes.ErrCompacted); scan again.
func (s *Store) Scan(ctx context.Context, prefix string) iter.Seq2[ipam.KV, error] {
	return func(yield func(ipam.KV, error) bool) {
		if err := s.check(ctx); err != nil {
			yield(ipam.KV{}, err)
			return
		}
		full := s.prefix + prefix
		end := clientv3.GetPrefixRangeEnd(full)
		from := full
		var rev int64
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(s.opts.ScanPage))}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			rctx, cancel := s.reqCtx(ctx)
			resp, err := s.cli.Get(rctx, from, opts...)
			cancel()
			if err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					err = fmt.Errorf("revision %d compacted during the scan: %w", rev, err)
				}
				yield(ipam.KV{}, s.wrap(ctx, "scan", full, 0, err))
				return
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				k := string(kv.Key)
				if !yield(ipam.KV{Key: k[len(s.prefix):], Value: kv.Value, Revision: uint64(kv.ModRevision)}, nil) {
					return
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				return
			}
			if err := s.check(ctx); err != nil {
				yield(ipam.KV{}, err)
				return
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
}

// Commit implements ipam.Store with one etcd transaction: If(every
// condition) Then(every put and delete) Else(read the compared keys). A
// failed compare becomes an *ipam.ConflictError naming the first condition
// whose key's revision differs, found from the Else reads in the same round
// trip. A transaction with more than MaxTxnOps conditions or operations
// fails with ipam.ErrTxnTooLarge and nothing is sent.
//
// An error other than a conflict (a timeout, a lost connection) leaves the
// outcome unknown: the transaction may have been applied. Callers retry
// with fresh reads; the Allocator's operations are idempotent per owner.
func (s *Store) Commit(ctx context.Context, txn ipam.Txn) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	first := ""
	if len(txn.Ops) > 0 {
		first = s.prefix + txn.Ops[0].Key
	}
	if len(txn.Conds) > s.opts.MaxTxnOps || len(txn.Ops) > s.opts.MaxTxnOps {
		return 0, s.wrap(ctx, "commit", first, len(txn.Ops), fmt.Errorf("%w: %d conditions and %d operations, at most %d of each",
			ipam.ErrTxnTooLarge, len(txn.Conds), len(txn.Ops), s.opts.MaxTxnOps))
	}
	cmps := make([]clientv3.Cmp, len(txn.Conds))
	reads := make([]clientv3.Op, len(txn.Conds))
	for i, c := range txn.Conds {
		k := s.prefix + c.Key
		if c.Revision == 0 {
			cmps[i] = clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
		} else {
			cmps[i] = clientv3.Compare(clientv3.ModRevision(k), "=", int64(c.Revision))
		}
		reads[i] = clientv3.OpGet(k, clientv3.WithKeysOnly())
	}
	ops := make([]clientv3.Op, len(txn.Ops))
	for i, o := range txn.Ops {
		if o.Delete {
			ops[i] = clientv3.OpDelete(s.prefix + o.Key)
		} else {
			ops[i] = clientv3.OpPut(s.prefix+o.Key, string(o.Value))
		}
	}
	rctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).If(cmps...).Then(ops...).Else(reads...).Commit()
	if err != nil {
		if errors.Is(err, rpctypes.ErrTooManyOps) {
			err = fmt.Errorf("%w: %w (the cluster's --max-txn-ops is below Options.MaxTxnOps %d)", ipam.ErrTxnTooLarge, err, s.opts.MaxTxnOps)
		}
		return 0, s.wrap(ctx, "commit", first, len(txn.Ops), err)
	}
	if resp.Succeeded {
		return uint64(resp.Header.Revision), nil
	}
	for i, c := range txn.Conds {
		var rev uint64
		if kvs := resp.Responses[i].GetResponseRange().GetKvs(); len(kvs) > 0 {
			rev = uint64(kvs[0].ModRevision)
		}
		if rev != c.Revision {
			return 0, &ipam.ConflictError{Key: c.Key}
		}
	}
	// Unreachable by etcd's semantics (a compare failed, so some read
	// differs), but never report success for a transaction not applied.
	return 0, &ipam.ConflictError{Key: txn.Conds[0].Key}
}

// Watch implements ipam.Watcher with an etcd watch on the prefix. It
// returns once etcd has created the watch (waiting at most ctx and
// RequestTimeout, at least a second), so every change committed after it
// returns is delivered, until stop is called or the Store closed. The etcd
// client resumes the watch across reconnections by itself; the stream ends
// with an event carrying Err when the history it needs was compacted or
// the watch otherwise failed (its member lost the cluster's leader, say).
func (s *Store) Watch(ctx context.Context, prefix string, fn func(ipam.WatchEvent)) (stop func(), err error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	full := s.prefix + prefix
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	ch := s.cli.Watch(wctx, full, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	fail := func(err error) (func(), error) {
		cancel()
		return nil, s.wrap(ctx, "watch", full, 0, err)
	}
	// The first response confirms the watch exists.
	timeout := time.NewTimer(max(s.opts.RequestTimeout, time.Second))
	defer timeout.Stop()
	select {
	case resp, ok := <-ch:
		if !ok {
			return fail(errors.New("watch channel closed"))
		}
		if err := resp.Err(); err != nil {
			return fail(err)
		}
	case <-timeout.C:
		return fail(context.DeadlineExceeded)
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	s.wg.Go(func() {
		defer cancel()
		for resp := range ch {
			if err := resp.Err(); err != nil {
				if resp.CompactRevision != 0 {
					err = fmt.Errorf("history compacted up to revision %d: %w", resp.CompactRevision, err)
				}
				if wctx.Err() != nil {
					return // stopped
				}
				s.warn("etcdstore: watch ended", "prefix", full, "err", err)
				fn(ipam.WatchEvent{Err: s.wrap(wctx, "watch", full, 0, err)})
				return
			}
			for _, ev := range resp.Events {
				k := string(ev.Kv.Key)
				if !strings.HasPrefix(k, s.prefix) {
					continue
				}
				fn(ipam.WatchEvent{
					Key:      k[len(s.prefix):],
					Value:    ev.Kv.Value,
					Revision: uint64(ev.Kv.ModRevision),
					Deleted:  ev.Type == clientv3.EventTypeDelete,
				})
			}
		}
		// Closed: stopped, the Store closed, or the client closed.
		if wctx.Err() == nil {
			fn(ipam.WatchEvent{Err: s.wrap(wctx, "watch", full, 0, errors.New("watch channel closed"))})
		}
	})
	return cancel, nil
}

func (s *Store) warn(msg string, args ...any) {
	if s.opts.Logger != nil {
		s.opts.Logger.Warn(msg, args...)
	}
}
