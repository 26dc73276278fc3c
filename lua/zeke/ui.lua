-- lua/zeke/ui.lua: owns `:Zeke explain`'s floating window: sending the `explain` request, streaming
-- `explain` deltas into the float (title naming the provider and model that answered; a `restart`
-- event, when a fallback provider took over, replaces the text and renames the title), showing
-- errors for that request, and cancelling it when the float closes (`q`, `<Esc>`, `:q`) or on
-- `:Zeke stop`. Also the read-only scratch float other views use (`:Zeke usage`), in the same
-- style. Invariant: at most one explain float; events for any other id are ignored.
local config = require('zeke.config')
local rpc = require('zeke.rpc')

local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

M.ns = api.nvim_create_namespace('zeke.ui')

---@class zeke.Explain
---@field id integer
---@field buf integer float buffer
---@field win integer float window
---@field text string streamed so far
---@field done boolean
---@field error string|nil
---@field title string
---@field placeholder boolean the "…" line is still shown
---@field t0 integer hrtime when sent
---@field first_ms number|nil
---@field done_ms number|nil
local E = nil ---@type zeke.Explain|nil

local function ms_since(t0) return (uv.hrtime() - t0) / 1e6 end

local function has_border()
  local b = config.get().ui.border
  return b ~= 'none' and b ~= ''
end

local function set_title(title)
  if not E then return end
  E.title = title
  if has_border() and api.nvim_win_is_valid(E.win) then
    pcall(api.nvim_win_set_config, E.win, { title = title, title_pos = 'center' })
  end
end

--- Changes the float's buffer with `fn`; keeps the window scrolled to the end unless the user
--- moved the cursor up to read.
local function write(fn)
  if not E or not api.nvim_buf_is_valid(E.buf) then return end
  local win_ok = api.nvim_win_is_valid(E.win)
  local follow = not win_ok or api.nvim_win_get_cursor(E.win)[1] >= api.nvim_buf_line_count(E.buf)
  vim.bo[E.buf].modifiable = true
  fn(E.buf)
  vim.bo[E.buf].modifiable = false
  if win_ok and follow then
    local n = api.nvim_buf_line_count(E.buf)
    pcall(api.nvim_win_set_cursor, E.win, { n, 0 })
  end
end

local function append(delta)
  if delta == '' then return end
  E.text = E.text .. delta
  write(function(buf)
    if E.placeholder then
      E.placeholder = false
      api.nvim_buf_set_lines(buf, 0, -1, false, { '' })
    end
    local n = api.nvim_buf_line_count(buf)
    local last = api.nvim_buf_get_lines(buf, n - 1, n, false)[1] or ''
    api.nvim_buf_set_lines(buf, n - 1, n, false, vim.split(last .. delta, '\n', { plain = true }))
  end)
end

