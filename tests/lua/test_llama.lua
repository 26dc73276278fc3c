-- tests/lua/test_llama.lua: the real thing: llama-server with SmolLM2-135M-Instruct
-- ($ZEKE_TEST_LLAMA_URL). Asserts behaviour (text arrived, accept inserts it, few requests in a
-- burst, explain streams and names the model, `:Zeke fix` / `:Zeke test` propose a patch that
-- `:Zeke allow` applies as one undo step), never the model's wording.
local NEEDS = { 'ZEKE_BIN', 'ZEKE_TEST_LLAMA_URL' }

local function start(H, extra)
  local c = H.child()
  local cfg = {
    providers = { llama = { kind = 'llamacpp', url = vim.env.ZEKE_TEST_LLAMA_URL } },
    completion = { provider = 'llama' },
    explain = { provider = 'llama', max_tokens = 96 },
    fix = { provider = 'llama', max_tokens = 160 },
  }
  c:setup(vim.tbl_deep_extend('force', cfg, extra or {}))
  c:new_buffer('rust')
  return c
end

--- Types `lines` and waits for the model's ghost text; a tiny model sometimes has nothing to say,
--- so nudge it with another keystroke a few times.
local function get_ghost_text(H, c, text)
  c:input('i')
  c:type(text, 25)
  for _ = 1, 6 do
    local ok, s = pcall(function()
      return H.wait(function()
        local st = c:inline()
        if st.visible and st.req and st.req.done then return st.visible end
        if not st.req and st.sent > 0 and c:status().counts.completions_running == 0 then error('empty') end
      end, 30000, 'ghost text from the model')
    end)
    if ok and s then return s end
    c:type(' ', 25)
  end
  error('the model never offered a completion')
end

--- Runs `cmd` and waits for a proposal (returned) or an error message (nil: the tiny model
--- answered with no usable code, or with the same code).
local function propose(H, c, cmd)
  local errs = #c:problems()
  c:cmd(cmd)
  return H.wait(function()
    local st = c:review()
    if st then return { st = st } end
    if #c:problems() > errs then return { st = nil } end
  end, 180000, 'a proposal or an error from ' .. cmd).st
end

