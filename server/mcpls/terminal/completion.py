"""`mcpls completion bash|zsh|fish`: a completion script for subcommands, their options and
the server names of servers.json (asked of `mcpls _servers` at completion time, so a new
server completes without reinstalling the script)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from mcpls.terminal.context import EXIT_OK, load_settings

EXAMPLES = """examples:
  mcpls completion bash > ~/.local/share/bash-completion/completions/mcpls
  mcpls completion zsh > "${fpath[1]}/_mcpls"
  mcpls completion fish > ~/.config/fish/completions/mcpls.fish
"""
# Subcommands whose argument is a server (NAME|URL).
TAKES_SERVER = ("login", "logout", "doctor", "proxy")


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, fish)",
        description="Print a completion script for subcommands, options and server names.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("shell", choices=["bash", "zsh", "fish"])
    parser.set_defaults(run=run)
    # Hidden: the server names, one a line, for the scripts.
    servers = commands.add_parser("_servers")
    servers.set_defaults(run=list_servers)


def options_of(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Each visible subcommand of `parser` and its long options."""
    found: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            visible = {choice.dest for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if name in visible:
                    found[name] = [
                        o for a in sub._actions for o in a.option_strings if o.startswith("--")
                    ]
    return found


def run(args: argparse.Namespace) -> int:
    commands: Mapping[str, list[str]] = options_of(args.root_parser)
    print(SCRIPTS[args.shell](commands))
    return EXIT_OK


def list_servers(args: argparse.Namespace) -> int:
    for name in sorted(load_settings().servers):
        print(name)
    return EXIT_OK


def bash(commands: Mapping[str, list[str]]) -> str:
    cases = "\n".join(
        f'    {name}) opts="{" ".join(options)}" ;;' for name, options in commands.items()
    )
    servers = "|".join(c for c in TAKES_SERVER if c in commands)
    return f"""# bash completion for mcpls (mcpls completion bash)
_mcpls() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} cmd=${{COMP_WORDS[1]}} opts=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "{" ".join(commands)} --help --version" -- "$cur"))
    return
  fi
  case "$cmd" in
{cases}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
  elif [[ "$cmd" == @({servers}) ]]; then
    COMPREPLY=($(compgen -W "$(mcpls _servers 2>/dev/null)" -- "$cur"))
  elif [ "$cmd" = completion ]; then
    COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur"))
  fi
}}
shopt -s extglob
complete -F _mcpls mcpls
"""


def zsh(commands: Mapping[str, list[str]]) -> str:
    names = " ".join(commands)
    cases = "\n".join(
        f"    {name}) compadd -- {' '.join(options)} --help ;;"
        for name, options in commands.items()
    )
    servers = "|".join(c for c in TAKES_SERVER if c in commands)
    return f"""#compdef mcpls
# zsh completion for mcpls (mcpls completion zsh)
_mcpls() {{
  if (( CURRENT == 2 )); then
    compadd -- {names} --help --version
    return
  fi
  local cmd=${{words[2]}}
  if [[ ${{words[CURRENT]}} == -* ]]; then
    case $cmd in
{cases}
    esac
    return
  fi
  case $cmd in
    {servers}) compadd -- ${{(f)"$(mcpls _servers 2>/dev/null)"}} ;;
    completion) compadd -- bash zsh fish ;;
  esac
}}
compdef _mcpls mcpls
"""


def fish(commands: Mapping[str, list[str]]) -> str:
    lines = [
        "# fish completion for mcpls (mcpls completion fish)",
        "complete -c mcpls -f",
    ]
    for name in commands:
        lines.append(f"complete -c mcpls -n __fish_use_subcommand -a {name}")
        for option in commands[name]:
            lines.append(
                f"complete -c mcpls -n '__fish_seen_subcommand_from {name}' -l {option[2:]}"
            )
    servers = " ".join(c for c in TAKES_SERVER if c in commands)
    lines.append(
        f"complete -c mcpls -n '__fish_seen_subcommand_from {servers}' -a '(mcpls _servers)'"
    )
    lines.append("complete -c mcpls -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'")
    return "\n".join(lines) + "\n"


SCRIPTS = {"bash": bash, "zsh": zsh, "fish": fish}
