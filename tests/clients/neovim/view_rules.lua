-- The plugin's pure rules, state by state, without a server: the statusline text, what
-- needs the person (including a connected server asking for more scopes), the :McpStatus
-- lines, which servers each command offers, and how elicitation fields are asked.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h") .. "/harness.lua")
local view = require("mcpls.view")
local elicit = require("mcpls.elicit")
local health = require("mcpls.health")

local function s(name, state, extra)
  return vim.tbl_extend(
    "force",
    { server = name, transport = "http", state = state, url = "https://" .. name .. ".example/mcp" },
    extra or {}
  )
end
local function by_name(list)
  local statuses = {}
  for _, status in ipairs(list) do
    statuses[status.server] = status
  end
  return statuses
end

local connected = s("a", "connected", {
  toolCount = 3,
  auth = {
    authenticated = true,
    scopes = { "read" },
    issuer = "https://id.example",
    expiresAt = 1000 + 3600,
  },
})
local step_up = s("b", "connected", {
  toolCount = 1,
  auth = { authenticated = true, scopes = { "read" }, requiredScopes = { "admin" } },
})
local signin = s("c", "authRequired", {
  auth = { authenticated = false },
  error = { kind = "authRequired", message = "Sign in to use c." },
})
local failed = {
  server = "d",
  transport = "stdio",
  state = "error",
  error = { kind = "connection", message = "the process ended" },
}
local off = s("e", "disabled")
local busy = s("f", "authenticating", { auth = { authenticated = false } })

-- Statusline: connected out of enabled; ⚠ counts servers needing the person.
H.equal(view.statusline(nil), "", "not running")
H.equal(view.statusline({}), "MCP 0/0", "no servers")
H.equal(view.statusline(by_name({ connected })), "MCP 1/1", "one connected")
H.equal(view.statusline(by_name({ connected, off })), "MCP 1/1", "disabled ones are not counted")
H.equal(view.statusline(by_name({ connected, signin, off })), "MCP 1/2 ⚠1", "sign-in needed")
H.equal(
  view.statusline(by_name({ connected, step_up, signin, failed, off, busy })),
  "MCP 2/5 ⚠3",
  "all states"
)

-- What needs the person, and the words for it.
H.equal(view.attention(connected), nil, "connected")
H.equal(view.attention(step_up), "scopes:admin", "more scopes")
H.equal(view.attention(signin), "authRequired", "sign-in")
H.equal(view.attention(failed), "error:connection", "error")
H.equal(view.attention(off), nil, "disabled")
H.equal(view.attention(busy), nil, "signing in")
H.equal(view.state_words(step_up), "needs more permission", "step-up words")
H.equal(
  view.announcement(step_up),
  "b needs more permission (admin): :McpAuthenticate b",
  "step-up"
)
H.equal(view.announcement(signin), "c needs you to sign in: :McpAuthenticate c", "sign-in")
-- mcpls may also report a step-up as authRequired with requiredScopes: the same words.
local step_up_required = vim.tbl_extend("force", step_up, { state = "authRequired" })
H.equal(view.state_words(step_up_required), "needs more permission", "step-up as authRequired")
H.equal(
  view.announcement(step_up_required),
  "b needs more permission (admin): :McpAuthenticate b",
  "step-up as authRequired"
)
H.equal(view.announcement(failed), "d: the process ended (:McpRestart d, :McpStatus)", "error")

-- Which servers each command offers.
local all = by_name({ connected, step_up, signin, failed, off, busy })
H.equal(
  view.applicable("authenticate", all),
  { "b", "c", "a", "f" },
  "authenticate: waiting ones first, http only"
)
H.equal(view.applicable("logout", all), { "a", "b" }, "logout")
H.equal(view.applicable("enable", all), { "e" }, "enable")
H.equal(view.applicable("disable", all), { "a", "b", "c", "d", "f" }, "disable")
H.equal(view.applicable("restart", all), { "a", "b", "c", "d", "f" }, "restart")
H.equal(view.applicable("tools", all), { "a", "b" }, "tools")

-- :McpStatus lines.
local lines = view.status_lines(by_name({ connected, step_up, signin, failed }), 1000, true)
H.equal(lines[1], "MCP servers: 2 of 4 enabled connected", "header")
local text = table.concat(lines, "\n")
for _, want in ipairs({
  "● a  connected · 3 tools\n     https://a.example/mcp\n     account: signed in with https://id.example\n     token expires ",
  "(in 60 min)\n     scopes: read",
  "⚠ b  needs more permission · 1 tool\n",
  "     needs scopes: admin (:McpAuthenticate b)",
  "⚠ c  needs sign-in\n     https://c.example/mcp\n     account: not signed in\n     error (authRequired): Sign in to use c.",
  "⚠ d  error\n     stdio\n     error (connection): the process ended",
}) do
  H.check(text:find(want, 1, true) ~= nil, vim.inspect(want) .. " in\n" .. text)
