-- lua/zeke/review/request.lua: owns starting `:Zeke fix` / `:Zeke test`: what is sent (the range
-- or cursor, the diagnostics overlapping it, the project root, the test file's buffer, the reason
-- of the last denial), the requests in flight and the model's progress in the command line, and
-- matching the `patch` event that answers a request to it before the review takes it in.
-- Invariants: requests go as notifications (never a blocking model call); a denial reason is sent
-- once; a request whose buffer was wiped, or that `:Zeke stop` cancelled, never opens a review.
local config = require('zeke.config')
local rpc = require('zeke.rpc')
local store = require('zeke.review.store')
local review = require('zeke.review')
local window = require('zeke.review.window')

local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

---@class zeke.Request
---@field id integer
---@field job string "fix" | "test"
---@field src integer buffer the command ran in
---@field target integer buffer the patch will be for
---@field chars integer characters the model sent so far
---@field t0 integer
---@field params table what was sent

local requests = {} ---@type table<integer, zeke.Request>

-- The jobs whose `patch` events answer a request made here (others come from other sources).
local JOBS = { fix = true, test = true, edit = true }

local function provider_name()
  local p = config.get().fix and config.get().fix.provider
  if p then return p end
  local info = rpc.info().provider
  return info and info.name or 'the model'
end

local SEVERITY = { 'ERROR', 'WARN', 'INFO', 'HINT' }

--- The diagnostics of `buf` overlapping rows s..e (0-based, inclusive), as the protocol wants them.
---@return table[]
function M.diagnostics(buf, s, e)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    local dl, de = d.lnum or 0, d.end_lnum or d.lnum or 0
    if de >= s and dl <= e then
      out[#out + 1] = {
        lnum = dl, end_lnum = de, col = d.col or 0,
        severity = SEVERITY[d.severity] or tostring(d.severity or 'ERROR'),
        message = tostring(d.message or ''), source = d.source,
      }
    end
  end
  return out
end

---@return string
function M.root(buf) return store.root(buf) end

local function echo_progress(req)
  local what = req.job == 'test' and 'tests' or 'fix'
  local msg = ('zeke: %s · asking %s… %d chars'):format(what, provider_name(), req.chars)
  pcall(api.nvim_echo, { { msg, 'Comment' } }, false, {})
end

local function clear_echo() pcall(api.nvim_echo, { { '' } }, false, {}) end

local function check_range(range)
  config.check_arg('range', range, 'table', true)
  if range and (type(range[1]) ~= 'number' or type(range[2]) ~= 'number') then
    error('zeke: range must be {start_row, end_row} (0-based, end inclusive)', 3)
  end
end

--- Run from the review window, `:Zeke fix` / `:Zeke test` are about the proposal's buffer: go to
--- its window first. Returns false when there is none to go to.
local function leave_review()
  local inside, p = window.in_review()
  if not inside then return true end
  if p and p.win and api.nvim_win_is_valid(p.win) and api.nvim_win_get_buf(p.win) == p.src then
    api.nvim_set_current_win(p.win)
    return true
  end
  store.notify('zeke: run this in the buffer to fix, not in the review window', vim.log.levels.WARN)
  return false
end

local function base_params(id, src, range)
  local pos = api.nvim_win_get_cursor(0)
  return {
    id = id, buf = src, tick = api.nvim_buf_get_changedtick(src), row = pos[1] - 1, col = pos[2],
    range = range, filetype = vim.bo[src].filetype, path = api.nvim_buf_get_name(src), root = M.root(src),
  }
end

local function send(job, params, src, target)
  requests[params.id] = {
    id = params.id, job = job, src = src, target = target, chars = 0, t0 = uv.hrtime(), params = params,
  }
  store.last.params = params
  store.watch(src)
  store.watch(target)
  rpc.notify(job, params)
  echo_progress(requests[params.id])
  return params.id
end

--- `:Zeke edit [instruction]`: ask for a patch rewriting `range` (or the function at the cursor) as
--- `instruction` says; without one, the user is asked for it (vim.ui.input). Reviewed like fix.
---@param range integer[]|nil
---@param instruction string|nil
---@return integer|nil request id (nil when cancelled or nothing to do)
function M.edit(range, instruction)
  check_range(range)
  if not leave_review() then return nil end
  local src = api.nvim_get_current_buf()
  local function go(text)
    if not text or vim.trim(text) == '' then return nil end
    if not rpc.ensure() then return nil end
    rpc.attach(src)
    local params = base_params(rpc.next_id(), src, range)
    params.instruction = text
    params.reason = store.take_reason(src)
    return send('edit', params, src, src)
  end
  if instruction and vim.trim(instruction) ~= '' then return go(instruction) end
  local id
  vim.ui.input({ prompt = 'Zeke edit: ' }, function(text) id = go(text) end)
  return id
end

