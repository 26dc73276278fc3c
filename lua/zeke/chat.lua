-- lua/zeke/chat.lua: owns `:Zeke chat`, the chat panel: a transcript buffer (filetype `zeke-chat`,
-- Markdown highlighting) and an input buffer below it, in a float (default) or a right vertical
-- split (`chat.layout = "split"`); sending a message (`chat` notify, with the `#…` context that
-- `zeke.chat.context` expands, and the selection of a range) and streaming the turn's events into
-- the transcript (`chat_context`, `chat_delta`, `chat_tool`, `chat_done`, errors, the agent's
-- proposed edits); the policy's questions (`ask` → `answer`); the slash commands; resuming a saved
-- conversation (`chat_sessions`, `chat_load`) and `/compact`. The transcript's text is
-- `zeke.chat.transcript`'s.
-- Invariants: the transcript is only appended to while a turn streams (only a `restart` replaces
-- the current step's text, and a tool line or heading is updated in place); at most one turn in
-- flight; hiding the panel (`q`) keeps the conversation; events of any other turn are ignored;
-- edits are never applied here (they are patches the review of `:Zeke fix` shows).
local config = require('zeke.config')
local rpc = require('zeke.rpc')
local ctx = require('zeke.chat.context')
local T = require('zeke.chat.transcript')

local M = {}

local api = vim.api

M.ns = T.ns -- the transcript's highlights

local group = api.nvim_create_augroup('zeke.chat', { clear = true })

---@class zeke.ChatTurn
---@field id integer
---@field message string
---@field session string|nil
---@field done boolean
---@field detached boolean|nil `/new` or `/clear` while it ran: its session is not adopted
---@field header integer|nil extmark of its "## provider · model" line
---@field provider string|nil
---@field model string|nil
---@field texts string[] the answer's text, per step
---@field tools table<string, {mark: integer, status: string, name: string}>
---@field context table|nil {items, rules} from chat_context
---@field usage table|nil the chat_done payload
---@field error string|nil
---@field stopped boolean|nil

local S = {
  tbuf = nil, ---@type integer|nil transcript buffer
  ibuf = nil, ---@type integer|nil input buffer
  twin = nil, ---@type integer|nil
  iwin = nil, ---@type integer|nil
  layout = nil, ---@type string|nil the layout the windows were opened with
  session = nil, ---@type string|nil the conversation the next message continues
  sessions = {}, ---@type string[] every session id this panel used, in order (tests)
  root = nil, ---@type string|nil project root
  src = nil, ---@type integer|nil the buffer the chat was opened from
  src_win = nil, ---@type integer|nil its window
  range = nil, ---@type integer[]|nil the range `:Zeke chat` was given
  selection = nil, ---@type string|nil a range's text, attached as #selection to the next message
  turn = nil, ---@type zeke.ChatTurn|nil the turn in flight, or the last one
  turns = 0,
  asks = {}, ---@type table[] questions waiting to be shown
  asking = false,
  answers = {}, ---@type table[] what was answered (tests)
}

local function notify(msg, level) vim.notify(msg, level or vim.log.levels.INFO, { title = 'zeke' }) end

local function present(v) return type(v) == 'string' and v ~= '' end

local function is_panel_buf(buf) return buf ~= nil and (buf == S.tbuf or buf == S.ibuf) end

local function valid_win(w) return w ~= nil and api.nvim_win_is_valid(w) end

local function valid_buf(b) return b ~= nil and api.nvim_buf_is_valid(b) end

local note, flush = T.note, T.flush

--- Makes sure the turn's answer is headed with `provider · model`: adds the heading, fills in a
--- placeholder one, or (`in_place`, a fallback provider took over) renames it; a later step by
--- another provider gets a heading of its own.
local function ensure_header(t, provider, model, in_place)
  local known = present(provider) or present(model)
  if t.header then
    if not known or (provider == t.provider and model == t.model) then return end
    local row = T.mark_row(t.header)
    if row and (in_place or not (present(t.provider) or present(t.model))) then
      t.provider, t.model = provider, model
      T.set_row(row, T.heading(provider, model), 'ZekeChatHeader')
      return
    end
  end
  t.header = T.add_heading(provider, model)
  t.provider, t.model = provider, model
end

local function answer_text(t) return table.concat(t.texts, '') end

-- Windows ------------------------------------------------------------------------------------

local function has_border()
  local b = config.get().ui.border
  return b ~= 'none' and b ~= ''
end

local function layout_name()
  local c = config.get().chat
  return (c and c.layout == 'split') and 'split' or 'float'
end

local function title()
  local t = ' Zeke chat '
  if S.session then t = (' Zeke chat · %s '):format(S.session) end
  return t
end

--- The two floats' configs: transcript above, a 3-line input below, centered.
local function float_configs()
  local ui = config.get().ui
  local border = has_border()
  local width = math.max(30, math.min(math.max(ui.max_width, 60), vim.o.columns - 4))
  local total = math.max(10, math.floor((vim.o.lines - 2) * 0.8))
  local ih = 3
  local th = math.max(3, total - ih - (border and 4 or 1))
  local row = math.max(0, math.floor((vim.o.lines - total) / 2) - 1)
  local col = math.max(0, math.floor((vim.o.columns - width) / 2))
  local t = { relative = 'editor', style = 'minimal', border = ui.border, width = width, height = th, row = row, col = col }
  local i = {
    relative = 'editor', style = 'minimal', border = ui.border, width = width, height = ih,
    row = row + th + (border and 2 or 1), col = col,
  }
  if border then
    t.title, t.title_pos = title(), 'center'
    i.title, i.title_pos = ' <C-s> send · q hide · /help ', 'right'
  end
  return t, i
end

local function set_title()
  if layout_name() == 'float' and has_border() and valid_win(S.twin) and S.layout == 'float' then
    pcall(api.nvim_win_set_config, S.twin, { title = title(), title_pos = 'center' })
  end
end

--- Whether the panel is shown (both windows, holding our buffers).
---@return boolean
function M.is_open()
  return valid_win(S.twin) and valid_win(S.iwin) and api.nvim_win_get_buf(S.twin) == S.tbuf
    and api.nvim_win_get_buf(S.iwin) == S.ibuf
end

--- Hides the panel (`q`); the conversation stays (`:Zeke chat` shows it again). A turn in flight
--- goes on.
function M.hide()
  local tw, iw = S.twin, S.iwin
  local cur = api.nvim_get_current_win()
  local was_in = cur == tw or cur == iw
  S.twin, S.iwin = nil, nil
  for _, w in ipairs({ iw, tw }) do
    if valid_win(w) then pcall(api.nvim_win_close, w, true) end
  end
  if was_in and valid_win(S.src_win) then pcall(api.nvim_set_current_win, S.src_win) end
end

local set_keys

local function make_buffers()
  if not valid_buf(S.tbuf) then
    local b = api.nvim_create_buf(false, true)
    vim.bo[b].bufhidden = 'hide'
    pcall(api.nvim_buf_set_name, b, 'zeke://chat')
    vim.bo[b].filetype = 'zeke-chat'
    -- chat.highlight: tree-sitter's markdown (where available), Vim's markdown syntax (cheaper
    -- per redraw on long transcripts: see the README's chat measurements), or none
    local hl = (config.get().chat or {}).highlight or 'treesitter'
    pcall(vim.treesitter.language.register, 'markdown', 'zeke-chat')
    local ts = hl == 'treesitter' and pcall(vim.treesitter.start, b, 'markdown')
    if not ts then vim.bo[b].syntax = hl == 'none' and '' or 'markdown' end
    vim.bo[b].modifiable = false
    S.tbuf = b
    T.bind(b, nil)
    set_keys(b, false)
  end
  if not valid_buf(S.ibuf) then
    local b = api.nvim_create_buf(false, true)
    vim.bo[b].bufhidden = 'hide'
    pcall(api.nvim_buf_set_name, b, 'zeke://chat-input')
    vim.bo[b].filetype = 'zeke-chat-input'
    vim.bo[b].omnifunc = "v:lua.require'zeke.chat'.complete"
    vim.bo[b].completefunc = "v:lua.require'zeke.chat'.complete"
    S.ibuf = b
    set_keys(b, true)
  end
end

local function win_options(win, input)
  vim.wo[win].wrap = true
  vim.wo[win].linebreak = true
  vim.wo[win].number = false
  vim.wo[win].relativenumber = false
  vim.wo[win].signcolumn = 'no'
  vim.wo[win].foldcolumn = '0'
  vim.wo[win].spell = false
  if not input then
    -- conceallevel stays 0: with it ≥ 2, markdown's `conceal_lines` makes every cursor move
    -- re-parse the transcript (vim.treesitter's _on_conceal_line), 5–30 ms per streamed delta.
    vim.wo[win].foldmethod = 'manual'
  end
end

local function watch(win)
  api.nvim_create_autocmd('WinClosed', {
    group = group,
    pattern = tostring(win),
    once = true,
    callback = function()
      if win == S.twin or win == S.iwin then vim.schedule(M.hide) end
    end,
  })
end

--- Shows the panel (or, when shown, focuses its input). `opts.focus` (default true): move the
--- cursor into the input.
---@param opts table|nil {focus}
function M.open(opts)
  opts = opts or {}
  local focus = opts.focus ~= false
  make_buffers()
  if M.is_open() then
    if focus then api.nvim_set_current_win(S.iwin) end
    return
  end
  M.hide()
  T.bind(S.tbuf, nil)
  local layout = layout_name()
  local prev = api.nvim_get_current_win()
  if layout == 'float' then
    local tc, ic = float_configs()
    S.twin = api.nvim_open_win(S.tbuf, false, tc)
    S.iwin = api.nvim_open_win(S.ibuf, focus, ic)
  else
    local width = math.max(50, math.floor(vim.o.columns * 0.4))
    S.twin = api.nvim_open_win(S.tbuf, false, { split = 'right', win = -1, width = width })
    S.iwin = api.nvim_open_win(S.ibuf, focus, { split = 'below', win = S.twin, height = 4 })
    vim.wo[S.twin].winfixwidth = true
    vim.wo[S.iwin].winfixheight = true
    vim.wo[S.iwin].winfixwidth = true
    if not focus and valid_win(prev) then api.nvim_set_current_win(prev) end
  end
  S.layout = layout
  T.set_win(S.twin)
  win_options(S.twin, false)
  win_options(S.iwin, true)
  watch(S.twin)
  watch(S.iwin)
  pcall(api.nvim_win_set_cursor, S.twin, { api.nvim_buf_line_count(S.tbuf), 0 })
end

-- Sending ------------------------------------------------------------------------------------

--- Remembers the buffer (and window, and range) the chat is about; a new project root starts a
--- new conversation.
local function set_source(buf, win, range)
  S.src, S.src_win, S.range = buf, win, range
  local root = ctx.root(buf)
  if S.root and root ~= S.root and S.session then
    S.session = nil
    if not T.is_empty() then
      note(('── project %s: a new conversation ──'):format(root))
    end
  end
  S.root = root
  S.selection = nil
  if range then
    S.selection = ctx.lines_text(buf, range[1], range[2])
  end
end

local function short(path)
  if not path or path == '' then return '[No Name]' end
  return vim.fn.fnamemodify(path, ':~:.')
end

local slash -- forward

--- Sends `text`: a slash command, or a message (its `#…` context expanded; a range's selection
--- attached as `#selection`) that starts a turn of the current conversation (a new one when
--- there is none). Returns the request id (or true for a slash command); nil, err when refused.
---@param text string
---@return integer|boolean|nil, string|nil
function M.send(text)
  config.check_arg('text', text, 'string')
  text = vim.trim(text)
  if text == '' then return nil, 'empty message' end
  make_buffers()
  if text:sub(1, 1) == '/' then return slash(text) end
  if S.turn and not S.turn.done then
    local why = 'a turn is still running: wait for it, or :Zeke stop'
    notify('zeke: chat: ' .. why, vim.log.levels.WARN)
    return nil, why
  end
  if not S.root then S.root = ctx.root(S.src) end
  local items, err = ctx.expand(text, S.src, S.root)
  if not items then
    note('⚠ ' .. err, 'ZekeChatError')
    notify('zeke: chat: ' .. err, vim.log.levels.WARN)
    return nil, err
  end
  if not rpc.ensure() then
    note('⚠ the Zeke backend is not running (see :checkhealth zeke)', 'ZekeChatError')
    return nil, 'backend not running'
  end
  if S.selection then -- the range `:Zeke chat` was given is the selection
    local has = false
    for _, it in ipairs(items) do
      if it.label == '#selection' then it.text, has = S.selection, true end
    end
    if not has then table.insert(items, 1, { label = '#selection', text = S.selection }) end
    S.selection = nil
  end
  local id = rpc.next_id()
  S.turn = { id = id, message = text, done = false, texts = {}, tools = {} }
  S.turns = S.turns + 1
  -- the backend starts on the turn first; the message is drawn while it works
  rpc.notify('chat', { id = id, session = S.session, message = text, context = items, root = S.root, agent = true })
  T.user(text)
  return id
end

--- Sends what the input holds (and empties it when it was sent).
function M.submit()
  if not valid_buf(S.ibuf) then return end
  local text = table.concat(api.nvim_buf_get_lines(S.ibuf, 0, -1, false), '\n')
  if vim.trim(text) == '' then return end
  local ok = M.send(text)
  if ok and valid_buf(S.ibuf) then
    api.nvim_buf_set_lines(S.ibuf, 0, -1, false, { '' })
    if valid_win(S.iwin) then pcall(api.nvim_win_set_cursor, S.iwin, { 1, 0 }) end
  end
end

--- `:Zeke chat [message]` (`resume`: pick a saved conversation). `range` ({start_row, end_row},
--- 0-based inclusive): its lines go with the next message as `#selection`.
---@param message string|nil
---@param range integer[]|nil
function M.command(message, range)
  local cur = api.nvim_get_current_buf()
  if not is_panel_buf(cur) then set_source(cur, api.nvim_get_current_win(), range) end
  message = vim.trim(message or '')
  if message == 'resume' then return M.resume() end
  M.open()
  if message ~= '' then
    M.send(message)
  else
    if S.selection then
      note(('(the selection of %s goes with your next message as #selection)'):format(short(api.nvim_buf_get_name(cur))))
    end
    vim.cmd('startinsert!')
  end
end

-- Events -------------------------------------------------------------------------------------

--- The turn an event is for (nil for another turn's).
local function turn_of(p)
  local t = S.turn
  if not t or p.id ~= t.id then return nil end
  if present(p.session) and not t.detached then
    t.session = p.session
    if S.session ~= p.session then
      S.session = p.session
      if S.sessions[#S.sessions] ~= p.session then S.sessions[#S.sessions + 1] = p.session end
      set_title()
    end
  end
  return t
end

local function tokens(n) return require('zeke.router').tokens(n) end

--- `chat_context {id, session, items = {{label, tokens}}, rules}`: what the turn carries.
function M.on_context(p)
  local t = turn_of(p)
  if not t then return end
  local items = type(p.items) == 'table' and p.items or {}
  t.context = { items = items, rules = p.rules }
  local parts = {}
  for _, it in ipairs(items) do
    parts[#parts + 1] = ('%s (~%s tokens)'):format(tostring(it.label), tokens(it.tokens))
  end
  local line = {}
  if #parts > 0 then line[#line + 1] = 'context: ' .. table.concat(parts, ', ') end
  if type(p.rules) == 'table' then
    line[#line + 1] = ('rules: %s (~%s)'):format(tostring(p.rules.name), tokens(p.rules.tokens))
  end
  if #line > 0 then
    flush()
    note(table.concat(line, ' · '), 'ZekeChatContext')
  end
end

--- The notices held back while text streamed (see on_notice), now that it ended.
local function held_notices(t)
  local held = t.notices or {}
  t.notices = nil
  for _, line in ipairs(held) do note(line, 'ZekeChatNote') end
end

--- `chat_delta {id, session, delta, restart, provider, model}`.
function M.on_delta(p)
  local t = turn_of(p)
  if not t or t.done then return end
  if p.restart then
    if T.drop_run() then t.texts[#t.texts] = nil end -- the step's text so far goes
    held_notices(t)
    t.restarts = (t.restarts or 0) + 1
    ensure_header(t, p.provider, p.model, true)
  end
  local delta = type(p.delta) == 'string' and p.delta or ''
  if delta == '' then return end
  -- another provider continuing the text of this step (a fallback) renames the heading; a later
  -- step by another provider gets its own
  ensure_header(t, p.provider, p.model, T.in_text())
  if not T.in_text() or #t.texts == 0 then t.texts[#t.texts + 1] = '' end
  t.texts[#t.texts] = t.texts[#t.texts] .. delta
  T.append(delta)
end

local STATUS_HL = { running = 'ZekeChatTool', ok = 'ZekeChatTool', error = 'ZekeChatToolFailed', denied = 'ZekeChatToolFailed' }

M.tool_line = T.tool_line

--- `chat_tool {id, session, call_id, name, arguments, status, summary}`: one line per call,
--- updated in place when its status changes.
function M.on_tool(p)
  local t = turn_of(p)
  if not t or t.done then return end
  flush()
  held_notices(t)
  ensure_header(t, t.provider, t.model, false)
  local line = T.tool_line(p.name, p.arguments, p.status, p.summary)
  local hl = STATUS_HL[p.status] or 'ZekeChatTool'
  local key = tostring(p.call_id or p.name)
  local known = t.tools[key]
  local row = known and T.mark_row(known.mark)
  if row then
    T.set_row(row, line, hl)
    known.status = p.status
  else
    t.tools[key] = { mark = T.mark(T.add({ line }, hl)), status = p.status, name = p.name }
  end
end

--- `patch {job = "chat", path, …}`: the agent proposed an edit; the review window of `:Zeke fix`
--- shows it (the float panel steps aside for it; `:Zeke chat` brings it back).
function M.on_patch(p)
  local t = turn_of(p)
  if not t then return end
  flush()
  note(('✎ proposed an edit to %s — review it (:Zeke review)'):format(short(p.path)), 'ZekeChatTool')
  if S.layout == 'float' and M.is_open() then M.hide() end
end

--- `notice {job = "chat", message}` during a turn: also in the transcript (errors.lua notifies
--- too). One that comes in the middle of the answer's text waits for the text's end (a tool
--- line, the turn's end, or a `restart` replacing it): a note line would end the text run a
--- restart has to drop.
function M.on_notice(p)
  local t = S.turn
  if not t or t.done then return end
  local line = 'ℹ ' .. vim.trim(tostring(p.message or ''))
  if T.in_text() then
    t.notices = t.notices or {}
    t.notices[#t.notices + 1] = line
    return
  end
  note(line, 'ZekeChatNote')
end


local function meter(p)
  local input, window = tonumber(p.input_tokens) or 0, tonumber(p.context_window)
  local parts, high = {}, false
  if window and window > 0 then
    local pct = math.floor(100 * input / window + 0.5)
    high = input >= 0.8 * window
    parts[1] = ('%s / %s tokens (%d %%)'):format(tokens(input), tokens(window), pct)
  else
    parts[1] = ('%s tokens in'):format(tokens(input))
  end
  parts[#parts + 1] = ('%s out'):format(tokens(p.output_tokens))
  parts[#parts + 1] = require('zeke.router').money(tonumber(p.cost_usd) or 0)
  local steps = tonumber(p.steps) or 1
  parts[#parts + 1] = ('%d step%s'):format(steps, steps == 1 and '' or 's')
  return '▪ ' .. table.concat(parts, ' · '), high
end

--- `chat_done {id, session, provider, model, input_tokens, output_tokens, context_window?,
--- cost_usd, steps}`: the token meter (highlighted from 80 % of the context window).
function M.on_done(p)
  local t = turn_of(p)
  if not t or t.done then return end
  flush()
  ensure_header(t, p.provider, p.model, false)
  if answer_text(t) == '' and next(t.tools) == nil then note('(no answer)', 'ZekeChatNote') end
  T.close_fence(answer_text(t))
  held_notices(t)
  t.done = true
  t.usage = p
  local line, high = meter(p)
  t.meter_high = high
  T.add({ line }, high and 'ZekeChatMeterHigh' or 'ZekeChatMeter')
  require('zeke.errors').success('chat')
end

--- An `error` event of job `chat`: shown in the transcript (errors.lua notifies too).
function M.on_error(e)
  local t = S.turn
  if not t or t.done or (e.id ~= nil and e.id ~= t.id) then return end
  T.close_fence(answer_text(t))
  t.done = true
  t.error = tostring(e.message or e.kind or 'error')
  note('⚠ ' .. require('zeke.errors').format(e), 'ZekeChatError')
end

--- `:Zeke stop`: the turn in flight is cancelled (the backend was told).
function M.on_stop()
  local t = S.turn
  if not t or t.done then return end
  T.close_fence(answer_text(t))
  t.done = true
  t.stopped = true
  note('[stopped]', 'ZekeChatNote')
end

function M.on_backend_exit()
  local t = S.turn
  if not t or t.done then return end
  T.close_fence(answer_text(t))
  t.done = true
  t.error = 'backend exited'
  note('⚠ the Zeke backend exited; the conversation is saved: send the next message to go on', 'ZekeChatError')
end

-- Questions of the policy (`ask` → `answer`) -------------------------------------------------

M.CHOICES = {
  { label = 'Allow once', choice = 'allow_once' },
  { label = 'Allow all (session)', choice = 'allow_all', scope = 'session' },
  { label = 'Allow all (project)', choice = 'allow_all', scope = 'project' },
  { label = 'Deny…', choice = 'deny' },
}

local next_ask

local function answer(a, choice, scope, reason, label)
  local params = { ask = a.ask, choice = choice, scope = scope, reason = reason }
  rpc.notify('answer', params)
  S.answers[#S.answers + 1] = params
  if T.valid() then
    note('→ ' .. label .. (reason and (': ' .. reason) or ''), choice == 'deny' and 'ZekeChatToolFailed' or 'ZekeChatNote')
  end
  S.asking = false
  vim.schedule(next_ask)
end

next_ask = function()
  if S.asking or #S.asks == 0 then return end
  local a = table.remove(S.asks, 1)
  S.asking = true
  local what = tostring(a.what or '')
  local head = ('%s asks for %s in %s:'):format(tostring(a.tool or '?'), tostring(a.capability or '?'),
    tostring(a.root or '?'))
  local lines = { '? ' .. head }
  for _, l in ipairs(vim.split(what, '\n', { plain = true })) do lines[#lines + 1] = '    ' .. l end
  T.add(lines, 'ZekeChatAsk')
  vim.ui.select(M.CHOICES, {
    prompt = ('Zeke: %s\n%s\n'):format(head, what),
    kind = 'zeke.ask',
    format_item = function(c) return c.label end,
  }, function(c)
    if not c then return answer(a, 'deny', nil, 'dismissed', 'Denied') end
    if c.choice ~= 'deny' then return answer(a, c.choice, c.scope, nil, c.label) end
    vim.ui.input({ prompt = 'Why deny (optional, goes to the model): ' }, function(reason)
      reason = reason and vim.trim(reason) or ''
      answer(a, 'deny', nil, reason ~= '' and reason or nil, 'Denied')
    end)
  end)
end

--- An `ask` event {ask, capability, tool, what, root}: the policy asks the user (e.g. the agent
--- wants `run_command`; `what` is the exact command line). Shown in the transcript (every line of
--- `what`) and asked with vim.ui.select; the choice goes back as `answer`. One at a time.
function M.on_ask(p)
  S.asks[#S.asks + 1] = p
  vim.schedule(function()
    if valid_buf(S.tbuf) and not M.is_open() then pcall(M.open, { focus = false }) end
    next_ask()
  end)
end

-- Sessions -----------------------------------------------------------------------------------

local function clear_transcript()
  make_buffers()
  T.clear()
end

--- Forgets the conversation: the next message starts a new one (`/new`). A turn in flight goes
--- on, but its session is not continued.
function M.new_session()
  if S.turn and not S.turn.done then S.turn.detached = true end
  S.session = nil
  set_title()
end

--- Shows saved conversation `id` of project `root` (default: the current one) and continues it.
---@param id string
---@param root string|nil
---@return boolean
function M.load(id, root)
  root = root or S.root or ctx.root(api.nvim_get_current_buf())
  if S.turn and not S.turn.done then
    notify('zeke: chat: a turn is still running: wait for it, or :Zeke stop', vim.log.levels.WARN)
    return false
  end
  local s, err = rpc.request('chat_load', { root = root, session = id })
  if not s then
    notify('zeke: could not load the chat session: ' .. tostring(err), vim.log.levels.ERROR)
    return false
  end
  clear_transcript()
  S.root = root
  S.session = s.id or id
  if S.sessions[#S.sessions] ~= S.session then S.sessions[#S.sessions + 1] = S.session end
  S.turn = nil
  note(('── %s · %s ──'):format(tostring(s.title or ''), S.session))
  T.render(type(s.messages) == 'table' and s.messages or {})
  M.open()
  set_title()
  return true
end

--- `:Zeke chat resume`: a vim.ui.select of this project's saved conversations (newest first);
--- the chosen one is shown and continued.
function M.resume()
  local root = S.root or ctx.root(api.nvim_get_current_buf())
  local list, err = rpc.request('chat_sessions', { root = root })
  if not list then
    notify('zeke: could not list the chat sessions: ' .. tostring(err), vim.log.levels.ERROR)
    return
  end
  if #list == 0 then
    notify('zeke: no saved chat sessions in ' .. root)
    return
  end
  vim.ui.select(list, {
    prompt = 'Zeke chat: resume a conversation',
    kind = 'zeke.chat_session',
    format_item = function(s)
      local when = tonumber(s.updated_ms) and os.date('%Y-%m-%d %H:%M', math.floor(s.updated_ms / 1000)) or '?'
      local n = tonumber(s.turns) or 0
      return ('%s · %s · %d turn%s · %s'):format(tostring(s.title), when, n, n == 1 and '' or 's', tostring(s.id))
    end,
  }, function(s)
    if s then M.load(s.id, root) end
  end)
end

--- `/compact`: the backend replaces the conversation's older turns by a summary the model writes
--- (the last two turns stay); `chat_compacted` says how many tokens that saved. Returns true when
--- it was asked.
---@return boolean
function M.compact()
  if S.turn and not S.turn.done then
    note('⚠ a turn is still running: wait for it, or :Zeke stop', 'ZekeChatError')
    return false
  end
  if not S.session then
    note('⚠ /compact: no conversation yet (send a message first)', 'ZekeChatError')
    return false
  end
  if not rpc.ensure() then return false end
  local id = rpc.next_id()
  S.turn = { id = id, kind = 'compact', message = '/compact', done = false, texts = {}, tools = {} }
  note('… compacting the conversation (the model writes a summary of the older turns)')
  rpc.notify('chat_compact', { id = id, root = S.root, session = S.session })
  return true
end

--- `chat_compacted {id, session, before_tokens, after_tokens}`.
function M.on_compacted(p)
  local t = turn_of(p)
  if not t or t.done then return end
  t.done = true
  t.usage = p
  note(('── compacted: ~%s → ~%s tokens; the older turns are a summary now ──'):format(tokens(p.before_tokens),
    tokens(p.after_tokens)))
  require('zeke.errors').success('chat')
end

-- Slash commands -----------------------------------------------------------------------------

--- Runs `fn(range)` in the window of the buffer the chat was opened from.
local function in_source(fn)
  if not valid_buf(S.src) or is_panel_buf(S.src) then
    note('⚠ the buffer the chat was opened from is gone: run :Zeke chat from a buffer', 'ZekeChatError')
    return false
  end
  if S.layout == 'float' then M.hide() end
  local win = valid_win(S.src_win) and api.nvim_win_get_buf(S.src_win) == S.src and S.src_win or nil
  if not win then
    for _, w in ipairs(api.nvim_tabpage_list_wins(0)) do
      if api.nvim_win_get_buf(w) == S.src then win = w break end
    end
  end
  if not win then
    for _, w in ipairs(api.nvim_tabpage_list_wins(0)) do
      if api.nvim_win_get_config(w).relative == '' and not is_panel_buf(api.nvim_win_get_buf(w)) then
        win = w
        api.nvim_win_set_buf(w, S.src)
        break
      end
    end
  end
  if not win then return false end
  api.nvim_set_current_win(win)
  S.src_win = win
  fn(S.range)
  return true
end

local SLASH = {
  { word = '/explain', menu = 'explain the selection or the function at the cursor (:Zeke explain)',
    run = function() return in_source(function(r) require('zeke').explain(r) end) end },
  { word = '/fix', menu = 'propose a fix for review (:Zeke fix)',
    run = function() return in_source(function(r) require('zeke').fix(r) end) end },
  { word = '/test', menu = 'propose tests for review (:Zeke test)',
    run = function() return in_source(function(r) require('zeke').test(r) end) end },
  { word = '/edit', menu = 'rewrite the selection or function as instructed, for review (:Zeke edit)',
    run = function(arg)
      return in_source(function(r) require('zeke').edit(r, arg ~= '' and arg or nil) end)
    end },
  { word = '/model', menu = 'pick the model (:Zeke model)',
    run = function() require('zeke.router').model_command(nil) return true end },
  { word = '/new', menu = 'start a new conversation (the transcript stays)',
    run = function()
      M.new_session()
      note('── new conversation ──')
      return true
    end },
  { word = '/clear', menu = 'clear the transcript and start a new conversation',
    run = function()
      M.new_session()
      clear_transcript()
      return true
    end },
  { word = '/resume', menu = 'continue a saved conversation of this project',
    run = function() M.resume() return true end },
  { word = '/usage', menu = 'spend and the last requests (:Zeke usage)',
    run = function() require('zeke.router').usage() return true end },
  { word = '/compact', menu = 'replace the older turns by a summary the model writes (the last two stay)',
    run = function() return M.compact() end },
  { word = '/help', menu = 'the keys, slash commands and # context',
    run = function()
      local lines = { 'keys: <CR> (normal) or <C-s> send · q hides · <C-c> stops the turn · <Tab> completes / and #' }
      local cmds = {}
      for _, s in ipairs(M.SLASH) do cmds[#cmds + 1] = ('  %s  %s'):format(s.word, s.menu) end
      vim.list_extend(lines, cmds)
      lines[#lines + 1] = 'context: #buffer #selection #diagnostics #file:PATH #git:diff (see :h zeke-chat-context)'
      note(table.concat(lines, '\n'))
      return true
    end },
}
M.SLASH = SLASH

slash = function(text)
  local word = text:match('^(/%S+)')
  for _, s in ipairs(SLASH) do
    if s.word == word then
      local ok, res = pcall(s.run, vim.trim(text:sub(#word + 1)))
      if not ok then
        note('⚠ ' .. word .. ': ' .. tostring(res), 'ZekeChatError')
        return nil, tostring(res)
      end
      return res and true or nil
    end
  end
  local names = vim.tbl_map(function(s) return s.word end, SLASH)
  local why = ('unknown command %s (one of %s)'):format(tostring(word), table.concat(names, ' '))
  note('⚠ ' .. why, 'ZekeChatError')
  return nil, why
end

--- 'omnifunc' / 'completefunc' of the input: `/` commands and `#` context (`#file:` paths
--- relative to the project root).
function M.complete(findstart, base)
  return ctx.complete(findstart, base, SLASH, S.root or ctx.root(S.src))
end

-- Keys ---------------------------------------------------------------------------------------

set_keys = function(buf, input)
  local function map(mode, lhs, fn, desc)
    vim.keymap.set(mode, lhs, fn, { buffer = buf, nowait = true, silent = true, desc = 'Zeke chat: ' .. desc })
  end
  map('n', 'q', M.hide, 'hide the panel (the conversation stays)')
  map('n', '<C-c>', function() require('zeke').stop() end, 'stop the turn in flight (:Zeke stop)')
  if input then
    map('n', '<CR>', M.submit, 'send')
    map({ 'n', 'i' }, '<C-s>', M.submit, 'send')
    -- not an expr map: that would run before the characters typed ahead of it are inserted
    map('i', '<Tab>', function()
      local keys = '<Tab>'
      if vim.fn.pumvisible() == 1 then
        keys = '<C-n>'
      else
        local before = api.nvim_get_current_line():sub(1, api.nvim_win_get_cursor(0)[2])
        if before:match('[#/][^%s]*$') then keys = '<C-x><C-o>' end
      end
      api.nvim_feedkeys(api.nvim_replace_termcodes(keys, true, false, true), 'n', false)
    end, 'complete / commands and # context')
  else
    map('n', 'i', function()
      M.open()
      vim.cmd('startinsert!')
    end, 'type in the input')
  end
end

-- State --------------------------------------------------------------------------------------

--- The panel's state, for tests and the demo.
function M.state()
  local t = S.turn
  return {
    open = M.is_open(),
    layout = S.layout,
    session = S.session,
    sessions = vim.deepcopy(S.sessions),
    root = S.root,
    src = S.src,
    tbuf = S.tbuf,
    ibuf = S.ibuf,
    twin = valid_win(S.twin) and S.twin or nil,
    iwin = valid_win(S.iwin) and S.iwin or nil,
    lines = T.lines(),
    input = valid_buf(S.ibuf) and api.nvim_buf_get_lines(S.ibuf, 0, -1, false) or {},
    turns = S.turns,
    answers = vim.deepcopy(S.answers),
    turn = t and {
      id = t.id, kind = t.kind or 'chat', message = t.message, session = t.session, done = t.done,
      text = answer_text(t),
      provider = t.provider, model = t.model, error = t.error, stopped = t.stopped == true,
      context = vim.deepcopy(t.context), usage = vim.deepcopy(t.usage), restarts = t.restarts or 0,
      meter_high = t.meter_high == true,
      tools = vim.tbl_map(function(x) return { status = x.status, name = x.name } end, t.tools),
    } or nil,
  }
end

return M
