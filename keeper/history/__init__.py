"""History: record the keeper's own snapshots block by block (record.py, store.py), rebuild them
without a node (replay.py), run the keeper's decision pipeline over them (backtest.py), calibrate
its parameters walk-forward (sweep.py), and replay the origin's transactions on a fork
(forkreplay.py)."""
