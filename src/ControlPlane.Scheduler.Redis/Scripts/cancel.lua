-- cancel: every waiting step must be cancelled and every running attempt flagged in one step, or a claim could slip in between.
-- ARGV: 3 run id, 4 reason.
local run, reason = ARGV[3], ARGV[4]
local k = RK(run)
pre(k, { '_st', '_ids', '_rc', '_used', '_nt', '_n', '_nf', '_nc', '_rr', '_err' })
local st = get(k, '_st')
if not st then return err('NotFound', REASON.RUN_NOT_FOUND, "run '" .. run .. "' not found; check the run id (ListRuns shows existing runs)") end
st = tonumber(st)
if st == R_CANCELLING then return { 'OK' } end
if RUN_TERMINAL[st] then
  return err('FailedPrecondition', REASON.RUN_STATE_CONFLICT, 'run ' .. run .. ' is already ' .. RUN_NAMES[st] .. '; only a run that has not finished can be cancelled')
end
local ids = jdecode(get(k, '_ids')) or {}
local fields = {}
for _, id in ipairs(ids) do
  for _, x in ipairs({ 'st', 'tk', 'ag', 'at' }) do fields[#fields + 1] = id .. ':' .. x end
end
pre(k, fields)
local why = 'cancelled'
if reason ~= '' then why = 'cancelled: ' .. reason end
put(k, '_err', why)
local active = false
for _, id in ipairs(ids) do
  local s = num(get(k, id .. ':st'))
  if s == ASSIGNED or s == RUNNING then
    active = true
    put(k, id .. ':cx', '1')
    cancel_signal(get(k, id .. ':ag') or '', get(k, id .. ':tk'), why)
  elseif not STEP_TERMINAL[s] then
    local m = meta(run, id)
    if s == READY and m then incr(SK, 'r:' .. m.q, -1) end
    if s == RETRY_WAIT then redis.call('ZREM', P .. 'retry', run .. '|' .. id) end
    put(k, id .. ':er', why)
    step_to(run, id, CANCELLED, why, '', s)
  end
end
-- Nothing of this run is queued any more.
for q in pairs(jget(k, '_rc')) do
  redis.call('ZREM', P .. 'q:' .. q, run)
  if ringed[q] then ringed[q][run] = nil end
  redis.call('DEL', P .. 'rq:' .. run .. ':' .. q)
end
jclear(k, '_rc')
put(k, '_cb', false)
if active then run_to(run, R_CANCELLING, why) else run_to(run, R_CANCELLED, why) end
flush()
return { 'OK' }
