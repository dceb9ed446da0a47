"""An independent judge of generated digits: a classifier trained on the real digits only.

Deterministic (logistic regression on the 8x8 originals, fixed split); generated 32x32 samples
are area-downsampled to 8x8 before judging. Reports the judge's mean confidence, the classes it
sees (coverage) and the entropy of the class histogram.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def fit_judge():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from gancore.data.digits import digits_split

    d = load_digits()
    x = d.images.reshape(len(d.images), -1) / 16.0
    train, test = digits_split(len(x), "train").numpy(), digits_split(len(x), "test").numpy()
    clf = LogisticRegression(max_iter=2000, C=0.5).fit(x[train], d.target[train])
    return clf, float(clf.score(x[test], d.target[test]))


def to_8x8(samples: torch.Tensor) -> np.ndarray:
    x = (samples.float().clamp(-1, 1) + 1) / 2
    if x.shape[-1] != 8:
        x = F.adaptive_avg_pool2d(x, 8)
    return x.reshape(len(x), -1).cpu().numpy()


def judge(clf, samples: torch.Tensor) -> dict[str, float]:
    probs = clf.predict_proba(to_8x8(samples))
    pred = probs.argmax(1)
    hist = np.bincount(pred, minlength=10) / len(pred)
    nz = hist[hist > 0]
    return {
        "confidence": float(probs.max(1).mean()),
        "classes_covered": int((hist >= 0.02).sum()),
        "class_entropy": float(-(nz * np.log(nz)).sum() / np.log(10)),
    }
