-- report: a completion must check the fencing token, store the output, release slots and unblock children in one step,
-- or a step could succeed twice or leak its slots.
-- ARGV: 3 report count, then per report 9 values: kind, run, step, token, a1, a2, a3, agent and session of the stream
--   it came on ('' each: not checked).
--   S started; P progress (a1 percent, a2 message); C checkpoint (a1 bytes); L log (a1 stream, a2 lines json);
--   D completed (a1 output, a2 uri, a3 usage json); F failed (a1 error, a2 flags: p permanent, t timed out, a3 usage json);
--   X declined (a1 reason). Outcomes: 0 applied, 1 stale token, 2 unknown step, 3 this token's result was already applied,
--   4 another agent or another session of the agent holds the attempt.
local n = math.min(math.floor(tonumber(ARGV[3]) or 0), math.floor((#ARGV - 3) / 9))
local function A(i, j) return ARGV[4 + i * 9 + j] end

-- Every report is checked and decoded before the first write, and what the store never sends (it applies the same
-- limits first) is made harmless here, so one bad report neither fails the call nor costs the others in its batch.
local MAX_USAGE = 1e15
local function finite(x) return type(x) == 'number' and x == x and x > -math.huge and x < math.huge end
-- Usage as a table of amounts (nil when empty), and what is wrong with it (nil when nothing).
local function usage_of(raw)
  if raw == '{}' or raw == '' then return nil, nil end
  local ok, u = pcall(cjson.decode, raw)
  if not ok or type(u) ~= 'table' then return nil, 'usage is not a JSON object of amounts' end
  local out, bad = nil, nil
  for unit, v in pairs(u) do
    if type(unit) == 'string' and finite(v) and v >= 0 and v <= MAX_USAGE then
      out = out or {}
      out[unit] = v
    elseif not bad then
      bad = 'usage[' .. string.sub(tostring(unit), 1, 64) .. '] is ' .. string.sub(tostring(v), 1, 32) .. '; report each amount as a finite number between 0 and 1e15'
    end
  end
  return out, bad
end
local function lines_of(raw)
  local ok, l = pcall(cjson.decode, raw)
  if not ok or type(l) ~= 'table' then return { '[log lines dropped: not a JSON array of strings]' } end
  local out = {}
  for i = 1, #l do
    if type(l[i]) == 'string' then out[i] = l[i] else out[i] = '[not a string]' end
  end
  return out
end
local function integer_of(raw, lo, hi)
  local v = tonumber(raw)
  if not finite(v) then return lo end
  v = math.floor(v)
  if v < lo then return lo end
  if v > hi then return hi end
  return v
end
-- parsed[i]: kind, and per kind: P percent, message; L stream, lines; D/F usage, error, flags.
local parsed = {}
for i = 0, n - 1 do
  local kind = A(i, 0)
  local r = { kind = kind }
  if kind == 'P' then
    local pct = tonumber(A(i, 4))
    if not finite(pct) then pct = 0 end
    r.pct = math.max(0, math.min(100, pct))
  elseif kind == 'L' then
    r.stream = integer_of(A(i, 4), 0, 1e9)
    r.lines = lines_of(A(i, 5))
  elseif kind == 'D' or kind == 'F' then
    local usage, bad = usage_of(A(i, 6))
    r.usage = usage
    if kind == 'F' then
      local e, flags = A(i, 4), A(i, 5)
      if string.find(flags, 't', 1, true) then e = 'timed out: ' .. e end
      if e == '' then e = 'failed' end
      if bad then e = e .. '; ' .. bad end
      r.err, r.permanent = e, string.find(flags, 'p', 1, true) ~= nil
    elseif bad then
      -- A result whose cost cannot be reconciled is not accepted as a success.
      r.kind, r.err, r.permanent = 'F', 'step_completed.' .. bad, true
    end
  end
  parsed[i] = r
end
-- One read per run for every step the batch mentions, of the fields its kinds of report use (with
-- those a result deletes, so absent ones cost no HDEL).
local RUN_FIELDS = { '_st', '_used', '_nt', '_n', '_nf', '_nc', '_cb', '_rr', '_seq', '_rc' }
local STEP_FIELDS = { ':st', ':tk', ':at', ':m', ':ag', ':sn' }
local RESULT_FIELDS = {
  D = { ':rs', ':cx', ':o', ':ou', ':od', ':er', ':rt' }, F = { ':rs', ':cx', ':ab', ':er', ':rt' }, X = { ':rs', ':cx', ':ab', ':rt' },
  P = { ':pn', ':px' }, L = { ':ln', ':lx' },
}
local fields, listed = {}, {}
for i = 0, n - 1 do
  local kind, k, id = parsed[i].kind, RK(A(i, 1)), A(i, 2)
  local f = fields[k]
  if not f then
    f = {}
    for j = 1, #RUN_FIELDS do f[j] = RUN_FIELDS[j] end
    fields[k] = f
    listed[k] = {}
  end
  local s = listed[k][id]
  if not s then
    s = {}
    listed[k][id] = s
    step_fields(id, STEP_FIELDS, f, #f)
  end
  local extra = RESULT_FIELDS[kind]
  if extra and not s[kind] then
    s[kind] = true
    step_fields(id, extra, f, #f)
  end
end
for k, f in pairs(fields) do pre(k, f) end

local out = {}
local touched = {}
for i = 0, n - 1 do
  local r = parsed[i]
  local kind, run, id, tok = r.kind, A(i, 1), A(i, 2), A(i, 3)
  local k = RK(run)
  local st = num(get(k, F(id, ':st')))
  local m = meta(run, id)
  local result = kind == 'D' or kind == 'F' or kind == 'X'
  local reporter, reporter_session = A(i, 7), A(i, 8)
  local held_by = get(k, F(id, ':sn')) or ''
  if m == nil then
    out[#out + 1] = 2
  elseif reporter ~= '' and get(k, F(id, ':tk')) == tok and (get(k, F(id, ':ag')) or '') ~= reporter then
    -- A fencing token names an attempt; it does not prove who holds it. Another agent is refused before the repeat
    -- check, so that only the holder learns its result was applied.
    out[#out + 1] = 4
  elseif result and get(k, F(id, ':rt')) == tok then
    -- The same result sent again after a reconnect whose acknowledgement was lost: applied once, acknowledged again.
    -- The repeat comes on the agent's new stream, so the session is not checked here.
    out[#out + 1] = 3
  elseif get(k, F(id, ':tk')) ~= tok or (st ~= ASSIGNED and st ~= RUNNING) then
    out[#out + 1] = 1
  elseif reporter_session ~= '' and held_by ~= '' and held_by ~= reporter_session then
    -- A session of the holder that no longer holds the attempt: the agent reconnected and its new stream took it over.
    out[#out + 1] = 4
  else
    out[#out + 1] = 0
    local at = num(get(k, F(id, ':at')))
    local agent = get(k, F(id, ':ag')) or ''
    if result then put(k, F(id, ':rt'), tok) end
    if st == ASSIGNED and (kind == 'S' or kind == 'D' or kind == 'F') then
      -- A result may arrive without its Started (the agent drops a Started queued ahead of it):
      -- the start it implies is recorded first, so every attempt that ran passes RUNNING.
      if step_to(run, id, RUNNING, 'started', agent, st, at) then st = RUNNING end
    end
    if kind == 'P' then
      put(k, F(id, ':pg'), r.pct)
      put(k, F(id, ':pm'), A(i, 5))
      -- Per-step caps (ReportLimits): the first progress events and log lines are kept, later ones counted
      -- (:px, :lx) and marked by one log event; transitions and checkpoints are never capped.
      if num(get(k, F(id, ':pn'))) < MAX_PROGRESS_PER_STEP then
        incr(k, F(id, ':pn'), 1)
        ev(run, { 'P', NOW, id, at, r.pct, A(i, 5) })
      elseif incr(k, F(id, ':px'), 1) == 1 then
        ev(run, { 'L', NOW, id, at, 0, { PROGRESS_TRUNCATED } })
      end
    elseif kind == 'C' then
      put(k, F(id, ':ck'), A(i, 4))
      ev(run, { 'C', NOW, id, at, #A(i, 4) })
    elseif kind == 'L' then
      local lines = r.lines
      local room = MAX_LOG_LINES_PER_STEP - num(get(k, F(id, ':ln')))
      if #lines <= room then
        incr(k, F(id, ':ln'), #lines)
        ev(run, { 'L', NOW, id, at, r.stream, lines })
      else
        if room > 0 then
          incr(k, F(id, ':ln'), room)
          ev(run, { 'L', NOW, id, at, r.stream, { unpack(lines, 1, room) } })
        end
        local before = num(get(k, F(id, ':lx')))
        put(k, F(id, ':lx'), before + #lines - math.max(room, 0))
        if before == 0 then ev(run, { 'L', NOW, id, at, r.stream, { LOG_TRUNCATED } }) end
      end
    elseif kind == 'X' then
      -- Declined: slots and reservation are released with nothing charged (every reserved unit reported as 0),
      -- and the step is READY again with its attempt number given back, after a history entry naming it.
      local zero = {}
      local rs = get(k, F(id, ':rs'))
      for u in pairs(jdecode(rs) or {}) do zero[u] = 0 end
      finish_attempt(run, id, m, zero)
      if get(k, F(id, ':cx')) == '1' then
        fail_attempt(run, id, m, 'cancelled', true, false, agent)
      else
        make_ready(run, id, m.q, m.pr, 'declined by agent ' .. agent .. ': ' .. A(i, 4), st, at, agent)
        put(k, F(id, ':at'), at - 1)
      end
      touched[run] = true
    elseif kind == 'D' or kind == 'F' then
      finish_attempt(run, id, m, r.usage)
      if kind == 'F' then
        fail_attempt(run, id, m, r.err, r.permanent, false, agent)
      elseif get(k, F(id, ':cx')) == '1' then
        -- The run was cancelled while this attempt ran: its end is accepted, the step does not count as done.
        fail_attempt(run, id, m, 'cancelled', true, false, agent)
      else
        local o, ou = A(i, 4), A(i, 5)
        put(k, F(id, ':o'), o ~= '' and o or false)
        put(k, F(id, ':ou'), ou ~= '' and ou or false)
        put(k, F(id, ':os'), #o)
        put(k, F(id, ':od'), false)
        put(k, F(id, ':er'), false)
        put(k, F(id, ':pg'), 100)
        if step_to(run, id, SUCCEEDED, 'completed', agent, st, at) then on_good(run, id, m) end
      end
      touched[run] = true
    end
  end
end
for run in pairs(touched) do maybe_finish(run) end
flush()
return out
