"""``trialkit protocol``: check and show a protocol file."""

from __future__ import annotations

import typer

app = typer.Typer(help="Check and show a trial's protocol file.", no_args_is_help=True)
