"""`keeper stress` prints its grid whole: on an 80-column console (what rich assumes for a pipe or
a file) a number is never cut to an ellipsis."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from keeper.stress_report import print_whole


def test_a_table_wider_than_the_console_keeps_every_digit() -> None:
    table = Table(title="stress")
    cells = ["index +5.0%, vAMM at upper band edge, adverse funding", "$112,898.84", "0.2959 < guard", "+23.00%",
             "-13,164.86", "+1,000.07", "-12,164.79"]
    for header in ("shock", "account value", "margin ratio", "to liquidation (index)", "perp PnL", "hedge PnL", "net PnL"):
        table.add_column(header, justify="right")
    table.add_row(*cells)
    sink = io.StringIO()
    console = Console(file=sink, width=80)
    print_whole(console, table)
    text = sink.getvalue()
    assert "…" not in text and all(cell in text for cell in cells), text
    cut = io.StringIO()
    Console(file=cut, width=80).print(table)  # what printing it plainly did
    assert "…" in cut.getvalue()
