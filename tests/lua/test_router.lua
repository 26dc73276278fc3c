-- tests/lua/test_router.lua: the router as the user sees it, against the real backend and the
-- fault server: a failing provider is replaced by the next one (the float still fills, one notice
-- says so; a provider that dies mid-answer is replaced and the float restarts with the new title),
-- `:Zeke provider` / `:Zeke model` pin and unpin, `:Zeke usage` lists the requests that ran,
-- `statusline()` names the model without synchronous RPC, `:checkhealth` shows prices, and the
-- config keys of the router are accepted. Each child has a private XDG_STATE_HOME, so the usage
-- ledger is its own (and one case names `router.ledger` explicitly).
local NEEDS = { 'ZEKE_BIN', 'ZEKE_TEST_FAULT_URL' }

local CODE = { 'local function add(a, b)', '  return a + b', 'end' }
local ANSWER = 'def add(a, b):\n    return a + b' -- what the fault server streams

--- Two providers on the fault server: `bad` (priced, not local) answers with `bad_mode`, `good`
--- (local) is healthy; explain tries bad first.
local function two(tag, bad_mode, extra)
  local F = vim.env.ZEKE_TEST_FAULT_URL .. '/t/' .. tag
  return vim.tbl_deep_extend('force', {
    providers = {
      bad = { kind = 'vllm', url = F .. '/' .. bad_mode, model = 'bad-model', ['local'] = false,
        input_cost_per_mtok = 3, output_cost_per_mtok = 15 },
      good = { kind = 'vllm', url = F .. '/ok', model = 'good-model', context_window = 8192 },
    },
    routes = { explain = { 'bad', 'good' }, fix = { 'bad', 'good' } },
    completion = { provider = 'good', enabled = false },
    router = { hedge = false },
  }, extra or {})
end

local function code_buffer(c)
  c:new_buffer('lua')
  c:lua('vim.api.nvim_buf_set_lines(0, 0, -1, false, ...)', CODE)
end

--- Runs `:Zeke explain` and waits for the float to be done; returns its state.
local function explain(H, c)
  c:cmd('Zeke explain')
  return H.wait(function()
    local st = c:lua('return require("zeke.ui").state()')
    return st and st.done and st
  end, 15000, 'the explain float to finish')
end

local function notes_matching(c, pat)
  return vim.tbl_filter(function(n) return n.msg:find(pat, 1, true) ~= nil end, c:notes())
end

--- Stubs vim.ui.select in the child: records the formatted items and picks the one whose label
--- contains `want` (nil: cancels).
local function stub_select(c, want)
  c:lua([[
    local want = ...
    _G.picked = nil
    vim.ui.select = function(items, opts, on_choice)
      local labels = {}
      for i, it in ipairs(items) do labels[i] = opts.format_item and opts.format_item(it) or tostring(it) end
      _G.picked = { prompt = opts.prompt, labels = labels }
      for i, l in ipairs(labels) do
        if want and l:find(want, 1, true) then return on_choice(items[i], i) end
      end
      on_choice(nil, nil)
    end
  ]], want)
end

local function pinned(c)
  local st = c:status()
  return st.router and st.router.pinned
end

