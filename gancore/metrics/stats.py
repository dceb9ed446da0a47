"""The statistics behind the sample-quality metrics, in float64: Fréchet distance, KID, IS."""

from __future__ import annotations

import numpy as np


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

    Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2 (real and
    non-negative in exact arithmetic: S1 S2 is similar to S1^(1/2) S2 S1^(1/2)), as torch-fidelity
    and torchmetrics compute it; unlike a matrix square root it needs no epsilon when the
    covariances are singular (fewer samples than features, dead feature units), and rounding's
    negative or complex eigenvalues contribute their square root's real part.
    """
    mu1, mu2, s1, s2 = _as64(mu1), _as64(mu2), _as64(sigma1), _as64(sigma2)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"frechet distance: shapes {mu1.shape}, {s1.shape} and {mu2.shape}, {s2.shape} do not match")
    diff = mu1 - mu2
    tr_covmean = float(np.sqrt(np.linalg.eigvals(s1 @ s2).astype(np.complex128)).real.sum())
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


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
