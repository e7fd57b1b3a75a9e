"""edgeagent.apps: the Textual terminal assistant (`edgeagent chat`, edgeagent.apps.chat)."""
