-- A region ended (its engine can send nothing more): its part of the result kept while the
-- process is Running, else the process's engine keys deleted (an ended process's engines must
-- leave none: worker/region.py _end_region says why this is final), its slot back, then whatever
-- waits and fits now is admitted (as admit.lua).
--
-- A worker's region (section flag '1') also says here that it ended, in the same step: its last
-- counters, its exit code and reason (exits), ended, its heartbeat gone; and when it is the last
-- region of a Running process none of whose regions failed, it ends the process Done (the reason
-- from the region where the stop began, as native/results.py merge_results chooses it).
--
-- Only an end of the process's current run counts (``run``, lib.lua start): an end of a run
-- before a restart or recovery touches nothing of the process (its slot went back when that run
-- ended) and returns {1}.
-- KEYS/ARGV: lease, region, now, ttl, run ('': any run); proc, result, the part (JSON, '' for none);
-- the number of engine keys and those keys (message lists, active, idle, calls); the section flag
-- and, for '1': keys progress, exits, beat, then finish's keys (lib.lua finish_keys), ARGV pid,
-- counters ('' none), exit text ('' none), the regions (JSON), '1' if client engines serve regions
-- too, the exit reasons that defer to another region's (JSON), the exit code's and reason's
-- metric names, the reason when none is given; then the fleet (read_fleet); then admit's own.
-- Returns {1} for another run's end, else {0, abort ('' none), regions ended, 1 if this ended the
-- process Done, its reason, then admit's reply}.
local lease, region, now, ttl, run = next_key(), next_arg(), next_arg(), next_arg(), next_arg()
local proc, result, part = next_key(), next_key(), next_arg()
local queues = {}
for i = 1, tonumber(next_arg()) do queues[i] = next_key() end
if run ~= '' and (redis.call('HGET', proc, 'run') or '') ~= run then return {1} end
local state = redis.call('HGET', proc, 'state')
if state == 'Running' then
  if part ~= '' then
    redis.call('HSET', result, region, part)
    redis.call('EXPIRE', result, ttl)
  end
elseif #queues > 0 then
  redis.call('DEL', unpack(queues))
end

-- The reason a Done process ended with, from every region's exit text; nil if one has none.
local function done_reason(exits, regions, followed, code_name, reason_name, default_reason)
  local defer, first, chosen = {}, nil, nil
  for _, r in ipairs(cjson.decode(followed)) do defer[r] = true end
  table.sort(regions)
  for _, x in ipairs(regions) do
    local text = redis.call('HGET', exits, tostring(x))
    if not text then return nil end
    local m = cjson.decode(text)
    first = first or m
    if not chosen and not defer[m[reason_name] or ''] then chosen = m end
  end
  chosen = chosen or first or {}
  return 'exit code '..tostring(chosen[code_name] or 0)..' ('..tostring(chosen[reason_name] or default_reason)..')'
end

local out = {0, '', 0, 0, ''}
if next_arg() == '1' then
  local progress, exits, beat = next_key(), next_key(), next_key()
  local fk = finish_keys()
  local pid, counts, exit, regions = next_arg(), next_arg(), next_arg(), cjson.decode(next_arg())
  local clients, followed, code_name, reason_name, default_reason = next_arg(), next_arg(), next_arg(), next_arg(), next_arg()
  if counts ~= '' then
    redis.call('HSET', progress, region, counts)
    redis.call('EXPIRE', progress, ttl)
  end
  if exit ~= '' then
    redis.call('HSET', exits, region, exit)
    redis.call('EXPIRE', exits, ttl)
  end
  redis.call('SADD', fk.ended, region)
  redis.call('EXPIRE', fk.ended, ttl)
  redis.call('DEL', beat)
  local abort = redis.call('GET', fk.abort)
  local ended = redis.call('SCARD', fk.ended)
  out[2], out[3] = abort or '', ended
  if state == 'Running' and not abort and exit ~= '' and clients ~= '1' and ended >= #regions then
    local reason = done_reason(exits, regions, followed, code_name, reason_name, default_reason)
    if reason and finish_at(fk, pid, 'Done', reason, now, ttl) == 1 then
      out[4], out[5] = 1, reason
      if #queues > 0 then redis.call('DEL', unpack(queues)) end
    end
  end
end
local f = read_fleet()
release(f, lease, {region})
for _, v in ipairs(admit(f, now, ttl)) do table.insert(out, v) end
return out
