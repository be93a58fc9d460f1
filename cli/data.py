"""`export` and `import`: corrected pairs out as fine-tuning JSONL, labelled reviews in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import fail, store_settings


def export(
    out: Annotated[Path, typer.Option(help="Directory for train.jsonl, val.jsonl, stats.json.")],
    since: Annotated[
        str | None, typer.Option(help="Only pairs logged since (ISO 8601, UTC if naive).")
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="Only this experiment.")] = None,
    split: Annotated[float, typer.Option(help="Train share; the rest is val.")] = 0.8,
    balance: Annotated[bool, typer.Option(help="Cap each category at 2x the smallest.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed of split and balance.")] = 42,
    include_confirmed: Annotated[
        bool, typer.Option(help="Keep corrections that confirm the model's answer.")
    ] = True,
    allow_unreviewed_fields: Annotated[
        bool,
        typer.Option(
            "--allow-unreviewed-fields",
            help="Also export corrections whose topic or summary no reviewer checked.",
        ),
    ] = False,
    include_eval: Annotated[
        bool,
        typer.Option("--include-eval", help="Also export pairs of eval calls (X-Triage-Variant)."),
    ] = False,
) -> None:
    """Export corrected pairs as chat fine-tuning JSONL (OpenAI / Together format). Only
    corrections whose four answer fields a reviewer confirmed or changed are written."""
    from training.export import NothingToExport, run_export

    options = {"since": since, "experiment": experiment, "split": split, "balance": balance}
    options["allow_unreviewed_fields"] = allow_unreviewed_fields
    options["include_eval"] = include_eval
    config = store_settings()
    try:
        run_export(config, out, seed=seed, include_confirmed=include_confirmed, **options)
    except NothingToExport as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        raise fail(str(exc)) from None


def import_(
    file: Annotated[Path, typer.Argument(help="Labelled reviews, JSONL or CSV.")],
    corrected_by: Annotated[str, typer.Option(help="Name stored on the corrections.")] = "import",
) -> None:
    """Import labelled reviews as corrected pairs (they join the next export)."""
    from training.export import run_import

    try:
        count = run_import(store_settings(), file, corrected_by)
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"imported {count} labelled reviews from {file}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command()(export)
    app.command("import")(import_)
