-- What the person sees, as pure functions of ServerStatus tables (schemas/server-status.schema.json):
-- the statusline text, the :McpStatus lines, which servers a command applies to, and which
-- states need the person. No editor state here, so every rule is tested without a server.

local M = {}

local WORDS = {
  connected = "connected",
  connecting = "connecting…",
  authRequired = "needs sign-in",
  authenticating = "signing in…",
  disabled = "disabled",
  ["error"] = "error",
}

--- Server names of `statuses` (name → ServerStatus), sorted.
---@param statuses table<string, table>
---@return string[]
function M.names(statuses)
  local names = vim.tbl_keys(statuses)
  table.sort(names)
  return names
end

---@param status table
---@return string[]? scopes the server asked for in a 403 insufficient_scope, if any
local function required_scopes(status)
  local scopes = status.auth and status.auth.requiredScopes
  if type(scopes) == "table" and #scopes > 0 then
    return scopes
  end
  return nil
end

--- Why the person is needed, as a key that stays the same while the reason does (nil: not needed).
--- authRequired and error need them; so does a connected server asking for more scopes (step-up).
---@param status table
---@return string?
function M.attention(status)
  if status.state == "authRequired" then
    return "authRequired"
  elseif status.state == "error" then
    return "error:" .. (status.error and status.error.kind or "other")
  elseif status.state == "connected" and required_scopes(status) then
    return "scopes:" .. table.concat(required_scopes(status), " ")
  end
  return nil
end

--- The state in words, e.g. "connected" or "needs more permission".
---@param status table
---@return string
function M.state_words(status)
  local asks_more = status.state == "connected" or status.state == "authRequired"
  if asks_more and required_scopes(status) then
    return "needs more permission"
  end
  return WORDS[status.state] or tostring(status.state)
end

--- The one-line announcement for a state that needs the person (see M.attention).
---@param status table
---@return string
function M.announcement(status)
  local name = status.server
  if status.state == "authRequired" and not required_scopes(status) then
    return ("%s needs you to sign in: :McpAuthenticate %s"):format(name, name)
  elseif status.state == "connected" or status.state == "authRequired" then
    return ("%s needs more permission (%s): :McpAuthenticate %s"):format(
      name,
      table.concat(required_scopes(status) or {}, " "),
      name
    )
  end
  local message = status.error and status.error.message or "failed"
  return ("%s: %s (:McpRestart %s, :McpStatus)"):format(name, message, name)
end

--- Statusline text: connected out of enabled servers, and how many need the person.
--- "MCP 2/3", "MCP 1/2 ⚠1"; "" when mcpls is not running.
---@param statuses table<string, table>?
---@return string
function M.statusline(statuses)
  if statuses == nil then
    return ""
  end
  local connected, enabled, attention = 0, 0, 0
  for _, status in pairs(statuses) do
    if status.state ~= "disabled" then
      enabled = enabled + 1
    end
    if status.state == "connected" then
      connected = connected + 1
    end
    if M.attention(status) then
      attention = attention + 1
    end
  end
  local text = ("MCP %d/%d"):format(connected, enabled)
  if attention > 0 then
    text = text .. (" ⚠%d"):format(attention)
  end
  return text
end

-- Which servers each command applies to (offered in completion and the picker).
local APPLIES = {
  authenticate = function(s)
    return s.transport == "http" and s.state ~= "disabled"
  end,
  logout = function(s)
    return s.auth ~= nil and s.auth.authenticated == true
  end,
  enable = function(s)
    return s.state == "disabled"
  end,
  disable = function(s)
    return s.state ~= "disabled"
  end,
  restart = function(s)
    return s.state ~= "disabled"
  end,
  tools = function(s)
    return s.state == "connected"
  end,
}

--- Names of the servers `command` applies to, sorted; servers needing the person first
--- for :McpAuthenticate.
---@param command "authenticate"|"logout"|"enable"|"disable"|"restart"|"tools"
---@param statuses table<string, table>
---@return string[]
function M.applicable(command, statuses)
  local test = assert(APPLIES[command], command)
  local names = vim.tbl_filter(function(name)
    return test(statuses[name])
  end, M.names(statuses))
  if command == "authenticate" then
    -- Stable sort: those waiting for a sign-in or more scopes come first.
    local waiting = vim.tbl_filter(function(n)
      return M.attention(statuses[n]) ~= nil
    end, names)
    local others = vim.tbl_filter(function(n)
      return M.attention(statuses[n]) == nil
    end, names)
    names = vim.list_extend(waiting, others)
  end
  return names
end

