-- lua/zeke/review/preview.lua: owns the inline preview of a pending proposal in the buffer it is
-- for: the accepted hunks' old lines highlighted as deleted, their new lines as virtual lines.
-- Invariants: shown only while the buffer is at the `changedtick` the patch was made for and the
-- proposal is pending; never changes the buffer's text.
local store = require('zeke.review.store')

local M = {}

local api = vim.api

M.ns = api.nvim_create_namespace('zeke.diff.inline')

--- Whether `p`'s buffer is as the patch was made for (a proposal naming only a file: never).
---@return boolean
function M.same_tick(p)
  local b = store.buf_of(p)
  return b ~= nil and api.nvim_buf_is_valid(b) and api.nvim_buf_get_changedtick(b) == p.tick
end

function M.clear(p)
  local b = store.buf_of(p)
  if b and api.nvim_buf_is_valid(b) then api.nvim_buf_clear_namespace(b, M.ns, 0, -1) end
end

--- Shows `p`'s accepted hunks inline (again), or nothing when its buffer moved on.
function M.show(p)
  M.clear(p)
  if store.get(p.key) ~= p or not M.same_tick(p) then return end
  local n = api.nvim_buf_line_count(p.buf)
  for i, h in ipairs(p.hunks) do
    if p.accepted[i] then
      local virt = {}
      for _, l in ipairs(h.new) do virt[#virt + 1] = { { '+' .. l, 'ZekeDiffAdd' } } end
      if #h.old > 0 and h.start + #h.old <= n then
        for r = h.start, h.start + #h.old - 1 do
          pcall(api.nvim_buf_set_extmark, p.buf, M.ns, r, 0, { line_hl_group = 'ZekeDiffDelete' })
        end
      end
      if #virt > 0 then
        local row, above = h.start + #h.old - 1, false
        if #h.old == 0 then row, above = h.start, true end
        if row >= n then row, above = n - 1, false end
        if row < 0 then row, above = 0, true end
        pcall(api.nvim_buf_set_extmark, p.buf, M.ns, row, 0, { virt_lines = virt, virt_lines_above = above })
      end
    end
  end
end

return M
