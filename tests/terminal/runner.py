"""Run the real `mcpls` command line as a subprocess (`python -m mcpls ...`) in the test's
isolated XDG folders: `Cli` (tests/terminal/conftest.py gives it as the `cli` fixture).
What every command printed goes to the suite's secret scan (tests/secret_scan.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import secret_scan

# How long one command may take: a sign-in waits on a browser step done by the test.
COMMAND_TIMEOUT_S = 60.0
# The address a sign-in prints on a line of its own, indented.
URL_LINE = re.compile(r"^\s+(https?://\S+)\s*$")


@dataclass
class Result:
    """A finished command: exit status and everything it printed."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Running:
    """A command still running (a sign-in waiting for its browser step)."""

    process: asyncio.subprocess.Process
    command: str
    stderr_lines: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr_rest: str = ""

    def printed(self) -> list[tuple[str, str]]:
        """What the command printed so far, as (where, text) for the secret scan."""
        return [
            (f"stdout of {self.command}", self.stdout),
            (f"stderr of {self.command}", "".join(self.stderr_lines) + self.stderr_rest),
        ]

    async def line_matching(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """Read stderr until a line matches `pattern`."""
        assert self.process.stderr is not None
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            while True:
                raw = await self.process.stderr.readline()
                if not raw:
                    raise AssertionError(
                        "the command ended without printing the expected line:\n"
                        + "".join(self.stderr_lines)
                    )
                text = raw.decode()
                self.stderr_lines.append(text)
                found = pattern.search(text)
                if found:
                    return found

    async def type(self, text: str) -> None:
        """Type a line on the command's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        await self.process.stdin.drain()

    async def finish(self) -> Result:
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            stdout, stderr = await self.process.communicate()
        code = self.process.returncode
        assert code is not None
        self.stdout, self.stderr_rest = stdout.decode(), stderr.decode()
        return Result(code, self.stdout, "".join(self.stderr_lines) + self.stderr_rest)


class Cli:
    """`mcpls` as a person runs it, with the test's servers.json and token store."""

    def __init__(self, xdg: Path) -> None:
        self.xdg = xdg
        # No display and no SSH unless a test says so: the sign-in method is then known.
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PYTEST")
            and k not in ("DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_TTY", "BROWSER")
        }

    @property
    def servers_file(self) -> Path:
        return self.xdg / "config" / "mcpls" / "servers.json"

    def configure(self, servers: Mapping[str, str | dict[str, Any]], **settings: Any) -> None:
        """Write servers.json: plain http on this machine and file storage unless given."""
        document = {
            "servers": {
                name: {"url": value} if isinstance(value, str) else value
                for name, value in servers.items()
            },
            "allowInsecureLoopback": True,
            "tokenStorage": "file",
            **settings,
        }
        self.servers_file.parent.mkdir(parents=True, exist_ok=True)
        self.servers_file.write_text(json.dumps(document))

    async def start(self, *args: str, env: Mapping[str, str] | None = None) -> Running:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mcpls",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, **(env or {})},
        )
        running = Running(process, " ".join(["mcpls", *args[:1]]))
        secret_scan.watch(running.printed)
        return running

    async def run(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        running = await self.start(*args, env=env)
        assert running.process.stdin is not None
        running.process.stdin.close()
        return await running.finish()