return {
  {
    name = 'a failing provider: the next one answers in the float, one notice says so, :Zeke usage lists it',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      local ledger = c.tmp .. '/ledger/usage.sqlite3'
      c:setup(two('fallback', 'status/500', { router = { ledger = ledger } }))
      H.eq({}, c:problems(), 'the router keys are accepted')
      code_buffer(c)
      local st = explain(H, c)
      H.eq(ANSWER, st.text, 'the float holds the second provider\'s answer')
      H.eq(nil, st.error)
      H.ok(st.title:find('good', 1, true) and st.title:find('good-model', 1, true), 'title names it: ' .. st.title)
      local notices = H.wait(function()
        local n = notes_matching(c, 'the next provider takes over')
        return #n > 0 and n
      end, 5000, 'a fallback notice')
      H.eq(1, #notices, vim.inspect(c:notes()))
      H.eq(vim.log.levels.WARN, notices[1].level)
      H.ok(notices[1].msg:match('^zeke: bad failed %(.*500.*%); the next provider takes over$'), notices[1].msg)
      H.eq({ notices[1].msg }, c:problems(), 'no other message')

      -- :Zeke usage lists the request that ran, naming the provider that answered
      c:input('q')
      c:cmd('Zeke usage')
      local u = c:lua([[
        local buf = vim.api.nvim_get_current_buf()
        return { lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false), float = vim.api.nvim_win_get_config(0).relative,
          modifiable = vim.bo[buf].modifiable }
      ]])
      H.eq('editor', u.float, 'a float')
      H.eq(false, u.modifiable, 'read-only')
      local text = table.concat(u.lines, '\n')
      H.ok(u.lines[1]:find('^Today %$0%.00 · this month %$0%.00'), text)
      local rows = vim.tbl_filter(function(l) return l:find('explain', 1, true) ~= nil end, u.lines)
      H.eq(1, #rows, text)
      H.ok(rows[1]:match('^  %d%d:%d%d  explain  good · good%-model  5 in / 9 out  %$0%.00  ttft %d+ ms  ok  1 fallback$'),
        rows[1])
      H.ok(text:find('good · good-model  1 request  5 in / 9 out  $0.00', 1, true), 'per provider·model: ' .. text)
      H.ok(text:find('ledger: ', 1, true), text)
      c:input('q')
      H.wait(function() return c:lua('return vim.api.nvim_win_get_config(0).relative') == '' end, 3000, 'q closes it')
      H.eq({}, c:errors())
    end,
  },
  {
    name = 'a provider that dies mid-answer: the float restarts with the next one and renames its title',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      -- `bad` streams "Hello there, let me", then Anthropic's `error` event (after HTTP 200)
      c:setup(two('restart', 'replay/anthropic_error_after_200.sse', {
        providers = {
          bad = { kind = 'anthropic', model = 'claude-x', api_key_env = 'ZEKE_TEST_FAULT_URL' },
          -- answers 300 ms late, so the float surely showed bad's text first
          good = { url = vim.env.ZEKE_TEST_FAULT_URL .. '/t/restart/delay/300/ok' },
        },
      }))
      code_buffer(c)
      c:lua([[
        _G.titles = {}
        local ui = require('zeke.ui')
        local on = ui.on_explain
        ui.on_explain = function(p)
          on(p)
          local st = ui.state()
          if st and st.text ~= '' then table.insert(_G.titles, { st.title, st.text }) end
        end
      ]])
      local st = explain(H, c)
      local seen = c:lua('return _G.titles')
      H.ok(seen[1][1]:find('bad · claude-x', 1, true) and seen[1][2]:find('^Hello'),
        'first bad\'s text: ' .. vim.inspect(seen))
      H.eq(ANSWER, st.text, 'then only the second answer, nothing of the first')
      H.eq(vim.split(ANSWER, '\n'), st.lines, 'the float shows just that')
      H.eq(1, st.restarts, 'one restart')
      H.eq(' Zeke · good · good-model ', st.title, 'the title names the provider that took over')
      H.eq(1, #notes_matching(c, 'bad failed'), vim.inspect(c:notes()))
    end,
  },
  {
    name = ':Zeke provider NAME pins, the picker lists providers and "automatic" unpins; :Zeke model too',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      c:setup(two('pin', 'status/500'))
      code_buffer(c)
      H.eq(nil, pinned(c), 'automatic at first')
      c:cmd('Zeke provider good')
      H.eq('good', pinned(c))
      H.eq(1, #notes_matching(c, 'zeke: provider good pinned for this session'), vim.inspect(c:notes()))
      local out = c:lua([[return vim.api.nvim_exec2('Zeke status', { output = true }).output]])
      H.ok(out:find('router: provider good pinned', 1, true), out)
      -- pinned: good goes first, no fallback needed
      local st = explain(H, c)
      H.eq(ANSWER, st.text)
      H.eq({}, notes_matching(c, 'takes over'), 'the pinned provider answered first')
      c:input('q')

      H.eq({ 'automatic', 'bad', 'good' }, c:lua([[return vim.fn.getcompletion('Zeke provider ', 'cmdline')]]))
      H.eq({ 'good' }, c:lua([[return vim.fn.getcompletion('Zeke provider go', 'cmdline')]]))

      stub_select(c, 'automatic')
      c:cmd('Zeke provider')
      local picked = c:lua('return _G.picked')
      H.eq('Zeke provider', picked.prompt)
      H.eq('automatic (the router decides)', picked.labels[1])
      H.eq('bad · vllm · bad-model · $3/$15 per Mtok', picked.labels[2])
      H.ok(picked.labels[3]:match('^good · vllm · good%-model · local · ttft %d+ ms · pinned$'), picked.labels[3])
      H.eq(nil, pinned(c), 'automatic unpins')
      H.eq(1, #notes_matching(c, 'zeke: provider unpinned'), vim.inspect(c:notes()))

      stub_select(c, 'bad-model (bad)')
      c:cmd('Zeke model')
      picked = c:lua('return _G.picked')
      H.eq('automatic (the router decides) · current', picked.labels[1])
      H.eq('bad-model (bad) · $3/$15 per Mtok', picked.labels[2])
      H.eq('bad', pinned(c), ':Zeke model pins the provider of the model')
      c:cmd('Zeke model good-model')
      H.eq('good', pinned(c))
      c:cmd('Zeke provider automatic')
      H.eq(nil, pinned(c))

      -- an unknown name: one error naming the configured ones, nothing pinned
      c:cmd('Zeke provider nope')
      local err = notes_matching(c, 'nope')
      H.eq(1, #err, vim.inspect(c:notes()))
      H.eq(vim.log.levels.ERROR, err[1].level)
      H.ok(err[1].msg:find('configured: bad, good', 1, true), err[1].msg)
      H.eq(nil, pinned(c))
      H.eq({}, c:errors())
    end,
  },
  {
    name = 'notices: a WARN message prefixed "zeke: ", the same one not repeated within seconds',
    run = function(H)
      local c = H.child()
      c:setup({})
      c:lua([[
        local rpc = require('zeke.rpc')
        rpc.dispatch('notice', { job = 'explain', message = 'cloud failed (HTTP 500); the next provider takes over' })
        rpc.dispatch('notice', { job = 'fix', message = 'cloud failed (HTTP 500); the next provider takes over' })
        rpc.dispatch('notice', { job = 'explain', message = 'total daily budget: $2.10 spent of $2.00' })
      ]])
      H.wait(function() return #c:notes() >= 2 end, 3000, 'the notices')
      H.sleep(100)
      H.eq({
        { level = vim.log.levels.WARN, msg = 'zeke: cloud failed (HTTP 500); the next provider takes over' },
        { level = vim.log.levels.WARN, msg = 'zeke: total daily budget: $2.10 spent of $2.00' },
      }, c:notes())
      H.eq('n', c:mode(), 'no prompt, no focus change')
    end,
  },
  {
    name = ':Zeke usage with an empty ledger says so',
    needs = { 'ZEKE_BIN' },
    run = function(H)
      local c = H.child()
      c:setup(H.fake('x'))
      c:cmd('Zeke usage')
      local lines = c:lua('return vim.api.nvim_buf_get_lines(0, 0, -1, false)')
      local text = table.concat(lines, '\n')
      H.ok(text:find('No requests recorded yet', 1, true), text)
      H.ok(text:find('Budget: none', 1, true), text)
      c:input('<Esc>')
      H.wait(function() return c:lua('return vim.api.nvim_win_get_config(0).relative') == '' end, 3000,
        '<Esc> closes it')
    end,
  },
  {
    name = 'statusline(): empty when not running, the model and spend after a request, never synchronous RPC',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      local F = vim.env.ZEKE_TEST_FAULT_URL .. '/t/statusline'
      c:setup({
        providers = {
          paid = { kind = 'vllm', url = F .. '/ok', model = 'paid-model', ['local'] = false,
            input_cost_per_mtok = 1000, output_cost_per_mtok = 1000 },
        },
        completion = { enabled = false },
        budget = { daily_usd = 0.01, mode = 'soft' },
      })
      H.eq('', c:lua('return require("zeke").statusline()'), 'not running: empty')
      H.eq(false, c:lua('return require("zeke.rpc").is_running()'), 'statusline() does not start the backend')
      code_buffer(c)
      -- count every synchronous RPC request the child makes
      c:lua([[
        _G.sync_rpc = 0
        local orig = vim.rpcrequest
        vim.rpcrequest = function(...) _G.sync_rpc = _G.sync_rpc + 1; return orig(...) end
      ]])
      local st = explain(H, c)
      H.eq(ANSWER, st.text)
      local s = H.wait(function()
        local v = c:lua('return require("zeke").statusline()')
        return v:find('!', 1, true) and v
      end, 5000, 'the statusline after the request')
      -- 14 tokens at $1000 per Mtok: $0.014, over 80 % of the $0.01 daily budget
      H.eq('paid-model $0.01!', s)
      local n = c:lua([[
        local before = _G.sync_rpc
        for _ = 1, 200 do require('zeke').statusline() end
        return _G.sync_rpc - before
      ]])
      H.eq(0, n, 'statusline() makes no RPC request')
      c:lua('require("zeke.rpc").stop()')
      H.eq('', c:lua('return require("zeke").statusline()'), 'stopped: empty')
    end,
  },
  {
    name = ':checkhealth zeke shows each provider\'s price or "local", context window, budget and cooldown',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      c:setup(two('health', 'status/500', {
        providers = { bad = { budget = { daily_usd = 1, monthly_usd = 20 } } },
        budget = { monthly_usd = 50, mode = 'hard' },
      }))
      code_buffer(c)
      explain(H, c) -- bad fails once: it cools down
      c:input('q')
      c:cmd('checkhealth zeke')
      local text = table.concat(c:lines(), '\n')
      for _, want in ipairs({
        'bad: $3/$15 per Mtok · budget daily $0.00 of $1.00 (0 %) · monthly $0.00 of $20.00 (0 %) (soft)',
        'good: local · context window 8192 tokens',
        'bad: cooling down for',
        'budget (all providers): monthly $0.00 of $50.00 (0 %) (hard)',
      }) do
        H.ok(text:find(want, 1, true), ('health mentions %q:\n%s'):format(want, text))
      end
    end,
  },
  {
    name = 'setup() takes the router keys and every provider kind, and names bad ones',
    run = function(H)
      local c = H.child()
      c:setup({
        providers = {
          a = { kind = 'anthropic', budget = { daily_usd = 1, monthly_usd = 10, mode = 'hard' },
            context_window = 200000, input_cost_per_mtok = 3, output_cost_per_mtok = 15,
            cached_input_cost_per_mtok = 0.3, cache_write_cost_per_mtok = 3.75 },
          z = { kind = 'azure', api_version = '2024-10-21', url = 'https://x.openai.azure.com' },
          o = { kind = 'ollama', keep_alive = '5m', ['local'] = true },
        },
        routes = { completion = { 'o' }, explain = { 'a', 'o' }, ask = { 'a' } },
        budget = { daily_usd = 2, monthly_usd = 40, mode = 'soft' },
        router = { hedge = true, hedge_after_ms = 300, cooldown_ms = 0, first_token_timeout_ms = 5000,
          max_attempts = 2, ledger = '/tmp/x.sqlite3' },
      })
      H.eq({}, c:problems())
      for _, kind in ipairs({ 'openai', 'anthropic', 'gemini', 'azure', 'llamacpp', 'ollama', 'xai', 'groq', 'mistral',
        'deepseek', 'openrouter', 'lmstudio', 'vllm', 'fake' }) do
        c:setup({ providers = { p = { kind = kind } } })
        H.eq({}, c:problems(), kind)
        c:lua('require("zeke_test").notes = {}')
      end
      c:setup({
        providers = { p = { kind = 'openai', context_window = 10, input_cost_per_mtok = -1, budget = { mode = 'x' } } },
        routes = { explain = 'p', nope = { 'p' } },
        budget = { daily_usd = -1 },
        router = { hedge_after_ms = 5, max_attempts = 17, cooldown_ms = 'x', unknown = 1 },
      })
      local p = c:problems()
      H.eq(1, #p, vim.inspect(p))
      for _, want in ipairs({
        'providers.p.context_window must be an integer from 256 to 100000000 (got 10)',
        'providers.p.input_cost_per_mtok must be a number from 0 to 10000',
        'providers.p.budget.mode must be one of "soft", "hard" (got "x")',
        'routes.explain must be a non-empty list of provider names',
        'routes.nope: not an intent (one of "completion", "explain", "fix", "test", "chat", "ask")',
        'budget.daily_usd must be a number of USD >= 0 (got -1)',
        'router.hedge_after_ms must be an integer from 10 to 60000 (got 5)',
        'router.max_attempts must be an integer from 1 to 16 (got 17)',
        'router.cooldown_ms must be an integer from 0 to 3600000 (got "x")',
        'unknown config key "router.unknown"',
      }) do
        H.ok(p[1]:find(want, 1, true), ('message mentions %q: %s'):format(want, p[1]))
      end
    end,
  },
  {
    name = 'doc: the help file\'s tags are unique and every |zeke…| link has its tag',
    run = function(H)
      local dir = vim.fn.tempname()
      vim.fn.mkdir(dir .. '/doc', 'p')
      vim.fn.writefile(vim.fn.readfile(H.root .. '/doc/zeke.txt'), dir .. '/doc/zeke.txt')
      local ok, err = pcall(vim.cmd, 'helptags ' .. vim.fn.fnameescape(dir .. '/doc'))
      H.ok(ok, 'helptags: ' .. tostring(err))
      local tags = {}
      for _, l in ipairs(vim.fn.readfile(dir .. '/doc/tags')) do tags[l:match('^[^\t]+')] = true end
      local missing = {}
      for _, l in ipairs(vim.fn.readfile(H.root .. '/doc/zeke.txt')) do
        for ref in l:gmatch('|([^|%s]+)|') do
          if ref:lower():find('zeke', 1, true) and not tags[ref] then missing[#missing + 1] = ref end
        end
      end
      H.eq({}, missing, 'links without a tag')
      for _, t in ipairs({ ':Zeke-usage', ':Zeke-provider', ':Zeke-model', 'zeke.statusline()', 'zeke-router',
        'zeke-router-budget', 'zeke-notice' }) do
        H.ok(tags[t], 'tag ' .. t)
      end
      vim.fn.delete(dir, 'rf')
    end,
  },
}
