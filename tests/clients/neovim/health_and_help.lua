-- :checkhealth mcpls reports the executable, its version and each server's state; setup()
-- again reconfigures the running mcpls; the help file's tags generate without duplicates
-- and :help finds every command and function.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h") .. "/harness.lua")
local mcpls = require("mcpls")

H.setup({
  py = { url = vim.env.MCPLS_TEST_URL },
  off = { url = vim.env.MCPLS_TEST_URL, enabled = false },
})
H.wait_state("py", "connected")
H.wait_state("off", "disabled")

vim.cmd("checkhealth mcpls")
local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
H.out.health = lines
local text = table.concat(lines, "\n")
for _, want in ipairs({
  "OK executable: " .. vim.env.MCPLS,
  "OK version: mcpls " .. vim.env.MCPLS_TEST_VERSION,
  "OK running: client ",
  "OK off: disabled",
  "OK py: connected",
}) do
  H.check(text:find(want, 1, true) ~= nil, want .. " in\n" .. text)
end
H.check(not text:find("ERROR", 1, true), "no error in\n" .. text)
vim.cmd("bwipeout!")

-- setup() again changes the servers of the running mcpls (no restart): `off` goes.
local client_id = mcpls.client().id
H.equal(H.setup({ py = { url = vim.env.MCPLS_TEST_URL } }), client_id, "same client")
H.wait("off removed", function()
  return mcpls.status().off == nil
end)
H.equal(mcpls.status().py.state, "connected", "py untouched")

-- :helptags on a copy, so the repository gets no generated tags file.
local docs = vim.env.MCPLS_TEST_DOCS
vim.fn.mkdir(docs .. "/doc", "p")
local plugin_doc = vim.api.nvim_get_runtime_file("doc/mcpls.txt", false)[1]
H.check(plugin_doc ~= nil, "doc/mcpls.txt on the runtimepath")
vim.fn.writefile(vim.fn.readfile(plugin_doc), docs .. "/doc/mcpls.txt")
vim.cmd.helptags(docs .. "/doc") -- raises E154 on a duplicate tag
vim.opt.runtimepath:prepend(docs)
for _, tag in ipairs({
  "mcpls",
  "mcpls-setup",
  "mcpls.setup()",
  "mcpls.status()",
  "mcpls.statusline()",
  ":McpStatus",
  ":McpAuthenticate",
  ":McpLogout",
  ":McpEnable",
  ":McpDisable",
  ":McpRestart",
  ":McpTools",
  "mcpls-elicitation",
  "mcpls-health",
}) do
  vim.cmd.help(tag)
  H.equal(vim.fn.expand("%:t"), "mcpls.txt", ":help " .. tag)
  vim.cmd.helpclose()
end
H.done()
