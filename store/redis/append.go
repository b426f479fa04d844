package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"factstream/store"
)

// epochLua is the part of the scripts below that names the stream's life:
// the epoch key holds a value made from Redis's clock when the key is first
// needed. A Redis that loses its data loses that key with the facts, so
// the next script to run makes a new epoch, and the tail loops of the
// instances see that the facts they reported are gone.
const epochLua = `
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  local t = redis.call('TIME')
  epoch = t[1] .. '.' .. t[2]
  redis.call('SET', KEYS[3], epoch)
end
`

// floorLua keeps seqs from going backwards when Redis lost facts (it came
// back empty, or from an older copy of its data). ARGV[1] is the floor:
// the highest seq the calling instance has seen. A stream whose last id is
// below it lost facts that instance saw, and clients may hold their seqs
// as ids: the stream's last id is raised to the floor, so the next seq is
// above every seq the instance handed out, and an id from before the loss
// names no new fact but is older than the store. The epoch key goes too,
// so the epochLua that follows makes a new epoch and every tail loop
// resets, also after an older copy that kept its epoch. In a Redis that
// kept its data the floor is never above the last id, which only grows,
// and nothing happens.
//
// Needs lastIDLua, KEYS[1] the stream and KEYS[3] the epoch key; leaves
// the stream's last seq in last.
const floorLua = `
local last = lastSeq(KEYS[1])
local floor = tonumber(ARGV[1])
if floor > last then
  local id = string.format('%d', floor) .. '-0'
  if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('XSETID', KEYS[1], id)
  else
    -- An entry trimmed as it is added: the stream exists, empty, and
    -- remembers the id.
    redis.call('XADD', KEYS[1], 'MAXLEN', '0', id, 'floor', '1')
  end
  redis.call('DEL', KEYS[3])
  last = floor
end
`

// headLua returns the epoch and the last seq, as of one moment, after
// floorLua.
//
// KEYS: stream, ids, epoch, deletions. ARGV: floor. Returns the epoch, the
// last seq and the last id of the deletions stream.
const headLua = lastIDLua + floorLua + epochLua + `
return {epoch, string.format('%d', last), lastID(KEYS[4])}
`

// appendLua commits a group of append requests in one call, so that
// concurrent publishes share one round trip and, with appendfsync always,
// one fsync. It assigns seqs and appends in one atomic step, so two
// instances can never hand out the same seq nor leave a gap. Every entry
// carries the epoch it was appended in.
//
// Each request is decided on its own, in order: an idempotency key met
// before (in an earlier call, or earlier in this one) replays or refuses
// that request alone, and the next request takes the seq after the last
// one committed, so a refused request leaves no gap. The first seq is
// above the floor (see floorLua).
//
// KEYS: stream, ids, epoch, then the idempotency records of the requests
// that have a key.
// ARGV: floor, ttl ms, number of requests, then per request: the index in
// KEYS of its record (0 without a key), hash, batch (0|1), number of facts
// n, and id, info, source, at per fact.
// Returns one reply per request, in order: {"ok", first seq},
// {"replay", first, last, batch} or {"mismatch"}.
//
// Redis does not roll a script back, so every check of a request comes
// before its first write: once its facts are being written nothing can
// fail half-way through it. (Raising the last id and making the epoch
// first are harmless on their own.)
const appendLua = lastIDLua + floorLua + epochLua + `
local out = {}
local a = 4
for r = 1, tonumber(ARGV[3]) do
  local k, hash, batch, n = tonumber(ARGV[a]), ARGV[a+1], ARGV[a+2], tonumber(ARGV[a+3])
  a = a + 4
  local rec = {false}
  if k > 0 then rec = redis.call('HMGET', KEYS[k], 'hash', 'first', 'last', 'batch') end
  if rec[1] then
    if rec[1] ~= hash then out[r] = {'mismatch'} else out[r] = {'replay', rec[2], rec[3], rec[4]} end
  else
    for i = 0, n - 1 do
      local seq = string.format('%d', last + i + 1)
      local f = a + i * 4
      redis.call('XADD', KEYS[1], seq .. '-0',
        'id', ARGV[f], 'info', ARGV[f+1], 'source', ARGV[f+2], 'at', ARGV[f+3], 'epoch', epoch)
      redis.call('HSET', KEYS[2], ARGV[f], seq)
    end
    if k > 0 then
      redis.call('HSET', KEYS[k], 'hash', hash, 'first', string.format('%d', last + 1),
        'last', string.format('%d', last + n), 'batch', batch)
      redis.call('PEXPIRE', KEYS[k], ARGV[2])
    end
    out[r] = {'ok', string.format('%d', last + 1)}
    last = last + n
  end
  a = a + n * 4
end
return out
`

