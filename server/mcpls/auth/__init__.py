"""The OAuth 2.1 client for remote MCP servers: pure decisions and the I/O around them."""
