-- The stack's run id, written at first use.  A Redis that lost its data (restarted without
-- persistence) has none: it gets a new one, and the pid counter is raised to at least ARGV[2]
-- (from the clock) so that no pid handed out before the loss is handed out again.
-- KEYS: stack_id, next_pid.  ARGV: a fresh id, the least next pid.  Returns {id, fresh (0/1)}.
local sid, next_pid = KEYS[1], KEYS[2]
local cur = redis.call('GET', sid)
if cur then return {cur, 0} end
redis.call('SET', sid, ARGV[1])
local n = tonumber(redis.call('GET', next_pid) or '0')
if n < tonumber(ARGV[2]) then redis.call('SET', next_pid, ARGV[2]) end
return {ARGV[1], 1}
