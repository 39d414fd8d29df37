"""The Perp vault funded at start: `account.collateral_usdc` is the USDC the keeper keeps in Perp's
vault through the executor. The rest of the executor's USDC stays in its wallet, to buy spot with
(short-perp trades) and for the margin ladder's top-ups (keeper/margin_ladder.py).

A live keeper whose vault holds less than that (an executor just deployed with `keeper executor
deploy` and funded with USDC holds none there) deposits the difference from the executor's wallet
at start, in one `depositCollateral` transaction (the operator may; the executor refuses while
paused): `collateral.deposited`, with the amounts and the gas. Without it a keeper sizes every
trade against $0 of free collateral and never trades. What the vault holds is its account value
(collateral and PnL), read after the last run's transactions are settled, so a vault that has lost
more than MIN_SHORTFALL_SHARE of the target is topped back up at the next start (a smaller
shortfall is not worth a transaction). A start with a transaction of its key still in flight
deposits nothing (`collateral.deferred`): that transaction may be an earlier deposit. A deposit
whose outcome is not known is fatal, never retried: the next start finds it in flight. A dry run
sends nothing: it logs what a live start would deposit (`collateral.short`). The deposit's gas is
in the event, not in the journal's PnL (it is not a trade's).
"""

from __future__ import annotations

from keeper.chain.sender import TxSender
from keeper.chain.tx_types import SimulationReverted, TxRequest
from keeper.errors import FatalError, TransientError
from keeper.logs import get_logger
from keeper.types import USDC_DECIMALS, USDC_TO_X18, MarketSnapshot, PerpAccountState
from keeper.venues.executor import EXECUTOR

log = get_logger("keeper.collateral")
MIN_SHORTFALL_SHARE = 0.01  # of the target: a smaller shortfall is not topped up


def start_deposit_raw(account: PerpAccountState, wallet_usdc_raw: int, target_usdc: float) -> int:
    """USDC (raw) to move from the executor's wallet into the vault so that it holds `target_usdc`:
    the shortfall of its account value, at most what the wallet holds; 0 when it holds enough, or
    lacks less than MIN_SHORTFALL_SHARE of the target."""
    target_raw = round(target_usdc * 10**USDC_DECIMALS)
    shortfall = target_raw - max(0, account.account_value_x18) // USDC_TO_X18
    if shortfall <= 0 or shortfall < MIN_SHORTFALL_SHARE * target_raw:
        return 0
    return min(shortfall, wallet_usdc_raw)


def fund_vault(snapshot: MarketSnapshot, usdc: str, executor: str, target_usdc: float,
               sender: TxSender | None) -> int:
    """At start, on a snapshot read after the last run's transactions were settled: deposit what
    `start_deposit_raw` says through `sender` (None: a dry run, which only logs it); returns the raw
    USDC deposited. A deposit that does not land, or whose outcome is unknown, is a FatalError
    naming account.collateral_usdc (never retried: a second deposit could follow the first)."""
    account = snapshot.account
    if not isinstance(account, PerpAccountState):
        return 0
    held_usd = account.account_value_x18 / 10**18
    fields = dict(executor=executor, vault_usd=round(held_usd, 2), target_usd=target_usdc)
    if usdc not in snapshot.wallet_raw:
        if held_usd < target_usdc:
            log.warning("collateral.short", **fields, deposit_usdc=0,
                        reason="the executor's USDC balance could not be read at start: nothing deposited")
        return 0
    wallet_raw = snapshot.wallet_raw[usdc]
    amount = start_deposit_raw(account, wallet_raw, target_usdc)
    if amount == 0:
        if held_usd < target_usdc * (1 - MIN_SHORTFALL_SHARE) and wallet_raw == 0:
            log.warning("collateral.short", **fields, wallet_usdc=0, deposit_usdc=0,
                        reason="the executor's wallet holds no USDC to deposit: fund it (or lower account.collateral_usdc)")
        return 0
    deposit_usd = amount / 10**USDC_DECIMALS
    if sender is None:
        log.warning("collateral.short", **fields, wallet_usdc=wallet_raw / 10**USDC_DECIMALS, deposit_usdc=deposit_usd,
                    reason="dry run: a live start would deposit this from the executor's wallet; sizing sees the vault as it is")
        return 0
    in_flight = sender.tracked()
    if in_flight:
        log.warning("collateral.deferred", **fields, deposit_usdc=deposit_usd,
                    in_flight=[f"{p.entry.label} (nonce {p.entry.nonce})" for p in in_flight],
                    reason="a transaction of this key is still in flight (it may be an earlier deposit): "
                           "nothing deposited this start")
        return 0
    what = f"account.collateral_usdc: depositing ${deposit_usd:,.2f} from executor {executor}'s wallet into the Perp vault"
    try:
        pending = sender.submit(TxRequest(to=executor, data=EXECUTOR.encode("depositCollateral", amount),
                                          label="collateral deposit", errors_abi=EXECUTOR))
    except SimulationReverted as exc:  # nothing sent (e.g. the executor is paused)
        raise FatalError(f"{what} would revert: {exc.reason}; nothing sent") from exc
    try:
        outcome = sender.wait(pending)
    except TransientError as exc:  # sent, outcome unknown: the next start finds it in flight
        raise FatalError(f"{what}: sent as {pending.tx_hash}, outcome unknown ({exc}); the next start settles it "
                         "before depositing anything") from exc
    sender.acknowledge(outcome.nonce)  # not a trade: nothing for the journal to book
    if outcome.status != "included" or outcome.revert_reason:
        raise FatalError(f"{what} did not land ({outcome.status}"
                         f"{f': {outcome.revert_reason}' if outcome.revert_reason else ''}, tx {outcome.tx_hash})")
    log.info("collateral.deposited", executor=executor, deposit_usdc=deposit_usd, vault_usd_before=round(held_usd, 2),
             target_usd=target_usdc, tx_hash=outcome.tx_hash, block=outcome.block_number, gas_used=outcome.gas_used,
             fee_paid_wei=outcome.fee_paid_wei)
    return amount
