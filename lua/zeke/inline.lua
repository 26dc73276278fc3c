-- lua/zeke/inline.lua: owns ghost-text completion: when to ask (debounce, mid-identifier, menus,
-- enabled buffers), the one request in flight, dropping stale results (id + buf + changedtick +
-- cursor), rendering into one extmark (first line inline, the rest as virtual lines), type-through,
-- and accepting (whole / word / line) as one undo step.
-- Invariant: the text shown is always a suffix of what the backend sent for the current request id,
-- at the position the request was made for, advanced by exactly what the user typed or accepted.
local config = require('zeke.config')
local rpc = require('zeke.rpc')

local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

M.ns = api.nvim_create_namespace('zeke.inline')

local S = {
  timer = nil, ---@type uv.uv_timer_t|nil debounce
  --- The current request: {id, buf, tick, row, col, consumed, cur_tick, text, done}. `consumed` is
  --- what the user typed through or accepted since it was sent; `cur_tick` the changedtick after that.
  req = nil,
  mark = nil, ---@type {buf: integer, id: integer}|nil the extmark showing it
  last = nil, ---@type {buf: integer, tick: integer, row: integer, col: integer}|nil last editor state seen
  sent = 0, -- requests sent (tests, :Zeke status)
  dropped = 0, -- stale results dropped
}

local function tick_of(buf) return api.nvim_buf_get_changedtick(buf) end

local function editor_state()
  local buf = api.nvim_get_current_buf()
  local pos = api.nvim_win_get_cursor(0)
  return { buf = buf, tick = tick_of(buf), row = pos[1] - 1, col = pos[2] }
end

local function same_state(a, b)
  return a and b and a.buf == b.buf and a.tick == b.tick and a.row == b.row and a.col == b.col
end

--- Position after inserting `text` at (row, col).
local function advance(row, col, text)
  local lines = vim.split(text, '\n', { plain = true })
  if #lines == 1 then return row, col + #text end
  return row + #lines - 1, #lines[#lines]
end

--- Whether ghost text may be requested in `buf`.
---@param buf integer
---@return boolean
function M.enabled(buf)
  if not api.nvim_buf_is_valid(buf) then return false end
  local b = vim.b[buf].zeke_enabled
  if b == false then return false end
  local bo = vim.bo[buf]
  if bo.buftype ~= '' or not bo.modifiable then return false end
  if b == true then return true end
  return config.get().completion.enabled and config.filetype_enabled(bo.filetype)
end

--- Whether a completion menu (built-in pum, blink.cmp, nvim-cmp) is open.
local function menu_visible()
  if vim.fn.pumvisible() == 1 then return true end
  local blink = package.loaded['blink.cmp']
  if type(blink) == 'table' then
    for _, f in ipairs({ 'is_menu_visible', 'is_visible' }) do
      if type(blink[f]) == 'function' then
        local ok, v = pcall(blink[f])
        if ok and v then return true end
      end
    end
  end
  local cmp = package.loaded['cmp']
  if type(cmp) == 'table' and type(cmp.visible) == 'function' then
    local ok, v = pcall(cmp.visible)
    if ok and v then return true end
  end
  return false
end

local function menu_blocks()
  return config.get().completion.hide_during_completion and menu_visible()
end

