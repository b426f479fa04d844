package redis

import (
	"context"
	"fmt"
	"iter"

	goredis "github.com/redis/go-redis/v9"

	"factstream/store"
)

// Bounds of one import script call, so that no call is a huge request.
const (
	importBatch      = 500
	importBatchBytes = 1 << 20
)

// importLua adds one batch of exported facts with their own seqs, ids and
// times. The first batch (ARGV[1] == "0") needs a store that never held a
// fact: no stream key (a stream emptied by trimming still remembers its
// last id) and no id index. A later batch needs the stream to end where
// the previous batch left it, so nothing else wrote in between. Every
// check comes before the first write.
//
// KEYS: stream, ids, epoch.
// ARGV: last seq expected, then seq, id, info, source, at per fact.
// Returns {"ok"}, {"notempty"}, {"moved", last} or {"duplicate", seq}.
const importLua = `
if ARGV[1] == '0' then
  if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HLEN', KEYS[2]) > 0 then return {'notempty'} end
else
  local last = '0'
  local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #top > 0 then last = string.match(top[1][1], '^(%d+)-') end
  if last ~= ARGV[1] then return {'moved', last} end
end
local n = (#ARGV - 1) / 5
local seen = {}
for i = 0, n - 1 do
  local a = 2 + i * 5
  local id = ARGV[a + 1]
  if seen[id] or redis.call('HEXISTS', KEYS[2], id) == 1 then return {'duplicate', ARGV[a]} end
  seen[id] = true
end
` + epochLua + `
for i = 0, n - 1 do
  local a = 2 + i * 5
  redis.call('XADD', KEYS[1], ARGV[a] .. '-0',
    'id', ARGV[a + 1], 'info', ARGV[a + 2], 'source', ARGV[a + 3], 'at', ARGV[a + 4], 'epoch', epoch)
  redis.call('HSET', KEYS[2], ARGV[a + 1], ARGV[a])
end
return {'ok'}
`

// Import loads exported facts into this store, which must never have held
// any (store.ErrNotEmpty otherwise), keeping their ids, seqs, texts and
// times. It refuses seqs that do not strictly increase, an id seen twice
// (*store.DuplicateIDError) and an invalid fact, and stops at the first
// error facts yields. It is all or nothing: facts go in by script calls of
// at most importBatch facts or importBatchBytes, and on any error the
// stream and id index it had started are deleted again. Import into a
// store no instance serves: an instance's tail loop would report the facts
// as new.
func (r *Store) Import(ctx context.Context, facts iter.Seq2[store.Fact, error]) error {
	script := goredis.NewScript(importLua)
	var (
		prev  store.Fact
		last  uint64 // the last seq written by an earlier batch
		args  []any
		bytes int
		wrote bool
	)
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		ctx, cancel, err := r.op(ctx)
		if err != nil {
			return err
		}
		defer cancel()
		keys := []string{r.keys.stream, r.keys.ids, r.keys.epoch}
		reply, err := script.Run(ctx, r.rdb, keys, append([]any{fmt.Sprint(last)}, args...)...).StringSlice()
		if err != nil {
			// The reply may be lost after the script ran: clean up as if
			// it had.
			wrote = true
			return r.wrap("import", err)
		}
		switch {
		case len(reply) == 1 && reply[0] == "ok":
			wrote, last, args, bytes = true, prev.Seq, args[:0], 0
			return nil
		case len(reply) == 1 && reply[0] == "notempty":
			return store.ErrNotEmpty
		case len(reply) == 2 && reply[0] == "duplicate":
			seq, err := seqOf(reply[1])
			if err != nil {
				return err
			}
			return &store.DuplicateIDError{ID: idOfSeq(args, reply[1]), Seq: seq}
		case len(reply) == 2 && reply[0] == "moved":
			// Someone else's facts are in the stream now: deleting it
			// would lose them too.
			wrote = false
			return fmt.Errorf("import: the stream ends at seq %s, not %d: something else writes to the store; the facts imported so far are left in it", reply[1], last)
		default:
			return fmt.Errorf("import: unexpected script reply %q", reply)
		}
	}
	err := func() error {
		for f, err := range store.Checked(facts) {
			if err != nil {
				return err
			}
			at := f.CreatedAt.Format(store.TimeLayout)
			size := len(f.ID) + len(f.Info) + len(f.Source) + len(at) + 20
			if len(args) > 0 && (len(args)/5 >= importBatch || bytes+size > importBatchBytes) {
				if err := flush(); err != nil {
					return err
				}
			}
			args = append(args, fmt.Sprint(f.Seq), f.ID, f.Info, f.Source, at)
			bytes += size
			prev = f
		}
		return flush()
	}()
	if err != nil && wrote {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisOpTimeout)
		defer cancel()
		if derr := r.rdb.Del(ctx, r.keys.stream, r.keys.ids).Err(); derr != nil {
			return fmt.Errorf("%w; deleting the facts imported so far failed too, so the store holds part of the import: %w", err, derr)
		}
	}
	return err
}

// idOfSeq finds the id that goes with seq among a batch's arguments.
func idOfSeq(args []any, seq string) string {
	for i := 0; i+1 < len(args); i += 5 {
		if args[i] == seq {
			s, _ := args[i+1].(string)
			return s
		}
	}
	return ""
}
