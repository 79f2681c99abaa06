-- gauntlet: plan = "raft-kv.toml"
-- The leader-kill loop: write, kill whoever leads, write again through the new leader, bring
-- the old one back, five times; the history is checked for linearizability after every round
-- and at the end, and every round must elect a new leader within five seconds.

sut.wait_ready("all", "10s")

local function write(key, value)
  for _ = 1, 20 do
    local r = client.op("put", { key = key, value = value })
    if r.ok then return end
    sleep("250ms")
  end
  error("put " .. key .. "=" .. value .. " never succeeded")
end

local function wait_leader(not_this, timeout)
  local deadline = now() + timeout
  while now() < deadline do
    local l = sut.leader()
    if l ~= nil and l ~= not_this then return l end
    sleep("100ms")
  end
  check.assert(false, "no new leader within " .. timeout .. "s of killing " .. tostring(not_this))
end

for round = 1, 5 do
  local key = "k" .. (round % 3)
  write(key, rand(0, 4))
  local leader = wait_leader(nil, 5)
  sut.kill(leader)
  local next = wait_leader(leader, 5)
  print("round " .. round .. ": killed " .. leader .. ", " .. next .. " leads")
  write(key, rand(0, 4))
  sut.start(leader)
  sut.wait_ready(leader, "10s")
  check.expect("linearizable")
end
