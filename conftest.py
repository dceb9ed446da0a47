"""Repository-wide pytest set-up: the tests never write to the user's cache directory, and on CI
(``CI`` set) hypothesis draws the same examples every run, so a landing is never decided by a
new random draw (run without ``CI`` to explore: each run then draws new examples)."""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_configure(config) -> None:
    if "GANCORE_TEST_CACHE" not in os.environ:
        os.environ["GANCORE_TEST_CACHE"] = tempfile.mkdtemp(prefix="gancore-cache-")
    # The digit extractor is trained once per test session into this folder.
    os.environ["GANCORE_CACHE"] = os.environ["GANCORE_TEST_CACHE"]
    # gancore-wandb (installed by the README's test command) logs nowhere unless a test asks for it
    # (tests/test_wandb.py, which resets wandb's process-wide state after each of its tests).
    os.environ["WANDB_MODE"] = "disabled"


def pytest_unconfigure(config) -> None:
    path = os.environ.get("GANCORE_TEST_CACHE", "")
    if path.startswith(tempfile.gettempdir()) and "gancore-cache-" in path:
        shutil.rmtree(path, ignore_errors=True)
