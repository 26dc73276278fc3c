-- lua/zeke/diff.lua: the public face of `:Zeke fix` / `:Zeke test` and their review, kept for the
-- modules that call it (init.lua, rpc.lua's event routes, errors.lua): the same functions, names
-- and behaviour as before the split. The work is done in `lua/zeke/review/`: `request` (what is
-- sent, progress), `init` (`require('zeke.review')`: taking proposals in, shared by every source),
-- `window` (the review window and the Allow/Deny answers), `apply` (applying, `resolve`),
-- `preview` (inline in the buffer) and `store` (the per-buffer state, cleared on BufWipeout).
-- Invariants: no state of its own; every function here is the one of the module doing the work.
local request = require('zeke.review.request')
local review = require('zeke.review')
local window = require('zeke.review.window')
local store = require('zeke.review.store')

local M = {}

M.ns = window.ns
M.ns_inline = window.ns_inline

-- Requests: `:Zeke fix`, `:Zeke test` and the events answering them.
M.diagnostics = request.diagnostics
M.root = request.root
M.fix = request.fix
M.test = request.test
M.edit = request.edit
M.on_progress = request.on_progress
M.on_patch = request.on_patch
M.on_error = request.on_error
M.on_stop = request.on_stop

-- The review: `:Zeke review`, toggles, `:Zeke allow [all]`, `:Zeke deny`.
M.review = window.review
M.close = window.close
M.toggle = window.toggle
M.allow = window.allow
M.allow_all = window.allow_all
M.deny = window.deny
M.state = window.state

--- Reviews a proposal from another source (the chat agent): `ev` is shaped like a `patch` event
--- ({patch, job, buf? | path, tick?, hunks, provider?, model?, decision?, rule?, note?, src?}); a
--- proposal naming only a `path` is applied to the buffer showing that file, else to the file
--- itself (written), after Allow.
---@param ev table
function M.propose(ev) review.propose(review.proposal(ev)) end

--- The backend exited or restarted: it forgot its pending patches and requests.
function M.on_backend_exit()
  request.reset()
  review.reset()
end

--- Internals for tests and :Zeke status: requests in flight, pending proposals (by buffer, or
--- `file:<path>`), remembered denial reasons, the last params sent and outcome reported, the
--- review window, the buffers watched for BufWipeout.
function M.debug_state()
  return {
    requests = request.debug_state(), pending = store.keys(), reasons = store.reasons(),
    last_params = store.last.params, last_outcome = store.last.outcome, review = window.debug_state(),
    watched = store.watched(),
  }
end

return M
