// Package redis is the store in a Redis Stream that several instances
// share.
package redis

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"factstream/store"
)

// DefaultKeyPrefix namespaces a Redis store's keys when Options.KeyPrefix is
// empty.
const DefaultKeyPrefix = "factstream:"

// Timeouts of a Redis store. They are short on purpose: with Redis down a
// publish must fail (503) well within two seconds instead of hanging, and a
// write is never reported as done unless Redis acknowledged it.
const (
	redisDialTimeout  = 500 * time.Millisecond
	redisReadTimeout  = 1500 * time.Millisecond
	redisWriteTimeout = 500 * time.Millisecond
	redisPoolTimeout  = 500 * time.Millisecond
	// redisOpTimeout bounds one whole store call, whatever the caller's ctx.
	redisOpTimeout = 1800 * time.Millisecond
	// readWait bounds how long a read waits for one of the store's read
	// slots (see Store.reads) before it answers ErrUnavailable.
	readWait = 10 * time.Second
)

// Store keeps facts in a Redis Stream shared by every instance that opens the
// same URL and key prefix. The stream entry id of a fact is "<seq>-0", so
// reading by seq is a direct XRANGE. Appends run as one Lua script that
// assigns seqs, appends, indexes ids and records the idempotency key, so seqs
// stay gapless across instances and batches are all-or-nothing. One writer
// per store sends the appends that arrive together in one call of that
// script (group commit, see gather.go).
//
// OnAppend is fed by one tail loop per store (XREAD BLOCK from the last seq
// it reported), so an instance sees the facts every instance commits, in seq
// order, exactly once. The loop outlives Redis outages and resumes from its
// last seq.
//
// Seqs never go backwards, not even when Redis loses its data: each store
// remembers the highest seq it has seen, and the first of its scripts to
// find the stream behind it raises the stream's last id to it (see
// floorLua), so numbering goes on above it for every instance.
type Store struct {
	rdb      *goredis.Client
	tailRdb  *goredis.Client // dedicated to the blocking XREAD, closed to end it
	keys     redisKeys
	onAppend func([]store.Fact)
	onReset  func()
	scripts  redisScripts
	// opts holds the retention settings and the removal callbacks.
	opts      store.Options
	now       func() time.Time
	retention retentionScripts
	// presenceTTL is store.PresenceTTL; tests shorten it.
	presenceTTL time.Duration
	tailBlock   time.Duration // how long one XREAD waits

	// reads holds a slot for each read of facts in flight (Range, Before,
	// Get, Stats), fewer than the connection pool holds: a burst of reads
	// (a whole instance's clients reconnecting at once, each reading its
	// snapshot) then queues here, in the order it came, for up to
	// readWait, instead of outwaiting the pool's short timeout and
	// failing, and the writer and the health checks keep connections.
	reads chan struct{}

	// Group commit: Append hands requests to the writer through reqs.
	reqs    chan *pending
	writers sync.WaitGroup // the writer, which waits for its calls
	// maxRequestBytes is maxRequestBytes; tests lower it.
	maxRequestBytes int
	// holdGroup, when set, runs in the writer between taking the first
	// request of a group and gathering the others; tests hold the writer
	// there to choose what shares a call.
	holdGroup func()
	// Group-commit counters, for metrics.
	commits, appends atomic.Uint64
	// seen is the highest seq the store has seen: at the head, in its
	// tail, in the replies to its appends and reads. It is the floor of
	// floorLua, and of the last seq Stats reports.
	seen atomic.Uint64

	ctx      context.Context // ends when the store closes
	cancel   context.CancelFunc
	tailDone chan struct{}
	// sweepDone is closed when the retention sweep has ended (at once
	// without retention).
	sweepDone chan struct{}
	// trimOwed wakes the sweep when a trim may have been missed: it
	// failed, or an append's reply was lost, so facts may have been
	// committed with no trim after them.
	trimOwed chan struct{}
	// started is closed once the tail loop knows the head it starts from.
	// Until then the store answers as Redis being down would: a fact
	// committed before the tail's starting point would never reach
	// OnAppend.
	started    chan struct{}
	notStarted error // what calls get until then, with the first failure

	mu       sync.RWMutex // guards closed against in-flight appends
	closed   bool
	inflight sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// redisKeys are the names of a store's keys. They share one hash tag, so a
// Redis Cluster keeps them in one slot, which the append script needs.
type redisKeys struct {
	stream   string // facts: entry "<seq>-0" with fields id, info, source, at
	ids      string // hash: fact id -> seq
	idem     string // prefix of idempotency records (hash per key)
	presence string // hash: instance -> "<clients>:<expiry ms>"
	epoch    string // string: names the stream's current life (see headLua)
	// deletions: entry per deleted fact with fields id, seq, epoch, read
	// by every tail loop (see deleteLua)
	deletions string
	probe     string // string: written by ProbeWrite, expires by itself
}

func newRedisKeys(prefix string) redisKeys {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	tag := "{" + prefix + "}"
	return redisKeys{
		stream:   tag + "facts",
		ids:      tag + "ids",
		idem:     tag + "idem:",
		presence: tag + "presence",
		epoch:    tag + "epoch",

		deletions: tag + "deletions",
		probe:     tag + "probe",
	}
}

// Open opens the Redis store at url ("redis://host:port/db", or
// rediss:// for TLS) and starts the tail loop from the current head. When
// Redis cannot be reached yet, the store opens anyway and answers
// store.ErrUnavailable until Redis has answered once, as during an outage;
// a Redis that refuses the credentials or the database number is an
// error at once, since waiting cannot mend it. A key_prefix query parameter in url
// ("redis://redis:6379/0?key_prefix=app1:") overrides opts.KeyPrefix, so
// the one store setting can say everything about the store.
func Open(url string, opts store.Options) (*Store, error) {
	return open(url, opts, tailBlock)
}

// open is Open with the tail loop's block time, which tests shorten.
func open(url string, opts store.Options, block time.Duration) (*Store, error) {
	raw := url
	url, prefix, err := splitKeyPrefix(url)
	if err != nil {
		// Not wrapped: the parser's message quotes the URL, password and all.
		return nil, fmt.Errorf("open redis store: %s", store.RedactError(raw, err))
	}
	if prefix != "" {
		opts.KeyPrefix = prefix
	}
	ropts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("open redis store: parse url: %s", store.RedactError(raw, err))
	}
	tuneRedisOptions(ropts)
	r := &Store{
		rdb:      goredis.NewClient(ropts),
		keys:     newRedisKeys(opts.KeyPrefix),
		onAppend: opts.OnAppend,
		onReset:  opts.OnReset,
		scripts:  newRedisScripts(),
		tailDone: make(chan struct{}),
		started:  make(chan struct{}),

		opts:            opts,
		now:             opts.Clock(),
		retention:       newRetentionScripts(),
		sweepDone:       make(chan struct{}),
		trimOwed:        make(chan struct{}, 1),
		reqs:            make(chan *pending, maxGroup),
		maxRequestBytes: maxRequestBytes,

		presenceTTL: store.PresenceTTL,
		tailBlock:   block,
	}
	r.reads = make(chan struct{}, readSlots(r.rdb.Options().PoolSize))
	r.ctx, r.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(r.ctx, redisOpTimeout)
	head, err := r.head(ctx)
	cancel()
	if err != nil && refusesConfig(err) {
		r.cancel()
		r.rdb.Close()
		return nil, fmt.Errorf("open redis store at %s: %w", ropts.Addr, err)
	}
	r.writers.Go(r.writer)
	reached := err == nil
	if !reached {
		r.notStarted = fmt.Errorf("not reached since start-up: %w", err)
	}
	if opts.RetentionFacts > 0 || opts.RetentionAge > 0 {
		go r.sweep()
	} else {
		close(r.sweepDone)
	}
	if r.onAppend == nil {
		close(r.started) // no tail to start: nothing can be missed
		close(r.tailDone)
		return r, nil
	}
	tailOpts := *ropts
	tailOpts.PoolSize, tailOpts.MinIdleConns = 1, 0
	r.tailRdb = goredis.NewClient(&tailOpts)
	if reached {
		close(r.started)
	}
	go r.tail(head, reached)
	return r, nil
}

