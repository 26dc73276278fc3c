-- lua/zeke/review/window.lua: owns the review UI of one pending proposal, whatever proposed it
-- (`:Zeke fix`, `:Zeke test`, the chat agent: a proposal names its `job`): the review window
-- (title, hunks with their [x]/[ ] marks and context, per-hunk toggles, keys), finding the proposal
-- a command is about, and the answers: Allow once, Allow all (with a scope), Deny with a reason.
-- Taking proposals in is `zeke.review`'s, applying them `zeke.review.apply`'s.
-- Invariants: nothing is applied before an Allow; one review window, showing a pending proposal;
-- closing it (q) keeps the proposal pending.
local config = require('zeke.config')
local store = require('zeke.review.store')
local apply = require('zeke.review.apply')
local preview = require('zeke.review.preview')

local M = {}

local api = vim.api

M.ns = api.nvim_create_namespace('zeke.diff')
M.ns_inline = preview.ns

local SCOPES = { 'session', 'project' }

local R = nil ---@type {win: integer, buf: integer, key: integer|string, hunk_rows: integer[]}|nil

local notify, short = store.notify, store.short

--- The pending proposal `:Zeke allow/deny/review` act on: the one shown in the review window when
--- run from it, else the current buffer's (as target, as the file it shows, or as the buffer the
--- command ran in), else the only one pending.
---@return zeke.Proposal|nil
function M.find(buf)
  buf = buf or api.nvim_get_current_buf()
  if R and R.buf == buf and store.get(R.key) then return store.get(R.key) end
  local p = store.for_buf(buf)
  if p then return p end
  local all = store.list()
  for _, q in ipairs(all) do
    if q.src == buf then return q end
  end
  if #all == 1 then return all[1] end
  return nil
end

--- When the review window is the current one: true and the proposal it shows.
---@return boolean, zeke.Proposal|nil
function M.in_review()
  if R and api.nvim_get_current_buf() == R.buf then return true, store.get(R.key) end
  return false, nil
end

--- The pending proposal to answer (see `find`), or nil after saying there is none.
local function pending_here()
  local p = M.find()
  if not p then notify('zeke: no proposal pending here', vim.log.levels.WARN) end
  return p
end

--- Whether `p` has an accepted hunk; says so (with `hint`) when not.
local function has_accepted(p, hint)
  if apply.any(p.accepted) then return true end
  notify('zeke: no hunk is accepted: ' .. hint, vim.log.levels.WARN)
  return false
end

