-- A worker leaves the fleet; only the registration that owns the name removes it.
-- KEYS: epoch, cap, used, info, alive, serves.  ARGV: host, epoch.
local epoch, cap, used, info, alive, serves = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local host, ep = ARGV[1], ARGV[2]
if redis.call('GET', epoch) ~= ep then return 0 end
redis.call('HDEL', cap, host)
redis.call('HDEL', used, host)
redis.call('HDEL', info, host)
redis.call('HDEL', serves, host)
redis.call('DEL', alive, epoch)
return 1