// refusesConfig reports whether Redis answered with an error that retrying
// cannot cure: wrong credentials, missing permissions, no such database.
// Anything else at start-up (refused connections, timeouts, LOADING) is
// Redis not being there yet.
func refusesConfig(err error) bool {
	var rerr goredis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	for _, prefix := range []string{"NOAUTH", "WRONGPASS", "NOPERM"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return strings.Contains(msg, "DB index")
}

// splitKeyPrefix takes the key_prefix parameter, which go-redis does not
// know, out of a Redis URL.
func splitKeyPrefix(raw string) (rest, prefix string, err error) {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("parse url: %w", err)
	}
	q := u.Query()
	prefix = q.Get("key_prefix")
	if q.Has("key_prefix") && prefix == "" {
		return "", "", fmt.Errorf("key_prefix in %q is empty", u.Redacted())
	}
	q.Del("key_prefix")
	u.RawQuery = q.Encode()
	return u.String(), prefix, nil
}

// tuneRedisOptions makes every call fail fast when Redis is away. Retries are
// off: a retried append script whose first reply was lost would commit twice.
func tuneRedisOptions(o *goredis.Options) {
	o.DialTimeout = redisDialTimeout
	o.DialerRetries = 1
	o.ReadTimeout = redisReadTimeout
	o.WriteTimeout = redisWriteTimeout
	o.PoolTimeout = redisPoolTimeout
	o.MaxRetries = -1
	o.ContextTimeoutEnabled = true
	// CLIENT SETINFO and maintenance notifications are newer than Redis 7.0
	// and of no use here.
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}

