-- maintenance: failing or requeueing an attempt frees its slots and settles its step in the same step, so nothing leaks or runs twice.
-- ARGV: 3 max per kind, 4 lease-expiry attempts (RunStoreOptions.LeaseExpiryAttempts).
local max = tonumber(ARGV[3])
EXPIRY_ATTEMPTS = tonumber(ARGV[4])
local touched = {}
local function parse(member)
  local a = string.find(member, '|', 1, true)
  local b = string.find(member, '|', a + 1, true)
  return string.sub(member, 1, a - 1), string.sub(member, a + 1, b - 1), string.sub(member, b + 1)
end
local CURRENT_FIELDS = { ':st', ':tk', ':m', ':ag', ':at', ':ab', ':cx', ':rs' }
local function current(run, id, tok)
  local k = RK(run)
  pre(k, step_fields(id, CURRENT_FIELDS))
  local st = num(get(k, id .. ':st'))
  return get(k, id .. ':tk') == tok and (st == ASSIGNED or st == RUNNING)
end
local function due(key)
  local members = redis.call('ZRANGEBYSCORE', key, '-inf', I(NOW), 'LIMIT', 0, max)
  if #members > 0 then redis.call('ZREM', key, unpack(members)) end
  return members
end

local timed = 0
for _, member in ipairs(due(P .. 'timeouts')) do
  local tok, run, id = parse(member)
  if current(run, id, tok) then
    local k = RK(run)
    local m = meta(run, id)
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
for _, member in ipairs(due(P .. 'leases')) do
  local tok, run, id = parse(member)
  if current(run, id, tok) then
    local k = RK(run)
    local m = meta(run, id)
    local agent = get(k, id .. ':ag') or ''
    cancel_signal(agent, tok, 'lease expired')
    finish_attempt(run, id, m, nil)
    fail_attempt(run, id, m, 'lease expired on agent ' .. agent, false, true, agent)
    expired = expired + 1
    touched[run] = true
  end
end

local released = 0
for _, member in ipairs(due(P .. 'retry')) do
  local a = string.find(member, '|', 1, true)
  local run, id = string.sub(member, 1, a - 1), string.sub(member, a + 1)
  local k = RK(run)
  if num(get(k, id .. ':st')) == RETRY_WAIT then
    local m = meta(run, id)
    make_ready(run, id, m.q, m.pr, 'retry backoff elapsed; attempt ' .. (num(get(k, id .. ':at')) + 1) .. ' queued', RETRY_WAIT)
    released = released + 1
  end
end
for run in pairs(touched) do maybe_finish(run) end
flush()
return { expired, released, timed }
