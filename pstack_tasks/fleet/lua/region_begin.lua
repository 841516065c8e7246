-- A region's task begins: only a task of its process's current run (lib.lua start) while the
-- process is Running takes part; then its first heartbeat and "started" are set in the same step
-- (peers never see a started region without a heartbeat).  A task of another run, or of a process
-- that is not Running, touches nothing: a heartbeat or "started" it set would be the current run's.
-- KEYS/ARGV: proc, beat, started, abort; region, run ('': any run), host, heartbeat TTL (ms),
-- expiry (s).
-- Returns {1, abort ('' none), the record as HGETALL gives it}, or {0, state ('' gone), its run}.
local proc, beat, started, abort = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local region, run, host, ttl_ms, expires = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local state, current = unpack(redis.call('HMGET', proc, 'state', 'run'))
if state ~= 'Running' or (run ~= '' and (current or '') ~= run) then
  return {0, state or '', current or ''}
end
redis.call('SET', beat, host, 'PX', ttl_ms)
redis.call('SADD', started, region)
redis.call('EXPIRE', started, expires)
return {1, redis.call('GET', abort) or '', redis.call('HGETALL', proc)}