// op bounds one store call and refuses it once the store is closed, or
// while Redis has not been reached since start-up.
func (r *Store) op(ctx context.Context) (context.Context, context.CancelFunc, error) {
	r.mu.RLock()
	closed := r.closed
	r.mu.RUnlock()
	if closed {
		return nil, nil, store.ErrClosed
	}
	if err := r.checkStarted(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	return ctx, cancel, nil
}

// readSlots is how many reads of facts may use the pool's poolSize
// connections at once: what the writer's calls, a deletion, a trim and a
// health check leave, and at least two.
func readSlots(poolSize int) int {
	return max(2, poolSize-callsInFlight-2)
}

// readOp is op for a read of facts: it first waits, up to readWait and
// as long as ctx allows, for a read slot, which the returned cancel gives
// back.
func (r *Store) readOp(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := r.checkStarted(); err != nil {
		return nil, nil, err
	}
	select {
	case r.reads <- struct{}{}:
	default:
		if err := r.awaitReadSlot(ctx); err != nil {
			return nil, nil, err
		}
	}
	opCtx, cancel, err := r.op(ctx)
	if err != nil {
		<-r.reads
		return nil, nil, err
	}
	return opCtx, func() { cancel(); <-r.reads }, nil
}

// awaitReadSlot waits for a read slot when none was free at once.
func (r *Store) awaitReadSlot(ctx context.Context) error {
	wait := time.NewTimer(readWait)
	defer wait.Stop()
	select {
	case r.reads <- struct{}{}:
		return nil
	case <-ctx.Done():
		return r.wrap("wait for a read slot", ctx.Err())
	case <-wait.C:
		return fmt.Errorf("%w: wait for a read slot: %d reads of facts have been in flight for %v", store.ErrUnavailable, cap(r.reads), readWait)
	case <-r.ctx.Done():
		return store.ErrClosed
	}
}

func (r *Store) checkStarted() error {
	select {
	case <-r.started:
		return nil
	default:
		return r.notStarted
	}
}

// Range implements store.Store.
func (r *Store) Range(ctx context.Context, after, upTo uint64, limit int) ([]store.Fact, error) {
	if limit <= 0 || (upTo != 0 && upTo <= after) || after == ^uint64(0) {
		return nil, nil
	}
	ctx, cancel, err := r.readOp(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	end := "+"
	if upTo != 0 {
		end = streamID(upTo)
	}
	msgs, err := r.rdb.XRangeN(ctx, r.keys.stream, streamID(after+1), end, int64(limit)).Result()
	if err != nil {
		return nil, r.wrap("read facts", err)
	}
	return r.noteFacts(decodeEntries(msgs))
}

// Before implements store.Store.
func (r *Store) Before(ctx context.Context, before uint64, limit int) ([]store.Fact, error) {
	if limit <= 0 || before == 1 {
		return nil, nil
	}
	ctx, cancel, err := r.readOp(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	start := "+"
	if before != 0 {
		start = streamID(before - 1)
	}
	msgs, err := r.rdb.XRevRangeN(ctx, r.keys.stream, start, "-", int64(limit)).Result()
	if err != nil {
		return nil, r.wrap("read facts", err)
	}
	return r.noteFacts(decodeEntries(msgs))
}

// Get implements store.Store.
func (r *Store) Get(ctx context.Context, id string) (store.Fact, error) {
	ctx, cancel, err := r.readOp(ctx)
	if err != nil {
		return store.Fact{}, err
	}
	defer cancel()
	seq, err := r.rdb.HGet(ctx, r.keys.ids, id).Uint64()
	if errors.Is(err, goredis.Nil) {
		return store.Fact{}, store.ErrNotFound
	}
	if err != nil {
		return store.Fact{}, r.wrap("read fact id", err)
	}
	msgs, err := r.rdb.XRange(ctx, r.keys.stream, streamID(seq), streamID(seq)).Result()
	if err != nil {
		return store.Fact{}, r.wrap("read fact", err)
	}
	if len(msgs) == 0 {
		return store.Fact{}, store.ErrNotFound
	}
	f, err := decodeEntry(msgs[0])
	if err == nil {
		r.note(f.Seq)
	}
	return f, err
}

// Stats implements store.Store. One script reads it all, so the figures
// describe the same moment; the last seq is never below the highest seq
// the store has seen, also when Redis lost its data and no script has
// raised the stream's last id yet.
func (r *Store) Stats(ctx context.Context) (store.Stats, error) {
	ctx, cancel, err := r.readOp(ctx)
	if err != nil {
		return store.Stats{}, err
	}
	defer cancel()
	// Read before the script: in a Redis that kept its data the stream's
	// last id is then at least seen, and the figures stay one moment's.
	seen := r.seen.Load()
	st, err := r.stats(ctx)
	if err != nil {
		return store.Stats{}, err
	}
	st.LastSeq = max(st.LastSeq, seen)
	r.note(st.LastSeq)
	return st, nil
}

// note records that seq was seen (see Store.seen).
func (r *Store) note(seq uint64) {
	for {
		old := r.seen.Load()
		if seq <= old || r.seen.CompareAndSwap(old, seq) {
			return
		}
	}
}

// noteFacts notes the seqs of facts, in either order, and passes them on.
func (r *Store) noteFacts(facts []store.Fact, err error) ([]store.Fact, error) {
	if len(facts) > 0 {
		r.note(max(facts[0].Seq, facts[len(facts)-1].Seq))
	}
	return facts, err
}

// Ping implements store.Store: it reports whether Redis answers.
func (r *Store) Ping(ctx context.Context) error {
	ctx, cancel, err := r.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return r.wrap("ping", r.rdb.Ping(ctx).Err())
}

// Close stops taking appends, waits for those in flight, ends the tail loop
// and closes the connections.
func (r *Store) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.inflight.Wait()
		r.cancel()
		r.writers.Wait()
		if r.tailRdb != nil {
			// Closing its connection ends a blocked XREAD at once.
			r.tailRdb.Close()
		}
		<-r.tailDone
		<-r.sweepDone
		if err := r.rdb.Close(); err != nil {
			r.closeErr = fmt.Errorf("close redis store: %w", err)
		}
	})
	return r.closeErr
}

