-- tests/lua/test_commands.lua: `:Zeke status`, `:Zeke log`, `:Zeke restart`, `:Zeke toggle`,
-- `:checkhealth zeke` against the real backend (fake provider).
local NEEDS = { 'ZEKE_BIN' }

local function exec(c, cmd)
  return c:lua('return vim.api.nvim_exec2(..., { output = true }).output', cmd)
end

return {
  {
    name = ':Zeke status shows pid, provider/model and the last latency',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      c:setup(H.fake('world()'))
      c:new_buffer('lua')
      c:input('ihello ')
      c:wait_full()
      c:input('<Esc>')
      local pid = c:backend_pid()
      local out = exec(c, 'Zeke status')
      H.ok(out:find('backend pid ' .. pid, 1, true), out)
      H.ok(out:find('provider: fake (fake) · model fake-model', 1, true), out)
      H.ok(out:match('last completion: ttft [%d.]+ ms · total [%d.]+ ms'), out)
      H.ok(out:find('1 started, 1 finished', 1, true), out)
      H.eq(vim.split(out, '\n')[1], vim.split(exec(c, 'Zeke'), '\n')[1], ':Zeke alone shows the status')
    end,
  },
  {
    name = ':Zeke log opens the log file in a split',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      c:setup(H.fake('x'))
      c:status() -- starts the backend, which writes its log
      H.wait(function()
        return c:lua('return vim.fn.getfsize(require("zeke.rpc").log_path()) > 0')
      end, 5000, 'log written')
      c:cmd('Zeke log')
      H.eq(2, c:lua('return #vim.api.nvim_list_wins()'))
      local name = c:lua('return vim.api.nvim_buf_get_name(0)')
      H.ok(name:match('/nvim/zeke%.log$'), name)
      H.ok(#c:lines() >= 1)
    end,
  },
  {
    name = 'log_level in setup{} sets what the backend writes to :Zeke log; $ZEKE_LOG overrides it',
    needs = NEEDS,
    run = function(H)
      local function log_after_completion(env, level)
        local c = H.child({ env = env })
        c:setup(H.fake('world()', level and { log_level = level } or nil))
        c:new_buffer('lua')
        c:input('ihello ')
        c:wait_full()
        c:input('<Esc>')
        c:wait_idle()
        local text = c:lua('return table.concat(vim.fn.readfile(require("zeke.rpc").log_path()), "\\n")')
        c:stop()
        return text
      end
      local debug = log_after_completion({ ZEKE_LOG = '' }, 'debug')
      H.ok(debug:find(' DEBUG ', 1, true), 'log_level = debug: completions are logged at debug\n' .. debug)
      H.ok(debug:find('log level now debug', 1, true), debug)
      local info = log_after_completion({ ZEKE_LOG = '' }, nil)
      H.ok(info:find('zeke nvim starting', 1, true), info)
      H.ok(not info:find(' DEBUG ', 1, true), 'the default is info\n' .. info)
      local pinned = log_after_completion({ ZEKE_LOG = 'error' }, 'debug')
      H.ok(not pinned:find(' DEBUG ', 1, true) and not pinned:find(' INFO ', 1, true),
        '$ZEKE_LOG=error wins over log_level = debug\n' .. pinned)
    end,
  },
  {
    name = ':Zeke restart starts a new backend and keeps the buffers attached',
    needs = NEEDS,
    run = function(H)
      local c = H.child()
      c:setup(H.fake('world()'))
      c:new_buffer('lua')
      c:input('ihello ')
      c:wait_full()
      c:input('<Esc>')
      local pid = c:backend_pid()
      c:cmd('Zeke restart')
      local pid2 = c:backend_pid()
      H.ok(pid2 and pid2 ~= pid, 'new pid')
      H.wait(function() return not H.alive(pid) end, 5000, 'old backend gone')
      H.ok(c:notes()[#c:notes()].msg:find('restarted', 1, true))
      H.eq({}, c:problems(), 'a restart on purpose is no warning')
      c:input('A x ')
      H.eq('world()', c:wait_full())
    end,
  },
  {
    name = ':Zeke toggle / enable / disable set b:zeke_enabled',
    needs = {},
    run = function(H)
      local c = H.child()
      c:setup({})
      c:new_buffer('lua')
      c:cmd('Zeke toggle')
      H.eq(false, c:lua('return vim.b.zeke_enabled'))
      c:cmd('Zeke toggle')
      H.eq(true, c:lua('return vim.b.zeke_enabled'))
      c:cmd('Zeke disable')
      H.eq(false, c:lua('return vim.b.zeke_enabled'))
      c:cmd('Zeke enable')
      H.eq(true, c:lua('return vim.b.zeke_enabled'))
      c:cmd('Zeke nonsense')
      H.ok(c:problems()[1]:find('unknown subcommand "nonsense"', 1, true))
    end,
  },
  {
    name = ':checkhealth zeke reports version, binary, backend, config, providers, keys',
    needs = NEEDS,
    run = function(H)
      local c = H.child({ env = { ZEKE_TEST_SECRET = 'sk-do-not-print' } })
      c:setup({
        providers = {
          fake = { kind = 'fake', reply = 'x' },
          cloud = { kind = 'openai', url = 'http://127.0.0.1:9/v1', api_key_env = 'ZEKE_TEST_SECRET' },
        },
        completion = { provider = 'fake' },
        -- zeke mcp itself as an external server, and one that cannot start
        mcp_servers = {
          self = { command = vim.env.ZEKE_BIN, args = { 'mcp', '--root', H.root } },
          broken = { command = '/nonexistent/server' },
        },
      })
      c:cmd('checkhealth zeke')
      local text = table.concat(c:lines(), '\n')
      for _, want in ipairs({ 'Neovim', 'zeke 0.1.0', 'backend running: pid', 'config valid',
        'fake (fake)', 'cloud: API key present', 'completions use provider fake', 'cloud (openai) http://127.0.0.1:9/v1',
        'MCP servers (tools for the chat agent)', 'self (' .. vim.env.ZEKE_BIN .. '): ', 'self__read_text_file',
        'broken (/nonexistent/server): ', 'language servers (lsp_* tools)', 'rust: rust-analyzer',
        'c, cpp: ' }) do
        H.ok(text:find(want, 1, true), ('health mentions %q:\n%s'):format(want, text))
      end
      H.ok(not text:find('sk-do-not-print', 1, true), 'never the key value')
      H.ok(text:find('not reachable', 1, true), 'the unreachable provider is flagged')
    end,
  },
  {
    name = ':checkhealth zeke without a binary says how to build it',
    needs = {},
    run = function(H)
      local c = H.child({ env = { ZEKE_BIN = '', PATH = '/usr/bin:/bin' } })
      c:setup({ bin = '/nonexistent/zeke' })
      c:cmd('checkhealth zeke')
      local text = table.concat(c:lines(), '\n')
      H.ok(text:find('zeke binary not found', 1, true), text)
      H.ok(text:find('make build', 1, true), text)
    end,
  },
}
