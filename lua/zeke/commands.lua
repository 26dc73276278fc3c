-- lua/zeke/commands.lua: owns the `:Zeke {subcommand}` command: the table of subcommands, running
-- one, and completing their names. Each subcommand is a thin call into the public API.
local M = {}

local api = vim.api

local function zeke() return require('zeke') end

local function echo(lines)
  local chunks = {}
  for i, l in ipairs(lines) do
    chunks[#chunks + 1] = { l[1], l[2] }
    if i < #lines then chunks[#chunks + 1] = { '\n' } end
  end
  api.nvim_echo(chunks, true, {})
end

local function fmt_ms(v)
  if type(v) ~= 'number' then return '–' end
  if v < 10 then return ('%.1f ms'):format(v) end
  return ('%d ms'):format(math.floor(v + 0.5))
end

--- `:Zeke status`: backend pid, provider/model, last latency, counters.
local function status()
  local st, err = zeke().status()
  if not st then
    echo({ { 'Zeke: backend not available: ' .. tostring(err), 'ErrorMsg' } })
    return
  end
  local info = st.plugin or {}
  local lines = {
    { ('Zeke %s · backend pid %s · %s'):format(tostring(st.version or '?'), tostring(st.pid or info.pid or '?'),
      tostring(info.bin or '?')), 'Title' },
  }
  local p = st.provider
  if p then
    lines[#lines + 1] = { ('provider: %s (%s) · model %s · %s'):format(tostring(p.name), tostring(p.kind),
      tostring(p.model or '(server default)'), tostring(p.url)), 'Normal' }
  else
    lines[#lines + 1] = { 'provider: none found (see :checkhealth zeke)', 'WarningMsg' }
  end
  local last = st.last
  if last then
    lines[#lines + 1] = { ('last completion: ttft %s · total %s · zeke overhead %s'):format(fmt_ms(last.ttft_ms),
      fmt_ms(last.total_ms), fmt_ms(last.overhead_ms)), 'Normal' }
  else
    lines[#lines + 1] = { 'last completion: –', 'Normal' }
  end
  local r = st.router
  if type(r) == 'table' then
    local router = require('zeke.router')
    local parts = { 'router: ' .. (r.pinned and ('provider ' .. tostring(r.pinned) .. ' pinned') or 'automatic') }
    if type(r.last) == 'table' then
      parts[#parts + 1] = ('last answer %s · %s'):format(tostring(r.last.provider), tostring(r.last.model or '?'))
    end
    parts[#parts + 1] = ('spent today %s, this month %s'):format(router.money(r.spend_today_usd),
      router.money(r.spend_month_usd))
    if type(r.budget) == 'table' then
      parts[#parts + 1] = 'budget ' .. router.budget_text(r.budget, tonumber(r.spend_today_usd) or 0,
        tonumber(r.spend_month_usd) or 0)
    end
    lines[#lines + 1] = { table.concat(parts, ' · '), r.budget_near and 'WarningMsg' or 'Normal' }
  end
  local c = st.counts or {}
  lines[#lines + 1] = { ('completions: %s started, %s finished, %s cancelled, %s failed · explains: %s started, %s finished')
    :format(tostring(c.completions_started or 0), tostring(c.completions_finished or 0),
      tostring(c.completions_cancelled or 0), tostring(c.completions_failed or 0),
      tostring(c.explains_started or 0), tostring(c.explains_finished or 0)), 'Normal' }
  local buf = api.nvim_get_current_buf()
  local m = st.mirror or {}
  lines[#lines + 1] = { ('buffers mirrored: %s (%s resyncs) · rss %s kB · config %s · ghost text %s here'):format(
    tostring(st.buffers or 0), tostring(m.resyncs or 0), tostring(st.rss_kb or '?'),
    tostring(info.config_path or 'none'), require('zeke.inline').enabled(buf) and 'on' or 'off'), 'Normal' }
  echo(lines)
end

local function log()
  local path = require('zeke.rpc').log_path()
  if vim.fn.filereadable(path) == 0 then
    vim.notify('zeke: no log yet at ' .. path, vim.log.levels.WARN)
    return
  end
  vim.cmd('split ' .. vim.fn.fnameescape(path))
  vim.bo.autoread = true
  vim.cmd('normal! G')
end

--- `:Zeke grants`: the "Allow all" grants the backend honours (session ones of this editor, and
--- project ones, which `zeke mcp` honours too), per capability.
local function grants()
  local list, err = require('zeke.rpc').request('grants', vim.empty_dict())
  if not list then
    vim.notify('zeke: could not list the grants: ' .. tostring(err), vim.log.levels.ERROR)
    return
  end
  if #list == 0 then
    vim.notify('zeke: no "Allow all" grants')
    return
  end
  local lines = {}
  for _, g in ipairs(list) do
    lines[#lines + 1] = ('"Allow all" %s in %s (%s)'):format(tostring(g.capability), tostring(g.root), tostring(g.scope))
  end
  vim.notify('zeke: ' .. table.concat(lines, '\nzeke: '))
end

local CAPABILITIES = { 'fs.read', 'fs.write', 'git.read', 'git.write', 'cmd.exec', 'net.http', 'mcp.call' }

--- `:Zeke revoke [CAPABILITY|all] [ROOT]`: forgets grants (every capability / every root when left
--- out). `fix` and `test` name `fs.write`, the capability their patches need.
local function revoke(o)
  local cap, root = o.fargs[2], o.fargs[3]
  if cap == 'fix' or cap == 'test' then cap = 'fs.write' end
  if cap ~= nil and cap ~= 'all' and not vim.tbl_contains(CAPABILITIES, cap) then
    vim.notify(('zeke: :Zeke revoke takes a capability (%s) or all, then an optional project root (got %q)')
      :format(table.concat(CAPABILITIES, ', '), cap), vim.log.levels.ERROR)
    return
  end
  local args = vim.empty_dict()
  if cap and cap ~= 'all' then args.capability = cap end
  if root then args.root = vim.fn.fnamemodify(vim.fn.expand(root), ':p'):gsub('/$', '') end
  local n, err = require('zeke.rpc').request('revoke', args)
  if not n then
    vim.notify('zeke: revoke failed: ' .. tostring(err), vim.log.levels.ERROR)
    return
  end
  vim.notify(('zeke: revoked %d grant%s'):format(n, n == 1 and '' or 's'))
end

--- The command's range as {start_row, end_row} (0-based, inclusive), or nil without one.
local function range_of(o)
  if o.range and o.range > 0 then return { o.line1 - 1, o.line2 - 1 } end
  return nil
end

---@type table<string, {desc: string, run: fun(o: table), args: nil|fun(args: string[]): string[]}>
M.subcommands = {
  explain = {
    desc = 'explain the range, or the function at the cursor, in a float',
    run = function(o) zeke().explain(range_of(o)) end,
  },
  fix = {
    desc = 'propose a fix of the range, or the function/diagnostic at the cursor, for review',
    run = function(o) zeke().fix(range_of(o)) end,
  },
  test = {
    desc = 'propose tests for the function at the cursor, for review',
    run = function(o) zeke().test(range_of(o)) end,
  },
  edit = {
    desc = 'rewrite the range (or the function at the cursor) as instructed (`edit INSTRUCTION`; asked for when omitted), for review',
    run = function(o)
      local text = (o.args or ''):gsub('^%s*%S+%s*', '', 1)
      zeke().edit(range_of(o), text ~= '' and text or nil)
    end,
  },
  chat = {
    desc = 'open the chat panel (`chat MESSAGE` sends it; a range goes as #selection; `chat resume`)',
    run = function(o)
      local msg = (o.args or ''):gsub('^%s*%S+%s*', '', 1)
      zeke().chat(msg, range_of(o))
    end,
    args = function(args)
      if #args <= 1 then return { 'resume' } end
      return {}
    end,
  },
  review = { desc = 'reopen the review window of the pending proposal', run = function() zeke().review() end },
  allow = {
    desc = 'allow the pending proposal once; `allow all [session|project]` also approves later ones',
    run = function(o)
      local a = o.fargs[2]
      if a == nil then return zeke().allow() end
      if a ~= 'all' then
        vim.notify(('zeke: :Zeke allow takes nothing or `all [session|project]` (got %q)'):format(a),
          vim.log.levels.ERROR)
        return
      end
      zeke().allow_all(o.fargs[3] or 'session')
    end,
    args = function(args)
      if #args <= 1 then return { 'all' } end
      if #args == 2 and args[1] == 'all' then return { 'session', 'project' } end
      return {}
    end,
  },
  grants = { desc = 'list the "Allow all" grants (session and project)', run = grants },
  revoke = {
    desc = 'forget "Allow all" grants: `revoke [CAPABILITY|all] [ROOT]`',
    run = revoke,
    args = function(args)
      if #args <= 1 then return vim.list_extend({ 'all' }, CAPABILITIES) end
      return {}
    end,
  },
  deny = {
    desc = 'discard the pending proposal; an optional reason goes to the model with the next fix',
    run = function(o)
      local reason = table.concat(vim.list_slice(o.fargs, 2), ' ')
      zeke().deny(reason ~= '' and reason or nil)
    end,
  },
  complete = { desc = 'ask for a completion at the cursor now', run = function() zeke().complete() end },
  accept = { desc = 'accept the visible suggestion', run = function() zeke().accept() end },
  dismiss = { desc = 'hide the suggestion', run = function() zeke().dismiss() end },
  status = { desc = 'backend pid, provider/model, last latency', run = status },
  log = { desc = 'open the backend log in a split', run = log },
  restart = { desc = 'restart the backend', run = function() require('zeke.rpc').restart() end },
  stop = { desc = 'cancel every running request', run = function() zeke().stop() end },
  enable = { desc = 'enable ghost text in this buffer', run = function() zeke().enable() end },
  disable = { desc = 'disable ghost text in this buffer', run = function() zeke().disable() end },
  toggle = {
    desc = 'toggle ghost text in this buffer',
    run = function()
      local on = zeke().toggle()
      vim.notify('zeke: ghost text ' .. (on and 'enabled' or 'disabled') .. ' in this buffer')
    end,
  },
  health = { desc = 'run :checkhealth zeke', run = function() vim.cmd('checkhealth zeke') end },
  usage = {
    desc = "spend today and this month, per provider and model, the budget, the last requests",
    run = function() require('zeke.router').usage() end,
  },
  provider = {
    desc = 'pin a provider for this session (`provider NAME`, or pick one; "automatic" unpins)',
    run = function(o) require('zeke.router').provider_command(o.fargs[2]) end,
    args = function(args)
      if #args <= 1 then return require('zeke.router').provider_names() end
      return {}
    end,
  },
  model = {
    desc = 'pin the provider of a model for this session (`model NAME`, or pick one)',
    run = function(o) require('zeke.router').model_command(o.fargs[2]) end,
    args = function(args)
      if #args <= 1 then return require('zeke.router').model_names() end
      return {}
    end,
  },
}

--- Runs `:Zeke` with the user-command table `o`.
---@param o table
function M.run(o)
  require('zeke')._ensure_setup()
  local name = o.fargs[1]
  if not name then
    name = 'status'
  end
  local sub = M.subcommands[name]
  if not sub then
    vim.notify(('zeke: unknown subcommand %q; one of: %s'):format(name, table.concat(M.names(), ', ')),
      vim.log.levels.ERROR)
    return
  end
  sub.run(o)
end

---@return string[]
function M.names()
  local names = vim.tbl_keys(M.subcommands)
  table.sort(names)
  return names
end

--- Completion for `:Zeke <Tab>`.
---@param arglead string
---@param cmdline string
---@return string[]
function M.complete(arglead, cmdline, _)
  local before = cmdline:gsub("^%A*", ''):gsub('^%S+%s*', '', 1) -- drop range and the command name
  local function match(list) return vim.tbl_filter(function(n) return vim.startswith(n, arglead) end, list) end
  if not before:find('%s') then return match(M.names()) end
  -- later arguments: the subcommand's own (`allow` → `all` → `session`/`project`)
  local words = vim.split(before, '%s+', { trimempty = true })
  local sub = M.subcommands[words[1]]
  if not sub or not sub.args then return {} end
  local done = vim.list_slice(words, 2, #words - (arglead ~= '' and 1 or 0))
  done[#done + 1] = arglead
  return match(sub.args(done))
end

return M
