"""`keeper stress`: the account's margin under a grid of shocks, from the chain's current state.

For an account's open perp legs (read at the latest block) and/or a proposed position, each row
of the grid (index -m / 0 / +m; vAMM at the lower band edge, at the index, at the upper edge;
with and without adverse funding over the holding time) gives the account value, the margin
ratio, the further index move to Perp's maintenance ratio, and the PnL of the perp legs, of the
spot hedge and net. The largest size of the proposed position that keeps the worst margin ratio
at the guard is the one sizing uses (keeper/stress.py, the same function). For a proposal, the
cost of closing it on each spot venue, now and after the stressed move (strategies/exit_stress.py,
the quotes sizing weighs with risk.stress_exit_weight), and the chance of the stressed move within
the hold. That chance takes the index volatility as the running keeper does, the larger of its
history's estimate and the one sample of the index's TWAP departure; the history here is the
oracle's recent rounds read at the snapshot's block (keeper/index_rounds.py), and the one sample
alone when the aggregator has too few rounds or cannot be read (the report says which).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from keeper.collect import SnapshotCollector, Sources
from keeper.chain.rpc import JsonRpc
from keeper.config import KeeperConfig
from keeper.errors import ConfigError
from keeper.journal.executors import ExecutorChoice, choose_executor
from keeper.index_rounds import DEFAULT_MAX_ROUNDS, MAX_ROUNDS, RoundsSigma, fetch_rounds_sigma
from keeper.logs import redacted_url
from keeper.stress import (
    PerpLeg,
    StressParams,
    StressRow,
    legs_from_snapshot,
    max_stressed_size_base,
    stress_account,
    worst_margin_ratio,
)
from keeper.quotes import round_perp_base_to_spot_units
from keeper.types import ONE_X18, SPOT_VENUES, Direction, MarketSnapshot, PerpAccountState, PerpMarketState
from strategies.exit_stress import (
    ExitStressCheck,
    departure_sigma_per_sqrt_s,
    quote_exit_stress_of_open,
    stress_move_probability,
)

SIGMA_FROM_ROUNDS = "aggregator_rounds"
SIGMA_FROM_DEPARTURE = "twap_departure"


@dataclass(frozen=True)
class Proposal:
    market: str
    direction: Direction
    notional_usd: float


@dataclass(frozen=True)
class StressSigma:
    """The index volatility behind stress_move_probability: max(history, departure) as the keeper
    takes it, or the departure alone (source SIGMA_FROM_DEPARTURE) without a history estimate."""

    sigma_per_sqrt_s: float
    source: str
    history: RoundsSigma
    departure_sigma_per_sqrt_s: float

    def as_json(self) -> dict[str, Any]:
        return {"sigma_per_sqrt_s": self.sigma_per_sqrt_s, "source": self.source,
                "rounds_read": self.history.rounds_read, "rounds_used": self.history.rounds_used,
                "history_sigma_per_sqrt_s": self.history.sigma_per_sqrt_s,
                "departure_sigma_per_sqrt_s": self.departure_sigma_per_sqrt_s, "fallback_reason": self.history.reason}

    def describe(self) -> str:
        if self.source == SIGMA_FROM_ROUNDS:
            return (f"index volatility {self.sigma_per_sqrt_s:.3g} per sqrt(s): the larger of the oracle's last "
                    f"{self.history.rounds_used} rounds ({self.history.sigma_per_sqrt_s:.3g}, the keeper's EWMA "
                    f"estimator) and the index vs its TWAP ({self.departure_sigma_per_sqrt_s:.3g})")
        return (f"index volatility {self.sigma_per_sqrt_s:.3g} per sqrt(s): the index vs its TWAP alone (one sample; "
                f"no estimate from the oracle's rounds: {self.history.reason})")


def stress_sigma(perp: PerpMarketState, history: RoundsSigma) -> StressSigma:
    departure = departure_sigma_per_sqrt_s(perp)
    if history.sigma_per_sqrt_s is None:
        return StressSigma(departure, SIGMA_FROM_DEPARTURE, history, departure)
    return StressSigma(max(history.sigma_per_sqrt_s, departure), SIGMA_FROM_ROUNDS, history, departure)


@dataclass(frozen=True)
class StressReport:
    block_number: int
    account_value_usd: float
    legs: list[PerpLeg]
    params: StressParams
    guard: float
    rows: list[StressRow]
    max_proposal_notional_usd: float | None  # what sizing would allow for the proposal's market and side
    exit_costs: dict[str, ExitStressCheck | str] | None = None  # the proposal's close per spot venue (str: why not)
    stress_move_probability: float | None = None  # with index_sigma
    index_sigma: StressSigma | None = None
    account: ExecutorChoice = ExecutorChoice(None)  # the Perp account read, and where it came from

    def as_json(self) -> dict[str, Any]:
        return {
            "block": self.block_number, "account": self.account.address, "account_source": self.account.source,
            "account_skipped": self.account.skipped,
            "account_value_usd": self.account_value_usd, "guard": self.guard,
            "index_move": self.params.index_move, "funding_apr": self.params.funding_apr, "hold_s": self.params.hold_s,
            "legs": [leg.__dict__ for leg in self.legs],
            "worst_margin_ratio": worst_margin_ratio(self.rows),
            "max_proposal_notional_usd": self.max_proposal_notional_usd,
            "stress_move_probability": self.stress_move_probability,
            "index_sigma": None if self.index_sigma is None else self.index_sigma.as_json(),
            "proposal_exit_cost": None if self.exit_costs is None else {
                venue: ({"error": c} if isinstance(c, str) else
                        {"normal_usd": c.normal_exit_cost_usd, "stressed_usd": c.stressed_exit_cost_usd, "worst": c.worst_label})
                for venue, c in self.exit_costs.items()},
            "rows": [{"shock": r.shock.label, "index_move": r.shock.index_move, "band_edge": r.shock.edge,
                      "adverse_funding": r.shock.adverse_funding, "account_value_usd": r.account_value_usd,
                      "position_value_usd": r.position_value_usd, "margin_ratio": r.margin_ratio,
                      "liquidation_index_move": r.liquidation_index_move, "perp_pnl_usd": r.perp_pnl_usd,
                      "hedge_pnl_usd": r.hedge_pnl_usd, "net_pnl_usd": r.net_pnl_usd} for r in self.rows],
        }


def build_report(snapshot: MarketSnapshot, config: KeeperConfig, proposal: Proposal | None,
                 collateral_usd: float | None, index_history: RoundsSigma | None = None) -> StressReport:
    """The grid for the snapshot's account (plus the proposal). collateral_usd replaces the
    account value (required without an account). index_history: the proposal market's volatility
    from the oracle's rounds (None: not read)."""
    account = snapshot.account
    if collateral_usd is not None:
        value_usd = collateral_usd
    elif isinstance(account, PerpAccountState):
        value_usd = account.account_value_x18 / ONE_X18
    else:
        raise ConfigError("--collateral-usd: needed when no Perp account is read (give --account or config "
                          "account.executor; the journal records none with code on this chain)")
    params = StressParams(config.risk.stress_index_move, config.risk.stress_funding_apr,
                          config.costs.holding_horizon_hours * 3600)
    legs = legs_from_snapshot(snapshot) if collateral_usd is None else []
    max_notional = exit_costs = probability = sigma = None
    if proposal is not None:
        view = snapshot.markets.get(proposal.market)
        if view is None or not isinstance(view.perp, PerpMarketState):
            raise ConfigError(f"--market {proposal.market}: not readable in this snapshot (markets: {', '.join(snapshot.markets)})")
        perp = view.perp
        mark, index = perp.mark_price_x18 / ONE_X18, perp.index_price_x18 / ONE_X18
        band = perp.max_price_spread_ratio_ppm / 1e6
        sign = float(proposal.direction.perp_sign)
        base, _ = max_stressed_size_base(value_usd, legs, PerpLeg(proposal.market, sign, mark, index, band),
                                         perp.exchange_fee_ratio_ppm / 1e6, params, config.risk.min_margin_ratio)
        max_notional = base * mark
        if proposal.notional_usd > 0:
            legs = legs + [PerpLeg(proposal.market, sign * proposal.notional_usd / mark, mark, index, band)]
            base_x18 = round_perp_base_to_spot_units(int(proposal.notional_usd / mark * ONE_X18), view.spot_token_decimals)
            exit_costs = {venue: quote_exit_stress_of_open(view, proposal.direction, venue, base_x18, params.index_move)
                          for venue in SPOT_VENUES}
            sigma = stress_sigma(perp, index_history or RoundsSigma(None, 0, 0, "not read"))
            # the sizing rule's own combination (max(history, departure)), fed the rounds' estimate
            probability = stress_move_probability(perp, params.index_move, params.hold_s, sigma.history.sigma_per_sqrt_s)
    return StressReport(snapshot.block_number, value_usd, legs, params, config.risk.min_margin_ratio,
                        stress_account(value_usd, legs, params), max_notional, exit_costs, probability, sigma)


