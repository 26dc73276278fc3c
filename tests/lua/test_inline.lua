-- tests/lua/test_inline.lua: ghost text against the real backend with the deterministic `fake`
-- provider: rendering (inline + virt_lines), accept / accept_word / accept_line (one undo step),
-- type-through, dismiss, stale results, the completion menu, disabled buffers, <Tab> fallback.
local NEEDS = { 'ZEKE_BIN' }

--- A child in insert mode in a fresh buffer, with `keys` typed, ghost text `reply` configured.
local function start(H, reply, extra, ft)
  local c = H.child()
  c:setup(H.fake(reply, extra))
  c:new_buffer(ft or 'lua')
  c:lua([[
    vim.keymap.set('i', '<C-l>', '<Plug>(zeke-accept)')
    vim.keymap.set('i', '<C-f>', '<Plug>(zeke-accept-word)')
    vim.keymap.set('i', '<C-j>', '<Plug>(zeke-accept-line)')
    vim.keymap.set('i', '<C-e>', '<Plug>(zeke-dismiss)')
  ]])
  return c
end

local function counts(c) return c:status().counts end

return {
  {
    name = 'a buffer holding form feeds, CR, U+2028 and NEL: the completion request carries exactly the text before and after the cursor',
    needs = NEEDS,
    run = function(H)
      local dump = vim.fn.tempname()
      local c = H.child({ env = { ZEKE_FAKE_DUMP = dump } })
      c:setup(H.fake('x'))
      c:new_buffer('c')
      local lines = { 'int a;\x0c', '\x0c', 'b\u{2028}c\rd\u{85}e\u{2029}', 'int f(void) {', '  return 1;', '}' }
      c:lua('vim.api.nvim_buf_set_lines(0, 0, -1, false, ...)', lines)
      -- type at the end of line 4, after the form feeds shifted nothing
      c:lua('vim.api.nvim_win_set_cursor(0, { 4, 0 })')
      c:input('A /* ')
      H.eq('x', c:wait_full())
      local got = vim.json.decode(table.concat(vim.fn.readfile(dump), '\n'))
      local want = c:lua([[
        local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
        local row, col = unpack(vim.api.nvim_win_get_cursor(0))
        local before = vim.list_slice(lines, 1, row - 1)
        before[#before + 1] = lines[row]:sub(1, col)
        local after = { lines[row]:sub(col + 1) }
        vim.list_extend(after, vim.list_slice(lines, row + 1, #lines))
        return { prefix = table.concat(before, '\n'), suffix = table.concat(after, '\n') }
      ]])
      H.eq(want.prefix, got.prefix, 'the prefix is the buffer before the cursor, byte for byte')
      H.ok(vim.startswith(want.suffix, got.suffix) or vim.startswith(got.suffix, want.suffix),
        'the suffix is the buffer after the cursor: ' .. vim.inspect({ got.suffix, want.suffix }))
      H.eq(0, c:status().mirror.resyncs, 'the mirror never fell out of step')
      H.eq({}, c:problems())
    end,
  },
  {
    name = 'ghost text appears inline at the cursor; suggestion() returns it',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()')
      c:input('ihello ')
      H.eq('world()', c:wait_full())
      local marks = c:marks()
      H.eq(1, #marks, 'one extmark')
      local m = marks[1]
      H.eq({ 0, 6 }, { m[2], m[3] }, 'at the cursor (row 0, col 6)')
      H.eq('inline', m[4].virt_text_pos)
      H.eq({ { 'world()', 'ZekeSuggestion' } }, m[4].virt_text)
      H.eq(nil, m[4].virt_lines)
      H.eq('hello ', c:line(), 'buffer untouched by ghost text')
      H.eq('Comment', c:lua('return vim.api.nvim_get_hl(0, { name = "ZekeSuggestion" }).link'))
      -- on screen: the cursor stays before the ghost text, which pushes nothing into the buffer
      local screen = c:lua([[
        vim.cmd('redraw')
        local s = {}
        for i = 1, 16 do s[#s + 1] = vim.fn.screenstring(1, i) end
        return { text = table.concat(s), col = vim.fn.screencol() }
      ]])
      H.eq('hello world()   ', screen.text)
      H.eq(7, screen.col, 'cursor drawn where the ghost text starts')
      H.eq({}, c:problems())
    end,
  },
  {
    name = 'multi-line ghost text: first line inline, the rest as virt_lines',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'add(a, b)\n  return a + b\nend')
      c:input('ilocal function ')
      H.eq('add(a, b)\n  return a + b\nend', c:wait_full())
      local m = c:marks()[1]
      H.eq({ { 'add(a, b)', 'ZekeSuggestion' } }, m[4].virt_text)
      H.eq({ { { '  return a + b', 'ZekeSuggestion' } }, { { 'end', 'ZekeSuggestion' } } }, m[4].virt_lines)
      H.eq({ 'local function ' }, c:lines())
    end,
  },
  {
    name = 'accept inserts exactly the text, cursor at its end, <Esc>u undoes only it',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'add(a, b)\n  return a + b\nend')
      c:input('ilocal function ')
      c:wait_full()
      c:input('<C-l>')
      H.wait(function() return c:suggestion() == nil and #c:lines() == 3 end, 5000, 'accepted')
      H.eq({ 'local function add(a, b)', '  return a + b', 'end' }, c:lines())
      H.eq({ 3, 3 }, c:cursor(), 'cursor at the end of the accepted text')
      H.eq('i', c:mode())
      H.eq({}, c:marks(), 'ghost text gone')
      c:input('<Esc>u')
      H.wait(function() return #c:lines() == 1 end, 5000, 'undo')
      H.eq({ 'local function ' }, c:lines(), 'one undo step removes exactly the accepted text')
      H.eq(0, c:status().mirror.resyncs, 'typing, accept, undo: the mirror never fell out of step')
    end,
  },
  {
    name = 'accept via the public API and typing afterwards is a separate undo step',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()')
      c:input('ihello ')
      c:wait_full()
      H.eq(true, c:lua('return require("zeke").accept()'))
      H.eq('hello world()', c:line())
      c:input(' -- ok')
      H.wait(function() return c:line() == 'hello world() -- ok' end, 5000, 'typed after accept')
      c:input('<Esc>u')
      H.wait(function() return c:line() ~= 'hello world() -- ok' end, 5000, 'undo')
      H.eq('hello world()', c:line())
      c:input('u')
      H.wait(function() return c:line() ~= 'hello world()' end, 5000, 'undo 2')
      H.eq('hello ', c:line())
    end,
  },
  {
    name = 'accept_word takes the next word, the rest stays visible',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'foo.bar(baz) + 1')
      c:input('ix = ')
      c:wait_full()
      c:input('<C-f>')
      H.wait(function() return c:line() == 'x = foo' end, 5000, 'first word')
      H.eq('.bar(baz) + 1', c:suggestion())
      H.eq({ 1, 7 }, c:cursor())
      c:input('<C-f>')
      H.wait(function() return c:line() == 'x = foo.bar' end, 5000, 'second word')
      H.eq('(baz) + 1', c:suggestion())
      local m = c:marks()[1]
      H.eq({ 0, 11 }, { m[2], m[3] }, 'remaining ghost text at the new cursor')
      c:input('<C-f>')
      H.wait(function() return c:line() == 'x = foo.bar(baz' end, 5000, 'third word')
      H.eq(') + 1', c:suggestion())
      c:input('<C-f>')
      H.wait(function() return c:line() == 'x = foo.bar(baz) + 1' end, 5000, 'last word with the punctuation before it')
      H.eq(nil, c:suggestion())
      H.eq(1, counts(c).completions_started, 'no new request for partial accepts')
    end,
  },
  {
    name = 'accept_line takes the current suggestion line, then the next',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'one(1)\ntwo(2)\nthree(3)')
      c:input('i')
      c:type('x = ')
      c:wait_full()
      c:input('<C-j>')
      H.wait(function() return c:line() == 'x = one(1)' end, 5000, 'first line')
      H.eq('\ntwo(2)\nthree(3)', c:suggestion())
      local m = c:marks()[1]
      H.eq({ { { 'two(2)', 'ZekeSuggestion' } }, { { 'three(3)', 'ZekeSuggestion' } } }, m[4].virt_lines)
      c:input('<C-j>')
      H.wait(function() return #c:lines() == 2 end, 5000, 'second line')
      H.eq({ 'x = one(1)', 'two(2)' }, c:lines())
      H.eq({ 2, 6 }, c:cursor())
      H.eq('\nthree(3)', c:suggestion())
      c:input('<Esc>u')
      H.wait(function() return #c:lines() == 1 end, 5000, 'undo')
      H.eq({ 'x = one(1)' }, c:lines(), 'each partial accept is its own undo step')
    end,
  },
  {
    name = 'type-through trims the ghost text without a new request',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()')
      c:input('ihello ')
      c:wait_full()
      local before = c:wait_idle()
      H.eq(1, before.completions_started)
      c:type('wor', 60)
      H.wait(function() return c:suggestion() == 'ld()' end, 5000, 'trimmed suggestion')
      local m = c:marks()[1]
      H.eq({ 0, 9 }, { m[2], m[3] }, 'ghost text follows the cursor')
      H.eq({ { 'ld()', 'ZekeSuggestion' } }, m[4].virt_text)
      H.sleep(300) -- several debounce periods
      H.eq(1, counts(c).completions_started, 'no new request while typing through')
      H.eq(1, c:inline().sent)
      -- a character that does not match starts over
      c:type('X')
      H.wait(function() return counts(c).completions_started == 2 end, 5000, 'new request after a mismatch')
    end,
  },
  {
    name = 'dismiss hides the ghost text and it stays hidden until the next edit',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()')
      c:input('ihello ')
      c:wait_full()
      c:input('<C-e>')
      H.wait(function() return c:suggestion() == nil end, 5000, 'dismissed')
      H.eq({}, c:marks())
      H.sleep(300)
      H.eq(nil, c:suggestion())
      H.eq('hello ', c:line())
      c:type('x')
      H.eq('world()', c:wait_full(), 'next edit asks again')
    end,
  },
  {
    name = 'InsertLeave clears the ghost text',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()')
      c:input('ihello ')
      c:wait_full()
      c:input('<Esc>')
      H.wait(function() return c:suggestion() == nil end, 5000, 'cleared')
      H.eq({}, c:marks())
    end,
  },
  {
    name = 'stale results are dropped (changedtick moved on)',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()')
      c:input('ihello ')
      c:wait_full()
      local st = c:inline()
      local req = st.req
      -- the same id, but computed for an older tick: dropped
      c:lua([[require('zeke.inline').dismiss()]])
      local r = c:lua([[
        local req = ...
        local inline = require('zeke.inline')
        inline.request_now(true)
        local cur = inline.debug_state().req
        local rpc = require('zeke.rpc')
        rpc.dispatch('completion', { id = cur.id, buf = cur.buf, tick = cur.tick - 1, row = cur.row, col = cur.col,
          text = 'STALE', done = false })
        local after_old_tick = inline.suggestion()
        rpc.dispatch('completion', { id = cur.id - 1, buf = cur.buf, tick = cur.tick, row = cur.row, col = cur.col,
          text = 'OLD ID', done = false })
        local after_old_id = inline.suggestion()
        -- the buffer changes under the request (no TextChangedI yet): its answer must not show
        vim.api.nvim_buf_set_lines(0, -1, -1, false, { 'changed' })
        rpc.dispatch('completion', { id = cur.id, buf = cur.buf, tick = cur.tick, row = cur.row, col = cur.col,
          text = 'OLD TICK', done = true })
        return { after_old_tick, after_old_id, inline.suggestion(), inline.debug_state().dropped }
      ]], req)
      H.eq(vim.NIL, r[1], 'older tick dropped')
      H.eq(vim.NIL, r[2], 'older id dropped')
      H.eq(vim.NIL, r[3], 'result for a changed buffer dropped')
      H.ok(r[4] >= 3, 'counted as dropped')
      H.eq({ 'hello ', 'changed' }, c:lines())
    end,
  },
  {
    name = 'hidden while the completion menu is visible, no requests while it is',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()')
      c:lua([[vim.keymap.set('i', '<F5>', '<Cmd>call complete(col("."), ["alpha", "alphabet"])<CR>')]])
      c:lua([[vim.o.completeopt = 'menuone,noinsert,noselect']])
      c:input('ihello ')
      c:wait_full()
      c:input('<F5>')
      H.wait(function() return c:lua('return vim.fn.pumvisible()') == 1 end, 5000, 'menu')
      H.wait(function() return c:suggestion() == nil end, 5000, 'hidden with the menu')
      local started = c:wait_idle().completions_started
      c:type('al', 60)
      H.sleep(300)
      H.eq(1, c:lua('return vim.fn.pumvisible()'), 'menu still open')
      H.eq(nil, c:suggestion())
      H.eq({}, c:marks())
      H.eq(started, counts(c).completions_started, 'no request while the menu is open')
    end,
  },
  {
    name = 'disabled filetype and disabled buffer send no request',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()', { completion = { filetypes = { lua = false } } })
      c:input('ihello')
      c:type(' there', 40)
      H.sleep(300)
      H.eq(0, c:inline().sent, 'lua disabled by completion.filetypes')
      H.eq(nil, c:suggestion())
      c:input('<Esc>')
      c:cmd('Zeke enable')
      c:input('a ')
      H.eq('world()', c:wait_full(), ':Zeke enable overrides the filetype rule')
      c:input('<Esc>')
      c:cmd('Zeke disable')
      local sent = c:inline().sent
      c:input('a')
      c:type('more', 40)
      H.sleep(300)
      H.eq(sent, c:inline().sent, ':Zeke disable stops requests')
      H.eq(false, c:lua('return vim.b.zeke_enabled'))
      -- help buffers are off by default
      c:input('<Esc>')
      c:new_buffer('help')
      c:lua('vim.bo.buftype = ""')
      c:input('i')
      c:type('abc', 40)
      H.sleep(300)
      H.eq(sent, c:inline().sent, 'help is disabled by default')
    end,
  },
  {
    name = 'entering Insert mode on a new line (o) offers a suggestion',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'print(x)')
      c:lua('vim.api.nvim_buf_set_lines(0, 0, -1, false, { "local x = 1" })')
      c:input('o')
      H.eq('print(x)', c:wait_full())
      local m = c:marks()[1]
      H.eq({ 1, 0 }, { m[2], m[3] })
    end,
  },
  {
    name = 'no request mid-identifier',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()')
      c:lua('vim.api.nvim_set_current_line("foo")')
      c:input('i')
      c:type('x', 40)
      H.sleep(300)
      H.eq(0, c:inline().sent, 'a word character after the cursor')
      c:input('<End>')
      c:type(' ', 40)
      H.eq('world()', c:wait_full())
    end,
  },
  {
    name = '<Tab> mapped by the user falls back to a real tab when nothing is visible',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()', { keymaps = { accept = '<Tab>' } })
      c:input('ix<Tab>')
      H.wait(function() return c:line() == 'x\t' end, 5000, 'a real tab')
      H.eq('world()', c:wait_full())
      c:input('<Tab>')
      H.wait(function() return c:line() == 'x\tworld()' end, 5000, '<Tab> accepts when visible')
      H.eq(nil, c:suggestion())
      c:input('<Tab>')
      H.wait(function() return c:line() == 'x\tworld()\t' end, 5000, 'a real tab again')
    end,
  },
  {
    name = ':Zeke complete asks at once',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()', { completion = { debounce_ms = 5000 } })
      c:input('ihello ')
      H.sleep(200)
      H.eq(nil, c:suggestion())
      c:input('<Cmd>Zeke complete<CR>')
      H.eq('world()', c:wait_full(3000))
    end,
  },
  {
    name = 'buffers wiped and reused by :enew stay mirrored (ghost text keeps working)',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'world()')
      for round = 1, 6 do
        c:input('<Esc>')
        c:lua('vim.cmd("bwipeout!") vim.cmd("enew") vim.bo.filetype = "lua"')
        c:input('ihello ')
        H.eq('world()', c:wait_full(), 'ghost text after wipe/enew round ' .. round)
      end
      H.eq(1, c:status().buffers, 'only the live buffer is mirrored')
      H.eq({}, c:problems())
    end,
  },
}
