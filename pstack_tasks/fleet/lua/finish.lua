-- End a process (first ending wins) without touching its slots: a refused one holds none.
-- KEYS/ARGV: pid, state, reason, now, ttl; then finish's keys (lib.lua).  Returns 1 if it ended it.
local pid, state, reason, now, ttl = next_arg(), next_arg(), next_arg(), next_arg(), next_arg()
return finish(pid, state, reason, now, ttl)
