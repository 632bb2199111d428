-- mcp/elicit: an MCP server's form (MCP's restricted JSON Schema: flat string, number,
-- integer, boolean and enum fields) asked field by field with vim.ui.input and
-- vim.ui.select, defaults pre-filled. Escape on any field declines the whole form.

local M = {}

--- The form's fields in the order they are asked: required ones first, then by name (a Lua
--- table does not keep the order of a JSON object's properties).
---@param schema table requestedSchema
---@return {name: string, spec: table, required: boolean}[]
function M.fields(schema)
  local required = {}
  for _, name in ipairs(schema.required or {}) do
    required[name] = true
  end
  local fields = {}
  for name, spec in pairs(schema.properties or {}) do
    table.insert(fields, { name = name, spec = spec, required = required[name] == true })
  end
  table.sort(fields, function(a, b)
    if a.required ~= b.required then
      return a.required
    end
    return a.name < b.name
  end)
  return fields
end

--- The choices of an enum or boolean field as {value, label} pairs, default first; nil for a
--- field typed in.
---@param spec table
---@return {value: any, label: string}[]?
function M.choices(spec)
  local choices = {}
  if spec.type == "boolean" then
    choices = { { value = true, label = "yes" }, { value = false, label = "no" } }
  elseif type(spec.enum) == "table" then
    for i, value in ipairs(spec.enum) do
      local names = spec.enumNames
      table.insert(choices, { value = value, label = names and names[i] or tostring(value) })
    end
  elseif type(spec.oneOf) == "table" or type(spec.anyOf) == "table" then
    for _, option in ipairs(spec.oneOf or spec.anyOf) do
      if option.const ~= nil then
        table.insert(
          choices,
          { value = option.const, label = option.title or tostring(option.const) }
        )
      end
    end
  else
    return nil
  end
  for i, choice in ipairs(choices) do
    if spec.default ~= nil and choice.value == spec.default then
      table.insert(choices, 1, table.remove(choices, i))
      break
    end
  end
  return choices
end

--- Turn typed text into the field's value. Returns the value (nil: left empty) or nil and
--- what is wrong with the text.
---@param spec table
---@param text string
---@param required boolean
---@return any value, string? problem
function M.convert(spec, text, required)
  if text == "" then
    if required then
      return nil, "this field is required"
    end
    return nil
  end
  if spec.type == "number" or spec.type == "integer" then
    local number = tonumber(text)
    if number == nil then
      return nil, "enter a number"
    elseif spec.type == "integer" and number ~= math.floor(number) then
      return nil, "enter a whole number"
    elseif spec.minimum and number < spec.minimum then
      return nil, ("at least %s"):format(spec.minimum)
    elseif spec.maximum and number > spec.maximum then
      return nil, ("at most %s"):format(spec.maximum)
    end
    return number
  end
  if spec.minLength and vim.fn.strchars(text) < spec.minLength then
    return nil, ("at least %d characters"):format(spec.minLength)
  elseif spec.maxLength and vim.fn.strchars(text) > spec.maxLength then
    return nil, ("at most %d characters"):format(spec.maxLength)
  end
  return text
end

---@param server string
---@param field {name: string, spec: table, required: boolean}
---@return string
local function prompt(server, field)
  local title = field.spec.title or field.name
  local hint = field.spec.description and (" (" .. field.spec.description .. ")") or ""
  local optional = field.required and "" or " [optional]"
  return ("[%s] %s%s%s: "):format(server, title, hint, optional)
end

--- Ask the person for the form of one mcp/elicit request.
--- `await(start)` runs `start(done)` and returns what `done` was called with (the LSP
--- server-request coroutine yields meanwhile).
---@param params {server: string, message: string, requestedSchema: table}
---@param await fun(start: fun(done: fun(...))): any
---@return {action: "accept"|"decline"|"cancel", content?: table}
function M.ask(params, await)
  vim.notify(("mcpls: %s asks: %s"):format(params.server, params.message), vim.log.levels.INFO)
  local fields = M.fields(params.requestedSchema or {})
  local content = vim.empty_dict()
  if #fields == 0 then
    local answer = await(function(done)
      vim.ui.select(
        { "Accept", "Decline" },
        { prompt = ("[%s] %s"):format(params.server, params.message) },
        done
      )
    end)
    return {
      action = answer == "Accept" and "accept" or "decline",
      content = answer == "Accept" and content or nil,
    }
  end
  for _, field in ipairs(fields) do
    local spec = field.spec
    local choices = M.choices(spec)
    if choices then
      if not field.required then
        table.insert(choices, { value = vim.NIL, label = "(leave empty)" })
      end
      local choice = await(function(done)
        vim.ui.select(choices, {
          prompt = prompt(params.server, field),
          format_item = function(c)
            return c.label
          end,
        }, done)
      end)
      if choice == nil then
        return { action = "decline" }
      end
      if choice.value ~= vim.NIL then
        content[field.name] = choice.value
      end
    else
      local problem
      repeat
        local default = spec.default ~= nil and tostring(spec.default) or nil
        local text = await(function(done)
          local where = problem and ("(" .. problem .. ") ") or ""
          vim.ui.input({ prompt = where .. prompt(params.server, field), default = default }, done)
        end)
        if text == nil then
          return { action = "decline" }
        end
        local value
        value, problem = M.convert(spec, text, field.required)
        if problem == nil and value ~= nil then
          content[field.name] = value
        end
      until problem == nil
    end
  end
  return { action = "accept", content = content }
end

return M
