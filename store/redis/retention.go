package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"factstream/store"
)

// lastIDLua defines lastID(key), the last entry id ever added to a stream
// ('0-0' without one), and lastSeq(key), its seq. A stream remembers it
// when its newest entries are removed, so seqs are never handed out twice.
const lastIDLua = `
local function lastID(key)
  if redis.call('EXISTS', key) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end
local function lastSeq(key)
  return tonumber(string.match(lastID(key), '^(%d+)-'))
end
`

// fieldLua defines field(entry, name): a field of a stream entry.
const fieldLua = `
local function field(e, name)
  local f = e[2]
  for i = 1, #f, 2 do
    if f[i] == name then return f[i + 1] end
  end
  return nil
end
`

// statsLua returns the count, the first seq kept and the last seq
// assigned, as of one moment.
//
// KEYS: stream.
const statsLua = lastIDLua + `
local n = redis.call('XLEN', KEYS[1])
local first = '0'
local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #e > 0 then first = string.match(e[1][1], '^(%d+)-') end
return {tostring(n), first, string.format('%d', lastSeq(KEYS[1]))}
`

// trimCountLua removes the oldest facts beyond ARGV[1], at most ARGV[2] of
// them, with their id entries, in one step, and returns how many.
//
// KEYS: stream, ids.
const trimCountLua = fieldLua + `
local n = redis.call('XLEN', KEYS[1])
local excess = math.min(n - tonumber(ARGV[1]), tonumber(ARGV[2]))
if excess <= 0 then return 0 end
local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)
for _, e in ipairs(old) do redis.call('HDEL', KEYS[2], field(e, 'id')) end
redis.call('XTRIM', KEYS[1], 'MAXLEN', n - #old)
return #old
`

// trimAgeLua removes the oldest facts created at or before ARGV[1] (in
// store.TimeLayout, which sorts as text), at most ARGV[2] of them, with
// their id entries, in one step, and returns how many.
//
// KEYS: stream, ids.
const trimAgeLua = fieldLua + `
local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[2])
local k = 0
for _, e in ipairs(old) do
  local at = field(e, 'at')
  if not at or at > ARGV[1] then break end
  redis.call('HDEL', KEYS[2], field(e, 'id'))
  k = k + 1
end
if k > 0 then redis.call('XTRIM', KEYS[1], 'MAXLEN', redis.call('XLEN', KEYS[1]) - k) end
return k
`

// deleteLua removes the fact with id ARGV[1] and its id entry, and adds
// a deletion entry (id, seq, epoch) that the tail loops of every instance
// read, in one step. It returns the fact's entry, or an empty array.
//
// KEYS: stream, ids, deletions, epoch. ARGV: id, deletions kept.
const deleteLua = `
local seq = redis.call('HGET', KEYS[2], ARGV[1])
if not seq then return {} end
redis.call('HDEL', KEYS[2], ARGV[1])
local e = redis.call('XRANGE', KEYS[1], seq .. '-0', seq .. '-0')
if #e == 0 then return {} end
redis.call('XDEL', KEYS[1], seq .. '-0')
local epoch = redis.call('GET', KEYS[4]) or ''
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'id', ARGV[1], 'seq', seq, 'epoch', epoch)
return e[1]
`

// forgetIdemLua deletes the idempotency record KEYS[1] if it still names
// the facts from seq ARGV[1]: those facts are gone, and so is the key.
const forgetIdemLua = `
if redis.call('HGET', KEYS[1], 'first') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`

// Bounds of the retention work. A trim removes at most trimBatch facts per
// script, so that Redis is never blocked long; trimStep spreads the count
// trim over appends, so that the store holds at most about 1% more than
// RetentionFacts and trims once per trimStep facts, whichever instance
// appended them. deletionsKept bounds the stream of deletions: an instance
// away for longer than that many deletions misses the oldest of them.
const (
	trimBatch     = 1000
	deletionsKept = 1000
)

func trimStep(retention int) uint64 { return uint64(max(1, retention/100)) }

// retentionScripts are the scripts of retention and deletion.
type retentionScripts struct {
	stats, trimCount, trimAge, delete, forgetIdem *goredis.Script
}

func newRetentionScripts() retentionScripts {
	return retentionScripts{
		stats:      goredis.NewScript(statsLua),
		trimCount:  goredis.NewScript(trimCountLua),
		trimAge:    goredis.NewScript(trimAgeLua),
		delete:     goredis.NewScript(deleteLua),
		forgetIdem: goredis.NewScript(forgetIdemLua),
	}
}

func (r *Store) stats(ctx context.Context) (store.Stats, error) {
	reply, err := r.retention.stats.Run(ctx, r.rdb, []string{r.keys.stream}).StringSlice()
	if err != nil {
		return store.Stats{}, r.wrap("read stats", err)
	}
	if len(reply) != 3 {
		return store.Stats{}, fmt.Errorf("read stats: unexpected script reply %q", reply)
	}
	var n [3]uint64
	for i, s := range reply {
		if n[i], err = seqOf(s); err != nil {
			return store.Stats{}, fmt.Errorf("read stats: %w", err)
		}
	}
	return store.Stats{Count: n[0], FirstSeq: n[1], LastSeq: n[2]}, nil
}

// afterAppend trims to RetentionFacts when the facts first to last passed
// a multiple of trimStep: exactly one append does, whichever instance
// made it, so the trim runs once. The trim is the store's work, not the
// request's: it runs to its end even if the publisher goes away. A trim
// that fails is owed to the sweep, which retries it until Redis answers.
func (r *Store) afterAppend(first, last uint64) {
	ret := r.opts.RetentionFacts
	if ret <= 0 {
		return
	}
	step := trimStep(ret)
	if (first-1)/step == last/step {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, redisOpTimeout)
	defer cancel()
	if err := r.trimLoop(ctx, r.retention.trimCount, ret); err != nil {
		r.oweTrim()
	}
}