def run_stress(rpc: JsonRpc, sources: Sources, account: str | None, config: KeeperConfig, proposal: Proposal | None,
               collateral_usd: float | None, max_rounds: int = DEFAULT_MAX_ROUNDS) -> StressReport:
    """The snapshot of `account` (--account; None: account.executor, else the journal's executor on
    this chain: keeper/journal/executors.py), then (for a proposal with a size) its market's oracle
    rounds at the same block."""
    given = ("--account", account) if account is not None else ("account.executor", config.account.executor)
    choice = choose_executor(given, config.monitoring.journal, rpc.chain_id, rpc.has_code)
    collector = SnapshotCollector(rpc, sources, account=choice.address)
    collector.prepare()
    snapshot = collector.fetch_snapshot()
    history = None
    view = snapshot.markets.get(proposal.market) if proposal is not None and proposal.notional_usd > 0 else None
    if view is not None and isinstance(view.perp, PerpMarketState):
        aggregator = next(m.aggregator for m in sources.markets if m.name == view.name)
        history = fetch_rounds_sigma(collector.multicall, aggregator, snapshot.block_number, snapshot.block_timestamp,
                                     view.perp.twap_interval_s, max_rounds)
    return replace(build_report(snapshot, config, proposal, collateral_usd, history), account=choice)


