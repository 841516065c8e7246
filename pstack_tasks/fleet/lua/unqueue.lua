-- Take a waiting process off its engine type's waiting list (a kill), keeping the users' counts of
-- waiting processes right (lib.lua dequeue).  KEYS: proc, waiting, fair.  ARGV: pid.
local proc, waiting, fair, pid = next_key(), next_key(), next_key(), next_arg()
dequeue(waiting, fair, pid, owner(proc).user, false)
return 1
