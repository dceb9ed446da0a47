"""Each lever of the fast path on its own, for one variant: images/s relative to every lever off.

    python benchmarks/speed/levers.py dcgan
    python benchmarks/speed/levers.py wgan --set variant.mode=gp
    python benchmarks/speed/levers.py cyclegan

Four trainers (off, channels-last, fused Adam, both) are warmed up, then timed in blocks of
iterations, the order rotating every round. This is what chose the ``auto`` settings.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variant")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--block", type=int, default=5)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    from gancore.kernel import Trainer
    from gancore.app import load_plugins
    from gancore.testing import make_config, quiet

    host = load_plugins()
    over = {k: json.loads(v) if v[:1] in "[{0123456789-tf" else v for k, v in (s.split("=", 1) for s in args.sets)}
    levers = {"off": {"train.channels_last": "off", "train.fused_optimizer": "off"},
              "channels-last": {"train.channels_last": "on", "train.fused_optimizer": "off"},
              "fused": {"train.channels_last": "off", "train.fused_optimizer": "on"},
              "both": {"train.channels_last": "on", "train.fused_optimizer": "on"}}
    with tempfile.TemporaryDirectory() as tmp:
        sides = {}
        for name, extra in levers.items():
            cfg = make_config(host, args.variant, {**over, **extra, "train.steps": 10**9, "train.device": args.device,
                                                   "log.sample_every": 0, "log.checkpoint_every": 0,
                                                   "log.progress": False})
            sides[name] = Trainer(host, cfg, Path(tmp) / name, echo=quiet)
        for t in sides.values():
            t.advance(args.block)
        seconds = dict.fromkeys(sides, 0.0)
        names = list(sides)
        for i in range(args.rounds):
            for name in names[i % len(names):] + names[:i % len(names)]:
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                sides[name].advance(args.block)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                seconds[name] += time.perf_counter() - start
    speedup = {name: round(seconds["off"] / s, 3) for name, s in seconds.items()}
    print(json.dumps({"variant": args.variant, "sets": args.sets, "device": args.device, "speedup_vs_off": speedup}))


if __name__ == "__main__":
    main()
