-- gauntlet: plan = "raft-kv.toml"
-- A rolling upgrade of raft-kv from v1 to v2 (a new log layout), one replica at a time,
-- checking after each step that every value written before the upgrade reads back the same
-- and that the history so far is linearizable. With --bug upgrade-field-order, v2 migrates the
-- v1 log with its own layout and the data check fails at the step that exposes it.

sut.wait_ready("all", "10s")

-- Seed data: one value per key, written and acknowledged under v1.
local expected = {}
for i = 0, 2 do
  local key = "k" .. i
  local value = rand(0, 4)
  local r = client.op("put", { key = key, value = value })
  check.assert(r.ok, "seeding " .. key .. " failed: " .. r.status .. " " .. r.value)
  expected[key] = tostring(value)
end

-- A read, retried while the cluster elects a leader (an answer of fail or info is not data).
local function read(key)
  local r
  for _ = 1, 10 do
    r = client.op("get", { key = key })
    if r.ok then return r.value end
    sleep("200ms")
  end
  error("reading " .. key .. " failed ten times: " .. r.status .. " " .. r.value)
end

-- Reads every key, judges the history so far (reads included) by linearizability, then
-- compares the values with what was written.
local function check_data(step)
  local got = {}
  for key in pairs(expected) do got[key] = read(key) end
  check.expect("linearizable")
  for key, want in pairs(expected) do
    check.assert(got[key] == want, step .. ": " .. key .. " reads " .. got[key] .. ", expected " .. want)
  end
end

check_data("before the upgrade")
for _, node in ipairs(sut.nodes()) do
  sut.upgrade(node, "v2")
  sut.wait_ready(node, "10s")
  print(node .. " runs " .. sut.status(node).version .. "; leader " .. tostring(sut.leader()))
  check_data("after upgrading " .. node)
end
