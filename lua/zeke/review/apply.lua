-- lua/zeke/review/apply.lua: owns carrying out an allowed proposal: asking the backend for the
-- edits of the accepted hunks (`apply`, rebased by it when the buffer moved on), making them with
-- nvim_buf_set_text as ONE undo step, and reporting the outcome (`resolve`). A proposal that names
-- only a file (`buf` 0/nil, `path` set) goes to the loaded buffer showing that path, else to the
-- file loaded into a hidden buffer that is written and unloaded again.
-- Invariants: called only after the user (or a policy rule) allowed; a patch is applied whole or
-- not at all, at the `changedtick` the backend computed the edits for; a buffer is written only
-- when it was loaded here for a file no buffer showed.
local rpc = require('zeke.rpc')
local store = require('zeke.review.store')

local M = {}

local api = vim.api

local function line_len(buf, row) return #(api.nvim_buf_get_lines(buf, row, row + 1, true)[1]) end

--- Applies one line edit (rows start..end, end exclusive, become `lines`) with nvim_buf_set_text.
local function apply_edit(buf, e)
  local s, t, lines = e.start, e['end'], e.lines
  local n = api.nvim_buf_line_count(buf)
  local empty = n == 1 and line_len(buf, 0) == 0
  if #lines == 0 then
    if s == t then return end
    if t < n then
      api.nvim_buf_set_text(buf, s, 0, t, 0, {})
    elseif s > 0 then -- up to the last line: also remove the line break before it
      api.nvim_buf_set_text(buf, s - 1, line_len(buf, s - 1), n - 1, line_len(buf, n - 1), {})
    else -- the whole buffer
      api.nvim_buf_set_text(buf, 0, 0, n - 1, line_len(buf, n - 1), { '' })
    end
  elseif s == t then -- insertion before row s
    if empty then
      api.nvim_buf_set_text(buf, 0, 0, 0, 0, lines)
    elseif s < n then
      local l = vim.list_extend(vim.deepcopy(lines), { '' })
      api.nvim_buf_set_text(buf, s, 0, s, 0, l)
    else -- after the last line
      api.nvim_buf_set_text(buf, n - 1, line_len(buf, n - 1), n - 1, line_len(buf, n - 1), { '', unpack(lines) })
    end
  else
    api.nvim_buf_set_text(buf, s, 0, t - 1, line_len(buf, t - 1), lines)
  end
end

--- Applies `edits` (bottom-up) to `buf` as one undo step. Returns true, or false and why (the
--- buffer is then unchanged).
function M.write_edits(buf, edits)
  local n = api.nvim_buf_line_count(buf)
  table.sort(edits, function(a, b)
    if a.start ~= b.start then return a.start > b.start end
    return a['end'] > b['end']
  end)
  local floor = math.huge
  for _, e in ipairs(edits) do
    if type(e.start) ~= 'number' or type(e['end']) ~= 'number' or e.start < 0 or e['end'] < e.start
      or e['end'] > n or e['end'] > floor then
      return false, ('the backend sent an edit outside the buffer (%s)'):format(vim.inspect(e))
    end
    floor = e.start
    e.lines = type(e.lines) == 'table' and e.lines or {}
  end
  local ok, err = pcall(api.nvim_buf_call, buf, function()
    vim.go.undolevels = vim.go.undolevels -- close the undo block: the patch is its own step
    local tick0 = api.nvim_buf_get_changedtick(buf)
    local ok2, err2 = pcall(function()
      for i, e in ipairs(edits) do
        if i > 1 then pcall(vim.cmd, 'silent undojoin') end
        apply_edit(buf, e)
      end
    end)
    if not ok2 then
      if api.nvim_buf_get_changedtick(buf) ~= tick0 then pcall(vim.cmd, 'silent undo') end
      error(err2, 0)
    end
    vim.go.undolevels = vim.go.undolevels
  end)
  if not ok then return false, tostring(err) end
  return true
end

