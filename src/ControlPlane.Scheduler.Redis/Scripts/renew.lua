-- renew: a lease is extended only while its fencing token is current and its holder renews it, checked and written in one step.
-- ARGV: 3 agent id, 4 lease ms, 5 count, 6 session id ('' any session of the agent), then per attempt: run, step, token.
local agent, lease, session = ARGV[3], tonumber(ARGV[4]), ARGV[6] or ''
local n = math.min(math.floor(tonumber(ARGV[5]) or 0), math.floor((#ARGV - 6) / 3))
local AK = P .. 'ag:' .. agent
if redis.call('EXISTS', AK) == 1 then put(AK, 'hb', NOW) end
local fields = {}
for i = 0, n - 1 do
  local k = RK(ARGV[7 + i * 3])
  local f = fields[k]
  if not f then f = {}; fields[k] = f end
  local id = ARGV[8 + i * 3]
  f[#f + 1] = id .. ':st'; f[#f + 1] = id .. ':tk'; f[#f + 1] = id .. ':cx'; f[#f + 1] = id .. ':ag'; f[#f + 1] = id .. ':sn'
end
for k, f in pairs(fields) do pre(k, f) end
local stop, zargs = {}, {}
for i = 0, n - 1 do
  local run, id, tok = ARGV[7 + i * 3], ARGV[8 + i * 3], ARGV[9 + i * 3]
  local k = RK(run)
  local st = num(get(k, id .. ':st'))
  -- A session of the agent that no longer holds the attempt (the agent reconnected and re-announced it) renews nothing.
  local held_by = get(k, id .. ':sn') or ''
  if get(k, id .. ':tk') ~= tok or get(k, id .. ':ag') ~= agent or (st ~= ASSIGNED and st ~= RUNNING)
    or (session ~= '' and held_by ~= '' and held_by ~= session) then
    stop[#stop + 1] = tok
  else
    -- A cancelled attempt keeps its lease so it can report how it ended.
    zargs[#zargs + 1] = I(NOW + lease); zargs[#zargs + 1] = tok .. '|' .. run .. '|' .. id
    if get(k, id .. ':cx') == '1' then stop[#stop + 1] = tok end
  end
end
sliced('ZADD', P .. 'leases', 'XX', zargs)
flush()
return stop
