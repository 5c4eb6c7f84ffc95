"""How the demo lines the twin's clock up with the gateway's stamps (``demo.scoring``)."""

from __future__ import annotations

import numpy as np
import pytest

from demo.scoring import DELAYS_S, best_delay


def test_the_delay_is_where_the_ends_say_and_the_twins_clock_when_they_say_nothing() -> None:
    """A run where locomotives move fits one delay; one where all stand fits every delay
    about alike (ends drop out of the window at the longest ones), and then the twin's
    own clock stands."""
    moving = np.abs(DELAYS_S - 2.0) * 0.8 + 0.1
    assert DELAYS_S[best_delay(moving)] == pytest.approx(2.0)
    standing = 0.0453 - 0.0025 * (DELAYS_S > 5.0) * (DELAYS_S - 5.0) / 5.0
    assert DELAYS_S[best_delay(standing)] == pytest.approx(0.0, abs=1e-9)
    assert np.argmin(standing) != best_delay(standing)
