-- gate: the decision, the gate's state and the release of its children happen together.
-- ARGV: 3 run id, 4 step id, 5 approve (1/0), 6 decided by, 7 comment.
local run, id, approve, by, comment = ARGV[3], ARGV[4], ARGV[5] == '1', ARGV[6], ARGV[7]
local k = RK(run)
pre(k, { '_st', '_used', '_nt', '_n', '_nf', '_nc', '_rr', id .. ':st', id .. ':m', id .. ':at' })
if not get(k, '_st') then return err('NotFound', REASON.RUN_NOT_FOUND, "run '" .. run .. "' not found; check the run id (ListRuns shows existing runs)") end
local m = meta(run, id)
if m == nil then return err('NotFound', REASON.STEP_NOT_FOUND, "run '" .. run .. "' has no step '" .. id .. "'") end
if m.g ~= 1 then return err('FailedPrecondition', REASON.NOT_A_GATE, "step '" .. id .. "' is a task, not a gate; only gates take approval decisions") end
local s = num(get(k, id .. ':st'))
if s ~= WAITING then
  return err('FailedPrecondition', REASON.STEP_STATE_CONFLICT, "gate '" .. id .. "' is " .. STEP_NAMES[s] .. '; only a gate in STEP_STATE_WAITING_APPROVAL can be decided')
end
put(k, id .. ':db', by)
put(k, id .. ':dc', comment)
ev(run, { 'G', NOW, id, approve and 1 or 0, by, comment })
local who, note = '', ''
if by ~= '' then who = ' by ' .. by end
if comment ~= '' then note = ': ' .. comment end
if approve then
  if step_to(run, id, SUCCEEDED, 'approved' .. who .. note, '', s) then on_good(run, id, m) end
else
  local e = 'rejected' .. who .. note
  put(k, id .. ':er', e)
  if step_to(run, id, FAILED, e, '', s) then on_bad(run, id, m, FAILED) end
end
maybe_finish(run)
flush()
return { 'OK' }
