-- lua/zeke/review/store.lua: owns the state the review keeps per buffer, shared by every source of
-- proposals (`:Zeke fix`, `:Zeke test`, the chat agent): the pending proposals (at most one
-- per buffer, or per file for a proposal that names only a path), the denial reasons to send with
-- the next `:Zeke fix` of a buffer, the last params sent and outcome reported (tests, :Zeke
-- status), and forgetting a buffer's share of it on `BufWipeout` (modules keeping more per buffer
-- subscribe with `on_wipe`). Also the small helpers they share (project root, short names).
-- Invariants: a wiped buffer leaves nothing behind here; nothing here talks to the backend.
local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

local pending = {} ---@type table<integer|string, zeke.Proposal> by `M.key(p)`
local reasons = {} ---@type table<integer, string> denial reason for the next fix, by source buffer
local watched = {} ---@type table<integer, true> buffers with our BufWipeout autocmd
local listeners = {} ---@type fun(buf: integer)[]

M.last = { params = nil, outcome = nil } -- for tests and :Zeke status

local group = api.nvim_create_augroup('zeke.review', { clear = true })

function M.notify(msg, level) vim.notify(msg, level or vim.log.levels.INFO, { title = 'zeke' }) end

---@return string
function M.short(path)
  if not path or path == '' then return '[No Name]' end
  return vim.fn.fnamemodify(path, ':~:.')
end

--- The project root of a buffer or a path (the directory holding `.git`, else the cwd).
---@param where integer|string
---@return string
function M.root(where)
  local ok, root = pcall(vim.fs.root, where, { '.git' })
  if ok and root then return root end
  return uv.cwd()
end

--- `path` as one spelling: absolute, normalized, symlinks resolved when it exists.
---@param path string
---@return string
function M.norm(path)
  local full = vim.fs.normalize(vim.fn.fnamemodify(path, ':p'))
  return uv.fs_realpath(full) or full
end

--- A proposal's buffer when it names one (0 or nil: it names only a path).
---@return integer|nil
function M.buf_of(p)
  if type(p.buf) == 'number' and p.buf ~= 0 then return p.buf end
  return nil
end

---@param path string
---@return string
function M.file_key(path) return 'file:' .. M.norm(path) end

--- Where a proposal is pending: its buffer, or `file:<path>` for one that names only a path.
---@return integer|string
function M.key(p) return M.buf_of(p) or M.file_key(p.path or '') end

--- The loaded (normal) buffer showing `path`, or nil.
---@param path string
---@return integer|nil
function M.loaded_buf(path)
  if not path or path == '' then return nil end
  local want = M.norm(path)
  for _, b in ipairs(api.nvim_list_bufs()) do
    local name = api.nvim_buf_get_name(b)
    if name ~= '' and api.nvim_buf_is_loaded(b) and vim.bo[b].buftype == '' and M.norm(name) == want then
      return b
    end
  end
  return nil
end

-- Pending proposals ---------------------------------------------------------------------------

---@return zeke.Proposal|nil
function M.get(key)
  if key == nil then return nil end
  return pending[key]
end

--- The proposal pending for `buf`: for the buffer itself, or for the file it shows.
---@return zeke.Proposal|nil
function M.for_buf(buf)
  if pending[buf] then return pending[buf] end
  local name = api.nvim_buf_is_valid(buf) and api.nvim_buf_get_name(buf) or ''
  if name ~= '' then return pending[M.file_key(name)] end
  return nil
end

--- Makes `p` the pending proposal of its buffer/file (`p.key`).
function M.put(p) pending[p.key] = p end

function M.remove(p)
  if pending[p.key] == p then pending[p.key] = nil end
end

---@return zeke.Proposal[]
function M.list()
  local out = {}
  for _, p in pairs(pending) do out[#out + 1] = p end
  return out
end

---@return (integer|string)[]
function M.keys() return vim.tbl_keys(pending) end

--- Forgets every pending proposal (the backend restarted). Returns the ones it had.
---@return zeke.Proposal[]
function M.reset()
  local had = M.list()
  pending = {}
  return had
end

-- Denial reasons ------------------------------------------------------------------------------

---@param buf integer
---@param reason string
function M.set_reason(buf, reason)
  reasons[buf] = reason
  M.watch(buf)
end

--- The reason remembered for `buf`, used up.
---@return string|nil
function M.take_reason(buf)
  local r = reasons[buf]
  reasons[buf] = nil
  return r
end

function M.reasons() return vim.deepcopy(reasons) end

-- Wiped buffers -------------------------------------------------------------------------------

--- Calls `fn(buf)` when a watched buffer is wiped out.
---@param fn fun(buf: integer)
function M.on_wipe(fn) listeners[#listeners + 1] = fn end

--- Watches `buf` (idempotent): on its `BufWipeout`, every listener forgets its share of it.
---@param buf integer|nil
function M.watch(buf)
  if type(buf) ~= 'number' or buf == 0 or watched[buf] or not api.nvim_buf_is_valid(buf) then return end
  watched[buf] = true
  api.nvim_create_autocmd('BufWipeout', {
    group = group,
    buffer = buf,
    once = true,
    callback = function()
      watched[buf] = nil
      reasons[buf] = nil
      for _, fn in ipairs(listeners) do
        local ok, err = pcall(fn, buf)
        if not ok then
          local msg = 'zeke: internal error forgetting a buffer: ' .. tostring(err)
          vim.schedule(function() M.notify(msg, vim.log.levels.ERROR) end)
        end
      end
    end,
  })
end

---@return integer[]
function M.watched() return vim.tbl_keys(watched) end

return M
