-- Second start, same person: connected from the stored token (no page, no prompt);
-- :McpLogout ends disabled; enabled again it needs a sign-in, and mcpls does not ask again;
-- a sign-in can be cancelled; :McpDisable turns it off.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h") .. "/harness.lua")
local mcpls = require("mcpls")

local opened = {}
H.setup({ svc = { url = vim.env.MCPLS_TEST_URL } }, {
  open_url = function(url)
    table.insert(opened, url) -- and the person never finishes the page
    return true
  end,
})
H.wait_state("svc", "connected")
H.equal(mcpls.statusline(), "MCP 1/1", "statusline")
H.equal(vim.fn.getcompletion("McpLogout ", "cmdline"), { "svc" }, "completion")

vim.cmd("McpLogout svc")
local status = H.wait_state("svc", "disabled")
H.check(status.auth.authenticated == false, "signed out")
H.equal(mcpls.statusline(), "MCP 0/0", "statusline signed out")
H.wait(":McpLogout's report", function()
  return #H.notes_with("svc: disabled") == 1
end)

vim.cmd("McpEnable svc")
H.wait_state("svc", "authRequired")
H.equal(mcpls.statusline(), "MCP 0/1 ⚠1", "statusline enabled again")
H.equal(#H.notes_with("svc needs you to sign in: :McpAuthenticate svc"), 1, "announcements")
-- One more round trip after the state change, for a prompt mcpls should not send.
local done = false
mcpls.client():request("mcp/status", vim.empty_dict(), function()
  done = true
end)
H.wait("mcp/status", function()
  return done
end)
H.equal(#H.selects, 0, "prompts (mcpls asks once per server, ever)")
H.equal(opened, {}, "pages opened")

-- A sign-in the person gives up on: :McpAuthenticate! cancels it.
vim.cmd("McpAuthenticate svc")
H.wait("the sign-in page", function()
  return #opened == 1
end)
H.wait_state("svc", "authenticating")
vim.cmd("McpAuthenticate! svc")
H.wait_state("svc", "authRequired")
H.equal(#H.notes_with("mcpls: svc: sign-in cancelled"), 1, "cancelled")

vim.cmd("McpDisable svc")
H.wait_state("svc", "disabled")
H.equal(mcpls.statusline(), "MCP 0/0", "statusline disabled")
H.done()
