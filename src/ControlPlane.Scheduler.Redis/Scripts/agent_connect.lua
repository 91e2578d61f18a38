-- agent_connect: registration and the keep-or-revoke decision on re-announced attempts must see one consistent state.
-- ARGV: 3 agent id, 4 host, 5 frameworks json, 6 queues json, 7 labels json, 8 slots, 9 handlers json, 10 lease ms,
--       11 count, 12 session id, 13 '1' when the session is new, 14 the reason given to undelivered assignments,
--       then per attempt: run, step, token.
local agent, lease = ARGV[3], tonumber(ARGV[10])
local fresh, undelivered_reason = ARGV[13] == '1', ARGV[14]
local n = math.min(math.floor(tonumber(ARGV[11]) or 0), math.floor((#ARGV - 14) / 3))
local queues = jdecode(ARGV[6]) or {}
local AK = P .. 'ag:' .. agent
-- A re-registration names its session: once the agent opened a newer one (it reconnected, maybe to another replica),
-- the old stream is superseded and must not take the agent's state back.
if not fresh then
  local current = redis.call('HGET', AK, 'sid')
  if current and current ~= ARGV[12] then
    return err('FailedPrecondition', REASON.AGENT_NOT_CONNECTED, "agent '" .. agent .. "' opened a newer session since; session " ..
      ARGV[12] .. ' is superseded: reconnect')
  end
end
put(AK, 'host', ARGV[4]); put(AK, 'fw', ARGV[5]); put(AK, 'q', ARGV[6]); put(AK, 'lbl', ARGV[7])
put(AK, 'slots', ARGV[8]); put(AK, 'hd', ARGV[9]); put(AK, 'st', 1); put(AK, 'ca', NOW); put(AK, 'hb', NOW)
put(AK, 'sid', ARGV[12])
if not get(AK, 'used') then put(AK, 'used', 0) end
redis.call('SADD', P .. 'agents', agent)
local revoked, zargs, announced, kept_slots = {}, {}, {}, 0
for i = 0, n - 1 do
  local run, id, tok = ARGV[15 + i * 3], ARGV[16 + i * 3], ARGV[17 + i * 3]
  announced[tok] = true
  local k = RK(run)
  pre(k, { id .. ':st', id .. ':tk', id .. ':ag', id .. ':cx', id .. ':sn' })
  local st = num(get(k, id .. ':st'))
  if get(k, id .. ':tk') == tok and get(k, id .. ':ag') == agent and (st == ASSIGNED or st == RUNNING) and get(k, id .. ':cx') ~= '1' then
    zargs[#zargs + 1] = I(NOW + lease); zargs[#zargs + 1] = tok .. '|' .. run .. '|' .. id
    -- Re-announced by the agent that holds it: this session takes it over, and an older stream of the agent that is
    -- still open (on another replica) may no longer report on it.
    put(k, F(id, ':sn'), ARGV[12])
    local km = meta(run, id)
    if km then kept_slots = kept_slots + km.sl end
  else
    revoked[#revoked + 1] = tok
  end
end
sliced('ZADD', P .. 'leases', 'XX', zargs)

-- A new session re-announces every attempt the agent holds. Its attempts still ASSIGNED that it does not name never
-- reached it (sent on a stream that was already dead) and run nowhere: declined on its behalf, in token order, so
-- their steps are READY again without using an attempt instead of waiting out their leases.
-- Only when the agent holds more slots than the attempts it kept: otherwise every attempt of its is re-announced,
-- and the scan of every lease is skipped.
if fresh and num(get(AK, 'used')) > kept_slots then
  local mine = {}
  for _, member in ipairs(redis.call('ZRANGE', P .. 'leases', 0, -1)) do
    local a = string.find(member, '|', 1, true)
    local b = a and string.find(member, '|', a + 1, true)
    if b then
      local tok, run, id = string.sub(member, 1, a - 1), string.sub(member, a + 1, b - 1), string.sub(member, b + 1)
      if not announced[tok] then
        local k = RK(run)
        if get(k, F(id, ':ag')) == agent and get(k, F(id, ':tk')) == tok and num(get(k, F(id, ':st'))) == ASSIGNED then
          mine[#mine + 1] = { tonumber(tok), tok, run, id }
        end
      end
    end
  end
  table.sort(mine, function(x, y) return x[1] < y[1] end)
  local touched = {}
  for _, e in ipairs(mine) do
    local tok, run, id = e[2], e[3], e[4]
    local k = RK(run)
    local m = meta(run, id)
    if m then
      local at = num(get(k, F(id, ':at')))
      local zero = {}
      for u in pairs(jdecode(get(k, F(id, ':rs'))) or {}) do zero[u] = 0 end
      finish_attempt(run, id, m, zero)
      if get(k, F(id, ':cx')) == '1' then
        fail_attempt(run, id, m, 'cancelled', true, false, agent)
      else
        make_ready(run, id, m.q, m.pr, 'declined by agent ' .. agent .. ': ' .. undelivered_reason, ASSIGNED, at, agent)
        put(k, F(id, ':at'), at - 1)
      end
      touched[run] = true
    end
  end
  for run in pairs(touched) do maybe_finish(run) end
end

for _, q in ipairs(queues) do ready_queues[q] = true end
flush()
return revoked
