"""TensorBoard: the log records as scalars and the sample grids as images (``log.tensorboard``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gancore import hookimpl
from gancore.errors import ConfigError

if TYPE_CHECKING:
    from gancore.kernel.run_view import Run


KEY = "gancore.tensorboard"


class TensorBoardLog:
    """Writes ``RUN/tensorboard/`` when ``log.tensorboard`` is on."""

    @hookimpl
    def gancore_run_start(self, run: Run) -> None:
        if not run.config.log.tensorboard:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("log.tensorboard: needs the tensorboard package (pip install tensorboard)") from None
        run.extras[KEY] = SummaryWriter(log_dir=str(run.run_dir / "tensorboard"))

    @hookimpl
    def gancore_log(self, step: int, record: dict[str, Any], run: Run) -> None:
        writer = run.extras.get(KEY)
        if writer is not None:
            for key, value in record.items():
                if key != "step":
                    writer.add_scalar(key, value, step)

    @hookimpl
    def gancore_samples_saved(self, step: int, path: str, run: Run) -> None:
        writer = run.extras.get(KEY)
        if writer is not None:
            import numpy as np
            from PIL import Image

            with Image.open(path) as img:
                grid = np.asarray(img.convert("RGB"))
            writer.add_image("samples", grid, step, dataformats="HWC")

    @hookimpl
    def gancore_run_end(self, run: Run) -> None:
        writer = run.extras.pop(KEY, None)
        if writer is not None:
            writer.close()
