-- lua/zeke/rpc.lua: owns the msgpack-RPC channel to the `zeke nvim` backend: starting it lazily,
-- `configure` after every start, re-attaching buffers, restarting it with backoff when it dies,
-- stopping it when Neovim leaves, and the one `dispatch(event, payload)` the backend calls, which
-- routes each event to its feature (ghost text, explain, review, chat panel, errors; it also tells
-- `zeke.router` when an answer finished, so the statusline cache is refreshed).
-- Invariants: at most one backend per Neovim; the model path only uses `notify` (never a blocking
-- request); `dispatch` is cheap and never raises back into the backend.
local config = require('zeke.config')

local M = {}

local uv = vim.uv or vim.loop

local BACKOFF_START_MS = 200
local BACKOFF_MAX_MS = 10000
local CRASH_WINDOW_MS = 60000
local MAX_CRASHES = 5

local state = {
  chan = nil, ---@type integer|nil
  pid = nil, ---@type integer|nil
  bin = nil, ---@type string|nil
  version = nil, ---@type string|nil
  config_path = nil, ---@type string|nil
  provider = nil, ---@type table|nil the last `provider` event
  crashes = {}, ---@type integer[] uv.now() of recent unexpected exits
  restart_timer = nil,
  gave_up = false,
  missing_reported = false,
  attached = {}, ---@type table<integer, true>
  stderr = {}, ---@type string[] last lines the backend wrote to stderr
  next_id = 0,
  starts = 0,
}

local function notify(msg, level)
  vim.notify(msg, level or vim.log.levels.INFO, { title = 'zeke' })
end

--- The chat panel's module when it was ever used (its events need nothing otherwise).
local function chat() return package.loaded['zeke.chat'] end

---@return string
function M.log_path() return vim.fn.stdpath('log') .. '/zeke.log' end

---@return boolean
function M.is_running() return state.chan ~= nil end

--- A fresh id for a `complete`, `explain`, `fix`, `test` or `chat` request (one counter, so `error` events are unambiguous).
---@return integer
function M.next_id()
  state.next_id = state.next_id + 1
  return state.next_id
end

--- Read-only facts for `:Zeke status` and health.
function M.info()
  return {
    running = state.chan ~= nil, chan = state.chan, pid = state.pid, bin = state.bin,
    version = state.version, config_path = state.config_path, provider = state.provider,
    starts = state.starts, gave_up = state.gave_up, crashes = #state.crashes,
    attached = vim.tbl_keys(state.attached),
  }
end

--- Turns "Error invoking 'configure' on channel 3:\nmessage" into "message".
local function clean_err(e)
  e = tostring(e)
  e = e:gsub('^Vim:', '')
  e = e:gsub("^Error invoking '[^']*' on channel %d+[^:]*:%s*", '')
  return vim.trim(e)
end

local function send_configure()
  local ok, res = pcall(vim.rpcrequest, state.chan, 'configure', {
    config = config.for_backend(),
    nvim_version = tostring(vim.version()),
  })
  if not ok then
    -- A backend that died while starting is reported by on_exit, not as a config problem.
    local msg = clean_err(res)
    local dead = not state.chan or vim.fn.jobwait({ state.chan }, 0)[1] ~= -1
      or next(vim.api.nvim_get_chan_info(state.chan)) == nil
      or msg:find('Invalid channel', 1, true) or msg:find('hannel was closed', 1, true)
    if not dead then
      require('zeke.errors').report({ job = 'config', kind = 'invalid', message = msg })
    end
    return false
  end
  res = config.strip_nil(res) or {}
  state.version = res.version
  state.config_path = res.config_path
  if res.pid then state.pid = res.pid end
  if type(res.effective) == 'table' then
    config.apply_effective(res.effective)
    require('zeke')._on_effective()
  end
  for _, w in ipairs(type(res.warnings) == 'table' and res.warnings or {}) do
    require('zeke.errors').report({ job = 'config', kind = 'warning', message = tostring(w) }, vim.log.levels.WARN)
  end
  require('zeke.errors').success('config')
  if package.loaded['zeke.router'] then pcall(function() require('zeke.router').on_backend_start() end) end
  return true
end

