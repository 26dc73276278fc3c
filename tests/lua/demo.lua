-- tests/lua/demo.lua: `make demo`. Drives one headless child Neovim through a scripted session
-- against the real llama-server ($ZEKE_TEST_LLAMA_URL): open a Rust buffer, type code character by
-- character, wait for the ghost text, accept it, run `:Zeke explain` on the function, and print
-- what the user saw, with timings (keystroke → ghost text, explain → first text → done).
local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h:h:h')
package.path = root .. '/tests/lua/?.lua;' .. package.path
local H = require('helpers')

local uv = vim.uv or vim.loop

local function out(s)
  io.stdout:write(s, '\n')
  io.stdout:flush()
end

local url = vim.env.ZEKE_TEST_LLAMA_URL
if not url or url == '' then
  out('demo: $ZEKE_TEST_LLAMA_URL is not set (run it through `make demo`, which starts llama-server)')
  os.exit(2)
end

local T0 = uv.hrtime()
local function now_ms() return (uv.hrtime() - T0) / 1e6 end
local function step(msg) out(('[%6.2f s] %s'):format(now_ms() / 1000, msg)) end
local function body(lines, prefix)
  for _, l in ipairs(lines) do
    out('           ' .. (prefix or '│ ') .. l)
  end
end

--- The buffer as the user sees it: ghost text shown ⟦like this⟧ at the cursor.
local function screen(c)
  local lines = c:lines()
  local cur = c:cursor()
  local ghost = c:suggestion()
  if not ghost then return lines end
  local g = vim.split(ghost, '\n', { plain = true })
  local row = cur[1]
  local line = lines[row]
  local before, after = line:sub(1, cur[2]), line:sub(cur[2] + 1)
  local shown = vim.list_slice(lines, 1, row - 1)
  shown[#shown + 1] = before .. '⟦' .. g[1] .. (#g == 1 and '⟧' or '') .. after
  for i = 2, #g do
    shown[#shown + 1] = g[i] .. (i == #g and '⟧' or '')
  end
  vim.list_extend(shown, vim.list_slice(lines, row + 1))
  return shown
end

local function wrap(text, width)
  local res = {}
  for _, para in ipairs(vim.split(text, '\n', { plain = true })) do
    local line = ''
    for word in para:gmatch('%S+') do
      if #line + #word + 1 > width and line ~= '' then
        res[#res + 1] = line
        line = word
      else
        line = line == '' and word or (line .. ' ' .. word)
      end
    end
    res[#res + 1] = line
  end
  return res
end

local c = H.child()
local ok, err = xpcall(function()
  c:setup({
    providers = { llama = { kind = 'llamacpp', url = url } },
    completion = { provider = 'llama' },
    explain = { provider = 'llama', max_tokens = 200 },
  })
  c:lua('vim.keymap.set("i", "<M-l>", "<Plug>(zeke-accept)")')
  local st = H.wait(function()
    local s = c:status()
    return (s.provider and s.provider.model or uv.hrtime() - T0 > 5e9) and s
  end, 10000, 'provider probed')
  out(('Zeke demo · zeke %s (pid %s) · provider %s (%s) · model %s · %s'):format(st.version, st.pid,
    st.provider and st.provider.name or '?', st.provider and st.provider.kind or '?',
    st.provider and st.provider.model or '?', url))
  out('')

  step('open a scratch buffer, filetype rust')
  c:new_buffer('rust')
  c:lua('vim.bo.buftype = ""; vim.bo.swapfile = false')

  local code = 'fn fibonacci(n: u64) -> u64 {\n    if n < 2 {\n        return n;\n    }\n    '
  step(('type %d characters, 30 ms apart (insert mode)'):format(#code))
  c:input('i')
  local ghost, ghost_ms, full
  for attempt = 1, 5 do
    local text = attempt == 1 and code or ' '
    for _, ch in ipairs(vim.fn.split(text, '\\zs')) do
      c:input(({ ['\n'] = '<CR>', ['<'] = '<lt>' })[ch] or ch)
      H.sleep(30)
    end
    local t_key = uv.hrtime()
    local got = H.wait(function()
      local s = c:inline()
      if s.visible then return { first = true } end
      if s.sent > 0 and not s.timer_active and not s.req then return { empty = true } end
    end, 60000, 'ghost text')
    if got.first then
      ghost_ms = (uv.hrtime() - t_key) / 1e6
      full = H.wait(function()
        local s = c:inline()
        return (s.req == nil or s.req.done) and (s.visible or '')
      end, 60000, 'ghost text done')
      ghost = full
      if ghost ~= '' then break end
    end
    step('the model had nothing to add; one more keystroke')
  end
  if not ghost or ghost == '' then error('no ghost text from the model') end
  local last = c:status().last or {}
  step(('ghost text appeared %.0f ms after the last keystroke (backend: first text %.0f ms after the request, '
    .. 'zeke overhead %.2f ms):'):format(ghost_ms, last.ttft_ms or -1, last.overhead_ms or -1))
  body(screen(c))

  step('press <M-l> (<Plug>(zeke-accept)): the ghost text is inserted, one undo step')
  c:input('<M-l>')
  H.wait(function() return c:suggestion() == nil end, 5000, 'accepted')
  c:input('<Esc>')
  body(c:lines())

  c:lua('vim.api.nvim_win_set_cursor(0, { 2, 4 })')
  step(':Zeke explain (cursor inside fibonacci; tree-sitter picks the function)')
  c:cmd('Zeke explain')
  local t_explain = uv.hrtime()
  local first_ms
  local fst = H.wait(function()
    local s = c:lua('return require("zeke.ui").state()')
    if s and s.text ~= '' and not first_ms then first_ms = (uv.hrtime() - t_explain) / 1e6 end
    return s and s.done and s
  end, 180000, 'explain done')
  local done_ms = (uv.hrtime() - t_explain) / 1e6
  if fst.error then error('explain failed: ' .. fst.error) end
  step(('first text after %.0f ms, done after %.0f ms; the float shows:'):format(first_ms or -1, done_ms))
  local title = fst.title
  local width = 76
  out('           ╭' .. title .. string.rep('─', math.max(0, width - vim.fn.strdisplaywidth(title))) .. '╮')
  for _, l in ipairs(wrap(fst.text, width - 2)) do
    out('           │ ' .. l .. string.rep(' ', math.max(0, width - 2 - vim.fn.strdisplaywidth(l))) .. ' │')
  end
  out('           ╰' .. string.rep('─', width) .. '╯')
  step('q closes the float')
  c:input('q')

  local counts = c:status().counts
  out('')
  out(('summary: keystroke → ghost text %.0f ms · explain → first text %.0f ms → done %.0f ms · '
    .. 'completions %d started / %d finished / %d cancelled · backend rss %s kB')
    :format(ghost_ms, first_ms or -1, done_ms, counts.completions_started, counts.completions_finished,
      counts.completions_cancelled, tostring(c:status().rss_kb)))
end, debug.traceback)
local orphan = c:stop()
if orphan then out('warning: backend ' .. orphan .. ' outlived Neovim') end
if not ok then
  out('demo failed: ' .. tostring(err))
  os.exit(1)
end
os.exit(0)