// redisScripts are the Lua scripts of one store. Each *goredis.Script caches
// its SHA, so they belong to the store rather than to the package.
type redisScripts struct {
	head           *goredis.Script
	append         *goredis.Script
	reportClients  *goredis.Script
	clusterClients *goredis.Script
}

func newRedisScripts() redisScripts {
	return redisScripts{
		head:           goredis.NewScript(headLua),
		append:         goredis.NewScript(appendLua),
		reportClients:  goredis.NewScript(reportClientsLua),
		clusterClients: goredis.NewScript(clusterClientsLua),
	}
}

// Append implements store.Store. It hands the request to the writer, which
// commits it with the other appends waiting at that moment in one script
// call, and succeeds only once Redis has acknowledged that call; with
// appendfsync always that means the facts are on disk. When the reply is
// lost (timeout) the append may still have committed: the caller gets
// store.ErrUnavailable, and a retry with the same idempotency key is safe.
func (r *Store) Append(ctx context.Context, req store.AppendRequest) (store.AppendResult, error) {
	if len(req.Drafts) == 0 {
		return store.AppendResult{}, fmt.Errorf("append: no drafts")
	}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return store.AppendResult{}, store.ErrClosed
	}
	if err := r.checkStarted(); err != nil {
		r.mu.RUnlock()
		return store.AppendResult{}, err
	}
	r.inflight.Add(1)
	r.mu.RUnlock()
	defer r.inflight.Done()

	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	facts, err := store.NewFacts(req, 0, r.now())
	if err != nil {
		return store.AppendResult{}, err
	}
	p, err := r.submit(ctx, req, facts)
	if err != nil {
		return store.AppendResult{}, err
	}
	if p.replay != nil {
		res, err := r.replay(ctx, p.replay.first, p.replay.last, p.replay.batch)
		if !errors.Is(err, errReplayGone) {
			return res, err
		}
		// The key went with its facts: the request is a new one. Only
		// one of concurrent requests with the key appends; the others
		// replay it.
		if err := r.forgetIdem(ctx, req.Idem.Key, fmt.Sprint(p.replay.first)); err != nil {
			return store.AppendResult{}, err
		}
		if p, err = r.submit(ctx, req, facts); err != nil {
			return store.AppendResult{}, err
		}
		if p.replay != nil {
			return r.replay(ctx, p.replay.first, p.replay.last, p.replay.batch)
		}
	}
	r.afterAppend(p.facts[0].Seq, p.facts[len(p.facts)-1].Seq)
	return store.AppendResult{Facts: p.facts, Batch: req.Batch}, nil
}

// submit hands one request to the writer and waits for its answer.
func (r *Store) submit(ctx context.Context, req store.AppendRequest, facts []store.Fact) (*pending, error) {
	deadline, _ := ctx.Deadline()
	p := &pending{req: req, facts: facts, size: requestSize(facts), deadline: deadline, ok: make(chan struct{})}
	select {
	case r.reqs <- p:
	case <-ctx.Done():
		return nil, r.wrap("append: wait for the writer", ctx.Err())
	}
	// Once handed over, the request is committed or refused within its
	// deadline, whatever becomes of ctx: the writer answers every request
	// it takes.
	<-p.ok
	if p.err != nil {
		return nil, p.err
	}
	return p, nil
}

// replay reads back the facts an earlier append with the same key committed.
// Facts never change once written, so reading them after the script is safe.
func (r *Store) replay(ctx context.Context, lo, hi uint64, batch bool) (store.AppendResult, error) {
	msgs, err := r.rdb.XRange(ctx, r.keys.stream, streamID(lo), streamID(hi)).Result()
	if err != nil {
		return store.AppendResult{}, r.wrap("read replayed facts", err)
	}
	facts, err := r.noteFacts(decodeEntries(msgs))
	if err != nil {
		return store.AppendResult{}, err
	}
	if uint64(len(facts)) != hi-lo+1 {
		return store.AppendResult{}, fmt.Errorf("replay: idempotency record names seqs %d..%d, found %d facts: %w", lo, hi, len(facts), errReplayGone)
	}
	return store.AppendResult{Facts: facts, Batch: batch, Replayed: true}, nil
}