--- The part of the current request's text not yet typed/accepted, or nil.
local function visible_text(r)
  if not r then return nil end
  local c = r.consumed
  if #r.text <= #c or r.text:sub(1, #c) ~= c then return nil end
  return r.text:sub(#c + 1)
end

local function display(s)
  local ts = vim.bo.tabstop > 0 and vim.bo.tabstop or 8
  return (s:gsub('\t', string.rep(' ', ts)))
end

local function hide()
  local m = S.mark
  S.mark = nil
  if m and api.nvim_buf_is_valid(m.buf) then pcall(api.nvim_buf_del_extmark, m.buf, M.ns, m.id) end
end

local function stop_timer()
  if S.timer then S.timer:stop() end
end

--- Forgets the current request, cancelling it in the backend if it is still running.
local function drop_request()
  local r = S.req
  S.req = nil
  if r and not r.done then rpc.notify('cancel', { id = r.id }) end
end

--- Hides the ghost text, cancels the request in flight and any pending debounce.
function M.clear()
  stop_timer()
  hide()
  drop_request()
end

local function render()
  local r = S.req
  local text = visible_text(r)
  if not text or text == '' or not api.nvim_buf_is_valid(r.buf) or menu_blocks() then
    hide()
    return
  end
  local row, col = advance(r.row, r.col, r.consumed)
  local lines = vim.split(text, '\n', { plain = true })
  local opts = {
    virt_text = { { display(lines[1]), 'ZekeSuggestion' } },
    virt_text_pos = 'inline',
    hl_mode = 'combine',
    priority = 200,
  }
  if #lines > 1 then
    local vl = {}
    for i = 2, #lines do
      vl[#vl + 1] = { { display(lines[i]), 'ZekeSuggestion' } }
    end
    opts.virt_lines = vl
  end
  if S.mark and S.mark.buf == r.buf then
    opts.id = S.mark.id
  else
    hide()
  end
  local ok, id = pcall(api.nvim_buf_set_extmark, r.buf, M.ns, row, col, opts)
  if ok then
    S.mark = { buf = r.buf, id = id }
  else
    hide()
  end
end

--- Whether the editor is still where the current request's text belongs.
local function in_place(r, st)
  if not r or st.buf ~= r.buf or st.tick ~= r.cur_tick then return false end
  local row, col = advance(r.row, r.col, r.consumed)
  return st.row == row and st.col == col
end

--- Sends a `complete` request for the cursor position now.
---@param manual boolean|nil true for :Zeke complete (no mid-identifier rule)
---@return boolean sent
function M.request_now(manual)
  stop_timer()
  local st = editor_state()
  if not M.enabled(st.buf) then return false end
  if not manual then
    if not api.nvim_get_mode().mode:match('^i') then return false end
    local after = api.nvim_get_current_line():sub(st.col + 1, st.col + 1)
    if after:match('[%w_]') or (after ~= '' and after:byte() >= 128) then return false end
  end
  if menu_blocks() then return false end
  hide()
  drop_request()
  if not rpc.attach(st.buf) then return false end
  local id = rpc.next_id()
  S.req = {
    id = id, buf = st.buf, tick = st.tick, row = st.row, col = st.col,
    consumed = '', cur_tick = st.tick, text = '', done = false,
  }
  S.last = st
  S.sent = S.sent + 1
  rpc.notify('complete', {
    id = id, buf = st.buf, tick = st.tick, row = st.row, col = st.col,
    filetype = vim.bo[st.buf].filetype, path = api.nvim_buf_get_name(st.buf),
  })
  return true
end

local function schedule()
  local ms = config.get().completion.debounce_ms
  S.timer = S.timer or uv.new_timer()
  S.timer:stop()
  S.timer:start(ms, 0, vim.schedule_wrap(function()
    local ok, err = pcall(M.request_now, false)
    if not ok then vim.notify('zeke: ' .. tostring(err), vim.log.levels.ERROR) end
  end))
end

--- Type-through: the user typed (from `prev` to `st`) exactly the next characters of the visible
--- suggestion. Trims it and re-renders; no new request.
local function type_through(prev, st)
  local r = S.req
  local text = visible_text(r)
  if not text or not in_place(r, { buf = prev.buf, tick = prev.tick, row = prev.row, col = prev.col }) then
    return false
  end
  if st.buf ~= prev.buf or st.tick == prev.tick then return false end
  if st.row < prev.row or (st.row == prev.row and st.col <= prev.col) then return false end
  local ok, got = pcall(api.nvim_buf_get_text, st.buf, prev.row, prev.col, st.row, st.col, {})
  if not ok then return false end
  local typed = table.concat(got, '\n')
  if text:sub(1, #typed) ~= typed then return false end
  r.consumed = r.consumed .. typed
  r.cur_tick = st.tick
  if #typed == #text and r.done then
    hide()
    S.req = nil
    return false -- all of it typed: ask for the next one
  end
  render()
  return true
end

--- TextChangedI / TextChangedP / CursorMovedI.
function M.on_edit()
  local st = editor_state()
  if not M.enabled(st.buf) then
    if S.req or S.mark then M.clear() end
    S.last = st
    return
  end
  local prev = S.last
  if same_state(prev, st) then return end
  S.last = st
  if prev and type_through(prev, st) then return end
  M.clear()
  if menu_blocks() then return end
  schedule()
end

--- A `completion` event from the backend.
---@param p table {id, buf, tick, row, col, text, done}
function M.on_completion(p)
  local r = S.req
  if not r or p.id ~= r.id or p.buf ~= r.buf or p.tick ~= r.tick or p.row ~= r.row or p.col ~= r.col then
    S.dropped = S.dropped + 1
    return
  end
  if p.done then
    r.done = true
    -- an empty answer may be the backend giving up on a stale request: not proof the provider works
    if type(p.text) == 'string' and p.text ~= '' then require('zeke.errors').success('complete') end
  end
  local st = editor_state()
  if not in_place(r, st) then
    S.dropped = S.dropped + 1
    return
  end
  r.text = type(p.text) == 'string' and p.text or ''
  S.last = st
  render()
  if r.done and not S.mark then S.req = nil end
end

--- An `error` event for a completion.
---@param e table
function M.on_error(e)
  if S.req and (e.id == nil or e.id == S.req.id) then
    S.req.done = true
    hide()
    S.req = nil
  end
end

--- Backend went away: nothing in flight survives.
function M.reset()
  stop_timer()
  hide()
  S.req = nil
end

---@return string|nil the visible suggestion text
function M.suggestion()
  if not S.mark or not S.req then return nil end
  local text = visible_text(S.req)
  if text == '' then return nil end
  return text
end

---@return boolean
function M.is_visible() return M.suggestion() ~= nil end

--- Closes the current undo block, so the next change is its own undo step (like i_CTRL-G_u).
local function break_undo()
  vim.go.undolevels = vim.go.undolevels
end

--- Inserts `part` (a prefix of the visible text) at the cursor as one undo step.
local function accept_part(pick)
  local st = editor_state()
  if S.last and not same_state(S.last, st) then M.on_edit() end -- keys typed faster than events
  local r = S.req
  local text = M.suggestion()
  if not text or not in_place(r, st) then return false end
  local part = pick(text)
  if not part or part == '' then return false end
  local row, col = advance(r.row, r.col, r.consumed)
  break_undo()
  api.nvim_buf_set_text(r.buf, row, col, row, col, vim.split(part, '\n', { plain = true }))
  local nrow, ncol = advance(row, col, part)
  api.nvim_win_set_cursor(0, { nrow + 1, ncol })
  r.consumed = r.consumed .. part
  r.cur_tick = tick_of(r.buf)
  S.last = editor_state()
  if api.nvim_get_mode().mode:match('^i') then
    -- what is typed next becomes its own undo step too
    api.nvim_feedkeys(api.nvim_replace_termcodes('<C-g>u', true, false, true), 'ni', false)
  end
  render()
  if not S.mark and r.done then S.req = nil end
  return true
end

--- Accepts the whole visible suggestion.
function M.accept() return accept_part(function(t) return t end) end

--- Accepts the next word (with the whitespace/punctuation before it).
function M.accept_word()
  return accept_part(function(t)
    local w = t:match('^[^%w_\n]*[%w_]*')
    if w == '' and t:sub(1, 1) == '\n' then w = t:match('^\n[ \t]*[^%w_\n]*[%w_]*') end
    return w
  end)
end

--- Accepts up to the end of the current suggestion line (or the next line when at its end).
function M.accept_line()
  return accept_part(function(t)
    if t:sub(1, 1) == '\n' then return '\n' .. (t:sub(2):match('^[^\n]*')) end
    return t:match('^[^\n]*')
  end)
end

--- Hides the suggestion and cancels the request (until the next edit).
function M.dismiss()
  local had = S.req ~= nil or S.mark ~= nil
  M.clear()
  return had
end

--- `:Zeke complete`: ask now, no debounce.
function M.trigger()
  M.clear()
  return M.request_now(true)
end

local function maybe_attach(buf, start)
  if M.enabled(buf) and (start or rpc.is_running()) then rpc.attach(buf) end
end

--- InsertEnter: remember where we are, mirror the buffer (starts the backend on first use) and
--- offer a completion after the usual pause (as after `o` on an empty new line).
---@param buf integer
function M.on_insert_enter(buf)
  S.last = editor_state()
  maybe_attach(buf, true)
  if M.enabled(buf) and not menu_blocks() then schedule() end
end

--- Registers the autocommands in `group`.
---@param group integer
function M.setup_autocmds(group)
  local au = function(ev, fn) api.nvim_create_autocmd(ev, { group = group, callback = fn }) end
  au({ 'TextChangedI', 'TextChangedP', 'CursorMovedI' }, function() M.on_edit() end)
  au('InsertEnter', function(ev) M.on_insert_enter(ev.buf) end)
  au('BufEnter', function(ev) maybe_attach(ev.buf, false) end)
  au({ 'InsertLeave', 'BufLeave' }, function() M.clear() end)
  au('CompleteChanged', function()
    if config.get().completion.hide_during_completion then M.clear() end
  end)
  au({ 'BufUnload', 'BufWipeout' }, function(ev)
    if S.req and S.req.buf == ev.buf then M.clear() end
    rpc.detach(ev.buf)
  end)
end

--- Internal state for tests and :Zeke status.
function M.debug_state()
  local r = S.req
  return {
    req = r and vim.deepcopy(r) or nil, visible = M.suggestion(), sent = S.sent, dropped = S.dropped,
    mark = S.mark and vim.deepcopy(S.mark) or nil, timer_active = S.timer ~= nil and S.timer:is_active(),
  }
end

return M