end
H.equal(
  view.status_lines({}, 0, true),
  { "No MCP servers configured: see :help mcpls-setup" },
  "no servers"
)
H.equal(
  view.status_lines({}, 0, false)[1],
  "mcpls is not running; the last states known:",
  "not running"
)
H.check(view.expiry(900, 1000):find("expired", 1, true) ~= nil, "expired token")

-- :McpTools lines.
H.equal(
  view.tool_lines("a", {
    {
      name = "echo",
      description = "Echo text.\nMore.",
      inputSchema = { properties = { text = {}, loud = {} }, required = { "text" } },
    },
  }),
  {
    "a: 1 tool",
    "",
    "echo — Echo text.",
    "    arguments: loud?, text",
  },
  "tool lines"
)

-- Elicitation: field order, choices, conversion, and a whole form.
local schema = {
  type = "object",
  properties = {
    age = { type = "integer", title = "Age", minimum = 0 },
    name = { type = "string", title = "Name", default = "anon" },
    colour = {
      type = "string",
      enum = { "red", "green" },
      enumNames = { "Red", "Green" },
      default = "green",
    },
    subscribe = { type = "boolean", title = "Subscribe" },
    size = {
      type = "string",
      oneOf = { { const = "s", title = "Small" }, { const = "l", title = "Large" } },
    },
  },
  required = { "name", "age" },
}
H.equal(
  vim.tbl_map(function(f)
    return f.name
  end, elicit.fields(schema)),
  { "age", "name", "colour", "size", "subscribe" },
  "required first, then by name"
)
H.equal(
  vim.tbl_map(function(c)
    return c.label
  end, elicit.choices(schema.properties.colour)),
  { "Green", "Red" },
  "default first"
)
H.equal(elicit.choices(schema.properties.size)[2], { value = "l", label = "Large" }, "oneOf titles")
H.equal(elicit.choices(schema.properties.name), nil, "typed in")
H.equal(
  { elicit.convert(schema.properties.age, "4.5", true) },
  { nil, "enter a whole number" },
  "integer"
)
H.equal({ elicit.convert(schema.properties.age, "-1", true) }, { nil, "at least 0" }, "minimum")
H.equal(
  { elicit.convert(schema.properties.age, "", true) },
  { nil, "this field is required" },
  "required"
)
H.equal({ elicit.convert(schema.properties.name, "", false) }, {}, "optional left empty")
H.equal(elicit.convert({ type = "number" }, "2.5", false), 2.5, "number")

local function now(start) -- what the LSP coroutine does, for a synchronous vim.ui
  local got
  start(function(...)
    got = { ... }
  end)
  return unpack(got)
end
H.answer_input("x") -- age: not a number, asked again
H.answer_input("42")
H.answer_input(function(opts)
  H.equal(opts.default, "anon", "default pre-filled")
  return "Ada"
end)
H.answer_select("Red")
H.answer_select("(leave empty)")
H.answer_select("yes")
local result = elicit.ask({ server = "srv", message = "Tell me", requestedSchema = schema }, now)
H.equal(
  result,
  { action = "accept", content = { age = 42, name = "Ada", colour = "red", subscribe = true } },
  "form"
)
H.check(
  H.inputs[2].prompt:find("(enter a number)", 1, true) == 1,
  "the problem is shown: " .. H.inputs[2].prompt
)
H.answer_input(false)
H.equal(
  elicit.ask({ server = "srv", message = "Tell me", requestedSchema = schema }, now),
  { action = "decline" },
  "Escape declines"
)
H.answer_select("Accept")
H.equal(
  elicit.ask(
    { server = "srv", message = "OK?", requestedSchema = { type = "object", properties = {} } },
    now
  ).action,
  "accept",
  "no fields"
)

-- :checkhealth runs `mcpls --version` from the configured command.
H.equal(health.version_command({ "mcpls", "serve" }), { "mcpls", "--version" }, "version command")
H.equal(
  health.version_command({ "python3", "-m", "mcpls", "serve", "--log-level", "debug" }),
  { "python3", "-m", "mcpls", "--version" },
  "python -m"
)
H.done()
