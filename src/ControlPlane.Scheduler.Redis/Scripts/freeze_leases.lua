-- freeze_leases: the frozen-until mark and the lease deadlines move together, so replicas that saw one outage shift the
-- leases once in total, and a deadline read between the two can not be shifted twice or missed.
-- ARGV: 3 since ms, 4 until ms, 5 lease ms (the most one call shifts). Every lease still running when the part of
-- [since, until] not frozen before began moves later by that part's length; until past NOW counts as NOW.
local since, upto, lease = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if not since or not upto or not lease or since ~= since or upto ~= upto or since < 0 or since > upto or lease <= 0 then
  return err('InvalidArgument', 0, 'freeze_leases takes since <= until (Unix ms, from 1970) and a positive lease; got ' ..
    tostring(ARGV[3]) .. ', ' .. tostring(ARGV[4]) .. ', ' .. tostring(ARGV[5]))
end
local FK = P .. 'frozen'
if upto > NOW then upto = NOW end
local start = math.max(since, num(redis.call('GET', FK)))
local shift = math.min(upto - start, lease)
if shift <= 0 then return { 0, 0 } end

-- A lease that ended before the frozen part began was lost before the outage; it stays lost.
local running = redis.call('ZRANGEBYSCORE', P .. 'leases', '(' .. I(start), '+inf', 'WITHSCORES')
local zargs = {}
for i = 1, #running, 2 do
  zargs[#zargs + 1] = I(tonumber(running[i + 1]) + shift); zargs[#zargs + 1] = running[i]
end
redis.call('SET', FK, I(upto))
sliced('ZADD', P .. 'leases', 'XX', zargs)
return { shift, #running / 2 }