// oweTrim asks the sweep to apply retention soon: a trim failed, or an
// append may have committed without the trim that should follow it.
func (r *Store) oweTrim() {
	if r.opts.RetentionFacts <= 0 && r.opts.RetentionAge <= 0 {
		return
	}
	select {
	case r.trimOwed <- struct{}{}:
	default: // already owed
	}
}

// trimLoop runs a trim script until it removes less than a batch, and
// reports what it removed.
func (r *Store) trimLoop(ctx context.Context, script *goredis.Script, bound any) error {
	total := 0
	defer func() { r.opts.Removed(store.RemovedRetention, total) }()
	for {
		n, err := script.Run(ctx, r.rdb, []string{r.keys.stream, r.keys.ids}, bound, trimBatch).Int()
		if err != nil {
			return r.wrap("apply retention", err)
		}
		total += n
		if n < trimBatch {
			return nil
		}
	}
}

// retain applies both bounds: at open, every sweep interval and when a
// trim is owed. Every instance sweeps; the scripts are atomic, so each
// fact is removed, and counted, once.
func (r *Store) retain() error {
	ctx, cancel := context.WithTimeout(r.ctx, 10*redisOpTimeout)
	defer cancel()
	if ret := r.opts.RetentionFacts; ret > 0 {
		if err := r.trimLoop(ctx, r.retention.trimCount, ret); err != nil {
			return err
		}
	}
	if r.opts.RetentionAge > 0 {
		cutoff := r.now().Add(-r.opts.RetentionAge).UTC().Format(store.TimeLayout)
		return r.trimLoop(ctx, r.retention.trimAge, cutoff)
	}
	return nil
}

// sweep applies retention when the store has started, every sweep
// interval, and, with the tail's backoff, whenever a trim is owed, until
// it succeeds, so that a trim missed during an outage is made good as
// soon as Redis answers again. It ends when the store closes.
func (r *Store) sweep() {
	defer close(r.sweepDone)
	select {
	case <-r.started:
	case <-r.ctx.Done():
		return
	}
	backoff := tailMinBackoff
	tick := time.NewTicker(r.opts.Interval())
	defer tick.Stop()
	for {
		if err := r.retain(); err != nil {
			r.oweTrim()
		} else {
			backoff = tailMinBackoff
		}
		select {
		case <-tick.C:
		case <-r.trimOwed:
			if !r.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, tailMaxBackoff)
		case <-r.ctx.Done():
			return
		}
	}
}

// Delete implements store.Store.
func (r *Store) Delete(ctx context.Context, id string) (store.Fact, error) {
	ctx, cancel, err := r.op(ctx)
	if err != nil {
		return store.Fact{}, err
	}
	defer cancel()
	keys := []string{r.keys.stream, r.keys.ids, r.keys.deletions, r.keys.epoch}
	reply, err := r.retention.delete.Run(ctx, r.rdb, keys, id, deletionsKept).Slice()
	if err != nil {
		return store.Fact{}, r.wrap("delete fact", err)
	}
	if len(reply) == 0 {
		return store.Fact{}, store.ErrNotFound
	}
	m, err := entryOf(reply)
	if err != nil {
		return store.Fact{}, fmt.Errorf("delete fact: %w", err)
	}
	f, err := decodeEntry(m)
	if err != nil {
		return store.Fact{}, err
	}
	r.opts.Removed(store.RemovedDeleted, 1)
	return f, nil
}

// entryOf reads a stream entry as a script returns it: {id, {field,
// value, ...}}.
func entryOf(reply []any) (goredis.XMessage, error) {
	if len(reply) != 2 {
		return goredis.XMessage{}, fmt.Errorf("unexpected entry %v", reply)
	}
	id, ok := reply[0].(string)
	kv, ok2 := reply[1].([]any)
	if !ok || !ok2 || len(kv)%2 != 0 {
		return goredis.XMessage{}, fmt.Errorf("unexpected entry %v", reply)
	}
	m := goredis.XMessage{ID: id, Values: make(map[string]any, len(kv)/2)}
	for i := 0; i < len(kv); i += 2 {
		k, _ := kv[i].(string)
		m.Values[k] = kv[i+1]
	}
	return m, nil
}

// errReplayGone means an idempotency record names facts that were removed.
var errReplayGone = errors.New("the facts of the idempotency record were removed")

// forgetIdem deletes the record of key if it still names the facts from
// first, which are gone.
func (r *Store) forgetIdem(ctx context.Context, key, first string) error {
	err := r.retention.forgetIdem.Run(ctx, r.rdb, []string{r.keys.idem + key}, first).Err()
	return r.wrap("forget idempotency key", err)
}

// deletionsOf turns entries of the deletions stream into the facts they
// name (id and seq), skipping those of another epoch than epoch.
func deletionsOf(msgs []goredis.XMessage, epoch string) []store.Fact {
	var out []store.Fact
	for _, m := range msgs {
		if e, _ := m.Values["epoch"].(string); e != epoch {
			continue
		}
		id, _ := m.Values["id"].(string)
		s, _ := m.Values["seq"].(string)
		seq, err := seqOf(s)
		if err != nil || id == "" {
			continue
		}
		out = append(out, store.Fact{ID: id, Seq: seq})
	}
	return out
}
