"""The Grafana dashboard only charts metrics the keeper exports, and covers what the README says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from keeper.metrics import KeeperMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring" / "grafana-dashboard.json"


def exported_names() -> set[str]:
    names = set()
    for family in KeeperMetrics().registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    # histograms and counters also export these series once observed
    return names | {f"{n}_bucket" for n in names} | {f"{n}_total" for n in names}


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    doc = json.loads(DASHBOARD.read_text())
    queried = {name for panel in doc["panels"] for target in panel["targets"]
               for name in re.findall(r"\bkeeper_[a-z_]+", target["expr"])}
    assert queried and queried <= exported_names(), queried - exported_names()


def test_the_scrape_config_targets_the_devnet_preset_s_metrics_port_and_the_default_is_off() -> None:
    from keeper.config import KeeperConfig, load_config
    root = DASHBOARD.parents[1]
    scrape = (root / "monitoring" / "prometheus.yml").read_text(encoding="utf-8")
    port = load_config(root / "config" / "devnet.toml", environ={}).monitoring.metrics_port
    assert f'"127.0.0.1:{port}"' in scrape and port == 9108  # README "Dashboard"
    assert KeeperConfig().monitoring.metrics_port == 0


def test_the_dashboard_covers_basis_funding_positions_pnl_margin_latency_and_rpc_errors() -> None:
    exprs = " ".join(t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"])
    for metric in ("keeper_basis_bps", "keeper_funding_apr_ratio", "keeper_position_base", "keeper_pnl_usd",
                   "keeper_margin_ratio", "keeper_tick_seconds_bucket", "keeper_rpc_errors_total"):
        assert metric in exprs


def test_pnl_components_sum_to_the_realized_total_and_no_position_is_no_margin_ratio() -> None:
    import math

    from keeper.pnl_split import PnlSplit

    metrics = KeeperMetrics()

    def value(name: str, **labels: str) -> float:
        got = metrics.registry.get_sample_value(name, labels)
        assert got is not None, name
        return got

    assert math.isnan(value("keeper_margin_ratio"))  # before any snapshot: no position, no ratio
    one = 10**18
    split = PnlSplit(funding_x18=3 * one, convergence_x18=10 * one, fees_x18=4 * one, gas_x18=one, total_x18=8 * one)
    metrics.publish_pnl(split)
    parts = {c: value("keeper_pnl_usd", component=c) for c in ("funding", "convergence", "fees", "gas")}
    assert parts == {"funding": 3.0, "convergence": 10.0, "fees": -4.0, "gas": -1.0} and sum(parts.values()) == 8.0
    metrics.publish_margin_ratio(0.42)
    assert value("keeper_margin_ratio") == 0.42
    metrics.publish_margin_ratio(None)  # the position closed: no stale ratio
    assert math.isnan(value("keeper_margin_ratio"))


def test_a_metrics_port_in_use_is_a_config_error_naming_the_key() -> None:
    import socket

    import pytest

    from keeper.errors import ConfigError

    KeeperMetrics().bind(0)  # off: nothing to take
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ConfigError, match=f"monitoring.metrics_port: cannot serve metrics on 127.0.0.1:{port}"):
            KeeperMetrics().bind(port)
        with pytest.raises(ConfigError, match="monitoring.metrics_port"):
            KeeperMetrics().serve(port)  # the server itself says the same, not an OSError traceback


def test_a_metrics_port_in_use_is_refused_before_the_node_is_contacted() -> None:
    import socket

    import pytest

    from keeper.config import load_config
    from keeper.errors import ConfigError
    from keeper.runtime import ChainSetup, assemble_runtime

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        config = load_config(None, environ={}, overrides={"monitoring": {"metrics_port": holder.getsockname()[1]},
                                                          "chain": {"startup_retry_s": 0}})
        with pytest.raises(ConfigError, match="monitoring.metrics_port"):  # not a connection error to the dead port
            assemble_runtime(config, ChainSetup(rpc_url="http://127.0.0.1:9"), dry_run=True)



def test_a_failed_start_frees_the_metrics_port_it_took() -> None:
    import socket

    import pytest

    from keeper.config import load_config
    from keeper.devnet.node import free_port
    from keeper.errors import KeeperError
    from keeper.runtime import ChainSetup, assemble_runtime

    port = free_port()
    config = load_config(None, environ={}, overrides={"monitoring": {"metrics_port": port},
                                                      "chain": {"startup_retry_s": 0}})
    with pytest.raises(KeeperError):  # no node on port 9
        assemble_runtime(config, ChainSetup(rpc_url="http://127.0.0.1:9"), dry_run=True)
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))  # the port is not left held by the failed start

def test_a_z_score_that_becomes_undefined_is_nan_not_the_last_value() -> None:
    import math
    from types import SimpleNamespace

    from keeper.engine import Engine

    metrics = KeeperMetrics()
    engine = SimpleNamespace(metrics=metrics)
    snapshot = SimpleNamespace(block_number=7, account=None, markets={})

    def signal(z: float | None) -> SimpleNamespace:
        return SimpleNamespace(market="ETH", spot_venue="uniswap_v3", basis_bps=12.0, basis_zscore=z,
                               funding_apr=0.1, carry_apr_short_perp=0.1, carry_apr_long_perp=-0.1)

    def z_now() -> float | None:
        return metrics.registry.get_sample_value("keeper_basis_zscore", {"market": "ETH", "venue": "uniswap_v3"})

    Engine._observe(engine, snapshot, [signal(2.5)])
    assert z_now() == 2.5
    Engine._observe(engine, snapshot, [signal(None)])  # basis flat over the window: no z-score now
    got = z_now()
    assert got is not None and math.isnan(got)  # not the 2.5 of an earlier block, shown as current


def test_a_venue_or_perp_not_read_this_block_is_nan_not_the_last_blocks_numbers() -> None:
    import math
    from types import SimpleNamespace

    from keeper.engine import Engine
    from keeper.signals import SkippedSignal
    from keeper.types import Unavailable

    from keeper.venues.sources import MarketSource

    metrics = KeeperMetrics()
    eth = MarketSource("ETH", "0xbase", "0xagg", "0xweth", 18, "0xusdc", uniswap_v2_pair="0xpair", uniswap_v3_pool="0xpool")
    engine = SimpleNamespace(metrics=metrics, collector=SimpleNamespace(sources=SimpleNamespace(markets=(eth,))),
                             _pooled=MarketSource.pooled((eth,)))
    read = SimpleNamespace(block_number=7, account=None, markets={"ETH": SimpleNamespace(perp=object())})
    signal = SimpleNamespace(market="ETH", spot_venue="uniswap_v2", basis_bps=12.0, basis_zscore=2.5,
                             funding_apr=0.1, carry_apr_short_perp=0.1, carry_apr_long_perp=-0.1)
    Engine._observe(engine, read, [signal])
    venue = {"market": "ETH", "venue": "uniswap_v2"}
    assert metrics.registry.get_sample_value("keeper_basis_bps", venue) == 12.0
    # Given the next block, where the venue's pool and then the perp could not be read
    Engine._observe(engine, read, [SkippedSignal("ETH", "uniswap_v2", "pool read failed")])
    assert all(math.isnan(metrics.registry.get_sample_value(name, venue) or 0.0)
               for name in ("keeper_basis_bps", "keeper_basis_zscore"))
    # no signal for ETH this block (its only venue unread): its funding and carry are not this
    # block's numbers either (before: block 7's 0.1, shown as current)
    assert math.isnan(metrics.registry.get_sample_value("keeper_funding_apr_ratio", {"market": "ETH"}) or 0.0)
    two_venues = SimpleNamespace(block_number=8, account=None, markets={"ETH": SimpleNamespace(perp=object())})
    Engine._observe(engine, two_venues, [SkippedSignal("ETH", "uniswap_v2", "pool read failed"),
                                         SimpleNamespace(**{**vars(signal), "spot_venue": "uniswap_v3"})])
    assert metrics.registry.get_sample_value("keeper_funding_apr_ratio", {"market": "ETH"}) == 0.1  # read with v3
    no_perp = SimpleNamespace(block_number=8, account=None,
                              markets={"ETH": SimpleNamespace(perp=Unavailable("perp read failed"))})
    Engine._observe(engine, no_perp, [SkippedSignal("ETH", "uniswap_v2", "perp unavailable: perp read failed")])
    assert math.isnan(metrics.registry.get_sample_value("keeper_funding_apr_ratio", {"market": "ETH"}) or 0.0)
    for direction in ("short_perp", "long_perp"):
        got = metrics.registry.get_sample_value("keeper_carry_apr_ratio", {"market": "ETH", "direction": direction})
        assert got is not None and math.isnan(got)


def published_positions(mode: str, chain_base: dict[str, float], virtual_base: dict[str, float],
                        metrics: KeeperMetrics | None = None) -> dict[str, float | None]:
    """keeper_position_base per market after one block observed by an engine in `mode` whose
    executor holds `chain_base` on chain and (a dry run) `virtual_base` in its virtual book."""
    from types import SimpleNamespace

    from keeper.engine import Engine
    from keeper.types import PerpAccountMarket, PerpAccountState

    held = {m: PerpAccountMarket(position_size_x18=int(b * 10**18), open_notional_x18=0, pending_funding_x18=0)
            for m, b in chain_base.items()}
    snapshot = SimpleNamespace(block_number=9, account=PerpAccountState("0xexecutor", 10**23, 10**11, 0, 0, held),
                               markets={})
    metrics = metrics or KeeperMetrics()
    engine = SimpleNamespace(metrics=metrics, executor=SimpleNamespace(mode=mode), virtual_positions={
        m: SimpleNamespace(perp_base_x18=int(b * 10**18)) for m, b in virtual_base.items()})
    Engine._observe(engine, snapshot, [])
    return {m: metrics.registry.get_sample_value("keeper_position_base", {"market": m}) for m in chain_base}


def test_a_dry_run_publishes_its_would_be_positions_which_the_chain_never_holds() -> None:
    metrics = KeeperMetrics()
    flat = {"ETH": 0.0, "BTC": 0.0}
    # before: 0.0 while the log and the panel showed the short
    assert published_positions("dry_run", flat, {"ETH": -1.5}, metrics) == {"ETH": -1.5, "BTC": 0.0}
    # a live run publishes what the chain holds
    assert published_positions("live", flat, {"ETH": 1.0}, metrics) == {"ETH": 0.0, "BTC": 0.0}


def test_a_dry_run_publishes_its_own_book_only_never_the_chain_s_size_for_a_market_it_does_not_hold() -> None:
    # Given a dry run reading an executor that holds a real BTC long (opened by a live run), and a
    # would-be ETH short of its own, then the gauge is the dry run's book: its ETH short, and 0 for
    # BTC (before: the chain's 2.0, two books in one series)
    metrics = KeeperMetrics()
    chain = {"ETH": 0.0, "BTC": 2.0}
    assert published_positions("dry_run", chain, {"ETH": -1.0}, metrics) == {"ETH": -1.0, "BTC": 0.0}
    # and once it closes its ETH short, 0 there too, while the chain's account is what it was
    assert published_positions("dry_run", chain, {}, metrics) == {"ETH": 0.0, "BTC": 0.0}
    assert published_positions("live", chain, {}) == {"ETH": 0.0, "BTC": 2.0}


def test_a_spot_venue_a_market_has_no_pool_on_exports_no_series_at_all() -> None:
    import math
    from types import SimpleNamespace

    from keeper.engine import Engine
    from keeper.signals import SkippedSignal
    from keeper.venues.sources import MarketSource

    # Given BTC with a V3 pool and no V2 pair (as on Optimism, where a token may have none)
    btc = MarketSource("BTC", "0xbase", "0xagg", "0xwbtc", 8, "0xusdc", uniswap_v2_pair=None, uniswap_v3_pool="0xpool")
    metrics = KeeperMetrics()
    engine = SimpleNamespace(metrics=metrics, collector=SimpleNamespace(sources=SimpleNamespace(markets=(btc,))),
                             _pooled=MarketSource.pooled((btc,)))
    read = SimpleNamespace(block_number=7, account=None, markets={"BTC": SimpleNamespace(perp=object())})
    # when a block's V2 signal is skipped (no pair) and its V3 read failed
    Engine._observe(engine, read, [SkippedSignal("BTC", "uniswap_v2", "no Uniswap V2 pair configured"),
                                   SkippedSignal("BTC", "uniswap_v3", "UniswapV3Pool(0xpool) head unreadable")])
    series = {(s.name, s.labels.get("venue")) for family in metrics.registry.collect() for s in family.samples
              if s.labels.get("market") == "BTC" and "venue" in s.labels}
    # then the pair that cannot exist has no series (before: NaN basis and z-score for BTC on uniswap_v2, every
    # block), while the venue it has but could not read is NaN, as before
    assert series == {("keeper_basis_bps", "uniswap_v3"), ("keeper_basis_zscore", "uniswap_v3")}
    assert math.isnan(metrics.registry.get_sample_value("keeper_basis_bps", {"market": "BTC", "venue": "uniswap_v3"}) or 0.0)
