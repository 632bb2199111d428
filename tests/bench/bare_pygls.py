"""The baseline for start-up: a pygls server with no features at all."""

from pygls.lsp.server import LanguageServer

LanguageServer("bare", "1.0").start_io()
