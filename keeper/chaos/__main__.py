"""`python -m keeper.chaos` (make chaos): the long chaos run, printed."""

from __future__ import annotations

import argparse
import json
import sys
import time

from keeper.chaos.run import ChaosPlan, run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keeper.chaos", description=__doc__)
    parser.add_argument("--steps", type=int, default=150, help="market steps (blocks) on the scripted path")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    started = time.monotonic()
    result = run_chaos(ChaosPlan(steps=args.steps, seed=args.seed))
    live, dry = result["live"], result["dry_run"]
    print(f"chaos run ({time.monotonic() - started:.0f} s, workdir {result['workdir']})")
    rows = [
        ("blocks", live["blocks"]), ("keeper exits (unasked)", live["keeper_exits"]),
        ("exceptions out of a tick", live["exceptions_out_of_a_tick"]),
        ("unexpected errors caught in ticks", live["tick_errors_caught"]),
        ("transient errors skipped", live["transient_skips"]),
        ("faults, and the keeper ticked after each", [(f["what"], f["ticked_after"]) for f in live["faults"]]),
        ("proxy faults", live["proxy"]), ("starts (s to keeper.started)", live["start_s"]),
        ("keeper txs mined / trades included / reverted", (live["keeper_txs"], live["trades_included"], live["reverted"])),
        ("chain trades not booked", len(live["chain_trades_not_booked"])),
        ("duplicate opens", live["duplicate_opens"]), ("opens refused on chain (PositionNotFlat)", live["opens_refused_not_flat"]),
        ("blocks unhedged", f"{live['blocks_unhedged']} of {live['blocks_sampled']} sampled"),
        ("journal vs chain mismatches", live["journal_vs_chain_mismatches"]),
        ("transactions pending in the journal", live["pending_in_journal"]),
        ("gas paid vs booked (wei)", (live["gas_paid_wei"], live["gas_booked_wei"])),
        ("PnL identity", live["pnl_identity"] or "not flat at the end"), ("positions at the end", live["positions_end"]),
        ("dry run: tracebacks / sent / nonce change / would-trade / exit", (dry["tracebacks"], dry["sent"],
                                                                          dry["nonce_change"], dry["would_trade"], dry["exit_code"])),
        ("starts through the faults (dry run + trials), s to keeper.started", dry["start_s"]),
        ("starts that failed (the process exited before keeper.started)", dry["failed_starts"]),
    ]
    for name, value in rows:
        print(f"  {name:<62} {value}")
    if live["chain_trades_not_booked"]:
        print("  not booked:", *live["chain_trades_not_booked"], sep="\n    ")
    print(json.dumps(result, default=str), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
