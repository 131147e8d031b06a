"""The CLI reference (docs/cli.md), generated from the commands' own ``--help``.

``python -m trialwright.cli.reference > docs/cli.md`` regenerates it; a test fails when the committed file
differs from what the commands say, so the reference cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["command_paths", "render_reference"]

_HEADER = """# CLI reference

Generated from `trialwright --help` by `python -m trialwright.cli.reference > docs/cli.md`; do not edit by
hand (a test compares it with the commands).
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


def render_reference(app: typer.Typer) -> str:
    """Markdown with one section per command: its usage and help, exactly as ``--help`` prints them."""
    root = typer.main.get_command(app)
    parts = [_HEADER]
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
