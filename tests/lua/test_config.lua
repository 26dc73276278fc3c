-- tests/lua/test_config.lua: plugin loading (lazy, idempotent), :Zeke completion, config
-- validation messages, vim.g.zeke without setup(), binary lookup. Most cases need no backend.
return {
  {
    name = 'plugin declares :Zeke and <Plug> maps, loads nothing else, starts nothing',
    run = function(H)
      local c = H.child()
      local r = c:lua([[
        local maps = {}
        for _, m in ipairs({ 'accept', 'accept-word', 'accept-line', 'dismiss' }) do
          maps[m] = vim.fn.maparg('<Plug>(zeke-' .. m .. ')', 'i') ~= ''
        end
        local loaded = {}
        for name in pairs(package.loaded) do
          if name:match('^zeke') and name ~= 'zeke_test' then loaded[#loaded + 1] = name end
        end
        return { cmd = vim.fn.exists(':Zeke'), maps = maps, loaded = loaded,
          nx = vim.fn.maparg('<Plug>(zeke-explain)', 'n') ~= '' and vim.fn.maparg('<Plug>(zeke-explain)', 'x') ~= '' }
      ]])
      H.eq(2, r.cmd, ':Zeke exists')
      H.eq({ accept = true, ['accept-word'] = true, ['accept-line'] = true, dismiss = true }, r.maps)
      H.eq(true, r.nx, '<Plug>(zeke-explain) in n and x')
      H.eq({}, r.loaded, 'no zeke module loaded at startup')
      -- sourcing the plugin again is a no-op
      c:cmd('runtime! plugin/zeke.lua')
      -- setup() does not start the backend either
      c:setup({})
      H.eq(false, c:lua('return require("zeke.rpc").is_running()'), 'backend not started by setup')
      H.eq({}, c:problems())
    end,
  },
  {
    name = ':Zeke completes its subcommands',
    run = function(H)
      local c = H.child()
      local all = c:lua([[return vim.fn.getcompletion('Zeke ', 'cmdline')]])
      for _, want in ipairs({ 'accept', 'complete', 'disable', 'dismiss', 'enable', 'explain', 'health', 'log',
        'restart', 'status', 'stop', 'toggle' }) do
        H.ok(vim.tbl_contains(all, want), 'completion has ' .. want .. ' in ' .. vim.inspect(all))
      end
      H.eq({ 'restart' }, c:lua([[return vim.fn.getcompletion('Zeke res', 'cmdline')]]))
      H.eq({ 'explain' }, c:lua([[return vim.fn.getcompletion("'<,'>Zeke exp", 'cmdline')]]))
      H.eq({}, c:lua([[return vim.fn.getcompletion('Zeke explain ', 'cmdline')]]))
    end,
  },
  {
    name = 'bad config value gives one message naming the key',
    run = function(H)
      local c = H.child()
      c:setup({ completion = { debounce_ms = 'x' } })
      local p = c:problems()
      H.eq(1, #p, 'one message: ' .. vim.inspect(p))
      H.eq('zeke: completion.debounce_ms must be an integer from 0 to 5000 (got "x")', p[1])
      -- the bad key falls back to its default; the editor stays usable
      H.eq(75, c:lua('return require("zeke.config").get().completion.debounce_ms'))
    end,
  },
  {
    name = 'mcp_servers and mcp.call are accepted; a server without a command is named',
    run = function(H)
      local c = H.child()
      c:setup({ mcp_servers = { ['self'] = { command = 'zeke', args = { 'mcp' }, env = { A = 'b' } }, bad = { args = {} } },
        capabilities = { ['mcp.call'] = 'allow' } })
      local p = c:problems()
      H.eq(1, #p, vim.inspect(p))
      H.ok(p[1]:find('mcp_servers.bad.command is required', 1, true), p[1])
      H.eq('zeke', c:lua('return require("zeke.config").get().mcp_servers.self.command'))
    end,
  },
  {
    name = 'setup{} takes exactly the limits the backend takes (one table: schema.json)',
    run = function(H)
      local c = H.child()
      -- the backend refuses debounce_ms > 5000; so does setup{} now
      c:setup({ completion = { debounce_ms = 6000 }, router = { max_attempts = 17 } })
      local p = c:problems()
      H.eq(1, #p, vim.inspect(p))
      H.ok(p[1]:find('completion.debounce_ms must be an integer from 0 to 5000 (got 6000)', 1, true), p[1])
      H.ok(p[1]:find('router.max_attempts must be an integer from 1 to 16 (got 17)', 1, true), p[1])
      -- the defaults are the backend's
      H.eq(30000, c:lua('return require("zeke.config").get().router.cooldown_ms'))
      -- and the backend agrees with what setup{} accepts at the edges: no error from either side
      local c2 = H.child()
      c2:setup(H.fake("x", { completion = { debounce_ms = 5000 }, router = { max_attempts = 16 } }))
      H.eq(5000, c2:lua('return require("zeke.config").get().completion.debounce_ms'))
      H.ok(c2:status().pid, 'the backend runs with it')
      H.sleep(200)
      H.eq({}, c2:problems())
    end,
  },
  {
    name = 'unknown keys are rejected by name, several problems in one message',
    run = function(H)
      local c = H.child()
      c:setup({ foo = 1, completion = { debounce = 10 }, ui = { border = 'fancy' }, keymaps = { accept = 3 } })
      local p = c:problems()
      H.eq(1, #p, 'one message: ' .. vim.inspect(p))
      for _, want in ipairs({ 'unknown config key "foo"', 'unknown config key "completion.debounce"', 'ui.border must be',
        'keymaps.accept must be false or a key' }) do
        H.ok(p[1]:find(want, 1, true), ('message mentions %q: %s'):format(want, p[1]))
      end
    end,
  },
  {
    name = 'provider entries are checked by name',
    run = function(H)
      local c = H.child()
      c:setup({ providers = { local1 = { kind = 'gpt', url = 3 }, ok = { kind = 'ollama' } } })
      local p = c:problems()
      H.eq(1, #p, vim.inspect(p))
      H.ok(p[1]:find('providers.local1.kind must be one of', 1, true), p[1])
      H.ok(p[1]:find('providers.local1.url must be a string (got 3)', 1, true), p[1])
      H.eq({ 'ok' }, c:lua('return vim.tbl_keys(require("zeke.config").for_backend().providers)'))
    end,
  },
  {
    name = 'binary lookup: bin, then $ZEKE_BIN, then the plugin build, then PATH',
    run = function(H)
      local c = H.child({ env = { ZEKE_BIN = '/bin/true' } })
      c:setup({})
      H.eq('/bin/true', c:lua('return (require("zeke.config").resolve_bin())'))
      c:setup({ bin = '/bin/false' })
      H.eq('/bin/false', c:lua('return (require("zeke.config").resolve_bin())'))
      c:setup({ bin = '/nonexistent/zeke' })
      H.eq(nil, c:lua('return (require("zeke.config").resolve_bin())'), 'a wrong bin is not silently replaced')
    end,
  },
  {
    name = 'vim.g.zeke works without setup() (ghost text on first insert)',
    needs = { 'ZEKE_BIN' },
    run = function(H)
      local c = H.child()
      c:lua('vim.g.zeke = ...', H.fake('world()'))
      c:new_buffer('lua')
      H.eq(false, c:lua('return package.loaded["zeke.rpc"] ~= nil'), 'nothing loaded before first use')
      c:input('ihello ')
      H.eq('world()', c:wait_full())
      H.eq({}, c:problems())
    end,
  },
  {
    name = 'the backend gets the config and returns the effective one; its errors are reported once',
    needs = { 'ZEKE_BIN' },
    run = function(H)
      local c = H.child()
      -- completion.provider names a provider nobody configured: only the backend can tell
      c:setup({ completion = { provider = 'nope', debounce_ms = 20 } })
      c:new_buffer('lua')
      c:input('ihi')
      local function config_errors()
        return vim.tbl_filter(function(m) return m:find('completion.provider', 1, true) ~= nil end, c:problems())
      end
      H.wait(function() return #config_errors() > 0 end, 10000, 'config error')
      c:type('there', 30)
      H.sleep(300)
      local p = config_errors()
      H.eq(1, #p, vim.inspect(c:problems()))
      H.eq('zeke: invalid zeke config: completion.provider: no provider named "nope" (configured: none)', p[1])
      H.eq('i', c:mode())
      -- a valid config: effective values come back
      c:setup(H.fake('x', { completion = { debounce_ms = 40 } }))
      H.eq(40, c:lua('return require("zeke.config").get().completion.debounce_ms'))
    end,
  },
  {
    name = 'TOML-only settings reach the plugin through the effective config',
    needs = { 'ZEKE_BIN' },
    run = function(H)
      local toml = vim.fn.tempname() .. '.toml'
      vim.fn.writefile({
        '[completion]', 'debounce_ms = 33', 'provider = "fake"',
        '[keymaps]', 'accept = "<C-y>"',
        '[providers.fake]', 'kind = "fake"', 'reply = "from_toml()"', 'delay_ms = 5',
      }, toml)
      local c = H.child({ env = { ZEKE_CONFIG = toml } })
      c:new_buffer('lua')
      c:input('ix = ') -- no setup() at all: first InsertEnter sets up from vim.g.zeke (nil) + the file
      H.eq('from_toml()', c:wait_full())
      H.eq(33, c:lua('return require("zeke.config").get().completion.debounce_ms'))
      c:input('<C-y>')
      H.wait(function() return c:line() == 'x = from_toml()' end, 5000, 'accepted with the TOML key')
      H.eq({}, c:problems())
      os.remove(toml)
    end,
  },
}
