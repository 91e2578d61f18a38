-- agent_state: disconnect and drain flip the agent's state in one step that a concurrent claim sees whole.
-- ARGV: 3 agent id, 4 new state (2 draining, 3 disconnected), 5 session id (disconnect: the session whose stream ended).
local agent, to = ARGV[3], tonumber(ARGV[4])
local AK = P .. 'ag:' .. agent
if redis.call('EXISTS', AK) == 0 then
  if to == 3 then return { 'OK' } end
  return err('NotFound', REASON.AGENT_NOT_FOUND, "agent '" .. agent .. "' not found; ListAgents shows the known agents")
end
-- A stream that ends after the agent reconnected (here or on another replica) belongs to an older session: no change.
if to == 3 and get(AK, 'sid') ~= ARGV[5] then return { 'OK' } end
local st = num(get(AK, 'st'))
if to == 3 or st == 1 then put(AK, 'st', to) end
if to == 2 then signal.d[#signal.d + 1] = agent end
flush()
return { 'OK' }
