"""The terminal side of mcpls: subcommands a person or a stdio-only MCP client runs."""
