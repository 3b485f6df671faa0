"""Shared test set-up: single-threaded torch (2-core CI), quiet W&B, and tests that write only into
temporary directories (a test that leaves a file in the checkout fails, naming it)."""

import os

import pytest
import torch
from tests.paths import ROOT


os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tree() -> set[str]:
    """The checkout's top-level entries and those of its packages (where a stray run or log would land)."""
    names = set(os.listdir(ROOT))
    for pkg in ("engine", "algos", "envs", "hooks", "configs", "tests"):
        names |= {f"{pkg}/{n}" for n in os.listdir(ROOT / pkg)}
    return {n for n in names if "__pycache__" not in n and not n.startswith(".pytest")}


@pytest.fixture(autouse=True)
def _writes_only_to_tmp():
    before = _tree()
    yield
    new = sorted(_tree() - before)
    assert not new, f"the test wrote into the checkout (tests must write into tmp_path): {new}"
