-- Refuse at once what can never fit; else join the waiting list.  A process recovering from a
-- lost worker (field recovering) is never refused: it waits for a replacement (docs/persistence.md).
-- KEYS/ARGV: proc, waiting; engine; then the fleet (lib.lua read_fleet).
-- Returns {1, ''} queued, {0, reason} refused, {-1, ''} the caller's view of the fleet is stale.
local proc, waiting, engine = next_key(), next_key(), next_arg()
local f = read_fleet()
if not fleet_current(f) then return {-1, ''} end
local n = tonumber(redis.call('HGET', proc, 'nregions'))
local rcon = cjson.decode(redis.call('HGET', proc, 'rcon') or '{}')

local function refusal()
  local slots, free, hosts = alive_hosts(f)
  local total = 0
  for _, h in ipairs(hosts) do total = total + slots[h] end
  if #hosts == 0 then
    return 'no '..engine..' engine is online (start one: pstack worker --engine '..engine..')'
  end
  if total < n then
    return 'the process needs '..n..' '..engine..' slots at once; the '..engine..' fleet has '..total
  end
  local pinned = {}
  for _, host in pairs(rcon) do pinned[host] = (pinned[host] or 0) + 1 end
  for host, k in pairs(pinned) do
    if not slots[host] then
      return 'a region is pinned to '..host..', but no '..engine..' engine named '..host..' is online'
    end
    if slots[host] < k then
      return k..' regions are pinned to '..host..', which has '..slots[host]..' slots'
    end
  end
  return nil
end

if redis.call('HGET', proc, 'recovering') ~= '1' then
  local why = refusal()
  if why then return {0, why} end
end
redis.call('HSET', proc, 'state', 'Waiting')
redis.call('RPUSH', waiting, redis.call('HGET', proc, 'pid'))
return {1, ''}
