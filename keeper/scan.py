"""`keeper scan`: one row per market from contract state, with basis z-scores from recent blocks."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector, Sources
from keeper.errors import RpcError
from keeper.depth import perp_quote_to_raise_mark, v2_usdc_to_raise_spot, v3_usdc_to_raise_spot
from keeper.signals import BasisHistory, Signal, compute_signals
from keeper.types import MarketSnapshot, Unavailable


@dataclass(frozen=True)
class ScanRow:
    market: str
    block_number: int
    spot_v3_usd: float | None
    spot_v2_usd: float | None
    perp_mark_usd: float | None
    perp_vamm_usd: float | None  # the vAMM mid: the basis columns are the tradable basis against it
    index_usd: float | None
    oracle_age_s: int | None
    basis_bps_v3: float | None
    basis_bps_v2: float | None
    funding_rate_per_hour: float | None
    funding_apr: float | None
    carry_apr_short_perp: float | None
    carry_apr_long_perp: float | None
    basis_zscore_v3: float | None
    zscore_history_blocks: int
    v3_depth_1pct_usd: float | None
    v3_depth_2pct_usd: float | None
    v2_depth_1pct_usd: float | None
    v2_depth_2pct_usd: float | None
    perp_depth_1pct_usd: float | None
    perp_depth_2pct_usd: float | None
    unavailable: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        row = asdict(self)
        row["unavailable"] = list(self.unavailable)
        return row


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
        v3, v2 = by_key.get((name, "uniswap_v3")), by_key.get((name, "uniswap_v2"))
        any_signal = v3 or v2
        problems = tuple(f"{part}: {value.reason}" for part, value in
                         (("perp", view.perp), ("uniswap_v3", view.spot_v3), ("uniswap_v2", view.spot_v2), ("oracle", view.oracle))
                         if isinstance(value, Unavailable))
        pool, pair, perp = view.spot_v3, view.spot_v2, view.perp
        rows.append(ScanRow(
            market=name, block_number=snapshot.block_number,
            spot_v3_usd=v3.spot_price_usd if v3 else None, spot_v2_usd=v2.spot_price_usd if v2 else None,
            perp_mark_usd=any_signal.mark_price_usd if any_signal else None,
            perp_vamm_usd=any_signal.vamm_price_usd if any_signal else None,
            index_usd=any_signal.index_price_usd if any_signal else None,
            oracle_age_s=None if isinstance(view.oracle, Unavailable) else view.oracle.age_s(snapshot.block_timestamp),
            basis_bps_v3=v3.basis_bps if v3 else None, basis_bps_v2=v2.basis_bps if v2 else None,
            funding_rate_per_hour=any_signal.funding_rate_per_hour if any_signal else None,
            funding_apr=any_signal.funding_apr if any_signal else None,
            carry_apr_short_perp=any_signal.carry_apr_short_perp if any_signal else None,
            carry_apr_long_perp=any_signal.carry_apr_long_perp if any_signal else None,
            basis_zscore_v3=v3.basis_zscore if v3 else None, zscore_history_blocks=history_blocks_read,
            v3_depth_1pct_usd=None if isinstance(pool, Unavailable) else v3_usdc_to_raise_spot(pool, view.spot_is_token0, 0.01),
            v3_depth_2pct_usd=None if isinstance(pool, Unavailable) else v3_usdc_to_raise_spot(pool, view.spot_is_token0, 0.02),
            v2_depth_1pct_usd=None if isinstance(pair, Unavailable) else v2_usdc_to_raise_spot(pair, 0.01),
            v2_depth_2pct_usd=None if isinstance(pair, Unavailable) else v2_usdc_to_raise_spot(pair, 0.02),
            perp_depth_1pct_usd=None if isinstance(perp, Unavailable) else perp_quote_to_raise_mark(perp, 0.01),
            perp_depth_2pct_usd=None if isinstance(perp, Unavailable) else perp_quote_to_raise_mark(perp, 0.02),
            unavailable=problems,
        ))
    return rows
