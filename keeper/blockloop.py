"""The block loop: one tick per new head, as soon as the head is known.

Heads come from `keeper.chain.heads.HeadFeed`: pushed over WebSocket when there is a ws URL
(chain.ws_url, or anvil's own port: anvil serves ws:// on its HTTP port), polled over HTTP
otherwise and whenever the socket is down. The loop runs on one thread and asks the feed for "a
head newer than the last one ticked": never two ticks at once, and heads that arrive during a tick
coalesce into the newest. The loop ends after `blocks` ticks (--blocks), on SIGINT/SIGTERM, or on
a fatal error in a tick, each logged as `keeper.stopping` with its reason. With backup nodes
configured, every node's head is compared on a background thread
(`FailoverRpc.start_head_checks`). The embedded devnet's market-activity driver runs as an
APScheduler job on its own thread (max_instances=1, coalesce). The signal handlers only set flags
(keeper/stop_signals.py): SIGINT/SIGTERM stop the loop after the tick in flight, the loop logging
`keeper.stopping`; SIGUSR1 pulls the kill switch, the loop logging `kill_switch.signal`. Before the
first tick, with these handlers in place, the warm start reads the recent past (Runtime.warm_up);
a stop signal ends it and the start (StartStopped: `keeper run` exits 130).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler

from keeper.chain.failover import FailoverRpc
from keeper.chain.heads import HeadFeed, ws_url_for
from keeper.chain.rpc import JsonRpc
from keeper.config import ChainConfig, KeeperConfig
from keeper.errors import FatalError
from keeper.logs import get_logger
from keeper.stop_signals import LOOP, StartStopped, StopSignals

if TYPE_CHECKING:
    from keeper.live import LiveView
    from keeper.runtime import MarketDriver, Runtime

log = get_logger("keeper.loop")
WS_CONNECT_WAIT_S = 2.0
PNL_EVERY_TICKS = 30  # keeper_pnl_usd is refreshed after every tick that booked an outcome, and this often


def head_ws_url(chain: ChainConfig, rpc: JsonRpc) -> str | None:
    """chain.ws_url; else, on anvil (embedded devnet, fork, or a local node), its own port."""
    if chain.heads == "poll":
        return None
    if chain.ws_url:
        return chain.ws_url
    try:
        client = str(rpc.call("web3_clientVersion")).lower()
    except Exception:  # noqa: BLE001 - a node without the method is simply not anvil
        return None
    return ws_url_for(rpc.url) if client.startswith("anvil") else None


def build_head_feed(config: KeeperConfig, rpc: JsonRpc) -> HeadFeed:
    return HeadFeed(rpc.block_number, head_ws_url(config.chain, rpc), poll_interval_s=config.chain.poll_interval_s)


def drive_step(driver: MarketDriver) -> Any:
    """One step of the embedded devnet's market-activity driver (keeper/devnet/activity.py), logged:
    `market.step` (debug) every step, `market.shock` (info) on a step with a scripted premium shock."""
    report = driver.step()
    log.debug("market.step", step=report.step, block=report.block_number)
    if report.shock is not None:
        log.info("market.shock", market=report.shock[0], premium=report.shock[1], step=report.step,
                 block=report.block_number)
    return report


def run_blocks(runtime: Runtime, *, blocks: int | None, drive_interval_s: float = 2.0,
               view: LiveView | None = None, feed: HeadFeed | None = None) -> None:
    """Tick on every new head until `blocks` ticks have run, SIGINT/SIGTERM, a fatal error, or
    forever. An error outside a tick (the heads, the PnL metric's journal read) stops the loop in
    order: `keeper.fatal` (where "loop"), `keeper.stopping` (reason "fatal"), `keeper.stopped`, and
    `runtime.loop_fatal` holds it (`keeper run` exits 1)."""
    feed = feed or runtime.heads or build_head_feed(runtime.config, runtime.rpc)
    signals = runtime.signals  # `keeper run` installed them for its start; else installed here until the loop ends
    previous = None
    if signals is None:
        signals = StopSignals(kill_flag=runtime.kill_flag, raise_on_stop=False)  # flags only, from the start
        previous = signals.install()
    signals.on_stop, signals.raise_on_stop = feed.wake, False  # from here the handlers only set flags
    stop = signals.stop
    metrics = runtime.engine.metrics
    feed.on_poll_error = lambda _exc: metrics.rpc_errors.inc()
    scheduler = BackgroundScheduler()
    if runtime.driver is not None:
        driver = runtime.driver

        def drive_job() -> None:
            if not stop.is_set():
                drive_step(driver)

        scheduler.add_job(drive_job, "interval", seconds=drive_interval_s, max_instances=1, coalesce=True, id="drive")
        scheduler.start()
    if view is not None:
        view.start()
    feed.start()
    if feed.ws_url and not feed.wait_connected(WS_CONNECT_WAIT_S):
        log.warning("heads.ws_not_connected", ws_url=feed.ws_url, fallback="http polling")
    log.info("heads.source", mode=feed.mode, ws_url=feed.ws_url, poll_interval_s=feed.poll_interval_s)
    failover = runtime.rpc if isinstance(runtime.rpc, FailoverRpc) else None
    if failover is not None:
        failover.start_head_checks(runtime.config.chain.head_check_interval_s)
    try:
        _loop(runtime, signals, feed, blocks, view)
    except Exception as exc:  # noqa: BLE001 - outside a tick (a tick's own errors are the engine's): an orderly stop
        runtime.loop_fatal = exc  # the CLI prints it and exits 1
        log.critical("keeper.fatal", where="loop", error_type=type(exc).__name__, error=str(exc))  # URLs redacted
        log.info("keeper.stopping", reason="fatal", ticks=runtime.ticks, phase=signals.phase)
    finally:
        stop.set()
        feed.stop()
        if failover is not None:
            failover.stop_head_checks()
        if scheduler.running:
            scheduler.shutdown(wait=True)
        if previous is not None:
            signals.restore(previous)
    log.info("keeper.stopped", ticks=runtime.ticks, ws_reconnects=feed.reconnects, missed_blocks=feed.missed_blocks,
             phase=signals.phase)


def _loop(runtime: Runtime, signals: StopSignals, feed: HeadFeed, blocks: int | None, view: LiveView | None) -> None:
    """The warm start, then one tick per head until a stop (logged as `keeper.stopping`)."""
    engine, stop, metrics = runtime.engine, signals.stop, runtime.engine.metrics
    action = runtime.config.risk.kill_switch_action
    runtime.warm_up(stop.is_set)  # the past blocks (keeper/warm_start.py): a stop signal ends it, and the start
    if stop.is_set():
        raise StartStopped(signals.stop_signal or "signal")  # `keeper run` logs it (phase "start"), exit 130
    signals.phase = LOOP
    _publish_pnl(metrics, runtime)  # what earlier runs realized, from the start
    while True:
        signals.log_kill_signal(action)
        if stop.is_set():
            log.info("keeper.stopping", reason="signal", signal=signals.stop_signal, ticks=runtime.ticks, phase=LOOP)
            break
        head = feed.wait_newer(engine.last_block, stop)
        if head is None:
            if not stop.is_set():  # the feed itself stopped
                break
            continue  # the stop: logged at the loop's top
        signals.log_kill_signal(action)  # a SIGUSR1 while waiting: told before the tick that applies it
        if engine.last_block >= 0 and head.number > engine.last_block + 1:
            log.debug("heads.coalesced", from_block=engine.last_block + 1, to_block=head.number, source=head.source)
        try:
            report = engine.tick(head.number)
        except FatalError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loop outlives a failed tick, as a structured event
            log.error("tick.failed", block=head.number, error=repr(exc), exc_info=True)
            continue
        if engine.fatal is not None:  # logged as keeper.fatal by the engine; the CLI exits 1
            log.info("keeper.stopping", reason="fatal", ticks=runtime.ticks, phase=LOOP)
            break
        if report is not None:
            runtime.ticks += 1
            if report.outcomes or runtime.ticks % PNL_EVERY_TICKS == 0:  # pair trades: the periodic refresh
                _publish_pnl(metrics, runtime)
            if view is not None and report.snapshot is not None:
                view.state.observe_tick(report.snapshot, report.signals_seen, engine.positions(), report.tick_ms,
                                        heads=f"{feed.mode} ({'pushed' if feed.mode == 'ws' else 'polled'})")
            if blocks is not None and runtime.ticks >= blocks:
                log.info("keeper.stopping", reason="blocks", blocks=blocks, ticks=runtime.ticks, phase=LOOP)
                break


def _publish_pnl(metrics: Any, runtime: Any) -> None:
    """keeper_pnl_usd from the journal; a read that fails is a structured event, not the loop's end
    (a fatal error still stops it)."""
    try:
        metrics.publish_pnl(runtime.journal.realized_since(0.0))
    except FatalError:
        raise
    except Exception as exc:  # noqa: BLE001 - a metric is not worth the loop
        log.error("metrics.pnl_failed", error=repr(exc))
