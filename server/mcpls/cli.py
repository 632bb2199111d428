"""`mcpls serve | demo | proxy | status | login | logout | doctor | completion`: the command
line.

`serve`, `demo` and `proxy` are here; each terminal command lives in `mcpls.terminal.<module>`,
which adds its own subparser (`register`) with a `run(args) -> exit status` default."""

from __future__ import annotations

import argparse
import logging
import sys

from mcpls import __version__

# Light to import (the OAuth stack loads only when a command runs): `mcpls serve` starts
# as fast with them registered (tests/unit/test_layering.py).
from mcpls.terminal import completion, doctor, login, status


class _ExpectedRpcErrors(logging.Filter):
    """pygls logs a traceback for every error answer; ours are answers, not crashes."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pygls.exceptions import JsonRpcException

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, JsonRpcException)


def _setup_logging(level: str, log_file: str | None) -> None:
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler()
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    # pygls logs every message body, and the editor's initialization options (which may
    # hold a client secret from the settings), at info level: never let it print them.
    logging.getLogger("pygls").setLevel(max(root.level, logging.WARNING))
    # httpcore's debug trace prints every response's headers, Mcp-Session-Id and Set-Cookie
    # among them; httpx's own info line (method, URL, status) is what a debug log needs.
    logging.getLogger("httpcore").setLevel(max(root.level, logging.INFO))
    handler.addFilter(_ExpectedRpcErrors())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mcpls` console script."""
    parser = argparse.ArgumentParser(
        prog="mcpls",
        description="Editor backend for remote MCP servers (speaks LSP on stdio), and the "
        "terminal commands that share its sign-ins.",
        epilog="Run `mcpls COMMAND --help` for each command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"mcpls {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run as a language server on stdio (editors)",
        description="Run as a language server on stdio: what an editor starts.",
        epilog="example:\n  mcpls serve --log-file /tmp/mcpls.log --log-level debug",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--log-file", help="write the log here instead of stderr")
    serve.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    serve.set_defaults(run=_serve)
    demo = commands.add_parser(
        "demo",
        help="start a local MCP server and walk through mcpls",
        description="Start a local OAuth-protected MCP server and a scripted editor.",
        epilog="example:\n  mcpls demo --port 8765",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--port", type=int, default=0, help="port of the demo server (0: any)")
    demo.set_defaults(run=_demo)
    proxy = commands.add_parser(
        "proxy",
        help="a stdio MCP server forwarding to a remote one (a drop-in for mcp-remote)",
        description="Serve MCP on stdin/stdout and forward every message to the remote "
        "server NAME (from servers.json) or URL, with mcpls's sign-in and token store.",
        epilog="example: mcpls proxy notion\n"
        'in an MCP client\'s configuration: {"command": "mcpls", "args": ["proxy", "notion"]}',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    proxy.add_argument("server", metavar="NAME|URL", help="a server of servers.json, or a URL")
    proxy.add_argument(
        "--login", action="store_true", help="sign in when needed instead of failing"
    )
    proxy.add_argument("--log-file", help="write the log here instead of stderr")
    proxy.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    proxy.set_defaults(run=_proxy)
    for module in (status, login, doctor, completion):
        module.register(commands)
    parser.set_defaults(root_parser=parser)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


def _serve(args: argparse.Namespace) -> int:
    from mcpls.lsp.server import serve as run_server

    _setup_logging(args.log_level, args.log_file)
    return run_server()


def _proxy(args: argparse.Namespace) -> int:
    from mcpls.terminal.proxy import run_proxy

    _setup_logging(args.log_level, args.log_file)
    return run_proxy(args.server, login=args.login)


def _demo(args: argparse.Namespace) -> int:
    from mcpls.demo import run_demo

    return run_demo(port=args.port)


if __name__ == "__main__":
    sys.exit(main())