---@param seconds integer
---@return string
local function duration(seconds)
  if seconds < 90 then
    return ("%d s"):format(seconds)
  elseif seconds < 90 * 60 then
    return ("%d min"):format(math.floor(seconds / 60 + 0.5))
  elseif seconds < 48 * 3600 then
    return ("%d h"):format(math.floor(seconds / 3600 + 0.5))
  end
  return ("%d days"):format(math.floor(seconds / 86400 + 0.5))
end

--- When a token expires, e.g. "2026-12-01 15:42 (in 59 min)".
---@param expires_at integer Unix seconds
---@param now integer Unix seconds
---@return string
function M.expiry(expires_at, now)
  local when = os.date("%Y-%m-%d %H:%M", expires_at)
  if expires_at <= now then
    return ("%s (expired; mcpls refreshes it when needed)"):format(when)
  end
  return ("%s (in %s)"):format(when, duration(expires_at - now))
end

local ICONS = { connected = "●", disabled = "○", connecting = "…", authenticating = "…" }

--- The lines of :McpStatus: a header, then per server its state, where it is, the account
--- (issuer, scopes, token expiry) and the last error.
---@param statuses table<string, table>
---@param now integer Unix seconds
---@param running boolean whether mcpls is running (else the states are the last ones known)
---@return string[]
function M.status_lines(statuses, now, running)
  local names = M.names(statuses)
  local connected, enabled = 0, 0
  for _, status in pairs(statuses) do
    connected = connected + (status.state == "connected" and 1 or 0)
    enabled = enabled + (status.state ~= "disabled" and 1 or 0)
  end
  local lines = {}
  if not running then
    table.insert(lines, "mcpls is not running; the last states known:")
  end
  if #names == 0 then
    table.insert(lines, "No MCP servers configured: see :help mcpls-setup")
    return lines
  end
  table.insert(lines, ("MCP servers: %d of %d enabled connected"):format(connected, enabled))
  local width = 0
  for _, name in ipairs(names) do
    width = math.max(width, vim.fn.strdisplaywidth(name))
  end
  local indent = string.rep(" ", width + 4)
  for _, name in ipairs(names) do
    local s = statuses[name]
    local icon = M.attention(s) and "⚠" or ICONS[s.state] or "✗"
    local head = ("%s %s%s  %s"):format(
      icon,
      name,
      string.rep(" ", width - vim.fn.strdisplaywidth(name)),
      M.state_words(s)
    )
    if s.state == "connected" and s.toolCount then
      head = head .. (" · %d tool%s"):format(s.toolCount, s.toolCount == 1 and "" or "s")
    end
    table.insert(lines, "")
    table.insert(lines, head)
    local function detail(text)
      table.insert(lines, indent .. text)
    end
    detail(s.url or s.transport)
    if s.auth then
      local issuer = s.auth.issuer and (" with " .. s.auth.issuer) or ""
      if s.auth.authenticated then
        detail("account: signed in" .. issuer)
        if s.auth.expiresAt then
          detail("token expires " .. M.expiry(s.auth.expiresAt, now))
        end
        if s.auth.scopes and #s.auth.scopes > 0 then
          detail("scopes: " .. table.concat(s.auth.scopes, " "))
        end
      else
        detail("account: not signed in" .. issuer)
      end
      if required_scopes(s) then
        detail(
          ("needs scopes: %s (:McpAuthenticate %s)"):format(
            table.concat(required_scopes(s), " "),
            name
          )
        )
      end
    end
    if s.error then
      detail(("error (%s): %s"):format(s.error.kind, s.error.message))
    end
    if s.serverInfo then
      local protocol = s.protocolVersion and (" · MCP " .. s.protocolVersion) or ""
      detail(("server: %s %s%s"):format(s.serverInfo.name, s.serverInfo.version, protocol))
    end
  end
  return lines
end

--- The lines of :McpTools: each tool's name, first line of its description, and arguments.
---@param server string
---@param tools table[] MCP Tool objects
---@return string[]
function M.tool_lines(server, tools)
  local lines = { ("%s: %d tool%s"):format(server, #tools, #tools == 1 and "" or "s") }
  for _, tool in ipairs(tools) do
    table.insert(lines, "")
    local description = vim.split(tool.description or "", "\n", { plain = true })[1]
    table.insert(lines, description ~= "" and (tool.name .. " — " .. description) or tool.name)
    local schema = tool.inputSchema or {}
    local args = vim.tbl_keys(schema.properties or {})
    table.sort(args)
    if #args > 0 then
      local required = {}
      for _, r in ipairs(schema.required or {}) do
        required[r] = true
      end
      local shown = vim.tbl_map(function(a)
        return required[a] and a or (a .. "?")
      end, args)
      table.insert(lines, "    arguments: " .. table.concat(shown, ", "))
    end
  end
  return lines
end

return M
