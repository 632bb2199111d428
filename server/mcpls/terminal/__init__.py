"""`mcpls status | login | logout | doctor | completion`: the terminal side of mcpls, on the
same hub, OAuth client and token store as `mcpls serve` (a sign-in in one is a sign-in in
the other). Each command module exposes `register(subparsers)`."""
