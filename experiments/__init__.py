"""One module per phenomenon of the notes; see repro/runner.py for the contract."""
