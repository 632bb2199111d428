-- A tool call refused with 403 insufficient_scope: the server shows the scopes it wants and
-- counts as needing the person; :McpAuthenticate asks for them and the call then works.
-- (Whether the server stays connected meanwhile is mcpls's decision; both read as "needs you".)
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h") .. "/harness.lua")
local mcpls = require("mcpls")

H.answer_select("Not now")
H.setup({ svc = { url = vim.env.MCPLS_TEST_URL } }, { open_url = H.browse })
H.wait_state("svc", "authRequired")
vim.cmd("McpAuthenticate svc")
H.wait_state("svc", "connected")

local function admin_echo()
  local err, result
  mcpls.call_tool("svc", "admin_echo", { text = "root" }, function(e, r)
    err, result = e, r or false
  end)
  H.wait("admin_echo", function()
    return err ~= nil or result ~= nil
  end)
  return err, result
end

local err = admin_echo()
H.check(err ~= nil and err.data.kind == "authRequired", "refused: " .. vim.inspect(err))
H.wait("the scopes svc asks for", function()
  local auth = mcpls.status().svc.auth
  return auth.requiredScopes ~= nil and vim.tbl_contains(auth.requiredScopes, "mcp:admin")
end)
H.equal(mcpls.statusline():match("⚠1$"), "⚠1", "statusline " .. mcpls.statusline())
H.equal(#H.notes_with("svc needs more permission ("), 1, "announced")
vim.cmd("McpStatus")
local text = table.concat(H.float_lines(":McpStatus"), "\n")
H.check(text:find("⚠ svc  needs more permission", 1, true) ~= nil, text)
H.check(text:find("needs scopes: [^\n]*mcp:admin") ~= nil, text)

vim.cmd("McpAuthenticate svc")
H.wait("the scopes granted", function()
  local status = mcpls.status().svc
  return status.state == "connected" and vim.tbl_contains(status.auth.scopes or {}, "mcp:admin")
end)
H.equal(mcpls.status().svc.auth.requiredScopes, nil, "nothing more asked for")
H.equal(mcpls.statusline(), "MCP 1/1", "statusline")
local _, result = admin_echo()
H.equal(result.content[1].text, "root", "admin_echo")
H.wait("the second browser", function()
  return #H.browser_exits == 2
end)
H.equal(H.browser_exits, { 0, 0 }, "browser exit codes")
H.done()
