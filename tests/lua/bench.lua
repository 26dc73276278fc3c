-- tests/lua/bench.lua: `make bench` (Lua side). In a child Neovim with the real `zeke` backend:
-- the msgpack-RPC round trip nvim → zeke → nvim (`ping` via vim.rpcrequest, 2000 iterations) and
-- the backend's idle RSS; with $ZEKE_TEST_LLAMA_URL also zeke's own time per completion (backend
-- time excluding the provider's). Prints `key=value` lines; measures, never asserts.
local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h:h:h')
package.path = root .. '/tests/lua/?.lua;' .. package.path
local H = require('helpers')

local function out(s)
  io.stdout:write(s, '\n')
  io.stdout:flush()
end

local function pct(sorted, p)
  return sorted[math.max(1, math.min(#sorted, math.ceil(#sorted * p)))]
end

local c = H.child()
local ok, err = xpcall(function()
  local url = vim.env.ZEKE_TEST_LLAMA_URL
  local cfg = {}
  if url and url ~= '' then
    cfg = { providers = { llama = { kind = 'llamacpp', url = url } }, completion = { provider = 'llama' } }
  end
  c:setup(cfg)
  local st = c:status()
  out(('backend=%s version=%s pid=%d'):format(c:lua('return require("zeke.rpc").info().bin'), st.version, st.pid))

  -- RPC round trip, measured inside the editor process.
  local us = c:lua([[
    local chan = require('zeke.rpc').info().chan
    local n = ...
    local payload = { seq = 0, text = 'ping' }
    for i = 1, 200 do vim.rpcrequest(chan, 'ping', payload) end -- warm-up
    local t = {}
    for i = 1, n do
      payload.seq = i
      local t0 = vim.uv.hrtime()
      vim.rpcrequest(chan, 'ping', payload)
      t[i] = (vim.uv.hrtime() - t0) / 1e3
    end
    table.sort(t)
    return t
  ]], 2000)
  out(('rpc_roundtrip_p50_us=%.1f p99_us=%.1f iterations=%d'):format(pct(us, 0.5), pct(us, 0.99), #us))

  -- Idle RSS: let the backend settle after start-up and the pings.
  H.sleep(1000)
  local f = io.open('/proc/' .. st.pid .. '/status', 'r')
  local rss = f and f:read('*a'):match('VmRSS:%s*(%d+)') or '?'
  if f then f:close() end
  out(('rss_idle_kb=%s'):format(rss))

  -- A large file (7.5k lines, 264 KB, like llm-ls's measurement): RSS with it mirrored, the
  -- editor-side cost of one keystroke while attached, then RSS after opening/closing it 40 times.
  local function rss_kb()
    local fh = io.open('/proc/' .. st.pid .. '/status', 'r')
    local v = fh and tonumber(fh:read('*a'):match('VmRSS:%s*(%d+)'))
    if fh then fh:close() end
    return v
  end
  local big = c:lua([[
    local lines = {}
    for i = 1, 7500 do lines[i] = ('let v_%05d = compute(%05d, "ab");'):format(i, i) end
    return lines
  ]])
  local big_bytes = 0
  for _, l in ipairs(big) do big_bytes = big_bytes + #l + 1 end
  local function open_big()
    c:lua([[
      vim.cmd('enew')
      vim.bo.filetype = 'rust'
      vim.api.nvim_buf_set_lines(0, 0, -1, false, ...)
      require('zeke.rpc').attach(vim.api.nvim_get_current_buf())
    ]], big)
    local ok = pcall(H.wait, function() return (c:status().buffer_bytes or 0) >= big_bytes end, 10000, 'large buffer mirrored')
    if not ok then
      local s = c:status()
      local log = c:lua('return require("zeke.rpc").log_path()')
      local keep = vim.tbl_filter(function(l) return not l:find('method=status', 1, true) end, vim.fn.readfile(log))
      vim.fn.writefile(keep, '/tmp/zeke-bench-fail.log')
      error(('large buffer not mirrored: buf=%s buffers=%s bytes=%s want=%d attached=%s'):format(c:lua('return vim.fn.bufnr()'),
        s.buffers, s.buffer_bytes, big_bytes, vim.inspect(c:lua('return require("zeke.rpc").info().attached'))))
    end
  end
  open_big()
  H.sleep(300)
  out(('rss_large_file_kb=%d file_kb=%d'):format(rss_kb(), math.floor(big_bytes / 1024)))
  local edit_us = c:lua([[
    local t = {}
    local buf = vim.api.nvim_get_current_buf()
    for i = 1, 200 do
      local t0 = vim.uv.hrtime()
      vim.api.nvim_buf_set_text(buf, 3700, 4, 3700, 4, { 'x' })
      t[i] = (vim.uv.hrtime() - t0) / 1e3
    end
    table.sort(t)
    return t
  ]])
  out(('keystroke_editor_p50_us=%.1f (nvim_buf_set_text on the large buffer, zeke attached)'):format(pct(edit_us, 0.5)))
  -- Zeke's own cost per keystroke on that buffer: time applying each buffer event to the mirror.
  local m0 = c:status().mirror
  c:lua([[
    local buf = vim.api.nvim_get_current_buf()
    for i = 1, 200 do
      vim.api.nvim_buf_set_text(buf, 3700, 4, 3700, 4, { 'y' })
      vim.wait(2)
    end
  ]])
  local m1 = H.wait(function()
    local m = c:status().mirror
    return m.events >= m0.events + 200 and m
  end, 10000, 'events applied')
  out(('keystroke_backend_mean_us=%.1f events=%d (large buffer, mirror update per edit)'):format(
    (m1.total_us - m0.total_us) / (m1.events - m0.events), m1.events - m0.events))
  for _ = 1, 40 do
    c:lua('vim.cmd("bwipeout!")')
    open_big()
  end
  c:lua('vim.cmd("bwipeout!")')
  H.wait(function() return (c:status().buffers or 1) == 0 or (c:status().buffer_bytes or 1) < big_bytes end, 10000, 'closed')
  H.sleep(500)
  out(('rss_after_40_open_close_kb=%d'):format(rss_kb()))

  -- Zeke's own time per completion: backend time minus the provider's (status.last.overhead_ms),
  -- against an instant OpenAI-compatible server (the anchor's setting) and the real llama-server.
  local function completions(key, cfg, n)
    c:setup(cfg)
    c:new_buffer('rust')
    c:lua('vim.api.nvim_buf_set_lines(0, 0, -1, false, { "fn main() {", "    let x = ", "}" })')
    c:input('<Esc>2GA')
    local overheads, ttfts = {}, {}
    local prev = nil
    for i = 1, n do
      c:input(i % 2 == 1 and '1' or '<BS>')
      H.wait(function()
        local s = c:inline()
        return not s.timer_active and (s.req == nil or s.req.done)
      end, 60000, 'completion')
      local last = c:status().last
      if last and last.overhead_ms and not vim.deep_equal(last, prev) then
        overheads[#overheads + 1] = last.overhead_ms
        ttfts[#ttfts + 1] = last.ttft_ms
      end
      prev = last
    end
    c:input('<Esc>')
    table.sort(overheads)
    table.sort(ttfts)
    if #overheads > 0 then
      out(('%s_overhead_p50_ms=%.2f p99_ms=%.2f samples=%d'):format(key, pct(overheads, 0.5), pct(overheads, 0.99), #overheads))
      out(('%s_ttft_p50_ms=%.1f (provider included)'):format(key, pct(ttfts, 0.5)))
    end
  end
  local fault = vim.env.ZEKE_TEST_FAULT_URL
  if fault and fault ~= '' then
    completions('completion_instant', { providers = { instant = { kind = 'vllm', url = fault .. '/ok', model = 'm' } },
      completion = { provider = 'instant' } }, 40)
  end
  if url and url ~= '' then
    completions('completion_llama', cfg, 20)
  end

  -- A fast request right after a slow one, with one edit between (llm-ls: ~1.9 s, its read lock is
  -- held across the slow HTTP call). The fault server makes odd requests hang and even ones instant.
  if fault and fault ~= '' then
    vim.system({ 'curl', '-s', '-X', 'POST', fault .. '/reset' }):wait()
    c:setup({ providers = { alt = { kind = 'vllm', url = fault .. '/alternate', model = 'm' } },
      completion = { provider = 'alt', debounce_ms = 0 } })
    c:new_buffer('rust')
    c:lua('vim.api.nvim_buf_set_lines(0, 0, -1, false, { "fn main() {", "    let x = ", "}" })')
    c:input('<Esc>2GA')
    local waits = {}
    local typed = 0
    for _ = 1, 10 do
      -- Type until the request in flight is a slow one (no ghost text 100 ms after the key).
      local slow = false
      for _ = 1, 6 do
        typed = typed + 1
        c:input(typed % 2 == 1 and '1' or '<BS>')
        H.sleep(100)
        if not c:suggestion() and (c:status().counts.completions_running or 0) >= 1 then
          slow = true
          break
        end
      end
      if not slow then error('could not get a slow request in flight') end
      local t0 = vim.uv.hrtime()
      typed = typed + 1
      c:input(typed % 2 == 1 and '1' or '<BS>')
      while not c:suggestion() do
        if (vim.uv.hrtime() - t0) / 1e6 > 10000 then error('no suggestion after the edit') end
        vim.wait(1)
      end
      waits[#waits + 1] = (vim.uv.hrtime() - t0) / 1e6
    end
    table.sort(waits)
    out(('fast_after_slow_p50_ms=%.1f max_ms=%.1f samples=%d (edit -> ghost text, debounce 0)'):format(pct(waits, 0.5),
      waits[#waits], #waits))
  end

  -- The chat panel against a local OpenAI-compatible server (the fault server: `/ok`, and a
  -- scripted 5,000-token answer of prose and code blocks): <CR> → the first token in the
  -- transcript buffer, minus the provider's own time to first token as the router measured it
  -- (the ledger's ttft_ms); the editor's longest main-loop stall while the 5,000 tokens stream in
  -- (a 1 ms repeating timer notes the largest gap between its ticks); the backend's RSS after
  -- 100 turns.
  local fault = vim.env.ZEKE_TEST_FAULT_URL
  if not fault or fault == '' then error('the chat bench needs ZEKE_TEST_FAULT_URL (scripts/with-services.sh)') end
  local cc = H.child()
  cc:setup({
    providers = {
      short = { kind = 'llamacpp', url = fault .. '/ok' },
      long = { kind = 'llamacpp', url = fault .. '/script/long5000' },
    },
    routes = { chat = { 'short' } },
    completion = { enabled = false },
  })
  local firsts = cc:lua([[
    local chat = require('zeke.chat')
    -- the moment the answer's first text is in the transcript buffer: an on_lines callback of
    -- the buffer sees the change that brings it (the /ok answer starts "def add")
    local first, attached = nil, {}
    local function watch()
      local buf = vim.fn.bufnr('zeke://chat')
      if buf < 0 or attached[buf] then return end
      attached[buf] = true
      vim.api.nvim_buf_attach(buf, false, {
        on_lines = function(_, b, _, top, _, bot)
          if first then return end
          for _, l in ipairs(vim.api.nvim_buf_get_lines(b, top, bot, false)) do
            if l:find('def', 1, true) then first = vim.uv.hrtime() return end
          end
        end,
      })
    end
    local out = {}
    for i = 1, ... do
      chat.new_session()
      chat.open({ focus = true })
      watch()
      vim.api.nvim_buf_set_lines(vim.api.nvim_get_current_buf(), 0, -1, false, { 'hello ' .. i })
      first = nil
      local t0 = vim.uv.hrtime()
      chat.submit()
      vim.wait(5000, function() local t = chat.state().turn return first ~= nil and t ~= nil and t.done end, 1)
      vim.wait(30)
      -- the provider's own time to first token, as the router measured it for this request
      local u = require('zeke.rpc').request('usage', { last = 1 })
      local ttft = u and u.last and u.last[1] and u.last[1].ttft_ms
      if first and type(ttft) == 'number' then out[#out + 1] = (first - t0) / 1e6 - ttft end
    end
    table.sort(out)
    return out
  ]], 30)
  out(('chat_added_first_token_p50_ms=%.2f p99_ms=%.2f samples=%d (<CR> to the first token in the panel, minus the provider TTFT)')
    :format(pct(firsts, 0.5) or -1, pct(firsts, 0.99) or -1, #firsts))
  -- Five streams of the 5,000-token answer into one transcript (it grows to ~3,500 lines): the
  -- longest stall of each. The child redraws every 16 ms as a UI would (headless, nothing else
  -- redraws, and the highlighter's parse would pile up for the next redraw), so the stall counts
  -- tree-sitter's markdown parse and highlight per frame. Variants: the default (tree-sitter),
  -- `chat.highlight = "syntax"` (Vim's markdown syntax), and the floor: the same streams with
  -- on_delta doing nothing (the events still arrive and are decoded; the frames still run).
  local function streams(mode)
    return cc:lua([[
      local runs_n, mode = ...
      local chat = require('zeke.chat')
      require('zeke').pin('long')
      chat.open({ focus = true })
      require('zeke.chat.transcript').clear()
      local tb = vim.fn.bufnr('zeke://chat')
      if mode == 'syntax' then
        pcall(vim.treesitter.stop, tb)
        vim.bo[tb].syntax = 'markdown'
      end
      local on_delta = chat.on_delta
      if mode == 'floor' then chat.on_delta = function() end end
      local runs = {}
      for run = 1, runs_n do
        chat.new_session()
        chat.open({ focus = true })
        local ibuf = vim.api.nvim_get_current_buf()
        vim.api.nvim_buf_set_lines(ibuf, 0, -1, false, { 'a long one' })
        local orig_done, finished = chat.on_done, false
        chat.on_done = function(p) orig_done(p) finished = true end
        local last, worst = vim.uv.hrtime(), 0
        local timer = vim.uv.new_timer()
        timer:start(1, 1, function()
          local now = vim.uv.hrtime()
          worst = math.max(worst, (now - last) / 1e6)
          last = now
        end)
        local frames = vim.uv.new_timer()
        frames:start(16, 16, vim.schedule_wrap(function() vim.cmd('redraw') end))
        local t0 = vim.uv.hrtime()
        chat.submit()
        local done = vim.wait(60000, function() return finished end, 20)
        chat.on_done = orig_done
        for _, t in ipairs({ timer, frames }) do
          t:stop()
          t:close()
        end
        local lines = #vim.api.nvim_buf_get_lines(tb, 0, -1, false)
        runs[run] = { worst = worst, ms = (vim.uv.hrtime() - t0) / 1e6, done = done, lines = lines }
      end
      chat.on_delta = on_delta
      if mode == 'syntax' then pcall(vim.treesitter.start, tb, 'markdown') end
      require('zeke').pin(nil)
      return runs
    ]], 5, mode)
  end
  local function summary(runs, need_lines)
    local worsts, ms, ok = {}, {}, true
    for i, r in ipairs(runs) do
      worsts[i], ms[i] = r.worst, r.ms
      ok = ok and r.done and (not need_lines or r.lines > 600)
    end
    table.sort(worsts)
    table.sort(ms)
    return worsts, ms, ok
  end
  local worsts, ms, all_done = summary(streams('treesitter'), true)
  local syn = summary(streams('syntax'), true)
  local floor = summary(streams('floor'), false)
  out(('chat_stream_stall_max_ms=%.1f chat_stream_stall_median_ms=%.1f stream_ms=%.0f runs=%d complete=%s (5,000 tokens into the panel, tree-sitter markdown, a redraw every 16 ms)')
    :format(worsts[#worsts], pct(worsts, 0.5), pct(ms, 0.5), #worsts, tostring(all_done)))
  out(('chat_stream_stall_syntax_max_ms=%.1f chat_stream_stall_syntax_median_ms=%.1f (the same, chat.highlight = "syntax")')
    :format(syn[#syn], pct(syn, 0.5)))
  out(('chat_stream_stall_floor_max_ms=%.1f chat_stream_stall_floor_median_ms=%.1f (the same streams and frames, the panel not drawing them)')
    :format(floor[#floor], pct(floor, 0.5)))
  cc:lua([[
    local chat = require('zeke.chat')
    for i = 1, ... do
      chat.open({ focus = true })
      vim.api.nvim_buf_set_lines(vim.api.nvim_get_current_buf(), 0, -1, false, { 'turn ' .. i })
      chat.submit()
      vim.wait(5000, function() local t = chat.state().turn return t ~= nil and t.done end, 2)
      vim.wait(20)
    end
  ]], 100)
  local cst = cc:status()
  out(('chat_rss_after_100_turns_kb=%d'):format(cst.rss_kb or 0))
  cc:stop()
end, debug.traceback)
c:stop()
if not ok then
  out('bench failed: ' .. tostring(err))
  os.exit(1)
end
os.exit(0)
