-- tests/lua/helpers.lua: the test harness's side of a child Neovim: start one (`nvim --embed
-- --headless --clean -u tests/lua/minimal_init.lua`, isolated XDG dirs, ZEKE_CONFIG=/nonexistent),
-- drive it with real typed keys (`nvim_input`) and inspect it (`nvim_exec_lua`), poll with generous
-- timeouts, and stop it (checking its backend does not outlive it). Also small assertions, and
-- throwaway project directories on disk (`H.project`). Each child has a private XDG_STATE_HOME
-- (`Child:state_dir()`), where the backend keeps its grants and audit log.
local H = {}

local uv = vim.uv or vim.loop

H.root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h:h:h')
H.nvim = vim.env.ZEKE_NVIM and vim.env.ZEKE_NVIM ~= '' and vim.env.ZEKE_NVIM or vim.v.progpath

local children = {}

local Child = {}
Child.__index = Child

--- Starts a child Neovim. opts.env: extra environment.
function H.child(opts)
  opts = opts or {}
  local tmp = vim.fn.tempname()
  for _, d in ipairs({ 'config', 'state', 'data', 'cache' }) do
    vim.fn.mkdir(tmp .. '/' .. d, 'p')
  end
  local env = {
    XDG_CONFIG_HOME = tmp .. '/config', XDG_STATE_HOME = tmp .. '/state', XDG_DATA_HOME = tmp .. '/data',
    XDG_CACHE_HOME = tmp .. '/cache', ZEKE_CONFIG = '/nonexistent', NVIM_LOG_FILE = tmp .. '/nvim.log',
  }
  for k, v in pairs(opts.env or {}) do
    env[k] = v
  end
  local chan = vim.fn.jobstart({ H.nvim, '--embed', '--headless', '--clean', '-u', H.root .. '/tests/lua/minimal_init.lua' },
    { rpc = true, env = env, cwd = H.root })
  assert(chan > 0, 'could not start child nvim ' .. H.nvim)
  local c = setmetatable({ chan = chan, tmp = tmp, pid = vim.fn.jobpid(chan) }, Child)
  children[#children + 1] = c
  return c
end

--- Runs Lua in the child; extra args are passed as `...`.
function Child:lua(code, ...)
  local r = vim.rpcrequest(self.chan, 'nvim_exec_lua', code, { ... })
  if r == vim.NIL then return nil end
  return r
end

function Child:cmd(cmd) return vim.rpcrequest(self.chan, 'nvim_command', cmd) end

--- Queues keys as if typed (nvim_input notation).
function Child:input(keys) return vim.rpcrequest(self.chan, 'nvim_input', keys) end

local ESC = { ['<'] = '<lt>', ['\n'] = '<CR>', ['\t'] = '<Tab>' }

--- Types `text` one character at a time, `delay_ms` apart (default 30).
function Child:type(text, delay_ms)
  for _, ch in ipairs(vim.fn.split(text, '\\zs')) do
    self:input(ESC[ch] or ch)
    H.sleep(delay_ms or 30)
  end
end

--- Sleeps while letting this Neovim's event loop run.
function H.sleep(ms) vim.wait(ms, function() return false end, 10) end

--- Polls fn until it returns a truthy value; returns it. Errors with `what` after timeout_ms.
function H.wait(fn, timeout_ms, what)
  local deadline = uv.hrtime() / 1e6 + (timeout_ms or 10000)
  local last_err
  while true do
    local ok, v = pcall(fn)
    if ok and v then return v end
    if not ok then last_err = v end
    if uv.hrtime() / 1e6 > deadline then
      error(('timed out after %d ms waiting for %s%s'):format(timeout_ms or 10000, what or 'condition',
        last_err and (' (last error: ' .. tostring(last_err) .. ')') or ''), 2)
    end
    H.sleep(20)
  end
end

-- Child conveniences -------------------------------------------------------------------------

function Child:setup(cfg) return self:lua('require("zeke").setup(...)', cfg) end
function Child:suggestion() return self:lua('return require("zeke").suggestion()') end
function Child:line() return self:lua('return vim.api.nvim_get_current_line()') end
function Child:lines() return self:lua('return vim.api.nvim_buf_get_lines(0, 0, -1, false)') end
function Child:cursor() return self:lua('return vim.api.nvim_win_get_cursor(0)') end
function Child:mode() return vim.rpcrequest(self.chan, 'nvim_get_mode').mode end
function Child:notes() return self:lua('return require("zeke_test").notes') end
function Child:inline() return self:lua('return require("zeke.inline").debug_state()') end

--- Backend status (starts the backend if needed).
function Child:status()
  return self:lua('local s, e = require("zeke").status(); if not s then error(e) end; s.plugin = nil; return s')
end

--- Notifications at WARN or above.
function Child:problems()
  local out = {}
  for _, n in ipairs(self:notes()) do
    if n.level >= vim.log.levels.WARN then out[#out + 1] = n.msg end
  end
  return out
end

--- Extmarks of the ghost-text namespace, with details.
function Child:marks()
  return self:lua([[return vim.api.nvim_buf_get_extmarks(0, require('zeke.inline').ns, 0, -1, { details = true })]])
end

--- Lua errors the child has seen (v:errmsg, and error-ish :messages).
function Child:errors()
  local errmsg = self:lua('return vim.v.errmsg')
  local msgs = self:lua('return vim.api.nvim_exec2("messages", { output = true }).output')
  local out = {}
  if errmsg ~= '' then out[#out + 1] = errmsg end
  for line in msgs:gmatch('[^\n]+') do
    if line:match('^E%d+') or line:match('[Ee]rror') or line:match('stack traceback') then out[#out + 1] = line end
  end
  return out
end

--- Waits for a visible suggestion and returns it (as soon as some of it streamed in).
function Child:wait_suggestion(timeout_ms)
  return H.wait(function() return self:suggestion() end, timeout_ms or 10000, 'ghost text')
end

--- Waits until the suggestion's stream is done and returns the visible text.
function Child:wait_full(timeout_ms)
  return H.wait(function()
    local st = self:inline()
    return st.visible and st.req and st.req.done and st.visible
  end, timeout_ms or 10000, 'complete ghost text')
end

--- Waits until no debounce is pending, the plugin waits for no answer and the backend runs no
--- completion; returns the backend's counts.
function Child:wait_idle(timeout_ms)
  return H.wait(function()
    local st = self:inline()
    if st.timer_active or (st.req and not st.req.done) then return nil end
    local c = self:status().counts
    if c.completions_running == 0 then return c end
  end, timeout_ms or 15000, 'idle')
end

local function alive(pid)
  if not pid then return false end
  local f = io.open('/proc/' .. pid .. '/status', 'r')
  if not f then return false end
  local s = f:read('*a')
  f:close()
  return not s:match('\nState:%s*Z')
end
H.alive = alive

--- The backend's pid as the child's rpc module knows it (nil when not running).
function Child:backend_pid()
  local ok, pid = pcall(self.lua, self, 'return require("zeke.rpc").info().pid')
  if ok and pid ~= vim.NIL then return pid end
end

--- Stops the child (closing its stdin, as a real UI would) and checks no backend is left behind.
--- Returns the pid of a backend that outlived it, if any (and kills it).
function Child:stop()
  if self.stopped then return end
  self.stopped = true
  local bpid = self:backend_pid()
  pcall(vim.rpcrequest, self.chan, 'nvim_command', 'qall!')
  vim.fn.jobstop(self.chan)
  vim.fn.jobwait({ self.chan }, 5000)
  local orphan = nil
  if bpid then
    local deadline = uv.hrtime() / 1e6 + 5000
    while alive(bpid) and uv.hrtime() / 1e6 < deadline do
      H.sleep(20)
    end
    if alive(bpid) then
      orphan = bpid
      uv.kill(bpid, 'sigkill')
    end
  end
  vim.fn.delete(self.tmp, 'rf')
  return orphan
end

local projects = {}

--- Stops every child still running and removes the projects (after each case).
function H.cleanup()
  for _, c in ipairs(children) do
    pcall(c.stop, c)
  end
  children = {}
  for _, d in ipairs(projects) do
    vim.fn.delete(d, 'rf')
  end
  projects = {}
end

--- A temporary project directory (with a `.git` directory, so it is a project root) holding
--- `files` (relative path → list of lines). Returns its absolute path; removed after the case.
function H.project(files)
  local dir = vim.fn.resolve(vim.fn.tempname())
  vim.fn.mkdir(dir .. '/.git', 'p')
  for rel, lines in pairs(files or {}) do
    vim.fn.mkdir(vim.fn.fnamemodify(dir .. '/' .. rel, ':h'), 'p')
    vim.fn.writefile(lines, dir .. '/' .. rel)
  end
  projects[#projects + 1] = dir
  return dir
end

--- The child's private XDG_STATE_HOME.
function Child:state_dir() return self.tmp .. '/state' end

--- The records of the backend's audit log ($XDG_STATE_HOME/zeke/audit.jsonl), decoded; {} when
--- there is none yet.
function Child:audit()
  local path = self:state_dir() .. '/zeke/audit.jsonl'
  if vim.fn.filereadable(path) == 0 then return {} end
  local out = {}
  for _, line in ipairs(vim.fn.readfile(path)) do
    if line ~= '' then
      local ok, rec = pcall(vim.json.decode, line)
      out[#out + 1] = ok and rec or { raw = line }
    end
  end
  return out
end

--- The pending proposal as `require('zeke').review_state()` gives it (nil when none).
function Child:review() return self:lua('return require("zeke").review_state()') end

--- Waits for a pending proposal and returns it.
function Child:wait_review(timeout_ms)
  return H.wait(function() return self:review() end, timeout_ms or 10000, 'a proposal to review')
end

-- Assertions ---------------------------------------------------------------------------------

function H.eq(expected, got, what)
  if not vim.deep_equal(expected, got) then
    error(('%sexpected %s, got %s'):format(what and (what .. ': ') or '', vim.inspect(expected), vim.inspect(got)), 2)
  end
end

function H.ok(v, what)
  if not v then error('assertion failed: ' .. (what or '?'), 2) end
  return v
end

--- A config using the fake provider (deterministic replies; needs a test-support build).
function H.fake(reply, extra)
  local cfg = {
    providers = { fake = { kind = 'fake', reply = reply, delay_ms = 5 } },
    completion = { provider = 'fake' },
    explain = { provider = 'fake' },
  }
  return vim.tbl_deep_extend('force', cfg, extra or {})
end

--- Opens a fresh buffer (normal buftype) with filetype `ft` in the child; no comment leaders
--- or indentation added on <CR> (what is typed is what the buffer holds).
function Child:new_buffer(ft)
  self:cmd('enew')
  self:lua([[
    vim.bo.filetype = ...
    vim.bo.formatoptions = ''
    vim.bo.autoindent, vim.bo.smartindent, vim.bo.cindent, vim.bo.indentexpr = false, false, false, ''
  ]], ft or 'text')
end

return H
