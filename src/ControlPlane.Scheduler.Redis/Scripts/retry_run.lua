-- retry_run: every failed, cancelled and skipped step is reset and re-queued together with the run state.
-- ARGV: 3 run id.
local run = ARGV[3]
local k = RK(run)
pre(k, { '_st', '_ids', '_rc', '_used', '_nt', '_n', '_nf', '_nc', '_rr', '_err' })
local st = get(k, '_st')
if not st then return err('NotFound', REASON.RUN_NOT_FOUND, "run '" .. run .. "' not found; check the run id (ListRuns shows existing runs)") end
st = tonumber(st)
if st ~= R_FAILED and st ~= R_CANCELLED then
  return err('FailedPrecondition', REASON.RUN_STATE_CONFLICT, 'run ' .. run .. ' is ' .. RUN_NAMES[st] .. '; only a FAILED or CANCELLED run can be retried')
end
local ids = jdecode(get(k, '_ids')) or {}
local fields = {}
for _, id in ipairs(ids) do
  for _, x in ipairs({ 'st', 'at', 'm' }) do fields[#fields + 1] = id .. ':' .. x end
end
pre(k, fields)
put(k, '_rr', '1')
put(k, '_err', false)
run_to(run, R_RUNNING, 'retried')
local reset = {}
for _, id in ipairs(ids) do
  local s = num(get(k, id .. ':st'))
  if s == FAILED or s == CANCELLED or s == SKIPPED then
    reset[#reset + 1] = id
    put(k, id .. ':ab', get(k, id .. ':at'))
    for _, f in ipairs({ 'er', 'fa', 'pg', 'pm', 'cx' }) do put(k, id .. ':' .. f, false) end
    step_to(run, id, BLOCKED, 'run retried', '', s)
  end
end
-- Every reset step is BLOCKED now; open those whose needs are all settled.
for _, id in ipairs(reset) do
  -- A skip earlier in this loop may have settled it already.
  if num(get(k, id .. ':st')) == BLOCKED then
    local m = meta(run, id)
    local pending, anybad, bad = 0, false, nil
    for _, p in ipairs(m.n) do
      local ps = num(get(k, p .. ':st'))
      if not STEP_TERMINAL[ps] then pending = pending + 1
      elseif ps ~= SUCCEEDED then anybad = true; bad = bad or p end
    end
    if #m.n > 1 then put(k, id .. ':pd', pending) end
    if m.ri == 1 and anybad then
      skip(run, id, "needed step '" .. bad .. "' is " .. STEP_NAMES[num(get(k, bad .. ':st'))], nil)
    elseif pending == 0 then
      if m.ri == 3 and not anybad then
        skip(run, id, 'every needed step succeeded (run_if: on_failure)', nil)
      else
        open(run, id, m.g, m.q, m.pr, #m.n == 0 and 'root step' or 'needs satisfied', nil)
      end
    end
  end
end
maybe_finish(run)
flush()
return { 'OK' }
