"""The open pairs for `keeper status`: legs, sizes, hedge ratio, entry z, and, when the chain was
read, the unrealised PnL (what closing the pair now would book).

Unrealised PnL of an open pair, USD x18 int: its books so far (both legs' quote over its trades,
fees included, less the funding its trades settled and the gas they paid) plus the exact close
quote of both legs on the snapshot (keeper/quotes_pair.py, Perp's fee included). Funding accrued
since the last settlement and the close's own gas are not in it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from keeper.errors import SkipOpportunity
from keeper.pairs_journal import PairJournal
from keeper.quotes import QuoteUnavailable
from keeper.quotes_pair import quote_pair_trade
from keeper.types import ONE_X18, MarketSnapshot


@dataclass(frozen=True)
class OpenPairStatus:
    pair_id: int
    market_a: str
    market_b: str
    side: str
    base_x18_a: int
    base_x18_b: int
    hedge_ratio_x18: int
    entry_block: int
    entry_z: float
    booked_x18: int  # quote - settled funding - gas, so far
    unrealised_x18: int | None = None  # None: the chain was not read, or the close could not be quoted
    unrealised_note: str = "chain not read"

    def to_json_dict(self) -> dict[str, Any]:
        return {"pair_id": self.pair_id, "market_a": self.market_a, "market_b": self.market_b, "side": self.side,
                "base_x18_a": str(self.base_x18_a), "base_x18_b": str(self.base_x18_b),
                "hedge_ratio_x18": str(self.hedge_ratio_x18), "entry_block": self.entry_block, "entry_z": self.entry_z,
                "booked_x18": str(self.booked_x18),
                "unrealised_x18": None if self.unrealised_x18 is None else str(self.unrealised_x18),
                "unrealised_note": self.unrealised_note}

    def as_text(self) -> str:
        unrealised = (f"unrealised {self.unrealised_x18 / ONE_X18:+.4f} USD" if self.unrealised_x18 is not None
                      else f"unrealised n/a ({self.unrealised_note})")
        return (f"  pair {self.pair_id} {self.side} {self.market_a}/{self.market_b}: perp {self.market_a} "
                f"{self.base_x18_a / ONE_X18:+.6f}, perp {self.market_b} {self.base_x18_b / ONE_X18:+.6f}, hedge ratio "
                f"{self.hedge_ratio_x18 / ONE_X18:.4f}, entry z {self.entry_z:+.2f} at block {self.entry_block}, "
                f"{unrealised}")


def fetch_open_pairs(journal: Any) -> tuple[OpenPairStatus, ...]:  # keeper.journal.Journal
    return fetch_pairs(journal, "open")


def fetch_pairs(journal: Any, status: str) -> tuple[OpenPairStatus, ...]:
    """The journal's pairs with `status` ('open'; PAIR_WRITTEN_OFF: the books they had when their chain went)."""
    return tuple(
        OpenPairStatus(int(r["id"]), r["market_a"], r["market_b"], r["side"], int(r["base_x18_a"]), int(r["base_x18_b"]),
                       int(r["hedge_ratio_x18"]), int(r["entry_block"]), float(r["entry_z"]),
                       int(r["quote_x18"]) - int(r["funding_settled_x18"]) - int(r["gas_x18"]))
        for r in PairJournal(journal).rows(status))


def pair_leg_sizes_x18(pairs: tuple[OpenPairStatus, ...]) -> dict[str, int]:
    """Each market's perp position held by open pairs (for the check against the chain)."""
    sizes: dict[str, int] = {}
    for p in pairs:
        sizes[p.market_a] = sizes.get(p.market_a, 0) + p.base_x18_a
        sizes[p.market_b] = sizes.get(p.market_b, 0) + p.base_x18_b
    return sizes


def with_unrealised(pair: OpenPairStatus, snapshot: MarketSnapshot) -> OpenPairStatus:
    """The pair with its unrealised PnL at the snapshot's exact close quote."""
    try:
        quote = quote_pair_trade(snapshot.markets[pair.market_a], snapshot.markets[pair.market_b], "close",
                                 position_x18_a=pair.base_x18_a, position_x18_b=pair.base_x18_b,
                                 hedge_ratio_x18=pair.hedge_ratio_x18)
    except (KeyError, SkipOpportunity, QuoteUnavailable, ValueError) as exc:
        return replace(pair, unrealised_note=f"no close quote: {exc}")
    closing = quote.predicted.perp_quote_x18_a + quote.predicted.perp_quote_x18_b
    return replace(pair, unrealised_x18=pair.booked_x18 + closing,
                   unrealised_note=f"exact close quote at block {snapshot.block_number}, pending funding and close gas out")
