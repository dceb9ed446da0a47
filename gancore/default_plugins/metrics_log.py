"""``metrics.jsonl``: one JSON object per log record."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gancore import hookimpl
from gancore.files import write_text_atomic

if TYPE_CHECKING:
    from gancore.kernel.run_view import Run


class MetricsLog:
    """Appends every log record to ``RUN/metrics.jsonl``; on resume, first drops the records a
    crashed run logged after the checkpoint it resumes from."""

    @hookimpl
    def gancore_run_start(self, run: Run) -> None:
        if run.resumed_from is not None:
            truncate_metrics(run, run.resumed_from)

    @hookimpl
    def gancore_log(self, record: dict[str, Any], run: Run) -> None:
        with open(run.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")


def truncate_metrics(run: Run, step: int) -> None:
    """Keep the records up to ``step``; a line that is not a JSON record (a write cut short by a
    crash) is dropped."""
    path = run.run_dir / "metrics.jsonl"
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line)
    write_text_atomic("".join(line + "\n" for line in kept), path)
