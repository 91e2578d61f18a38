-- submit: the idempotency check, the run, its steps and its root steps' queue entries must appear together or not at all.
-- ARGV: 3 run id, 4 idempotency key, 5 RunSpec bytes, 6 name, 7 labels json, 8 run cap, 9 budget json,
--       10 step ids json, 11 step count, 12 retention in ms once finished (0: kept forever),
--       13 the run's trace context (W3C traceparent, StoreFormat 4; '' none),
--       then per step: id, meta json, StepSpec bytes.
local run, idem = ARGV[3], ARGV[4]
-- Label index entries, computed before the first write.
local label_keys = {}
for lk, lv in pairs(cjson.decode(ARGV[7])) do label_keys[#label_keys + 1] = LBL(lk, lv) end
if idem ~= '' then
  local existing = redis.call('HGET', P .. 'idem', idem)
  if existing then return { 0, existing } end
  redis.call('HSET', P .. 'idem', idem, run)
end
local k = RK(run)
local n = tonumber(ARGV[11])
put(k, '_st', R_PENDING)
put(k, '_name', ARGV[6])
put(k, '_lbl', ARGV[7])
put(k, '_cap', ARGV[8])
put(k, '_bud', ARGV[9])
put(k, '_ids', ARGV[10])
put(k, '_spec', ARGV[5])
put(k, '_idem', idem)
put(k, '_crt', NOW)
put(k, '_n', n)
put(k, '_nt', 0)
put(k, '_nf', 0)
put(k, '_nc', 0)
put(k, '_used', 0)
put(k, '_seq', 0)
put(k, '_ret', tonumber(ARGV[12]))
if ARGV[13] ~= '' then put(k, '_tp', ARGV[13]) end
local roots = {}
for i = 0, n - 1 do
  local id, m = ARGV[14 + i * 3], ARGV[15 + i * 3]
  put(k, id .. ':m', m)
  put(k, id .. ':p', ARGV[16 + i * 3])
  put(k, id .. ':st', BLOCKED)
  put(k, id .. ':at', 0)
  local d = decode_meta(m)
  set_meta(run, id, d)
  if #d.n > 1 then put(k, id .. ':pd', #d.n) end
  if #d.n == 0 then roots[#roots + 1] = { id, d } end
end
evlog = {}
local order = redis.call('HINCRBY', P .. 'ctr', 'sub', 1)
redis.call('ZADD', P .. 'runs', order, run)
for _, lk in ipairs(label_keys) do redis.call('ZADD', lk, order, run) end
live_add[run] = true
ev(run, { 'R', NOW, 0, R_PENDING, 'submitted' }, true)
for _, r in ipairs(roots) do
  local id, d = r[1], r[2]
  if d.ri == 3 then
    skip(run, id, 'every needed step succeeded (run_if: on_failure)', 0)
  else
    open(run, id, d.g, d.q, d.pr, 'root step', 0)
  end
end
maybe_finish(run)
flush()

-- The new run as get_run returns it, from what this call wrote: the caller needs no second round trip.
-- Every field of the hash passed through the write cache; blobs (specs) are left out as get_run does.
local fields, ready = {}, false
for f, v in pairs(vals[k]) do
  if v ~= false and f ~= '_spec' and string.sub(f, -2) ~= ':p' then
    if type(v) == 'number' then
      if v % 1 == 0 then v = nstr(v) else v = string.format('%.17g', v) end
    end
    fields[#fields + 1] = f; fields[#fields + 1] = v
    if v == '2' and string.sub(f, -3) == ':st' then ready = true end
  end
end
local slots, agents = false, false
if ready then
  slots = redis.call('HGETALL', SK)
  agents = {}
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'agents')) do
    agents[#agents + 1] = { id, redis.call('HGETALL', PAG .. id) }
  end
end
return { 1, run, fields, evlog, slots, agents }
