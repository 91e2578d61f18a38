-- set_limit: the cap changes in one step so a claim sees the old or the new value, never a mix.
-- ARGV: 3 field prefix (ql / kl), 4 name, 5 limit (0 removes).
local f = ARGV[3] .. ':' .. ARGV[4]
if tonumber(ARGV[5]) > 0 then put(SK, f, ARGV[5]) else put(SK, f, false) end
if ARGV[3] == 'ql' then
  ready_queues[ARGV[4]] = true
else
  -- A key cap spans queues: wake every queue that has ready steps.
  for _, field in ipairs(redis.call('HKEYS', SK)) do
    if string.sub(field, 1, 2) == 'r:' then ready_queues[string.sub(field, 3)] = true end
  end
end
flush()
return { 'OK' }
