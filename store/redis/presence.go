package redis

import (
	"context"
	"fmt"
)

// Presence lives in one hash, instance -> "<clients>:<expiry ms>", with the
// expiry taken from the Redis clock so that instances with skewed clocks
// agree on what has expired. The hash itself expires with its newest entry,
// so nothing is left behind once every instance is gone.
const (
	// KEYS: presence. ARGV: instance, clients, ttl ms.
	reportClientsLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. string.format('%d', now + tonumber(ARGV[3])))
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
`
	// KEYS: presence. Returns the sum of unexpired counts and drops the
	// expired ones.
	clusterClientsLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local sum = 0
for i = 1, #all, 2 do
  local n, exp = string.match(all[i + 1], '^(%d+):(%d+)$')
  if n and tonumber(exp) > now then
    sum = sum + tonumber(n)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return sum
`
)

// ReportClients implements store.Presence.
func (r *Store) ReportClients(ctx context.Context, instance string, n int) error {
	if n < 0 {
		return fmt.Errorf("report clients: negative count %d", n)
	}
	ctx, cancel, err := r.op(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	err = r.scripts.reportClients.Run(ctx, r.rdb, []string{r.keys.presence},
		instance, n, r.presenceTTL.Milliseconds()).Err()
	return r.wrap("report clients", err)
}

// ClusterClients implements store.Presence.
func (r *Store) ClusterClients(ctx context.Context) (int, error) {
	ctx, cancel, err := r.op(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	n, err := r.scripts.clusterClients.Run(ctx, r.rdb, []string{r.keys.presence}).Int()
	if err != nil {
		return 0, r.wrap("count cluster clients", err)
	}
	return n, nil
}
