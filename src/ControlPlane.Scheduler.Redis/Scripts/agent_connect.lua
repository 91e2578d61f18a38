-- agent_connect: registration and the keep-or-revoke decision on re-announced attempts must see one consistent state.
-- ARGV: 3 agent id, 4 host, 5 frameworks json, 6 queues json, 7 labels json, 8 slots, 9 handlers json, 10 lease ms,
--       11 count, 12 session id, then per attempt: run, step, token.
local agent, lease = ARGV[3], tonumber(ARGV[10])
local n = math.min(math.floor(tonumber(ARGV[11]) or 0), math.floor((#ARGV - 12) / 3))
local queues = jdecode(ARGV[6]) or {}
local AK = P .. 'ag:' .. agent
put(AK, 'host', ARGV[4]); put(AK, 'fw', ARGV[5]); put(AK, 'q', ARGV[6]); put(AK, 'lbl', ARGV[7])
put(AK, 'slots', ARGV[8]); put(AK, 'hd', ARGV[9]); put(AK, 'st', 1); put(AK, 'ca', NOW); put(AK, 'hb', NOW)
put(AK, 'sid', ARGV[12])
if not get(AK, 'used') then put(AK, 'used', 0) end
redis.call('SADD', P .. 'agents', agent)
local revoked, zargs = {}, {}
for i = 0, n - 1 do
  local run, id, tok = ARGV[13 + i * 3], ARGV[14 + i * 3], ARGV[15 + i * 3]
  local k = RK(run)
  pre(k, { id .. ':st', id .. ':tk', id .. ':ag', id .. ':cx' })
  local st = num(get(k, id .. ':st'))
  if get(k, id .. ':tk') == tok and get(k, id .. ':ag') == agent and (st == ASSIGNED or st == RUNNING) and get(k, id .. ':cx') ~= '1' then
    zargs[#zargs + 1] = I(NOW + lease); zargs[#zargs + 1] = tok .. '|' .. run .. '|' .. id
  else
    revoked[#revoked + 1] = tok
  end
end
sliced('ZADD', P .. 'leases', 'XX', zargs)
for _, q in ipairs(queues) do ready_queues[q] = true end
flush()
return revoked
