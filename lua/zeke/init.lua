-- lua/zeke/init.lua: owns Zeke's public Lua API (`require('zeke')`): setup (optional; `vim.g.zeke`
-- works too), the ghost-text actions, explain, fix/test and their review (allow/deny), the chat
-- panel, status,
-- the statusline string, usage and pinning a provider,
-- per-buffer enable/disable, and wiring the autocommands, highlight groups and the opt-in default
-- keys. Nothing here starts the backend:
-- that happens on first use (InsertEnter in an enabled buffer, or a command).
local config = require('zeke.config')

local M = {}

local api = vim.api

local did_setup = false
local problems = {} ---@type string[] from the last setup()
local mapped = {} ---@type string[] keys mapped by `keymaps`

local ACTIONS = { 'accept', 'accept_word', 'accept_line', 'dismiss' }

local function define_highlights()
  api.nvim_set_hl(0, 'ZekeSuggestion', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'ZekeDiffAdd', { link = 'DiffAdd', default = true })
  api.nvim_set_hl(0, 'ZekeDiffDelete', { link = 'DiffDelete', default = true })
  api.nvim_set_hl(0, 'ZekeDiffHeader', { link = 'Title', default = true })
  api.nvim_set_hl(0, 'ZekeDiffOff', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'ZekeDiffContext', { link = 'Normal', default = true })
  api.nvim_set_hl(0, 'ZekeDiffTitle', { link = 'Title', default = true })
  api.nvim_set_hl(0, 'ZekeChatUser', { link = 'Title', default = true })
  api.nvim_set_hl(0, 'ZekeChatHeader', { link = 'Title', default = true })
  api.nvim_set_hl(0, 'ZekeChatContext', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'ZekeChatTool', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'ZekeChatToolFailed', { link = 'WarningMsg', default = true })
  api.nvim_set_hl(0, 'ZekeChatAsk', { link = 'WarningMsg', default = true })
  api.nvim_set_hl(0, 'ZekeChatNote', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'ZekeChatMeter', { link = 'Comment', default = true })
  api.nvim_set_hl(0, 'ZekeChatMeterHigh', { link = 'WarningMsg', default = true })
  api.nvim_set_hl(0, 'ZekeChatError', { link = 'ErrorMsg', default = true })
end

