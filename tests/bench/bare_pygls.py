"""The baseline for start-up and for the LSP hop: a pygls server with one echo request."""

from typing import Any

from pygls.lsp.server import LanguageServer

server = LanguageServer("bare", "1.0")


@server.feature("bench/echo")
def echo(ls: LanguageServer, params: Any) -> Any:
    return params


server.start_io()
