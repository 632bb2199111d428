"""An MCP server over stdio from the official Python SDK (`mcp` 2.3), for tests.

Run as `python tests/peers/stdio_server.py`. Besides the tools of tools.py it has the
ones only a local process can offer: `crash`, `stderr_line`, `get_env`, `get_pid`.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy knows tests/ as the root: this file is `peers.<name>` to it
    from peers.tools import build_server
else:  # run as a script, tests/peers/ is on sys.path
    from tools import build_server


def main() -> None:
    server = build_server("mcpls-test-stdio")

    @server.tool()
    def crash(code: int) -> str:
        """Exit the process at once with status `code`, answering nothing."""
        sys.stderr.flush()
        os._exit(code)

    @server.tool()
    def stderr_line(text: str) -> str:
        """Write `text` as one line on stderr."""
        print(text, file=sys.stderr, flush=True)
        return "written"

    @server.tool()
    def get_env(name: str) -> str:
        """The value of the environment variable `name` ("" when unset)."""
        return os.environ.get(name, "")

    @server.tool()
    def get_pid() -> int:
        """This process's id."""
        return os.getpid()

    server.run("stdio")


if __name__ == "__main__":
    main()