def render_table(report: StressReport) -> Any:
    """A rich Table of the grid."""
    from rich.table import Table

    table = Table(title=(f"stress at block {report.block_number}: account value ${report.account_value_usd:,.2f}, guard "
                         f"{report.guard:g}, funding {report.params.funding_apr:.0%} APR over {report.params.hold_s / 3600:g} h"))
    for column in ("shock", "account value", "margin ratio", "to liquidation (index)", "perp PnL", "hedge PnL", "net PnL"):
        table.add_column(column, justify="left" if column == "shock" else "right")
    for r in report.rows:
        ratio = "-" if r.margin_ratio is None else f"{r.margin_ratio:.4f}" + (" < guard" if r.margin_ratio < report.guard else "")
        liquidation = "-" if r.liquidation_index_move is None else f"{r.liquidation_index_move:+.2%}"
        table.add_row(r.shock.label, f"${r.account_value_usd:,.2f}", ratio, liquidation, f"{r.perp_pnl_usd:+,.2f}",
                      f"{r.hedge_pnl_usd:+,.2f}", f"{r.net_pnl_usd:+,.2f}")
    return table


def print_whole(console: Any, table: Any) -> None:
    """Print `table` at its natural width even on a narrower console (a pipe or a file is 80
    columns to rich): a number is never cut to an ellipsis; a narrow terminal wraps the lines."""
    from rich.console import Console
    from rich.measure import Measurement

    needed = Measurement.get(console, console.options.update(width=10_000), table).maximum
    wide = Console(file=console.file, width=max(console.width, needed), force_terminal=console.is_terminal,
                   color_system=console.color_system, soft_wrap=True)
    wide.print(table)


