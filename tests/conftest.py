"""Session-wide test settings."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread for the whole session: the tests use tiny tensors, where OpenMP spin-waiting on a
    loaded 2-core machine costs far more than it gains (measured up to 100x)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
