-- lua/zeke/diff.lua: owns `:Zeke fix` / `:Zeke test` on the Lua side: sending the request (with
-- the diagnostics, the project root and the reason of the last denial), showing the model's
-- progress, the review window of a proposed patch (per-hunk toggles, Allow once / Allow all /
-- Deny), applying the accepted hunks as ONE undo step, and reporting the outcome (`resolve`).
-- Invariants: nothing is applied before the user (or a policy rule) allowed it; a patch is applied
-- whole or not at all, only at the `changedtick` the backend computed the edits for, and never
-- written to disk; at most one pending proposal per buffer (a new one supersedes the old) and one
-- review window.
local config = require('zeke.config')
local rpc = require('zeke.rpc')

local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

M.ns = api.nvim_create_namespace('zeke.diff')
M.ns_inline = api.nvim_create_namespace('zeke.diff.inline')

local SCOPES = { 'session', 'project' }

---@class zeke.Request
---@field id integer
---@field job string "fix" | "test"
---@field src integer buffer the command ran in
---@field target integer buffer the patch will be for
---@field chars integer characters the model sent so far
---@field t0 integer
---@field params table what was sent

---@class zeke.Proposal
---@field patch any backend id for apply/resolve
---@field id integer request id
---@field job string
---@field buf integer buffer the hunks apply to
---@field src integer buffer the command ran in
---@field path string
---@field tick integer
---@field hunks {start: integer, old: string[], new: string[]}[]
---@field accepted boolean[]
---@field provider string|nil
---@field model string|nil
---@field decision string
---@field rule string|nil
---@field note string|nil
---@field win integer|nil window the command ran in

local requests = {} ---@type table<integer, zeke.Request>
local pending = {} ---@type table<integer, zeke.Proposal> by buffer the patch applies to
local reasons = {} ---@type table<integer, string> denial reason to send with the next fix, by buffer
local last = { params = nil, outcome = nil } -- for tests and :Zeke status
local R = nil ---@type {win: integer, buf: integer, key: integer, hunk_rows: integer[], hunk_ends: integer[]}|nil

local function notify(msg, level) vim.notify(msg, level or vim.log.levels.INFO, { title = 'zeke' }) end

local function short(path)
  if not path or path == '' then return '[No Name]' end
  return vim.fn.fnamemodify(path, ':~:.')
end

local function provider_name()
  local p = config.get().fix and config.get().fix.provider
  if p then return p end
  local info = rpc.info().provider
  return info and info.name or 'the model'
end

-- Request ------------------------------------------------------------------------------------

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
function M.root(buf)
  local ok, root = pcall(vim.fs.root, buf, { '.git' })
  if ok and root then return root end
  return uv.cwd()
end

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

local function is_review_buf(buf) return R ~= nil and R.buf == buf end

--- Run from the review window, `:Zeke fix` / `:Zeke test` are about the proposal's buffer: go to
--- its window first. Returns false when there is none to go to.
local function leave_review()
  if not (R and is_review_buf(api.nvim_get_current_buf())) then return true end
  local p = pending[R.key]
  if p and p.win and api.nvim_win_is_valid(p.win) and api.nvim_win_get_buf(p.win) == p.src then
    api.nvim_set_current_win(p.win)
    return true
  end
  notify('zeke: run this in the buffer to fix, not in the review window', vim.log.levels.WARN)
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
  last.params = params
  rpc.notify(job, params)
  echo_progress(requests[params.id])
  return params.id
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
  if reasons[src] then
    params.reason = reasons[src]
    reasons[src] = nil
  end
  return send('fix', params, src, src)
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
  if not tt then
    require('zeke.errors').report({ job = 'test', kind = 'invalid', message = tostring(err) })
    return nil
  end
  local params = base_params(rpc.next_id(), src, range)
  local target = src
  if tt.same_file == false then
    if path == '' then
      require('zeke.errors').report({ job = 'test', kind = 'invalid',
        message = 'this buffer has no file name: save it first (the test file is named after it)' })
      return nil
    end
    if type(tt.path) ~= 'string' or tt.path == '' then
      require('zeke.errors').report({ job = 'test', kind = 'invalid', message = 'the backend named no test file' })
      return nil
    end
    local tpath = vim.fn.fnamemodify(tt.path, ':p')
    target = vim.fn.bufadd(tpath)
    vim.fn.bufload(target) -- an empty buffer when the file does not exist yet; nothing is written
    rpc.attach(target)
    params.target_buf = target
  end
  return send('test', params, src, target)