// wrap turns a Redis error into the store's vocabulary: a closed client is
// store.ErrClosed, anything else means Redis cannot serve now.
func (r *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, goredis.ErrClosed) {
		return store.ErrClosed
	}
	return fmt.Errorf("%w: redis %s: %w", store.ErrUnavailable, op, err)
}

func streamID(seq uint64) string {
	return strconv.FormatUint(seq, 10) + "-0"
}

func seqOf(id string) (uint64, error) {
	for i := 0; i < len(id); i++ {
		if id[i] == '-' {
			id = id[:i]
			break
		}
	}
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis stream entry id %q: %w", id, err)
	}
	return seq, nil
}

func decodeEntries(msgs []goredis.XMessage) ([]store.Fact, error) {
	out := make([]store.Fact, 0, len(msgs))
	for _, m := range msgs {
		f, err := decodeEntry(m)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func decodeEntry(m goredis.XMessage) (store.Fact, error) {
	seq, err := seqOf(m.ID)
	if err != nil {
		return store.Fact{}, err
	}
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	at, err := time.Parse(time.RFC3339Nano, str("at"))
	if err != nil {
		return store.Fact{}, fmt.Errorf("decode fact %d: created_at: %w", seq, err)
	}
	return store.Fact{ID: str("id"), Seq: seq, Info: str("info"), Source: str("source"), CreatedAt: at.UTC()}, nil
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Presence = (*Store)(nil)
)
