-- :checkhealth mcpls: the executable, its version, and every server's state.
local M = {}

local view = require("mcpls.view")

--- The command that prints mcpls's version: `cmd` up to "serve", then --version.
---@param cmd string[]
---@return string[]
function M.version_command(cmd)
  local argv = {}
  for _, arg in ipairs(cmd) do
    if arg == "serve" then
      break
    end
    table.insert(argv, arg)
  end
  table.insert(argv, "--version")
  return argv
end

function M.check()
  local health = vim.health
  local mcpls = require("mcpls")
  health.start("mcpls")
  if vim.fn.has("nvim-0.10") == 1 then
    health.ok("Neovim " .. tostring(vim.version()))
  else
    health.error("Neovim 0.10 or newer is needed")
  end
  local options = mcpls.config()
  if not options then
    health.warn(
      "setup() has not been called",
      { 'Add require("mcpls").setup({ servers = { ... } }) to your config' }
    )
  end
  local cmd = options and options.cmd or { "mcpls", "serve" }
  local path = vim.fn.exepath(cmd[1])
  if path == "" then
    health.error(("`%s` not found"):format(cmd[1]), {
      "Install mcpls (pip install mcpls) or set `cmd` in setup() to its full path",
    })
  else
    health.ok(("executable: %s"):format(path))
    local ok, result = pcall(function()
      return vim.system(M.version_command(cmd), { text = true }):wait(15000)
    end)
    if ok and result.code == 0 then
      health.ok("version: " .. vim.trim(result.stdout))
    else
      local why = ok and vim.trim((result.stderr or "") .. (result.stdout or ""))
        or tostring(result)
      health.warn(("`%s` failed: %s"):format(table.concat(M.version_command(cmd), " "), why))
    end
  end

  health.start("mcpls: servers")
  local client = mcpls.client()
  if not client then
    health.warn("mcpls is not running", { "Call setup(); if it exited, see :LspLog" })
    return
  end
  local info = client.server_info or {}
  health.ok(
    ("running: client %d, %s %s"):format(client.id, info.name or "mcpls", info.version or "")
  )
  local statuses = mcpls.status()
  local names = view.names(statuses)
  if #names == 0 then
    health.info("no MCP servers configured")
  end
  for _, name in ipairs(names) do
    local status = statuses[name]
    local text = ("%s: %s"):format(name, view.state_words(status))
    if status.error then
      text = text .. " · " .. status.error.message
    end
    if view.attention(status) then
      health.warn(text, { view.announcement(status) })
    elseif status.state == "connected" or status.state == "disabled" then
      health.ok(text)
    else
      health.info(text)
    end
  end
end

return M
