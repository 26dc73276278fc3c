-- tests/lua/test_faults.lua: bad input and faults: provider down, HTTP errors and malformed
-- streams (one clear message each, no Lua errors, buffer untouched), the backend killed (restarted
-- with a message, completions work again), a backend that keeps crashing (backoff, then give up),
-- unknown RPC methods, and no backend outliving its Neovim.
local NEEDS = { 'ZEKE_BIN' }

local TYPED = 'local value = compute(1, 2) + other'

--- Types many keys against `provider` and checks: exactly one WARN/ERROR message, matching every
--- pattern in `want`; no Lua errors; the buffer holds exactly what was typed.
local function one_message(H, provider, want, completion)
  local c = H.child()
  c:setup({ providers = { p = provider },
    completion = vim.tbl_extend('force', { provider = 'p', debounce_ms = 10 }, completion or {}) })
  c:new_buffer('lua')
  c:input('i')
  c:type(TYPED, 40)
  H.wait(function() return #c:problems() > 0 end, 15000, 'an error message')
  c:type(' + more', 60) -- more keystrokes, more failing requests
  H.sleep(800)
  local p = c:problems()
  H.eq(1, #p, 'exactly one message: ' .. vim.inspect(p))
  for _, pat in ipairs(want) do
    H.ok(p[1]:find(pat, 1, true), ('message mentions %q: %s'):format(pat, p[1]))
  end
  H.eq({}, c:errors(), 'no Lua errors')
  H.eq({ TYPED .. ' + more' }, c:lines(), 'buffer untouched')
  H.eq(nil, c:suggestion())
  H.eq('i', c:mode(), 'still in insert mode, responsive')
  local counts = c:status().counts
  H.ok(counts.completions_failed >= 2, 'several requests failed: ' .. vim.inspect(counts))
  return c
end

local function fault(path) return { kind = 'vllm', url = vim.env.ZEKE_TEST_FAULT_URL .. path, model = 'm' } end

return {
  {
    name = 'provider down: one message, no error spam, buffer untouched',
    needs = NEEDS,
    run = function(H)
      one_message(H, { kind = 'llamacpp', url = 'http://127.0.0.1:9' }, { 'completion failed', 'unavailable' })
    end,
  },
  {
    name = 'HTTP 500: one clear message',
    needs = { 'ZEKE_BIN', 'ZEKE_TEST_FAULT_URL' },
    run = function(H) one_message(H, fault('/status/500'), { 'completion failed', '500' }) end,
  },
  {
    name = 'HTTP 401: one clear message about the key',
    needs = { 'ZEKE_BIN', 'ZEKE_TEST_FAULT_URL' },
    run = function(H) one_message(H, fault('/status/401'), { 'auth', '401', 'API key' }) end,
  },
  {
    name = 'HTTP 429: one message about rate limiting',
    needs = { 'ZEKE_BIN', 'ZEKE_TEST_FAULT_URL' },
    run = function(H) one_message(H, fault('/status/429'), { 'rate limited', '429' }) end,
  },
  {
    name = 'malformed stream: one clear message',
    needs = { 'ZEKE_BIN', 'ZEKE_TEST_FAULT_URL' },
    run = function(H) one_message(H, fault('/malformed'), { 'completion failed', 'malformed' }) end,
  },
  {
    name = 'a server that hangs: one timeout message, the editor stays responsive',
    needs = { 'ZEKE_BIN', 'ZEKE_TEST_FAULT_URL' },
    run = function(H) one_message(H, fault('/hang'), { 'completion failed', 'timeout' }, { timeout_ms = 300 }) end,
  },
  {
    name = 'backend killed: restarted with a message, completions work again',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      c:setup(H.fake('world()'))
      c:new_buffer('lua')
      c:input('ihello ')
      H.eq('world()', c:wait_full())
      local pid = c:status().pid
      H.ok(H.alive(pid), 'backend running')
      vim.uv.kill(pid, 'sigkill')
      local note = H.wait(function()
        for _, m in ipairs(c:problems()) do
          if m:find('restarting', 1, true) then return m end
        end
      end, 10000, 'restart message')
      H.ok(note:match('^Zeke backend exited %(code %d+%); restarting in %d+ ms'), note)
      H.eq(nil, c:suggestion(), 'ghost text of the dead backend is gone')
      local pid2 = H.wait(function()
        local p = c:backend_pid()
        return p and p ~= pid and p
      end, 10000, 'new backend')
      H.ok(H.alive(pid2))
      H.eq({ 1 }, c:lua('return require("zeke.rpc").info().attached'), 'buffer re-attached')
      c:type('x ', 50)
      H.eq('world()', c:wait_full(), 'completions work again')
      H.eq(1, #c:problems(), 'one message for one crash: ' .. vim.inspect(c:problems()))
      H.eq({}, c:errors())
    end,
  },
  {
    name = 'a backend that keeps crashing: backoff, then give up and say so',
    needs = {},
    run = function(H)
      local script = vim.fn.tempname()
      vim.fn.writefile({ '#!/bin/sh', 'exit 3' }, script)
      vim.fn.setfperm(script, 'rwx------')
      local c = H.child()
      c:setup({ bin = script })
      c:new_buffer('lua')
      c:input('ihi')
      local notes = H.wait(function()
        local p = c:problems()
        return p[#p] and p[#p]:find('giving up', 1, true) and p
      end, 20000, 'give up')
      H.eq({
        'Zeke backend exited (code 3); restarting in 200 ms',
        'Zeke backend exited (code 3); restarting in 400 ms',
        'Zeke backend exited (code 3); restarting in 800 ms',
        'Zeke backend exited (code 3); restarting in 1600 ms',
      }, vim.list_slice(notes, 1, 4))
      H.eq(5, #notes, vim.inspect(notes))
      H.ok(notes[5]:find('5 times within 60 s', 1, true), notes[5])
      H.sleep(500)
      H.eq(5, #c:problems(), 'silent after giving up')
      H.eq(false, c:lua('return require("zeke.rpc").is_running()'))
      H.eq('i', c:mode())
      os.remove(script)
    end,
  },
  {
    name = 'unknown RPC method and malformed params: error reply, backend keeps serving',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      c:setup(H.fake('x'))
      local r = c:lua([[
        local rpc = require('zeke.rpc')
        local a, ea = rpc.request('no_such_method', {})
        local ok, eb = pcall(vim.rpcrequest, rpc.info().chan, 'configure', 42)
        rpc.notify('complete', { id = 'not a number' })
        local p = rpc.request('ping', { x = 1 })
        return { a = a, ea = ea, ok = ok, eb = eb, ping = p, running = rpc.is_running() }
      ]])
      H.eq(nil, r.a)
      H.ok(tostring(r.ea):find('no_such_method', 1, true), vim.inspect(r.ea))
      H.eq(false, r.ok, 'configure with a non-table is an error')
      H.eq({ x = 1 }, r.ping, 'still answering')
      H.eq(true, r.running)
      H.ok(c:status().pid, 'status still works')
    end,
  },
  {
    name = 'no orphan backend after Neovim exits',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      c:setup(H.fake('x'))
      local pid = c:status().pid
      H.ok(H.alive(pid))
      local orphan = c:stop()
      H.eq(nil, orphan, 'backend exited with its Neovim')
    end,
  },
}
