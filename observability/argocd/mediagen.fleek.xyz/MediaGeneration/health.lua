-- Argo CD health check for MediaGeneration (mediagen.fleek.xyz).
--
-- Argo CD runs this with the live object as `obj` (Lua 5.1, gopher-lua). A generation in flight is
-- Progressing (with its phase and progress), one that succeeded is Healthy, one that failed is Degraded.
-- A generation canceled on purpose (spec.cancel, reason Canceled) is Suspended: stopped by request, it will
-- never produce an output, but nothing is broken. Canceled by anything else (e.g. on Replicate) is Degraded.
-- Final phases never change again, so the health of a finished generation is final too.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the mediagen operator to pick it up"
  return hs
end

local phase = status.phase
local reason = status.reason or phase
local detail = status.message or ""

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
    text = text .. " " .. string.format("%d", math.floor(status.progress)) .. "%"
  end
  if status.retries ~= nil and status.retries > 0 then
    text = text .. " (retry " .. string.format("%d", math.floor(status.retries)) .. ")"
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
