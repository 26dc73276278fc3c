-- tests/lua/minimal_init.lua: the init file of every child Neovim the Lua tests start: puts this
-- checkout on 'runtimepath' (so plugin/zeke.lua loads as it would for a user), makes the editor
-- deterministic (no swap/shada, no indent magic) and records vim.notify calls for the tests to read
-- (`require('zeke_test').notes`) instead of printing them.
local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h:h:h')
vim.opt.runtimepath:prepend(root)
vim.o.swapfile = false
vim.o.shadafile = 'NONE'
vim.o.autoindent = false
vim.o.smartindent = false
vim.o.expandtab = false
vim.o.more = false
vim.o.cmdheight = 5
vim.cmd('filetype indent off')

local T = { notes = {}, root = root }
package.loaded.zeke_test = T
vim.notify = function(msg, level, _)
  table.insert(T.notes, { msg = tostring(msg), level = level or vim.log.levels.INFO })
end
