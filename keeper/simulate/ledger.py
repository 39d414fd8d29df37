"""The keeper's balances on the fork, read exactly, and the balance change the PnL split must equal.

What the keeper owns (all of it through its executor, plus the owner's gas money):

    wallet      USDC in the executor                         raw x 10**12 -> USD x18, exact
    perp        Perp v2 account of the executor:
                  Vault.getBalance (USDC raw x 10**12)
                + owedRealizedPnl + unrealizedPnl            (AccountBalance.getPnlAndPendingFee)
                - pending funding                            (Exchange.getAllPendingFundingPayment)
                (exact to the wei; ClearingHouse.getAccountValue rounds to USDC's 6 decimals)
    spot        the executor's spot tokens, per market
    gas         the owner's ETH

The balance change between two readings, in USD x18:

    change = d(wallet) + d(perp) + sum over markets of d(spot_raw) x price_x18 / 10**decimals

with each market's spot change valued at one price (`spot_price_x18`). A position that is closed
holds exactly the spot it started with (the close sells, or buys back, the very amount the open
bought or sold), so d(spot_raw) is 0 and the change is exact and independent of that price: it
is what the trades and funding moved, `trading + funding` of the journal's split. Gas is paid in
ETH by the owner, outside the executor; the journal values each transaction's fee at the ETH
index of the snapshot it was planned on. So, with every position closed:

    funding + convergence - fees - gas  ==  change - gas        (the journal's split, exactly)
    sum of the journal's fee_paid_wei   ==  the owner's ETH spent (on-chain, exactly)

For an open position d(spot_raw) != 0 and the change depends on the price: valued at the spot
mid it is a mark-to-market (the perp leg is marked by Perp at its mark price), for the charts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from keeper.chain.rpc import JsonRpc
from keeper.collect import Sources
from keeper.devnet.txs import codec
from keeper.types import USDC_TO_X18



@dataclass(frozen=True)
class KeeperBalances:
    block: int
    wallet_usdc_raw: int
    vault_balance_raw: int
    owed_realized_pnl_x18: int
    unrealized_pnl_x18: int
    pending_funding_x18: int  # positive: the account owes
    spot_raw: Mapping[str, int]  # by market
    owner_eth_wei: int

    @property
    def perp_value_x18(self) -> int:
        return (self.vault_balance_raw * USDC_TO_X18 + self.owed_realized_pnl_x18 + self.unrealized_pnl_x18
                - self.pending_funding_x18)

    def as_json(self) -> dict[str, object]:
        return {"block": self.block, "wallet_usdc_raw": str(self.wallet_usdc_raw),
                "vault_balance_raw": str(self.vault_balance_raw),
                "owed_realized_pnl_x18": str(self.owed_realized_pnl_x18),
                "unrealized_pnl_x18": str(self.unrealized_pnl_x18),
                "pending_funding_x18": str(self.pending_funding_x18),
                "spot_raw": {m: str(v) for m, v in self.spot_raw.items()}, "owner_eth_wei": str(self.owner_eth_wei)}


@dataclass(frozen=True)
class BalanceChange:
    wallet_x18: int
    perp_x18: int
    spot_x18: int
    spot_raw: Mapping[str, int] = field(default_factory=dict)  # d(spot_raw) by market
    gas_wei: int = 0  # the owner's ETH spent (>= 0)

    @property
    def total_x18(self) -> int:
        """The executor's value change (trading + funding); gas is not in it."""
        return self.wallet_x18 + self.perp_x18 + self.spot_x18

    @property
    def spot_flat(self) -> bool:
        """Every market holds the spot it started with: the change is exact, price-free."""
        return all(v == 0 for v in self.spot_raw.values())


def compute_balance_change(start: KeeperBalances, end: KeeperBalances,
                           spot_price_x18: Mapping[str, int], spot_decimals: Mapping[str, int]) -> BalanceChange:
    """end - start (see the module notes). spot_price_x18: USD x18 per whole spot token."""
    spot_raw = {m: end.spot_raw.get(m, 0) - start.spot_raw.get(m, 0) for m in set(start.spot_raw) | set(end.spot_raw)}
    spot_x18 = 0
    for market, delta in spot_raw.items():
        if delta:
            value = delta * spot_price_x18[market]
            # round toward zero either way: a valuation, not a payment
            spot_x18 += value // 10 ** spot_decimals[market] if value >= 0 else -(-value // 10 ** spot_decimals[market])
    return BalanceChange(
        wallet_x18=(end.wallet_usdc_raw - start.wallet_usdc_raw) * USDC_TO_X18,
        perp_x18=end.perp_value_x18 - start.perp_value_x18,
        spot_x18=spot_x18,
        spot_raw=dict(sorted(spot_raw.items())),
        gas_wei=start.owner_eth_wei - end.owner_eth_wei,
    )


class BalanceReader:
    """Reads KeeperBalances in one JSON-RPC batch pinned to a block."""

    def __init__(self, rpc: JsonRpc, sources: Sources, usdc: str, executor: str, owner: str) -> None:
        self.rpc = rpc
        self.sources = sources
        self.usdc = usdc
        self.executor = executor
        self.owner = owner
        self._erc20 = codec("MintableERC20")
        self._vault = codec("Vault")
        self._account_balance = codec("AccountBalance")
        self._exchange = codec("Exchange")

    def _call(self, to: str, data: bytes, tag: str) -> tuple[str, list[object]]:
        return ("eth_call", [{"to": to, "data": "0x" + data.hex()}, tag])

    def read(self, block: int | None = None) -> KeeperBalances:
        tag = "latest" if block is None else hex(block)
        if block is None:
            block = self.rpc.block_number()
            tag = hex(block)
        ex, p = self.executor, self.sources.perp
        calls = [
            self._call(self.usdc, self._erc20.encode("balanceOf", ex), tag),
            self._call(p.vault, self._vault.encode("getBalance", ex), tag),
            self._call(p.account_balance, self._account_balance.encode("getPnlAndPendingFee", ex), tag),
            self._call(p.exchange, self._exchange.encode("getAllPendingFundingPayment", ex), tag),
            ("eth_getBalance", [self.owner, tag]),
        ]
        calls += [self._call(m.spot_token, self._erc20.encode("balanceOf", ex), tag) for m in self.sources.markets]
        out = self.rpc.batch(calls)

        def data(i: int) -> bytes:
            return bytes.fromhex(str(out[i])[2:])

        wallet = self._erc20.decode("balanceOf", data(0), 1)[0]
        vault = self._vault.decode("getBalance", data(1), 1)[0]
        owed, unrealized, _pending_fee = self._account_balance.decode("getPnlAndPendingFee", data(2), 1)
        funding = self._exchange.decode("getAllPendingFundingPayment", data(3), 1)[0]
        spot = {m.name: int(self._erc20.decode("balanceOf", data(5 + i), 1)[0]) for i, m in enumerate(self.sources.markets)}
        return KeeperBalances(block, int(wallet), int(vault), int(owed), int(unrealized), int(funding), spot,
                              int(str(out[4]), 16))
