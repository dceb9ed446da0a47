"""Weights & Biases logging for gancore, on the plugin-settings mechanism (``[wandb]``, ``--set wandb.*``).

Each training run becomes one W&B run: the resolved config, every log record's scalars (``<player>/<term>``,
``it_per_s``, ...), the sample grids (``samples``), and the periodic evaluations (``eval/<metric>/<value>``).
The W&B run id is kept in ``RUN/wandb.json``, so ``gancore run --resume`` continues the same W&B run.
A missing API key or an unreachable server is one warning line, and training goes on without W&B.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from gancore import Settings, hookimpl

if TYPE_CHECKING:
    from gancore import Run

KEY = "gancore_wandb.run"
ID_FILE = "wandb.json"


class WandbSettings(Settings):
    """Weights & Biases: the run's config, scalars, sample grids and evaluations."""

    project: str = Field("gancore", min_length=1, description="The W&B project the runs go to.")
    entity: str | None = Field(None, description="The W&B entity (user or team); null: the API key's default.")
    name: str | None = Field(None, description="The W&B run's display name; null: the run directory's name.")
    tags: list[str] = Field(default_factory=list, description="Tags of the W&B run.")
    mode: Literal["online", "offline", "disabled"] | None = Field(
        None, description="online, offline (files under RUN/wandb/, `wandb sync` later) or disabled; null: "
        "WANDB_MODE, else online.")
    init_timeout: float = Field(30.0, gt=0.0, le=600.0, description="Seconds to wait for W&B to start the run "
                                "before warning and training without it.")


def _settings(run: Run) -> WandbSettings:
    settings = run.config.plugin_settings("wandb")
    assert isinstance(settings, WandbSettings)
    return settings


def _run_id(run: Run) -> str:
    """The W&B run id of this training run: the one recorded in RUN/wandb.json, or a new one."""
    path = run.run_dir / ID_FILE
    if path.is_file():
        try:
            return str(json.loads(path.read_text())["id"])
        except (ValueError, KeyError, TypeError):
            pass  # a damaged record: a new W&B run
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # W&B's form
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"id": run_id}) + "\n")
    os.replace(tmp, path)
    return run_id


@hookimpl
def gancore_plugin_settings() -> type:
    return WandbSettings


@hookimpl
def gancore_run_start(run_dir: str, config: dict[str, Any], run: Run) -> None:
    c = _settings(run)
    try:
        import wandb

        run_id = _run_id(run)
        mode = c.mode or os.environ.get("WANDB_MODE") or "online"  # read now: wandb caches what it read first
        wb = wandb.init(project=c.project, entity=c.entity, name=c.name or run.run_dir.name, tags=c.tags or None,
                        id=run_id, resume="allow", config=config, dir=str(run.run_dir), mode=mode,
                        settings=wandb.Settings(init_timeout=c.init_timeout, silent=True, console="off"))
    except Exception as exc:  # no key, no server, no network: W&B is a side feature
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        run.echo(f"warning: wandb: could not start the W&B run ({type(exc).__name__}: {text}); "
                 "training continues without W&B")
        return
    run.extras[KEY] = wb


@hookimpl
def gancore_log(step: int, record: dict[str, Any], run: Run) -> None:
    wb = run.extras.get(KEY)
    if wb is not None:
        wb.log({k: v for k, v in record.items() if k != "step"}, step=step)


@hookimpl
def gancore_samples_saved(step: int, path: str, run: Run) -> None:
    wb = run.extras.get(KEY)
    if wb is not None:
        import wandb

        wb.log({"samples": wandb.Image(path)}, step=step)


@hookimpl
def gancore_evaluated(step: int, results: list[dict[str, Any]], run: Run) -> None:
    wb = run.extras.get(KEY)
    if wb is None:
        return
    values: dict[str, float] = {}
    for result in results:
        for key, value in (result.get("values") or {}).items():
            if isinstance(value, int | float):
                values[f"eval/{result.get('metric', 'metric')}/{key}"] = float(value)
    if values:
        wb.log(values, step=step)


@hookimpl
def gancore_run_end(status: str, run: Run) -> None:
    wb = run.extras.pop(KEY, None)
    if wb is not None:
        wb.finish(exit_code=0 if status == "completed" else 1)