--- Maps the opt-in `keymaps` keys. Each is an expr map that falls back to the key itself (a real
--- `<Tab>`, say) when no suggestion is visible.
local function apply_keymaps()
  for _, lhs in ipairs(mapped) do
    pcall(vim.keymap.del, 'i', lhs)
  end
  mapped = {}
  local km = config.get().keymaps
  for _, action in ipairs(ACTIONS) do
    local lhs = km[action]
    if type(lhs) == 'string' and lhs ~= '' then
      vim.keymap.set('i', lhs, function()
        if require('zeke.inline').is_visible() then
          return ('<Cmd>lua require("zeke.inline").%s()<CR>'):format(action)
        end
        return lhs
      end, { expr = true, silent = true, desc = 'Zeke: ' .. action:gsub('_', ' ') .. ' (else ' .. lhs .. ')' })
      mapped[#mapped + 1] = lhs
    end
  end
end

--- Configures Zeke. `opts` (same schema as the TOML file, see `:h zeke-config`) is merged over
--- `vim.g.zeke`. Invalid keys are reported once (naming the key) and fall back to their defaults.
---@param opts table|nil
function M.setup(opts)
  if opts ~= nil and type(opts) ~= 'table' then
    vim.notify(('zeke: setup() takes a table (got %s)'):format(type(opts)), vim.log.levels.ERROR)
    opts = nil
  end
  local raw = opts
  local g = vim.g.zeke
  if type(g) == 'table' then
    raw = opts and vim.tbl_deep_extend('force', g, opts) or g
  elseif g ~= nil and opts == nil then
    raw = g
  end
  local sanitized
  sanitized, problems = config.validate(raw)
  if #problems > 0 then
    vim.notify('zeke: ' .. table.concat(problems, '\nzeke: '), vim.log.levels.ERROR, { title = 'zeke' })
  end
  config.set_user(sanitized)
  did_setup = true

  define_highlights()
  local group = api.nvim_create_augroup('zeke', { clear = true })
  require('zeke.inline').setup_autocmds(group)
  api.nvim_create_autocmd('ColorScheme', { group = group, callback = define_highlights })
  api.nvim_create_autocmd('VimLeavePre', { group = group, callback = function() require('zeke.rpc').stop() end })
  apply_keymaps()

  local rpc = require('zeke.rpc')
  if rpc.is_running() then rpc.configure() end
end

--- Runs setup() with `vim.g.zeke` if nobody called it yet. Returns true when it did.
---@return boolean
function M._ensure_setup()
  if did_setup then return false end
  M.setup()
  return true
end

--- The backend answered `configure` with the effective config (TOML file merged in).
function M._on_effective()
  if did_setup then apply_keymaps() end
end

--- Problems found in the last setup() (for :checkhealth).
---@return string[]
function M._problems() return problems end

--- The visible suggestion text, or nil.
---@return string|nil
function M.suggestion() return require('zeke.inline').suggestion() end

---@return boolean
function M.is_visible() return require('zeke.inline').is_visible() end

--- Accepts the whole suggestion (one undo step). Returns false when none is visible.
function M.accept() return require('zeke.inline').accept() end

--- Accepts the next word of the suggestion.
function M.accept_word() return require('zeke.inline').accept_word() end

--- Accepts the rest of the suggestion's current line.
function M.accept_line() return require('zeke.inline').accept_line() end

--- Hides the suggestion and cancels its request.
function M.dismiss() return require('zeke.inline').dismiss() end

--- Asks for a completion at the cursor now (no debounce).
function M.complete()
  M._ensure_setup()
  return require('zeke.inline').trigger()
end

--- Explains `range` ({start_row, end_row}, 0-based, end inclusive) or the function at the cursor,
--- streamed into a float.
---@param range integer[]|nil
---@return integer|nil request id
function M.explain(range)
  M._ensure_setup()
  return require('zeke.ui').explain(range)
end

--- Cancels everything the backend is doing (the chat turn in flight too).
function M.stop()
  require('zeke.ui').stop()
  require('zeke.diff').on_stop()
  if package.loaded['zeke.chat'] then require('zeke.chat').on_stop() end
end

--- Opens (or focuses) the chat panel; sends {message} when given. {range} ({start_row, end_row},
--- 0-based, end inclusive) of the current buffer goes with the next message as `#selection`.
--- See |zeke-chat|.
---@param message string|nil
---@param range integer[]|nil
function M.chat(message, range)
  M._ensure_setup()
  config.check_arg('message', message, 'string', true)
  config.check_arg('range', range, 'table', true)
  return require('zeke.chat').command(message, range)
end

--- Picks a saved conversation of this project (vim.ui.select), shows it and continues it.
function M.chat_resume()
  M._ensure_setup()
  return require('zeke.chat').resume()
end

--- Sends {message} in the chat panel's conversation (a `/command` runs it). Returns the request
--- id (true for a command), or nil and why it was not sent.
---@param message string
---@return integer|boolean|nil, string|nil
function M.chat_send(message)
  M._ensure_setup()
  return require('zeke.chat').send(message)
end

--- The chat panel's state: {open, layout, session, root, lines, input, turn = {id, done, text,
--- provider, model, context, usage, error, stopped, tools}, …} (see |zeke.chat_state()|).
---@return table
function M.chat_state() return require('zeke.chat').state() end

--- Asks the model for a patch fixing {range} ({start_row, end_row}, 0-based, end inclusive) or the
--- function / diagnostic at the cursor; the patch opens in the review window (see `:h zeke-review`).
---@param range integer[]|nil
---@return integer|nil request id
function M.fix(range)
  M._ensure_setup()
  return require('zeke.diff').fix(range)
end

--- Asks the model for tests of the function at the cursor (or {range}), as a patch to review.
---@param range integer[]|nil
---@return integer|nil request id
function M.test(range)
  M._ensure_setup()
  return require('zeke.diff').test(range)
