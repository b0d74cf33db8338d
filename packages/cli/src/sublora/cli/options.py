"""Option types and config resolution shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

ConfigFile = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML config file (sections: data, model, lora, sublora, train, bound)."),
]
FinetuneConfigFile = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="YAML config file (sections: task, model, lora, sublora, train, bound)."),
]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Run directory to write (created if missing).")]
ProjectorOpt = Annotated[
    Optional[str],
    typer.Option("--projector", "-p", help="Projector spec family[:variant], e.g. rdkron, rdkron:qr, dense."),
]
Preset = Annotated[str, typer.Option("--preset", help="Starting config: 'default' (main job) or 'smoke'.")]
RunDirArg = Annotated[Path, typer.Argument(help="A run directory written by `sublora train` or `sublora run`.")]
FORMATS = ("table", "json")


def _format(value: str) -> str:
    if value not in FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(FORMATS)}.")
    return value


FormatOpt = Annotated[str, typer.Option("--format", help="Output format: table or json.", callback=_format)]

OVERRIDES_HELP = (
    "Any config field can be overridden with a dotted option, e.g. "
    "--sublora.intrinsic_dim=1000 --train.max_steps=500 --model.preset=tiny."
)


def resolve(ctx: typer.Context, config_file: Path | None, projector: str | None = None, preset: str | None = None):
    """preset <- YAML file <- --projector <- dotted overrides; validated into a RunConfig."""
    from sublora.core.overrides import parse_overrides, resolve_config
    from sublora.core.presets import preset as load_preset

    overrides = parse_overrides(list(ctx.args))
    if projector is not None:
        if overrides.get("sublora.projector", projector) != projector:
            from sublora.core.errors import ConfigError

            raise ConfigError(f"--projector {projector} and --sublora.projector={overrides['sublora.projector']} "
                              "say different things.", hint="Give the projector once.")
        overrides["sublora.projector"] = projector
    base = load_preset(preset) if preset else {}
    # RunConfig.from_dict checks every component spec and its options, so a typo fails before any work.
    return resolve_config(config_file, overrides, base=base)
