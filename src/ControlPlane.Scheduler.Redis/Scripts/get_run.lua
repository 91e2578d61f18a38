-- get_run (read only): the run hash without its blobs and its transitions (the history list, not the event stream, so
-- the cost does not follow the volume of logs) as one snapshot, plus the slot counters and agents when a READY step
-- needs its blocked reason, all in one round trip.
-- KEYS[1] run hash, KEYS[2] history list, KEYS[3] slot counters, KEYS[4] agent set; ARGV[1] agent key prefix.
local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then return false end
local out = {}
local ready = false
for i = 1, #all, 2 do
  local f = all[i]
  local tail = string.match(f, ':(%a+)$')
  if tail == 'ck' then
    out[#out + 1] = f; out[#out + 1] = '1'
  elseif tail ~= 'o' and tail ~= 'p' and f ~= '_spec' then
    out[#out + 1] = f; out[#out + 1] = all[i + 1]
    if tail == 'st' and all[i + 1] == '2' then ready = true end
  end
end
local slots, agents = false, false
if ready then
  slots = redis.call('HGETALL', KEYS[3])
  agents = {}
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    agents[#agents + 1] = { id, redis.call('HGETALL', ARGV[1] .. id) }
  end
end
-- Entries shaped as XRANGE returns them, so one decoder reads both; the history needs no sequence numbers.
local hist = redis.call('LRANGE', KEYS[2], 0, -1)
local entries = {}
for i = 1, #hist do entries[i] = { i .. '-1', { 'v', hist[i] } } end
return { out, redis.call('HGET', KEYS[1], '_spec'), entries, slots, agents }
