-- tests/lua/test_explain.lua: `:Zeke explain` with the deterministic `fake` provider: the float
-- fills with the streamed text, its title names provider and model, ranges are sent, `q` closes
-- and cancels, `:Zeke stop` stops, errors show in the float.
local NEEDS = { 'ZEKE_BIN' }

local CODE = { 'local function add(a, b)', '  return a + b', 'end', '', 'print(add(1, 2))' }

local function start(H, reply, delay_ms)
  local c = H.child()
  local cfg = H.fake(reply)
  cfg.providers.fake.delay_ms = delay_ms or 5
  c:setup(cfg)
  c:new_buffer('lua')
  c:lua('vim.api.nvim_buf_set_lines(0, 0, -1, false, ...)', CODE)
  return c
end

local function float(c) return c:lua('return require("zeke.ui").state()') end

return {
  {
    name = 'explain streams into a float titled with provider and model',
    needs = NEEDS,
    run = function(H)
      local reply = 'This function adds two numbers.\n\nIt returns their sum.'
      local c = start(H, reply)
      c:cmd('Zeke explain')
      local st = H.wait(function()
        local s = float(c)
        return s and s.done and s
      end, 10000, 'explain done')
      H.eq(reply, st.text)
      H.eq({ 'This function adds two numbers.', '', 'It returns their sum.' }, st.lines)
      H.eq(' Zeke · fake · fake-model ', st.title)
      local win = c:lua('local s = require("zeke.ui").state(); local cfg = vim.api.nvim_win_get_config(s.win); '
        .. 'return { relative = cfg.relative, wrap = vim.wo[s.win].wrap, cur = vim.api.nvim_get_current_win() == s.win, '
        .. 'title = cfg.title, row = vim.api.nvim_win_get_cursor(s.win)[1], n = vim.api.nvim_buf_line_count(s.buf) }')
      H.eq(win.n, win.row, 'kept scrolled to the end')
      H.eq('editor', win.relative, 'a float')
      H.eq(true, win.wrap, 'wrap on')
      H.eq(true, win.cur, 'the float has focus')
      H.eq(' Zeke · fake · fake-model ', win.title[1][1], 'window title')
      H.eq({}, c:problems())
    end,
  },
  {
    name = 'a range is sent and explained',
    needs = NEEDS,
    run = function(H)
      local c = start(H, 'Prints the sum.')
      c:cmd('5,5Zeke explain')
      local st = H.wait(function()
        local s = float(c)
        return s and s.done and s
      end, 10000, 'explain done')
      H.eq({ 4, 4 }, st.range)
      H.eq('Prints the sum.', st.text)
      -- without a range the backend picks the function around the cursor
      c:cmd('close')
      c:lua('vim.api.nvim_win_set_cursor(0, { 2, 2 })')
      c:cmd('Zeke explain')
      st = H.wait(function()
        local s = float(c)
        return s and s.done and s
      end, 10000, 'explain done')
      H.eq({ 0, 2 }, st.range, 'the enclosing function (tree-sitter, or the block around the cursor)')
    end,
  },
  {
    name = 'q closes the float and cancels the request',
    needs = NEEDS,
    run = function(H)
      -- 20 chunks of 4 characters, 100 ms apart: about 2 s of streaming
      local c = start(H, string.rep('abcd', 20), 100)
      c:status() -- backend up, so the first chunk is ~100 ms away
      c:cmd('Zeke explain')
      H.eq({ '…' }, float(c).lines, 'placeholder while waiting')
      H.wait(function()
        local s = float(c)
        return s and s.text ~= '' and not s.done
      end, 10000, 'first text')
      c:input('q')
      H.wait(function() return float(c) == nil end, 5000, 'float closed')
      H.eq(1, c:lua('return #vim.api.nvim_list_wins()'), 'window closed')
      H.sleep(2500)
      local counts = c:status().counts
      H.eq(1, counts.explains_started)
      H.eq(0, counts.explains_finished, 'cancelled before it finished')
    end,
  },
  {
    name = ':Zeke stop stops a running explain',
    needs = NEEDS,
    run = function(H)
      local c = start(H, string.rep('abcd', 20), 100)
      c:cmd('Zeke explain')
      H.wait(function()
        local s = float(c)
        return s and s.text ~= ''
      end, 10000, 'first text')
      c:cmd('Zeke stop')
      local st = float(c)
      H.eq(true, st.done)
      H.eq('[stopped]', st.lines[#st.lines])
      local text = st.text
      H.sleep(2500)
      H.eq(text, float(c).text, 'nothing more arrived')
      H.eq(0, c:status().counts.explains_finished)
    end,
  },
  {
    name = 'a provider error shows in the float and once as a message',
    needs = NEEDS,
    run = function(H)
      local c = start(H, '<fail:auth>')
      c:cmd('Zeke explain')
      local st = H.wait(function()
        local s = float(c)
        return s and s.done and s
      end, 10000, 'explain failed')
      H.ok(st.error, 'error recorded')
      H.ok(st.lines[#st.lines]:find('auth', 1, true), 'error line in the float: ' .. vim.inspect(st.lines))
      local p = c:problems()
      H.eq(1, #p, vim.inspect(p))
      H.ok(p[1]:find('explain failed', 1, true), p[1])
    end,
  },
}
