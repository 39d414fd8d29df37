"""Collect: one MarketSnapshot per block, from contract state only.

Steady state is two eth_calls, both Multicall3 aggregate3 batches pinned to one block:
  1. every market's heads (Perp prices/TWAPs/fees, vAMM and spot pool slot0/liquidity, V2
     reserves, oracle answers), the tickBitmap words around each pool's last known tick, the
     account, and the block number/timestamp/base fee;
  2. ticks(t).liquidityNet for every initialized tick found in those words, at the block of 1.
When a pool's price has left the safe middle of its bitmap window (or on the first snapshot) the
window is re-read around the new tick first, which costs one more call that block.

No venue is named here: each reader of keeper/venues/registry.SNAPSHOT_READERS (the venue adapters
and the oracle) plans its calls for a market, declares the concentrated-liquidity pools and storage
words its state needs, and builds its MarketView field from the answers
(keeper/venues/snapshot_reads.py). This module batches the plans and keeps the pools' tick windows.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from keeper.artifacts import abi_codec
from keeper.chain.multicall import Call, CallResult, Multicall, encode_aggregate3, word_uint
from keeper.chain.rpc import JsonRpc
from keeper.errors import ChainMismatchError, KeeperError, RpcError, SnapshotWrongBlock
from keeper.logs import get_logger, redacted_url
from keeper.types import MarketSnapshot, MarketView, Unavailable
from keeper.venues import chainlink, perp_v2, uniswap_v3
from keeper.venues.reads import ReadPlan
from keeper.venues.registry import SNAPSHOT_READERS
from keeper.venues.snapshot_reads import MarketAnswers, PoolSlot, ReadContext, SnapshotReads
from keeper.venues.sources import MarketSource, MarketStatic, PoolStatic
from keeper.venues.uniswap_v3_math import V3PoolState


_MC_BLOCK_NUMBER = bytes.fromhex("42cbb15c")  # getBlockNumber()
_MC_TIMESTAMP = bytes.fromhex("0f28c97d")  # getCurrentBlockTimestamp()
_MC_BASEFEE = bytes.fromhex("3e64a696")  # getBasefee()

log = get_logger("keeper.collect")


# Ticks a pool's read window reaches either way at least: a x1.29 / x0.774 price move, past the
# default stressed closes of strategies/exit_stress.py (index 5%, Perp's band up to 10%).
STRESS_REACH_TICKS = 2_560
# prepare(): a market read that fails is read once more after this pause before it is fatal. anvil
# answers a read made while it mines a block (a driven devnet) with a revert now and then (a TWAP
# underflow: the new block's state at the old block's time); a market that is really unreadable
# fails twice.
PREPARE_RETRY_PAUSE_S = 0.3
# check_block: a batch is read at most this many times; answered from another block than the one
# asked for every time, the snapshot is refused (SnapshotWrongBlock: the tick is skipped).
READS_PER_BATCH = 3


@dataclass(frozen=True)
class Sources:
    chain_id: int
    perp: perp_v2.PerpAddresses
    multicall3: str
    markets: tuple[MarketSource, ...]

    @classmethod
    def from_manifest(cls, manifest: Any) -> Sources:
        c = manifest.contracts
        perp = perp_v2.PerpAddresses(c["ClearingHouse"], c["ClearingHouseConfig"], c["Exchange"],
                                     c["AccountBalance"], c["MarketRegistry"], c["Vault"])
        markets = tuple(
            MarketSource(m.name, m.base_token, m.aggregator, m.spot_token, m.spot_token_decimals, c["USDC"],
                         m.uniswap_v2_pair, m.uniswap_v3_pool)
            for m in manifest.markets
        )
        return cls(manifest.chain_id, perp, c["Multicall3"], markets)


@dataclass(frozen=True)
class _MarketReads:
    """One market's read context and the pools its readers declared (built once per statics)."""

    ctx: ReadContext
    pools: tuple[PoolSlot, ...]
    storage_readers: tuple[SnapshotReads, ...]


@dataclass(frozen=True)
class _Phase1:
    key: tuple[int | None, ...]
    plans: list[ReadPlan[Any]]
    per_market: list[dict[str, ReadPlan[Any]]]
    account_plan: ReadPlan[Any] | None
    wallet_plan: ReadPlan[Any] | None
    calldata: bytes


