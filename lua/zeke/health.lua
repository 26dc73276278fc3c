-- lua/zeke/health.lua: owns `:checkhealth zeke`: Neovim version, the binary and its version, the
-- backend starting, the config (Lua side and the backend's view with the TOML file), providers
-- reachable, API keys present (never their values), each provider's price (or "local"), context
-- window, budget and cooldown, the total budget and a pinned provider, which provider is used, and
-- the patch policy ("fs.write", the "Allow all" grants, where the audit log is).
local M = {}

local function h() return vim.health end

local function neovim()
  h().start('zeke: Neovim')
  local v = tostring(vim.version())
  if vim.fn.has('nvim-0.10') == 1 then
    h().ok('Neovim ' .. v)
  else
    h().error('Neovim ' .. v .. ' is too old', { 'Zeke needs Neovim 0.10 or later (inline virtual text).' })
  end
end

local function lua_config()
  h().start('zeke: configuration (setup / vim.g.zeke)')
  require('zeke')._ensure_setup()
  local problems = require('zeke')._problems()
  if #problems == 0 then
    h().ok('Lua config valid')
  else
    for _, p in ipairs(problems) do
      h().error(p, { 'See :help zeke-config' })
    end
  end
end

---@return string|nil
local function binary()
  h().start('zeke: binary')
  local config = require('zeke.config')
  local bin, how = config.resolve_bin()
  if not bin then
    h().error('zeke binary not found (tried ' .. how .. ')',
      { 'Run `make build` in the plugin directory (lazy.nvim: build = "make build")', 'or set `bin` / $ZEKE_BIN' })
    return nil
  end
  h().ok(('found %s (%s)'):format(bin, how))
  local ok, res = pcall(function() return vim.system({ bin, '--version' }, { text = true }):wait(5000) end)
  if ok and res.code == 0 then
    h().ok(vim.trim(res.stdout or ''))
  else
    h().error('`' .. bin .. ' --version` failed: ' .. (ok and vim.trim((res.stderr or '') .. ' code ' .. tostring(res.code)) or tostring(res)))
  end
  return bin
end

--- Patches (:Zeke fix / :Zeke test): the policy for writing buffers, the "Allow all" grants, the
--- audit log.
local function policy()
  h().start('zeke: patches and policy')
  local cfg = require('zeke.config').get()
  local fw = (cfg.capabilities or {})['fs.write'] or 'prompt'
  local how = { allow = 'applied without review', prompt = 'reviewed (Allow once / Allow all / Deny)',
    deny = 'refused' }
  if fw == 'deny' then
    h().warn('capabilities["fs.write"] = "deny": :Zeke fix and :Zeke test patches are refused')
  else
    h().ok(('capabilities["fs.write"] = %q: patches are %s'):format(fw, how[fw] or fw))
  end
  local grants, err = require('zeke.rpc').request('grants', vim.empty_dict())
  if not grants then
    h().warn('could not list the "Allow all" grants: ' .. tostring(err))
  elseif #grants == 0 then
    h().info('no "Allow all" grants')
  else
    for _, g in ipairs(grants) do
      h().info(('"Allow all" %s in %s (%s)'):format(tostring(g.capability), tostring(g.root), tostring(g.scope)))
    end
  end
  local st = require('zeke.rpc').request('status', vim.empty_dict())
  h().info('audit log: ' .. tostring(st and st.audit_log or '(backend did not say)'))
end

local function backend()
  h().start('zeke: backend')
  local rpc = require('zeke.rpc')
  local st, err = rpc.request('status', vim.empty_dict())
  if not st then
    h().error('backend did not start or answer: ' .. tostring(err), { 'See :Zeke log (' .. rpc.log_path() .. ')' })
    return
  end
  h().ok(('backend running: pid %s, version %s, rss %s kB'):format(tostring(st.pid), tostring(st.version),
    tostring(st.rss_kb or '?')))
  h().info('log file: ' .. rpc.log_path())

  local hl, herr = rpc.request('health', vim.empty_dict())
  if not hl then
    h().error('health request failed: ' .. tostring(herr))
    return
  end
  h().start('zeke: configuration (backend, with the TOML file)')
  local path = hl.config_path
  if path and vim.fn.filereadable(path) == 1 then
    h().info('TOML file: ' .. path)
  else
    h().info('TOML file: none' .. (path and (' (looked for ' .. path .. ')') or '')
      .. '; $ZEKE_CONFIG or $XDG_CONFIG_HOME/zeke/config.toml')
  end
  if hl.config_ok then
    h().ok('config valid')
  else
    for _, e in ipairs(hl.config_errors or {}) do
      h().error(tostring(e))
    end
  end

  h().start('zeke: providers')
  local providers = hl.providers or {}
  if #providers == 0 then
    h().warn('no provider configured or found on the standard local ports',
      { 'Start llama-server on 127.0.0.1:8080 or Ollama on 127.0.0.1:11434, or configure `providers`' })
  end
  local models = rpc.request('models', { probe = false })
  local usage = rpc.request('usage', { last = 0 })
  local router = require('zeke.router')
  local rows = {}
  for _, m in ipairs(models and models.providers or {}) do rows[tostring(m.provider)] = m end
  for _, p in ipairs(providers) do
    local what = ('%s (%s) %s%s'):format(tostring(p.name), tostring(p.kind), tostring(p.url),
      p.model and (' model ' .. tostring(p.model)) or '')
    if p.reachable then
      h().ok(what .. ' reachable' .. (p.detail and p.detail ~= '' and (': ' .. tostring(p.detail)) or ''))
    else
      h().warn(what .. ' not reachable: ' .. tostring(p.detail or '?'))
    end
    if p.key == 'missing' then
      h().error(('%s: API key missing'):format(tostring(p.name)), { 'Set api_key_env / api_key_cmd for this provider' })
    elseif p.key == 'present' then
      h().ok(('%s: API key present'):format(tostring(p.name)))
    else
      h().info(('%s: no API key needed'):format(tostring(p.name)))
    end
    local m = rows[tostring(p.name)]
    if m then
      local facts = { router.price(m) }
      if type(m.context_window) == 'number' then
        facts[#facts + 1] = ('context window %s tokens'):format(router.tokens(m.context_window))
      end
      if type(m.budget) == 'table' then
        local t, mo = router.spend_of(usage, m.provider)
        facts[#facts + 1] = 'budget ' .. router.budget_text(m.budget, t, mo)
      end
      if m.pinned == true then facts[#facts + 1] = 'pinned for this session' end
      h().info(('%s: %s'):format(tostring(p.name), table.concat(facts, ' · ')))
      if type(m.cooling_s) == 'number' and m.cooling_s > 0 then
        local le = type(m.last_error) == 'table' and m.last_error or {}
        h().warn(('%s: cooling down for %d s after %s%s'):format(tostring(p.name), m.cooling_s,
          tostring(le.kind or 'a failure'), le.message and (': ' .. tostring(le.message)) or ''),
          { 'The router sends requests to the other providers meanwhile (router.cooldown_ms)' })
      end
    end
  end
  if usage and type(usage.budget) == 'table' then
    local st = rpc.request('status', vim.empty_dict())
    local text = 'budget (all providers): ' .. router.budget_text(usage.budget,
      type(usage.today) == 'table' and tonumber(usage.today.cost_usd) or 0,
      type(usage.month) == 'table' and tonumber(usage.month.cost_usd) or 0)
    if st and st.router and st.router.budget_near then
      h().warn(text .. ' — a budget is 80 % or more spent', { ':Zeke usage shows where it went' })
    else
      h().ok(text)
    end
  end
  if models and models.pinned then
    h().info(('provider %s pinned for this session (:Zeke provider automatic unpins)'):format(tostring(models.pinned)))
  end
  if hl.selected then
    h().ok('completions use provider ' .. tostring(hl.selected))
  else
    h().warn('no provider selected: completions will report "unavailable"')
  end
  policy()
end

--- The external MCP servers whose tools the chat agent gets (`mcp_servers`): each is started
--- (when not running) and listed.
local function mcp_servers()
  h().start('zeke: MCP servers (tools for the chat agent)')
  local servers, err = require('zeke.rpc').request('mcp_servers', vim.empty_dict())
  if not servers then
    h().warn('the backend did not answer: ' .. tostring(err))
    return
  end
  if type(servers) ~= 'table' or #servers == 0 then
    h().info('none configured (mcp_servers in setup(), or [mcp_servers.NAME] in the TOML file)')
    return
  end
  for _, s in ipairs(servers) do
    local what = ('%s (%s)'):format(tostring(s.name), tostring(s.command))
    if type(s.error) == 'string' then
      h().error(what .. ': ' .. s.error, { 'Check its command, args and env; :Zeke log shows what it said' })
    else
      local tools = type(s.tools) == 'table' and s.tools or {}
      local shown = vim.list_slice(tools, 1, 6)
      h().ok(('%s: %d tool%s%s%s'):format(what, #tools, #tools == 1 and '' or 's', #shown > 0 and ': ' or '',
        table.concat(shown, ', ') .. (#tools > #shown and ', …' or '')))
    end
  end
end

--- The language servers of the `lsp_*` tools: found on PATH (with versions) or not.
local function lsp_servers()
  h().start('zeke: language servers (lsp_* tools)')
  local rows, err = require('zeke.rpc').request('lsp_servers', vim.empty_dict())
  if not rows then
    h().warn('the backend did not answer: ' .. tostring(err))
    return
  end
  for _, s in ipairs(rows) do
    local langs = table.concat(type(s.languages) == 'table' and s.languages or {}, ', ')
    if type(s.path) == 'string' then
      h().ok(('%s: %s (%s)'):format(langs, type(s.version) == 'string' and s.version or 'version unknown', s.path))
    else
      h().info(('%s: %s not found on PATH (no lsp_* answers for it)'):format(langs, tostring(s.command)))
    end
  end
end

function M.check()
  neovim()
  lua_config()
  if binary() then
    backend()
    mcp_servers()
    lsp_servers()
  end
end

return M
