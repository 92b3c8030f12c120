-- Argo CD health of an mltrl.dev LevelReview (Lua 5.1, as Argo CD's gopher-lua runs it).
--
--   no status yet            Progressing
--   Pending                  Progressing (the message lists what is unmet)
--   Approved                 Progressing (the operator applies it next)
--   Applied                  Healthy
--   Rejected, Invalid        Degraded
--   Superseded               Suspended (the technology moved on; nothing left to do)
local hs = {}

local function result(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local function present(text)
  return text ~= nil and text ~= ""
end

local status = obj.status
if status == nil or status.phase == nil then
  return result("Progressing", "Waiting for the operator")
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  return result("Progressing", "Waiting for the operator to evaluate generation " .. generation)
end

local phase = status.phase
local message = phase
if present(status.message) then
  message = phase .. ": " .. status.message
end

if phase == "Pending" then
  if status.unmet ~= nil and #status.unmet > 0 then
    return result("Progressing", "Pending: " .. table.concat(status.unmet, "; "))
  end
  return result("Progressing", message)
end
if phase == "Approved" then
  return result("Progressing", message)
end
if phase == "Applied" then
  return result("Healthy", message)
end
if phase == "Rejected" or phase == "Invalid" then
  return result("Degraded", message)
end
if phase == "Superseded" then
  return result("Suspended", message)
end
return result("Unknown", "Unknown phase " .. phase)
