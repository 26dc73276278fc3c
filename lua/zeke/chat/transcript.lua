-- lua/zeke/chat/transcript.lua: owns the text of the chat panel's transcript buffer: appending
-- lines (notes, headings, tool lines, the meter) with their highlights, streaming answer text
-- (deltas batched, at most one flush per 16 ms frame: only the last line is rewritten, new ones
-- added), rows marked to come back to (a heading renamed, a tool line updated in place), dropping
-- the text streamed since the last line (a `restart`), and rendering a saved conversation.
-- Invariants: nothing here re-renders the buffer (it is appended to, or one marked row or the
-- current text run changes); the buffer is 'nomodifiable' between changes; a window showing it
-- follows the end unless its cursor was moved up.
local M = {}

local api = vim.api

M.ns = api.nvim_create_namespace('zeke.chat') -- highlights
M.ns_rows = api.nvim_create_namespace('zeke.chat.rows') -- rows we come back to

local T = {
  buf = nil, ---@type integer|nil
  win = nil, ---@type integer|nil the window showing it, when shown
  open = false, -- the last line is streamed text still growing
  run = nil, ---@type integer|nil extmark of the first row of the current text run
  pending = '', -- text not appended yet
  queued = false, -- a flush is scheduled
  flushed_at = 0, -- vim.uv.now() of the last flush that wrote
}

local function present(v) return type(v) == 'string' and v ~= '' end

--- Makes `buf` the transcript (a new panel buffer) and `win` the window showing it (nil: hidden).
function M.bind(buf, win)
  if buf ~= T.buf then
    T.open, T.run, T.pending = false, nil, ''
  end
  T.buf, T.win = buf, win
end

function M.set_win(win) T.win = win end

local function valid() return T.buf ~= nil and api.nvim_buf_is_valid(T.buf) end
M.valid = valid

--- Changes the transcript with `fn(buf)`; keeps its window at the end unless the user moved the
--- cursor up to read.
function M.write(fn)
  if not valid() then return end
  local buf = T.buf
  local win = T.win and api.nvim_win_is_valid(T.win) and api.nvim_win_get_buf(T.win) == buf and T.win or nil
  local follow = not win or api.nvim_win_get_cursor(win)[1] >= api.nvim_buf_line_count(buf)
  vim.bo[buf].modifiable = true
  local ok, err = pcall(fn, buf)
  vim.bo[buf].modifiable = false
  if win and follow then pcall(api.nvim_win_set_cursor, win, { api.nvim_buf_line_count(buf), 0 }) end
  if not ok then error(err, 0) end
end

---@return boolean
function M.is_empty()
  if not valid() then return true end
  return api.nvim_buf_line_count(T.buf) == 1 and api.nvim_buf_get_lines(T.buf, 0, 1, false)[1] == ''
end