def stress_command(*, config_path: Any, manifest: Any, rpc_url: str | None, account: str | None, market: str | None,
                   direction: str | None, notional_usd: float, collateral_usd: float | None, json_output: bool,
                   console: Any, index_rounds: int | None = None) -> None:
    """`keeper stress` (the CLI registers it; errors are KeeperErrors for it to map)."""
    import json

    from keeper.addressbook import chain_url_source, config_chain, config_sources
    from keeper.cli_console import configure_logging_from, load_settings
    from keeper.errors import FatalError, TransientError

    if not (math.isfinite(notional_usd) and notional_usd >= 0):  # inf: an OverflowError in the sizing
        raise ConfigError(f"--notional-usd: must be a finite number >= 0 (got {notional_usd})")
    index_rounds = DEFAULT_MAX_ROUNDS if index_rounds is None else index_rounds
    if not 0 <= index_rounds <= MAX_ROUNDS:
        raise ConfigError(f"--index-rounds: must be between 0 and {MAX_ROUNDS} (got {index_rounds})")
    if collateral_usd is not None and not (math.isfinite(collateral_usd) and collateral_usd > 0):  # inf: Infinity in --json
        raise ConfigError(f"--collateral-usd: must be a finite number > 0 (got {collateral_usd})")
    chain = {k: v for k, v in (("rpc_url", rpc_url), ("manifest", manifest)) if v}  # the options override the config
    settings = load_settings(config_path, overrides={"chain": chain} if chain else None)
    configure_logging_from(settings)  # on stderr: stdout is the report's (--json: one JSON document)
    proposal = None
    if market is not None or direction is not None:
        if direction is not None and direction not in ("short_perp", "long_perp"):
            raise ConfigError(f"--direction: short_perp or long_perp (got {direction!r})")
        if market is None or direction is None:
            raise ConfigError("--market and --direction (short_perp or long_perp) go together")
        proposal = Proposal(market, Direction(direction), notional_usd)
    elif notional_usd:  # it sizes a proposal: without one it would be ignored
        raise ConfigError("--notional-usd: only with --market and --direction (a proposed position)")
    url, book = config_chain(settings)
    try:
        rpc = JsonRpc(url, timeout_s=settings.chain.request_timeout_s)
        report = run_stress(rpc, config_sources(rpc, book), account or settings.account.executor, settings, proposal,
                            collateral_usd, index_rounds)
    except TransientError as exc:
        raise FatalError(f"{chain_url_source(rpc_url, settings)} {redacted_url(url)}: {exc}") from exc
    if json_output:
        console.print_json(json.dumps(report.as_json()))
        return
    console.print(f"account {report.account.describe()}", highlight=False, markup=False)
    print_whole(console, render_table(report))
    if not report.legs and proposal is None:
        console.print("no perp position in this account (or proposed): every shock leaves it as it is. To stress a "
                      "position, give --market, --direction and --notional-usd (with --collateral-usd for an "
                      "account that does not exist yet).")
    worst = worst_margin_ratio(report.rows)
    console.print(f"worst margin ratio: {'-' if worst is None else f'{worst:.4f}'} (guard {report.guard:g})")
    if report.max_proposal_notional_usd is not None and proposal is not None:
        console.print(f"largest {proposal.direction.value} {proposal.market} that keeps the guard under every shock: "
                      f"${report.max_proposal_notional_usd:,.0f} (the cap sizing uses)")
    if report.stress_move_probability is not None and report.index_sigma is not None:
        console.print(f"chance of an index move of {report.params.index_move:.1%} within {report.params.hold_s / 3600:g} h: "
                      f"{report.stress_move_probability:.2%} ({report.index_sigma.describe()}); the running keeper "
                      f"weighs the stressed close below by this chance (x risk.stress_exit_weight), from the index "
                      f"it recorded")
    for venue, cost in (report.exit_costs or {}).items():
        console.print(f"closing it via {venue}: " + (f"not quotable: {cost}" if isinstance(cost, str) else
                      f"${cost.normal_exit_cost_usd:,.2f} now, ${cost.stressed_exit_cost_usd:,.2f} after the stressed "
                      f"move ({cost.worst_label}; fees + impact)"))
