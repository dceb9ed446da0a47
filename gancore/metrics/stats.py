"""The statistics behind the sample-quality metrics, in float64: Fréchet distance, KID, IS."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg


def _as64(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, ``N - 1``) of ``[N, F]`` features, in float64."""
    f = _as64(features)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features: expected [N, F] with N >= 2, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians, in float64.

    The matrix square root is scipy's ``sqrtm``; when the product is near-singular (fewer samples
    than features) an epsilon is added to both diagonals, as in the reference implementation, and
    an imaginary part left by rounding is dropped only when it is negligible.
    """
    mu1, mu2, s1, s2 = _as64(mu1), _as64(mu2), _as64(sigma1), _as64(sigma2)
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("error", linalg.LinAlgWarning)
        try:
            covmean = linalg.sqrtm(s1 @ s2)
            singular = not np.isfinite(covmean).all()
        except (linalg.LinAlgWarning, linalg.LinAlgError):
            singular = True
    if singular:  # dead feature units make the covariances singular
        offset = np.eye(len(s1)) * 1e-6
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet distance: imaginary component {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def frechet_of_features(a, b) -> float:
    """Fréchet distance between Gaussians fitted to two ``[N, F]`` feature sets."""
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 with the kernel k(a, b) = (a.b / F + coef0)^degree (Bińkowski et al. 2018)."""
    d = x.shape[1]
    kxx = (x @ x.T / d + coef0) ** degree
    kyy = (y @ y.T / d + coef0) ** degree
    kxy = (x @ y.T / d + coef0) ** degree
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kernel_inception_distance(a, b, *, subsets: int = 10, subset_size: int = 1000, seed: int = 0,
                              degree: int = 3, coef0: float = 1.0) -> tuple[float, float]:
    """KID: mean and standard deviation of the unbiased polynomial MMD^2 over random subsets."""
    x, y = _as64(a), _as64(b)
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError("kid: needs at least 2 samples in each set")
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2(x[rng.choice(len(x), size, replace=False)],
                              y[rng.choice(len(y), size, replace=False)], degree, coef0)
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) over ``splits`` chunks: mean and standard deviation."""
    p = _as64(probs)
    scores = []
    for chunk in np.array_split(p, splits):
        if len(chunk) == 0:
            continue
        marginal = chunk.mean(0, keepdims=True)
        kl = (chunk * (np.log(chunk + 1e-12) - np.log(marginal + 1e-12))).sum(1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