--- Highlights row `row` (all of it) with `hl`.
local function highlight(buf, row, text, hl)
  api.nvim_buf_set_extmark(buf, M.ns, row, 0, { end_col = #text, hl_group = hl })
end

--- Writes the pending streamed text: appended to the current text run (a new line starts one).
function M.flush()
  if T.pending == '' or not valid() then
    T.pending = ''
    return
  end
  local d = T.pending
  T.pending = ''
  T.flushed_at = vim.uv.now()
  M.write(function(buf)
    if not T.open then
      local n = api.nvim_buf_line_count(buf)
      api.nvim_buf_set_lines(buf, n, n, false, { '' })
      T.open = true
      if not T.run then T.run = api.nvim_buf_set_extmark(buf, M.ns_rows, n, 0, { right_gravity = false }) end
    end
    local n = api.nvim_buf_line_count(buf)
    local last = api.nvim_buf_get_lines(buf, n - 1, n, false)[1] or ''
    api.nvim_buf_set_lines(buf, n - 1, n, false, vim.split(last .. d, '\n', { plain = true }))
  end)
end

--- The shortest time between two flushes of streamed text, in ms: a fast stream changes the
--- buffer (and redraws) at most about 60 times a second, however many deltas arrive.
M.frame_ms = 16

local function scheduled_flush()
  T.queued = false
  local ok, err = pcall(M.flush)
  if not ok then vim.notify('zeke: chat: ' .. tostring(err), vim.log.levels.ERROR, { title = 'zeke' }) end
end

--- Streams `text` into the transcript: appended on the next flush — at once (on the next loop
--- turn) when the last flush is more than `frame_ms` ago, else when that frame ends, so many
--- deltas make one change of the buffer.
function M.append(text)
  if text == '' then return end
  T.pending = T.pending .. text
  if T.queued then return end
  T.queued = true
  local wait = M.frame_ms - (vim.uv.now() - T.flushed_at)
  if wait <= 0 then
    vim.schedule(scheduled_flush)
  else
    vim.defer_fn(scheduled_flush, wait)
  end
end

--- Whether streamed text continues the current run (false: the next text starts a new one).
function M.in_text() return T.open or T.pending ~= '' end

--- Drops the text streamed since the last whole line was added (a `restart`). Returns whether
--- there was any.
---@return boolean
function M.drop_run()
  M.flush()
  local row = T.run and M.mark_row(T.run)
  T.open, T.run = false, nil
  if not row then return false end
  M.write(function(buf) api.nvim_buf_set_lines(buf, row, -1, false, {}) end)
  return true
end

--- Appends whole lines after the last one (the first replaces an empty buffer's only line),
--- highlighted with `hl`; the streamed text before them is flushed and its run ends. Returns the
--- row of the first.
---@param lines string[]
---@param hl string|nil
---@return integer|nil
function M.add(lines, hl)
  if not valid() then return nil end
  M.flush()
  local first
  M.write(function(buf)
    local at = api.nvim_buf_line_count(buf)
    if M.is_empty() then
      api.nvim_buf_set_lines(buf, 0, 1, false, lines)
      at = 0
    else
      api.nvim_buf_set_lines(buf, at, at, false, lines)
    end
    first = at
    if hl then
      for i, l in ipairs(lines) do highlight(buf, at + i - 1, l, hl) end
    end
  end)
  T.open, T.run = false, nil
  return first
end

--- A note (several lines when `text` has newlines), highlighted `hl` (default ZekeChatNote).
function M.note(text, hl)
  return M.add(vim.split(text, '\n', { plain = true }), hl or 'ZekeChatNote')
end

--- A mark on `row` that follows it as lines are added (and `mark_row` finds again); it stays on
--- its row when that row is rewritten (left gravity).
---@return integer|nil
function M.mark(row)
  if not valid() or not row then return nil end
  return api.nvim_buf_set_extmark(T.buf, M.ns_rows, row, 0, { right_gravity = false })
end

---@return integer|nil
function M.mark_row(mark)
  if not mark or not valid() then return nil end
  local pos = api.nvim_buf_get_extmark_by_id(T.buf, M.ns_rows, mark, {})
  return pos[1]
end

--- Replaces row `row` by `text`, highlighted `hl`.
function M.set_row(row, text, hl)
  M.write(function(buf)
    api.nvim_buf_set_lines(buf, row, row + 1, false, { text })
    api.nvim_buf_clear_namespace(buf, M.ns, row, row + 1)
    if hl then highlight(buf, row, text, hl) end
  end)
end

--- Empties the transcript.
function M.clear()
  T.pending, T.open, T.run = '', false, nil
  M.write(function(buf)
    api.nvim_buf_clear_namespace(buf, M.ns, 0, -1)
    api.nvim_buf_clear_namespace(buf, M.ns_rows, 0, -1)
    api.nvim_buf_set_lines(buf, 0, -1, false, {})
  end)
end

---@return string[]
function M.lines()
  if not valid() then return {} end
  return api.nvim_buf_get_lines(T.buf, 0, -1, false)
end

-- What the lines say --------------------------------------------------------------------------

--- "## provider · model" ("## …" while unknown).
function M.heading(provider, model)
  local parts = {}
  if present(provider) then parts[#parts + 1] = provider end
  if present(model) then parts[#parts + 1] = model end
  if #parts == 0 then return '## …' end
  return '## ' .. table.concat(parts, ' · ')
end

--- Adds an answer's heading; returns its mark.
function M.add_heading(provider, model)
  local first = M.add({ '', M.heading(provider, model) }, nil)
  if not first then return nil end
  M.set_row(first + 1, M.heading(provider, model), 'ZekeChatHeader')
  return M.mark(first + 1)
end

--- The count of code-fence lines in `text`.
function M.fences(text)
  local n = 0
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    if line:match('^%s*```') or line:match('^%s*~~~') then n = n + 1 end
  end
  return n
end

--- Closes a code block `text` left open (an answer stopped or failed inside one), so what
--- follows is not highlighted as code.
function M.close_fence(text)
  M.flush()
  if M.fences(text) % 2 == 1 then M.add({ '```' }, nil) end
end

--- A user message: "## You" and its lines.
function M.user(message)
  local lines = {}
  if not M.is_empty() then lines[1] = '' end
  lines[#lines + 1] = '## You'
  local head = #lines
  vim.list_extend(lines, vim.split(message, '\n', { plain = true }))
  local row = M.add(lines, nil)
  if row then
    M.write(function(buf) highlight(buf, row + head - 1, '## You', 'ZekeChatUser') end)
  end
end

local function one_line(s, max)
  s = vim.trim((tostring(s or ''):gsub('%s+', ' ')))
  if vim.fn.strchars(s) > max then s = vim.fn.strcharpart(s, 0, max - 1) .. '…' end
  return s
end

--- The folded line of a tool call: `▸ read_text_file {"path":"a.py"} — ok: def add(a, b):`.
function M.tool_line(name, arguments, status, summary)
  local line = vim.trim(('▸ %s %s'):format(tostring(name), one_line(arguments, 100)))
  if status == 'running' then return line .. ' — running…' end
  line = line .. ' — ' .. tostring(status or '?')
  local s = one_line(summary, 100)
  if s ~= '' then line = line .. ': ' .. s end
  return line
end

--- Splits a stored user message into (context labels, the message): the backend stores the
--- context in front of it.
local function split_user(content)
  if not content:find('^Context:\n') then return {}, content end
  local labels = {}
  for l in content:gmatch('\n### ([^\n]+)\n```') do labels[#labels + 1] = l end
  local rest = content:match('.*\n```\n\n(.*)$')
  return labels, rest or content
end

--- Appends the stored messages of a conversation (`chat_load`): each message and answer, the
--- tool calls one line each (with the status and first line of their result).
---@param messages table[]
function M.render(messages)
  local results = {}
  for _, m in ipairs(messages) do
    if m.role == 'tool' and m.tool_call_id then results[m.tool_call_id] = m end
  end
  local last_head
  for _, m in ipairs(messages) do
    local content = tostring(m.content or '')
    if m.role == 'user' then
      local labels, text = split_user(content)
      M.user(text)
      if #labels > 0 then M.note('context: ' .. table.concat(labels, ', '), 'ZekeChatContext') end
      last_head = nil
    elseif m.role == 'assistant' then
      local head = M.heading(m.provider, m.model)
      if head ~= last_head then
        M.add_heading(m.provider, m.model)
        last_head = head
      end
      if content ~= '' then
        M.add(vim.split(content, '\n', { plain = true }), nil)
        if M.fences(content) % 2 == 1 then M.add({ '```' }, nil) end
      end
      for _, c in ipairs(type(m.tool_calls) == 'table' and m.tool_calls or {}) do
        local r = results[c.id]
        local status, summary = 'no result', ''
        if r then
          status = r.is_error and 'error' or 'ok'
          summary = tostring(r.content or ''):match('^[^\n]*')
        end
        M.add({ M.tool_line(c.name, c.arguments, status, summary) },
          status == 'ok' and 'ZekeChatTool' or 'ZekeChatToolFailed')
      end
    end
  end
end

return M
