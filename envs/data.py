"""Market data: the ``Bars`` container that every other part of ``envs/`` consumes.

(Loading CSV/Parquet files and validation live here too; see ``load_bars``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Bars:
    """OHLCV bars in time order. ``time`` is ``datetime64[ns]`` (bar open time, UTC);
    prices are float64 quote-currency prices; ``volume`` may be all zeros.
    ``source`` names where the bars came from (a file path or a generator spec)."""

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    source: str = "<memory>"

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def slice(self, start: int, stop: int) -> "Bars":
        s = slice(start, stop)
        return Bars(self.time[s], self.open[s], self.high[s], self.low[s], self.close[s], self.volume[s],
                    f"{self.source}[{start}:{stop}]")