end

--- `:Zeke edit [instruction]`: a reviewed patch rewriting `range` (0-based rows, end inclusive;
--- default: the function at the cursor) as `instruction` says (asked for when nil).
---@param range integer[]|nil
---@param instruction string|nil
function M.edit(range, instruction)
  M._ensure_setup()
  return require('zeke.diff').edit(range, instruction)
end

--- Opens the review window of the pending proposal again. false when none is pending.
function M.review() return require('zeke.diff').review() end

--- Allow once: applies the accepted hunks of the pending proposal (one undo step, not saved).
function M.allow() return require('zeke.diff').allow() end

--- Allow all: applies, and approves later proposals of the same kind in {scope} ("session" or
--- "project"; nil: ask with vim.ui.select).
---@param scope string|nil
function M.allow_all(scope) return require('zeke.diff').allow_all(scope) end

--- Deny: discards the pending proposal; {reason} goes to the model with the next fix.
---@param reason string|nil
function M.deny(reason) return require('zeke.diff').deny(reason) end

--- The pending proposal (for {buf}, default: the one `:Zeke allow` acts on) as a table:
--- {patch, job, buf, src, path, tick, provider, model, decision, note, title, window, lines,
---  hunks = {{start, old, new, accepted}}}; nil when none is pending.
---@param buf integer|nil
---@return table|nil
function M.review_state(buf) return require('zeke.diff').state(buf) end

--- Marks hunk {i} (1-based) of the pending proposal accepted / not ({value}; nil flips it).
---@param i integer
---@param value boolean|nil
---@return boolean|nil the new state, nil when there is no such hunk
function M.toggle_hunk(i, value) return require('zeke.diff').toggle(i, value) end

--- The backend's `status` (starts the backend if needed), plus `plugin` facts. nil, err on failure.
---@return table|nil, string|nil
function M.status()
  M._ensure_setup()
  local rpc = require('zeke.rpc')
  local st, err = rpc.request('status', vim.empty_dict())
  if not st then return nil, err end
  st.plugin = rpc.info()
  st.plugin.inline = require('zeke.inline').debug_state()
  return st
end

--- A short string for statuslines (lualine, …): the model in use, today's spend when above zero
--- and `!` when a budget is near; '' when the backend is not running. Cheap: never makes an RPC
--- request (the answer is cached and refreshed in the background).
---@return string
function M.statusline()
  local rpc = package.loaded['zeke.rpc']
  if not rpc or not rpc.is_running() then return '' end
  return require('zeke.router').statusline()
end

--- `:Zeke usage`: opens the spend / requests float.
function M.usage()
  M._ensure_setup()
  return require('zeke.router').usage()
end

--- Pins provider {name} for this session (nil: unpin, the router decides). Returns true on success.
---@param name string|nil
---@return boolean
function M.pin(name)
  M._ensure_setup()
  config.check_arg('name', name, 'string', true)
  return require('zeke.router').pin(name)
end

local function bufnr(buf)
  config.check_arg('buf', buf, 'number', true)
  if buf == nil or buf == 0 then return api.nvim_get_current_buf() end
  return buf
end

--- Enables ghost text in a buffer (default: current), overriding the filetype rule.
---@param buf integer|nil
function M.enable(buf)
  buf = bufnr(buf)
  vim.b[buf].zeke_enabled = true
  M._ensure_setup()
  if require('zeke.rpc').is_running() then require('zeke.rpc').attach(buf) end
end

--- Disables ghost text in a buffer (default: current).
---@param buf integer|nil
function M.disable(buf)
  buf = bufnr(buf)
  vim.b[buf].zeke_enabled = false
  require('zeke.inline').clear()
end

--- Toggles ghost text in a buffer; returns the new state.
---@param buf integer|nil
---@return boolean
function M.toggle(buf)
  buf = bufnr(buf)
  if require('zeke.inline').enabled(buf) then
    M.disable(buf)
    return false
  end
  M.enable(buf)
  return true
end

return M
