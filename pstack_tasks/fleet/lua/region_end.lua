-- A region ended (its engine can send nothing more): its part of the result kept while the
-- process is Running, else the process's engine keys deleted (an ended process's engines must
-- leave none: worker/region.py _end_region says why this is final), its slot back, then whatever
-- waits and fits now is admitted (as admit.lua).
-- KEYS/ARGV: lease, region, now, ttl; proc, result, the part (JSON, '' for none); the number of
-- engine keys and those keys (message lists, active, idle, calls); the fleet (read_fleet); then
-- admit's own.
local lease, region, now, ttl = next_key(), next_arg(), next_arg(), next_arg()
local proc, result, part = next_key(), next_key(), next_arg()
local queues = {}
for i = 1, tonumber(next_arg()) do queues[i] = next_key() end
if redis.call('HGET', proc, 'state') == 'Running' then
  if part ~= '' then
    redis.call('HSET', result, region, part)
    redis.call('EXPIRE', result, ttl)
  end
elseif #queues > 0 then
  redis.call('DEL', unpack(queues))
end
local f = read_fleet()
release(f, lease, {region})
return admit(f, now, ttl)
