"""`edgeagent eval`: BFCL's AST check (checker.py) over the agent's replies (runner.py), on BFCL's
data or the user's own BFCL-format cases, with comparisons and plots (plot.py)."""
