"""`mcpls --version`, `--help` with an example for every subcommand, and the completion
scripts (the bash one run by a real bash, server names from servers.json)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contract import validate_cli_output
from mcpls import __version__
from terminal.runner import Cli

COMMANDS = ["serve", "demo", "status", "login", "logout", "doctor", "completion"]


async def test_version(cli: Cli) -> None:
    result = await cli.run("--version")
    assert result.code == 0
    assert result.stdout.strip() == f"mcpls {__version__}"


async def test_every_subcommand_has_help_with_an_example(cli: Cli) -> None:
    top = await cli.run("--help")
    assert top.code == 0
    for command in COMMANDS:
        assert f"    {command}" in top.stdout, command
        assert "_servers" not in top.stdout  # the completion helper stays hidden
        result = await cli.run(command, "--help")
        assert result.code == 0, command
        assert "example" in result.stdout, command
        assert f"mcpls {command}" in result.stdout.split("example")[1], command


def bash_complete(script: str, words: list[str], env: dict[str, str]) -> list[str]:
    """COMPREPLY of the script's function for the command line `words` (last is current)."""
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _mcpls; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, "-c", program], capture_output=True, text=True, env=env, check=True, timeout=30
    )
    return [w for w in done.stdout.splitlines() if w]


async def test_bash_completion_of_subcommands_options_and_server_names(cli: Cli) -> None:
    cli.configure({"linear": "https://mcp.linear.app/mcp", "notion": "https://x.example/mcp"})
    script = (await cli.run("completion", "bash")).stdout
    # `mcpls` on PATH, as after installing: the script asks it for the server names.
    env = {**cli.env, "PATH": f"{Path(sys.executable).parent}:{cli.env.get('PATH', '')}"}
    assert set(bash_complete(script, ["mcpls", "lo"], env)) == {"login", "logout"}
    assert bash_complete(script, ["mcpls", "login", ""], env) == ["linear", "notion"]
    assert bash_complete(script, ["mcpls", "doctor", "n"], env) == ["notion"]
    assert "--forget-client" in bash_complete(script, ["mcpls", "logout", "--"], env)
    assert bash_complete(script, ["mcpls", "completion", "f"], env) == ["fish"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
async def test_zsh_and_fish_scripts_name_commands_and_ask_for_servers(cli: Cli, shell: str) -> None:
    script = (await cli.run("completion", shell)).stdout
    for command in ("status", "login", "logout", "doctor"):
        assert command in script
    assert "mcpls _servers" in script
    assert "no-browser" in script
    binary = shutil.which(shell)
    if binary is not None:  # where the shell is installed, the script must parse
        check = await asyncio.create_subprocess_exec(binary, "-n", "-c", script)
        assert await check.wait() == 0


async def test_servers_helper_lists_configured_names(cli: Cli) -> None:
    cli.configure({"b": "https://b.example/mcp", "a": {"command": "true"}})
    result = await cli.run("_servers")
    assert result.stdout.split() == ["a", "b"]


async def test_status_reports_an_invalid_entry_and_keeps_the_others(cli: Cli) -> None:
    cli.configure({"good": "https://good.example/mcp", "bad": {"url": "ftp://x", "oops": 1}})
    result = await cli.run("status", "--json")
    assert result.code == 0, result.output
    document = result.json()
    validate_cli_output("status", document)
    entries = {e["server"]: e for e in document["servers"]}
    assert entries["good"] == {
        "server": "good",
        "transport": "http",
        "url": "https://good.example/mcp",
        "enabled": True,
    }
    assert "servers.bad.oops: unknown setting" in entries["bad"]["configError"]
    table = await cli.run("status")
    assert "invalid settings" in table.stdout
    assert "bad: servers.bad.oops: unknown setting" in table.stdout
