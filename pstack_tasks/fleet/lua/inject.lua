-- inject: push one message item, sent "from" a device, onto the queues of a running process's
-- regions that hold its destinations (pstack_tasks/fleet/inspection.py, docs/debugging.md).
--
-- KEYS[1] = the process record, KEYS[2] = <pid>.active, KEYS[3..] = the queues to push to.
-- ARGV[1] = the item.
--
-- Counted as an engine counts its sends (docs/engine-protocol.md, "Ending"): INCRBY active by the
-- number of items before they are pushed, in one script, so the termination counter never misses
-- an item in flight and the process cannot end while the item waits in a queue.  Refused (0) when
-- the process is not Running or its counter is already 0 (quiescence was detected: the regions are
-- stopping), so an item never lands in the queue of a process that has ended.
if redis.call('HGET', KEYS[1], 'state') ~= 'Running' then return 0 end
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
if n <= 0 then return 0 end
redis.call('INCRBY', KEYS[2], #KEYS - 2)
for i = 3, #KEYS do redis.call('RPUSH', KEYS[i], ARGV[1]) end
return 1
