-- Refuse at once what can never fit on the workers that serve it; else join the waiting list at its
-- user's next turn (lib.lua enqueue).  A process recovering from a lost worker (field recovering)
-- is never refused: it waits for a replacement (docs/persistence.md).
-- KEYS/ARGV: proc, waiting, fair; engine; then the fleet (lib.lua read_fleet).
-- Returns {1, ''} queued, {0, reason} refused, {-1, ''} the caller's view of the fleet is stale.
local proc, waiting, fair, engine = next_key(), next_key(), next_key(), next_arg()
local f = read_fleet()
if not fleet_current(f) then return {-1, ''} end
local n = tonumber(redis.call('HGET', proc, 'nregions'))
local rcon = cjson.decode(redis.call('HGET', proc, 'rcon') or '{}')
local who = owner(proc)

-- Why the process can never start on the workers online now; nil when it can.
local function refusal()
  local _, _, online = alive_hosts(f, nil)
  if #online == 0 then
    return 'no '..engine..' engine is online (start one: pstack worker --engine '..engine..')'
  end
  local slots, _, hosts = alive_hosts(f, who)
  if #hosts == 0 then
    return 'no '..engine..' worker serves '..owner_text(who)..': the '..#online..' online serve other groups '..
           'or users (start one: pstack worker --engine '..engine..' --group G or --user U)'
  end
  local total = 0
  for _, h in ipairs(hosts) do total = total + slots[h] end
  if total < n then
    local whose = 'the '..engine..' fleet has '
    if #hosts < #online then whose = 'the '..engine..' workers serving '..owner_text(who)..' have ' end
    return 'the process needs '..n..' '..engine..' slots at once; '..whose..total
  end
  local pinned = {}
  for _, host in pairs(rcon) do pinned[host] = (pinned[host] or 0) + 1 end
  for host, k in pairs(pinned) do
    if not slots[host] then
      for _, h in ipairs(online) do
        if h == host then
          return 'a region is pinned to '..host..', whose '..engine..' worker does not serve '..owner_text(who)
        end
      end
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
enqueue(waiting, fair, redis.call('HGET', proc, 'pid'), who.user)
return {1, ''}
