-- maintenance: failing or requeueing an attempt frees its slots and settles its step in the same step, so nothing leaks or runs twice;
-- a finished run past its retention goes with every index entry naming it, so no index points at a deleted run.
-- ARGV: 3 max per kind, 4 lease-expiry attempts (RunStoreOptions.LeaseExpiryAttempts), 5 agent retention in ms.
-- Due members are removed at flush with the work they caused; a member that names nothing (malformed, or its
-- run or step gone) is removed without work, so it can not block the items after it.
local max = tonumber(ARGV[3])
EXPIRY_ATTEMPTS = tonumber(ARGV[4])
local touched = {}
local function parse(member)
  local a = string.find(member, '|', 1, true)
  if not a then return nil end
  local b = string.find(member, '|', a + 1, true)
  if not b then return nil end
  return string.sub(member, 1, a - 1), string.sub(member, a + 1, b - 1), string.sub(member, b + 1)
end
local CURRENT_FIELDS = { ':st', ':tk', ':m', ':ag', ':at', ':ab', ':cx', ':rs' }
-- The attempt's step meta when tok is still the step's current attempt, else nil.
local function current(run, id, tok)
  if not tok then return nil end
  local k = RK(run)
  pre(k, step_fields(id, CURRENT_FIELDS))
  local st = num(get(k, id .. ':st'))
  if get(k, id .. ':tk') == tok and (st == ASSIGNED or st == RUNNING) then return meta(run, id) end
  return nil
end
local function due(key, removed)
  local members = redis.call('ZRANGEBYSCORE', key, '-inf', I(NOW), 'LIMIT', 0, max)
  for i = 1, #members do removed[#removed + 1] = members[i] end
  return members
end

local timed = 0
for _, member in ipairs(due(P .. 'timeouts', timeout_rem)) do
  local tok, run, id = parse(member)
  local m = current(run, id, tok)
  if m then
    local k = RK(run)
    local agent = get(k, id .. ':ag') or ''
    local why = 'timed out after ' .. span(m.to)
    cancel_signal(agent, tok, why)
    finish_attempt(run, id, m, nil)
    fail_attempt(run, id, m, why, false, false, agent)
    timed = timed + 1
    touched[run] = true
  end
end

local expired = 0
for _, member in ipairs(due(P .. 'leases', lease_rem)) do
  local tok, run, id = parse(member)
  local m = current(run, id, tok)
  if m then
    local k = RK(run)
    local agent = get(k, id .. ':ag') or ''
    cancel_signal(agent, tok, 'lease expired')
    finish_attempt(run, id, m, nil)
    fail_attempt(run, id, m, 'lease expired on agent ' .. agent, false, true, agent)
    expired = expired + 1
    touched[run] = true
  end
end

local released = 0
for _, member in ipairs(due(P .. 'retry', retry_rem)) do
  local a = string.find(member, '|', 1, true)
  local run, id = a and string.sub(member, 1, a - 1), a and string.sub(member, a + 1)
  local k = a and RK(run)
  local m = a and num(get(k, id .. ':st')) == RETRY_WAIT and meta(run, id)
  if m then
    make_ready(run, id, m.q, m.pr, 'retry backoff elapsed; attempt ' .. (num(get(k, id .. ':at')) + 1) .. ' queued', RETRY_WAIT)
    released = released + 1
  end
end
for run in pairs(touched) do maybe_finish(run) end
flush()

-- Retention: finished runs whose deadline (cp:{ns}:expire, written when the run finished) has passed, oldest first.
-- Read directly, not through the write cache: the work above may not touch a finished run, and this part writes
-- nothing the cache holds.
local deleted = 0
local gone = {}
local feed_deleted = {}
for _, run in ipairs(due(P .. 'expire', gone)) do
  local k = PR .. run
  local f = redis.call('HMGET', k, '_st', '_lbl', '_idem', '_rc')
  if RUN_TERMINAL[num(f[1])] then
    for q in pairs(jdecode(f[4]) or {}) do
      redis.call('ZREM', PQ .. q, run)
      redis.call('DEL', PRQ .. run .. ':' .. q)
    end
    for lk, lv in pairs(jdecode(f[2]) or {}) do redis.call('ZREM', LBL(lk, lv), run) end
    if f[3] and f[3] ~= '' and redis.call('HGET', P .. 'idem', f[3]) == run then redis.call('HDEL', P .. 'idem', f[3]) end
    redis.call('ZREM', P .. 'runs', run)
    redis.call('SREM', P .. 'live', run)
    redis.call('DEL', k, P .. 'e:' .. run, P .. 'h:' .. run)
    deleted = deleted + 1
    feed_deleted[deleted] = { run, num(f[1]), true }
  end
end
sliced('ZREM', P .. 'expire', nil, gone)
feed_append(feed_deleted)

-- Agents disconnected longer than the agent retention, holding no slot (a lease still running would write their
-- hash again), longest silent first, ties by id: removed from the set every claim and ListAgents reads.
local agent_ret = tonumber(ARGV[5]) or 0
local stale = {}
if agent_ret > 0 then
  for _, agent in ipairs(redis.call('SMEMBERS', P .. 'agents')) do
    local a = redis.call('HMGET', PAG .. agent, 'st', 'hb', 'used')
    local hb = num(a[2])
    if num(a[1]) == 3 and num(a[3]) <= 0 and hb + agent_ret <= NOW then stale[#stale + 1] = { hb, agent } end
  end
  table.sort(stale, function(x, y) if x[1] ~= y[1] then return x[1] < y[1] end return x[2] < y[2] end)
end
local pruned = math.min(#stale, max)
for i = 1, pruned do
  redis.call('SREM', P .. 'agents', stale[i][2])
  redis.call('DEL', PAG .. stale[i][2])
end
return { expired, released, timed, deleted, pruned }
