-- Shared by every state-changing script (prepended at load time, after the transition tables ST/RT).
-- Reads go through a per-call hash cache and writes are buffered and flushed as one HSET per key,
-- so a batch of reports or claims touching one run costs one read and one write of its hash.
-- ARGV[1] is the key prefix "cp:{ns}:" (every key shares its hash tag, so one slot), ARGV[2] is now in ms.
-- Redis keeps the writes a script made before an error, so a script that fails half-way corrupts state: every
-- script reads, checks and computes before it writes, events and hash fields are written together at flush,
-- stored JSON that does not decode reads as empty, and amounts are kept finite so encoding them cannot fail.
local P = ARGV[1]
local NOW = tonumber(ARGV[2])
local SK = P .. 'slots'

-- The stored data's format (StoreFormat.cs), checked before anything is written: a replica left running on an
-- older version after another one migrated the data refuses every change instead of mixing two formats.
do
  local stored_format = redis.call('GET', P .. 'format')
  if stored_format and stored_format ~= FORMAT then
    return redis.error_reply('CP:FailedPrecondition:' .. REASON.STORE_FORMAT_MISMATCH .. ':the data under ' .. P ..
      ' is format ' .. stored_format .. ' but this scheduler writes format ' .. FORMAT ..
      '; it changed nothing. Restart it with the version that writes format ' .. stored_format)
  end
end

-- Proto enum numbers (StepState, RunState).
local BLOCKED, READY, ASSIGNED, RUNNING, SUCCEEDED, FAILED, RETRY_WAIT, CANCELLED, SKIPPED, WAITING = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
local R_PENDING, R_RUNNING, R_PAUSED, R_SUCCEEDED, R_FAILED, R_CANCELLING, R_CANCELLED = 1, 2, 3, 4, 5, 6, 7
local STEP_TERMINAL = { [SUCCEEDED] = true, [FAILED] = true, [CANCELLED] = true, [SKIPPED] = true }
local RUN_TERMINAL = { [R_SUCCEEDED] = true, [R_FAILED] = true, [R_CANCELLED] = true }

-- Lease expiries a step may suffer at least; maintenance sets it from RunStoreOptions.
local EXPIRY_ATTEMPTS = 1

-- tonumber parses a string with strtod, slow next to a table lookup; the same few values ("0", "1",
-- states) are parsed many times per call, so each is parsed once.
local nums = {}
local function num(v)
  if not v then return 0 end
  local n = nums[v]
  -- (v ~= v only for a NaN, which cannot be a key.)
  if n == nil then n = tonumber(v) or 0; if v == v then nums[v] = n end end
  return n
end
local function I(n) return string.format('%d', n) end

-- Amounts (usage, reservations) stay finite: a NaN or an infinity has no JSON form, and encoding it would fail the call.
local MAX_AMOUNT = 1e300
local function fin(n)
  if n ~= n then return 0 end
  if n > MAX_AMOUNT then return MAX_AMOUNT end
  if n < -MAX_AMOUNT then return -MAX_AMOUNT end
  return n
end

-- Stored JSON that does not decode (written by hand, or by an older version) reads as nil instead of failing the call.
local function jdecode(raw)
  if not raw or raw == '' then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then return v end
  redis.log(redis.LOG_WARNING, 'controlplane: unreadable stored JSON ignored: ' .. string.sub(raw, 1, 80))
  return nil
end

-- Lua's unpack takes at most about 8,000 values (LUAI_MAXCSTACK): variadic commands go in slices of 1,000
-- (an even number, so score/member pairs stay whole).
local SLICE = 1000
local function sliced(cmd, key, opt, list)
  local n = #list
  local i = 1
  while i <= n do
    local last = math.min(i + SLICE - 1, n)
    if opt then redis.call(cmd, key, opt, unpack(list, i, last)) else redis.call(cmd, key, unpack(list, i, last)) end
    i = last + 1
  end
end

-- Integers as "%d" text, built once per call. Redis formats a number argument with "%.17g" and cjson
-- with "%.14g", both far slower and, for integers below 1e14, the same text.
local nstrs = {}
local function nstr(n)
  local s = nstrs[n]
  if not s then s = string.format('%d', n); nstrs[n] = s end
  return s
end

-- A string as cjson.encode writes it; most need no escaping.
local jstrs = {}
local function jstr(v)
  local s = jstrs[v]
  if not s then
    if string.find(v, '[%z\1-\31"/\\\127]') then s = cjson.encode(v) else s = '"' .. v .. '"' end
    jstrs[v] = s
  end
  return s
