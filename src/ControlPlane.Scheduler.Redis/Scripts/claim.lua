-- claim: caps, slots and budget must be checked and taken in the same atomic step, or two agents could both take the last slot.
-- ARGV: 3 agent id, 4 max steps, 5 lease ms, 6 claim id ('' none), 7 session id ('' none).
local agent, max, lease = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local claim_id, session = ARGV[6] or '', ARGV[7] or ''
-- One call hands out at most 1000 steps, keeping every variadic command within Lua's stack.
if max > 1000 then max = 1000 end
local AK = P .. 'ag:' .. agent
pre(AK, { 'st', 'slots', 'used', 'q', 'fw', 'hd', 'sid' })
if not get(AK, 'st') then return err('NotFound', REASON.AGENT_NOT_CONNECTED, "agent '" .. agent .. "' is not connected; send Hello (ConnectAgent) first") end
-- A claim for a stream the agent no longer reads (it reconnected since): whatever it took would wait out its lease.
if session ~= '' and get(AK, 'sid') ~= session then return {} end
local lease_until = I(NOW + lease)

-- An assignment row: the attempt with its spec, last checkpoint, inputs (the outputs of the needs that have one) and
-- the run's trace context (StoreFormat 4; absent on older runs).
local INPUT_FIELDS = { ':o', ':ou', ':os' }
local function assignment(run, id, m, at, tok)
  local k = RK(run)
  local inputs = {}
  local needs = m.n
  if #needs > 0 then
    local fields = {}
    for i = 1, #needs do step_fields(needs[i], INPUT_FIELDS, fields, (i - 1) * 3) end
    pre(k, fields)
    for i = 1, #needs do
      local b = (i - 1) * 3
      if get(k, fields[b + 3]) then
        inputs[#inputs + 1] = { needs[i], get(k, fields[b + 1]) or '', get(k, fields[b + 2]) or '', m.it[i] }
      end
    end
  end
  local ck = get(k, F(id, ':ck'))
  return { run, id, at, tok, get(k, F(id, ':p')), lease_until, ck or '', ck and 1 or 0, inputs, get(k, '_tp') or '', get(k, F(id, ':ra')) or '' }
end

-- A claim repeated under its id (its reply was lost): the attempts it took that are still current come back with
-- their leases renewed, and nothing new is taken. The record (cp:{ns}:cl:<claim id>) is "<deadline ms> <token>|<run>|<step> ...";
-- it expires on its own and its absence means "no record", so it needs no StoreFormat migration.
local CK = claim_id ~= '' and (P .. 'cl:' .. claim_id) or nil
if CK then
  local rec = redis.call('GET', CK)
  local deadline, members = nil, ''
  if rec then deadline, members = string.match(rec, '^(%d+)(.*)$') end
  if deadline and NOW < tonumber(deadline) then
    local out, renew = {}, {}
    local REPLAY_FIELDS = { ':tk', ':ag', ':st', ':cx', ':at', ':m', ':p', ':ck', ':ra' }
    for member in string.gmatch(members, '[^ ]+') do
      local tok, run, id = string.match(member, '^(%d+)|(.+)|([^|]+)$')
      if tok then
        local k = RK(run)
        local f = step_fields(id, REPLAY_FIELDS)
        pre(k, f)
        local st = num(get(k, f[3]))
        local m = meta(run, id)
        if m and get(k, f[1]) == tok and get(k, f[2]) == agent and (st == ASSIGNED or st == RUNNING) and get(k, f[4]) ~= '1' then
          out[#out + 1] = assignment(run, id, m, num(get(k, f[5])), tok)
          renew[#renew + 1] = lease_until; renew[#renew + 1] = member
        end
      end
    end
    redis.call('HSET', AK, 'hb', I(NOW))
    sliced('ZADD', P .. 'leases', 'XX', renew)
    return out
  end
end

if num(get(AK, 'st')) ~= 1 or max <= 0 then return {} end
-- Claims come only from a replica serving the agent's stream: they count as hearing from it (ListAgents shows it live).
redis.call('HSET', AK, 'hb', I(NOW))
local total = num(get(AK, 'slots'))
local free = total - num(get(AK, 'used'))
local queues = jdecode(get(AK, 'q')) or {}
local fws, hds, any_handler = {}, {}, true
for _, f in ipairs(jdecode(get(AK, 'fw')) or {}) do fws[f] = true end
for _, h in ipairs(jdecode(get(AK, 'hd')) or {}) do hds[h] = true; any_handler = false end
local out = {}
local leases, timeouts = {}, {}
local taken = 0

-- A fencing token is one more than the last one handed out, and never below Redis's clock in microseconds. The counter
-- alone starts again after Redis loses its data (FLUSHALL, a restart without persistence or without the last fsync, an
-- older AOF restored) and would hand out tokens that stale attempts still hold; by then the clock has passed every
-- token handed out before, unless tokens came faster than one per microsecond (the counter ran ahead of the clock) or
-- the server's clock was set back. The clock is Redis's own TIME, not the replica's: the server that lost the data is
-- the one whose clock moved on. Tokens stay exact in Lua's numbers (below 2^53) until the year 2255.
local CTR = P .. 'ctr'
local last_token = nil
local function next_token()
  if not last_token then
    local t = redis.call('TIME')
    last_token = math.max(num(get(CTR, 'tok')), tonumber(t[1]) * 1000000 + tonumber(t[2]) - 1)
  end
  last_token = last_token + 1
  put(CTR, 'tok', I(last_token))
  return last_token
end

local function sorted_keys(t)
  local keys = {}
  for key in pairs(t) do keys[#keys + 1] = key end
  table.sort(keys)
  return keys
end

-- What a dispatch reads, with each popped step; the run's own fields only with the first step of that
-- run in this call. A popped step is READY, so its state is not read. The fields that are deleted at
-- dispatch are read so that absent ones cost no HDEL.
local STEP_FIELDS = { ':m', ':at', ':p', ':ck', ':sa', ':cx', ':pg', ':pm', ':sn', ':ra' }
local RUN_FIELDS = { '_st', '_cap', '_used', '_rc', '_seq', '_tp' }
-- Read only when a step has estimates, or fails on its quota.
local BUDGET_FIELDS = { '_bud', '_res', '_usd' }
local FAIL_FIELDS = { '_cb', '_rr', '_nt', '_n', '_nf', '_nc' }
local run_read = {}

for _, q in ipairs(queues) do
  if taken >= max or free <= 0 then break end
  local fq, fr, fql = F('q:', q), F('r:', q), F('ql:', q)
  pre(SK, { fq, fr, fql, F('v:', q), 'rseq' })
  local qcap = num(get(SK, fql))
  local function queue_full()
    return qcap > 0 and num(get(SK, fq)) >= qcap
  end
  local ring = F(PQ, q)
  local deferred = {}
  while taken < max and free > 0 and not queue_full() do
    local popped = redis.call('ZPOPMIN', ring, math.min(max - taken, free))
    if #popped == 0 then break end
    for pi = 1, #popped, 2 do
      local run = popped[pi]
      if ringed[q] then ringed[q][run] = nil end
      local k = RK(run)
      if taken >= max or free <= 0 or queue_full() then
        deferred[#deferred + 1] = run
      else
        -- Pop first, then read the run and the step in one HMGET; a step that cannot go is put back.
        local rqk = RQK(run, q)
        local sp = redis.call('ZPOPMIN', rqk, 1)
        if #sp == 0 then
          -- Nothing ready here any more: off the ring until its next ready step puts it back.
          local rc = jget(k, '_rc')
          if (rc[q] or 0) ~= 0 then rc[q] = 0; jmark(k, '_rc') end
        else
          local member, score = sp[1], sp[2]
          local id = string.sub(member, string.find(member, '|', 1, true) + 1)
          local f = step_fields(id, STEP_FIELDS)
          if not run_read[k] then
            run_read[k] = true
            local nf = #f
            for i = 1, #RUN_FIELDS do f[nf + i] = RUN_FIELDS[i] end
          end
          pre(k, f)
          local rc = jget(k, '_rc')
          local cap = num(get(k, '_cap'))
          if not meta(run, id) then
            -- A ready entry whose run or step is gone (or unreadable): dropped, it can never be dispatched.
            redis.log(redis.LOG_WARNING, 'controlplane: ready entry ' .. run .. '/' .. id .. ' names no step; dropped')
            incr(SK, fr, -1)
          elseif not runnable(run) then
            -- Paused or ending: resume or retry puts it back on the ring.
            redis.call('ZADD', rqk, score, member)
          elseif cap > 0 and num(get(k, '_used')) >= cap then
            -- Off the ring until one of its attempts ends.
            redis.call('ZADD', rqk, score, member)
            put(k, '_cb', '1')
          else
            local m = meta(run, id)
            local serve = fws[m.fw] and (m.h == '' or any_handler or hds[m.h]) and m.sl <= total and m.sl <= free
            local keyfull = false
            if m.k ~= '' then
              local kl = num(get(SK, F('kl:', m.k)))
              keyfull = kl > 0 and num(get(SK, F('k:', m.k))) >= kl
            end
            local quota, wait = nil, false
            if serve and not keyfull and next(m.e) ~= nil then
              pre(k, BUDGET_FIELDS)
              local bud, res, usd = jget(k, '_bud'), jget(k, '_res'), jget(k, '_usd')
              for _, u in ipairs(sorted_keys(m.e)) do
                local est, limit = m.e[u], bud[u]
                if limit ~= nil then
                  local used, reserved = usd[u] or 0, res[u] or 0
                  if used + est > limit + 1e-9 then
                    quota = 'QUOTA_EXCEEDED: estimate ' .. est .. " '" .. u .. "' does not fit the run's budget (" .. used .. ' used of ' .. limit .. '); raise budget.' .. u .. ' or lower the estimate'
                    break
                  elseif used + reserved + est > limit + 1e-9 then
                    wait = true
                  end
                end
              end
            end
            if not serve or keyfull or (wait and not quota) then
              redis.call('ZADD', rqk, score, member)
              deferred[#deferred + 1] = run
            elseif quota then
              -- Refused before dispatch: it can never fit, so it fails for good.
              pre(k, FAIL_FIELDS)
              rc[q] = (rc[q] or 1) - 1; jmark(k, '_rc')
              incr(SK, fr, -1)
              put(k, F(id, ':er'), quota)
              if step_to(run, id, FAILED, quota, '', READY) then on_bad(run, id, m, FAILED) end
              maybe_finish(run)
              if runnable(run) and (rc[q] or 0) > 0 then ring_add(q, run) end
            else
              rc[q] = (rc[q] or 1) - 1; jmark(k, '_rc')
              incr(SK, fr, -1)
              local tok = I(next_token())
              local f_at, f_cx, f_pg, f_pm = f[2], f[6], f[7], f[8]
              local at = num(get(k, f_at)) + 1
              local member_l = tok .. '|' .. run .. '|' .. id
              put(k, F(id, ':tk'), tok)
              put(k, f_at, at)
              put(k, F(id, ':ag'), agent)
              -- The claiming session holds the attempt: only its stream may report on it (until a reconnect of the
              -- agent re-announces it). None named: any session of the agent.
              put(k, F(id, ':sn'), session ~= '' and session or false)
              put(k, f_pg, false)
              put(k, f_pm, false)
              put(k, f_cx, false)
              if num(get(k, '_st')) == R_PENDING then run_to(run, R_RUNNING, "step '" .. id .. "' dispatched") end
              step_to(run, id, ASSIGNED, 'claimed by agent ' .. agent, agent, READY, at)
              incr(AK, 'used', m.sl)
              free = free - m.sl
              incr(k, '_used', 1)
              incr(SK, fq, 1)
              if m.k ~= '' then incr(SK, F('k:', m.k), 1) end
              if next(m.e) ~= nil then
                local bud, res = jget(k, '_bud'), jget(k, '_res')
                local rs = {}
                for u, est in pairs(m.e) do
                  if bud[u] ~= nil then
                    rs[u] = est
                    res[u] = fin((res[u] or 0) + est)
                    put(SK, F('b:', u), fin(num(get(SK, F('b:', u))) + est))
                  end
                end
                if next(rs) ~= nil then
                  put(k, F(id, ':rs'), cjson.encode(rs)); jmark(k, '_res')
                end
              end
              leases[#leases + 1] = lease_until; leases[#leases + 1] = member_l
              if m.to > 0 then timeouts[#timeouts + 1] = I(NOW + m.to); timeouts[#timeouts + 1] = member_l end
              out[#out + 1] = assignment(run, id, m, at, tok)
              taken = taken + 1
              if (rc[q] or 0) > 0 then ring_add(q, run) end
            end
          end
        end
      end
    end
  end
  -- Re-added without a wake-up: nothing changed for them, and a wake-up would make agents spin.
  for _, run in ipairs(deferred) do ring_add(q, run, true) end
end
sliced('ZADD', P .. 'leases', nil, leases)
sliced('ZADD', P .. 'timeouts', nil, timeouts)
-- Kept for twice the lease: by then every attempt it names has lost its lease unless its agent renewed it.
if CK and taken > 0 then
  local rec = { I(NOW + 2 * lease) }
  for i = 2, #leases, 2 do rec[#rec + 1] = leases[i] end
  redis.call('SET', CK, table.concat(rec, ' '), 'PX', I(2 * lease))
end
flush()
return out