end

-- Finding a proposal ------------------------------------------------------------------------

--- The pending proposal `:Zeke allow/deny/review` act on: the one shown in the review window when
--- run from it, else the current buffer's (as target or as the buffer the command ran in), else the
--- only one pending.
---@return zeke.Proposal|nil
local function find(buf)
  buf = buf or api.nvim_get_current_buf()
  if is_review_buf(buf) and pending[R.key] then return pending[R.key] end
  if pending[buf] then return pending[buf] end
  local only, n = nil, 0
  for _, p in pairs(pending) do
    if p.src == buf then return p end
    only, n = p, n + 1
  end
  if n == 1 then return only end
  return nil
end

-- Review window -----------------------------------------------------------------------------

local function title(p)
  local parts = { 'Zeke ' .. p.job, short(p.path) }
  if p.provider then parts[#parts + 1] = tostring(p.provider) end
  if p.model then parts[#parts + 1] = tostring(p.model) end
  return table.concat(parts, ' · ')
end

local HELP = '<Space> toggle hunk · ]h [h next/prev · a allow once · A allow all · d deny · q close'

--- The review buffer's lines and highlights for `p`.
local function render(p)
  local lines, hls = {}, {}
  local hunk_rows, hunk_ends = {}, {}
  local function add(text, hl)
    lines[#lines + 1] = text
    if hl then hls[#hls + 1] = { #lines - 1, hl } end
  end
  add(title(p), 'ZekeDiffTitle')
  add(HELP, 'Comment')
  if p.note then add('note: ' .. p.note, 'WarningMsg') end
  local n_acc = 0
  for _, a in ipairs(p.accepted) do
    if a then n_acc = n_acc + 1 end
  end
  add(('%d hunk%s, %d accepted'):format(#p.hunks, #p.hunks == 1 and '' or 's', n_acc), 'Comment')
  local same_tick = api.nvim_buf_is_valid(p.buf) and api.nvim_buf_get_changedtick(p.buf) == p.tick
  local offset = 0
  for i, h in ipairs(p.hunks) do
    add('')
    local no, nn = #h.old, #h.new
    local os_ = no == 0 and h.start or h.start + 1
    local ns_ = nn == 0 and h.start + offset or h.start + offset + 1
    offset = offset + nn - no
    local on = p.accepted[i]
    add(('%s hunk %d/%d  @@ -%d,%d +%d,%d @@'):format(on and '[x]' or '[ ]', i, #p.hunks, os_, no, ns_, nn),
      on and 'ZekeDiffHeader' or 'ZekeDiffOff')
    hunk_rows[i] = #lines -- 1-based line of the header
    local ctx = {}
    if same_tick and h.start > 0 then
      ctx = api.nvim_buf_get_lines(p.buf, math.max(0, h.start - 2), h.start, false)
    end
    for _, l in ipairs(ctx) do add('  ' .. l, 'ZekeDiffContext') end
    for _, l in ipairs(h.old) do add('-' .. l, on and 'ZekeDiffDelete' or 'ZekeDiffOff') end
    for _, l in ipairs(h.new) do add('+' .. l, on and 'ZekeDiffAdd' or 'ZekeDiffOff') end
    if same_tick then
      local after = api.nvim_buf_get_lines(p.buf, h.start + no, h.start + no + 2, false)
      for _, l in ipairs(after) do add('  ' .. l, 'ZekeDiffContext') end
    end
    hunk_ends[i] = #lines
  end
  return lines, hls, hunk_rows, hunk_ends
end

--- Shows the accepted hunks inline in their buffer too: old lines highlighted as deleted, new
--- lines as virtual lines below them. Only while the buffer is as the patch was made for.
local function preview(p)
  if not api.nvim_buf_is_valid(p.buf) then return end
  api.nvim_buf_clear_namespace(p.buf, M.ns_inline, 0, -1)
  if pending[p.buf] ~= p or api.nvim_buf_get_changedtick(p.buf) ~= p.tick then return end
  local n = api.nvim_buf_line_count(p.buf)
  for i, h in ipairs(p.hunks) do
    if p.accepted[i] then
      local virt = {}
      for _, l in ipairs(h.new) do virt[#virt + 1] = { { '+' .. l, 'ZekeDiffAdd' } } end
      if #h.old > 0 and h.start + #h.old <= n then
        for r = h.start, h.start + #h.old - 1 do
          pcall(api.nvim_buf_set_extmark, p.buf, M.ns_inline, r, 0, { line_hl_group = 'ZekeDiffDelete' })
        end
      end
      if #virt > 0 then
        local row, above = h.start + #h.old - 1, false
        if #h.old == 0 then row, above = h.start, true end
        if row >= n then row, above = n - 1, false end
        if row < 0 then row, above = 0, true end
        pcall(api.nvim_buf_set_extmark, p.buf, M.ns_inline, row, 0, { virt_lines = virt, virt_lines_above = above })
      end
    end
  end
end

local function clear_preview(p)
  if api.nvim_buf_is_valid(p.buf) then api.nvim_buf_clear_namespace(p.buf, M.ns_inline, 0, -1) end
end

local function redraw()
  if not R or not api.nvim_buf_is_valid(R.buf) then return end
  local p = pending[R.key]
  if not p then return end
  preview(p)
  local lines, hls, rows, ends = render(p)
  vim.bo[R.buf].modifiable = true
  api.nvim_buf_set_lines(R.buf, 0, -1, false, lines)
  vim.bo[R.buf].modifiable = false
  api.nvim_buf_clear_namespace(R.buf, M.ns, 0, -1)
  for _, h in ipairs(hls) do
    api.nvim_buf_set_extmark(R.buf, M.ns, h[1], 0, { end_row = h[1] + 1, hl_group = h[2], hl_eol = true })
  end
  R.hunk_rows, R.hunk_ends = rows, ends
  if api.nvim_win_is_valid(R.win) then
    vim.wo[R.win].winbar = ' ' .. title(p):gsub('%%', '%%%%')
  end
end

--- The hunk (1-based) under the cursor of the review window, or the nearest one above it.
local function hunk_at_cursor()
  if not R or not api.nvim_win_is_valid(R.win) then return nil end
  local line = api.nvim_win_get_cursor(R.win)[1]
  local found = nil
  for i, row in ipairs(R.hunk_rows) do
    if row <= line then found = i end
  end
  return found or (#R.hunk_rows > 0 and 1 or nil)
end

local function jump(dir)
  if not R or not api.nvim_win_is_valid(R.win) then return end
  local line = api.nvim_win_get_cursor(R.win)[1]
  local rows = R.hunk_rows
  local target = nil
  if dir > 0 then
    for _, row in ipairs(rows) do
      if row > line then target = row break end
    end
  else
    for i = #rows, 1, -1 do
      if rows[i] < line then target = rows[i] break end
    end
  end
  if target then api.nvim_win_set_cursor(R.win, { target, 0 }) end
end

--- Closes the review window; the proposal stays pending.
function M.close()
  local r = R
  if not r then return end
  R = nil
  if api.nvim_win_is_valid(r.win) then
    local cur = api.nvim_get_current_win() == r.win
    local p = pending[r.key]
    pcall(api.nvim_win_close, r.win, true)
    if cur and p and p.win and api.nvim_win_is_valid(p.win) then pcall(api.nvim_set_current_win, p.win) end
  end
end

local function set_keys(buf)
  local function map(lhs, fn, desc) vim.keymap.set('n', lhs, fn, { buffer = buf, nowait = true, desc = 'Zeke review: ' .. desc }) end
  map(']h', function() jump(1) end, 'next hunk')
  map('[h', function() jump(-1) end, 'previous hunk')
  local function toggle_here()
    local i = hunk_at_cursor()
    if i then M.toggle(i) end
  end
  map('<Space>', toggle_here, 'toggle the hunk under the cursor')
  map('t', toggle_here, 'toggle the hunk under the cursor')
  map('a', function() M.allow() end, 'Allow once (apply the accepted hunks)')
  map('A', function() M.allow_all() end, 'Allow all (apply, and auto-approve later proposals in a scope)')
  map('d', function()
    vim.ui.input({ prompt = 'Deny; reason for the model (optional): ' }, function(reason)
      if reason == nil then return end -- cancelled
      M.deny(reason)
    end)
  end, 'Deny (optional reason)')
  map('q', function()
    M.close()
    notify('zeke: proposal kept; :Zeke review reopens it, :Zeke allow / :Zeke deny answer it')
  end, 'close (the proposal stays pending)')
  map('<CR>', function()
    local i = hunk_at_cursor()
    local p = R and pending[R.key]
    if not (i and p) then return end
    for _, w in ipairs(api.nvim_list_wins()) do
      if api.nvim_win_get_buf(w) == p.buf then
        api.nvim_set_current_win(w)
        pcall(api.nvim_win_set_cursor, w, { p.hunks[i].start + 1, 0 })
        return
      end
    end
  end, 'go to the hunk in its buffer')
end

--- Opens (or refreshes) the review window for `p`. `focus`: move the cursor into it.
local function open(p, focus)
  if R and pending[R.key] ~= p then M.close() end
  if not R then
    local buf = api.nvim_create_buf(false, true)
    vim.bo[buf].bufhidden = 'wipe'
    vim.bo[buf].filetype = 'zeke-review'
    pcall(api.nvim_buf_set_name, buf, ('zeke://review/%s'):format(tostring(p.patch)))
    local lines = render(p)
    local height = math.max(6, math.min(#lines + 1, math.floor(vim.o.lines * 0.45)))
    local win = api.nvim_open_win(buf, false, { split = 'below', win = -1, height = height })
    vim.wo[win].number, vim.wo[win].relativenumber, vim.wo[win].signcolumn = false, false, 'no'
    vim.wo[win].cursorline, vim.wo[win].wrap, vim.wo[win].winfixheight = true, false, true
    vim.wo[win].foldenable = false
    R = { win = win, buf = buf, key = p.buf, hunk_rows = {}, hunk_ends = {} }
    set_keys(buf)
    api.nvim_create_autocmd('WinClosed', {
      pattern = tostring(win),
      once = true,
      callback = function()
        if R and R.win == win then R = nil end
      end,
    })
  end
  redraw()
  if R.hunk_rows[1] and api.nvim_win_is_valid(R.win) then pcall(api.nvim_win_set_cursor, R.win, { R.hunk_rows[1], 0 }) end
  if focus and api.nvim_win_is_valid(R.win) then api.nvim_set_current_win(R.win) end
end

--- `:Zeke review`: (re)opens the review window of the pending proposal.
---@return boolean
function M.review()
  local p = find()
  if not p then
    notify('zeke: no proposal pending here', vim.log.levels.WARN)
    return false
  end
  open(p, true)
  return true
end

--- Marks hunk `i` (1-based) accepted or not; `value` nil flips it. Returns the new state.
---@param i integer
---@param value boolean|nil
---@return boolean|nil
function M.toggle(i, value)
  config.check_arg('i', i, 'number')
  local p = (R and pending[R.key]) or find()
  if not p or not p.hunks[i] then return nil end
  if value == nil then value = not p.accepted[i] end
  p.accepted[i] = value and true or false
  if R and pending[R.key] == p then
    local cur = api.nvim_win_is_valid(R.win) and api.nvim_win_get_cursor(R.win)
    redraw()
    if cur then pcall(api.nvim_win_set_cursor, R.win, cur) end
  end
  return p.accepted[i]
end

-- Applying ----------------------------------------------------------------------------------

local function line_len(buf, row) return #(api.nvim_buf_get_lines(buf, row, row + 1, true)[1]) end

--- Applies one line edit (rows start..end, end exclusive, become `lines`) with nvim_buf_set_text.
local function apply_edit(buf, e)
  local s, t, lines = e.start, e['end'], e.lines
  local n = api.nvim_buf_line_count(buf)
  local empty = n == 1 and line_len(buf, 0) == 0
  if #lines == 0 then
    if s == t then return end
    if t < n then
      api.nvim_buf_set_text(buf, s, 0, t, 0, {})
    elseif s > 0 then -- up to the last line: also remove the line break before it
      api.nvim_buf_set_text(buf, s - 1, line_len(buf, s - 1), n - 1, line_len(buf, n - 1), {})
    else -- the whole buffer
      api.nvim_buf_set_text(buf, 0, 0, n - 1, line_len(buf, n - 1), { '' })
    end
  elseif s == t then -- insertion before row s
    if empty then
      api.nvim_buf_set_text(buf, 0, 0, 0, 0, lines)
    elseif s < n then
      local l = vim.list_extend(vim.deepcopy(lines), { '' })
      api.nvim_buf_set_text(buf, s, 0, s, 0, l)
    else -- after the last line
      api.nvim_buf_set_text(buf, n - 1, line_len(buf, n - 1), n - 1, line_len(buf, n - 1), { '', unpack(lines) })
    end
  else
    api.nvim_buf_set_text(buf, s, 0, t - 1, line_len(buf, t - 1), lines)
  end
end

--- Applies `edits` (bottom-up) to `buf` as one undo step. Returns true, or false and why (the
--- buffer is then unchanged).
local function write_edits(buf, edits)
  local n = api.nvim_buf_line_count(buf)
  table.sort(edits, function(a, b)
    if a.start ~= b.start then return a.start > b.start end
    return a['end'] > b['end']
  end)
  local floor = math.huge
  for _, e in ipairs(edits) do
    if type(e.start) ~= 'number' or type(e['end']) ~= 'number' or e.start < 0 or e['end'] < e.start
      or e['end'] > n or e['end'] > floor then
      return false, ('the backend sent an edit outside the buffer (%s)'):format(vim.inspect(e))
    end
    floor = e.start
    e.lines = type(e.lines) == 'table' and e.lines or {}
  end
  local ok, err = pcall(api.nvim_buf_call, buf, function()
    vim.go.undolevels = vim.go.undolevels -- close the undo block: the patch is its own step
    local tick0 = api.nvim_buf_get_changedtick(buf)
    local ok2, err2 = pcall(function()
      for i, e in ipairs(edits) do
        if i > 1 then pcall(vim.cmd, 'silent undojoin') end
        apply_edit(buf, e)
      end
    end)
    if not ok2 then
      if api.nvim_buf_get_changedtick(buf) ~= tick0 then pcall(vim.cmd, 'silent undo') end
      error(err2, 0)
    end
    vim.go.undolevels = vim.go.undolevels
  end)
  if not ok then return false, tostring(err) end
  return true
end

local function indices(accepted)
  local out = {}
  for i, a in ipairs(accepted) do
    if a then out[#out + 1] = i - 1 end -- 0-based, as everything in the protocol
  end
  return out
end

local function resolve(p, outcome, extra)
  local params = vim.tbl_extend('force', { patch = p.patch, outcome = outcome, applied = {} }, extra or {})
  if next(params.applied) == nil then params.applied = {} end
  last.outcome = params
  local _, err = rpc.request('resolve', params)
  if err then notify('zeke: could not record the outcome: ' .. tostring(err), vim.log.levels.WARN) end
end

local function forget(p)
  if pending[p.buf] == p then pending[p.buf] = nil end
  clear_preview(p)
  if R and R.key == p.buf then M.close() end
end

--- Asks the backend for the edits of `p`'s accepted hunks and applies them. Returns true, or false
--- and a message (nothing applied).
local function apply(p)
  local buf = p.buf
  if not api.nvim_buf_is_valid(buf) then return false, 'its buffer was closed' end
  if not api.nvim_buf_is_loaded(buf) then vim.fn.bufload(buf) end
  local res, err
  for _ = 1, 3 do
    local tick = api.nvim_buf_get_changedtick(buf)
    res, err = rpc.request('apply', { patch = p.patch, accepted = p.accepted, tick = tick })
    if not res then return false, err end
    if res.tick == nil or res.tick == api.nvim_buf_get_changedtick(buf) then break end
    res, err = nil, 'the buffer kept changing while applying'
    vim.wait(20)
  end
  if not res then return false, err end
  local ok, werr = write_edits(buf, res.edits or {})
  if not ok then return false, werr end
  p.rebased = res.rebased
  if buf ~= p.src then vim.bo[buf].buflisted = true end -- a test file: in :ls, for the user to save
  return true
end

local function failed(p, err)
  local what = p.job == 'test' and 'test' or 'fix'
  err = tostring(err or 'unknown error')
  notify(('zeke: the %s patch for %s was not applied: %s. The buffer is unchanged; run :Zeke %s again.')
    :format(what, short(p.path), err, what), vim.log.levels.ERROR)
  resolve(p, 'failed', { error = err })
  forget(p)
end

local function applied_msg(p, how)
  local n = #indices(p.accepted)
  local where = short(p.path)
  local msg = ('zeke: %s: applied %d of %d hunk%s to %s%s (not saved; u undoes it)'):format(p.job, n, #p.hunks,
    #p.hunks == 1 and '' or 's', where, p.rebased and ' (rebased onto your edits)' or '')
  if how then msg = msg .. '; ' .. how end
  notify(msg)
end

local function any_accepted(p)
  for _, a in ipairs(p.accepted) do
    if a then return true end
  end
  return false
end

--- Allow once: applies the accepted hunks of the pending proposal. Returns true when applied.
---@return boolean
function M.allow()
  local p = find()
  if not p then
    notify('zeke: no proposal pending here', vim.log.levels.WARN)
    return false
  end
  if not any_accepted(p) then
    notify('zeke: no hunk is accepted: toggle one (<Space> in the review window), or :Zeke deny',
      vim.log.levels.WARN)
    return false
  end
  local ok, err = apply(p)
  if not ok then
    failed(p, err)
    return false
  end
  resolve(p, 'allow_once', { applied = indices(p.accepted) })
  forget(p)
  applied_msg(p)
  return true
end

local function do_allow_all(p, scope)
  local ok, err = apply(p)
  if not ok then
    failed(p, err)
    return false
  end
  resolve(p, 'allow_all', { scope = scope, applied = indices(p.accepted) })
  forget(p)
  applied_msg(p, ('later file changes (fs.write) in this project are applied without review for this %s%s')
    :format(scope, scope == 'project' and ', by zeke mcp too' or ''))
  return true
end

--- Allow all: applies the accepted hunks and grants `fs.write` in the project for `scope`
--- ("session": this editor until it exits; "project": saved, honoured by every Zeke process,
--- `zeke mcp` included, until revoked), so later patches apply without review. Without a scope,
--- asks with vim.ui.select.
---@param scope string|nil
---@return boolean|nil applied (nil when the choice is still being asked)
function M.allow_all(scope)
  local p = find()
  if not p then
    notify('zeke: no proposal pending here', vim.log.levels.WARN)
    return false
  end
  if scope ~= nil and not vim.tbl_contains(SCOPES, scope) then
    notify(('zeke: allow all: scope must be "session" or "project" (got %q)'):format(tostring(scope)),
      vim.log.levels.ERROR)
    return false
  end
  if not any_accepted(p) then
    notify('zeke: no hunk is accepted: toggle one, or :Zeke deny', vim.log.levels.WARN)
    return false
  end
  if scope then return do_allow_all(p, scope) end
  local root = M.root(p.buf)
  vim.ui.select(SCOPES, {
    prompt = 'Allow all file changes (fs.write) in this project for:',
    format_item = function(s)
      if s == 'session' then return 'this session (until Neovim exits)' end
      return ('this project (%s), saved: also after restarts and for zeke mcp'):format(short(root))
    end,
  }, function(choice)
    if choice and pending[p.buf] == p then do_allow_all(p, choice) end
  end)
  return nil
end

--- Deny: discards the pending proposal; `reason` (optional) is sent to the model with the next
--- `:Zeke fix` of that buffer.
---@param reason string|nil
---@return boolean
function M.deny(reason)
  config.check_arg('reason', reason, 'string', true)
  local p = find()
  if not p then
    notify('zeke: no proposal pending here', vim.log.levels.WARN)
    return false
  end
  if reason and vim.trim(reason) == '' then reason = nil end
  resolve(p, 'deny', { reason = reason })
  if reason then reasons[p.src] = reason end
  forget(p)
  notify(('zeke: %s proposal denied%s'):format(p.job, reason and ' (the reason goes with the next :Zeke fix)' or ''))
  return true
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
  local req = requests[ev.id]
  requests[ev.id] = nil
  clear_echo()
  local hunks = type(ev.hunks) == 'table' and ev.hunks or {}
  for _, h in ipairs(hunks) do
    h.old, h.new = h.old or {}, h.new or {}
  end
  local accepted = {}
  for i = 1, #hunks do accepted[i] = true end
  local p = {
    patch = ev.patch, id = ev.id, job = ev.job or (req and req.job) or 'fix', buf = ev.buf or (req and req.target),
    src = req and req.src or ev.buf, path = ev.path or '', tick = ev.tick, hunks = hunks, accepted = accepted,
    provider = ev.provider, model = ev.model, decision = ev.decision, rule = ev.rule, note = ev.note,
    win = nil,
  }
  if p.path == '' and p.buf and api.nvim_buf_is_valid(p.buf) then p.path = api.nvim_buf_get_name(p.buf) end
  if not req then -- cancelled (:Zeke stop) or from before a restart
    resolve(p, 'deny', { reason = 'cancelled' })
    return
  end
  if #hunks == 0 then
    resolve(p, 'failed', { error = 'empty patch' })
    notify(('zeke: %s: the model proposed no change'):format(p.job), vim.log.levels.WARN)
    return
  end
  if p.note then notify(('zeke: %s: %s'):format(p.job, p.note), vim.log.levels.WARN) end
  require('zeke.errors').success(p.job)
  for _, w in ipairs(api.nvim_list_wins()) do
    if api.nvim_win_get_buf(w) == p.src then p.win = w break end
  end
  if api.nvim_get_current_buf() == p.src then p.win = api.nvim_get_current_win() end
  if ev.decision == 'allow' then
    local ok, err = apply(p)
    if not ok then
      failed(p, err)
      return
    end
    resolve(p, 'allow_rule', { applied = indices(p.accepted) })
    applied_msg(p, 'allowed without review by ' .. tostring(ev.rule or 'a policy rule'))
    return
  end
  local old = pending[p.buf]
  if old then
    resolve(old, 'deny', { reason = 'superseded' })
    forget(old)
  end
  pending[p.buf] = p
  preview(p)
  local mode = api.nvim_get_mode().mode
  open(p, not mode:find('^[iRct]'))
end

--- A `patch` event (see doc/rpc.md). Scheduled: handling it makes requests to the backend, which
--- must not wait inside its own call to us.
function M.on_patch(ev)
  if requests[ev.id] then requests[ev.id].answered = true end
  vim.schedule(function()
    local ok, err = pcall(handle_patch, ev)
    if not ok then notify('zeke: internal error handling a patch: ' .. tostring(err), vim.log.levels.ERROR) end
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

--- The backend exited or restarted: it forgot its pending patches and requests.
function M.on_backend_exit()
  requests = {}
  local had = next(pending) ~= nil
  for _, p in pairs(pending) do clear_preview(p) end
  pending = {}
  M.close()
  if had then
    notify('zeke: the backend restarted; the pending proposal is gone: run :Zeke fix / :Zeke test again',
      vim.log.levels.WARN)
  end
end

-- State -------------------------------------------------------------------------------------

--- The pending proposal for `buf` (default: as `:Zeke allow` would find it), as plain data, or nil.
---@param buf integer|nil
---@return table|nil
function M.state(buf)
  local p = buf and pending[buf] or find()
  if not p then return nil end
  local hunks = {}
  for i, h in ipairs(p.hunks) do
    hunks[i] = { start = h.start, old = vim.deepcopy(h.old), new = vim.deepcopy(h.new), accepted = p.accepted[i] }
  end
  local lines = (R and R.key == p.buf and api.nvim_buf_is_valid(R.buf)) and api.nvim_buf_get_lines(R.buf, 0, -1, false) or nil
  return {
    patch = p.patch, job = p.job, buf = p.buf, src = p.src, path = p.path, tick = p.tick, hunks = hunks,
    provider = p.provider, model = p.model, decision = p.decision, note = p.note, title = title(p),
    window = lines ~= nil and api.nvim_win_is_valid(R.win) and R.win or nil, lines = lines,
  }
end

--- Internals for tests and :Zeke status: requests in flight, pending proposals, the last params
--- sent and the last outcome reported.
function M.debug_state()
  local reqs = {}
  for id, r in pairs(requests) do
    reqs[#reqs + 1] = { id = id, job = r.job, chars = r.chars, src = r.src, target = r.target }
  end
  return {
    requests = reqs, pending = vim.tbl_keys(pending), reasons = vim.deepcopy(reasons), last_params = last.params,
    last_outcome = last.outcome, review = R and { win = R.win, buf = R.buf, key = R.key } or nil,
  }
end

return M
