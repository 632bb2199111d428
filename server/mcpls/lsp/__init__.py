"""The editor edge (LSP): handlers translate JSON-RPC to hub calls and back."""
