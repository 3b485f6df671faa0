"""Currency pairs: base and quote, pip size, indicative swap rates, and the pair named in a file name.

Swap defaults are *indicative* overnight rates of a retail broker in quote currency per unit
of base currency per night (so -0.00007 on EURUSD is -$7 per standard lot per night). They
follow the sign of the two currencies' interest-rate differential in 2024 (USD rates above
EUR, GBP, CHF and JPY rates; a broker's markup makes both sides of some pairs negative) and
are meant as a realistic order of magnitude, not as any broker's schedule: give your broker's
rates with ``--fx.swap-long/--fx.swap-short`` or a dated schedule with ``--fx.swap-data``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MAJORS = ("EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD", "EURGBP", "EURJPY", "GBPJPY")
CURRENCIES = ("USD", "EUR", "JPY", "GBP", "CHF", "AUD", "CAD", "NZD", "SEK", "NOK", "DKK", "SGD", "HKD", "MXN",
              "ZAR", "TRY", "PLN", "CNH", "XAU", "XAG")
INDICATIVE_SWAPS: dict[str, tuple[float, float]] = {  # (long, short) per unit per night, quote currency
    "EURUSD": (-0.00007, 0.00003),
    "GBPUSD": (-0.00004, 0.00000),
    "AUDUSD": (-0.00003, -0.00001),
    "NZDUSD": (-0.00003, -0.00001),
    "USDCAD": (0.00002, -0.00006),
    "USDCHF": (0.00006, -0.00012),
    "USDJPY": (0.012, -0.025),
    "EURJPY": (0.008, -0.020),
    "GBPJPY": (0.012, -0.028),
    "EURGBP": (-0.00004, 0.00001),
}
DEFAULT_SWAP = (-0.00004, 0.00001)
"""Used for a pair with no indicative rates (a small charge on longs, a small credit on shorts)."""


@dataclass(frozen=True)
class Pair:
    """A currency pair quoted as BASEQUOTE: the price is quote currency per unit of base currency."""

    name: str

    @property
    def base(self) -> str:
        return self.name[:3]

    @property
    def quote(self) -> str:
        return self.name[3:]

    @property
    def pip_size(self) -> float:
        """0.01 for JPY-quoted pairs, 0.0001 otherwise."""
        return 0.01 if self.quote == "JPY" else 1e-4

    @property
    def indicative_swaps(self) -> tuple[float, float]:
        return INDICATIVE_SWAPS.get(self.name, DEFAULT_SWAP)


def pair_from_name(path: str | None) -> str | None:
    """The first six letters of a known pair in a file name (``FOREX_EURUSD_1H_ASK.csv`` -> EURUSD), if any."""
    if path is None:
        return None
    stem = Path(str(path)).name.upper()
    for m in re.finditer(r"(?=([A-Z]{6}))", stem):
        cand = m.group(1)
        if cand[:3] in CURRENCIES and cand[3:] in CURRENCIES and cand[:3] != cand[3:]:
            return cand
    return None


def side_from_name(path: str | None) -> str | None:
    """``bid`` or ``ask`` when the file name says which side its prices are (``..._ASK.csv``)."""
    if path is None:
        return None
    tokens = set(re.split(r"[^A-Z]+", Path(str(path)).stem.upper()))
    if "ASK" in tokens and "BID" not in tokens:
        return "ask"
    if "BID" in tokens and "ASK" not in tokens:
        return "bid"
    return None


def resolve_pair(pair: str | None, data: str | None) -> Pair:
    """``--fx.pair``, else the pair in the data file's name, else EURUSD."""
    return Pair((pair or pair_from_name(data) or "EURUSD").upper())