--- Propose with `first`, and once more with `second` when the model had no usable answer.
local function propose_twice(H, c, first, second)
  local st = propose(H, c, first)
  if st then return st end
  local problems = c:problems()
  io.stdout:write(('     (retrying: %s)\n'):format(problems[#problems]))
  st = propose(H, c, second)
  H.ok(st, 'no patch proposed, twice: ' .. vim.inspect(c:problems()))
  return st
end

--- `:Zeke allow` applies the proposal to its buffer; one undo restores it.
local function allow_and_undo(H, c, st)
  local before = c:lua('return vim.api.nvim_buf_get_lines(..., 0, -1, false)', st.buf)
  c:cmd('Zeke allow')
  local after = c:lua('return vim.api.nvim_buf_get_lines(..., 0, -1, false)', st.buf)
  H.ok(not vim.deep_equal(before, after), 'the buffer changed')
  H.eq(nil, c:review(), 'nothing pending')
  c:lua('vim.api.nvim_buf_call(..., function() vim.cmd("undo") end)', st.buf)
  H.eq(before, c:lua('return vim.api.nvim_buf_get_lines(..., 0, -1, false)', st.buf), 'one undo restores it')
end

return {
  {
    name = 'ghost text from the model appears at the cursor; accepting inserts it',
    needs = NEEDS,
    run = function(H)
      local c = start(H)
      local s = get_ghost_text(H, c, 'fn add(a: i32, b: i32) -> i32 {\n')
      local m = c:marks()[1]
      local cur = c:cursor()
      H.eq({ cur[1] - 1, cur[2] }, { m[2], m[3] }, 'extmark at the cursor')
      H.eq('inline', m[4].virt_text_pos)
      local before = c:lines()
      c:lua('require("zeke").accept()')
      local after = c:lines()
      local expect = vim.deepcopy(before)
      local slines = vim.split(s, '\n', { plain = true })
      expect[cur[1]] = before[cur[1]]:sub(1, cur[2]) .. slines[1]
      for i = 2, #slines do
        table.insert(expect, cur[1] + i - 1, slines[i])
      end
      expect[cur[1] + #slines - 1] = expect[cur[1] + #slines - 1] .. before[cur[1]]:sub(cur[2] + 1)
      H.eq(expect, after, 'exactly the suggestion inserted')
      H.eq(nil, c:suggestion())
      local st = c:status()
      H.ok(st.provider and st.provider.name == 'llama', vim.inspect(st.provider))
      H.ok(st.last and st.last.ttft_ms, 'latency recorded')
    end,
  },
  {
    name = 'a burst of 20 keystrokes lets at most 2 completions run to completion',
    needs = NEEDS,
    run = function(H)
      local c = start(H)
      c:input('i')
      c:type('// sum of a list\n', 25)
      local before = c:wait_idle(60000)
      c:type('fn sum(xs: &[i32]) -> ', 25) -- 20 keystrokes, ~25 ms apart
      local after = c:wait_idle(60000)
      local finished = after.completions_finished - before.completions_finished
      local started = after.completions_started - before.completions_started
      H.ok(finished <= 2, ('%d completions finished during the burst (started %d): %s'):format(finished, started,
        vim.inspect(after)))
      H.eq({}, c:errors())
    end,
  },
  {
    name = ':Zeke explain fills a float with streamed text naming the model',
    needs = NEEDS,
    run = function(H)
      local c = start(H)
      c:lua('vim.api.nvim_buf_set_lines(0, 0, -1, false, ...)', {
        'fn add(a: i32, b: i32) -> i32 {', '    a + b', '}', '', 'fn main() {', '    println!("{}", add(1, 2));', '}',
      })
      c:lua('vim.api.nvim_win_set_cursor(0, { 2, 4 })')
      c:cmd('Zeke explain')
      local st = H.wait(function()
        local s = c:lua('return require("zeke.ui").state()')
        return s and s.done and s
      end, 120000, 'explain done')
      H.eq(nil, st.error, 'no error')
      H.ok(vim.trim(st.text) ~= '', 'non-empty text')
      H.eq({ 0, 2 }, st.range, 'the function around the cursor (tree-sitter)')
      local model = c:status().provider.model
      H.ok(st.title:find('llama', 1, true), st.title)
      if model then H.ok(st.title:find(model, 1, true), ('title %q names model %q'):format(st.title, model)) end
      H.ok(select(2, st.title:gsub('·', '')) == 2, 'title: Zeke · provider · model: ' .. st.title)
    end,
  },
  {
    name = ':Zeke fix proposes a patch that :Zeke allow applies (one undo step)',
    needs = NEEDS,
    run = function(H)
      local c = start(H)
      c:lua('vim.api.nvim_buf_set_lines(0, 0, -1, false, ...)', {
        '// Returns the sum of a and b.', 'fn add(a: i32, b: i32) -> i32 {', '    a - b', '}',
      })
      c:lua('vim.api.nvim_win_set_cursor(0, { 3, 4 })')
      local st = propose_twice(H, c, '1,4Zeke fix', '3,3Zeke fix')
      H.eq('fix', st.job)
      H.ok(#st.hunks >= 1, 'hunks')
      H.ok(st.title:find('llama', 1, true), st.title)
      allow_and_undo(H, c, st)
    end,
  },
  {
    name = ':Zeke test proposes tests that :Zeke allow puts in an unsaved test file buffer',
    needs = NEEDS,
    run = function(H)
      local dir = H.project({ ['calc.py'] = { 'def add(a, b):', '    return a + b' } })
      local c = H.child()
      c:setup({
        providers = { llama = { kind = 'llamacpp', url = vim.env.ZEKE_TEST_LLAMA_URL } },
        fix = { provider = 'llama', max_tokens = 160 },
        completion = { enabled = false },
      })
      c:cmd('edit ' .. vim.fn.fnameescape(dir .. '/calc.py'))
      c:lua('vim.bo.filetype = "python"')
      c:lua('vim.api.nvim_win_set_cursor(0, { 2, 4 })')
      local st = propose_twice(H, c, 'Zeke test', '1,2Zeke test')
      H.eq('test', st.job)
      H.ok(vim.endswith(st.path, 'test_calc.py'), st.path)
      allow_and_undo(H, c, st)
      H.eq(0, vim.fn.filereadable(dir .. '/test_calc.py'), 'nothing written to disk')
    end,
  },
}
