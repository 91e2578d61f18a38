-- Shared by every state-changing script (prepended at load time, after the transition tables ST/RT).
-- Reads go through a per-call hash cache and writes are buffered and flushed as one HSET per key,
-- so a batch of reports or claims touching one run costs one read and one write of its hash.
-- ARGV[1] is the key prefix "cp:{ns}:" (every key shares its hash tag, so one slot), ARGV[2] is now in ms.
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local SK = P .. 'slots'

-- Proto enum numbers (StepState, RunState).
local BLOCKED, READY, ASSIGNED, RUNNING, SUCCEEDED, FAILED, RETRY_WAIT, CANCELLED, SKIPPED, WAITING = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
local R_PENDING, R_RUNNING, R_PAUSED, R_SUCCEEDED, R_FAILED, R_CANCELLING, R_CANCELLED = 1, 2, 3, 4, 5, 6, 7
local STEP_TERMINAL = { [SUCCEEDED] = true, [FAILED] = true, [CANCELLED] = true, [SKIPPED] = true }
local RUN_TERMINAL = { [R_SUCCEEDED] = true, [R_FAILED] = true, [R_CANCELLED] = true }

-- Lease expiries a step may suffer at least; maintenance sets it from RunStoreOptions.
local EXPIRY_ATTEMPTS = 1

local function num(v) return tonumber(v) or 0 end
local function I(n) return string.format('%d', n) end
local function RK(run) return P .. 'r:' .. run end

-- ---- hash cache --------------------------------------------------------------------------------
local cache = {}
local jcache = {}
local function hc(key)
  local c = cache[key]
  if not c then c = { v = {}, d = {} }; cache[key] = c end
  return c
end

