-- A worker joins the fleet with its slots (none in use) and a fresh epoch, unless another
-- live worker holds the name (its heartbeat has another epoch): then 0, and nothing changes.
-- KEYS: engines, cap, used, info, epoch, alive.  ARGV: engine, host, slots, epoch, ttl ms, info JSON.
local engines, cap, used, info, epoch, alive = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local engine, host, slots, ep, ttl, desc = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local holder = redis.call('GET', alive)
if holder and holder ~= ep then return 0 end
redis.call('SADD', engines, engine)
redis.call('HSET', cap, host, slots)
redis.call('HSET', used, host, 0)
redis.call('HSET', info, host, desc)
redis.call('SET', epoch, ep)
redis.call('SET', alive, ep, 'PX', ttl)
return 1
