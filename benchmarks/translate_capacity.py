"""Can the translators' generators represent a restyling at all? Train them *with pairs*.

A diagnostic for the unpaired benchmarks (``cyclegan.py``, ``siamese.py translate``): the same
generator architectures, trained supervised on (digit, its own restyled copy) pairs made from
``digits-pair``'s domain-A train images with an L1 loss (Adam 2e-4 (0.5, 0.999), batch 16), then
judged exactly like the unpaired runs: the held-out A digits are translated and ``cyclegan.py``'s
classifier of *real* domain-B digits says whether each translation is still its digit. A high
score here and a low one in the unpaired benchmark means the networks can do the mapping and
the unpaired objective does not find it, not that the networks are too small.

    python benchmarks/translate_capacity.py --style rotate
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cyclegan import b_judge  # noqa: E402
from digit_judge import to_8x8  # noqa: E402


def _generators() -> dict:
    """name -> (description, builder) of the generators the unpaired benchmarks train."""
    from gancore.nets import ResnetGenerator, UNetGenerator

    return {
        "cyclegan-global": ("ResNet, 2 stride-2 stages, 3 blocks, width 16 (cyclegan with the paper's downsampling)",
                            lambda: ResnetGenerator(1, 1, 16, 3, downsampling=2)),
        "cyclegan-default": ("ResNet, no downsampling, 2 blocks, width 16 (cyclegan's default for 32x32 digits)",
                             lambda: ResnetGenerator(1, 1, 16, 2, downsampling=0)),
        "siamese-unet5": ("U-Net depth 5, width 32 (1x1 bottleneck: sees the whole image)",
                          lambda: UNetGenerator(1, 1, 32, 5, image_size=32)),
        "siamese-default": ("U-Net depth 3, width 32 (siamese translate's default)",
                            lambda: UNetGenerator(1, 1, 32, 3, image_size=32)),
    }


GENERATORS = _generators()


def run(name: str, style: str, steps: int, seed: int) -> dict:
    import torch

    from gancore.translation.sources import restyle

    judge, _, train, test = b_judge(style)
    xa, xb = train.x, restyle(train.x, style)
    torch.manual_seed(seed)
    architecture, builder = GENERATORS[name]
    g = builder()
    opt = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    started = time.perf_counter()
    for _ in range(steps):
        i = torch.randint(len(xa), (16,))
        loss = (g(xa[i]) - xb[i]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    g.eval()
    with torch.no_grad():
        out = g(test.x)
    preservation = float((judge.predict(to_8x8(out)) == test.y.numpy()).mean())
    test_l1 = float((out - restyle(test.x, style)).abs().mean())
    return {"generator": name, "architecture": architecture, "b_style": style, "steps": steps,
            "paired_preservation": preservation, "test_l1": test_l1,
            "seconds": round(time.perf_counter() - started, 1), "torch": torch.__version__}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", choices=["invert", "rotate", "thicken"], default="rotate")
    p.add_argument("--generators", nargs="+", choices=list(GENERATORS), default=list(GENERATORS))
    p.add_argument("--steps", type=int, default=1200, help="Paired steps (the unpaired cyclegan default is 1,200).")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="Write the rows as JSON here.")
    args = p.parse_args()
    rows = []
    for name in args.generators:
        row = run(name, args.style, args.steps, args.seed)
        rows.append(row)
        print(f"{name:<17} {args.style:<8} paired preservation {row['paired_preservation']:6.1%}  "
              f"held-out L1 {row['test_l1']:.3f}  {row['seconds']:6.1f} s", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
