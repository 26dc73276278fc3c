-- lua/zeke/review/init.lua: owns the one review every source of proposed edits goes through
-- (`:Zeke fix`, `:Zeke test`, the chat agent's `write_file` / `edit_file`): turning a
-- `patch`-shaped event into a proposal (`proposal`), taking it in (`propose`: applied at once when
-- a policy rule allowed it, else made the pending one of its buffer or file, previewed and shown
-- in the review window), and dropping proposals when their buffer is wiped or the backend restarts.
-- Invariants: nothing is applied before an Allow (the user's or a policy rule's); at most one
-- pending proposal per buffer/file (a new one supersedes the old, which is resolved `deny`).
local rpc = require('zeke.rpc')
local store = require('zeke.review.store')
local apply = require('zeke.review.apply')
local preview = require('zeke.review.preview')
local window = require('zeke.review.window')

local M = {}

local api = vim.api

---@class zeke.Proposal
---@field patch any backend id for apply/resolve
---@field id integer|nil request id
---@field job string "fix" | "test" | another source's name
---@field buf integer|nil buffer the hunks apply to (nil: the file at `path`)
---@field key integer|string where it is pending (see store.key)
---@field src integer|nil buffer the command ran in
---@field path string
---@field tick integer|nil
---@field hunks {start: integer, old: string[], new: string[]}[]
---@field accepted boolean[]
---@field provider string|nil
---@field model string|nil
---@field decision string|nil
---@field rule string|nil
---@field note string|nil
---@field win integer|nil window the command ran in

--- A proposal from a `patch` event ({patch, id?, job, buf?, path?, tick?, hunks, provider?,
--- model?, decision?, rule?, note?}, see doc/rpc.md); `origin` (the fix/test request, if any)
--- names the buffers: {job, src, target}. `buf` 0/nil with a `path`: a proposal for that file.
---@param ev table
---@param origin {job: string, src: integer, target: integer}|nil
---@return zeke.Proposal
function M.proposal(ev, origin)
  origin = origin or {}
  local hunks = type(ev.hunks) == 'table' and ev.hunks or {}
  for _, h in ipairs(hunks) do
    h.old, h.new = h.old or {}, h.new or {}
  end
  local accepted = {}
  for i = 1, #hunks do accepted[i] = true end
  local path = type(ev.path) == 'string' and ev.path or ''
  local buf = ev.buf
  if (buf == nil or buf == 0) and path == '' then buf = origin.target end
  if buf == 0 then buf = nil end
  local p = {
    patch = ev.patch, id = ev.id, job = ev.job or origin.job or 'fix', buf = buf, src = origin.src or ev.src or buf,
    path = path, tick = ev.tick, hunks = hunks, accepted = accepted, provider = ev.provider, model = ev.model,
    decision = ev.decision, rule = ev.rule, note = ev.note, win = nil,
  }
  if p.path == '' and p.buf and api.nvim_buf_is_valid(p.buf) then p.path = api.nvim_buf_get_name(p.buf) end
  p.key = store.key(p)
  return p
end

--- Takes proposal `p` (see `proposal`) in: applies it at once when a policy rule allowed it
--- (`decision = "allow"`), else makes it the pending one of its buffer/file and opens the review
--- (focused unless the user is typing; a `note` is shown in it).
---@param p zeke.Proposal
function M.propose(p)
  if #p.hunks == 0 then
    apply.resolve(p, 'failed', { error = 'empty patch' })
    store.notify(('zeke: %s: the model proposed no change'):format(p.job), vim.log.levels.WARN)
    return
  end
  local home = p.src or store.buf_of(p)
  for _, w in ipairs(api.nvim_list_wins()) do
    if api.nvim_win_get_buf(w) == home then p.win = w break end
  end
  if api.nvim_get_current_buf() == home then p.win = api.nvim_get_current_win() end
  if p.decision == 'allow' then
    apply.approve(p, 'allow_rule', nil, 'allowed without review by ' .. tostring(p.rule or 'a policy rule'))
    return
  end
  local old = store.get(p.key)
  if old then
    apply.resolve(old, 'deny', { reason = 'superseded' })
    window.forget(old)
  end
  store.put(p)
  store.watch(p.src)
  store.watch(store.buf_of(p))
  preview.show(p)
  local mode = api.nvim_get_mode().mode
  window.open(p, not mode:find('^[iRct]'))
end

-- A wiped buffer takes the proposals for it, or started from it, with it (the backend is told,
-- when it runs: a wipe never starts it).
store.on_wipe(function(buf)
  for _, p in ipairs(store.list()) do
    if p.buf == buf or p.src == buf then
      store.remove(p)
      if p.buf ~= buf then preview.clear(p) end
      if window.shows(p) then window.close_soon() end
      if rpc.is_running() then apply.resolve(p, 'deny', { reason = 'buffer closed' }) end
    end
  end
end)

--- The backend exited or restarted: it forgot its pending patches.
function M.reset()
  local had = store.reset()
  for _, p in ipairs(had) do preview.clear(p) end
  window.close()
  if #had > 0 then
    store.notify('zeke: the backend restarted; the pending proposal is gone: run :Zeke fix / :Zeke test again',
      vim.log.levels.WARN)
  end
end

return M
