-- tests/lua/run.lua: the Lua test runner. `nvim --headless -u NONE -l tests/lua/run.lua [filter]`
-- runs every case of every tests/lua/test_*.lua (each file returns a list of
-- `{ name = ..., needs = { 'ENV_VAR', ... }, run = function(H) ... end }`) whose "file: name"
-- contains `filter`. Prints one line per case (ok / FAIL / skip + reason) and ends with
-- `lua: N passed, N failed, N skipped`; exits non-zero when a case failed. With
-- ZEKE_TEST_NO_SKIP=1 (set by `make test`) a case whose needs are missing fails instead of skipping.
local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:gsub('^@', ''), ':p:h:h:h')
package.path = root .. '/tests/lua/?.lua;' .. package.path
local H = require('helpers')

local filter = _G.arg and _G.arg[1] or nil
if filter == '' then filter = nil end

local function out(s)
  io.stdout:write(s, '\n')
  io.stdout:flush()
end

local files = vim.fn.glob(root .. '/tests/lua/test_*.lua', false, true)
table.sort(files)

local passed, failed, skipped = 0, 0, 0
local failures = {}

-- A case that hangs (say, a child that never answers an RPC request) must not hang the run: a
-- watchdog in a libuv timer (it fires even inside a blocking rpcrequest) ends it with a failure.
local CASE_LIMIT_MS = 240000
local watchdog = vim.uv.new_timer()
local current = nil
local function arm(name)
  current = name
  watchdog:stop()
  watchdog:start(CASE_LIMIT_MS, 0, function()
    io.stdout:write(('FAIL %s (watchdog: no result after %d s)\n'):format(current, CASE_LIMIT_MS / 1000))
    io.stdout:write(('lua: %d passed, %d failed, %d skipped\n'):format(passed, failed + 1, skipped))
    io.stdout:flush()
    os.exit(1)
  end)
end
for _, file in ipairs(files) do
  local short = vim.fn.fnamemodify(file, ':t:r'):gsub('^test_', '')
  local ok, cases = pcall(dofile, file)
  if not ok then
    failed = failed + 1
    out(('FAIL %s: could not load: %s'):format(short, tostring(cases)))
  else
    for _, case in ipairs(cases) do
      local full = short .. ': ' .. case.name
      if not filter or full:find(filter, 1, true) then
        local missing = {}
        for _, var in ipairs(case.needs or {}) do
          if not vim.env[var] or vim.env[var] == '' then missing[#missing + 1] = '$' .. var end
        end
        if #missing > 0 and vim.env.ZEKE_TEST_NO_SKIP == '1' then
          failed = failed + 1
          failures[#failures + 1] = full
          out(('FAIL %s (needs %s; ZEKE_TEST_NO_SKIP=1 forbids skipping)'):format(full, table.concat(missing, ', ')))
        elseif #missing > 0 then
          skipped = skipped + 1
          out(('skip %s (skipped: needs %s)'):format(full, table.concat(missing, ', ')))
        else
          local t0 = vim.uv.hrtime()
          arm(full)
          local cok, err = xpcall(case.run, debug.traceback, H)
          H.cleanup()
          watchdog:stop()
          local secs = (vim.uv.hrtime() - t0) / 1e9
          if cok then
            passed = passed + 1
            out(('ok   %s (%.1f s)'):format(full, secs))
          else
            failed = failed + 1
            failures[#failures + 1] = full
            out(('FAIL %s (%.1f s)\n     %s'):format(full, secs, tostring(err):gsub('\n', '\n     ')))
          end
        end
      end
    end
  end
end

if #failures > 0 then out('failed: ' .. table.concat(failures, '; ')) end
out(('lua: %d passed, %d failed, %d skipped'):format(passed, failed, skipped))
os.exit(failed > 0 and 1 or 0)
