-- Argo CD health check for MediaGeneration (mediagen.fleek.xyz).
--
-- Argo CD runs this with the live object as `obj` (Lua 5.1, gopher-lua). A generation in flight is
-- Progressing (with its phase and progress), one that succeeded is Healthy, one that failed is Degraded.
-- A generation canceled on purpose (spec.cancel, reason Canceled) is Suspended: stopped by request, it will
-- never produce an output, but nothing is broken. Canceled by anything else (e.g. on Replicate) is Degraded.
-- A status older than the spec (status.observedGeneration below metadata.generation) is Progressing until the
-- operator has acted on the change.
--
-- Only Lua's base library is used (no string.format, no math): Argo CD opens the other libraries for a
-- customization in argocd-cm only when resource.customizations.useOpenLibs.<group_kind> is true.
local hs = {}

-- A whole number as text: JSON numbers reach gopher-lua as floats, and tostring(42.0) is "42" there.
local function whole(n)
  return tostring(n - n % 1)
end

local status = obj.status
if type(status) ~= "table" or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the mediagen operator to pick it up"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = status.observedGeneration
if type(generation) == "number" and type(observed) == "number" and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the mediagen operator to act on generation " .. whole(generation) ..
    " (the status is of generation " .. whole(observed) .. ")"
  return hs
end

local phase = status.phase
local reason = status.reason
if type(reason) ~= "string" or reason == "" then
  reason = tostring(phase)
end
local detail = status.message
if type(detail) ~= "string" then
  detail = ""
end

local function describe(prefix)
  if detail ~= "" then
    return prefix .. ": " .. detail
  end
  return prefix
end

if phase == "Pending" or phase == "Running" or phase == "Uploading" then
  hs.status = "Progressing"
  local text = phase
  if type(status.progress) == "number" then
    text = text .. " " .. whole(status.progress) .. "%"
  end
  if type(status.retries) == "number" and status.retries > 0 then
    text = text .. " (retry " .. whole(status.retries) .. ")"
  end
  hs.message = describe(text)
elseif phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = describe("Succeeded")
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = describe("Failed (" .. reason .. ")")
elseif phase == "Canceled" then
  if reason == "Canceled" then
    hs.status = "Suspended"
  else
    hs.status = "Degraded"
  end
  hs.message = describe("Canceled (" .. reason .. ")")
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
