"""The CLI reference (docs/cli.md), generated from the commands' own ``--help``.

``python -m trialwright.cli.reference > docs/cli.md`` regenerates it; a test fails when the committed file
differs from what the commands say, so the reference cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["command_paths", "render_exit_codes", "render_reference"]

_HEADER = """# CLI reference

Generated from `trialwright --help` by `python -m trialwright.cli.reference > docs/cli.md`; do not edit by
hand (a test compares it with the commands, and another holds each command's `--help` as the terminal shows it,
in Rich panels, to the same options and help text: `tests/spec/docs/test_cli_help_matches_reference.py`).

## Scripting

- **`--json`**: every command that prints data takes `--json` and then prints one JSON document on standard
  output, made from the service's typed result (fields by name; enums by value; dates and times in ISO 8601;
  a secret such as the mail server's password is never in it). Messages, warnings and errors go to standard
  error, so `trialwright ... --json | jq` reads only the document. The one-line actions take it too and print
  what they did as data (`user add`: the account and its one-time set-password token, or the pending request;
  `user token`: the token with its id and expiry; `database unlock`: the lock state; ...). Commands without
  `--json` print no data: `serve`, `start` and `demo` run until stopped; `restore` checks and reports step by
  step; `recruitment registry-update` prints text to paste into the registry record.
- **Exit codes**: the same number for the same outcome in every command (below).
- **The role before the password**: a command that needs a role and a password (`unblind`, `database lock
  --override`, `safety decide`, `access decide`) refuses a role that may never do it with the service's role rule
  (exit 4) before it asks any password; the role allowed is then asked it.
- **Passwords**: every command that takes the acting user's password (`--as`, the lock's override, the emergency
  unblinding, a DSMB or data access decision) reads it from standard input with `--password-stdin`, else from the
  `TRIALWRIGHT_PASSWORD` variable, else a hidden prompt; with none of these (no terminal, standard input at its
  end) it says so and ends with exit 2, never a bare "Aborted.".
- **Shell completion**: `trialwright --install-completion` installs it for the current shell (bash, zsh, fish,
  PowerShell); `trialwright --show-completion` prints the script to install by hand. Open a new shell after.
- **As a library**: `import trialwright` and `trialwright.open_trial(database_url)` (docs/api.md, "Python").
"""


def _walk(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    # Typer ships its own copy of click, so groups are recognised by what they have, not their class.
    found = [(path, command)]
    if hasattr(command, "commands"):
        for name in sorted(command.commands):
            found.extend(_walk(command.commands[name], (*path, name)))
    return found


def command_paths(app: typer.Typer) -> list[str]:
    """Every command and group as it is typed, e.g. ``trialwright protocol check``."""
    root = typer.main.get_command(app)
    return [" ".join(("trialwright", *path)) for path, _ in _walk(root, ())]


def render_exit_codes() -> str:
    """The exit-code table (``trialwright.cli.common.ExitCode``) and which exceptions end a command with which code
    (``EXIT_CODES``), as Markdown."""
    from trialwright.cli.common import EXIT_CODES, ExitCode

    lines = ["## Exit codes", "", "| code | name | meaning |", "|---:|---|---|"]
    docs = _attribute_docs(ExitCode)
    lines += [f"| {code.value} | `{code.name}` | {docs.get(code.name, '')} |" for code in ExitCode]
    lines += [
        "",
        "Click's own usage errors (an unknown option, a missing argument) end with 2 too. A service's refusal ends "
        "with the code of its exception type, the first match in this table (`trialwright.cli.common.EXIT_CODES`); "
        "a refusal the service marks `AccessDenied` (the user's role may not, a wrong password) ends with 4:",
        "",
        "| exception | code |",
        "|---|---:|",
    ]
    lines += [f"| `{dotted}` | {code.value} `{code.name}` |" for dotted, code in EXIT_CODES]
    return "\n".join(lines) + "\n"


def _attribute_docs(kind: type) -> dict[str, str]:
    # The docstring under each member of an enum, read from its source (they are not kept at run time).
    import ast
    import inspect
    import itertools
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(kind)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    found: dict[str, str] = {}
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.Assign)
            and isinstance(statement.targets[0], ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.targets[0].id] = " ".join(following.value.value.split())
    return found


def render_reference(app: typer.Typer) -> str:
    """Markdown with one section per command: its usage and help, exactly as ``--help`` prints them; after the
    scripting notes, the exit-code table."""
    root = typer.main.get_command(app)
    parts = [_HEADER, render_exit_codes()]
    for path, command in _walk(root, ()):
        name = " ".join(("trialwright", *path))
        ctx = command.context_class(command, info_name=name, terminal_width=100, max_content_width=100)
        formatter = ctx.make_formatter()
        command.format_usage(ctx, formatter)
        command.format_help_text(ctx, formatter)
        command.format_options(ctx, formatter)  # a group's options end with its commands
        text = formatter.getvalue().rstrip()
        parts.append(f"## `{name}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover - a documentation generator
    from trialwright.cli.main import app

    print(render_reference(app), end="")
