"""`keeper scan`: one row per market from contract state, with basis z-scores from recent blocks.
The spot columns are one set per spot venue (keeper.types.SPOT_VENUES), each read through its
adapter (keeper/venues/registry.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.errors import RpcError
from keeper.signals import BasisHistory, Signal, compute_signals
from keeper.types import SPOT_VENUES, MarketSnapshot, Unavailable
from keeper.venues.depth import perp_quote_to_raise_mark
from keeper.venues.registry import SPOT_ADAPTERS


@dataclass(frozen=True)
class SpotColumns:
    """One spot venue's columns of a market's row."""

    venue: str
    spot_usd: float | None
    basis_bps: float | None  # the tradable basis: the perp's vAMM mid against this venue's spot
    basis_zscore: float | None
    depth_1pct_usd: float | None
    depth_2pct_usd: float | None


@dataclass(frozen=True)
class ScanRow:
    market: str
    block_number: int
    spot: tuple[SpotColumns, ...]  # in keeper.types.SPOT_VENUES order
    perp_mark_usd: float | None
    perp_vamm_usd: float | None  # the vAMM mid: the basis columns are the tradable basis against it
    index_usd: float | None
    oracle_age_s: int | None
    funding_rate_per_hour: float | None
    funding_apr: float | None
    carry_apr_short_perp: float | None
    carry_apr_long_perp: float | None
    zscore_history_blocks: int
    perp_depth_1pct_usd: float | None
    perp_depth_2pct_usd: float | None
    unavailable: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        row = asdict(self)
        row["spot"] = {s.venue: {k: v for k, v in asdict(s).items() if k != "venue"} for s in self.spot}
        row["unavailable"] = list(self.unavailable)
        return row

    def cells(self) -> dict[str, str]:
        """The row as the scan table prints it, a column set per spot venue."""
        venues = "/".join(s.venue for s in self.spot)
        cells = {f"spot {s.venue}": _fmt(s.spot_usd, ",.4f") for s in self.spot}
        cells["perp mark"] = _fmt(self.perp_mark_usd, ",.4f")
        cells["index"] = _fmt(self.index_usd, ",.4f") + ("" if self.oracle_age_s is None else f" ({self.oracle_age_s}s)")
        cells[f"basis bps {venues}"] = " / ".join(_fmt(s.basis_bps, "+.2f") for s in self.spot)
        cells["funding APR"] = _fmt(self.funding_apr, "+.2%")
        cells["carry APR short/long perp"] = f"{_fmt(self.carry_apr_short_perp, '+.2%')} / {_fmt(self.carry_apr_long_perp, '+.2%')}"
        cells[f"basis z {venues}"] = (" / ".join(_fmt(s.basis_zscore, "+.2f") for s in self.spot)
                                      + f" ({self.zscore_history_blocks} blocks)")
        for s in self.spot:
            cells[f"{s.venue} $ +1%/+2%"] = f"{_fmt(s.depth_1pct_usd, ',.0f')} / {_fmt(s.depth_2pct_usd, ',.0f')}"
        cells["perp $ +1%/+2%"] = f"{_fmt(self.perp_depth_1pct_usd, ',.0f')} / {_fmt(self.perp_depth_2pct_usd, ',.0f')}"
        return cells


def _fmt(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def scan(rpc: JsonRpc, sources: Sources, history_blocks: int = 30) -> list[ScanRow]:
    """Read the latest block (and `history_blocks` blocks before it, for z-scores); one row per market."""
    collector = SnapshotCollector(rpc, sources)
    collector.prepare()
    latest = collector.fetch_snapshot()
    history = BasisHistory(window_s=10**9, min_samples=min(max(2, history_blocks), 10))
    # Newest first, stopping at the first block the node has no state for (a non-archive node,
    # or a chain started from a saved state), then fed oldest first.
    past: list[MarketSnapshot] = []
    for block in range(latest.block_number - 1, max(-1, latest.block_number - history_blocks - 1), -1):
        try:
            past.append(collector.fetch_snapshot(block))
        except RpcError:
            break
    for snapshot in reversed(past):
        compute_signals(snapshot, history)
    return rows_for(latest, compute_signals(latest, history), len(past))


def rows_for(snapshot: MarketSnapshot, signals: list[object], history_blocks_read: int) -> list[ScanRow]:
    by_key = {(s.market, s.spot_venue): s for s in signals if isinstance(s, Signal)}
    rows = []
    for name, view in snapshot.markets.items():
        spot = []
        for venue in SPOT_VENUES:
            adapter, signal = SPOT_ADAPTERS[venue], by_key.get((name, venue))
            spot.append(SpotColumns(
                venue, spot_usd=signal.spot_price_usd if signal else None, basis_bps=signal.basis_bps if signal else None,
                basis_zscore=signal.basis_zscore if signal else None,
                depth_1pct_usd=adapter.usdc_to_raise_price(view, 0.01), depth_2pct_usd=adapter.usdc_to_raise_price(view, 0.02)))
        any_signal = next((s for s in (by_key.get((name, v)) for v in SPOT_VENUES) if s), None)
        parts = [("perp", view.perp)] + [(v, SPOT_ADAPTERS[v].state(view)) for v in SPOT_VENUES] + [("oracle", view.oracle)]
        problems = tuple(f"{part}: {value.reason}" for part, value in parts if isinstance(value, Unavailable))
        perp = view.perp
        rows.append(ScanRow(
            market=name, block_number=snapshot.block_number, spot=tuple(spot),
            perp_mark_usd=any_signal.mark_price_usd if any_signal else None,
            perp_vamm_usd=any_signal.vamm_price_usd if any_signal else None,
            index_usd=any_signal.index_price_usd if any_signal else None,
            oracle_age_s=None if isinstance(view.oracle, Unavailable) else view.oracle.age_s(snapshot.block_timestamp),
            funding_rate_per_hour=any_signal.funding_rate_per_hour if any_signal else None,
            funding_apr=any_signal.funding_apr if any_signal else None,
            carry_apr_short_perp=any_signal.carry_apr_short_perp if any_signal else None,
            carry_apr_long_perp=any_signal.carry_apr_long_perp if any_signal else None,
            zscore_history_blocks=history_blocks_read,
            perp_depth_1pct_usd=None if isinstance(perp, Unavailable) else perp_quote_to_raise_mark(perp, 0.01),
            perp_depth_2pct_usd=None if isinstance(perp, Unavailable) else perp_quote_to_raise_mark(perp, 0.02),
            unavailable=problems,
        ))
    return rows
