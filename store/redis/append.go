package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"factstream/store"
)

// epochLua is the part of the scripts below that names the stream's life:
// the epoch key holds a value made from Redis's clock when the key is first
// needed. A Redis that loses its data loses that key with the facts, so
// the next script to run makes a new epoch, and the tail loops of the
// instances see that the seqs they hold no longer mean the same facts.
const epochLua = `
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  local t = redis.call('TIME')
  epoch = t[1] .. '.' .. t[2]
  redis.call('SET', KEYS[3], epoch)
end
`

// headLua returns the epoch and the last seq, as of one moment.
//
// KEYS: stream, ids, epoch, deletions. Returns the epoch, the last seq and
// the last id of the deletions stream.
const headLua = epochLua + lastIDLua + `
return {epoch, string.format('%d', lastSeq(KEYS[1])), lastID(KEYS[4])}
`

// appendLua assigns seqs and appends in one atomic step, so two instances
// can never hand out the same seq nor leave a gap. Every entry carries the
// epoch it was appended in.
//
// KEYS: stream, ids, epoch[, idempotency record]
// ARGV: hash, batch (0|1), ttl ms, then id, info, source, at per fact.
// Returns {"ok", first seq}, {"replay", first, last, batch} or {"mismatch"}.
//
// Redis does not roll a script back, so every check comes before the first
// write that matters: once facts are written nothing can fail half-way
// through a batch. (Making the epoch first is harmless on its own.)
const appendLua = `
if #KEYS == 4 then
  local rec = redis.call('HMGET', KEYS[4], 'hash', 'first', 'last', 'batch')
  if rec[1] then
    if rec[1] ~= ARGV[1] then return {'mismatch'} end
    return {'replay', rec[2], rec[3], rec[4]}
  end
end
` + epochLua + lastIDLua + `
local last = lastSeq(KEYS[1])
local n = (#ARGV - 3) / 4
for i = 0, n - 1 do
  local seq = string.format('%d', last + i + 1)
  local a = 4 + i * 4
  redis.call('XADD', KEYS[1], seq .. '-0',
    'id', ARGV[a], 'info', ARGV[a+1], 'source', ARGV[a+2], 'at', ARGV[a+3], 'epoch', epoch)
  redis.call('HSET', KEYS[2], ARGV[a], seq)
end
if #KEYS == 4 then
  redis.call('HSET', KEYS[4], 'hash', ARGV[1], 'first', string.format('%d', last + 1),
    'last', string.format('%d', last + n), 'batch', ARGV[2])
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
end
return {'ok', string.format('%d', last + 1)}
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

// Append implements store.Store. It succeeds only once Redis has acknowledged the
// script; with appendfsync always that means the facts are on disk. When the
// reply is lost (timeout) the append may still have committed: the caller
// gets store.ErrUnavailable, and a retry with the same idempotency key is safe.
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
	now := r.now()
	facts, err := store.NewFacts(req, 0, now)
	if err != nil {
		return store.AppendResult{}, err
	}
	keys, args := r.appendArgs(req, facts)
	reply, err := r.scripts.append.Run(ctx, r.rdb, keys, args...).StringSlice()
	if err != nil {
		return store.AppendResult{}, r.wrap("append", err)
	}
	if len(reply) == 4 && reply[0] == "replay" {
		res, err := r.replay(ctx, reply[1], reply[2], reply[3] == "1")
		if !errors.Is(err, errReplayGone) {
			return res, err
		}
		// The key went with its facts: the request is a new one. Only
		// one of concurrent requests with the key appends; the others
		// replay it.
		if err := r.forgetIdem(ctx, req.Idem.Key, reply[1]); err != nil {
			return store.AppendResult{}, err
		}
		if reply, err = r.scripts.append.Run(ctx, r.rdb, keys, args...).StringSlice(); err != nil {
			return store.AppendResult{}, r.wrap("append", err)
		}
	}
	switch {
	case len(reply) == 2 && reply[0] == "ok":
		first, err := seqOf(reply[1])
		if err != nil {
			return store.AppendResult{}, err
		}
		for i := range facts {
			facts[i].Seq = first + uint64(i)
		}
		r.afterAppend(ctx, first, facts[len(facts)-1].Seq)
		return store.AppendResult{Facts: facts, Batch: req.Batch}, nil
	case len(reply) == 4 && reply[0] == "replay":
		return r.replay(ctx, reply[1], reply[2], reply[3] == "1")
	case len(reply) == 1 && reply[0] == "mismatch":
		return store.AppendResult{}, store.ErrIdempotencyMismatch
	default:
		return store.AppendResult{}, fmt.Errorf("append: unexpected script reply %q", reply)
	}
}

func (r *Store) appendArgs(req store.AppendRequest, facts []store.Fact) (keys []string, args []any) {
	keys = []string{r.keys.stream, r.keys.ids, r.keys.epoch}
	args = make([]any, 0, 3+4*len(facts))
	if req.Idem != nil {
		keys = append(keys, r.keys.idem+req.Idem.Key)
		args = append(args, hex.EncodeToString(req.Idem.Hash[:]))
	} else {
		args = append(args, "")
	}
	batch := "0"
	if req.Batch {
		batch = "1"
	}
	args = append(args, batch, store.IdempotencyTTL.Milliseconds())
	for _, f := range facts {
		args = append(args, f.ID, f.Info, f.Source, f.CreatedAt.Format(store.TimeLayout))
	}
	return keys, args
}

// replay reads back the facts an earlier append with the same key committed.
// Facts never change once written, so reading them after the script is safe.
func (r *Store) replay(ctx context.Context, first, last string, batch bool) (store.AppendResult, error) {
	lo, err := seqOf(first)
	if err != nil {
		return store.AppendResult{}, err
	}
	hi, err := seqOf(last)
	if err != nil {
		return store.AppendResult{}, err
	}
	msgs, err := r.rdb.XRange(ctx, r.keys.stream, streamID(lo), streamID(hi)).Result()
	if err != nil {
		return store.AppendResult{}, r.wrap("read replayed facts", err)
	}
	facts, err := decodeEntries(msgs)
	if err != nil {
		return store.AppendResult{}, err
	}
	if uint64(len(facts)) != hi-lo+1 {
		return store.AppendResult{}, fmt.Errorf("replay: idempotency record names seqs %d..%d, found %d facts: %w", lo, hi, len(facts), errReplayGone)
	}
	return store.AppendResult{Facts: facts, Batch: batch, Replayed: true}, nil
}