--- The accepted hunks as 0-based indices, as everything in the protocol.
---@param accepted boolean[]
---@return integer[]
function M.indices(accepted)
  local out = {}
  for i, a in ipairs(accepted) do
    if a then out[#out + 1] = i - 1 end
  end
  return out
end

---@param accepted boolean[]
---@return boolean
function M.any(accepted)
  for _, a in ipairs(accepted) do
    if a then return true end
  end
  return false
end

--- Records the outcome of `p` with the backend (`resolve`); `extra`: scope, reason, applied, error.
function M.resolve(p, outcome, extra)
  local params = vim.tbl_extend('force', { patch = p.patch, outcome = outcome, applied = {} }, extra or {})
  if next(params.applied) == nil then params.applied = {} end
  store.last.outcome = params
  local _, err = rpc.request('resolve', params)
  if err then store.notify('zeke: could not record the outcome: ' .. tostring(err), vim.log.levels.WARN) end
end

--- Asks the backend for the edits of `p`'s accepted hunks against `buf` and makes them.
local function edit(p, buf)
  local res, err
  for _ = 1, 3 do
    local tick = api.nvim_buf_get_changedtick(buf)
    -- `buf`/`path` tell the backend where a proposal naming only a file is being applied.
    res, err = rpc.request('apply', { patch = p.patch, accepted = p.accepted, tick = tick, buf = buf, path = p.path })
    if not res then return false, err end
    if res.tick == nil or res.tick == api.nvim_buf_get_changedtick(buf) then break end
    res, err = nil, 'the buffer kept changing while applying'
    vim.wait(20)
  end
  if not res then return false, err end
  local ok, werr = M.write_edits(buf, res.edits or {})
  if not ok then return false, werr end
  p.rebased = res.rebased
  return true
end

--- A file no buffer shows: load it into a hidden buffer, apply, write, then unload it again (wipe
--- it when it was created here). A file that does not exist yet starts empty.
local function edit_file(p)
  local path = vim.fn.fnamemodify(p.path, ':p')
  local existed = vim.fn.bufexists(path) == 1
  local buf = vim.fn.bufadd(path)
  local was_loaded = api.nvim_buf_is_loaded(buf)
  local ok, err = pcall(vim.fn.bufload, buf)
  if ok then
    -- a buffer unloaded earlier lost the backend's mirror with it: attach afresh
    if rpc.is_attached(buf) then rpc.detach(buf) end
    rpc.attach(buf)
    ok, err = edit(p, buf)
  end
  if ok then
    vim.fn.mkdir(vim.fn.fnamemodify(path, ':h'), 'p')
    local wok, werr = pcall(api.nvim_buf_call, buf, function() vim.cmd('silent write') end)
    if wok then
      p.written = path
    else
      ok, err = false, ('could not write %s: %s'):format(store.short(path), (tostring(werr):gsub('^Vim%(%a+%):', '')))
    end
  end
  if api.nvim_buf_is_valid(buf) and not was_loaded then
    if existed then
      pcall(vim.cmd, 'silent! bunload! ' .. buf)
    else
      pcall(api.nvim_buf_delete, buf, { force = true })
    end
  end
  return ok, err
end

--- Applies `p`'s accepted hunks: to its buffer, or for a proposal naming only a file, to the
--- loaded buffer showing it, else to the file (written). Returns true, or false and a message
--- (nothing applied).
---@return boolean ok, string|nil err
function M.run(p)
  local buf = store.buf_of(p)
  if buf then
    if not api.nvim_buf_is_valid(buf) then return false, 'its buffer was closed' end
    if not api.nvim_buf_is_loaded(buf) then vim.fn.bufload(buf) end
  else
    if not p.path or p.path == '' then return false, 'the proposal names no buffer and no file' end
    buf = store.loaded_buf(p.path)
    if not buf then return edit_file(p) end
    rpc.attach(buf)
  end
  local ok, err = edit(p, buf)
  if not ok then return false, err end
  if buf ~= p.src then vim.bo[buf].buflisted = true end -- a test file: in :ls, for the user to save
  return true
end

--- How to ask again, for the jobs that have a command.
local function rerun_hint(p)
  if p.job == 'fix' or p.job == 'test' or p.job == 'edit' then return ('; run :Zeke %s again'):format(p.job) end
  return ''
end

--- Applies `p` (see `run`) and reports it: `resolve` with `outcome` (and `extra`) plus a message
--- (`how`: what else happened), or on failure `failed` and an error. Returns true when applied.
---@return boolean
function M.approve(p, outcome, extra, how)
  local ok, err = M.run(p)
  if not ok then
    err = tostring(err or 'unknown error')
    store.notify(('zeke: the %s patch for %s was not applied: %s. The %s is unchanged%s.')
      :format(p.job, store.short(p.path), err, store.buf_of(p) and 'buffer' or 'file', rerun_hint(p)),
      vim.log.levels.ERROR)
    M.resolve(p, 'failed', { error = err })
    return false
  end
  M.resolve(p, outcome, vim.tbl_extend('force', extra or {}, { applied = M.indices(p.accepted) }))
  local n = #M.indices(p.accepted)
  local msg = ('zeke: %s: applied %d of %d hunk%s to %s%s %s'):format(p.job, n, #p.hunks,
    #p.hunks == 1 and '' or 's', store.short(p.path), p.rebased and ' (rebased onto your edits)' or '',
    p.written and '(written: it was not open)' or '(not saved; u undoes it)')
  if how then msg = msg .. '; ' .. how end
  store.notify(msg)
  return true
end

return M
