-- tests/lua/test_chat.lua: the chat panel against the real backend and the fault server (and
-- llama-server when $ZEKE_TEST_LLAMA_URL is set): `:Zeke chat hello` opens the panel and streams
-- the answer under a provider · model heading, the next message continues the session (the
-- second request carries the first turn); a fallback mid-answer starts the answer over under the
-- new heading; a range goes as `#selection`, `#buffer` / `#diagnostics` expand, the turn's context
-- and the rules file are shown; `q` hides and `:Zeke chat` shows the same transcript; the split
-- layout; `:Zeke chat resume` lists and loads a session (from another Neovim sharing the state
-- directory), and two Neovims continuing one session at once keep both turns; the agent's `run_command` asks (real `ask` events from the fault server's scripted
-- model: allow once runs it, deny refuses it) and a simulated `ask` gets its `answer`; the agent's
-- edit is a reviewed patch; `/explain` `/fix` `/test` `/model` `/usage` run on the source buffer;
-- `#file:` outside the root is refused; `/new`, `/clear`, unknown commands, `/compact`;
-- completion of `/` and `#`; the chat config keys; `:Zeke stop` stops a turn; the token meter
-- warns from 80 %; errors show in the transcript.
local NEEDS = { 'ZEKE_BIN', 'ZEKE_TEST_FAULT_URL' }

local ANSWER = 'def add(a, b):\n    return a + b' -- what the fault server's /ok streams
local CODE = { 'def add(a, b):', '    return a - b', '', 'print(add(1, 2))' }

local seq = 0
--- A tag of the fault server unique to this run.
local function new_tag(name)
  seq = seq + 1
  return ('%s-%d-%d-%d'):format(name, vim.uv.os_getpid(), os.time(), seq)
end

local function fault(tag) return vim.env.ZEKE_TEST_FAULT_URL .. '/t/' .. tag end

--- One provider at the fault server (`mode`: "ok", "script/NAME", "hang", …).
local function cfg(tag, mode, extra)
  return vim.tbl_deep_extend('force', {
    providers = {
      fault = { kind = 'vllm', url = fault(tag) .. '/' .. (mode or 'ok'), model = 'fault-model', context_window = 8192 },
    },
    routes = { chat = { 'fault' } },
    completion = { provider = 'fault', enabled = false },
    router = { hedge = false },
  }, extra or {})
end

--- The requests the fault server received under `tag`: {{path, body}}.
local function requests(tag)
  local r = vim.system({ 'curl', '-s', fault(tag) .. '/stats' }, { text = true }):wait(5000)
  assert(r.code == 0, 'curl stats: ' .. tostring(r.stderr))
  return vim.json.decode(r.stdout).requests or {}
end

local function state(c) return c:lua('return require("zeke").chat_state()') end

--- Waits for the turn `id` (default: the last one) to finish; returns the panel's state.
local function wait_done(H, c, id, timeout)
  return H.wait(function()
    local st = state(c)
    return st.turn and st.turn.done and (id == nil or st.turn.id == id) and st
  end, timeout or 15000, 'the chat turn to finish')
end

local function has(lines, want)
  for _, l in ipairs(lines) do
    if l == want then return true end
  end
  return false
end

local function find(lines, pat)
  for i, l in ipairs(lines) do
    if l:find(pat, 1, true) then return l, i end
  end
end

local function count(lines, want)
  local n = 0
  for _, l in ipairs(lines) do
    if l == want then n = n + 1 end
  end
  return n
end

--- A project on disk with a.py, opened in the child.
local function open_project(H, c, files)
  local dir = H.project(vim.tbl_extend('force', { ['a.py'] = CODE }, files or {}))
  c:cmd('edit ' .. vim.fn.fnameescape(dir .. '/a.py'))
  return dir
end

--- Stubs vim.ui.select (records prompt and labels, picks the label containing `want`; nil
--- cancels) and vim.ui.input (answers `reply`).
local function stub_ui(c, want, reply)
  c:lua([[
    local want, reply = ...
    _G.picks = {}
    vim.ui.select = function(items, opts, on_choice)
      local labels = {}
      for i, it in ipairs(items) do labels[i] = opts.format_item and opts.format_item(it) or tostring(it) end
      table.insert(_G.picks, { prompt = opts.prompt, labels = labels, kind = opts.kind })
      for i, l in ipairs(labels) do
        if want and l:find(want, 1, true) then return on_choice(items[i], i) end
      end
      on_choice(nil, nil)
    end
    vim.ui.input = function(opts, on_confirm)
      table.insert(_G.picks, { prompt = opts.prompt, input = true })
      on_confirm(reply)
    end
  ]], want, reply)
end

local function messages_of(req) return (req.body or {}).messages or {} end

local function has_message(msgs, role, pat)
  for _, m in ipairs(msgs) do
    if m.role == role and type(m.content) == 'string' and m.content:find(pat, 1, true) then return true end
  end
  return false
end

