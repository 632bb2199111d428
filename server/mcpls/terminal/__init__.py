"""`mcpls status | login | logout | doctor | completion | proxy`: the terminal side of mcpls,
on the same hub, OAuth client and token store as `mcpls serve` (a sign-in in one is a
sign-in in the other), for a person or a stdio-only MCP client."""
