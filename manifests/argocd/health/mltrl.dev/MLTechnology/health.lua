-- Argo CD health of an mltrl.dev MLTechnology (Lua 5.1, as Argo CD's gopher-lua runs it).
--
--   no status yet                                     Progressing
--   status older than the spec (observedGeneration)   Progressing
--   spec invalid (Ready=False, ValidationFailed)      Degraded
--   Degraded=True (served below the required level)   Degraded
--   serving stopped by the operator                   Degraded
--   last level change: a switchback by an alert       Degraded (until a review promotes it)
--   below spec.targetLevel                            Progressing
--   at target, InferenceService not ready yet         Progressing
--   at target, but serving needs a higher level       Degraded
--   at target, serving or nothing to serve            Healthy
local hs = {}

local function result(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local function condition(status, conditionType)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function present(text)
  return text ~= nil and text ~= ""
end

local function describe(level, name)
  if present(name) then
    return "level " .. level .. " (" .. name .. ")"
  end
  return "level " .. level
end

local status = obj.status
if status == nil or status.level == nil then
  return result("Progressing", "Waiting for the operator")
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  return result("Progressing", "Waiting for the operator to observe generation " .. generation)
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "False" and ready.reason == "ValidationFailed" then
  if present(ready.message) then
    return result("Degraded", ready.message)
  end
  return result("Degraded", "The spec breaks a rule")
end

local degraded = condition(status, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  if present(degraded.message) then
    return result("Degraded", degraded.message)
  end
  return result("Degraded", degraded.reason)
end

local serving = status.serving
local state = nil
if serving ~= nil then
  state = serving.state
end
local isvc = "the InferenceService"
if serving ~= nil and present(serving.inferenceService) then
  isvc = "InferenceService " .. serving.inferenceService
end

if state == "Degraded" then
  return result("Degraded", "Kept serving below the required level")
end

if state == "Stopped" then
  local servingCondition = condition(status, "Serving")
  if servingCondition ~= nil and present(servingCondition.message) then
    return result("Degraded", servingCondition.message)
  end
  return result("Degraded", "The operator stopped " .. isvc)
end

if status.history ~= nil then
  local last = status.history[#status.history]
  if last ~= nil and last.kind == "switchback" and present(last.alert) then
    local message = "Switched back from level " .. (last.from or "?") .. " to level " .. last.to
      .. " by alert " .. last.alert
    if present(last.reason) then
      message = message .. ": " .. last.reason
    end
    return result("Degraded", message)
  end
end

local here = "L" .. string.sub(describe(status.level, status.levelName), 2)
local target = 9
if obj.spec ~= nil and obj.spec.targetLevel ~= nil then
  target = obj.spec.targetLevel
end
local level = status.level
if status.effectiveLevel ~= nil then
  level = status.effectiveLevel
end

local atTarget = level >= target
if ready ~= nil then
  atTarget = ready.status == "True"
end

if not atTarget then
  local message = here .. ", target " .. target
  if ready ~= nil and (ready.reason == "ComponentMissing" or ready.reason == "ComponentBelowLevel")
      and present(ready.message) then
    message = message .. ": " .. ready.message
  elseif status.nextLevel ~= nil then
    message = message .. "; next: a review to " .. describe(status.nextLevel.level, status.nextLevel.name)
  end
  return result("Progressing", message)
end

if state == "Pending" or (state == "Serving" and serving.ready == false) then
  return result("Progressing", here .. ", at target; waiting for " .. isvc .. " to become ready")
end

if state == "Blocked" then
  local message = here .. " is the target, but serving requires a higher level"
  if serving.requiredLevel ~= nil then
    message = here .. " is the target, but serving requires level " .. serving.requiredLevel
  end
  return result("Degraded", message)
end

if state == "Serving" and present(serving.modelVersion) then
  return result("Healthy", here .. ", at target; serving model version " .. serving.modelVersion)
end
return result("Healthy", here .. ", at target")