--- Sends the current config again (after `setup()` is called while the backend runs).
---@return boolean
function M.configure()
  if not state.chan then return false end
  return send_configure()
end

local on_exit

--- Starts the backend if it is not running. Returns true when it runs (and is configured).
---@return boolean ok, string|nil err
function M.start()
  if state.chan then return true end
  if state.gave_up then return false, 'the backend crashed too often; run :Zeke restart' end
  local bin, how = config.resolve_bin()
  if not bin then
    if not state.missing_reported then
      state.missing_reported = true
      notify(('zeke: cannot find the zeke binary (tried %s). Run `make build` in the plugin directory, '
        .. 'or set `bin` / $ZEKE_BIN.'):format(how), vim.log.levels.ERROR)
    end
    return false, 'zeke binary not found'
  end
  state.bin = bin
  state.stderr = {}
  vim.fn.mkdir(vim.fn.fnamemodify(M.log_path(), ':h'), 'p')
  local ok, chan = pcall(vim.fn.jobstart, { bin, 'nvim', '--log', M.log_path() }, {
    rpc = true,
    on_exit = function(job, code) on_exit(job, code) end,
    on_stderr = function(_, data)
      for _, line in ipairs(data or {}) do
        if line ~= '' then
          table.insert(state.stderr, line)
          if #state.stderr > 20 then table.remove(state.stderr, 1) end
        end
      end
    end,
  })
  if not ok or type(chan) ~= 'number' or chan <= 0 then
    notify(('zeke: could not start %s: %s'):format(bin, ok and tostring(chan) or clean_err(chan)), vim.log.levels.ERROR)
    return false, 'jobstart failed'
  end
  state.chan = chan
  state.starts = state.starts + 1
  local pok, pid = pcall(vim.fn.jobpid, chan)
  state.pid = pok and pid or nil
  send_configure()
  if not state.chan then return false, 'backend exited during start' end
  for buf in pairs(state.attached) do
    if vim.api.nvim_buf_is_valid(buf) then
      pcall(vim.rpcnotify, state.chan, 'attach', { buf = buf })
    else
      state.attached[buf] = nil
    end
  end
  return true
end

--- Starts the backend if needed; false when it cannot run.
---@return boolean
function M.ensure()
  if state.chan then return true end
  return (M.start())
end

--- Stops the backend on purpose (no restart).
function M.stop()
  if state.restart_timer then
    state.restart_timer:stop()
    state.restart_timer:close()
    state.restart_timer = nil
  end
  local chan = state.chan
  state.chan, state.pid = nil, nil
  if chan then pcall(vim.fn.jobstop, chan) end
  if package.loaded['zeke.router'] then pcall(function() require('zeke.router').on_backend_exit() end) end
end

--- `:Zeke restart`: stop, forget earlier crashes, start again.
function M.restart()
  M.stop()
  state.crashes, state.gave_up = {}, false
  pcall(function() require('zeke.inline').reset() end)
  pcall(function() require('zeke.diff').on_backend_exit() end)
  require('zeke.errors').reset()
  local ok, err = M.start()
  if ok then
    notify(('zeke: backend restarted (pid %s)'):format(tostring(state.pid)))
  else
    notify('zeke: restart failed: ' .. tostring(err), vim.log.levels.ERROR)
  end
  return ok
end

