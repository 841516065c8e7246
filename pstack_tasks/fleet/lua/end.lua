-- End a process (first ending wins; state '' means Killed if someone killed it, else Failed),
-- free every slot it holds and its engines' keys, admit what fits now.
-- KEYS/ARGV: pid, state, reason, now, ttl; finish's keys; lease; the number of engine keys and
-- those keys (message lists, active, idle, calls); the fleet (read_fleet); then admit's own.
-- Returns {ended, state, more, admitted...} (admit's reply after the first two), or {-1} for an
-- unknown process.
local pid, state, reason, now, ttl = next_arg(), next_arg(), next_arg(), next_arg(), next_arg()
local proc = KEYS[K + 1]  -- finish's first key
if redis.call('EXISTS', proc) == 0 then return {-1} end
local ended = finish(pid, state, reason, now, ttl)
local lease = next_key()
local queues = {}
for i = 1, tonumber(next_arg()) do queues[i] = next_key() end
local f = read_fleet()
release(f, lease, nil)
if #queues > 0 then redis.call('DEL', unpack(queues)) end
local out = {ended, redis.call('HGET', proc, 'state')}
for _, v in ipairs(admit(f, now, ttl)) do table.insert(out, v) end
return out
