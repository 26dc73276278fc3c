-- lua/zeke/errors.lua: owns how backend errors and notices reach the user: one clear `vim.notify`
-- per error episode. An episode is keyed by job + kind; it is not repeated until that job succeeds
-- again or 30 s have passed, so a dead provider gives one message, never one per keystroke.
-- `notice` events (a fallback, a budget crossed) are WARN messages, the same text at most once
-- every few seconds.
local M = {}

local uv = vim.uv or vim.loop

M.REPEAT_AFTER_MS = 30000
M.NOTICE_REPEAT_MS = 5000

local shown = {} ---@type table<string, integer> "job:kind" -> uv.now() when last shown
local noticed = {} ---@type table<string, integer> notice text -> uv.now() when last shown

local JOBS = {
  complete = 'completion failed',
  explain = 'explain failed',
  config = 'configuration problem',
  rpc = 'backend error',
  fix = 'fix failed',
  test = 'test failed',
  edit = 'edit failed',
  chat = 'chat failed',
}

-- A job the user asked for by a command: every failure is reported (no episode de-duplication).
local ON_DEMAND = { fix = true, test = true, edit = true, chat = true }

local HINTS = {
  auth = 'check the API key',
  unavailable = 'is the server running?',
  denied = 'the policy (capabilities "fs.write") does not allow patches here; see :h zeke-policy',
}

local WARN_KINDS = { rate_limited = true, overloaded = true, timeout = true, warning = true }

--- Builds the user-facing text of an `error` event.
---@param e table {job, kind, message, status?, provider?, retry_after_ms?}
---@return string
function M.format(e)
  local message = tostring(e.message or 'unknown error')
  if e.job == 'config' then
    if message:find('config', 1, true) then return 'zeke: ' .. message end
    return 'zeke: config: ' .. message
  end
  local what = JOBS[e.job] or tostring(e.job or 'error')
  if e.kind == 'denied' and ON_DEMAND[e.job] then what = e.job .. ' refused' end
  local facts = {}
  if e.provider then facts[#facts + 1] = ('provider %s'):format(tostring(e.provider)) end
  if e.kind and e.kind ~= 'warning' then facts[#facts + 1] = (tostring(e.kind):gsub('_', ' ')) end
  if e.status and not message:find('HTTP ' .. tostring(e.status), 1, true) then
    facts[#facts + 1] = ('HTTP %s'):format(tostring(e.status))
  end
  if e.retry_after_ms then facts[#facts + 1] = ('retry after %d s'):format(math.ceil(e.retry_after_ms / 1000)) end
  local msg = ('zeke: %s'):format(what)
  if #facts > 0 then msg = msg .. ' (' .. table.concat(facts, ', ') .. ')' end
  msg = msg .. ': ' .. message
  local hint = HINTS[e.kind]
  if e.kind == 'unavailable' and e.status then hint = nil end -- it answered, with an error
  if hint and not message:find(hint, 1, true) then msg = msg .. ' — ' .. hint end
  if e.kind == 'auth' or (e.kind == 'unavailable' and not e.status) then msg = msg .. ' (:checkhealth zeke)' end
  return msg
end

--- Shows `e` unless the same episode was shown recently. Returns true when it notified.
---@param e table
---@param level integer|nil
---@return boolean
function M.report(e, level)
  local key = tostring(e.job) .. ':' .. tostring(e.kind)
  local now = uv.now()
  local last = shown[key]
  if last and now - last < M.REPEAT_AFTER_MS then return false end
  shown[key] = now
  level = level or (WARN_KINDS[e.kind] and vim.log.levels.WARN or vim.log.levels.ERROR)
  local text = M.format(e)
  -- Scheduled: an `error` event arrives as an RPC request from the backend, which should get its
  -- reply at once even if the message waits for a hit-enter prompt.
  vim.schedule(function() vim.notify(text, level, { title = 'zeke' }) end)
  return true
end

--- A job succeeded: its next error starts a new episode.
---@param job string
function M.success(job)
  local prefix = job .. ':'
  for key in pairs(shown) do
    if key:sub(1, #prefix) == prefix then shown[key] = nil end
  end
end

--- Handles an `error` event from the backend: routes it to the feature it belongs to, then reports.
---@param e table
function M.on_error(e)
  if e.job == 'complete' then
    require('zeke.inline').on_error(e)
  elseif e.job == 'explain' then
    require('zeke.ui').on_error(e)
  elseif ON_DEMAND[e.job] then
    require('zeke.diff').on_error(e)
    M.success(e.job)
  end
  M.report(e)
end

--- Handles a `notice` event {job, message}: something the user should know that is not an error
--- (a provider failed and the next one took over, a soft budget crossed, a cloud provider skipped
--- for a hard budget). A WARN message prefixed `zeke: `; the same text is not repeated within
--- NOTICE_REPEAT_MS. Returns true when it notified.
---@param p table
---@return boolean
function M.notice(p)
  local message = vim.trim(tostring(p.message or ''))
  if message == '' then return false end
  if not message:find('^zeke:') then message = 'zeke: ' .. message end
  local now = uv.now()
  for text, at in pairs(noticed) do
    if now - at >= M.NOTICE_REPEAT_MS then noticed[text] = nil end
  end
  if noticed[message] then return false end
  noticed[message] = now
  -- Scheduled, as in report(): the event's RPC call returns at once; a notification never takes
  -- the cursor or the focus from the window the user types in.
  vim.schedule(function() vim.notify(message, vim.log.levels.WARN, { title = 'zeke' }) end)
  return true
end

--- Forgets every episode (tests, :Zeke restart).
function M.reset()
  shown = {}
  noticed = {}
end

return M
