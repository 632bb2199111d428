-- mcpls for Neovim: one `mcpls serve` language client per Neovim instance, its statuses,
-- and the UI glue for the mcp/* methods of the contract (schemas/ in the mcpls repository).
-- All MCP and OAuth logic lives in mcpls; this file only translates.

local view = require("mcpls.view")

local M = {}

local levels = vim.log.levels
-- Neovim 0.11 calls client methods with a colon and deprecates the dot; 0.10 wants the dot.
local colon_methods = vim.fn.has("nvim-0.11") == 1
-- JSON-RPC's RequestCancelled.
local REQUEST_CANCELLED = -32800

---@class mcpls.Options
---@field cmd string[] the command that runs `mcpls serve`
---@field servers table<string, table> MCP servers by name (ServerConfig of settings.schema.json)
---@field settings table global settings beside `servers` (tokenStorage, allowInsecureLoopback…)
---@field open_url fun(url: string): any opens a sign-in page; false or (nil, err) means it could not
local defaults = {
  cmd = { "mcpls", "serve" },
  servers = {},
  settings = {},
  open_url = function(url)
    return vim.ui.open(url)
  end,
}

local S = {
  options = nil, ---@type mcpls.Options?
  client_id = nil, ---@type integer?
  stopping = false,
  statuses = nil, ---@type table<string, table>? nil while mcpls is not running
  announced = {}, ---@type table<string, string> server → the reason last announced (view.attention)
  signing_in = {}, ---@type table<string, table<integer, true>> server → ids of its mcp/authenticate
}

local function notify(message, level)
  vim.notify("mcpls: " .. message, level or levels.INFO)
end

local function invoke(client, method, ...)
  if colon_methods then
    return client[method](client, ...)
  end
  return client[method](...)
end

-- vim.json encodes an empty table as an array; the contract wants objects.
local function as_object(t)
  if next(t) == nil then
    return vim.empty_dict()
  end
  return t
end

---@param options mcpls.Options
---@return table initializationOptions: {servers = {...}, <global settings>}
local function init_options(options)
  local init = vim.deepcopy(options.settings)
  init.servers = as_object(vim.deepcopy(options.servers))
  return init
end

--- The running mcpls client, or nil.
---@return vim.lsp.Client?
function M.client()
  local client = S.client_id and vim.lsp.get_client_by_id(S.client_id)
  if not client or invoke(client, "is_stopped") then
    return nil
  end
  return client
end

--- The options given to setup() (with defaults), or nil before setup().
---@return mcpls.Options?
function M.config()
  return S.options
end

--- Announce, once per reason, a state that needs the person; forget it once the server is
--- fine again (connected) or off (disabled). Returns whether it announced.
local function announce(status)
  local reason = view.attention(status)
  if reason == nil then
    if status.state == "connected" or status.state == "disabled" then
      S.announced[status.server] = nil
    end
    return false
  end
  if S.announced[status.server] == reason then
    return false
  end
  S.announced[status.server] = reason
  local level = status.state == "error" and levels.ERROR or levels.WARN
  notify(view.announcement(status), level)
  return true
end

local function changed(status)
  pcall(vim.api.nvim_exec_autocmds, "User", {
    pattern = "McplsStatus",
    modeline = false,
    data = status,
  })
  pcall(vim.cmd.redrawstatus)
end

--- Record a ServerStatus (from a notification or a result). Returns whether it was announced.
local function update(status)
  if type(status) ~= "table" or type(status.server) ~= "string" then
    return false
  end
  S.statuses = S.statuses or {}
  S.statuses[status.server] = status
  local announced = announce(status)
  changed(status)
  return announced
end

--- Every status at once (mcp/status): replaces what is known, so removed servers go.
local function replace_all(list)
  S.statuses = {}
  for _, status in ipairs(list or {}) do
    update(status)
  end
  for name in pairs(S.announced) do
    if S.statuses[name] == nil then
      S.announced[name] = nil
    end
  end
end

--- Run `start(done)` from an LSP server-request handler and return what `done` got: the
--- handler's coroutine yields meanwhile (vim.ui.* may answer later, e.g. from a picker).
local function in_coroutine()
  local co, is_main = coroutine.running()
  return co ~= nil and not is_main
end

local function await(start)
  local co = coroutine.running()
  start(function(...)
    local args = vim.F.pack_len(...)
    -- Resume on the next tick: a synchronous vim.ui.* calls `done` before we yield.
    vim.schedule(function()
      coroutine.resume(co, vim.F.unpack_len(args))
    end)
  end)
  return coroutine.yield()
end

local handlers = {}

handlers["mcp/didChangeStatus"] = function(_, status)
  update(status)
end

handlers["window/showMessageRequest"] = function(_, params)
  local actions = params.actions or {}
  if not in_coroutine() then
    -- A Neovim that runs server requests outside a coroutine cannot wait for vim.ui.select.
    local titles = { "mcpls: " .. params.message }
    for i, action in ipairs(actions) do
      table.insert(titles, ("%d. %s"):format(i, action.title))
    end
    return actions[vim.fn.inputlist(titles)] or vim.NIL
  end
  local choice = await(function(done)
    vim.ui.select(actions, {
      prompt = "mcpls: " .. params.message,
      kind = "mcpls",
      format_item = function(action)
        return action.title
      end,
    }, done)
  end)
  return choice or vim.NIL
end

handlers["window/showDocument"] = function(err, params, ctx, config)
  if not params.external then
    return vim.lsp.handlers["window/showDocument"](err, params, ctx, config)
  end
  local open_url = (S.options or defaults).open_url
  local ok, opened, problem = pcall(open_url, params.uri)
  local success = ok and opened ~= false and not (opened == nil and problem ~= nil)
  if not success then
    local why = ok and tostring(problem or "open_url returned false") or tostring(opened)
    notify(
      ("could not open the sign-in page (%s); open it yourself: %s"):format(why, params.uri),
      levels.WARN
    )
  end
  return { success = success }
end

handlers["mcp/elicit"] = function(_, params)
  if not in_coroutine() then
    return { action = "decline" } -- see window/showMessageRequest above
  end
  return require("mcpls.elicit").ask(params, await)
end

--- Ask mcpls for every status and replace what is known; then `after()`.
local function refresh(after)
  local client = M.client()
  if not client then
    return
  end
  invoke(client, "request", "mcp/status", vim.empty_dict(), function(err, result)
    if err then
      notify("mcp/status failed: " .. err.message, levels.ERROR)
    else
      replace_all(result.servers)
    end
    if after then
      after()
    end
  end)
end

--- Send a request to mcpls; errors are shown unless `on_error` takes them.
---@return integer? request id
local function request(method, params, on_result, on_error)
  local client = M.client()
  if not client then
    notify(
      "mcpls is not running: call require('mcpls').setup() (see :checkhealth mcpls)",
      levels.ERROR
    )
    return nil
  end
  local _, id = invoke(client, "request", method, params, function(err, result)
    if err then
      if on_error then
        on_error(err)
      else
        notify(("%s: %s"):format(params.server or method, err.message), levels.ERROR)
      end
      return
    end
    on_result(result)
  end)
  return id
end

--- Say where a server stands after a command, unless that was just announced.
local function report(status)
  if update(status) then
    return
  end
  local text = ("%s: %s"):format(status.server, view.state_words(status))
  if status.state == "connected" and status.toolCount then
    text = text .. (" · %d tool%s"):format(status.toolCount, status.toolCount == 1 and "" or "s")
  elseif status.error then
    text = text .. ": " .. status.error.message
  end
  notify(text)
end

--- Start mcpls (or, when it runs, send it the new servers and settings).
---@param opts mcpls.Options?
---@return integer? client id
function M.setup(opts)
  opts = opts or {}
  for key, kind in pairs({
    cmd = "table",
    servers = "table",
    settings = "table",
    open_url = "function",
  }) do
    if opts[key] ~= nil and type(opts[key]) ~= kind then
      notify(("setup(): `%s` must be a %s"):format(key, kind), levels.ERROR)
      return nil
    end
  end
  local options = vim.tbl_extend("force", defaults, opts)
  S.options = options
  local running = M.client()
  if running then
    invoke(running, "notify", "workspace/didChangeConfiguration", {
      settings = { mcpls = init_options(options) },
    })
    refresh()
    return running.id
  end
  if vim.fn.executable(options.cmd[1]) == 0 then
    notify(
      ("`%s` is not executable: install mcpls or set `cmd` (see :checkhealth mcpls)"):format(
        options.cmd[1]
      ),
      levels.ERROR
    )
    return nil
  end
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.experimental = { mcpls = { elicitation = true } }
  capabilities.window = vim.tbl_extend("force", capabilities.window or {}, {
    showDocument = { support = true },
    workDoneProgress = true,
  })
  local config = {
    name = "mcpls",
    cmd = options.cmd,
    root_dir = vim.fn.getcwd(), -- the workspace folder, which MCP servers see as a root
    init_options = init_options(options),
    capabilities = capabilities,
    handlers = handlers,
    on_init = function(client, result)
      local announced =
        vim.tbl_get(result or {}, "capabilities", "experimental", "mcpls", "version")
      if announced ~= 1 then
        notify(
          ("this plugin speaks contract version 1; mcpls announced %s"):format(
            vim.inspect(announced)
          ),
          levels.WARN
        )
      end
      S.statuses = S.statuses or {}
      refresh()
    end,
    on_exit = function(code, signal)
      vim.schedule(function()
        if not S.stopping and (code ~= 0 or signal ~= 0) then
          notify(
            ("mcpls exited (code %d, signal %d): see :checkhealth mcpls and :LspLog"):format(
              code,
              signal
            ),
            levels.ERROR
          )
        end
        S.client_id, S.statuses, S.announced, S.signing_in, S.stopping = nil, nil, {}, {}, false
        changed(nil)
      end)
    end,
  }
  S.stopping = false
  if colon_methods then
    -- Not tied to any buffer or filetype: it starts with no file open.
    S.client_id = vim.lsp.start(config, { attach = false })
  else
    S.client_id = vim.lsp.start_client(config)
  end
  return S.client_id
end

--- Stop mcpls (it closes every MCP session first).
function M.stop()
  local client = M.client()
  if client then
    S.stopping = true
    invoke(client, "stop")
  end
end

--- Server name → latest ServerStatus (a copy); empty while mcpls is not running.
---@return table<string, table>
function M.status()
  return vim.deepcopy(S.statuses or {})
end

--- A short text for a statusline: "MCP 2/3" (connected/enabled), "MCP 1/2 ⚠1" when servers
--- need you; "" while mcpls is not running. Redraw on `User McplsStatus`.
---@return string
function M.statusline()
  return view.statusline(S.statuses)
end

--- Servers a command applies to (all servers when none does), for completion.
---@param command string
---@return string[]
function M.complete(command)
  local statuses = S.statuses or {}
  local names = view.applicable(command, statuses)
  if #names == 0 then
    names = view.names(statuses)
  end
  return names
end

--- Run `fn(server)` with the given server, or one the person picks among those `command`
--- applies to (picked without asking when there is only one).
local function with_server(command, server, verb, fn)
  if server and server ~= "" then
    return fn(server)
  end
  local names = view.applicable(command, S.statuses or {})
  if #names == 0 then
    notify(("no server to %s (:McpStatus)"):format(verb), levels.WARN)
  elseif #names == 1 then
    fn(names[1])
  else
    vim.ui.select(names, {
      prompt = ("mcpls: %s which server?"):format(verb),
      format_item = function(name)
        return ("%s (%s)"):format(name, view.state_words(S.statuses[name]))
      end,
    }, function(name)
      if name then
        fn(name)
      end
    end)
  end
end

local function float(title, lines)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].filetype = "mcpls"
  local width = 20
  for _, line in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(line))
  end
  width = math.min(width + 1, math.max(vim.o.columns - 4, 20))
  local height = math.min(#lines, math.max(vim.o.lines - 4, 1))
  local win = vim.api.nvim_open_win(buf, true, {
    relative = "editor",
    width = width,
    height = height,
    row = math.floor((vim.o.lines - height) / 2) - 1,
    col = math.floor((vim.o.columns - width) / 2),
    style = "minimal",
    border = "rounded",
    title = " " .. title .. " ",
    title_pos = "center",
  })
  for _, key in ipairs({ "q", "<Esc>" }) do
    vim.keymap.set("n", key, "<cmd>close<cr>", { buffer = buf, nowait = true, silent = true })
  end
  return buf, win
end

--- :McpStatus: a floating window with every server, its state, account, token expiry and
--- last error (q closes it).
function M.show_status()
  if not M.client() then
    float("mcpls", view.status_lines(S.statuses or {}, os.time(), false))
    return
  end
  refresh(function()
    float("mcpls", view.status_lines(S.statuses or {}, os.time(), true))
  end)
end

--- :McpAuthenticate: sign in (opens the sign-in page through `open_url`).
---@param server string?
function M.authenticate(server)
  with_server("authenticate", server, "sign in to", function(name)
    -- A second request joins the sign-in under way (mcpls); each is remembered to cancel it.
    local pending = S.signing_in[name] or {}
    S.signing_in[name] = pending
    local id
    id = request("mcp/authenticate", { server = name }, function(status)
      pending[id] = nil
      report(status)
    end, function(err)
      pending[id] = nil
      notify(("%s: sign-in failed: %s"):format(name, err.message), levels.ERROR)
    end)
    if id then
      pending[id] = true
    end
  end)
end

--- :McpAuthenticate!: cancel the sign-ins under way (of one server, or all).
---@param server string?
function M.cancel_authentication(server)
  local names = server and server ~= "" and { server } or vim.tbl_keys(S.signing_in)
  local client = M.client()
  for _, name in ipairs(names) do
    local ids = vim.tbl_keys(S.signing_in[name] or {})
    if client and #ids > 0 then
      for _, id in ipairs(ids) do
        -- Neovim drops the answer to a cancelled request, so it is forgotten here.
        invoke(client, "cancel_request", id)
      end
      S.signing_in[name] = nil
      notify(name .. ": sign-in cancelled")
    end
  end
end

--- Finish a sign-in by hand: `redirect_url` is the address the browser ended on, for when
--- the page cannot reach mcpls's loopback callback (e.g. Neovim over SSH).
---@param server string
---@param redirect_url string
function M.complete_authentication(server, redirect_url)
  request("mcp/completeAuthentication", { server = server, redirectUrl = redirect_url }, report)
end

--- :McpLogout: delete (and revoke) the tokens; the server ends disabled.
---@param server string?
function M.logout(server)
  with_server("logout", server, "sign out of", function(name)
    request("mcp/logout", { server = name }, report)
  end)
end

for command, verb in pairs({ enable = "enable", disable = "disable", restart = "restart" }) do
  M[command] = function(server)
    with_server(command, server, verb, function(name)
      request("mcp/" .. command, { server = name }, report)
    end)
  end
end

--- :McpTools: a floating window listing a connected server's tools.
---@param server string?
function M.tools(server)
  with_server("tools", server, "list the tools of", function(name)
    request("mcp/listTools", { server = name }, function(result)
      float("mcpls: " .. name, view.tool_lines(name, result.tools or {}))
    end)
  end)
end

--- Call a tool; `callback(err, result)` gets the MCP CallToolResult verbatim.
---@param server string
---@param name string
---@param arguments table?
---@param callback fun(err: table?, result: table?)
function M.call_tool(server, name, arguments, callback)
  request(
    "mcp/callTool",
    { server = server, name = name, arguments = as_object(arguments or {}) },
    function(result)
      callback(nil, result)
    end,
    function(err)
      callback(err, nil)
    end
  )
end

return M
