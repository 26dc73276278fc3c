-- lua/zeke/router.lua: owns the editor's view of the backend's router: `:Zeke usage` (spend, per
-- provider·model lines, budget, the last requests, in a read-only float), `:Zeke provider` /
-- `:Zeke model` (pin a provider for this session, or let the router decide), the `statusline()`
-- string and its cache, and the formatting of providers that `:checkhealth` shares.
-- Invariants: `statusline()` never makes an RPC request and never starts the backend; the cache
-- is refreshed from timers and events (`vim.schedule`d, outside the backend's calls), only while
-- the backend runs and only once something asked for the statusline.
local rpc = require('zeke.rpc')

local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

M.REFRESH_MS = 30000 -- the statusline's slow timer
M.REFRESH_DELAY_MS = 50 -- after an event, before asking `status`
M.AUTOMATIC = 'automatic'

local cache = {
  status = nil, ---@type table|nil the last `status` answer
  models = nil, ---@type table|nil the last `models` answer {pinned, providers}
  text = '', ---@type string the statusline string made from them
  last_at_pin = nil, ---@type table|nil router.last when we pinned (no newer answer yet: show the pin)
  pinned_by_us = false,
}
local used = false -- statusline() was called: keep the cache fresh
local periodic = nil ---@type uv.uv_timer_t|nil
local soon = nil ---@type uv.uv_timer_t|nil

local function notify(msg, level) vim.notify(msg, level or vim.log.levels.INFO, { title = 'zeke' }) end

-- Formatting ---------------------------------------------------------------------------------

local function num(v)
  if type(v) ~= 'number' then return nil end
  return v
end

--- `3` → "3", `0.15` → "0.15", `2.50` → "2.5".
local function short_num(v)
  local s = ('%.4f'):format(v):gsub('0+$', ''):gsub('%.$', '')
  return s
end

--- USD for tables: "$0.00", "$0.0003", "$1.25"; `~` in front when estimated.
---@param v number|nil
---@param estimated boolean|nil
function M.money(v, estimated)
  v = num(v)
  if not v then return '–' end
  local s
  if v == 0 then
    s = '$0.00'
  elseif v < 0.01 then
    s = ('$%.4f'):format(v)
  else
    s = ('$%.2f'):format(v)
  end
  return (estimated and '~' or '') .. s
end

--- USD for the statusline: "$0.12", "<$0.01".
local function money_short(v)
  if v < 0.01 then return '<$0.01' end
  return ('$%.2f'):format(v)
end

local function tokens(n)
  n = num(n) or 0
  if n >= 1e6 then return ('%sM'):format(short_num(math.floor(n / 1e4 + 0.5) / 100)) end
  if n >= 10000 then return ('%sk'):format(short_num(math.floor(n / 100 + 0.5) / 10)) end
  return tostring(math.floor(n))
end
M.tokens = tokens

local function ms(v)
  v = num(v)
  if not v then return '–' end
  if v >= 10000 then return ('%s s'):format(short_num(math.floor(v / 100 + 0.5) / 10)) end
  return ('%d ms'):format(math.floor(v + 0.5))
end

local function plural(n, word) return ('%d %s%s'):format(n, word, n == 1 and '' or 's') end

--- "$3/$15 per Mtok", "local", or "price unknown".
---@param p table a `models` row
function M.price(p)
  if p['local'] == true then return 'local' end
  local pp = type(p.price_per_mtok) == 'table' and p.price_per_mtok or nil
  if pp and num(pp.input) and num(pp.output) then
    return ('$%s/$%s per Mtok'):format(short_num(pp.input), short_num(pp.output))
  end
  return 'price unknown'
end

local function marks(p)
  local out = {}
  if num(p.ttft_ms) then out[#out + 1] = 'ttft ' .. ms(p.ttft_ms) end
  if num(p.cooling_s) and p.cooling_s > 0 then out[#out + 1] = ('cooling %d s'):format(p.cooling_s) end
  if p.reachable == false then out[#out + 1] = 'unreachable' end
  if p.pinned == true then out[#out + 1] = 'pinned' end
  return out
end

--- A picker line: provider-first (`claude · anthropic · claude-sonnet-4-5 · $3/$15 per Mtok ·
--- ttft 420 ms`) or, with `model_first`, `claude-sonnet-4-5 (claude) · $3/$15 per Mtok`.
---@param p table a `models` row
---@param model_first boolean|nil
---@return string
function M.format_provider(p, model_first)
  local model = p.model and tostring(p.model) or '(server default)'
  local parts
  if model_first then
    parts = { ('%s (%s)'):format(model, tostring(p.provider)) }
  else
    parts = { tostring(p.provider), tostring(p.kind), model }
  end
  parts[#parts + 1] = M.price(p)
  vim.list_extend(parts, marks(p))
  return table.concat(parts, ' · ')
end

-- The backend's answers ----------------------------------------------------------------------

--- The `models` answer ({pinned, providers}); cached for completion and the statusline.
---@param probe boolean|nil probe each provider (slow: network); default false
---@return table|nil, string|nil
function M.models(probe)
  local res, err = rpc.request('models', { probe = probe == true })
  if not res then return nil, err end
  res.providers = type(res.providers) == 'table' and res.providers or {}
  cache.models = res
  return res
end

--- Provider names for completing `:Zeke provider`: the last `models` answer, else the config.
---@return string[]
function M.provider_names()
  local names = {}
  if cache.models then
    for _, p in ipairs(cache.models.providers) do names[#names + 1] = tostring(p.provider) end
  end
  if #names == 0 then
    names = vim.tbl_keys(require('zeke.config').get().providers or {})
  end
  table.sort(names)
  table.insert(names, 1, M.AUTOMATIC)
  return names
end

--- Model names for completing `:Zeke model` (from the last `models` answer).
---@return string[]
function M.model_names()
  local names = {}
  for _, p in ipairs(cache.models and cache.models.providers or {}) do
    if p.model then names[#names + 1] = tostring(p.model) end
  end
  table.sort(names)
  table.insert(names, 1, M.AUTOMATIC)
  return names
end

--- Pins provider `name` for this session (nil: unpin, the router decides). Says so.
---@param name string|nil
---@param model string|nil only for the message
---@return boolean ok
function M.pin(name, model)
  local args = name and { provider = name } or vim.empty_dict()
  local before = cache.status and cache.status.router and cache.status.router.last
  local _, err = rpc.request('pin', args)
  if err then
    notify('zeke: could not pin: ' .. tostring(err), vim.log.levels.ERROR)
    return false
  end
  if cache.models then
    cache.models.pinned = name
    for _, p in ipairs(cache.models.providers) do p.pinned = name ~= nil and p.provider == name end
  end
  cache.last_at_pin, cache.pinned_by_us = before, name ~= nil
  if name then
    notify(('zeke: provider %s%s pinned for this session'):format(name, model and (' (model ' .. model .. ')') or ''))
  else
    notify('zeke: provider unpinned: automatic (the router decides)')
  end
  M.refresh_soon()
  return true
end

--- `:Zeke provider` / `:Zeke model` without a name: a vim.ui.select over "automatic" and every
--- provider. `model_first` labels the items by model.
---@param model_first boolean|nil
function M.pick(model_first)
  local res, err = M.models(false)
  if not res then
    notify('zeke: could not list the providers: ' .. tostring(err), vim.log.levels.ERROR)
    return
  end
  local items = { { automatic = true } }
  for _, p in ipairs(res.providers) do items[#items + 1] = p end
  vim.ui.select(items, {
    prompt = model_first and 'Zeke model' or 'Zeke provider',
    kind = 'zeke.provider',
    format_item = function(item)
      if item.automatic then
        return 'automatic (the router decides)' .. (res.pinned == nil and ' · current' or '')
      end
      return M.format_provider(item, model_first)
    end,
  }, function(item)
    if not item then return end
    if item.automatic then
      M.pin(nil)
    else
      M.pin(tostring(item.provider), model_first and item.model and tostring(item.model) or nil)
    end
  end)
end

--- `:Zeke provider [NAME]`.
---@param name string|nil
function M.provider_command(name)
  if not name then return M.pick(false) end
  if name == M.AUTOMATIC then return M.pin(nil) end
  return M.pin(name)
end

--- `:Zeke model [MODEL]`: the provider serving MODEL is pinned (each provider serves one model).
---@param model string|nil
function M.model_command(model)
  if not model then return M.pick(true) end
  if model == M.AUTOMATIC then return M.pin(nil) end
  local res, err = M.models(false)
  if not res then
    notify('zeke: could not list the providers: ' .. tostring(err), vim.log.levels.ERROR)
    return
  end
  local found = {}
  for _, p in ipairs(res.providers) do
    if p.model == model or p.provider == model then found[#found + 1] = p end
  end
  if #found == 0 then
    local known = {}
    for _, p in ipairs(res.providers) do
      known[#known + 1] = ('%s (%s)'):format(tostring(p.model), tostring(p.provider))
    end
    notify(('zeke: no provider serves model %q (configured: %s)'):format(model,
      #known > 0 and table.concat(known, ', ') or 'none'), vim.log.levels.ERROR)
    return
  end
  return M.pin(tostring(found[1].provider), found[1].model and tostring(found[1].model) or nil)
end

-- :Zeke usage --------------------------------------------------------------------------------

local function budget_text(b, today, month)
  local parts = {}
  if num(b.daily_usd) then
    local pct = b.daily_usd > 0 and (' (%d %%)'):format(math.floor(100 * today / b.daily_usd + 0.5)) or ''
    parts[#parts + 1] = ('daily %s of %s%s'):format(M.money(today), M.money(b.daily_usd), pct)
  end
  if num(b.monthly_usd) then
    local pct = b.monthly_usd > 0 and (' (%d %%)'):format(math.floor(100 * month / b.monthly_usd + 0.5)) or ''
    parts[#parts + 1] = ('monthly %s of %s%s'):format(M.money(month), M.money(b.monthly_usd), pct)
  end
  if #parts == 0 then parts[1] = 'no limit' end
  return table.concat(parts, ' · ') .. (' (%s)'):format(tostring(b.mode or 'soft'))
end
M.budget_text = budget_text

--- Spend of provider `name` today / this month, from a `usage` answer.
function M.spend_of(u, name)
  local t, m = 0, 0
  for _, l in ipairs(u and u.today and u.today.by_model or {}) do
    if l.provider == name then t = t + (num(l.cost_usd) or 0) end
  end
  for _, l in ipairs(u and u.month and u.month.by_model or {}) do
    if l.provider == name then m = m + (num(l.cost_usd) or 0) end
  end
  return t, m
end

local function in_out(i, cached, o)
  local s = tokens(i) .. ' in'
  if num(cached) and cached > 0 then s = s .. (' (%s cached)'):format(tokens(cached)) end
  return s .. ' / ' .. tokens(o) .. ' out'
end

--- Pads the columns of `rows` (lists of strings) to a common width.
local function columns(rows, indent)
  local w = {}
  for _, r in ipairs(rows) do
    for i, cell in ipairs(r) do w[i] = math.max(w[i] or 0, vim.fn.strdisplaywidth(cell)) end
  end
  local out = {}
  for _, r in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(r) do
      cells[i] = i == #r and cell or (cell .. (' '):rep(w[i] - vim.fn.strdisplaywidth(cell)))
    end
    out[#out + 1] = indent .. table.concat(cells, '  ')
  end
  return out
end

local function by_model_lines(lines, title, period)
  local rows = {}
  for _, l in ipairs(period and period.by_model or {}) do
    local failures = num(l.failures) or 0
    rows[#rows + 1] = {
      ('%s · %s'):format(tostring(l.provider), tostring(l.model or '(server default)')),
      plural(num(l.requests) or 0, 'request'),
      in_out(l.input_tokens, l.cached_input_tokens, l.output_tokens),
      M.money(l.cost_usd),
      failures > 0 and plural(failures, 'failure') or '',
    }
  end
  lines[#lines + 1] = { title, 'Title' }
  if #rows == 0 then
    lines[#lines + 1] = { '  (none)', 'Comment' }
  else
    for _, l in ipairs(columns(rows, '  ')) do lines[#lines + 1] = (l:gsub('%s+$', '')) end
  end
end

--- The lines of the `:Zeke usage` window for a `usage` answer `u` (and a `models` answer `m`,
--- for provider budgets; may be nil). Strings, or {text, hl_group}.
---@param u table
---@param m table|nil
---@return table[]
function M.usage_lines(u, m)
  local lines = {}
  local today = num(u.today and u.today.cost_usd) or 0
  local month = num(u.month and u.month.cost_usd) or 0
  local last = type(u.last) == 'table' and u.last or {}
  local empty = #last == 0 and #(u.month and u.month.by_model or {}) == 0
  lines[#lines + 1] = { ('Today %s · this month %s'):format(M.money(today), M.money(month)), 'Title' }
  if type(u.budget) == 'table' then
    lines[#lines + 1] = 'Budget: ' .. budget_text(u.budget, today, month)
  else
    lines[#lines + 1] = { 'Budget: none (see :h zeke-router-budget)', 'Comment' }
  end
  for _, p in ipairs(m and m.providers or {}) do
    if type(p.budget) == 'table' then
      local t, mo = M.spend_of(u, p.provider)
      lines[#lines + 1] = ('Budget of %s: %s'):format(tostring(p.provider), budget_text(p.budget, t, mo))
    end
  end
  lines[#lines + 1] = ''
  if empty then
    lines[#lines + 1] = { 'No requests recorded yet: explain, fix, test or complete something first.', 'Comment' }
  else
    by_model_lines(lines, 'Today', u.today)
    lines[#lines + 1] = ''
    by_model_lines(lines, 'This month', u.month)
    lines[#lines + 1] = ''
    lines[#lines + 1] = { ('Last %s'):format(plural(#last, 'request')), 'Title' }
    local rows = {}
    for _, r in ipairs(last) do
      local extra = {}
      local fb = num(r.fallbacks) or 0
      if fb > 0 then extra[#extra + 1] = plural(fb, 'fallback') end
      if r.hedged == true then extra[#extra + 1] = 'hedged' end
      rows[#rows + 1] = {
        num(r.ts_ms) and os.date('%H:%M', math.floor(r.ts_ms / 1000)) or '--:--',
        tostring(r.intent or '?'),
        ('%s · %s'):format(tostring(r.provider), tostring(r.model or '(server default)')),
        in_out(r.input_tokens, r.cached_input_tokens, r.output_tokens),
        M.money(r.cost_usd, r.cost_estimated == true),
        'ttft ' .. ms(r.ttft_ms),
        tostring(r.outcome or '?'),
        table.concat(extra, ', '),
      }
    end
    for _, l in ipairs(columns(rows, '  ')) do lines[#lines + 1] = (l:gsub('%s+$', '')) end
  end
  lines[#lines + 1] = ''
  lines[#lines + 1] = { ('ledger: %s · q closes'):format(tostring(u.ledger or '?')), 'Comment' }
  return lines
end

--- `:Zeke usage`: the ledger's summary in a read-only float.
---@return integer|nil buf
function M.usage()
  local u, err = rpc.request('usage', { last = 10 })
  if not u then
    notify('zeke: could not read the usage: ' .. tostring(err), vim.log.levels.ERROR)
    return nil
  end
  local m = M.models(false)
  local buf = require('zeke.ui').scratch(' Zeke usage ', M.usage_lines(u, m), { filetype = 'zeke-usage' })
  return buf
end

-- The statusline -----------------------------------------------------------------------------

local function model_of(name)
  for _, p in ipairs(cache.models and cache.models.providers or {}) do
    if p.provider == name then return p.model or p.provider end
  end
  local sp = cache.status and cache.status.provider
  if sp and sp.name == name then return sp.model or sp.name end
end

local function compose(st)
  local r = type(st.router) == 'table' and st.router or {}
  local last = type(r.last) == 'table' and r.last or nil
  local model
  -- A pin made here, with no answer since: the pinned provider answers next.
  local fresh_pin = r.pinned and cache.pinned_by_us and vim.deep_equal(last, cache.last_at_pin)
  if last and not fresh_pin then model = last.model or last.provider end
  if not model and r.pinned then model = model_of(r.pinned) or r.pinned end
  if not model and type(st.provider) == 'table' then model = st.provider.model or st.provider.name end
  local parts = {}
  if model then parts[#parts + 1] = tostring(model) end
  local spend = num(r.spend_today_usd)
  local tail = ''
  if spend and spend > 0 then tail = money_short(spend) end
  if r.budget_near == true then tail = tail .. '!' end
  if tail ~= '' then parts[#parts + 1] = tail end
  return table.concat(parts, ' ')
end

local function stop_timer(t)
  if t then
    t:stop()
    if not t:is_closing() then t:close() end
  end
end

--- Asks the backend for `status` now (a short request) and recomputes the statusline string.
--- Does nothing (and clears the cache) when the backend is not running: never starts it.
function M.refresh()
  if not rpc.is_running() then
    cache.status, cache.text = nil, ''
    return
  end
  local st = rpc.request('status', vim.empty_dict())
  if not st then return end
  cache.status = st
  local r = type(st.router) == 'table' and st.router or {}
  if r.pinned and not model_of(r.pinned) then M.models(false) end
  local text = compose(st)
  if text ~= cache.text then
    cache.text = text
    pcall(vim.cmd, 'redrawstatus')
  end
end

--- Refreshes the statusline cache soon (after `delay_ms`, default REFRESH_DELAY_MS), from a
--- timer and vim.schedule: never inside the caller (a redraw, an event from the backend).
--- Several calls before it runs make one refresh. Only once the statusline is in use.
---@param delay_ms integer|nil
function M.refresh_soon(delay_ms)
  if not used or soon then return end
  soon = uv.new_timer()
  soon:start(delay_ms or M.REFRESH_DELAY_MS, 0, function()
    stop_timer(soon)
    soon = nil
    vim.schedule(M.refresh)
  end)
end

local function ensure_periodic()
  if periodic then return end
  periodic = uv.new_timer()
  periodic:start(M.REFRESH_MS, M.REFRESH_MS, function()
    vim.schedule(function()
      if rpc.is_running() then M.refresh() else M.on_backend_exit() end
    end)
  end)
end

--- A short string for statuslines (lualine etc.): the model in use, today's spend when above 0
--- (`$0.12`), and `!` when a budget is at 80 % or more; '' when Zeke is not running. Never makes
--- an RPC request: it returns what the last refresh found.
---@return string
function M.statusline()
  used = true
  if not rpc.is_running() then return '' end
  ensure_periodic()
  if not cache.status then
    M.refresh_soon(0)
    return ''
  end
  return cache.text
end

--- An event went by (from rpc.dispatch): an answer finished, a notice, a proposal: refresh.
---@param event string
---@param p table
function M.on_event(event, p)
  if not used then return end
  if event == 'explain' and not p.done then return end
  M.refresh_soon()
end

--- The backend (re)started and is configured.
function M.on_backend_start()
  cache.status, cache.models, cache.text = nil, nil, ''
  if used then
    ensure_periodic()
    M.refresh_soon()
  end
end

--- The backend exited or was stopped: the statusline goes blank, the timer stops.
function M.on_backend_exit()
  cache.status, cache.text = nil, ''
  cache.last_at_pin, cache.pinned_by_us = nil, false
  stop_timer(periodic)
  periodic = nil
end

--- For tests: the cache and whether a refresh is pending.
function M.debug_state()
  return { text = cache.text, status = cache.status ~= nil, models = cache.models ~= nil, used = used,
    periodic = periodic ~= nil, pending = soon ~= nil }
end

return M
