-- lua/zeke/chat/context.lua: owns what the chat panel attaches to a message: the project root of
-- a buffer, the `#…` context tokens (`#buffer`, `#selection`, `#diagnostics`, `#file:PATH`,
-- `#git:diff`) expanded into `{label, text}` items, and the completion of `/` commands and `#`
-- tokens in the panel's input. Invariants: `#file:` never reads outside the project root (a path
-- that leaves it, also through a symlink, is refused); nothing here blocks the editor for more than
-- about a second (`git diff` is given GIT_TIMEOUT_MS, then killed); nothing here talks to the
-- backend.
local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

M.GIT_TIMEOUT_MS = 1000
M.MAX_FILE_BYTES = 512 * 1024

--- The `#` tokens the input completes (besides `#file:PATH`).
M.TOKENS = {
  { word = '#buffer', menu = 'the text of the buffer the chat was opened from' },
  { word = '#selection', menu = 'the last visual selection of that buffer' },
  { word = '#diagnostics', menu = "that buffer's diagnostics" },
  { word = '#file:', menu = 'a file of the project (path relative to the root)' },
  { word = '#git:diff', menu = '`git diff` in the project root' },
}

local function strip_slash(p)
  if #p > 1 then p = p:gsub('/+$', '') end
  return p
end

--- An absolute, normalized path with symlinks resolved (also when the file does not exist yet:
--- its nearest existing parent is resolved).
local function real(path)
  path = vim.fs.normalize(vim.fn.fnamemodify(path, ':p'))
  local rp = uv.fs_realpath(path)
  if rp then return strip_slash(rp) end
  local parent, tail = vim.fs.dirname(path), vim.fs.basename(path)
  if parent == path then return strip_slash(path) end
  return strip_slash(real(parent) .. '/' .. tail)
end
M.real = real

--- The project root of `buf`: the nearest ancestor directory holding `.git` of its file (of the
--- cwd for a buffer without a file), else the cwd.
---@param buf integer|nil
---@return string
function M.root(buf)
  local name = (buf and api.nvim_buf_is_valid(buf)) and api.nvim_buf_get_name(buf) or ''
  local start = name ~= '' and vim.fs.dirname(vim.fn.fnamemodify(name, ':p')) or uv.cwd()
  local found = vim.fs.find('.git', { path = start, upward = true, limit = 1 })[1]
  local root = found and vim.fs.dirname(found) or uv.cwd()
  return real(root)
end

