-- The :Mcp* commands. They need require("mcpls").setup({...}) to have started mcpls.
if vim.g.loaded_mcpls then
  return
end
vim.g.loaded_mcpls = true

if vim.fn.has("nvim-0.10") == 0 then
  vim.notify("mcpls needs Neovim 0.10 or newer", vim.log.levels.ERROR)
  return
end

local function complete(command)
  return function(arglead)
    return vim.tbl_filter(function(name)
      return vim.startswith(name, arglead)
    end, require("mcpls").complete(command))
  end
end

vim.api.nvim_create_user_command("McpStatus", function()
  require("mcpls").show_status()
end, { nargs = 0, desc = "mcpls: show every MCP server's state, account and errors" })

vim.api.nvim_create_user_command("McpAuthenticate", function(args)
  local server = args.args ~= "" and args.args or nil
  if args.bang then
    require("mcpls").cancel_authentication(server)
  else
    require("mcpls").authenticate(server)
  end
end, {
  nargs = "?",
  bang = true,
  complete = complete("authenticate"),
  desc = "mcpls: sign in to an MCP server (! cancels a pending sign-in)",
})

for command, spec in pairs({
  McpLogout = { "logout", "sign out of an MCP server (the server ends disabled)" },
  McpEnable = { "enable", "enable an MCP server" },
  McpDisable = { "disable", "disable an MCP server" },
  McpRestart = { "restart", "restart an MCP server's connection" },
  McpTools = { "tools", "list an MCP server's tools" },
}) do
  local method, desc = spec[1], spec[2]
  vim.api.nvim_create_user_command(command, function(args)
    require("mcpls")[method](args.args ~= "" and args.args or nil)
  end, { nargs = "?", complete = complete(method), desc = "mcpls: " .. desc })
end