local function pre(key, fields)
  local c = hc(key)
  local miss = {}
  for _, f in ipairs(fields) do
    if c.v[f] == nil then miss[#miss + 1] = f end
  end
  local i = 1
  while i <= #miss do
    local chunk = {}
    for j = i, math.min(i + 4999, #miss) do chunk[#chunk + 1] = miss[j] end
    local r = redis.call('HMGET', key, unpack(chunk))
    for j, f in ipairs(chunk) do c.v[f] = r[j] end
    i = i + 5000
  end
end

local function get(key, f)
  local c = hc(key)
  local v = c.v[f]
  if v == nil then
    v = redis.call('HGET', key, f)
    c.v[f] = v
  end
  return v
end

-- false deletes the field at flush.
local function put(key, f, v)
  local c = hc(key)
  -- Deleting a field already known to be absent costs a command for nothing.
  if v == false and c.v[f] == false and not c.d[f] then return end
  c.v[f] = v
  c.d[f] = true
end

local function incr(key, f, d)
  local v = num(get(key, f)) + d
  put(key, f, v)
  return v
end

-- Decoded JSON fields, encoded back at flush.
local function jget(key, f)
  local id = key .. '\0' .. f
  local t = jcache[id]
  if t == nil then
    local raw = get(key, f)
    if raw and raw ~= '' then t = cjson.decode(raw) else t = {} end
    jcache[id] = t
  end
  return t
end

local jdirty = {}
local function jmark(key, f)
  jdirty[key .. '\0' .. f] = { key, f }
end

-- ---- buffered side effects ---------------------------------------------------------------------
local signal = { e = {}, r = {}, c = {}, d = {} }
local ready_queues = {}
local lease_rem = {}
local timeout_rem = {}
local live_add, live_rem = {}, {}

local function flush()
  for id, kf in pairs(jdirty) do
    local t = jcache[id]
    if next(t) == nil then put(kf[1], kf[2], false) else put(kf[1], kf[2], cjson.encode(t)) end
  end
  for key, c in pairs(cache) do
    local sets, dels = {}, {}
    for f in pairs(c.d) do
      local v = c.v[f]
      if v == false then dels[#dels + 1] = f else sets[#sets + 1] = f; sets[#sets + 1] = v end
    end
    local i = 1
    while i <= #sets do
      local chunk = {}
      for j = i, math.min(i + 3999, #sets) do chunk[#chunk + 1] = sets[j] end
      redis.call('HSET', key, unpack(chunk))
      i = i + 4000
    end
    i = 1
    while i <= #dels do
      local chunk = {}
      for j = i, math.min(i + 3999, #dels) do chunk[#chunk + 1] = dels[j] end
      redis.call('HDEL', key, unpack(chunk))
      i = i + 4000
    end
    c.d = {}
  end
  jdirty = {}
  if #lease_rem > 0 then redis.call('ZREM', P .. 'leases', unpack(lease_rem)); lease_rem = {} end
  if #timeout_rem > 0 then redis.call('ZREM', P .. 'timeouts', unpack(timeout_rem)); timeout_rem = {} end
  local adds = {}
  for run in pairs(live_add) do adds[#adds + 1] = run end
  if #adds > 0 then redis.call('SADD', P .. 'live', unpack(adds)) end
  local rems = {}
  for run in pairs(live_rem) do rems[#rems + 1] = run end
  if #rems > 0 then redis.call('SREM', P .. 'live', unpack(rems)) end
  live_add, live_rem = {}, {}
  -- One PUBLISH per call carries every wake-up of the call; only queues that hold READY steps wake agents.
  for q in pairs(ready_queues) do
    if num(get(SK, 'r:' .. q)) > 0 then signal.r[#signal.r + 1] = q end
  end
  local e = {}
  for run, seq in pairs(signal.e) do e[#e + 1] = run; e[#e + 1] = seq end
  if #e > 0 or #signal.r > 0 or #signal.c > 0 or #signal.d > 0 then
    local msg = { e = e, r = signal.r, c = signal.c, d = signal.d }
    redis.call('PUBLISH', P .. 'sig', cjson.encode(msg))
  end
end

-- ---- events (seq 1..n per run, stream id "<seq>-1") --------------------------------------------
local function ev(run, e)
  local k = RK(run)
  local seq = num(get(k, '_seq')) + 1
  put(k, '_seq', seq)
  redis.call('XADD', P .. 'e:' .. run, I(seq) .. '-1', 'v', cjson.encode(e))
  signal.e[run] = seq
end

-- ---- per-step data ------------------------------------------------------------------------------
local metas = {}
local function meta(run, id)
  local mk = run .. '\0' .. id
  local m = metas[mk]
  if m == nil then
    local raw = get(RK(run), id .. ':m')
    if not raw then return nil end
    m = cjson.decode(raw)
    metas[mk] = m
  end
  return m
end

local function step_fields(id, names)
  local out = {}
  for i, n in ipairs(names) do out[i] = id .. ':' .. n end
  return out
end

-- ---- transitions (checked against the shared tables) -------------------------------------------
local function step_to(run, id, to, reason, agent, from, attempt)
  local k = RK(run)
  from = from or num(get(k, id .. ':st'))
  if not (ST[from] and ST[from][to]) then
    -- Refused and logged (Redis server log): the transition tables have no such edge.
    redis.log(redis.LOG_WARNING, 'controlplane: refused step transition ' .. run .. '/' .. id .. ' ' .. (STEP_NAMES[from] or from) .. ' -> ' .. (STEP_NAMES[to] or to))
    return false
  end
  put(k, id .. ':st', to)
  if attempt == nil then attempt = num(get(k, id .. ':at')) end
  ev(run, { 'S', NOW, id, from, to, attempt, reason or '', agent or '' })
  if STEP_TERMINAL[to] and not STEP_TERMINAL[from] then incr(k, '_nt', 1) end
  if STEP_TERMINAL[from] and not STEP_TERMINAL[to] then incr(k, '_nt', -1) end
  if to == FAILED then incr(k, '_nf', 1) end
  if from == FAILED then incr(k, '_nf', -1) end
  if to == CANCELLED then incr(k, '_nc', 1) end
  if from == CANCELLED then incr(k, '_nc', -1) end
  if (to == ASSIGNED or to == WAITING) and not get(k, id .. ':sa') then put(k, id .. ':sa', NOW) end
  if STEP_TERMINAL[to] and not STEP_TERMINAL[from] then put(k, id .. ':fa', NOW) end
  return true
end

local function run_to(run, to, reason)
  local k = RK(run)
  local from = num(get(k, '_st'))
  if not (RT[from] and RT[from][to]) then
    redis.log(redis.LOG_WARNING, 'controlplane: refused run transition ' .. run .. ' ' .. (RUN_NAMES[from] or from) .. ' -> ' .. (RUN_NAMES[to] or to))
    return false
  end
  put(k, '_st', to)
  ev(run, { 'R', NOW, from, to, reason or '' })
  if RUN_TERMINAL[to] then
    put(k, '_fin', NOW)
    live_rem[run] = true; live_add[run] = nil
  elseif RUN_TERMINAL[from] then
    put(k, '_fin', false)
    live_add[run] = true; live_rem[run] = nil
  end
  if to == R_RUNNING and not get(k, '_sta') then put(k, '_sta', NOW) end
  return true
end

local function runnable(run)
  local st = num(get(RK(run), '_st'))
  return st == R_PENDING or st == R_RUNNING
end

-- ---- queues: a ring of runs per queue (round-robin), a ready set per run and queue ---------------
-- Ready set: score -priority, member "<ready seq>|<step id>", so equal priorities pop in ready order.
local function ring_add(q, run, quiet)
  local vt = incr(SK, 'v:' .. q, 1)
  redis.call('ZADD', P .. 'q:' .. q, 'NX', I(vt), run)
  if not quiet then ready_queues[q] = true end
end

-- Puts the run back on the rings of every queue where it has READY steps.
local function requeue_run(run)
  local k = RK(run)
  if not runnable(run) then return end
  local rc = jget(k, '_rc')
  for q, n in pairs(rc) do
    if n > 0 then ring_add(q, run) end
  end
end

local function make_ready(run, id, q, pr, reason, from, attempt, agent)
  if not step_to(run, id, READY, reason, agent or '', from, attempt) then return end
  local k = RK(run)
  local seq = incr(SK, 'rseq', 1)
  redis.call('ZADD', P .. 'rq:' .. run .. ':' .. q, I(-pr), string.format('%012d', seq) .. '|' .. id)
  local rc = jget(k, '_rc')
  rc[q] = (rc[q] or 0) + 1
  jmark(k, '_rc')
  incr(SK, 'r:' .. q, 1)
  if runnable(run) and get(k, '_cb') ~= '1' then ring_add(q, run) end
end

-- ---- attempts ---------------------------------------------------------------------------------
local function add_units(into, from, sign)
  for u, v in pairs(from) do
    local nv = (into[u] or 0) + sign * v
    if math.abs(nv) < 1e-9 then nv = nil end
    into[u] = nv
  end
end

-- The attempt ended (any way): its slots, lease and budget reservation are released. Units the agent
-- did not report count at their estimate, so an unreported cost never frees budget.
local function finish_attempt(run, id, m, usage)
  local k = RK(run)
  local tok = get(k, id .. ':tk')
  local agent = get(k, id .. ':ag')
  if agent and agent ~= '' then
    local AK = P .. 'ag:' .. agent
    incr(AK, 'used', -m.sl)
    local aq = get(AK, 'q')
    if aq then for _, q in ipairs(cjson.decode(aq)) do ready_queues[q] = true end end
  end
  ready_queues[m.q] = true
  incr(k, '_used', -1)
  incr(SK, 'q:' .. m.q, -1)
  if m.k ~= '' then incr(SK, 'k:' .. m.k, -1) end
  lease_rem[#lease_rem + 1] = tok .. '|' .. run .. '|' .. id
  if m.to > 0 then timeout_rem[#timeout_rem + 1] = tok .. '|' .. run .. '|' .. id end
  local actual = {}
  local rsraw = get(k, id .. ':rs')
  if rsraw and rsraw ~= '' then
    local rs = cjson.decode(rsraw)
    add_units(jget(k, '_res'), rs, -1); jmark(k, '_res')
    for u, v in pairs(rs) do
      actual[u] = v
      local nv = num(get(SK, 'b:' .. u)) - v
      if math.abs(nv) < 1e-9 then nv = 0 end
      put(SK, 'b:' .. u, nv)
    end
    put(k, id .. ':rs', false)
  end
  if usage then for u, v in pairs(usage) do actual[u] = v end end
  if next(actual) ~= nil then
    add_units(jget(k, '_usd'), actual, 1); jmark(k, '_usd')
    add_units(jget(k, id .. ':us'), actual, 1); jmark(k, id .. ':us')
  end
  if get(k, '_cb') == '1' then
    put(k, '_cb', false)
    requeue_run(run)
  end
end

-- ---- DAG propagation ------------------------------------------------------------------------
local resolve

local function children_of(run, id, m, ok, state)
  if num(get(RK(run), '_st')) == R_CANCELLING then return end
  for _, c in ipairs(m.c) do resolve(run, c, ok, id, state) end
end

local function on_bad(run, id, m, state)
  children_of(run, id, m, false, state)
end

local function on_good(run, id, m)
  local k = RK(run)
  -- Drop upstream outputs once every consumer has succeeded (unless keep_output).
  -- pk is 1 for keep_output and for gates (no output); an on_success step's needs all succeeded, so
  -- their outputs exist and are overwritten with '' inside the one HSET rather than deleted.
  for i, p in ipairs(m.n) do
    if m.pk[i] == 0 then
      local done
      if m.pc[i] <= 1 then done = true else done = incr(k, p .. ':cs', 1) >= m.pc[i] end
      if done and (m.ri == 1 or get(k, p .. ':os')) then
        put(k, p .. ':o', ''); put(k, p .. ':ou', ''); put(k, p .. ':od', '1')
      end
    end
  end
  children_of(run, id, m, true, SUCCEEDED)
end

local function first_attempt(run)
  -- Until RetryRun, a BLOCKED step has never run: its attempt is 0 (saves a read per child).
  if get(RK(run), '_rr') then return nil end
  return 0
end

local function skip(run, cid, why, at)
  local k = RK(run)
  put(k, cid .. ':er', why)
  if step_to(run, cid, SKIPPED, why, '', BLOCKED, at) then
    on_bad(run, cid, meta(run, cid), SKIPPED)
  end
end

-- Opens a step whose needs are settled: a gate waits, a task is queued.
local function open(run, cid, gate, q, pr, reason, at)
  local k = RK(run)
  if gate == 1 then
    step_to(run, cid, WAITING, 'needs satisfied; waiting for approval', '', BLOCKED, at)
    if num(get(k, '_st')) == R_PENDING then run_to(run, R_RUNNING, "gate '" .. cid .. "' is waiting for approval") end
  else
    make_ready(run, cid, q, pr, reason, BLOCKED, at)
  end
end

-- c = { id, nneeds, run_if (1 success, 2 always, 3 failure), gate (0/1), queue, priority, index }.
-- An on_success step is skipped as soon as one need does not succeed; the others wait for every need.
resolve = function(run, c, ok, parent, pstate)
  local k = RK(run)
  local cid = c[1]
  local at = first_attempt(run)
  if c[3] == 1 and not ok then
    if num(get(k, cid .. ':st')) ~= BLOCKED then return end
    skip(run, cid, "needed step '" .. parent .. "' is " .. STEP_NAMES[pstate], at)
    return
  end
  local anybad
  if c[2] <= 1 then
    anybad = not ok
  else
    if incr(k, cid .. ':pd', -1) > 0 then return end
    if num(get(k, cid .. ':st')) ~= BLOCKED then return end
    local cm = meta(run, cid)
    local fields = {}
    for i, p in ipairs(cm.n) do fields[i] = p .. ':st' end
    pre(k, fields)
    anybad = false
    for _, p in ipairs(cm.n) do
      if num(get(k, p .. ':st')) ~= SUCCEEDED then anybad = true end
    end
  end
  if c[3] == 3 and not anybad then
    skip(run, cid, 'every needed step succeeded (run_if: on_failure)', at)
  else
    open(run, cid, c[4], c[5], c[6], 'needs satisfied', at)
  end
end

-- Ends the run once every step is terminal.
local function maybe_finish(run)
  local k = RK(run)
  local st = num(get(k, '_st'))
  if RUN_TERMINAL[st] then return end
  if num(get(k, '_nt')) < num(get(k, '_n')) then return end
  if st == R_CANCELLING or num(get(k, '_nc')) > 0 then
    local e = get(k, '_err')
    run_to(run, R_CANCELLED, (e and e ~= '') and e or 'cancelled')
    return
  end
  if num(get(k, '_nf')) > 0 then
    local ids = cjson.decode(get(k, '_ids'))
    local fields = {}
    for _, id in ipairs(ids) do fields[#fields + 1] = id .. ':st' end
    pre(k, fields)
    local e = 'a step failed'
    for _, id in ipairs(ids) do
      if num(get(k, id .. ':st')) == FAILED then
        e = "step '" .. id .. "' failed: " .. (get(k, id .. ':er') or '')
        break
      end
    end
    put(k, '_err', e)
    run_to(run, R_FAILED, e)
  else
    run_to(run, R_SUCCEEDED, 'every step finished')
  end
end

-- TimeSpan's "c" format, so reasons read alike in both stores.
local function span(ms)
  local total = math.floor(ms)
  local days = math.floor(total / 86400000)
  local rest = total - days * 86400000
  local h = math.floor(rest / 3600000); rest = rest - h * 3600000
  local mi = math.floor(rest / 60000); rest = rest - mi * 60000
  local sec = math.floor(rest / 1000); local frac = rest - sec * 1000
  local out = string.format('%02d:%02d:%02d', h, mi, sec)
  if days > 0 then out = days .. '.' .. out end
  if frac > 0 then out = out .. string.format('.%07d', frac * 10000) end
  return out
end

local function backoff_ms(m, failed_attempt)
  if m.bo <= 0 then return 0 end
  local d = m.bo * math.pow(m.bm, math.max(0, failed_attempt - 1))
  if d > m.bx then d = m.bx end
  return math.floor(d)
end

local function cancelled_error(run)
  local e = get(RK(run), '_err')
  if e and e ~= '' then return e end
  return 'cancelled'
end

-- The current attempt ended without success (its slots already released): cancelled when its run is
-- being cancelled, else retried per the policy (or requeued at once for a lost lease), else failed.
local function fail_attempt(run, id, m, err, permanent, lease_lost, agent)
  local k = RK(run)
  local st = num(get(k, id .. ':st'))
  if get(k, id .. ':cx') == '1' then
    put(k, id .. ':cx', false)
    local e = cancelled_error(run)
    put(k, id .. ':er', e)
    step_to(run, id, CANCELLED, e, agent, st)
    return
  end
  local used = num(get(k, id .. ':at')) - num(get(k, id .. ':ab'))
  local allowed = m.ma
  if lease_lost and EXPIRY_ATTEMPTS > allowed then allowed = EXPIRY_ATTEMPTS end
  put(k, id .. ':er', err)
  if not permanent and used < allowed then
    if lease_lost then
      make_ready(run, id, m.q, m.pr, err .. '; requeued', st, nil, agent)
    else
      local wait = backoff_ms(m, used)
      if step_to(run, id, RETRY_WAIT, err .. '; retry ' .. (used + 1) .. ' of ' .. allowed .. ' in ' .. span(wait), agent, st) then
        redis.call('ZADD', P .. 'retry', I(NOW + wait), run .. '|' .. id)
      end
    end
    return
  end
  local final = err
  if not permanent then final = err .. ' (attempt ' .. used .. ' of ' .. allowed .. '; no attempts left)' end
  put(k, id .. ':er', final)
  if step_to(run, id, FAILED, final, agent, st) then on_bad(run, id, m, FAILED) end
end

local function cancel_signal(agent, tok, reason)
  signal.c[#signal.c + 1] = { agent, tok, reason }
end

-- A refusal the caller can fix: the client sees "CP:<RunStoreError>:<message>".
local function err(code, msg)
  return redis.error_reply('CP:' .. code .. ':' .. msg)
end
