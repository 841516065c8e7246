-- A worker joins the fleet with its slots (none in use), whom it serves and a fresh epoch, unless
-- another live worker holds the name (its heartbeat has another epoch): then 0, and nothing changes.
-- KEYS: engines, cap, used, info, epoch, alive, serves.  ARGV: engine, host, slots, epoch, ttl ms,
-- info JSON, serves JSON {"groups": [...], "users": [...]} ('' : it serves everyone).
local engines, cap, used, info, epoch, alive, serves = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local engine, host, slots, ep, ttl, desc, rule = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local holder = redis.call('GET', alive)
if holder and holder ~= ep then return 0 end
redis.call('SADD', engines, engine)
redis.call('HSET', cap, host, slots)
redis.call('HSET', used, host, 0)
redis.call('HSET', info, host, desc)
if rule == '' then redis.call('HDEL', serves, host) else redis.call('HSET', serves, host, rule) end
redis.call('SET', epoch, ep)
redis.call('SET', alive, ep, 'PX', ttl)
return 1
