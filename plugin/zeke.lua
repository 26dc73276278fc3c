-- plugin/zeke.lua: declares the `:Zeke` command and the `<Plug>(zeke-…)` mappings; everything else
-- is required lazily. Nothing starts here: the backend starts on first use. `setup()` is optional:
-- on the first InsertEnter (or :Zeke) Zeke sets itself up from `vim.g.zeke`.
if vim.g.loaded_zeke then return end
vim.g.loaded_zeke = true

local api = vim.api

if vim.fn.has('nvim-0.10') ~= 1 then
  api.nvim_create_user_command('Zeke', function()
    vim.notify('zeke: needs Neovim 0.10 or later', vim.log.levels.ERROR)
  end, { nargs = '*' })
  return
end

api.nvim_create_user_command('Zeke', function(o) require('zeke.commands').run(o) end, {
  nargs = '*',
  range = true,
  desc = 'Zeke: chat, explain, fix, test, review, allow, deny, grants, revoke, complete, accept, dismiss, status, usage, '
    .. 'provider, model, log, restart, stop, enable, disable, toggle, health',
  complete = function(arglead, cmdline, pos) return require('zeke.commands').complete(arglead, cmdline, pos) end,
})

local function imap(name, fn, desc)
  vim.keymap.set('i', '<Plug>(zeke-' .. name .. ')', function() require('zeke')[fn]() end, { desc = 'Zeke: ' .. desc })
end
imap('accept', 'accept', 'accept the suggestion')
imap('accept-word', 'accept_word', 'accept the next word of the suggestion')
imap('accept-line', 'accept_line', 'accept the rest of the suggestion line')
imap('dismiss', 'dismiss', 'dismiss the suggestion')

vim.keymap.set('n', '<Plug>(zeke-explain)', function() require('zeke').explain() end,
  { desc = 'Zeke: explain the function at the cursor' })
vim.keymap.set('x', '<Plug>(zeke-explain)', function()
  local a, b = vim.fn.line('v'), vim.fn.line('.')
  api.nvim_feedkeys(api.nvim_replace_termcodes('<Esc>', true, false, true), 'nx', false)
  require('zeke').explain({ math.min(a, b) - 1, math.max(a, b) - 1 })
end, { desc = 'Zeke: explain the selection' })

--- Normal mode: `fn()` (cursor); Visual mode: `fn({first_row, last_row})` of the selected lines.
local function nxmap(name, fn, what)
  vim.keymap.set('n', '<Plug>(zeke-' .. name .. ')', function() require('zeke')[fn]() end,
    { desc = 'Zeke: ' .. what .. ' at the cursor' })
  vim.keymap.set('x', '<Plug>(zeke-' .. name .. ')', function()
    local a, b = vim.fn.line('v'), vim.fn.line('.')
    api.nvim_feedkeys(api.nvim_replace_termcodes('<Esc>', true, false, true), 'nx', false)
    require('zeke')[fn]({ math.min(a, b) - 1, math.max(a, b) - 1 })
  end, { desc = 'Zeke: ' .. what .. ' (the selection)' })
end
nxmap('fix', 'fix', 'propose a fix')
nxmap('test', 'test', 'propose tests')
vim.keymap.set('n', '<Plug>(zeke-chat)', function() require('zeke').chat() end,
  { desc = 'Zeke: open the chat panel' })
vim.keymap.set('x', '<Plug>(zeke-chat)', function()
  local a, b = vim.fn.line('v'), vim.fn.line('.')
  api.nvim_feedkeys(api.nvim_replace_termcodes('<Esc>', true, false, true), 'nx', false)
  require('zeke').chat(nil, { math.min(a, b) - 1, math.max(a, b) - 1 })
end, { desc = 'Zeke: open the chat panel with the selection as #selection' })
vim.keymap.set('n', '<Plug>(zeke-review)', function() require('zeke').review() end,
  { desc = 'Zeke: reopen the pending proposal' })

-- Lazy set-up for users who only set vim.g.zeke (or nothing): on the first InsertEnter.
api.nvim_create_autocmd('InsertEnter', {
  group = api.nvim_create_augroup('zeke_lazy', { clear = true }),
  once = true,
  callback = function(ev)
    if require('zeke')._ensure_setup() then require('zeke.inline').on_insert_enter(ev.buf) end
  end,
})