class SnapshotCollector:
    """Reads every market at one block. prepare() once (static facts, code checks), then
    fetch_snapshot() each block.

    check_block (the live loop's collector, keeper/runtime.py): every batch carries Multicall3's
    getBlockNumber (phase 1 reads it anyway; the later batches get it as their first call, in the
    same eth_call), and a batch answered from another block than the one asked for (a node mining
    the next block while it answers) is read again, at most READS_PER_BATCH times in all. Off (replay,
    history, scans), the calldata is the same as it always was.

    What the check cannot see is the state. anvil answers a read of its head block H while it mines
    H+1 with H+1's state under H's number (bench/storage_race.py, 2026-12-02, blocks carrying a
    transaction mined back to back, 4 runs): an eth_call of 23-40% of checked snapshots ran on
    another block's state, getBlockNumber saying H in all, and the ticks batch's storage reads
    (eth_getStorageAt, which carry no number) were another block's in 7-15%. So the storage reads
    are not checked: a check against the batch's getBlockNumber would pass them. Pinning them by
    hash does not help (anvil resolves a hash to its number: 40-67% of reads of the head answered
    from another block's state by hash, 28-43% by number, worse in every run), nor a check of their
    order in the batch (anvil answers a batch's requests concurrently: 1.3-7.3% out of order). Reads
    of a block behind the head (kept states) are not raced; which block the loop reads is the loop's
    choice, not this module's. A node that resolves a number to its header's state root (geth, reth)
    answers every read pinned to H, storage or call, from H's state."""

    def __init__(self, rpc: JsonRpc, sources: Sources, account: str | None = None,
                 bitmap_half_width_words: int = 2, readers: Sequence[SnapshotReads] = SNAPSHOT_READERS,
                 check_block: bool = False) -> None:
        self.rpc = rpc
        self.check_block = check_block
        # the plans put before a later batch's own: its block number when checked, none otherwise
        self._lead: list[ReadPlan[Any]] = [ReadPlan(
            [Call(sources.multicall3, _MC_BLOCK_NUMBER, "Multicall3.getBlockNumber")],
            lambda d: word_uint(d[0]))] if check_block else []
        self.readers = tuple(readers)  # who fills each MarketView field, in batch order
        self.sources = sources
        self._account = account
        self.half_width = bitmap_half_width_words
        self.multicall = Multicall(rpc, sources.multicall3)
        self.static: tuple[MarketStatic, ...] = ()
        self.config: perp_v2.PerpConfig | None = None
        self._windows: dict[str, uniswap_v3.BitmapWindow] = {}  # pool -> bitmap window read this block
        self._last_tick: dict[str, int] = {}  # pool -> tick at the last snapshot (centres next window)
        # the calldata of a set of window centres (phase 1) and of initialized ticks (phase 2),
        # kept for the last few sets: a price moving to and fro over a word's edge reuses them
        self._phase1_cache: dict[tuple[int | None, ...], _Phase1] = {}
        self._ticks_cache: dict[tuple[Any, ...], tuple[list[ReadPlan[Any]], bytes]] = {}
        # per-block work that depends only on the statics, or on objects a replay keeps from the
        # previous block when their bytes did not change (keeper/history/replay.py): kept
        self._pools_cache: tuple[tuple[MarketStatic, ...], list[_MarketReads], list[PoolStatic]] | None = None
        self._window_ticks: dict[str, tuple[uniswap_v3.BitmapWindow, tuple[int, ...]]] = {}
        self._pool_states: dict[str, tuple[Any, Any, Any, V3PoolState, PoolStatic]] = {}
        self._last_windows: tuple[list[uniswap_v3.BitmapWindow], tuple[list[PoolStatic], Any]] | None = None

    @property
    def account(self) -> str | None:
        """The account whose Perp state and wallet each snapshot reads (None: none)."""
        return self._account

    @account.setter
    def account(self, address: str | None) -> None:  # the cached phase-1 plans read the old one's
        self._account = address
        self._phase1_cache.clear()

    # ------------------------------------------------------------------ prepare
    def half_width_for(self, tick_spacing: int) -> int:
        """Bitmap words read either side of a pool's tick: at least the configured width, and enough
        that the window reaches STRESS_REACH_TICKS both ways even right before it is re-centred (one
        word of it is the safety margin), so the exit-stress rule can quote its stressed closes on
        fine-spaced pools (spacing 1: 11 words; 10, 60 and wider, the devnet's: the configured 2)."""
        return max(self.half_width, -(-STRESS_REACH_TICKS // (256 * tick_spacing)) + 1)

    def prepare(self) -> None:
        """Check chain id and that every address has code; read fees, tick spacings, decimals."""
        chain_id = self.rpc.chain_id()
        if chain_id != self.sources.chain_id:
            raise ChainMismatchError(f"RPC {redacted_url(self.rpc.url)} is chain {chain_id}, expected {self.sources.chain_id}")
        named = self._named_addresses()
        codes = self.rpc.batch([("eth_getCode", [address, "latest"]) for address in named.values()])
        missing = [f"{name} ({address})" for (name, address), code in zip(named.items(), codes) if code in ("0x", "")]
        if missing:  # the first few (all of them: the node is not the chain the addresses are for)
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            hint = (" (none of the addresses has code: is the node the chain they are for, e.g. the devnet whose "
                    "manifest this is, still running?)") if len(missing) == len(named) else ""
            raise ChainMismatchError(f"no contract code at {', '.join(missing[:3])}{more} on chain {chain_id}{hint}")
        config_plan = perp_v2.plan_config(self.sources.perp)
        config = config_plan.result(self.multicall.run_calls(list(config_plan.calls)))
        if isinstance(config, Unavailable):
            raise ChainMismatchError(f"Perp v2 ClearingHouseConfig unreadable: {config.reason}")
        self.config = config
        statics = []
        for m in self.sources.markets:
            info = perp_v2.plan_market(self.sources.perp, m.base_token, config.twap_interval_s)
            reads = info.result(self.multicall.run_calls(list(info.calls)))
            if isinstance(reads, Unavailable):
                time.sleep(PREPARE_RETRY_PAUSE_S)
                reads = info.result(self.multicall.run_calls(list(info.calls)))
            if isinstance(reads, Unavailable):
                raise ChainMismatchError(f"market {m.name}: Perp v2 market unreadable: {reads.reason}")
            perp_pool = self._pool_static(to_checksum_address(reads.pool))
            spot_pool = self._pool_static(m.uniswap_v3_pool) if m.uniswap_v3_pool else None
            decimals = word_uint(self.rpc.eth_call(m.aggregator, chainlink.DECIMALS))
            statics.append(MarketStatic(m, perp_pool, spot_pool, decimals))
        self.static = tuple(statics)

    def _named_addresses(self) -> dict[str, str]:
        p = self.sources.perp
        named = {"Multicall3": self.sources.multicall3, "ClearingHouse": p.clearing_house,
                 "ClearingHouseConfig": p.clearing_house_config, "Exchange": p.exchange,
                 "AccountBalance": p.account_balance, "MarketRegistry": p.market_registry, "Vault": p.vault}
        for m in self.sources.markets:
            named[f"{m.name}.base_token"] = m.base_token
            named[f"{m.name}.aggregator"] = m.aggregator
            named[f"{m.name}.spot_token"] = m.spot_token
            if m.uniswap_v2_pair:
                named[f"{m.name}.uniswap_v2_pair"] = m.uniswap_v2_pair
            if m.uniswap_v3_pool:
                named[f"{m.name}.uniswap_v3_pool"] = m.uniswap_v3_pool
        return named

    def _pool_static(self, pool: str) -> PoolStatic:
        fee, spacing = (word_uint(r.return_data) for r in self.multicall.run_calls(
            [Call(pool, uniswap_v3.FEE, "fee"), Call(pool, uniswap_v3.TICK_SPACING, "tickSpacing")]))
        return PoolStatic(pool, fee, spacing)

    # ------------------------------------------------------------------ per block
    def _markets(self) -> tuple[list[_MarketReads], list[PoolStatic]]:
        """Each market's read context and declared pools, and every pool in order: built once per
        statics."""
        if self._pools_cache is None or self._pools_cache[0] is not self.static:
            assert self.config is not None
            markets = []
            for s in self.static:
                ctx = ReadContext(s, self.sources.perp, self.config)
                markets.append(_MarketReads(ctx, tuple(slot for r in self.readers for slot in r.pools(ctx)),
                                            tuple(r for r in self.readers if r.reads_storage)))
            self._pools_cache = (self.static, markets, [slot.pool for m in markets for slot in m.pools])
        return self._pools_cache[1], self._pools_cache[2]

    def _pools(self) -> list[PoolStatic]:
        """Every concentrated-liquidity pool the readers declared (perp vAMMs, spot pools)."""
        return self._markets()[1]

    def _initialized_ticks(self, pool: str) -> tuple[int, ...]:
        """The window's initialized ticks (the same window object as last block: the same ticks)."""
        window = self._windows[pool]
        known = self._window_ticks.get(pool)
        if known is None or known[0] is not window:
            known = self._window_ticks[pool] = (window, tuple(window.initialized_ticks()))
        return known[1]

    def fetch_snapshot(self, block: int | str = "latest") -> MarketSnapshot:
        if self.config is None:
            self.prepare()
        assert self.config is not None
        round_trips_before = self.rpc.stats.round_trips
        self._windows = {}  # bitmap words are only trusted at the block they were read
        markets_reads, pools = self._markets()
        # ---- phase 1: heads of everything + bitmap windows where a tick is known
        phase1 = self._phase1()
        per_market, account_plan = phase1.per_market, phase1.account_plan
        results = self._read_at("heads", block if isinstance(block, int) else None,
                                lambda: self._run(phase1.plans, block, phase1.calldata),
                                lambda r: r[0][0] if isinstance(r[0], tuple) else None)
        block_values = results[0]
        if isinstance(block_values, Unavailable):
            raise KeeperError(f"snapshot: block getters failed: {block_values.reason}")
        block_number, block_ts, base_fee = block_values
        index = 1
        decoded: list[dict[str, Any]] = []
        for entry in per_market:
            end = index + len(entry)
            decoded.append(dict(zip(entry, results[index:end])))
            index = end
        account_state = results[index] if account_plan else None
        wallet = results[index + 1] if phase1.wallet_plan else {}
        wallet = {} if isinstance(wallet, Unavailable) else wallet

        # ---- phase 2 (and 3 when a window moved): liquidityNet of initialized ticks
        heads: dict[str, uniswap_v3.V3Head] = {}
        for mr, d in zip(markets_reads, decoded):
            for slot in mr.pools:
                head = d.get(slot.head_key)
                if head is None or isinstance(head, Unavailable):
                    continue
                heads[slot.pool.address] = head
                self._last_tick[slot.pool.address] = head.tick
                window = d.get(slot.window_key)
                if isinstance(window, uniswap_v3.BitmapWindow):
                    self._windows[slot.pool.address] = window
        stale = [p for p in pools if p.address in heads and not (
            p.address in self._windows and self._windows[p.address].covers_safely(heads[p.address].tick))]
        if stale:
            bitmap_plans = [uniswap_v3.plan_bitmap(p.address, p.tick_spacing, heads[p.address].tick,
                                                   self.half_width_for(p.tick_spacing)) for p in stale]
            lead = len(self._lead)
            read = self._read_at("windows", block_number, lambda: self._run(self._lead + bitmap_plans, block_number),
                                 self._lead_block)
            for p, window in zip(stale, read[lead:]):
                if isinstance(window, uniswap_v3.BitmapWindow):
                    self._windows[p.address] = window
                else:
                    self._windows.pop(p.address, None)
        tick_pools = [p for p in pools if p.address in heads and p.address in self._windows]
        windows = [self._windows[p.address] for p in tick_pools]
        if self._last_windows is not None and len(windows) == len(self._last_windows[0]) and \
                all(map(operator.is_, windows, self._last_windows[0])):
            tick_pools, known_ticks = self._last_windows[1]  # the same window objects: the same ticks and calls
        else:
            tick_key = tuple((p.address, self._initialized_ticks(p.address)) for p in tick_pools)
            known_ticks = self._ticks_cache.get(tick_key)
            if known_ticks is None:
                tick_plans = self._lead + [uniswap_v3.plan_liquidity_net(address, list(ticks))
                                           for address, ticks in tick_key]
                known_ticks = _remember(self._ticks_cache, tick_key,
                                        (tick_plans, encode_aggregate3([c for p in tick_plans for c in p.calls])))
            self._last_windows = (windows, (tick_pools, known_ticks))
        tick_plans, tick_calldata = known_ticks
        storage = [[(r, r.storage_requests(mr.ctx, block_number)) for r in mr.storage_readers] for mr in markets_reads]
        storage_requests = [q for per_reader in storage for _, requests in per_reader for q in requests]
        tick_results, storage_words = self._read_at(
            "ticks", block_number,
            lambda: self._run_with_requests(tick_plans, block_number, tick_calldata, storage_requests),
            lambda r: self._lead_block(r[0]))
        nets = dict(zip((p.address for p in tick_pools), tick_results[len(self._lead):]))

        def pool_state(pool: PoolStatic | None) -> V3PoolState | Unavailable:
            if pool is None:
                return Unavailable("no Uniswap V3 pool configured")
            head = heads.get(pool.address)
            net = nets.get(pool.address)
            if head is None:
                return Unavailable(f"UniswapV3Pool({pool.address}) head unreadable")
            if not isinstance(net, dict):
                return net if isinstance(net, Unavailable) else Unavailable(f"UniswapV3Pool({pool.address}) ticks unreadable")
            window = self._windows[pool.address]
            known = self._pool_states.get(pool.address)
            if known is not None and known[1] is net and known[2] is window and known[4] is pool:
                if known[0] is head:
                    return known[3]  # the same (immutable) reads as last block: the same state
                state = known[3].moved_to(head.sqrt_price_x96, head.tick, head.liquidity)  # the same ticks
                self._pool_states[pool.address] = (head, net, window, state, pool)
                return state
            state = V3PoolState(sqrt_price_x96=head.sqrt_price_x96, tick=head.tick, liquidity=head.liquidity,
                                fee_pips=pool.fee_pips, tick_spacing=pool.tick_spacing,
                                liquidity_net_by_tick=net, tick_window=window.tick_range)
            self._pool_states[pool.address] = (head, net, window, state, pool)
            return state

        markets = {}
        word = 0  # a failed storage batch leaves every reader's words None
        for mr, d, per_reader in zip(markets_reads, decoded, storage):
            words: dict[str, Any] = {}
            for reader, requests in per_reader:
                words[reader.snapshot_field] = storage_words[word:word + len(requests)] if storage_words and requests else None
                word += len(requests)
            answers = MarketAnswers(d, pool_state, words, block_ts)
            m = mr.ctx.static.source
            markets[m.name] = MarketView(m.name, m.spot_token_decimals, m.spot_is_token0,
                                         **{r.snapshot_field: r.snapshot_part(mr.ctx, answers) for r in self.readers})
        return MarketSnapshot(block_number, block_ts, base_fee, markets, account_state,
                              self.rpc.stats.round_trips - round_trips_before, wallet)

    def _phase1(self) -> _Phase1:
        """Phase-1 plans and calldata; rebuilt only when a bitmap window's centre word moves
        (the calldata is otherwise identical every block). Per market: every reader's heads in
        registry order, then the bitmap window of each declared pool whose tick is known."""
        markets_reads, pools = self._markets()
        key = tuple(uniswap_v3.word_of_tick(self._last_tick[p.address], p.tick_spacing) if p.address in self._last_tick else None
                    for p in pools)
        known = self._phase1_cache.get(key)
        if known is not None:
            return known
        globals_plan: ReadPlan[tuple[int, int, int]] = ReadPlan(
            [Call(self.sources.multicall3, _MC_BLOCK_NUMBER, "Multicall3.getBlockNumber"),
             Call(self.sources.multicall3, _MC_TIMESTAMP, "Multicall3.getCurrentBlockTimestamp"),
             Call(self.sources.multicall3, _MC_BASEFEE, "Multicall3.getBasefee")],
            lambda d: (word_uint(d[0]), word_uint(d[1]), word_uint(d[2])))
        plans: list[ReadPlan[Any]] = [globals_plan]
        per_market: list[dict[str, ReadPlan[Any]]] = []
        for mr in markets_reads:
            entry: dict[str, ReadPlan[Any]] = {}
            for reader in self.readers:
                entry.update(reader.head_plans(mr.ctx))
            for slot in mr.pools:
                if slot.pool.address in self._last_tick:
                    entry[slot.window_key] = uniswap_v3.plan_bitmap(slot.pool.address, slot.pool.tick_spacing,
                                                                    self._last_tick[slot.pool.address],
                                                                    self.half_width_for(slot.pool.tick_spacing))
            per_market.append(entry)
            plans.extend(entry.values())
        account_plan = wallet_plan = None
        if self.account:
            account_plans = [p for r in self.readers if (p := r.account_plan(self.sources.perp, self.account, self.static))]
            assert len(account_plans) == 1, "one reader answers for the snapshot's account"
            account_plan = account_plans[0]
            plans.append(account_plan)
            tokens = sorted({s.source.usdc for s in self.static} | {s.source.spot_token for s in self.static})
            wallet_plan = plan_balances(self.account, tokens)
            plans.append(wallet_plan)
        return _remember(self._phase1_cache, key, _Phase1(key, plans, per_market, account_plan, wallet_plan,
                                                          encode_aggregate3([c for p in plans for c in p.calls])))

    def _read_at(self, phase: str, expected: int | None, read: Callable[[], Any],
                 answered: Callable[[Any], int | None]) -> Any:
        """`read()`'s answer; with check_block, read again while `answered` (its block number, None when
        it has none) is not `expected` (None: any block), up to READS_PER_BATCH reads in all."""
        result = read()
        reads = 1
        while self.check_block and expected is not None:
            got = answered(result)
            if got is None or got == expected:
                break
            if reads == READS_PER_BATCH:
                raise SnapshotWrongBlock(phase, expected, got, reads)
            log.info("snapshot.reread", phase=phase, expected_block=expected, got_block=got, read=reads)
            result = read()
            reads += 1
        return result

    def _lead_block(self, results: list[Any]) -> int | None:
        """The block a later batch was answered from (its lead plan), None when unchecked."""
        return results[0] if self._lead and results and isinstance(results[0], int) else None

    def _run_with_requests(self, plans: Sequence[ReadPlan[Any]], block: int, calldata: bytes,
                           requests: list[tuple[str, list[Any]]]) -> tuple[list[Any], list[Any]]:
        """`plans` through Multicall3 and the extra JSON-RPC requests (storage reads) in ONE batch
        round trip, all pinned to `block`. A failed extra request leaves its values empty (the
        quotes then assume the band), never the snapshot. The storage reads are not block-checked:
        on anvil the eth_call beside them is raced the same way, unseen (see the class notes)."""
        try:
            raw, extra = self.multicall.run_with_requests(calldata if plans else None, block, requests)
        except RpcError:
            return (self._run(plans, block, calldata) if plans else []), []
        return (self._decode(plans, raw) if raw is not None else []), extra

    def _run(self, plans: Sequence[ReadPlan[Any]], block: int | str, calldata: bytes | None = None) -> list[Any]:
        if calldata is None:
            calldata = encode_aggregate3([c for p in plans for c in p.calls])
        return self._decode(plans, self.multicall.run(calldata, block))

    @staticmethod
    def _decode(plans: Sequence[ReadPlan[Any]], raw: Sequence[CallResult]) -> list[Any]:
        out, i = [], 0
        for plan in plans:
            n = len(plan.calls)
            out.append(plan.result(raw[i:i + n]))
            i += n
        return out


_KEPT = 16  # calldata sets kept per phase


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    """Keep `value` under `key`, forgetting the oldest entry past _KEPT."""
    if len(cache) >= _KEPT:
        del cache[next(iter(cache))]
    cache[key] = value
    return value


_ERC20 = abi_codec("MintableERC20")


def plan_balances(account: str, tokens: list[str]) -> ReadPlan[dict[str, int]]:
    """ERC20 balanceOf(account) for each token, keyed by token address."""
    calls = [Call(token, _ERC20.encode("balanceOf", account), f"ERC20({token}).balanceOf") for token in tokens]
    return ReadPlan(calls, lambda d: {t: word_uint(x) for t, x in zip(tokens, d)})


def timed_snapshot(collector: SnapshotCollector, block: int | str = "latest") -> tuple[MarketSnapshot, float]:
    started = time.perf_counter()
    snapshot = collector.fetch_snapshot(block)
    return snapshot, (time.perf_counter() - started) * 1000