--- Whether `path` (absolute, resolved) is `root` or inside it.
local function inside(path, root)
  return path == root or path:sub(1, #root + 1) == root .. '/'
end

local function buf_text(buf)
  return table.concat(api.nvim_buf_get_lines(buf, 0, -1, false), '\n')
end

--- The text of rows s..e (0-based, inclusive) of `buf`.
function M.lines_text(buf, s, e)
  return table.concat(api.nvim_buf_get_lines(buf, s, e + 1, false), '\n')
end

--- The last visual selection of `buf` (the `'<` and `'>` marks), or nil when it has none.
---@param buf integer
---@return string|nil
function M.selection(buf)
  if not api.nvim_buf_is_valid(buf) then return nil end
  local s = api.nvim_buf_get_mark(buf, '<')
  local e = api.nvim_buf_get_mark(buf, '>')
  if s[1] == 0 or e[1] == 0 then return nil end
  local text
  if vim.fn.exists('*getregion') == 1 then
    local ok, region = pcall(api.nvim_buf_call, buf, function()
      local mode = vim.fn.visualmode()
      if mode == '' then mode = 'V' end
      return vim.fn.getregion({ buf, s[1], s[2] + 1, 0 }, { buf, e[1], e[2] + 1, 0 }, { type = mode })
    end)
    if ok and type(region) == 'table' then text = table.concat(region, '\n') end
  end
  return text or M.lines_text(buf, s[1] - 1, e[1] - 1)
end

local SEVERITY = { 'ERROR', 'WARN', 'INFO', 'HINT' }

--- The name of `buf` for the model: relative to `root` when inside it.
local function rel_name(buf, root)
  local name = api.nvim_buf_get_name(buf)
  if name == '' then return '[No Name]' end
  local abs = real(name)
  if root and inside(abs, real(root)) and abs ~= real(root) then return abs:sub(#real(root) + 2) end
  return vim.fn.fnamemodify(name, ':~')
end

--- `buf`'s diagnostics, one line each: `path:line:col: SEVERITY: message [source]` (the path
--- relative to `root`).
function M.diagnostics(buf, root)
  local name = rel_name(buf, root)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    out[#out + 1] = ('%s:%d:%d: %s: %s%s'):format(name, (d.lnum or 0) + 1, (d.col or 0) + 1,
      SEVERITY[d.severity] or tostring(d.severity), tostring(d.message or ''):gsub('\n', ' '),
      d.source and (' [' .. tostring(d.source) .. ']') or '')
  end
  if #out == 0 then return '(no diagnostics)' end
  return table.concat(out, '\n')
end

--- The text of the project file `rel` (relative to `root`, or absolute inside it): the loaded
--- buffer's text when it is loaded (unsaved changes included), else the file's. (nil, why) when
--- the path leaves the root, is not a readable file, or is too big.
---@return string|nil text, string|nil err
function M.file(rel, root)
  if rel == nil or rel == '' then return nil, '#file: needs a path, e.g. #file:src/main.rs' end
  local path = rel:sub(1, 1) == '/' and rel or (root .. '/' .. rel)
  local abs = real(path)
  if not inside(abs, real(root)) then
    return nil, ('#file:%s is outside the project root %s; refused'):format(rel, root)
  end
  local bnr = vim.fn.bufnr(abs)
  if bnr > 0 and api.nvim_buf_is_loaded(bnr) then return buf_text(bnr) end
  local st = uv.fs_stat(abs)
  if not st or st.type ~= 'file' then return nil, ('#file:%s: no such file in %s'):format(rel, root) end
  if st.size > M.MAX_FILE_BYTES then
    return nil, ('#file:%s is %d KiB (most %d KiB): attach a part of it with a selection instead')
      :format(rel, math.ceil(st.size / 1024), M.MAX_FILE_BYTES / 1024)
  end
  local f = io.open(abs, 'rb')
  if not f then return nil, ('#file:%s: cannot be read'):format(rel) end
  local text = f:read('*a') or ''
  f:close()
  return (text:gsub('\n$', ''))
end

--- `git diff` in `root`, waiting at most GIT_TIMEOUT_MS.
---@return string|nil text, string|nil err
function M.git_diff(root)
  local ok, job = pcall(vim.system, { 'git', '--no-pager', 'diff', '--no-color' },
    { cwd = root, text = true, env = { GIT_TERMINAL_PROMPT = '0' } })
  if not ok then return nil, '#git:diff: cannot run git: ' .. tostring(job) end
  local r = job:wait(M.GIT_TIMEOUT_MS) -- on timeout it is killed and the code is 124
  if r.code == 124 or (r.signal and r.signal ~= 0) then
    return nil, ('#git:diff: git diff took longer than %d ms; not attached'):format(M.GIT_TIMEOUT_MS)
  end
  if r.code ~= 0 then
    return nil, '#git:diff: ' .. vim.trim((r.stderr or '') ~= '' and r.stderr or ('git exited with ' .. r.code))
  end
  local out = (r.stdout or ''):gsub('\n$', '')
  if out == '' then return '(no changes)' end
  return out
end

--- Finds the `#` tokens of `message` (each once): a list of {label, kind, arg}. A token starts
--- the message or follows white space; trailing punctuation (`,;!?)`) is not part of it. Unknown
--- `#words` are left alone (plain text).
---@param message string
---@return table[]
function M.tokens(message)
  local out, seen = {}, {}
  for pre, tok in ('\n' .. message):gmatch('(%s)(#[%w_:][^%s]*)') do
    local _ = pre
    tok = tok:gsub('[,;!?%)%]]+$', ''):gsub('%.$', '')
    local kind, arg
    if tok == '#buffer' or tok == '#selection' or tok == '#diagnostics' or tok == '#git:diff' then
      kind = tok:sub(2)
    elseif tok:find('^#file:') then
      kind, arg = 'file', tok:sub(7)
    end
    if kind and not seen[tok] then
      seen[tok] = true
      out[#out + 1] = { label = tok, kind = kind, arg = arg }
    end
  end
  return out
end

--- Expands the `#` tokens of `message` against source buffer `src` and project `root` into
--- context items {label, text}. The message itself is sent unchanged (the tokens stay in it: the
--- model sees each item under its label). Returns (items) or (nil, why) when one is refused.
---@param message string
---@param src integer|nil
---@param root string
---@return table[]|nil items, string|nil err
function M.expand(message, src, root)
  local items = {}
  local valid_src = src and api.nvim_buf_is_valid(src)
  for _, t in ipairs(M.tokens(message)) do
    local text, err
    if t.kind == 'file' then
      text, err = M.file(t.arg, root)
    elseif t.kind == 'git:diff' then
      text, err = M.git_diff(root)
    elseif not valid_src then
      err = t.label .. ': the buffer the chat was opened from is gone'
    elseif t.kind == 'buffer' then
      text = buf_text(src)
    elseif t.kind == 'selection' then
      text = M.selection(src)
      if not text then err = '#selection: that buffer has no visual selection yet' end
    elseif t.kind == 'diagnostics' then
      text = M.diagnostics(src, root)
    end
    if err then return nil, err end
    items[#items + 1] = { label = t.label, text = text }
  end
  return items
end

-- Completion ---------------------------------------------------------------------------------

--- Paths under `root` completing `prefix` (relative), directories with a trailing `/`.
function M.complete_paths(prefix, root)
  if prefix:find('^%.%.$') or prefix:find('^%.%./') or prefix:find('/%.%./') or prefix:find('/%.%.$')
    or prefix:sub(1, 1) == '/' or prefix:sub(1, 1) == '~' then
    return {} -- only paths inside the root, written from it
  end
  local rroot = real(root)
  local base = rroot .. '/' .. prefix
  local out = {}
  for _, p in ipairs(vim.fn.getcompletion(base, 'file', true)) do
    local abs = real(p)
    if inside(abs, rroot) and p:sub(1, #rroot + 1) == rroot .. '/' then
      out[#out + 1] = p:sub(#rroot + 2)
    end
  end
  return out
end

--- An 'omnifunc' / 'completefunc' for the input buffer: `/` commands (first word of the message)
--- and `#` tokens (anywhere), `#file:` with paths relative to the root.
---@param findstart integer
---@param base string
---@param slash table[] {word, menu} of the slash commands
---@param root string
function M.complete(findstart, base, slash, root)
  if findstart == 1 then
    local line = api.nvim_get_current_line()
    local col = api.nvim_win_get_cursor(0)[2]
    local before = line:sub(1, col)
    local start = before:find('[#/][^%s]*$')
    if not start then return -3 end
    local c = before:sub(start, start)
    local row = api.nvim_win_get_cursor(0)[1]
    if c == '/' and not (row == 1 and before:sub(1, start - 1):match('^%s*$')) then
      -- a `/` inside a path (`#file:src/a`): complete the whole token
      local h = before:find('#[^%s]*$')
      if not h then return -3 end
      start = h
    end
    return start - 1
  end
  local items = {}
  if base:sub(1, 1) == '/' then
    for _, s in ipairs(slash) do
      if vim.startswith(s.word, base) then items[#items + 1] = { word = s.word, menu = s.menu } end
    end
  elseif base:find('^#file:') then
    for _, p in ipairs(M.complete_paths(base:sub(7), root)) do
      items[#items + 1] = { word = '#file:' .. p, abbr = p, menu = 'file', dup = 0 }
    end
  else
    for _, t in ipairs(M.TOKENS) do
      if vim.startswith(t.word, base) then items[#items + 1] = { word = t.word, menu = t.menu } end
    end
  end
  return items
end

return M
