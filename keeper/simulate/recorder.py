"""The simulation's recorder: per keeper tick, the snapshot the tick read, the keeper after it
(balances, margin, PnL to date, what it holds marked to market by an exact close quote), and the
transactions it sent, with the expected net PnL each plan logged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keeper.chain.fees import fetch_l1_data_fee_wei
from keeper.chain.rpc import JsonRpc
from keeper.collect import SnapshotCollector
from keeper.engine import TickReport
from keeper.pnl_split import PnlSplit
from keeper.signals import spot_price
from keeper.simulate.ledger import BalanceReader, KeeperBalances, compute_balance_change
from keeper.simulate.paper import PAPER_TX_BYTES, compute_close_value_x18
from keeper.simulate.report import usd
from keeper.trade_legs import legs_json
from keeper.types import SPOT_VENUES, MarketSnapshot, PerpAccountState, PerpMarketState, Unavailable

ONE_X18 = 10**18


@dataclass
class Recorder:
    """Per tick: the snapshot the keeper's tick read (before it), the keeper after it, the sample."""

    rpc: JsonRpc
    collector: SnapshotCollector
    reader: BalanceReader
    start: KeeperBalances
    spot_decimals: Mapping[str, int]
    snapshots: list[MarketSnapshot] = field(default_factory=list)
    tips_wei: list[int] = field(default_factory=list)
    l1_fees_wei: list[int] = field(default_factory=list)
    l1_oracle: bool = False
    samples: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    fee_paid_wei: int = 0

    def tick(self, runtime: Any, phase: str, step: int) -> TickReport | None:
        head = self.rpc.block_number()
        before = self.collector.fetch_snapshot(head)
        tip = int(self.rpc.call("eth_maxPriorityFeePerGas"), 16)
        l1_fee = fetch_l1_data_fee_wei(self.rpc, PAPER_TX_BYTES) if self.l1_oracle else 0
        report = runtime.engine.tick()
        after = self.collector.fetch_snapshot()
        balances = self.reader.read(after.block_number)
        pnl = runtime.journal.pnl_summary().total
        marked_x18 = pnl.total_x18 + compute_close_value_x18(after, runtime.journal.open_positions().values(), tip)
        index = len(self.snapshots)
        self.snapshots.append(before)
        self.tips_wei.append(tip)
        self.l1_fees_wei.append(l1_fee)
        outcomes = []
        for outcome in (report.outcomes if report else ()):
            self.fee_paid_wei += outcome.fee_paid_wei
            entry = {"step": step, "index": index, "block": outcome.block_number, "market": outcome.plan.intent.market,
                     "kind": outcome.plan.intent.kind, "direction": outcome.plan.intent.direction.value,
                     "spot_venue": outcome.plan.intent.spot_venue, "strategy": outcome.plan.intent.strategy,
                     "status": outcome.status, "gas_used": outcome.gas_used, "tx_hash": outcome.tx_hash,
                     "perp_base": (outcome.fills.perp_base_x18 / ONE_X18) if outcome.fills else None,
                     "net_quote_usd": usd(outcome.fills.net_quote_x18) if outcome.fills else None,
                     "perp_base_x18": str(outcome.fills.perp_base_x18) if outcome.fills else None,
                     "legs": legs_json(outcome.plan.intent.legs, outcome.fills,
                                       before.markets[outcome.plan.intent.market].spot_token_decimals),
                     "expected_net_usd": outcome.plan.expected_net_usd,
                     "detail": outcome.detail[:300]}
            outcomes.append(entry)
        self.outcomes += outcomes
        self.samples.append(self._sample(phase, step, before, after, balances, pnl, outcomes,
                                         len(report.skips) if report else 0, report is not None))
        self.samples[-1]["keeper"]["marked_usd"] = usd(marked_x18)
        return report

    def _sample(self, phase: str, step: int, before: MarketSnapshot, after: MarketSnapshot, balances: KeeperBalances,
                pnl: PnlSplit, outcomes: list[dict[str, Any]], skips: int, ticked: bool) -> dict[str, Any]:
        account = after.account if isinstance(after.account, PerpAccountState) else None
        markets: dict[str, Any] = {}
        spot_x18: dict[str, int] = {}
        for name, view in before.markets.items():
            perp = view.perp if isinstance(view.perp, PerpMarketState) else None
            prices = {venue: spot_price(view, venue) for venue in SPOT_VENUES}
            spot_usd = {venue: None if isinstance(p, Unavailable) else p for venue, p in prices.items()}
            v3_usd, v2_usd = spot_usd["uniswap_v3"], spot_usd["uniswap_v2"]
            # the keeper's spot change is marked at the spot price after its tick
            after_v3 = spot_price(after.markets[name], "uniswap_v3") if name in after.markets else prices["uniswap_v3"]
            marked = v3_usd if isinstance(after_v3, Unavailable) else after_v3
            spot_x18[name] = int(marked * ONE_X18) if marked else 0
            held = account.markets.get(name) if account else None
            size = held.position_size_x18 / ONE_X18 if held else 0.0
            index = perp.index_price_x18 / ONE_X18 if perp else None
            mark = perp.mark_price_x18 / ONE_X18 if perp else None
            mid = perp.pool.sqrt_price_x96 ** 2 / 2**192 if perp else None
            markets[name] = {
                "index_usd": index, "mark_usd": mark, "perp_mid_usd": mid, "spot_usd": spot_usd,
                "spot_v3_usd": v3_usd, "spot_v2_usd": v2_usd,  # kept: the scenario summary and older reports read them
                "basis_bps": (mark / v3_usd - 1) * 1e4 if mark and v3_usd else None,
                "spread_bps": (mid / v3_usd - 1) * 1e4 if mid and v3_usd else None,
                "funding_rate_per_hour": perp.funding_rate_per_s * 3600 if perp else None,
                "oracle_age_s": None if isinstance(view.oracle, Unavailable) else view.oracle.age_s(before.block_timestamp),
                "keeper_position_base": size,
                "keeper_notional_usd": abs(size) * index if index else 0.0,
            }
        change = compute_balance_change(self.start, balances, spot_x18, self.spot_decimals)
        return {
            "step": step, "phase": phase, "block": before.block_number, "timestamp": before.block_timestamp,
            "base_fee_gwei": before.base_fee_wei / 1e9, "ticked": ticked, "markets": markets,
            "keeper": {
                "block_after": after.block_number,
                "margin_ratio": account.margin_ratio if account else None,
                "account_value_usd": usd(account.account_value_x18) if account else None,
                "outcomes": outcomes, "skips": skips,
                "pnl": split_usd(pnl),
                "equity_usd": usd(change.total_x18 - pnl.gas_x18),
            },
        }


def split_usd(split: PnlSplit) -> dict[str, float]:
    return {"funding_usd": usd(split.funding_x18), "convergence_usd": usd(split.convergence_x18),
            "fees_usd": usd(split.fees_x18), "gas_usd": usd(split.gas_x18), "total_usd": usd(split.total_x18)}
