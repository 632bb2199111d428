-- An MCP server's form (mcp/elicit) is asked field by field with the default pre-filled;
-- Escape declines it. The server's `ask_name` tool returns what it got back.
local H = dofile(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h") .. "/harness.lua")
local mcpls = require("mcpls")

H.setup({ py = { url = vim.env.MCPLS_TEST_URL } })
H.wait_state("py", "connected")
H.equal(mcpls.statusline(), "MCP 1/1", "statusline")

local function ask_name()
  local answer
  mcpls.call_tool("py", "ask_name", {}, function(err, result)
    answer = err or result
  end)
  H.wait("ask_name", function()
    return answer ~= nil
  end)
  H.check(answer.content ~= nil, vim.inspect(answer))
  return vim.json.decode(answer.content[1].text)
end

H.answer_input(function(opts)
  H.equal(opts.default, "anonymous", "pre-filled default")
  return "Ada"
end)
H.equal(ask_name(), { action = "accept", content = { name = "Ada" } }, "accepted form")
H.equal(#H.inputs, 1, "fields asked")
H.equal(H.inputs[1].prompt, "[py] Name (What should the server call you?): ", "prompt")
H.equal(#H.notes_with("py asks: What is your name?"), 1, "the server's message shown")

H.answer_input(false) -- Escape
H.equal(ask_name().action, "decline", "escaped form")
H.done()