local function title(p)
  local parts = { 'Zeke ' .. p.job, short(p.path) }
  if p.provider then parts[#parts + 1] = tostring(p.provider) end
  if p.model then parts[#parts + 1] = tostring(p.model) end
  return table.concat(parts, ' · ')
end

local HELP = '<Space> toggle hunk · ]h [h next/prev · a allow once · A allow all · d deny · q close'

--- The review buffer's lines and highlights for `p`.
local function render(p)
  local lines, hls, hunk_rows = {}, {}, {}
  local function add(text, hl)
    lines[#lines + 1] = text
    if hl then hls[#hls + 1] = { #lines - 1, hl } end
  end
  add(title(p), 'ZekeDiffTitle')
  add(HELP, 'Comment')
  if p.note then add('note: ' .. p.note, 'WarningMsg') end
  local n_acc = #apply.indices(p.accepted)
  add(('%d hunk%s, %d accepted'):format(#p.hunks, #p.hunks == 1 and '' or 's', n_acc), 'Comment')
  local ctx_ok, offset = preview.same_tick(p), 0
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
    if ctx_ok and h.start > 0 then
      for _, l in ipairs(api.nvim_buf_get_lines(p.buf, math.max(0, h.start - 2), h.start, false)) do
        add('  ' .. l, 'ZekeDiffContext')
      end
    end
    for _, l in ipairs(h.old) do add('-' .. l, on and 'ZekeDiffDelete' or 'ZekeDiffOff') end
    for _, l in ipairs(h.new) do add('+' .. l, on and 'ZekeDiffAdd' or 'ZekeDiffOff') end
    if ctx_ok then
      for _, l in ipairs(api.nvim_buf_get_lines(p.buf, h.start + no, h.start + no + 2, false)) do
        add('  ' .. l, 'ZekeDiffContext')
      end
    end
  end
  return lines, hls, hunk_rows
end

local function redraw()
  if not R or not api.nvim_buf_is_valid(R.buf) then return end
  local p = store.get(R.key)
  if not p then return end
  preview.show(p)
  local lines, hls, rows = render(p)
  vim.bo[R.buf].modifiable = true
  api.nvim_buf_set_lines(R.buf, 0, -1, false, lines)
  vim.bo[R.buf].modifiable = false
  api.nvim_buf_clear_namespace(R.buf, M.ns, 0, -1)
  for _, h in ipairs(hls) do
    api.nvim_buf_set_extmark(R.buf, M.ns, h[1], 0, { end_row = h[1] + 1, hl_group = h[2], hl_eol = true })
  end
  R.hunk_rows = rows
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
  local rows, target = R.hunk_rows, nil
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

--- Closes window `win`; when it is the last one, it shows an empty buffer instead (the review
--- buffer is wiped with it either way).
local function shut(win)
  if not pcall(api.nvim_win_close, win, true) and api.nvim_win_is_valid(win) then
    pcall(api.nvim_win_call, win, function() vim.cmd('enew') end)
  end
end

--- Closes the review window; the proposal stays pending.
function M.close()
  local r = R
  if not r then return end
  R = nil
  if api.nvim_win_is_valid(r.win) then
    local cur = api.nvim_get_current_win() == r.win
    local p = store.get(r.key)
    shut(r.win)
    if cur and p and p.win and api.nvim_win_is_valid(p.win) then pcall(api.nvim_set_current_win, p.win) end
  end
end

--- As `close`, after the current autocommand (no layout changes inside BufWipeout).
function M.close_soon()
  local r = R
  if not r then return end
  R = nil
  vim.schedule(function()
    if api.nvim_win_is_valid(r.win) then shut(r.win) end
  end)
end

--- Whether the review window shows `p`'s buffer/file.
function M.shows(p) return R ~= nil and R.key == p.key end

--- Forgets `p`: no longer pending, no preview, its review window closed.
function M.forget(p)
  store.remove(p)
  preview.clear(p)
  if M.shows(p) then M.close() end
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
    local p = R and store.get(R.key)
    if not (i and p) then return end
    local b = store.buf_of(p) or store.loaded_buf(p.path)
    for _, w in ipairs(api.nvim_list_wins()) do
      if b and api.nvim_win_get_buf(w) == b then
        api.nvim_set_current_win(w)
        pcall(api.nvim_win_set_cursor, w, { p.hunks[i].start + 1, 0 })
        return
      end
    end
  end, 'go to the hunk in its buffer')
end

--- Opens (or refreshes) the review window for `p`. `focus`: move the cursor into it.
function M.open(p, focus)
  if R and store.get(R.key) ~= p then M.close() end
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
    R = { win = win, buf = buf, key = p.key, hunk_rows = {} }
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
  local p = pending_here()
  if not p then return false end
  M.open(p, true)
  return true
end

--- Marks hunk `i` (1-based) accepted or not; `value` nil flips it. Returns the new state.
---@param i integer
---@param value boolean|nil
---@return boolean|nil
function M.toggle(i, value)
  config.check_arg('i', i, 'number')
  local p = (R and store.get(R.key)) or M.find()
  if not p or not p.hunks[i] then return nil end
  if value == nil then value = not p.accepted[i] end
  p.accepted[i] = value and true or false
  if R and store.get(R.key) == p then
    local cur = api.nvim_win_is_valid(R.win) and api.nvim_win_get_cursor(R.win)
    redraw()
    if cur then pcall(api.nvim_win_set_cursor, R.win, cur) end
  end
  return p.accepted[i]
end

-- Answers ------------------------------------------------------------------------------------

--- Allow once: applies the accepted hunks of the pending proposal. Returns true when applied.
---@return boolean
function M.allow()
  local p = pending_here()
  if not (p and has_accepted(p, 'toggle one (<Space> in the review window), or :Zeke deny')) then return false end
  local ok = apply.approve(p, 'allow_once')
  M.forget(p)
  return ok
end

local function do_allow_all(p, scope)
  local how = ('later file changes (fs.write) in this project are applied without review for this %s%s')
    :format(scope, scope == 'project' and ', by zeke mcp too' or '')
  local ok = apply.approve(p, 'allow_all', { scope = scope }, how)
  M.forget(p)
  return ok
end

--- Allow all: applies the accepted hunks and grants `fs.write` in the project for `scope`
--- ("session": this editor until it exits; "project": saved, honoured by every Zeke process,
--- `zeke mcp` included, until revoked), so later patches apply without review. Without a scope,
--- asks with vim.ui.select.
---@param scope string|nil
---@return boolean|nil applied (nil when the choice is still being asked)
function M.allow_all(scope)
  local p = pending_here()
  if not p then return false end
  if scope ~= nil and not vim.tbl_contains(SCOPES, scope) then
    notify(('zeke: allow all: scope must be "session" or "project" (got %q)'):format(tostring(scope)),
      vim.log.levels.ERROR)
    return false
  end
  if not has_accepted(p, 'toggle one, or :Zeke deny') then return false end
  if scope then return do_allow_all(p, scope) end
  local root = store.root(store.buf_of(p) or p.path)
  vim.ui.select(SCOPES, {
    prompt = 'Allow all file changes (fs.write) in this project for:',
    format_item = function(s)
      if s == 'session' then return 'this session (until Neovim exits)' end
      return ('this project (%s), saved: also after restarts and for zeke mcp'):format(short(root))
    end,
  }, function(choice)
    if choice and store.get(p.key) == p then do_allow_all(p, choice) end
  end)
  return nil
end

--- Deny: discards the pending proposal; `reason` (optional) is sent to the model with the next
--- `:Zeke fix` of that buffer.
---@param reason string|nil
---@return boolean
function M.deny(reason)
  config.check_arg('reason', reason, 'string', true)
  local p = pending_here()
  if not p then return false end
  if reason and vim.trim(reason) == '' then reason = nil end
  apply.resolve(p, 'deny', { reason = reason })
  if reason and p.src then store.set_reason(p.src, reason) end
  M.forget(p)
  local where = (p.job == 'fix' or p.job == 'test') and 'with the next :Zeke fix'
    or p.job == 'edit' and 'with the next :Zeke edit' or 'back to the model'
  notify(('zeke: %s proposal denied%s'):format(p.job, reason and (' (the reason goes %s)'):format(where) or ''))
  return true
end

--- The pending proposal for `buf` (default: as `:Zeke allow` would find it), as plain data, or nil.
---@param buf integer|nil
---@return table|nil
function M.state(buf)
  local p = buf and store.for_buf(buf) or M.find()
  if not p then return nil end
  local hunks = {}
  for i, h in ipairs(p.hunks) do
    hunks[i] = { start = h.start, old = vim.deepcopy(h.old), new = vim.deepcopy(h.new), accepted = p.accepted[i] }
  end
  local shown = R and R.key == p.key and api.nvim_buf_is_valid(R.buf)
  local lines = shown and api.nvim_buf_get_lines(R.buf, 0, -1, false) or nil
  return {
    patch = p.patch, job = p.job, buf = p.buf, src = p.src, path = p.path, tick = p.tick, hunks = hunks,
    provider = p.provider, model = p.model, decision = p.decision, note = p.note, title = title(p),
    window = lines ~= nil and api.nvim_win_is_valid(R.win) and R.win or nil, lines = lines,
  }
end

--- The review window, for tests and :Zeke status.
function M.debug_state() return R and { win = R.win, buf = R.buf, key = R.key } or nil end

return M
