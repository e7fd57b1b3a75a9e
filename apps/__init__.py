"""edgeagent.apps: the Textual terminal assistant (lands with its own issue)."""
