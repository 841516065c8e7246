-- A worker's heartbeat.  KEYS: epoch, cap, alive.  ARGV: host, epoch, ttl ms.
-- 0: the registration is gone (Redis restarted, or another worker took the name): register again.
local epoch, cap, alive = KEYS[1], KEYS[2], KEYS[3]
local host, ep, ttl = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', epoch) ~= ep then return 0 end
if redis.call('HEXISTS', cap, host) == 0 then return 0 end
redis.call('SET', alive, ep, 'PX', ttl)
return 1