local function add_note(text, hl)
  write(function(buf)
    if E.placeholder then
      E.placeholder = false
      api.nvim_buf_set_lines(buf, 0, -1, false, {})
    end
    local n = api.nvim_buf_line_count(buf)
    local first_empty = n == 1 and api.nvim_buf_get_lines(buf, 0, 1, false)[1] == ''
    local at = first_empty and 0 or n
    api.nvim_buf_set_lines(buf, at, first_empty and 1 or n, false, { text })
    api.nvim_buf_set_extmark(buf, M.ns, at, 0, { end_col = #text, hl_group = hl })
  end)
end

--- Closes the float; cancels the request if it is still streaming.
function M.close()
  local e = E
  if not e then return end
  E = nil
  if not e.done then rpc.notify('cancel', { id = e.id }) end
  if api.nvim_win_is_valid(e.win) then pcall(api.nvim_win_close, e.win, true) end
end

--- The window config of a centered float (`ui.border`): `want_w` columns wide (default
--- `ui.max_width`) and `want_h` lines high (default: 60 % of the screen, up to 20), within the screen.
local function float_config(title, want_h, want_w)
  local cfg = config.get().ui
  local width = math.max(20, math.min(want_w or cfg.max_width, vim.o.columns - 4))
  local max_h = math.max(3, math.min(20, math.floor((vim.o.lines - 2) * 0.6)))
  if want_h then max_h = math.max(3, math.min(want_h, vim.o.lines - 4)) end
  local wincfg = {
    relative = 'editor', style = 'minimal', border = cfg.border, width = width, height = max_h,
    row = math.max(0, math.floor((vim.o.lines - max_h) / 2) - 1),
    col = math.max(0, math.floor((vim.o.columns - width) / 2)),
  }
  if has_border() then wincfg.title, wincfg.title_pos = title, 'center' end
  return wincfg
end

local function open_float()
  local buf = api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = 'wipe'
  vim.bo[buf].filetype = 'markdown'
  api.nvim_buf_set_lines(buf, 0, -1, false, { '…' })
  vim.bo[buf].modifiable = false
  local win = api.nvim_open_win(buf, true, float_config(' Zeke '))
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  vim.wo[win].conceallevel = 2
  for _, lhs in ipairs({ 'q', '<Esc>' }) do
    vim.keymap.set('n', lhs, M.close, { buffer = buf, nowait = true, desc = 'Close Zeke explain (cancels it)' })
  end
  api.nvim_create_autocmd('WinClosed', {
    pattern = tostring(win),
    once = true,
    callback = function()
      if E and E.win == win then vim.schedule(M.close) end
    end,
  })
  return buf, win
end

--- `:Zeke explain`: explain `range` ({start_row, end_row}, 0-based inclusive) or, without one, the
--- function around the cursor (the backend finds it).
---@param range integer[]|nil
---@return integer|nil id
function M.explain(range)
  config.check_arg('range', range, 'table', true)
  if range and (type(range[1]) ~= 'number' or type(range[2]) ~= 'number') then
    error('zeke: range must be {start_row, end_row} (0-based, end inclusive)', 2)
  end
  local src = api.nvim_get_current_buf()
  local pos = api.nvim_win_get_cursor(0)
  if not rpc.ensure() then return nil end
  rpc.attach(src)
  M.close()
  local buf, win = open_float()
  local id = rpc.next_id()
  E = {
    id = id, buf = buf, win = win, text = '', done = false, title = ' Zeke ', placeholder = true,
    t0 = uv.hrtime(),
    params = {
      id = id, buf = src, tick = api.nvim_buf_get_changedtick(src), row = pos[1] - 1, col = pos[2],
      range = range, filetype = vim.bo[src].filetype, path = api.nvim_buf_get_name(src),
    },
  }
  rpc.notify('explain', E.params)
  return id
end

local function present(v) return v ~= nil and v ~= '' end

--- An `explain` event: {id, delta, restart, done, provider, model, range}. `restart`: a fallback
--- provider took over; what the float shows is replaced by this event's delta.
---@param p table
function M.on_explain(p)
  if not E or p.id ~= E.id then return end
  if present(p.provider) or present(p.model) then
    local parts = { 'Zeke' }
    if present(p.provider) then parts[#parts + 1] = tostring(p.provider) end
    if present(p.model) then parts[#parts + 1] = tostring(p.model) end
    local title = ' ' .. table.concat(parts, ' · ') .. ' '
    if title ~= E.title then set_title(title) end
  end
  if p.restart and not E.done then
    E.text = ''
    E.restarts = (E.restarts or 0) + 1
    write(function(buf)
      E.placeholder = false
      api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
      api.nvim_buf_set_lines(buf, 0, -1, false, { '' })
    end)
  end
  if type(p.range) == 'table' then E.range = p.range end
  if type(p.delta) == 'string' and p.delta ~= '' then
    E.first_ms = E.first_ms or ms_since(E.t0)
    append(p.delta)
  end
  if p.done and not E.done then
    E.done = true
    E.done_ms = ms_since(E.t0)
    require('zeke.errors').success('explain')
    if E.text == '' then add_note('(no answer)', 'Comment') end
  end
end

--- An `error` event for an explain request. Returns true when the event was for this float.
---@param e table
---@return boolean
function M.on_error(e)
  if not E or (e.id ~= nil and e.id ~= E.id) or E.done then return true end
  E.done = true
  E.error = tostring(e.message or e.kind or 'error')
  E.done_ms = ms_since(E.t0)
  add_note('⚠ ' .. require('zeke.errors').format(e), 'ErrorMsg')
  return true
end

--- `:Zeke stop`: cancel every task in the backend.
function M.stop()
  rpc.notify('stop', {})
  require('zeke.inline').clear()
  if E and not E.done then
    E.done = true
    E.done_ms = ms_since(E.t0)
    add_note('[stopped]', 'Comment')
  end
end

function M.on_backend_exit()
  if E and not E.done then
    E.done = true
    E.error = 'backend exited'
    add_note('⚠ the Zeke backend exited', 'ErrorMsg')
  end
end

--- The current explain float, for tests and the demo.
function M.state()
  if not E then return nil end
  local lines = api.nvim_buf_is_valid(E.buf) and api.nvim_buf_get_lines(E.buf, 0, -1, false) or {}
  return {
    id = E.id, text = E.text, done = E.done, error = E.error, title = E.title, win = E.win,
    buf = E.buf, lines = lines, first_ms = E.first_ms, done_ms = E.done_ms,
    open = api.nvim_win_is_valid(E.win), range = E.range, restarts = E.restarts or 0,
  }
end

local S = nil ---@type {buf: integer, win: integer}|nil the open scratch float

--- Closes the scratch float (`:Zeke usage`), if open.
function M.close_scratch()
  local s = S
  S = nil
  if s and api.nvim_win_is_valid(s.win) then pcall(api.nvim_win_close, s.win, true) end
end

--- Opens a read-only scratch float in the explain window's style, titled `title`, holding `lines`
--- (strings, or {text, hl_group} pairs); `q` and `<Esc>` close it. Replaces an earlier one.
--- Returns buf, win.
---@param title string
---@param lines (string|table)[]
---@param opts table|nil {filetype}
---@return integer buf, integer win
function M.scratch(title, lines, opts)
  opts = opts or {}
  M.close_scratch()
  local text, hls, width = {}, {}, 0
  for i, l in ipairs(lines) do
    local t = type(l) == 'table' and l[1] or l
    text[i] = t
    if type(l) == 'table' and l[2] then hls[#hls + 1] = { i - 1, l[2], #t } end
    width = math.max(width, vim.fn.strdisplaywidth(t))
  end
  local buf = api.nvim_create_buf(false, true)
  vim.bo[buf].bufhidden = 'wipe'
  if opts.filetype then vim.bo[buf].filetype = opts.filetype end
  api.nvim_buf_set_lines(buf, 0, -1, false, text)
  for _, h in ipairs(hls) do
    api.nvim_buf_set_extmark(buf, M.ns, h[1], 0, { end_col = h[3], hl_group = h[2] })
  end
  vim.bo[buf].modifiable = false
  vim.bo[buf].readonly = true
  local cfg = float_config(title, #text, width + 2)
  local win = api.nvim_open_win(buf, true, cfg)
  vim.wo[win].wrap = false
  vim.wo[win].cursorline = false
  S = { buf = buf, win = win }
  for _, lhs in ipairs({ 'q', '<Esc>' }) do
    vim.keymap.set('n', lhs, M.close_scratch, { buffer = buf, nowait = true, desc = 'Close the Zeke window' })
  end
  return buf, win
end

return M