end
-- Events are built as text only while NOW keeps cjson's integer form.
local NOW_J = NOW % 1 == 0 and NOW < 1e14 and nstr(NOW)

-- ---- names: built once per call --------------------------------------------------------------------
-- Building a string hashes every byte of it (Redis's Lua) and interns it; the same keys and
-- "<step>:<suffix>" field names are needed many times per call, so each is built once, then looked up.
local names = {}
local function F(a, b)
  local t = names[a]
  if not t then t = {}; names[a] = t end
  local s = t[b]
  if not s then s = a .. b; t[b] = s end
  return s
end

local PR, PQ, PRQ, PAG = P .. 'r:', P .. 'q:', P .. 'rq:', P .. 'ag:'
local rkeys = {}
local function RK(run)
  local k = rkeys[run]
  if not k then k = PR .. run; rkeys[run] = k end
  return k
end

-- Label index of one label pair (StoreFormat 2): run ids scored by submit order. The key's length comes first so
-- that no pair can spell another pair's key.
local function LBL(key, value) return P .. 'lbl:' .. #key .. ':' .. key .. '=' .. value end

-- Ready set key of a run and queue.
local rqkeys = {}
local function RQK(run, q)
  local t = rqkeys[run]
  if not t then t = {}; rqkeys[run] = t end
  local k = t[q]
  if not k then k = PRQ .. run .. ':' .. q; t[q] = k end
  return k
end

-- The field names of one step: out[i] = id .. suffixes[i], appended after n entries.
local function step_fields(id, suffixes, out, n)
  out = out or {}
  n = n or 0
  local t = names[id]
  if not t then t = {}; names[id] = t end
  for i = 1, #suffixes do
    local x = suffixes[i]
    local s = t[x]
    if not s then s = id .. x; t[x] = s end
    out[n + i] = s
  end
  return out
end

-- ---- hash cache --------------------------------------------------------------------------------
-- vals[key][field] is the known value (false: absent), dirty[key][field] marks it for the flush.
local vals, dirty = {}, {}
local function hc(key)
  local c = vals[key]
  if not c then c = {}; vals[key] = c; dirty[key] = {} end
  return c
end

local function pre(key, fields)
  local c = vals[key] or hc(key)
  local miss, n = nil, 0
  for i = 1, #fields do
    local f = fields[i]
    if c[f] == nil then
      if n == 0 then miss = {} end
      n = n + 1; miss[n] = f
    end
  end
  local i = 1
  while i <= n do
    local last = math.min(i + 4999, n)
    local r = redis.call('HMGET', key, unpack(miss, i, last))
    for j = i, last do c[miss[j]] = r[j - i + 1] end
    i = last + 1
  end
end

local function get(key, f)
  local c = vals[key] or hc(key)
  local v = c[f]
  if v == nil then
    v = redis.call('HGET', key, f)
    c[f] = v
  end
  return v
end

-- false deletes the field at flush.
local function put(key, f, v)
  local c = vals[key] or hc(key)
  -- Writing the value already stored (or already pending) costs a field in the flush for nothing.
  if c[f] == v then return end
  c[f] = v
  dirty[key][f] = true
end

local function incr(key, f, d)
  local v = num(get(key, f)) + d
  put(key, f, v)
  return v
end

-- Decoded JSON fields, encoded back at flush.
local jcache, jdirty = {}, {}
local function jget(key, f)
  local t = jcache[key]
  if not t then t = {}; jcache[key] = t end
  local j = t[f]
  if j == nil then
    j = jdecode(get(key, f)) or {}
    t[f] = j
  end
  return j
end

local function jmark(key, f)
  local d = jdirty[key]
  if not d then d = {}; jdirty[key] = d end
  d[f] = true
end

-- Deletes a JSON field; later reads in this call see it empty.
local function jclear(key, f)
  put(key, f, false)
  local t = jcache[key]
  if not t then t = {}; jcache[key] = t end
  t[f] = {}
  local d = jdirty[key]
  if d then d[f] = nil end
end

-- ---- buffered side effects ---------------------------------------------------------------------
local signal = { e = {}, r = {}, c = {}, d = {} }
local ready_queues = {}
local lease_rem = {}
local timeout_rem = {}
local retry_rem = {}
-- Events per run, appended to the run's stream at flush together with its counter.
local events, event_runs = {}, {}
local live_add, live_rem = {}, {}

local write_events

-- ---- run change feed (WatchRuns) ---------------------------------------------------------------
-- cp:{ns}:runfeed, one entry per run per call whose state or a step's state changed (r: run id, s: its state after
-- the call, d: 1 when deleted), with ids "<n>-1" numbered on from cp:{ns}:runfeed:n without gaps, so a cursor n says
-- exactly whether entries after it were trimmed. Trimmed to about cp:{ns}:runfeed:max entries (RunStoreOptions.RunFeedLength).
local feed_runs, feed_seen = {}, {}
local function feed_touch(run)
  if not feed_seen[run] then feed_seen[run] = true; feed_runs[#feed_runs + 1] = run end
end

-- list: { { run, state, deleted }, ... }, appended now (callers call it after their checks, at or after flush).
local function feed_append(list)
  if #list == 0 then return end
  local fk = P .. 'runfeed'
  local cap = tonumber(redis.call('GET', fk .. ':max')) or RUN_FEED_LENGTH
  local n = redis.call('INCRBY', fk .. ':n', #list) - #list
  for i = 1, #list do
    local e = list[i]
    local id = I(n + i) .. '-1'
    local r
    if e[3] then
      r = redis.pcall('XADD', fk, 'MAXLEN', '~', cap, id, 'r', e[1], 's', I(e[2]), 'd', '1')
    else
      r = redis.pcall('XADD', fk, 'MAXLEN', '~', cap, id, 'r', e[1], 's', I(e[2]))
    end
    if type(r) == 'table' and r.err then
      -- The counter fell behind the stream (lost on its own): continue after the stream's last entry.
      local top = redis.call('XREVRANGE', fk, '+', '-', 'COUNT', 1)
      n = (top[1] and tonumber(string.match(top[1][1], '^(%d+)')) or 0) - i + 1
      redis.call('SET', fk .. ':n', I(n + #list))
      id = I(n + i) .. '-1'
      if e[3] then
        redis.call('XADD', fk, 'MAXLEN', '~', cap, id, 'r', e[1], 's', I(e[2]), 'd', '1')
      else
        redis.call('XADD', fk, 'MAXLEN', '~', cap, id, 'r', e[1], 's', I(e[2]))
      end
    end
  end
end

local function flush()
  for key, fs in pairs(jdirty) do
    local t = jcache[key]
    for f in pairs(fs) do
      local j = t[f]
      if next(j) == nil then put(key, f, false) else put(key, f, cjson.encode(j)) end
    end
  end
  jdirty = {}
  write_events()
  if #feed_runs > 0 then
    local list = {}
    for i, run in ipairs(feed_runs) do list[i] = { run, num(get(RK(run), '_st')), false } end
    feed_runs, feed_seen = {}, {}
    feed_append(list)
  end
  for key, d in pairs(dirty) do
    if next(d) ~= nil then
      local c = vals[key]
      local sets, dels, ns, nd = {}, {}, 0, 0
      for f in pairs(d) do
        local v = c[f]
        if v == false then
          nd = nd + 1; dels[nd] = f
        else
          if type(v) == 'number' and v % 1 == 0 and v > -1e14 and v < 1e14 then v = nstr(v) end
          sets[ns + 1] = f; sets[ns + 2] = v; ns = ns + 2
        end
      end
      local i = 1
      while i <= ns do
        local last = math.min(i + 3999, ns)
        redis.call('HSET', key, unpack(sets, i, last))
        i = last + 1
      end
      i = 1
      while i <= nd do
        local last = math.min(i + 3999, nd)
        redis.call('HDEL', key, unpack(dels, i, last))
        i = last + 1
      end
      dirty[key] = {}
    end
  end
  sliced('ZREM', P .. 'leases', nil, lease_rem); lease_rem = {}
  sliced('ZREM', P .. 'timeouts', nil, timeout_rem); timeout_rem = {}
  sliced('ZREM', P .. 'retry', nil, retry_rem); retry_rem = {}
  local adds = {}
  for run in pairs(live_add) do adds[#adds + 1] = run end
  sliced('SADD', P .. 'live', nil, adds)
  local rems = {}
  for run in pairs(live_rem) do rems[#rems + 1] = run end
  sliced('SREM', P .. 'live', nil, rems)
  live_add, live_rem = {}, {}
  -- One PUBLISH per call carries every wake-up of the call; only queues that hold READY steps wake agents.
  for q in pairs(ready_queues) do
    if num(get(SK, F('r:', q))) > 0 then signal.r[#signal.r + 1] = q end
  end
  local e = {}
  for run, seq in pairs(signal.e) do e[#e + 1] = run; e[#e + 1] = seq end
  if #e > 0 or #signal.r > 0 or #signal.c > 0 or #signal.d > 0 then
    local msg = { e = e, r = signal.r, c = signal.c, d = signal.d }
    redis.call('PUBLISH', P .. 'sig', cjson.encode(msg))
  end
end

-- ---- events (seq 1..n per run, stream id "<seq>-1") --------------------------------------------
-- e is the event array, or its JSON already built.
local ekeys = {}
-- When a script sets evlog to a table, every event of the call is also kept there, as XRANGE returns it.
local evlog = nil
-- Transitions of this call per run, also appended to the run's history list (cp:{ns}:h:<run>, StoreFormat 3) at flush,
-- so GetRun reads the history without reading the event stream, whatever the volume of logs.
local hists, hist_runs = {}, {}
local function ev(run, e, transition)
  local k = RK(run)
  local seq = num(get(k, '_seq')) + 1
  if type(e) == 'table' then e = cjson.encode(e) end
  put(k, '_seq', seq)
  local list = events[run]
  if not list then list = {}; events[run] = list; event_runs[#event_runs + 1] = run end
  list[#list + 1] = e
  if transition then
    feed_touch(run)
    local h = hists[run]
    if not h then h = {}; hists[run] = h; hist_runs[#hist_runs + 1] = run end
    h[#h + 1] = e
  end
  if evlog then evlog[#evlog + 1] = { string.format('%d-1', seq), { 'v', e } } end
  signal.e[run] = seq
end

-- Appends each run's events of this call, numbered up to its counter. A stream that is already past the counter
-- (left by a script of an older version that failed after its first event) is continued after its last entry, so
-- that run stays usable instead of failing every later call.
write_events = function()
  for _, run in ipairs(event_runs) do
    local list = events[run]
    local k = RK(run)
    local ek = ekeys[run]
    if not ek then ek = P .. 'e:' .. run; ekeys[run] = ek end
    local first = num(get(k, '_seq')) - #list + 1
    local r = redis.pcall('XADD', ek, string.format('%d-1', first), 'v', list[1])
    if type(r) == 'table' and r.err then
      local top = redis.call('XREVRANGE', ek, '+', '-', 'COUNT', 1)
      local last = top[1] and tonumber(string.match(top[1][1], '^(%d+)')) or 0
      redis.log(redis.LOG_WARNING, 'controlplane: events of run ' .. run .. ' renumbered after ' .. last .. ': ' .. tostring(r.err))
      first = last + 1
      redis.call('XADD', ek, string.format('%d-1', first), 'v', list[1])
      put(k, '_seq', first + #list - 1)
      signal.e[run] = first + #list - 1
    end
    for i = 2, #list do
      redis.call('XADD', ek, string.format('%d-1', first + i - 1), 'v', list[i])
    end
  end
  events, event_runs = {}, {}
  for _, run in ipairs(hist_runs) do sliced('RPUSH', P .. 'h:' .. run, nil, hists[run]) end
  hists, hist_runs = {}, {}
end

-- ---- per-step data ------------------------------------------------------------------------------
-- Decoded metas are shared and never changed. Steps of one shape (the branches of a fan-out) store
-- the same text, so one decoded table serves them all.
local metas, shapes = {}, {}
local function decode_meta(raw)
  local m = shapes[raw]
  if m == nil then m = jdecode(raw) or false; shapes[raw] = m end
  return m or nil
end

local function meta(run, id)
  local t = metas[run]
  if not t then t = {}; metas[run] = t end
  local m = t[id]
  if m == nil then
    local raw = get(RK(run), F(id, ':m'))
    if not raw then return nil end
    m = decode_meta(raw)
    if not m then return nil end
    t[id] = m
  end
  return m
end

local function set_meta(run, id, m)
  local t = metas[run]
  if not t then t = {}; metas[run] = t end
  t[id] = m
end

-- ---- transitions (checked against the shared tables) -------------------------------------------
local function step_to(run, id, to, reason, agent, from, attempt)
  local k = RK(run)
  local fst = F(id, ':st')
  from = from or num(get(k, fst))
  if not (ST[from] and ST[from][to]) then
    -- Refused and logged (Redis server log): the transition tables have no such edge.
    redis.log(redis.LOG_WARNING, 'controlplane: refused step transition ' .. run .. '/' .. id .. ' ' .. (STEP_NAMES[from] or from) .. ' -> ' .. (STEP_NAMES[to] or to))
    return false
  end
  put(k, fst, to)
  if attempt == nil then attempt = num(get(k, F(id, ':at'))) end
  if NOW_J then
    ev(run, '["S",' .. NOW_J .. ',' .. jstr(id) .. ',' .. nstr(from) .. ',' .. nstr(to) .. ',' .. nstr(attempt) .. ',' .. jstr(reason or '') .. ',' .. jstr(agent or '') .. ']', true)
  else
    ev(run, { 'S', NOW, id, from, to, attempt, reason or '', agent or '' }, true)
  end
  local tt, ft = STEP_TERMINAL[to], STEP_TERMINAL[from]
  if tt and not ft then incr(k, '_nt', 1); put(k, F(id, ':fa'), NOW) end
  if ft and not tt then incr(k, '_nt', -1) end
  if to == FAILED then incr(k, '_nf', 1) end
  if from == FAILED then incr(k, '_nf', -1) end
  if to == CANCELLED then incr(k, '_nc', 1) end
  if from == CANCELLED then incr(k, '_nc', -1) end
  if to == ASSIGNED or to == WAITING then
    local sa = F(id, ':sa')
    if not get(k, sa) then put(k, sa, NOW) end
  end
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
  if NOW_J then
    ev(run, '["R",' .. NOW_J .. ',' .. nstr(from) .. ',' .. nstr(to) .. ',' .. jstr(reason or '') .. ']', true)
  else
    ev(run, { 'R', NOW, from, to, reason or '' }, true)
  end
  if RUN_TERMINAL[to] then
    put(k, '_fin', NOW)
    live_rem[run] = true; live_add[run] = nil
    -- Retention (StoreFormat 3): maintenance deletes the finished run at this deadline; 0 keeps it forever.
    local ret = num(get(k, '_ret'))
    if ret > 0 then redis.call('ZADD', P .. 'expire', I(NOW + ret), run) end
  elseif RUN_TERMINAL[from] then
    put(k, '_fin', false)
    live_add[run] = true; live_rem[run] = nil
    redis.call('ZREM', P .. 'expire', run)
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
-- ringed[q][run]: added to the ring in this call and not popped since, so adding it again is a no-op.
local ringed = {}
local function ring_add(q, run, quiet)
  local r = ringed[q]
  if not r then r = {}; ringed[q] = r end
  if not r[run] then
    r[run] = true
    local vt = incr(SK, F('v:', q), 1)
    redis.call('ZADD', F(PQ, q), 'NX', I(vt), run)
  end
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
  -- When it became READY (ms), returned with its assignment so the scheduler measures dispatch latency.
  put(k, F(id, ':ra'), I(NOW))
  local seq = incr(SK, 'rseq', 1)
  redis.call('ZADD', RQK(run, q), I(-pr), string.format('%012d|%s', seq, id))
  local rc = jget(k, '_rc')
  rc[q] = (rc[q] or 0) + 1
  jmark(k, '_rc')
  incr(SK, F('r:', q), 1)
  if runnable(run) and get(k, '_cb') ~= '1' then ring_add(q, run) end
end

-- ---- attempts ---------------------------------------------------------------------------------
local function add_units(into, from, sign)
  for u, v in pairs(from) do
    local nv = fin((into[u] or 0) + sign * v)
    if math.abs(nv) < 1e-9 then nv = nil end
    into[u] = nv
  end
end

-- The queues an agent serves, decoded once per call.
local agent_queues = {}
local function queues_of(AK)
  local qs = agent_queues[AK]
  if qs == nil then
    qs = jdecode(get(AK, 'q')) or false
    agent_queues[AK] = qs
  end
  return qs
end

-- The attempt ended (any way): its slots, lease and budget reservation are released. Units the agent
-- did not report count at their estimate, so an unreported cost never frees budget.
local function finish_attempt(run, id, m, usage)
  local k = RK(run)
  local tok = get(k, F(id, ':tk'))
  local agent = get(k, F(id, ':ag'))
  if agent and agent ~= '' then
    local AK = F(PAG, agent)
    incr(AK, 'used', -m.sl)
    local aq = queues_of(AK)
    if aq then for _, q in ipairs(aq) do ready_queues[q] = true end end
  end
  ready_queues[m.q] = true
  incr(k, '_used', -1)
  incr(SK, F('q:', m.q), -1)
  if m.k ~= '' then incr(SK, F('k:', m.k), -1) end
  local member = (tok or '') .. '|' .. run .. '|' .. id
  lease_rem[#lease_rem + 1] = member
  if m.to > 0 then timeout_rem[#timeout_rem + 1] = member end
  local actual = {}
  local frs = F(id, ':rs')
  local rsraw = get(k, frs)
  if rsraw and rsraw ~= '' then
    local rs = jdecode(rsraw) or {}
    add_units(jget(k, '_res'), rs, -1); jmark(k, '_res')
    for u, v in pairs(rs) do
      actual[u] = v
      local fb = F('b:', u)
      local nv = fin(num(get(SK, fb)) - v)
      if math.abs(nv) < 1e-9 then nv = 0 end
      put(SK, fb, nv)
    end
    put(k, frs, false)
  end
  if usage then for u, v in pairs(usage) do actual[u] = v end end
  if next(actual) ~= nil then
    add_units(jget(k, '_usd'), actual, 1); jmark(k, '_usd')
    local fus = F(id, ':us')
    add_units(jget(k, fus), actual, 1); jmark(k, fus)
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
      if m.pc[i] <= 1 then done = true else done = incr(k, F(p, ':cs'), 1) >= m.pc[i] end
      if done and (m.ri == 1 or get(k, F(p, ':os'))) then
        put(k, F(p, ':o'), ''); put(k, F(p, ':ou'), ''); put(k, F(p, ':od'), '1')
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
  put(k, F(cid, ':er'), why)
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
local ST_SUFFIX = { ':st' }
resolve = function(run, c, ok, parent, pstate)
  local k = RK(run)
  local cid = c[1]
  local at = first_attempt(run)
  if c[3] == 1 and not ok then
    if num(get(k, F(cid, ':st'))) ~= BLOCKED then return end
    skip(run, cid, "needed step '" .. parent .. "' is " .. STEP_NAMES[pstate], at)
    return
  end
  local anybad
  if c[2] <= 1 then
    anybad = not ok
  else
    if incr(k, F(cid, ':pd'), -1) > 0 then return end
    if num(get(k, F(cid, ':st'))) ~= BLOCKED then return end
    local cm = meta(run, cid)
    local fields = {}
    for i, p in ipairs(cm.n) do step_fields(p, ST_SUFFIX, fields, i - 1) end
    pre(k, fields)
    anybad = false
    for i = 1, #fields do
      if num(get(k, fields[i])) ~= SUCCEEDED then anybad = true end
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
    local ids = jdecode(get(k, '_ids')) or {}
    local fields = {}
    for i, id in ipairs(ids) do step_fields(id, ST_SUFFIX, fields, i - 1) end
    pre(k, fields)
    local e = 'a step failed'
    for i, id in ipairs(ids) do
      if num(get(k, fields[i])) == FAILED then
        e = "step '" .. id .. "' failed: " .. (get(k, F(id, ':er')) or '')
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
  local st = num(get(k, F(id, ':st')))
  local fcx, fer = F(id, ':cx'), F(id, ':er')
  if get(k, fcx) == '1' then
    put(k, fcx, false)
    local e = cancelled_error(run)
    put(k, fer, e)
    step_to(run, id, CANCELLED, e, agent, st)
    return
  end
  local used = num(get(k, F(id, ':at'))) - num(get(k, F(id, ':ab')))
  local allowed = m.ma
  if lease_lost and EXPIRY_ATTEMPTS > allowed then allowed = EXPIRY_ATTEMPTS end
  put(k, fer, err)
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
  put(k, fer, final)
  if step_to(run, id, FAILED, final, agent, st) then on_bad(run, id, m, FAILED) end
end

local function cancel_signal(agent, tok, reason)
  signal.c[#signal.c + 1] = { agent, tok, reason }
end

-- A refusal the caller can fix: the client sees "CP:<RunStoreError>:<ErrorReason number>:<message>".
-- reason comes from the REASON table rendered from controlplane.v1.ErrorReason.
local function err(code, reason, msg)
  return redis.error_reply('CP:' .. code .. ':' .. reason .. ':' .. msg)
end
