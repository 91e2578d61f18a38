-- pause: the run state flips in one step so a concurrent claim sees either RUNNING or PAUSED, never half.
-- ARGV: 3 run id.
local run = ARGV[3]
local k = RK(run)
local st = get(k, '_st')
if not st then return err('NotFound', REASON.RUN_NOT_FOUND, "run '" .. run .. "' not found; check the run id (ListRuns shows existing runs)") end
st = tonumber(st)
if st == R_PAUSED then return { 'OK' } end
if st ~= R_RUNNING and st ~= R_PENDING then
  return err('FailedPrecondition', REASON.RUN_STATE_CONFLICT, 'run ' .. run .. ' is ' .. RUN_NAMES[st] .. '; only a PENDING or RUNNING run can be paused')
end
run_to(run, R_PAUSED, 'paused')
flush()
return { 'OK' }