on_exit = function(job, code)
  if job ~= state.chan then return end -- stopped on purpose, or an older job
  state.chan, state.pid = nil, nil
  pcall(function() require('zeke.inline').reset() end)
  pcall(function() require('zeke.ui').on_backend_exit() end)
  pcall(function() require('zeke.diff').on_backend_exit() end)
  if chat() then pcall(chat().on_backend_exit) end
  if package.loaded['zeke.router'] then pcall(function() require('zeke.router').on_backend_exit() end) end
  local now = uv.now()
  local recent = {}
  for _, t in ipairs(state.crashes) do
    if now - t < CRASH_WINDOW_MS then recent[#recent + 1] = t end
  end
  recent[#recent + 1] = now
  state.crashes = recent
  local tail = state.stderr[#state.stderr]
  local detail = tail and ('\n' .. tail) or ''
  if #recent >= MAX_CRASHES then
    state.gave_up = true
    notify(('Zeke backend exited (code %d) %d times within %d s; giving up. See :Zeke log, then :Zeke restart.%s')
      :format(code, #recent, CRASH_WINDOW_MS / 1000, detail), vim.log.levels.ERROR)
    return
  end
  local delay = math.min(BACKOFF_START_MS * 2 ^ (#recent - 1), BACKOFF_MAX_MS)
  notify(('Zeke backend exited (code %d); restarting in %d ms%s'):format(code, delay, detail), vim.log.levels.WARN)
  if state.restart_timer then
    state.restart_timer:stop()
    state.restart_timer:close()
  end
  state.restart_timer = uv.new_timer()
  state.restart_timer:start(delay, 0, vim.schedule_wrap(function()
    if state.restart_timer then
      state.restart_timer:close()
      state.restart_timer = nil
    end
    if not state.chan and not state.gave_up then M.start() end
  end))
end

--- Sends a notification (the model path). Does not start the backend: callers `ensure()` first.
---@param method string
---@param params table|nil
---@return boolean sent
function M.notify(method, params)
  if not state.chan then return false end
  local ok = pcall(vim.rpcnotify, state.chan, method, params or vim.empty_dict())
  return ok
end

--- A short blocking request (configure/status/health/ping, test_target/apply/resolve/grants/revoke;
--- never the model path). Starts the backend if needed. Returns (result) or (nil, error message).
---@param method string
---@param params any
---@return any result, string|nil err
function M.request(method, params)
  if not M.ensure() then return nil, 'zeke backend is not running' end
  local ok, res = pcall(vim.rpcrequest, state.chan, method, params or vim.empty_dict())
  if not ok then return nil, clean_err(res) end
  return config.strip_nil(res)
end

--- Mirrors `buf` in the backend (idempotent); remembered so a restarted backend gets it again.
---@param buf integer
function M.attach(buf)
  if state.attached[buf] and state.chan then return true end
  if not M.ensure() then return false end
  state.attached[buf] = true
  return M.notify('attach', { buf = buf })
end

---@param buf integer
function M.detach(buf)
  if not state.attached[buf] then return end
  state.attached[buf] = nil
  M.notify('detach', { buf = buf })
end

---@param buf integer
function M.is_attached(buf) return state.attached[buf] == true end

local routes = {
  completion = function(p) require('zeke.inline').on_completion(p) end,
  explain = function(p) require('zeke.ui').on_explain(p) end,
  error = function(p)
    if p.job == 'chat' and chat() then chat().on_error(p) end
    require('zeke.errors').on_error(p)
  end,
  patch = function(p)
    if p.job == 'chat' and chat() then chat().on_patch(p) end
    require('zeke.diff').on_patch(p)
  end,
  progress = function(p) require('zeke.diff').on_progress(p) end,
  provider = function(p) state.provider = p end,
  notice = function(p)
    require('zeke.errors').notice(p)
    if p.job == 'chat' and chat() then chat().on_notice(p) end
  end,
  chat_context = function(p) require('zeke.chat').on_context(p) end,
  chat_delta = function(p) require('zeke.chat').on_delta(p) end,
  chat_tool = function(p) require('zeke.chat').on_tool(p) end,
  chat_done = function(p) require('zeke.chat').on_done(p) end,
  chat_compacted = function(p) require('zeke.chat').on_compacted(p) end,
  ask = function(p) require('zeke.chat').on_ask(p) end,
}

-- Events after which the statusline's cache is refreshed (explain: only its last event).
local REFRESH_ON = { explain = true, error = true, patch = true, notice = true, chat_done = true }

--- The single entry point the backend calls (`nvim_exec_lua("require('zeke.rpc').dispatch(...)")`).
--- Cheap, and never raises back into the backend.
---@param event string
---@param payload table
function M.dispatch(event, payload)
  local route = routes[event]
  if not route then return end
  local p = config.strip_nil(payload) or {}
  local ok, err = pcall(route, p)
  if ok and REFRESH_ON[event] and package.loaded['zeke.router'] then
    ok, err = pcall(require('zeke.router').on_event, event, p)
  end
  if not ok then
    vim.schedule(function()
      notify(('zeke: internal error handling %q event: %s'):format(tostring(event), tostring(err)), vim.log.levels.ERROR)
    end)
  end
end

return M
