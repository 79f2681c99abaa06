-- gauntlet: plan = "ledger.toml"
-- Partition and check for the ledger: split the validators at random (from the seed), check
-- that the supply is conserved and final blocks agree while they are apart, heal, and check
-- that the chain moves again and every node still agrees.
-- The wallets workload of the base plan keeps sending transfers throughout.

sut.wait_ready("all", "20s")
sleep("3s")
check.expect("supply_conserved")
check.expect("final_agreement")

local validators, others = {}, {}
for _, n in ipairs(sut.nodes()) do
  if n:find("validator") then validators[#validators + 1] = n else others[#others + 1] = n end
end
check.assert(#validators == 4, "the plan should have four validators, got " .. #validators)

-- Two rounds: a random split of the validators each time (from the run's seed).
for round = 1, 2 do
  local a, b = {}, {}
  local first = rand(1, #validators)
  for i, v in ipairs(validators) do
    if i == first or (#a < 2 and i ~= first and rand() < 0.5 and #b >= 1) then a[#a + 1] = v else b[#b + 1] = v end
  end
  for _, o in ipairs(others) do b[#b + 1] = o end
  print("round " .. round .. ": " .. table.concat(a, ",") .. " | " .. table.concat(b, ","))
  net.partition({ a, b })
  sleep("4s")
  check.expect("supply_conserved")
  check.expect("final_agreement")
  net.heal()
  check.eventually("height_advances", "20s")
  check.expect("final_agreement")
end
