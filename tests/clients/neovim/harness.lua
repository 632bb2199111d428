-- Shared by the Lua test scripts (dofile). The test plays the person: vim.ui.select and
-- vim.ui.input answer from scripted queues and record what was asked; vim.notify is
-- recorded and echoed. A failed check raises, which makes `nvim -l` exit non-zero.
local H = { notes = {}, selects = {}, inputs = {}, problems = {}, out = {} }
local select_answers, input_answers = {}, {}

local function echo(text)
  io.stdout:write(text .. "\n")
  io.stdout:flush()
end
H.echo = echo

function H.dump()
  return vim.inspect({ status = require("mcpls").status(), notes = H.notes, selects = H.selects })
end

function H.check(ok, message)
  if not ok then
    error("check failed: " .. message .. "\n" .. H.dump(), 2)
  end
end

function H.equal(got, want, what)
  if not vim.deep_equal(got, want) then
    error(
      ("%s: got %s, want %s\n%s"):format(what, vim.inspect(got), vim.inspect(want), H.dump()),
      2
    )
  end
end

--- Wait until `condition()` holds (the event loop runs meanwhile: LSP messages arrive).
function H.wait(what, condition, ms)
  if not vim.wait(ms or 30000, condition, 20) then
    error("timed out waiting for " .. what .. "\n" .. H.dump(), 2)
  end
end

function H.wait_state(server, state)
  H.wait(server .. " " .. state, function()
    local status = require("mcpls").status()[server]
    return status ~= nil and status.state == state
  end)
  return require("mcpls").status()[server]
end

vim.notify = function(message, level)
  table.insert(H.notes, { message = message, level = level })
  echo("notify: " .. message)
end

--- Queue the label the person picks at the next vim.ui.select (false: Escape).
function H.answer_select(label)
  table.insert(select_answers, label)
end

--- Queue the next vim.ui.input answer: a string, false (Escape), or a function of opts.
function H.answer_input(answer)
  table.insert(input_answers, answer)
end

vim.ui.select = function(items, opts, on_choice)
  local format = opts.format_item or tostring
  local labels = vim.tbl_map(format, items)
  table.insert(H.selects, { prompt = opts.prompt, labels = labels })
  echo("select: " .. tostring(opts.prompt) .. " " .. table.concat(labels, " | "))
  local answer = table.remove(select_answers, 1)
  if answer == nil then
    table.insert(H.problems, "unexpected vim.ui.select: " .. tostring(opts.prompt))
    return on_choice(nil, nil)
  end
  for i, label in ipairs(labels) do
    if label == answer then
      return on_choice(items[i], i)
    end
  end
  if answer ~= false then
    table.insert(H.problems, ("no %q among %s"):format(answer, vim.inspect(labels)))
  end
  on_choice(nil, nil)
end

vim.ui.input = function(opts, on_confirm)
  table.insert(H.inputs, { prompt = opts.prompt, default = opts.default })
  echo("input: " .. tostring(opts.prompt) .. " [" .. tostring(opts.default) .. "]")
  local answer = table.remove(input_answers, 1)
  if type(answer) == "function" then
    answer = answer(opts)
  end
  if answer == nil then
    table.insert(H.problems, "unexpected vim.ui.input: " .. tostring(opts.prompt))
  end
  on_confirm(answer or nil)
end

--- The notifications whose text contains `text` (plain).
function H.notes_with(text)
  return vim.tbl_filter(function(note)
    return note.message:find(text, 1, true) ~= nil
  end, H.notes)
end

--- The person's browser: tests/clients/neovim/browse.py completes the sign-in at `url`.
H.browser_exits = {}
function H.browse(url)
  local argv = vim.json.decode(vim.env.MCPLS_TEST_BROWSER)
  table.insert(argv, url)
  vim.system(argv, { text = true }, function(result)
    table.insert(H.browser_exits, result.code)
    if result.code ~= 0 then
      table.insert(H.problems, "browser: " .. result.stdout .. result.stderr)
    end
  end)
  return true
end

--- What the plugin sent mcpls and answered it, for the pytest side to check against
--- schemas/: mcp/* requests and notifications, settings, capabilities, elicit answers, and
--- the statuses it was told.
local tapped = {}

local function tap(client)
  if tapped[client.id] then
    return
  end
  tapped[client.id] = true
  H.out.wire = H.out.wire or { sent = {}, answers = {}, statuses = {} }
  local wire = H.out.wire
  wire.init = {
    options = client.config.init_options,
    capabilities = client.config.capabilities.experimental.mcpls,
  }
  local rpc = client.rpc
  local request, notify = rpc.request, rpc.notify
  rpc.request = function(method, params, ...)
    if vim.startswith(method, "mcp/") then
      table.insert(wire.sent, { kind = "request", method = method, params = params })
    end
    return request(method, params, ...)
  end
  rpc.notify = function(method, params, ...)
    if vim.startswith(method, "mcp/") or method == "workspace/didChangeConfiguration" then
      table.insert(wire.sent, { kind = "notification", method = method, params = params })
    end
    return notify(method, params, ...)
  end
  local on_status = client.handlers["mcp/didChangeStatus"]
  client.handlers["mcp/didChangeStatus"] = function(err, status, ...)
    table.insert(wire.statuses, status)
    return on_status(err, status, ...)
  end
  local on_elicit = client.handlers["mcp/elicit"]
  client.handlers["mcp/elicit"] = function(...)
    local answer = on_elicit(...)
    table.insert(wire.answers, answer)
    return answer
  end
end

--- setup() options for a test server on this machine (plain http, tokens in files).
function H.setup(servers, extra)
  local log = vim.env.MCPLS_TEST_LOG
  local id = require("mcpls").setup(vim.tbl_extend("force", {
    cmd = { vim.env.MCPLS, "serve", "--log-level", "info", "--log-file", log },
    servers = servers,
    settings = { allowInsecureLoopback = true, tokenStorage = "file" },
  }, extra or {}))
  tap(assert(vim.lsp.get_client_by_id(id)))
  return id
end

--- Wait for the floating window :McpStatus or :McpTools opens; its lines; then close it.
function H.float_lines(what)
  H.wait(what .. " window", function()
    return vim.bo.filetype == "mcpls" and vim.api.nvim_win_get_config(0).relative ~= ""
  end, 15000)
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  vim.cmd.close()
  return lines
end

--- Stop mcpls, check nothing unexpected was asked, and write H.out for the pytest side.
function H.done()
  local mcpls = require("mcpls")
  local client = mcpls.client()
  mcpls.stop()
  H.wait("mcpls to exit", function()
    return client == nil or vim.lsp.get_client_by_id(client.id) == nil
  end, 15000)
  H.equal(H.problems, {}, "problems")
  local file = assert(io.open(vim.env.MCPLS_TEST_OUT, "w"))
  file:write(vim.json.encode(next(H.out) and H.out or vim.empty_dict()))
  file:close()
  echo("done")
end

return H
