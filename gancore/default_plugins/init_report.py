"""``init.json``: what the variant's data-dependent set-up found (fresh runs only)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from gancore import hookimpl
from gancore.files import write_text_atomic
from gancore.variant import InitReport

if TYPE_CHECKING:
    from gancore.kernel.run_view import Run


class InitReportWriter:
    """Prints ``initialize: <name>: <summary>`` per report and writes them to ``RUN/init.json``."""

    @hookimpl
    def gancore_initialized(self, reports: list[InitReport], run: Run) -> None:
        for report in reports:
            run.echo(f"initialize: {report.name}: {report.summary}")
        body = {report.name: report.to_json() for report in reports}
        write_text_atomic(json.dumps(body, indent=2) + "\n", run.run_dir / "init.json")