--- `:Zeke fix`: ask for a patch fixing `range` ({start_row, end_row}, 0-based, end inclusive) or,
--- without one, the function / diagnostic at the cursor.
---@param range integer[]|nil
---@return integer|nil request id
function M.fix(range)
  check_range(range)
  if not leave_review() then return nil end
  local src = api.nvim_get_current_buf()
  if not rpc.ensure() then return nil end
  rpc.attach(src)
  local row = api.nvim_win_get_cursor(0)[1] - 1
  local s, e = row, row
  if range then s, e = range[1], range[2] end
  local params = base_params(rpc.next_id(), src, range)
  params.diagnostics = M.diagnostics(src, s, e) -- an empty Lua table goes as an empty array
  params.reason = store.take_reason(src)
  return send('fix', params, src, src)
end

local function invalid(message)
  require('zeke.errors').report({ job = 'test', kind = 'invalid', message = message })
  return nil
end

--- `:Zeke test`: ask for tests of the function at the cursor (or `range`), placed where the
--- language expects them: the same file (Rust) or a test file loaded into a buffer, unsaved.
---@param range integer[]|nil
---@return integer|nil request id
function M.test(range)
  check_range(range)
  if not leave_review() then return nil end
  local src = api.nvim_get_current_buf()
  if not rpc.ensure() then return nil end
  rpc.attach(src)
  local path = api.nvim_buf_get_name(src)
  local tt, err = rpc.request('test_target', { path = path, filetype = vim.bo[src].filetype })
  if not tt then return invalid(tostring(err)) end
  local params = base_params(rpc.next_id(), src, range)
  local target = src
  if tt.same_file == false then
    if path == '' then
      return invalid('this buffer has no file name: save it first (the test file is named after it)')
    end
    if type(tt.path) ~= 'string' or tt.path == '' then return invalid('the backend named no test file') end
    local tpath = vim.fn.fnamemodify(tt.path, ':p')
    target = vim.fn.bufadd(tpath)
    vim.fn.bufload(target) -- an empty buffer when the file does not exist yet; nothing is written
    rpc.attach(target)
    params.target_buf = target
  end
  return send('test', params, src, target)
end

-- Events ------------------------------------------------------------------------------------

--- A `progress` event: {id, job, chars}.
function M.on_progress(p)
  local req = requests[p.id]
  if not req then return end
  req.chars = tonumber(p.chars) or req.chars
  echo_progress(req)
end

local function handle_patch(ev)
  -- another source's proposal (the chat agent's): no request of ours answered by it
  if ev.job ~= nil and not JOBS[ev.job] then return review.propose(review.proposal(ev)) end
  local req = requests[ev.id]
  requests[ev.id] = nil
  clear_echo()
  local p = review.proposal(ev, req)
  if not req then -- cancelled (:Zeke stop, a wiped buffer) or from before a restart
    require('zeke.review.apply').resolve(p, 'deny', { reason = 'cancelled' })
    return
  end
  if #p.hunks > 0 then
    -- a note on an answer asked for by a command (say, cut at max_answer_kb) is also a warning
    if p.note then store.notify(('zeke: %s: %s'):format(p.job, p.note), vim.log.levels.WARN) end
    require('zeke.errors').success(p.job)
  end
  review.propose(p)
end

--- A `patch` event (see doc/rpc.md). Scheduled: handling it makes requests to the backend, which
--- must not wait inside its own call to us.
function M.on_patch(ev)
  if requests[ev.id] then requests[ev.id].answered = true end
  vim.schedule(function()
    local ok, err = pcall(handle_patch, ev)
    if not ok then store.notify('zeke: internal error handling a patch: ' .. tostring(err), vim.log.levels.ERROR) end
  end)
end

--- An `error` event for a fix/test request: forget the request (the message is errors.lua's).
function M.on_error(e)
  if e.id ~= nil then
    if requests[e.id] then
      requests[e.id] = nil
      clear_echo()
    end
  else
    requests = {}
  end
end

--- `:Zeke stop`: the requests in flight are cancelled (the backend was told).
function M.on_stop()
  if next(requests) ~= nil then
    requests = {}
    clear_echo()
  end
end

--- The backend exited or restarted: it forgot its requests.
function M.reset() requests = {} end

-- A wiped buffer cancels the requests made from it or for it.
store.on_wipe(function(buf)
  local dropped = false
  for id, r in pairs(requests) do
    if r.src == buf or r.target == buf then
      requests[id] = nil
      rpc.notify('cancel', { id = id })
      dropped = true
    end
  end
  if dropped then clear_echo() end
end)

--- The requests in flight, for tests and :Zeke status.
---@return table[]
function M.debug_state()
  local out = {}
  for id, r in pairs(requests) do
    out[#out + 1] = { id = id, job = r.job, chars = r.chars, src = r.src, target = r.target }
  end
  return out
end

return M
