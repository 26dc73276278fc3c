-- lua/zeke/config.lua: owns Zeke's configuration on the Lua side: the defaults, validation of the
-- user's table (same schema as the TOML file; every message names the bad key), the table sent to
-- the backend in `configure`, the effective config the backend answers with, and the lookup of
-- the `zeke` binary. Invariant: `M.get()` always returns a complete, valid table.
local M = {}

M.defaults = {
  bin = nil,
  log_level = 'info',
  completion = {
    enabled = true,
    provider = nil,
    debounce_ms = 75,
    max_context_tokens = 1024,
    max_tokens = 64,
    max_lines = 8,
    timeout_ms = 8000,
    filetypes = { ['*'] = true, help = false, gitrebase = false, TelescopePrompt = false },
    hide_during_completion = true,
  },
  explain = { provider = nil, max_tokens = 512, timeout_ms = 60000 },
  fix = { provider = nil, max_tokens = 1024, timeout_ms = 120000, max_answer_kb = 64 },
  -- the chat panel; the numbers are overwritten from schema.json once it has them
  chat = { layout = 'float', highlight = 'treesitter', max_steps = 12, max_tokens = 2048, max_turn_tokens = 200000, timeout_ms = 600000 },
  capabilities = { ['fs.write'] = 'prompt' },
  scopes = {},
  keymaps = { accept = false, accept_word = false, accept_line = false, dismiss = false },
  ui = { border = 'rounded', max_width = 90 },
  providers = {},
  routes = {},
  budget = nil,
  -- numbers here are overwritten from schema.json (the backend's limits table)
  router = {
    hedge = true, hedge_after_ms = 400, cooldown_ms = 30000, first_token_timeout_ms = 20000, max_attempts = 3,
    ledger = nil,
  },
}

local LOG_LEVELS = { error = true, warn = true, info = true, debug = true, trace = true }
local BORDERS = { none = true, single = true, double = true, rounded = true, solid = true, shadow = true }
-- The provider kinds the backend knows (`fake` only in builds with `--features test-support`).
local KIND_LIST = {
  'openai', 'anthropic', 'gemini', 'azure', 'llamacpp', 'ollama', 'xai', 'groq', 'mistral', 'deepseek',
  'openrouter', 'lmstudio', 'vllm', 'fake',
}
local KINDS = {}
for _, k in ipairs(KIND_LIST) do KINDS[k] = true end
M.KINDS = KIND_LIST
-- The intents `routes` may name.
M.INTENTS = { 'completion', 'explain', 'fix', 'test', 'chat', 'ask' }
local INTENTS = {}
for _, i in ipairs(M.INTENTS) do INTENTS[i] = true end
local function quoted(list)
  return table.concat(vim.tbl_map(function(x) return '"' .. x .. '"' end, list), ', ')
end
local POLICY = { allow = true, prompt = true, deny = true }
local CAPABILITIES = {
  ['fs.read'] = true, ['fs.write'] = true, ['git.read'] = true, ['git.write'] = true, ['cmd.exec'] = true,
  ['net.http'] = true, ['mcp.call'] = true,
}
local CAPABILITY_NAMES = '"fs.read", "fs.write", "git.read", "git.write", "cmd.exec", "net.http", "mcp.call"'
local PROVIDER_KEYS = {
  kind = 'string', url = 'string', model = 'string', api_key_env = 'string',
  api_key_cmd = 'string', reply = 'string', delay_ms = 'nonneg',
  api_version = 'string', keep_alive = 'string', ['local'] = 'boolean', context_window = 'context_window',
  input_cost_per_mtok = 'price', output_cost_per_mtok = 'price', cached_input_cost_per_mtok = 'price',
  cache_write_cost_per_mtok = 'price', budget = 'budget',
}

local current = vim.deepcopy(M.defaults) ---@type table
local user = {} ---@type table the (sanitized) table the user gave, sent to the backend

--- vim.NIL (msgpack nil) and nil are the same thing to us.
local function strip_nil(v)
  if v == vim.NIL then return nil end
  if type(v) ~= 'table' then return v end
  local out = {}
  for k, x in pairs(v) do
    out[k] = strip_nil(x)
  end
  return out
end
M.strip_nil = strip_nil

local function show(v)
  if type(v) == 'string' or type(v) == 'number' or type(v) == 'boolean' then return vim.inspect(v) end
  return type(v)
end

local function sorted_keys(t)
  local keys = vim.tbl_keys(t)
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function is_int(v) return type(v) == 'number' and v == math.floor(v) and v ~= math.huge end

--- A checker for an integer in [lo, hi].
local function int_in(lo, hi)
  return function(v)
    if not is_int(v) or v < lo or v > hi then return ('an integer from %d to %d'):format(lo, hi) end
  end
end

local function finite(v) return type(v) == 'number' and v == v and v ~= math.huge and v ~= -math.huge end

-- Checkers: return nil when fine, else the text after "must be".
local checks = {
  boolean = function(v) if type(v) ~= 'boolean' then return 'a boolean' end end,
  string = function(v) if type(v) ~= 'string' then return 'a string' end end,
  nonneg = function(v) if not is_int(v) or v < 0 then return 'a non-negative integer' end end,
  positive = function(v) if not is_int(v) or v < 1 then return 'a positive integer' end end,
  log_level = function(v)
    if not LOG_LEVELS[v] then return 'one of "error", "warn", "info", "debug", "trace"' end
  end,
  key = function(v)
    if v ~= false and (type(v) ~= 'string' or v == '') then return 'false or a key such as "<M-l>"' end
  end,
  border = function(v)
    if type(v) == 'string' and BORDERS[v] then return end
    if type(v) == 'table' and vim.islist(v) and #v >= 1 and #v <= 8 then return end
    return 'one of "none", "single", "double", "rounded", "solid", "shadow" or a list of border chars'
  end,
  strings = function(v)
    if type(v) ~= 'table' or not vim.islist(v) then return 'a list of strings' end
    for _, x in ipairs(v) do
      if type(x) ~= 'string' then return 'a list of strings' end
    end
  end,
  filetypes = function(v)
    if type(v) ~= 'table' then return 'a table of filetype = boolean' end
    for ft, on in pairs(v) do
      if type(ft) ~= 'string' or type(on) ~= 'boolean' then return 'a table of filetype = boolean' end
    end
  end,
  usd = function(v)
    if not finite(v) or v < 0 then return 'a number of USD >= 0' end
  end,
  price = function(v)
    if not finite(v) or v < 0 or v > 10000 then return 'a number from 0 to 10000 (USD per million tokens)' end
  end,
  budget_mode = function(v)
    if v ~= 'soft' and v ~= 'hard' then return 'one of "soft", "hard"' end
  end,
  chat_layout = function(v)
    if v ~= 'float' and v ~= 'split' then return 'one of "float", "split"' end
  end,
  chat_highlight = function(v)
    if v ~= 'treesitter' and v ~= 'syntax' and v ~= 'none' then return 'one of "treesitter", "syntax", "none"' end
  end,
  context_window = int_in(256, 100000000),
  -- `lsp.servers`: LANG = { command, args, enabled, extensions } (the backend checks the rest)
  lsp_servers = function(v)
    local why = 'a table of LANG = { command = "...", args = {...}, enabled = bool, extensions = {...} }'
    if type(v) ~= 'table' or (vim.islist(v) and #v > 0) then return why end
    local known = { command = 'string', args = 'table', enabled = 'boolean', extensions = 'table' }
    for lang, s in pairs(v) do
      if type(lang) ~= 'string' or type(s) ~= 'table' then return why end
      for k, x in pairs(s) do
        if known[k] == nil or type(x) ~= known[k] then return why .. (' (lsp.servers.%s.%s)'):format(lang, tostring(k)) end
      end
    end
  end,
}

local BUDGET_KEYS = { daily_usd = 'usd', monthly_usd = 'usd', mode = 'budget_mode' }

--- Checks a budget table at `path`; returns its valid keys (nil when it is not a table).
local function check_budget(v, path, problems)
  if type(v) ~= 'table' or (vim.islist(v) and #v > 0) then
    problems[#problems + 1] = ('%s must be a table { daily_usd = ..., monthly_usd = ..., mode = "soft" | "hard" }'
      .. ' (got %s)'):format(path, show(v))
    return nil
  end
  local valid = {}
  for _, k in ipairs(sorted_keys(v)) do
    local x = v[k]
    local spec = BUDGET_KEYS[k]
    if not spec then
      problems[#problems + 1] = ('unknown config key %s'):format(vim.inspect(path .. '.' .. tostring(k)))
    else
      local why = checks[spec](x)
      if why then
        problems[#problems + 1] = ('%s.%s must be %s (got %s)'):format(path, k, why, show(x))
      else
        valid[k] = x
      end
    end
  end
  return valid
end

local MCP_SERVER_KEYS = { command = 'string', args = 'strings', env = 'env', timeout_ms = 'positive' }

--- Checks `mcp_servers` (NAME = { command, args, env, timeout_ms }); returns the valid entries.
local function check_mcp_servers(v, problems)
  if type(v) ~= 'table' or vim.islist(v) and #v > 0 then
    problems[#problems + 1] = ('mcp_servers must be a table of name = { command = ..., args = {...} } (got %s)')
      :format(show(v))
    return nil
  end
  local valid = {}
  for _, name in ipairs(sorted_keys(v)) do
    local s, path = v[name], 'mcp_servers.' .. tostring(name)
    if type(name) ~= 'string' or not name:match('^[%w_-]+$') then
      problems[#problems + 1] = ('%s: a server name uses letters, digits, "_" and "-"'):format(path)
    elseif type(s) ~= 'table' or type(s.command) ~= 'string' or s.command == '' then
      problems[#problems + 1] = ('%s.command is required (a program to run)'):format(path)
    else
      local ok = true
      for _, k in ipairs(sorted_keys(s)) do
        local spec = MCP_SERVER_KEYS[k]
        local why
        if not spec then
          why = 'an unknown key'
        elseif spec == 'env' then
          if type(s[k]) ~= 'table' then why = 'a table of NAME = "value"' end
          for ek, ev in pairs(type(s[k]) == 'table' and s[k] or {}) do
            if type(ek) ~= 'string' or type(ev) ~= 'string' then why = 'a table of NAME = "value"' end
          end
        else
          local w = checks[spec](s[k])
          why = w and ('must be ' .. w)
        end
        if why then
          ok = false
          problems[#problems + 1] = ('%s.%s: %s'):format(path, k, why)
        end
      end
      if ok then valid[name] = s end
    end
  end
  return valid
end

--- Checks `routes` (intent = list of provider names); returns the valid entries.
local function check_routes(v, problems)
  if type(v) ~= 'table' or (vim.islist(v) and #v > 0) then
    problems[#problems + 1] = ('routes must be a table of intent = { "provider", ... } (got %s)'):format(show(v))
    return nil
  end
  local valid = {}
  for _, intent in ipairs(sorted_keys(v)) do
    local names = v[intent]
    local path = 'routes.' .. tostring(intent)
    if not INTENTS[intent] then
      problems[#problems + 1] = ('%s: not an intent (one of %s)'):format(path, quoted(M.INTENTS))
    elseif checks.strings(names) or #names == 0 then
      problems[#problems + 1] = ('%s must be a non-empty list of provider names (got %s)'):format(path, show(names))
    else
      valid[intent] = names
    end
  end
  return valid
end

local SCHEMA = {
  bin = 'string',
  log_level = 'log_level',
  completion = {
    enabled = 'boolean', provider = 'string', debounce_ms = 'nonneg', max_context_tokens = 'positive',
    max_tokens = 'positive', max_lines = 'positive', timeout_ms = 'positive', filetypes = 'filetypes',
    hide_during_completion = 'boolean',
  },
  explain = { provider = 'string', max_tokens = 'positive', timeout_ms = 'positive' },
  fix = { provider = 'string', max_tokens = 'positive', timeout_ms = 'positive', max_answer_kb = 'positive' },
  chat = {
    layout = 'chat_layout', highlight = 'chat_highlight', max_steps = 'positive', max_tokens = 'positive', max_turn_tokens = 'positive',
    timeout_ms = 'positive',
  },
  capabilities = 'capabilities',
  scopes = 'scopes',
  mcp = {
    roots = 'strings', audit_log = 'string', max_output_chars = 'positive', tools_page_size = 'positive',
    prompt_timeout_ms = 'positive',
  },
  fetch = { allow_private = 'boolean', timeout_ms = 'positive', max_kb = 'positive' },
  lsp = { wait_ms = 'nonneg', start_timeout_ms = 'positive', servers = 'lsp_servers' },
  keymaps = { accept = 'key', accept_word = 'key', accept_line = 'key', dismiss = 'key' },
  ui = { border = 'border', max_width = 'positive' },
  providers = 'providers',
  routes = 'routes',
  budget = 'budget',
  mcp_servers = 'mcp_servers',
  router = {
    hedge = 'boolean', hedge_after_ms = 'positive', cooldown_ms = 'nonneg',
    first_token_timeout_ms = 'positive', max_attempts = 'positive', ledger = 'string',
  },
}

-- Numeric limits and defaults come from one table in the backend (`src/config/limits.rs`), copied
-- to schema.json next to this file by `zeke config --schema` (a test keeps the copy in step), so
-- setup{} accepts exactly what the backend accepts.
local function load_schema()
  local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'
  local ok, lines = pcall(vim.fn.readfile, here .. 'schema.json')
  if not ok then return nil end
  local dok, decoded = pcall(vim.json.decode, table.concat(lines, '\n'))
  return dok and decoded or nil
end
M.schema = load_schema()
if M.schema then
  for key, l in pairs(M.schema.limits or {}) do
    local section, name = key:match('^([%w_]+)%.([%w_]+)$')
    if section and type(SCHEMA[section]) == 'table' and SCHEMA[section][name] then
      local id = 'limit:' .. key
      checks[id] = int_in(l.min, l.max)
      SCHEMA[section][name] = id
      if type(M.defaults[section]) == 'table' then M.defaults[section][name] = l.default end
    end
  end
  for _, k in ipairs(M.schema.provider_kinds or {}) do KINDS[k] = true end
  current = vim.deepcopy(M.defaults)
end

local check_scopes

--- Checks `providers`; returns the valid entries (invalid ones are dropped and reported).
local function check_providers(v, problems)
  if type(v) ~= 'table' then
    problems[#problems + 1] = ('providers must be a table of name = { kind = ... } (got %s)'):format(show(v))
    return nil
  end
  local valid = {}
  for _, name in ipairs(sorted_keys(v)) do
    local p = v[name]
    local path = 'providers.' .. tostring(name)
    local ok = true
    if type(name) ~= 'string' or type(p) ~= 'table' then
      problems[#problems + 1] = ('%s must be a table { kind = ..., url = ... } (got %s)'):format(path, show(p))
      ok = false
    else
      for _, k in ipairs(sorted_keys(p)) do
        local kind = PROVIDER_KEYS[k]
        if not kind then
          problems[#problems + 1] = ('unknown config key %s'):format(vim.inspect(path .. '.' .. tostring(k)))
          ok = false
        elseif kind == 'budget' then
          local n = #problems
          p[k] = check_budget(p[k], path .. '.' .. k, problems)
          if #problems > n then ok = false end
        else
          local why = checks[kind](p[k])
          if why then
            problems[#problems + 1] = ('%s.%s must be %s (got %s)'):format(path, k, why, show(p[k]))
            ok = false
          end
        end
      end
      if p.kind == nil then
        problems[#problems + 1] = ('%s.kind is required'):format(path)
        ok = false
      elseif type(p.kind) == 'string' and not KINDS[p.kind] then
        problems[#problems + 1] = ('%s.kind must be one of %s (got %s)'):format(path, quoted(KIND_LIST), show(p.kind))
        ok = false
      end
    end
    if ok then valid[name] = p end
  end
  return valid
end

--- Checks a table of capability = "allow" | "prompt" | "deny" at `path`; returns the valid entries.
local function check_caps(v, path, problems)
  if type(v) ~= 'table' or (vim.islist(v) and #v > 0) then
    problems[#problems + 1] = ('%s must be a table of capability = "allow" | "prompt" | "deny" (got %s)')
      :format(path, show(v))
    return nil
  end
  local valid = {}
  for _, cap in ipairs(sorted_keys(v)) do
    local at = ('%s[%s]'):format(path, vim.inspect(cap))
    if not CAPABILITIES[cap] then
      problems[#problems + 1] = ('unknown capability %s in %s (one of %s)'):format(vim.inspect(cap), path,
        CAPABILITY_NAMES)
    elseif not POLICY[v[cap]] then
      problems[#problems + 1] = ('%s must be one of "allow", "prompt", "deny" (got %s)'):format(at, show(v[cap]))
    else
      valid[cap] = v[cap]
    end
  end
  return valid
end

--- Checks `scopes` (scope = { capability = policy }); returns the valid entries.
check_scopes = function(v, problems)
  if type(v) ~= 'table' or (vim.islist(v) and #v > 0) then
    problems[#problems + 1] = ('scopes must be a table of scope = { ["fs.write"] = "allow" } (got %s)'):format(show(v))
    return nil
  end
  local valid = {}
  for _, name in ipairs(sorted_keys(v)) do
    if type(name) ~= 'string' or not (name:match('^root:[/~]') or name:match('^repo:.')) then
      problems[#problems + 1] = ('scopes: scope %s must start with "root:" (an absolute path) or "repo:" '
        .. '(a directory name)'):format(show(name))
    else
      valid[name] = check_caps(v[name], ('scopes[%s]'):format(vim.inspect(name)), problems)
    end
  end
  return valid
end

--- Validates a user table. Returns (sanitized, problems): `sanitized` keeps every valid key
--- (invalid ones are dropped so their defaults apply); `problems` is a list of messages.
---@param opts table|nil
---@return table sanitized, string[] problems
function M.validate(opts)
  opts = strip_nil(opts)
  local problems = {}
  if opts == nil then return {}, problems end
  if type(opts) ~= 'table' then
    return {}, { ('config must be a table (got %s)'):format(show(opts)) }
  end
  local out = {}
  for _, key in ipairs(sorted_keys(opts)) do
    local v = opts[key]
    local spec = SCHEMA[key]
    if spec == nil then
      problems[#problems + 1] = ('unknown config key %s'):format(vim.inspect(key))
    elseif spec == 'providers' then
      out[key] = check_providers(v, problems)
    elseif spec == 'scopes' then
      out[key] = check_scopes(v, problems)
    elseif spec == 'capabilities' then
      out[key] = check_caps(v, key, problems)
    elseif spec == 'routes' then
      out[key] = check_routes(v, problems)
    elseif spec == 'mcp_servers' then
      out[key] = check_mcp_servers(v, problems)
    elseif spec == 'budget' then
      out[key] = check_budget(v, key, problems)
    elseif type(spec) == 'string' then
      local why = checks[spec](v)
      if why then
        problems[#problems + 1] = ('%s must be %s (got %s)'):format(key, why, show(v))
      else
        out[key] = v
      end
    elseif type(v) ~= 'table' or (vim.islist(v) and #v > 0) then
      problems[#problems + 1] = ('%s must be a table (got %s)'):format(key, show(v))
    else
      local sub = {}
      for _, k in ipairs(sorted_keys(v)) do
        local kspec = spec[k]
        local path = key .. '.' .. tostring(k)
        if kspec == nil then
          problems[#problems + 1] = ('unknown config key %s'):format(vim.inspect(path))
        else
          local why = checks[kspec](v[k])
          if why then
            problems[#problems + 1] = ('%s must be %s (got %s)'):format(path, why, show(v[k]))
          else
            sub[k] = v[k]
          end
        end
      end
      out[key] = sub
    end
  end
  return out, problems
end

local function merge(base, top)
  local out = vim.deepcopy(base)
  for k, v in pairs(top or {}) do
    local list = type(v) == 'table' and next(v) ~= nil and vim.islist(v)
    if type(v) == 'table' and type(out[k]) == 'table' and not list and k ~= 'border' then
      out[k] = merge(out[k], v)
    else
      out[k] = vim.deepcopy(v)
    end
  end
  return out
end

--- Sets the user table (already validated by the caller) and recomputes the current config.
---@param sanitized table
function M.set_user(sanitized)
  user = vim.deepcopy(sanitized or {})
  current = merge(M.defaults, user)
end

--- Applies the `effective` table from the backend's `configure` reply (user table merged with the
--- TOML file), so TOML-only users get their values. Invalid or unknown parts are ignored.
---@param effective table|nil
function M.apply_effective(effective)
  local sanitized = M.validate(effective)
  current = merge(merge(M.defaults, sanitized), { bin = user.bin })
end

---@return table the current (complete, valid) config
function M.get() return current end

--- The table sent to the backend in `configure`: the user's own keys (not our defaults, so the TOML
--- file can fill what the user left out); empty tables become msgpack maps.
---@return table
function M.for_backend()
  local function conv(v)
    if type(v) ~= 'table' then return v end
    if next(v) == nil then return vim.empty_dict() end
    local out = {}
    for k, x in pairs(v) do
      out[k] = conv(x)
    end
    return out
  end
  local t = conv(user)
  if type(t) == 'table' and next(t) == nil then return vim.empty_dict() end
  return t
end

--- Whether completion is allowed for `ft` by the `completion.filetypes` table.
---@param ft string
---@return boolean
function M.filetype_enabled(ft)
  local fts = current.completion.filetypes or {}
  local v = fts[ft]
  if v == nil then v = fts['*'] end
  if v == nil then v = true end
  return v
end

--- Argument check for public functions (vim.validate-style, same on Neovim 0.10 and later).
---@param name string
---@param value any
---@param ty string
---@param optional boolean|nil
function M.check_arg(name, value, ty, optional)
  if value == nil and optional then return end
  if type(value) ~= ty then
    error(('zeke: %s must be a %s (got %s)'):format(name, ty, type(value)), 3)
  end
end

--- The root of the plugin checkout (the directory that holds `lua/zeke/`).
function M.plugin_root()
  local src = debug.getinfo(1, 'S').source:gsub('^@', '')
  return vim.fn.fnamemodify(src, ':p:h:h:h')
end

--- Finds the `zeke` binary. Returns (path, how) or (nil, list of places tried).
---@return string|nil path, string how_or_tried
function M.resolve_bin()
  local tried = {}
  local function try(path, how)
    if not path or path == '' then return nil end
    local exe = vim.fn.exepath(path)
    if exe ~= '' then return exe, how end
    tried[#tried + 1] = path
  end
  if current.bin then
    local path, how = try(current.bin, 'config bin')
    if path then return path, how end
    return nil, table.concat(tried, ', ')
  end
  local root = M.plugin_root()
  local candidates = {
    { vim.env.ZEKE_BIN, '$ZEKE_BIN' },
    { root .. '/target/release/zeke', 'plugin build (release)' },
    { root .. '/target/debug/zeke', 'plugin build (debug)' },
    { 'zeke', '$PATH' },
  }
  for _, c in ipairs(candidates) do
    local path, how = try(c[1], c[2])
    if path then return path, how end
  end
  return nil, table.concat(tried, ', ')
end

return M
