-- resume: the run state and the re-queueing of its ready steps change together, so no ready step is forgotten.
-- ARGV: 3 run id.
local run = ARGV[3]
local k = RK(run)
pre(k, { '_st', '_rc', '_used', '_nt', '_n', '_nf', '_nc', '_cb', '_err' })
local st = get(k, '_st')
if not st then return err('NotFound', REASON.RUN_NOT_FOUND, "run '" .. run .. "' not found; check the run id (ListRuns shows existing runs)") end
st = tonumber(st)
if st == R_RUNNING or st == R_PENDING then return { 'OK' } end
if st ~= R_PAUSED then
  return err('FailedPrecondition', REASON.RUN_STATE_CONFLICT, 'run ' .. run .. ' is ' .. RUN_NAMES[st] .. '; only a PAUSED run can be resumed')
end
if num(get(k, '_nt')) >= num(get(k, '_n')) then
  maybe_finish(run)
else
  run_to(run, R_RUNNING, 'resumed')
  put(k, '_cb', false)
  requeue_run(run)
end
flush()
return { 'OK' }
