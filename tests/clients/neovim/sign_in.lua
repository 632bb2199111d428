-- First start against an OAuth-protected MCP server: it needs a sign-in, the person is
-- asked once and says "Not now", no page opens by itself; :McpAuthenticate opens the page
-- through open_url (the test's browser completes it) and the server connects.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h") .. "/harness.lua")
local mcpls = require("mcpls")

H.equal(mcpls.statusline(), "", "statusline before setup")
H.check(vim.api.nvim_buf_get_name(0) == "" and vim.bo.filetype == "", "no file is open")
local opened = {}
H.answer_select("Not now") -- the one-time "needs you to sign in" prompt
H.setup({ svc = { url = vim.env.MCPLS_TEST_URL } }, {
  open_url = function(url)
    table.insert(opened, url)
    return H.browse(url)
  end,
})

local status = H.wait_state("svc", "authRequired")
H.equal(status.error.kind, "authRequired", "error kind")
H.wait("the one-time prompt", function()
  return #H.selects == 1
end)
H.equal(H.selects[1].prompt, "mcpls: svc needs you to sign in", "prompt")
H.equal(H.selects[1].labels, { "Authenticate", "Not now" }, "prompt actions")
H.equal(#H.notes_with("svc needs you to sign in: :McpAuthenticate svc"), 1, "announcements")
H.equal(mcpls.statusline(), "MCP 0/1 ⚠1", "statusline needing sign-in")
H.equal(vim.fn.getcompletion("McpAuthenticate ", "cmdline"), { "svc" }, "completion")
H.equal(opened, {}, "pages opened by themselves")

-- Restarted, it needs a sign-in again: :McpRestart reports it, but it is not announced twice.
vim.cmd("McpRestart svc")
H.wait(":McpRestart's report", function()
  return #H.notes_with("mcpls: svc: needs sign-in") == 1
end)
H.equal(#H.notes_with("svc needs you to sign in: :McpAuthenticate svc"), 1, "announcements")
H.equal(#H.selects, 1, "prompts")

local progress = {}
vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(event)
    table.insert(progress, event.data.params.value)
  end,
})
vim.cmd("McpAuthenticate svc")
status = H.wait_state("svc", "connected")
-- The sign-in's progress reached Neovim's LSP progress, with the page's address in it.
H.equal(progress[1].title, "Signing in to svc", "progress title")
H.check(
  vim.iter(progress):any(function(value)
    return value.kind == "report" and value.message:find(opened[1], 1, true) ~= nil
  end),
  "the sign-in URL in the progress: " .. vim.inspect(progress)
)
H.equal(#opened, 1, "pages opened by :McpAuthenticate")
H.wait("the browser", function()
  return #H.browser_exits == 1
end)
H.equal(H.browser_exits, { 0 }, "browser exit codes")
H.check(status.auth.authenticated == true, "authenticated")
H.equal(status.auth.issuer, vim.env.MCPLS_TEST_ISSUER, "issuer")
H.equal(mcpls.statusline(), "MCP 1/1", "statusline connected")
H.equal(#H.notes_with("svc needs you to sign in: :McpAuthenticate"), 1, "announced once")
H.equal(#H.selects, 1, "prompts")

vim.cmd("McpTools svc")
local tools = H.float_lines(":McpTools")
H.check(vim.tbl_contains(tools, "    arguments: text"), "echo's argument in " .. vim.inspect(tools))

local answer
mcpls.call_tool("svc", "echo", { text = "hi" }, function(err, result)
  answer = err or result
end)
H.wait("echo", function()
  return answer ~= nil
end)
H.equal(answer.content[1].text, "hi", "echo")

vim.cmd("McpStatus")
local lines = H.float_lines(":McpStatus")
H.out.status = lines
H.check(lines[1] == "MCP servers: 1 of 1 enabled connected", lines[1])
local text = table.concat(lines, "\n")
for _, want in ipairs({
  "● svc  connected · ",
  "account: signed in with " .. vim.env.MCPLS_TEST_ISSUER,
  "token expires ",
  "scopes: ",
}) do
  H.check(text:find(want, 1, true) ~= nil, want .. " in\n" .. text)
end
H.done()