return {
  {
    name = ':Zeke chat hello streams under provider · model; the next message continues the session',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat')
      local c = H.child()
      c:setup(cfg(tag))
      H.eq({}, c:problems(), 'the chat keys are accepted')
      local dir = open_project(H, c)
      c:cmd('Zeke chat hello')
      local st = wait_done(H, c)
      H.eq(true, st.open, 'the panel is open')
      H.eq('float', st.layout)
      H.eq(dir, st.root, 'the project root')
      local win = c:lua([[
        local st = require('zeke').chat_state()
        return { t = vim.api.nvim_win_get_config(st.twin).relative, i = vim.api.nvim_win_get_config(st.iwin).relative,
          cur = vim.api.nvim_get_current_win() == st.iwin, ft = vim.bo[st.tbuf].filetype }
      ]])
      H.eq({ t = 'editor', i = 'editor', cur = true, ft = 'zeke-chat' }, win, 'two floats, the input focused')
      H.eq(ANSWER, st.turn.text)
      H.eq('fault', st.turn.provider)
      H.eq('fault-model', st.turn.model)
      local lines = st.lines
      local _, you = find(lines, '## You')
      H.ok(you and lines[you + 1] == 'hello', vim.inspect(lines))
      local _, head = find(lines, '## fault · fault-model')
      H.ok(head and head > you, 'the answer is headed with provider · model: ' .. vim.inspect(lines))
      H.eq('def add(a, b):', lines[head + 1], vim.inspect(lines))
      H.eq('    return a + b', lines[head + 2], vim.inspect(lines))
      H.ok(lines[head + 3]:match('^▪ 5 / 8192 tokens %(0 %%%) · %d+ out · %$0%.00 · 1 step$'), lines[head + 3])
      local s1 = st.session
      H.ok(type(s1) == 'string' and s1 ~= '', 'a session id: ' .. vim.inspect(s1))

      -- the second message, typed in the input and sent with <CR>
      c:input('iand subtract?<Esc>')
      H.wait(function() return state(c).input[1] == 'and subtract?' end, 3000, 'the typed message')
      c:input('<CR>')
      local st2 = H.wait(function()
        local s = state(c)
        return s.turn and s.turn.done and s.turn.message == 'and subtract?' and s
      end, 15000, 'the second turn')
      H.eq({ '' }, st2.input, 'the input is emptied')
      H.eq(s1, st2.session, 'the same session')
      H.eq(2, count(st2.lines, '## You'))
      H.eq(2, count(st2.lines, '## fault · fault-model'))
      local reqs = requests(tag)
      H.eq(2, #reqs, 'two model requests')
      local m2 = messages_of(reqs[2])
      H.ok(has_message(m2, 'user', 'hello'), 'the first message goes again: ' .. vim.inspect(m2))
      H.ok(has_message(m2, 'assistant', 'return a + b'), 'the first answer goes again')
      H.ok(has_message(m2, 'user', 'and subtract?'), 'and the new message')
      H.eq(false, has_message(messages_of(reqs[1]), 'user', 'and subtract?'))
      H.eq({}, c:problems())
      H.eq({}, c:errors())
    end,
  },
  {
    name = 'a provider that dies mid-answer: the answer starts over under the heading of the next one',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-restart')
      local c = H.child({ env = { ZEKE_TEST_KEY = 'sk-test' } })
      c:setup({
        providers = {
          -- streams "Hello there, let me", then Anthropic's `error` event (after HTTP 200)
          bad = { kind = 'anthropic', url = fault(tag) .. '/replay/anthropic_error_after_200.sse', model = 'claude-x',
            api_key_env = 'ZEKE_TEST_KEY' },
          good = { kind = 'vllm', url = fault(tag) .. '/delay/300/ok', model = 'good-model', context_window = 8192 },
        },
        routes = { chat = { 'bad', 'good' } },
        completion = { provider = 'good', enabled = false },
        router = { hedge = false },
      })
      open_project(H, c)
      c:lua([[
        _G.seen = {}
        local chat = require('zeke.chat')
        local on = chat.on_delta
        chat.on_delta = function(p)
          on(p)
          vim.schedule(function() table.insert(_G.seen, table.concat(chat.state().lines, '\n')) end)
        end
      ]])
      c:cmd('Zeke chat hello')
      local st = wait_done(H, c)
      local seen = c:lua('return _G.seen')
      H.ok(seen[1]:find('## bad · claude-x\nHello', 1, true), 'first bad\'s text: ' .. vim.inspect(seen))
      H.eq(ANSWER, st.turn.text, 'then only the second answer')
      H.eq(1, st.turn.restarts)
      H.eq(nil, find(st.lines, 'Hello'), 'nothing of the first: ' .. vim.inspect({ st.lines, seen }))
      H.eq(nil, find(st.lines, 'claude-x'), 'the heading renamed')
      local _, head = find(st.lines, '## good · good-model')
      -- the fallback's notice came mid-text: it is shown once the dropped text is gone
      H.ok(st.lines[head + 1]:find('^ℹ bad failed .*the next provider takes over'), vim.inspect(st.lines))
      H.eq({ 'def add(a, b):', '    return a + b' }, { st.lines[head + 2], st.lines[head + 3] })
      H.eq(1, count(st.lines, '## good · good-model'))
    end,
  },
  {
    name = 'a range goes as #selection; the context and the rules file are shown',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-sel')
      local c = H.child()
      c:setup(cfg(tag))
      open_project(H, c, { ['AGENTS.md'] = { 'Use tabs.', 'Write tests first.' } })
      c:cmd('1,2Zeke chat what is wrong here?')
      local st = wait_done(H, c)
      local items = st.turn.context.items
      H.eq(1, #items, vim.inspect(st.turn.context))
      H.eq('#selection', items[1].label)
      H.eq('AGENTS.md', st.turn.context.rules.name)
      local line = find(st.lines, 'context: ')
      H.ok(line and line:match('^context: #selection %(~%d+ tokens%) · rules: AGENTS%.md %(~%d+%)$'), vim.inspect(st.lines))
      local _, you = find(st.lines, '## You')
      H.eq('context: ', st.lines[you + 2]:sub(1, 9), 'right under the message')
      local user = messages_of(requests(tag)[1])
      H.ok(has_message(user, 'user', '### #selection\n```\ndef add(a, b):\n    return a - b\n```'), vim.inspect(user))
      H.ok(has_message(user, 'user', 'what is wrong here?'))
      H.ok(has_message(user, 'system', 'Write tests first.'), 'the rules file goes to the model')
      -- #buffer and #diagnostics, expanded from the message
      c:lua([[
        local st = require('zeke').chat_state()
        vim.diagnostic.set(vim.api.nvim_create_namespace('t'), st.src, {
          { lnum = 1, col = 4, message = 'wrong operator', severity = vim.diagnostic.severity.ERROR },
        })
      ]])
      local id = c:lua('return require("zeke").chat_send("see #buffer and #diagnostics, please")')
      st = wait_done(H, c, id)
      H.eq({ '#buffer', '#diagnostics' }, vim.tbl_map(function(i) return i.label end, st.turn.context.items))
      local m2 = messages_of(requests(tag)[2])
      H.ok(has_message(m2, 'user', '### #diagnostics\n```\na.py:2:5: ERROR: wrong operator\n```'), vim.inspect(m2))
      H.ok(has_message(m2, 'user', '### #buffer\n```\n' .. table.concat(CODE, '\n') .. '\n```'))
      H.eq({}, c:problems())
    end,
  },
  {
    name = 'q hides the panel, :Zeke chat shows the same transcript; the split layout',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-hide')
      local c = H.child()
      c:setup(cfg(tag))
      open_project(H, c)
      local src = c:lua('return vim.api.nvim_get_current_win()')
      c:cmd('Zeke chat hello')
      local st = wait_done(H, c)
      local before = st.lines
      c:input('q')
      H.wait(function() return not state(c).open end, 3000, 'q hides it')
      H.eq(src, c:lua('return vim.api.nvim_get_current_win()'), 'back in the source window')
      H.eq(1, c:lua('return #vim.api.nvim_list_wins()'), 'both windows closed')
      c:cmd('Zeke chat')
      st = state(c)
      H.eq(true, st.open)
      H.eq(before, st.lines, 'the transcript is intact')
      H.eq(true, c:lua('local st = require("zeke").chat_state(); return vim.api.nvim_get_current_win() == st.iwin'))
      H.eq('i', c:mode(), 'ready to type')
      c:input('<Esc>')
      -- :Zeke chat again focuses the panel (from the transcript window too)
      c:lua('vim.api.nvim_set_current_win(require("zeke").chat_state().twin)')
      c:cmd('Zeke chat')
      H.eq(true, c:lua('local st = require("zeke").chat_state(); return vim.api.nvim_get_current_win() == st.iwin'))
      c:input('<Esc>')
      -- q in the transcript hides too
      c:lua('vim.api.nvim_set_current_win(require("zeke").chat_state().twin)')
      c:input('q')
      H.wait(function() return not state(c).open end, 3000, 'q in the transcript hides it')

      -- the split layout: a right vertical split with the input below it
      c:setup(cfg(tag, 'ok', { chat = { layout = 'split' } }))
      c:cmd('Zeke chat')
      c:input('<Esc>')
      local w = c:lua([[
        local st = require('zeke').chat_state()
        local tp, ip = vim.api.nvim_win_get_position(st.twin), vim.api.nvim_win_get_position(st.iwin)
        return { layout = st.layout, rel = vim.api.nvim_win_get_config(st.twin).relative, tcol = tp[2], icol = ip[2],
          below = ip[1] > tp[1], n = #vim.api.nvim_list_wins() }
      ]])
      H.eq('split', w.layout)
      H.eq('', w.rel, 'not a float')
      H.ok(w.tcol > 0 and w.tcol == w.icol and w.below, vim.inspect(w))
      H.eq(3, w.n)
      H.eq(before, state(c).lines, 'the same transcript')
      c:input('q')
      H.wait(function() return not state(c).open end, 3000, 'q hides the split')
      H.eq(1, c:lua('return #vim.api.nvim_list_wins()'))
      H.eq({}, c:errors())
    end,
  },
  {
    name = 'two Neovims continuing one session at once: both turns are kept, in one valid file',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-two')
      -- every answer takes 600 ms, so the two turns below overlap
      local c = H.child()
      c:setup(cfg(tag, 'delay/600/ok'))
      local dir = open_project(H, c)
      c:cmd('Zeke chat hello')
      local s1 = wait_done(H, c).session
      local c2 = H.child({ env = { XDG_STATE_HOME = c:state_dir() } })
      c2:setup(cfg(tag, 'delay/600/ok'))
      c2:cmd('edit ' .. vim.fn.fnameescape(dir .. '/a.py'))
      stub_ui(c2, 'hello')
      c2:cmd('Zeke chat resume')
      H.wait(function() return state(c2).session == s1 end, 5000, 'the session in the second Neovim')
      local id1 = c:lua('return require("zeke").chat_send("from one")')
      local id2 = c2:lua('return require("zeke").chat_send("from two")')
      local st1, st2 = wait_done(H, c, id1), wait_done(H, c2, id2)
      H.eq(s1, st1.session)
      H.eq(s1, st2.session)
      -- the session file holds the three turns; whichever saved second was told
      local files = vim.fn.glob(c:state_dir() .. '/zeke/chats/*/' .. s1 .. '.json', false, true)
      H.eq(1, #files, vim.inspect(files))
      local saved = vim.json.decode(table.concat(vim.fn.readfile(files[1]), '\n'))
      local users, answers = {}, 0
      for _, m in ipairs(saved.messages) do
        if m.role == 'user' then users[#users + 1] = m.content end
        if m.role == 'assistant' then answers = answers + 1 end
      end
      table.sort(users)
      H.eq({ 'from one', 'from two', 'hello' }, users)
      H.eq(3, answers)
      H.eq(3, saved.revision)
      local told = find(st1.lines, 'continued elsewhere meanwhile') or find(st2.lines, 'continued elsewhere meanwhile')
      H.ok(told, 'a notice: ' .. vim.inspect({ st1.lines, st2.lines }))
      -- the next turn (either Neovim) carries all three
      local id = c:lua('return require("zeke").chat_send("and now")')
      wait_done(H, c, id)
      local reqs = requests(tag)
      local last = messages_of(reqs[#reqs])
      for _, want in ipairs({ 'hello', 'from one', 'from two', 'and now' }) do
        H.ok(has_message(last, 'user', want), want .. ': ' .. vim.inspect(last))
      end
      H.eq({}, c:errors())
      H.eq({}, c2:errors())
    end,
  },
  {
    name = ':Zeke chat resume lists the sessions of the project and continues the chosen one',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-resume')
      local c = H.child()
      c:setup(cfg(tag))
      local dir = open_project(H, c)
      c:cmd('Zeke chat hello')
      local s1 = wait_done(H, c).session
      c:lua('require("zeke").chat_send("/new")')
      local id = c:lua('return require("zeke").chat_send("second topic")')
      local s2 = wait_done(H, c, id).session
      H.ok(s1 ~= s2, 'two sessions')

      -- another Neovim of the same project and state directory
      local c2 = H.child({ env = { XDG_STATE_HOME = c:state_dir() } })
      c2:setup(cfg(tag))
      c2:cmd('edit ' .. vim.fn.fnameescape(dir .. '/a.py'))
      stub_ui(c2, 'hello')
      c2:cmd('Zeke chat resume')
      local st = H.wait(function()
        local s = state(c2)
        return s.session == s1 and s.open and s
      end, 5000, 'the session to load')
      local pick = c2:lua('return _G.picks[1]')
      H.eq(2, #pick.labels, vim.inspect(pick))
      H.ok(pick.labels[1]:find('^second topic · %d+%-%d+%-%d+ %d+:%d+ · 1 turn · ') and pick.labels[1]:find(s2, 1, true),
        'newest first: ' .. vim.inspect(pick.labels))
      H.ok(pick.labels[2]:find('^hello · '), vim.inspect(pick.labels))
      H.ok(has(st.lines, '## You') and has(st.lines, 'hello'), vim.inspect(st.lines))
      H.ok(has(st.lines, '## fault · fault-model'), vim.inspect(st.lines))
      H.ok(has(st.lines, '    return a + b'), vim.inspect(st.lines))
      H.eq(nil, find(st.lines, 'second topic'), 'only the chosen session')
      -- it continues that conversation
      id = c2:lua('return require("zeke").chat_send("go on")')
      st = wait_done(H, c2, id)
      H.eq(s1, st.session)
      local reqs = requests(tag)
      local last = messages_of(reqs[#reqs])
      H.ok(has_message(last, 'user', 'hello') and has_message(last, 'user', 'go on'), vim.inspect(last))
      H.eq(false, has_message(last, 'user', 'second topic'))
      H.eq({}, c2:problems())
      H.eq({}, c2:errors())
    end,
  },
  {
    name = 'the agent asks before run_command: allow once runs it, deny sends the reason; resume shows tool lines',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-ask')
      local c = H.child()
      c:setup(cfg(tag, 'script/agent_command', { capabilities = { ['cmd.exec'] = 'prompt' } }))
      H.eq({}, c:problems())
      local dir = open_project(H, c)
      stub_ui(c, 'Allow once')
      c:cmd('Zeke chat run the command')
      local st = wait_done(H, c, nil, 20000)
      H.eq(nil, st.turn.error, vim.inspect(st.lines))
      H.eq({ { ask = st.answers[1].ask, choice = 'allow_once' } }, st.answers)
      local pick = c:lua('return _G.picks[1]')
      H.eq('zeke.ask', pick.kind)
      H.ok(pick.prompt:find('touch ran.marker && echo hello', 1, true), 'the prompt shows the command: ' .. pick.prompt)
      H.eq({ 'Allow once', 'Allow all (session)', 'Allow all (project)', 'Deny…' }, pick.labels)
      H.eq(1, vim.fn.filereadable(dir .. '/ran.marker'), 'the command ran in the project')
      local lines = st.lines
      H.ok(find(lines, '? run_command asks for cmd.exec in ' .. dir), vim.inspect(lines))
      H.ok(find(lines, '    ') and find(lines, 'touch ran.marker && echo hello'), 'every line of what')
      H.ok(has(lines, '→ Allow once'), vim.inspect(lines))
      local tool = find(lines, '▸ run_command')
      H.ok(tool and tool:find('^▸ run_command {"command": ?"touch ran.marker && echo hello"} — ok'), vim.inspect(lines))
      H.eq(nil, find(lines, 'running…'), 'the running line was updated in place')
      H.ok(has(lines, 'The command finished.'), vim.inspect(lines))
      H.eq('ok', select(2, next(st.turn.tools)).status)
      local reqs = requests(tag)
      H.eq(2, #reqs)
      H.ok(has_message(messages_of(reqs[2]), 'tool', 'hello'), 'the output goes to the model')

      -- deny, with a reason that goes to the model
      local tag2 = new_tag('chat-deny')
      c:setup(cfg(tag2, 'script/agent_command', { capabilities = { ['cmd.exec'] = 'prompt' } }))
      vim.fn.delete(dir .. '/ran.marker')
      stub_ui(c, 'Deny', 'not on my machine')
      c:lua('require("zeke").chat_send("/new")')
      local id = c:lua('return require("zeke").chat_send("run it again")')
      st = wait_done(H, c, id, 20000)
      H.eq('deny', st.answers[2].choice)
      H.eq('not on my machine', st.answers[2].reason)
      H.eq(0, vim.fn.filereadable(dir .. '/ran.marker'), 'nothing ran')
      H.ok(has(st.lines, '→ Denied: not on my machine'), vim.inspect(st.lines))
      local denied = select(2, next(st.turn.tools))
      H.eq('denied', denied.status)
      reqs = requests(tag2)
      H.ok(has_message(messages_of(reqs[2]), 'tool', 'denied by the user'), vim.inspect(messages_of(reqs[2])))
      H.ok(vim.inspect(c:audit()):find('not on my machine', 1, true), 'the reason is in the audit log')
      local session = st.session

      -- resumed, the tool calls are one line each
      c:lua('require("zeke").chat_send("/clear")')
      H.eq({ '' }, state(c).lines, '/clear empties the transcript')
      stub_ui(c, 'run it again')
      c:cmd('Zeke chat resume')
      st = H.wait(function()
        local s = state(c)
        return s.session == session and s
      end, 5000, 'the session to load')
      local line = find(st.lines, '▸ run_command')
      H.ok(line and line:find('— error: ') or line:find('— ok: '), vim.inspect(st.lines))
      H.ok(line:find('denied by the user', 1, true), line)
      H.ok(has(st.lines, 'The command finished.'))
      H.eq({}, c:errors())
    end,
  },
  {
    name = 'the agent\'s edit is a reviewed patch: the panel says so and steps aside; the turn goes on after Allow',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-edit')
      local c = H.child()
      c:setup(cfg(tag, 'script/agent_edit'))
      local dir = open_project(H, c, { ['calc.py'] = { 'def add(a, b):', '    return a - b' } })
      c:cmd('Zeke chat fix add in calc.py')
      local review = c:wait_review(20000)
      H.eq('chat', review.job)
      local st = state(c)
      H.eq(false, st.open, 'the float panel steps aside for the review')
      local lines = st.lines
      H.ok(find(lines, '▸ read_text_file {"path": "calc.py"} — ok'), vim.inspect(lines))
      H.ok(has(lines, '✎ proposed an edit to ' .. vim.fn.fnamemodify(dir .. '/calc.py', ':~:.') .. ' — review it (:Zeke review)'),
        vim.inspect(lines))
      H.ok(find(lines, '▸ edit_file {"path": "calc.py"') and find(lines, '— running…'), 'waiting for the review')
      H.eq({ 'def add(a, b):', '    return a - b' }, vim.fn.readfile(dir .. '/calc.py'), 'nothing written yet')
      c:cmd('Zeke allow')
      st = wait_done(H, c, nil, 20000)
      H.eq({ 'def add(a, b):', '    return a + b' }, vim.fn.readfile(dir .. '/calc.py'))
      H.ok(has(st.lines, 'I fixed add in calc.py.'), vim.inspect(st.lines))
      H.eq(nil, find(st.lines, 'running…'))
      H.ok(find(st.lines, '▸ edit_file') and find(st.lines, '— ok: The user approved the change'), vim.inspect(st.lines))
      H.eq(3, st.turn.usage.steps)
      c:cmd('Zeke chat')
      H.eq(true, state(c).open)
      H.eq({}, c:errors())
    end,
  },
  {
    name = '/explain, /fix and /test run on the buffer (and range) the chat was opened from; /model, /usage',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-slash')
      local c = H.child()
      c:setup(cfg(tag, 'ok', { routes = { explain = { 'fault' }, fix = { 'fault' } } }))
      open_project(H, c)
      local src = c:lua('return vim.api.nvim_get_current_buf()')
      c:cmd('2,2Zeke chat')
      c:input('<Esc>')
      H.ok(find(state(c).lines, 'goes with your next message as #selection'), vim.inspect(state(c).lines))
      H.eq(true, c:lua('return require("zeke").chat_send("/explain")'))
      local ex = H.wait(function()
        local s = c:lua('return require("zeke.ui").state()')
        return s and s.done and s
      end, 10000, 'the explain float')
      H.eq({ 1, 1 }, ex.range, 'the range the chat was opened with')
      H.eq(ANSWER, ex.text)
      H.eq(false, state(c).open, 'the float panel steps aside')
      c:cmd('close')
      H.eq(src, c:lua('return vim.api.nvim_get_current_buf()'), 'in the source buffer')
      -- /fix from the panel: a proposal of the source buffer, at its cursor
      c:lua('vim.api.nvim_win_set_cursor(0, { 4, 0 })')
      c:cmd('Zeke chat')
      c:input('<Esc>')
      H.eq(true, c:lua('return require("zeke").chat_send("/fix")'))
      local sent = c:lua('return require("zeke.diff").debug_state().last_params')
      H.eq(src, sent.buf, ':Zeke fix of the source buffer')
      H.eq(3, sent.row, 'at its cursor')
      H.eq(nil, sent.range, 'no range this time')
      H.wait(function() return find(c:problems(), 'fix failed') end, 10000, 'the fix to finish')
      c:cmd('Zeke chat')
      c:input('<Esc>')
      H.eq(true, c:lua('return require("zeke").chat_send("/test")'))
      local tsent = c:lua('return require("zeke.diff").debug_state().last_params')
      H.ok(tsent.id ~= sent.id and tsent.buf == src and tsent.target_buf, ':Zeke test of the source buffer: ' .. vim.inspect(tsent))
      c:cmd('Zeke stop')
      -- /edit INSTRUCTION: :Zeke edit of the source buffer with that instruction
      c:cmd('Zeke chat')
      c:input('<Esc>')
      H.eq(true, c:lua('return require("zeke").chat_send("/edit use a loop")'))
      local esent = c:lua('return require("zeke.diff").debug_state().last_params')
      H.eq(src, esent.buf, ':Zeke edit of the source buffer')
      H.eq('use a loop', esent.instruction)
      c:cmd('Zeke stop')
      -- /model: the picker of :Zeke model; /usage: its float
      c:cmd('Zeke chat')
      c:input('<Esc>')
      stub_ui(c, nil)
      H.eq(true, c:lua('return require("zeke").chat_send("/model")'))
      H.eq('Zeke model', c:lua('return _G.picks[1].prompt'))
      H.eq(true, c:lua('return require("zeke").chat_send("/usage")'))
      H.eq('zeke-usage', c:lua('return vim.bo.filetype'))
      c:input('q')
      H.eq({}, c:errors())
    end,
  },
  {
    name = 'an ask event (simulated) shows every line of what; the choice goes back as answer',
    needs = { 'ZEKE_BIN' },
    run = function(H)
      local c = H.child()
      c:setup(H.fake('x'))
      c:cmd('enew')
      c:cmd('Zeke chat')
      c:input('<Esc>')
      stub_ui(c, 'Allow all (project)')
      c:lua([[
        _G.sent = {}
        local rpc = require('zeke.rpc')
        rpc.notify = function(method, params) table.insert(_G.sent, { method, params }) return true end
        rpc.dispatch('ask', { ask = 41, capability = 'cmd.exec', tool = 'run_command',
          what = 'run `make clean\nmake`\nin /tmp/p', root = '/tmp/p' })
      ]])
      local sent = H.wait(function()
        local s = c:lua('return _G.sent')
        return #s > 0 and s
      end, 3000, 'an answer')
      H.eq({ { 'answer', { ask = 41, choice = 'allow_all', scope = 'project' } } }, sent)
      local lines = state(c).lines
      H.ok(has(lines, '? run_command asks for cmd.exec in /tmp/p:'), vim.inspect(lines))
      H.ok(has(lines, '    run `make clean') and has(lines, '    make`') and has(lines, '    in /tmp/p'), vim.inspect(lines))
      local pick = c:lua('return _G.picks[1]')
      H.ok(pick.prompt:find('make clean\nmake`\nin /tmp/p', 1, true), pick.prompt)
      -- two at once: one after the other; a dismissed one is a denial
      stub_ui(c, nil)
      c:lua([[
        local rpc = require('zeke.rpc')
        rpc.dispatch('ask', { ask = 42, capability = 'net.http', tool = 'fetch', what = 'GET https://x', root = '/r' })
        rpc.dispatch('ask', { ask = 43, capability = 'cmd.exec', tool = 'run_command', what = 'ls', root = '/r' })
      ]])
      sent = H.wait(function()
        local s = c:lua('return _G.sent')
        return #s == 3 and s
      end, 3000, 'two more answers')
      H.eq({ 'answer', { ask = 42, choice = 'deny', reason = 'dismissed' } }, sent[2])
      H.eq({ 'answer', { ask = 43, choice = 'deny', reason = 'dismissed' } }, sent[3])
      H.eq({}, c:errors())
    end,
  },
  {
    name = '#file: outside the root is refused with a message; inside it is attached',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-file')
      local c = H.child()
      c:setup(cfg(tag))
      local dir = open_project(H, c, { ['src/b.py'] = { 'B = 2' } })
      local outside = vim.fn.fnamemodify(dir, ':h') .. '/outside'
      vim.fn.writefile({ 'secret' }, outside)
      vim.uv.fs_symlink(outside, dir .. '/link')
      c:cmd('Zeke chat')
      c:input('<Esc>')
      local send = 'local id, err = require("zeke").chat_send(...); return { id or false, err }'
      local r = c:lua(send, 'look at #file:../outside')
      H.eq(false, r[1])
      H.ok(r[2]:find('#file:../outside is outside the project root ' .. dir .. '; refused', 1, true), tostring(r[2]))
      local note = find(c:problems(), 'outside the project root')
      H.ok(note, vim.inspect(c:notes()))
      H.ok(find(state(c).lines, '⚠ #file:../outside is outside the project root'), vim.inspect(state(c).lines))
      r = c:lua(send, 'and #file:link')
      H.eq(false, r[1], 'a symlink out of the root is refused too')
      r = c:lua(send, 'and #file:' .. outside)
      H.eq(false, r[1], 'an absolute path outside too')
      H.eq(0, #requests(tag), 'nothing was sent')
      H.eq(nil, state(c).turn, 'no turn started')
      -- typed in the input: the text stays there when refused
      c:input('i#file:../outside<C-s><Esc>')
      H.wait(function() return #vim.tbl_filter(function(l) return l:find('refused', 1, true) ~= nil end, state(c).lines) >= 4 end,
        3000, 'the refusal')
      H.eq({ '#file:../outside' }, state(c).input, 'kept in the input')

      local id = c:lua('return require("zeke").chat_send("read #file:src/b.py, please")')
      local st = wait_done(H, c, id)
      H.eq('#file:src/b.py', st.turn.context.items[1].label)
      H.ok(has_message(messages_of(requests(tag)[1]), 'user', '### #file:src/b.py\n```\nB = 2\n```'))
      vim.fn.delete(outside)
    end,
  },
  {
    name = '/new starts a new session; /clear, unknown commands; completion of / and #',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-new')
      local c = H.child()
      c:setup(cfg(tag))
      local dir = open_project(H, c, { ['src/b.py'] = { 'B = 2' }, ['src/c.py'] = { 'C = 3' } })
      c:cmd('Zeke chat hello')
      local s1 = wait_done(H, c).session
      H.eq(true, c:lua('return require("zeke").chat_send("/new")'))
      H.eq(nil, state(c).session, 'forgotten')
      H.ok(has(state(c).lines, '── new conversation ──'))
      local id = c:lua('return require("zeke").chat_send("another thing")')
      local st = wait_done(H, c, id)
      H.ok(st.session and st.session ~= s1, 'a new session id: ' .. vim.inspect({ s1, st.session }))
      H.eq({ s1, st.session }, st.sessions)
      local reqs = requests(tag)
      H.eq(false, has_message(messages_of(reqs[2]), 'user', 'hello'), 'the new session does not carry the old one')
      H.ok(has(st.lines, 'hello'), '/new keeps the transcript')

      H.eq(nil, c:lua('return require("zeke").chat_send("/nope")'))
      H.ok(find(state(c).lines, '⚠ unknown command /nope (one of /explain /fix /test /edit /model /new /clear'), vim.inspect(state(c).lines))
      H.eq(true, c:lua('return require("zeke").chat_send("/clear")'))
      st = state(c)
      H.eq({ '' }, st.lines)
      H.eq(nil, st.session)
      H.eq(2, #requests(tag), 'commands are not sent to the model')

      -- completion (the input's omnifunc)
      local words = function(base)
        return c:lua('return vim.tbl_map(function(i) return i.word end, require("zeke.chat").complete(0, ...))', base)
      end
      H.eq({ '/new' }, words('/ne'))
      H.eq({ '#file:' }, words('#fi'))
      H.eq({ '#buffer' }, words('#b'))
      H.eq({ '#file:src/' }, words('#file:sr'))
      H.eq({ '#file:src/b.py', '#file:src/c.py' }, words('#file:src/'))
      H.eq({}, words('#file:../'), 'nothing outside the root')
      H.eq("v:lua.require'zeke.chat'.complete", c:lua('return vim.bo[require("zeke").chat_state().ibuf].omnifunc'))
      local start = c:lua([[
        local st = require('zeke').chat_state()
        vim.api.nvim_set_current_win(st.iwin)
        vim.api.nvim_buf_set_lines(st.ibuf, 0, -1, false, { 'see #file:src/b' })
        vim.api.nvim_win_set_cursor(st.iwin, { 1, 15 })
        local a = require('zeke.chat').complete(1, '')
        vim.api.nvim_buf_set_lines(st.ibuf, 0, -1, false, { '/ne' })
        vim.api.nvim_win_set_cursor(st.iwin, { 1, 3 })
        return { a, require('zeke.chat').complete(1, '') }
      ]])
      H.eq({ 4, 0 }, start)
      -- typed: <Tab> completes in the input
      c:lua('vim.api.nvim_buf_set_lines(require("zeke").chat_state().ibuf, 0, -1, false, { "" })')
      c:input('i#git:d<Tab>')
      H.wait(function() return state(c).input[1] == '#git:diff' end, 3000, '<Tab> completes #git:diff')
      c:input('<C-y><Esc>')
      H.ok(dir ~= nil)
      H.eq({}, c:errors())
    end,
  },
  {
    name = '/compact replaces the older turns by a summary; the next turn goes on from it',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-compact')
      local c = H.child()
      c:setup(cfg(tag))
      open_project(H, c)
      c:cmd('Zeke chat')
      c:input('<Esc>')
      H.eq(nil, c:lua('return require("zeke").chat_send("/compact")'), 'no conversation yet')
      H.ok(find(state(c).lines, '⚠ /compact: no conversation yet'), vim.inspect(state(c).lines))
      local session
      for i = 1, 3 do
        -- a long first question: a summary must save something, or nothing is changed
        local q = 'question ' .. i .. (i == 1 and (' ' .. string.rep('context ', 400)) or '')
        local id = c:lua('return require("zeke").chat_send(...)', q)
        session = wait_done(H, c, id).session
      end
      H.eq(true, c:lua('return require("zeke").chat_send("/compact")'))
      local st = H.wait(function()
        local s = state(c)
        return s.turn.kind == 'compact' and s.turn.done and s
      end, 10000, 'the compaction')
      H.eq(nil, st.turn.error, vim.inspect(st.lines))
      local line = find(st.lines, '── compacted: ~')
      H.ok(line and line:match('^── compacted: ~%d+ → ~%d+ tokens; the older turns are a summary now ──$'), vim.inspect(st.lines))
      H.ok(st.turn.usage.before_tokens > 0 and st.turn.usage.after_tokens > 0, vim.inspect(st.turn.usage))
      H.eq(session, st.session, 'the same session')
      local id = c:lua('return require("zeke").chat_send("question 4")')
      wait_done(H, c, id)
      local reqs = requests(tag)
      H.eq(5, #reqs, 'three turns, the summary, the fourth turn')
      local last = messages_of(reqs[5])
      H.ok(has_message(last, 'user', 'Summary of the earlier conversation:'), vim.inspect(last))
      H.eq(false, has_message(last, 'user', 'question 1'), 'the first turn is summarized')
      H.ok(has_message(last, 'user', 'question 2') and has_message(last, 'user', 'question 3'), 'the last two stay')
      H.eq({}, c:errors())
    end,
  },
  {
    name = 'a real model (llama-server) answers in the panel; the second message continues the session; /explain',
    needs = { 'ZEKE_BIN', 'ZEKE_TEST_LLAMA_URL' },
    run = function(H)
      local c = H.child()
      c:setup({
        providers = { llama = { kind = 'llamacpp', url = vim.env.ZEKE_TEST_LLAMA_URL } },
        routes = { chat = { 'llama' }, explain = { 'llama' } },
        explain = { max_tokens = 48 },
        completion = { provider = 'llama', enabled = false },
        chat = { max_tokens = 48, max_steps = 2 },
      })
      open_project(H, c)
      c:cmd('Zeke chat Say hello in one short sentence.')
      local st = wait_done(H, c, nil, 120000)
      H.eq(nil, st.turn.error, vim.inspect(st.lines))
      H.ok(find(st.lines, '## llama'), 'headed with the provider: ' .. vim.inspect(st.lines))
      H.ok(st.turn.usage.input_tokens > 0, vim.inspect(st.turn.usage))
      local s1 = st.session
      local id = c:lua('return require("zeke").chat_send("And goodbye?")')
      st = wait_done(H, c, id, 120000)
      H.eq(nil, st.turn.error, vim.inspect(st.lines))
      H.eq(s1, st.session)
      H.eq(2, count(st.lines, '## You'))
      -- /explain from the panel: the real model explains line 2 of the source buffer
      c:cmd('Zeke chat')
      c:input('<Esc>')
      H.eq(true, c:lua('return require("zeke").chat_send("/explain")'))
      local ex = H.wait(function()
        local s = c:lua('return require("zeke.ui").state()')
        return s and s.done and s
      end, 120000, 'the explain float')
      H.ok(vim.trim(ex.text or '') ~= '', 'an explanation: ' .. vim.inspect(ex))
      H.eq(nil, ex.error, vim.inspect(ex))
      H.eq({}, c:errors())
    end,
  },
  {
    name = 'chat.highlight: tree-sitter markdown by default, Vim syntax or none when asked',
    run = function(H)
      for _, case in ipairs({ { nil, true, '' }, { 'syntax', false, 'markdown' }, { 'none', false, '' } }) do
        local c = H.child()
        c:setup({ chat = { highlight = case[1] }, completion = { enabled = false } })
        local got = c:lua([[
          require('zeke.chat').open({ focus = true })
          local b = vim.fn.bufnr('zeke://chat')
          return { ts = vim.treesitter.highlighter.active[b] ~= nil, syntax = vim.bo[b].syntax }
        ]])
        H.eq({ ts = case[2], syntax = case[3] }, got, vim.inspect(case[1]))
        c:stop()
      end
    end,
  },
  {
    name = 'config: chat.layout and the chat limits are checked',
    run = function(H)
      local c = H.child()
      c:setup({ chat = { layout = 'tabs', highlight = 'rainbow', max_steps = 0, max_tokens = 2048, max_turn_tokens = 5, timeout_ms = 'x', nope = 1 } })
      local p = table.concat(c:problems(), '\n')
      for _, want in ipairs({
        'chat.layout must be one of "float", "split" (got "tabs")',
        'chat.highlight must be one of "treesitter", "syntax", "none" (got "rainbow")',
        'chat.max_steps must be an integer from 1 to 100 (got 0)',
        'chat.timeout_ms must be an integer from 1000 to 7200000 (got "x")',
        'chat.max_turn_tokens must be an integer from 100 to 100000000 (got 5)',
        'unknown config key "chat.nope"',
      }) do
        H.ok(p:find(want, 1, true), ('message mentions %q: %s'):format(want, p))
      end
      H.eq({ layout = 'float', highlight = 'treesitter', max_steps = 12, max_tokens = 2048, max_turn_tokens = 200000, timeout_ms = 600000 },
        c:lua('return require("zeke.config").get().chat'), 'the defaults for what was invalid')
    end,
  },
  {
    name = ':Zeke stop stops the turn; the meter warns at 80 % of the context window; errors show in the transcript',
    needs = NEEDS,
    run = function(H)
      local tag = new_tag('chat-stop')
      local c = H.child()
      c:setup(cfg(tag, 'hang'))
      open_project(H, c)
      c:cmd('Zeke chat hello')
      H.wait(function() return #requests(tag) == 1 end, 5000, 'the request')
      -- a chat_done as the backend sends it, for the turn in flight: the meter is highlighted
      local id = state(c).turn.id
      local session = H.wait(function() return state(c).session end, 5000, 'the session id')
      c:lua([[
        local id, session = ...
        require('zeke.rpc').dispatch('chat_delta', { id = id, session = session, delta = '```lua\nlocal x',
          restart = false, provider = 'p', model = 'm' })
      ]], id, session)
      H.wait(function() return find(state(c).lines, 'local x') end, 3000, 'the delta')
      c:cmd('Zeke stop')
      local st = state(c)
      H.eq(true, st.turn.done)
      H.eq(true, st.turn.stopped)
      H.eq('[stopped]', st.lines[#st.lines])
      H.eq('```', st.lines[#st.lines - 1], 'the open code block is closed')
      H.eq(1, c:lua('return #vim.api.nvim_list_wins()') - 2, 'the panel stays')

      c:setup(cfg(tag, 'ok'))
      local id2 = c:lua('return require("zeke").chat_send("again")')
      H.eq(false, wait_done(H, c, id2).turn.meter_high, 'low: 5 of 8192')
      -- a chat_done over 80 % for a turn in flight (as the backend would send it)
      c:setup(cfg(tag, 'hang'))
      local id4 = c:lua('return require("zeke").chat_send("long")')
      c:lua([[
        local id, session = ...
        require('zeke.rpc').dispatch('chat_done', { id = id, session = session, provider = 'p', model = 'm',
          input_tokens = 7000, output_tokens = 10, context_window = 8192, cost_usd = 0.25, steps = 3 })
      ]], id4, session)
      st = state(c)
      H.eq(true, st.turn.meter_high, vim.inspect({ id4, st }))
      H.eq('▪ 7000 / 8192 tokens (85 %) · 10 out · $0.25 · 3 steps', st.lines[#st.lines])
      local hl = c:lua([[
        local st = require('zeke').chat_state()
        local n = vim.api.nvim_buf_line_count(st.tbuf)
        local m = vim.api.nvim_buf_get_extmarks(st.tbuf, require('zeke.chat').ns, { n - 1, 0 }, { n - 1, -1 }, { details = true })
        return m[1] and m[1][4].hl_group
      ]])
      H.eq('ZekeChatMeterHigh', hl)
      c:cmd('Zeke stop')

      -- an error of the turn shows in the transcript
      c:setup(cfg(tag, 'status/401'))
      local id5 = c:lua('return require("zeke").chat_send("fail")')
      st = H.wait(function()
        local s = state(c)
        return s.turn.id == id5 and s.turn.done and s
      end, 10000, 'the error')
      H.ok(st.turn.error, 'an error')
      H.ok(st.lines[#st.lines]:find('^⚠ zeke: chat'), vim.inspect(st.lines))
      H.eq({}, c:errors())
    end,
  },
}
