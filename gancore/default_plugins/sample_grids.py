"""Sample grids: ``samples/step_*.png`` every ``log.sample_every`` steps and at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gancore import hookimpl

if TYPE_CHECKING:
    from gancore.kernel.run_view import Run


SAMPLE_SEED_OFFSET = 7919  # sample grids use their own noise, never the training stream


class SampleGrids:
    """Draws the variant's :meth:`~gancore.Variant.preview` (handed its
    :meth:`~gancore.Variant.translator`: the EMA generator when kept, by default) with a fixed noise
    stream, so the grids of one run are comparable step to step."""

    @hookimpl
    def gancore_step_end(self, run: Run) -> None:
        if not run.due(run.config.log.sample_every):
            return
        import torch

        from gancore.kernel.drawing import evaluating
        from gancore.visualize import save_samples

        cfg = run.config
        rng = torch.Generator(device=run.device).manual_seed(cfg.train.seed + SAMPLE_SEED_OFFSET)
        n = cfg.log.samples if run.spec.kind == "image" else cfg.log.scatter_points
        built = run.built
        try:
            with evaluating(built.variant.translator(built.networks())) as gen:
                x, nrow = built.variant.preview(gen, run.preview_batch, n, rng=rng, device=run.device)
        except Exception as exc:  # the variant's code: say so, not that sample grids broke
            from gancore.errors import PluginError
            from gancore.kernel.finite import preview_failure

            raise PluginError(f"variant {built.variant.name!r}: {preview_failure(exc)}") from exc
        path = run.run_dir / "samples" / f"step_{run.step:07d}.png"
        reference = run.landmarks.numpy() if run.landmarks is not None else None
        save_samples(x.float(), path, reference=reference, nrow=nrow)
        run.samples_saved(path)
