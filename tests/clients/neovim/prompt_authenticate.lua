-- Choosing "Authenticate" in mcpls's one-time prompt (vim.ui.select) signs in: the page
-- opens through open_url, because the person asked for it there.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h") .. "/harness.lua")
local mcpls = require("mcpls")

local opened = {}
H.answer_select("Authenticate")
H.setup({ svc = { url = vim.env.MCPLS_TEST_URL } }, {
  open_url = function(url)
    table.insert(opened, url)
    return H.browse(url)
  end,
})
local status = H.wait_state("svc", "connected")
H.check(status.auth.authenticated == true, "authenticated")
H.equal(#H.selects, 1, "prompts")
H.equal(#opened, 1, "pages opened")
H.wait("the browser", function()
  return #H.browser_exits == 1
end)
H.equal(H.browser_exits, { 0 }, "browser exit codes")
H.equal(mcpls.statusline(), "MCP 1/1", "statusline")
H.done()
