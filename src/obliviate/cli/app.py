"""The typer application the command modules register on, and where results are printed."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    help="Make a language model forget, and prove that it did.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's help: wraps at 80 columns, where rich's panels cut names
)
#: Results go to standard output; progress and errors go to standard error.
stdout = Console()
bench_app = typer.Typer(
    help="The built-in benchmarks: fictitious people (facts) and an invented guild's secret "
    "procedures (behaviour).",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")
