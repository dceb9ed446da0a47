"""The study in Optuna storage: opening it, checking it is this sweep's, and the trials left running by a
process that died (marked failed and retried with the same parameters, resuming their runs)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from gancore.errors import ConfigError


def optuna_module() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("gancore sweep needs Optuna: pip install 'optuna>=4.0' "
                          "(or pip install 'gancore[sweep]')") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``: ``sqlite:///...`` and other SQLAlchemy URLs (RDB: PostgreSQL, MySQL),
    or ``journal:PATH`` / a path ending in ``.log`` (a journal file, for a shared filesystem)."""
    optuna = optuna_module()
    try:
        if url.startswith("journal:") or url.endswith((".log", ".journal")):
            from optuna.storages.journal import JournalFileBackend

            path = Path(url.removeprefix("journal:")).expanduser()
            if not path.parent.is_dir():
                raise ConfigError(f"--storage: {path.parent} is not a folder (a journal file's folder must exist)")
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        return optuna.storages.RDBStorage(url)
    except ConfigError:
        raise
    except Exception as exc:  # SQLAlchemy's and the drivers' errors: one line, no traceback
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"--storage: {url} does not open as Optuna storage "
                          f"({type(exc).__name__}: {message})") from None


IDENTITY = ("variant", "metric", "direction", "space", "seeds")


def open_study(storage: Any, name: str, identity: dict[str, Any], *, sampler: Any, pruner: Any) -> Any:
    """Create the study, or load it and check it is this sweep: the same variant, metric, direction,
    space and seeds (another sweep in the same storage needs another ``--study``)."""
    optuna = optuna_module()
    direction = identity["direction"]
    study = optuna.create_study(storage=storage, study_name=name, direction=direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    stored = study.user_attrs
    if not stored.get("gancore"):
        if study.trials:
            raise ConfigError(f"--study {name}: the storage holds a study of that name that gancore did not create")
        for key in IDENTITY:
            study.set_user_attr(key, identity[key])
        study.set_user_attr("gancore", True)
        return study
    for key in IDENTITY:
        if stored.get(key) != identity[key]:
            ours, theirs = json.dumps(identity[key]), json.dumps(stored.get(key))
            hint = "name another with --study" if key == "variant" else \
                "run the same sweep, or name another with --study"
            raise ConfigError(f"--study {name}: the study in this storage has {key} {theirs}, this sweep {ours}; "
                              f"{hint}")
    return study


def this_host() -> str:
    return socket.gethostname()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, killed and not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[0] != "Z"
    except (OSError, ValueError, IndexError):
        return True


def recover(study: Any, echo: Any) -> list[int]:
    """Trials left RUNNING by a worker of this machine that is gone (``kill -9``, a crash, a reboot): each
    is marked failed and enqueued again with its parameters and ``retry_of`` = its number, so the retry
    resumes its runs from their last checkpoints. Trials of other machines are left to a sweep started
    there (a worker is known by its host name and process id). Returns the numbers retried."""
    optuna = optuna_module()
    retried = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") != this_host() or _alive(int(attrs.get("pid", -1))):
            continue
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "error", "its worker died; retried")
            study._storage.set_trial_user_attr(trial._trial_id, "retried", True)
            if not study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:  # another sweep of this machine retried it first
            continue
        origin = attrs.get("retry_of", trial.number)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": origin, "dir": attrs.get("dir")},
                            skip_if_exists=False)
        echo(f"trial {trial.number}: its worker (pid {attrs.get('pid')}) is gone; retrying it, resuming its runs")
        retried.append(trial.number)
    return retried


def _counts(trial: Any) -> bool:
    return not (trial.user_attrs.get("retried") or trial.user_attrs.get("surplus"))


def counted(study: Any) -> int:
    """Trials toward ``--trials``: every trial but the failed ones that were retried (and the surplus)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if _counts(t))


def surplus(study: Any, number: int, trials: int) -> bool:
    """Whether trial ``number`` came after the study already had ``trials`` trials: workers sharing a study
    may ask for one at the same moment; the storage numbers them, and the later ones give way."""
    before = sum(1 for t in study.get_trials(deepcopy=False) if t.number < number and _counts(t))
    return before >= trials
