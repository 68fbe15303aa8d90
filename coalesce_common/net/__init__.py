"""Network plumbing shared by every outgoing connection: TURN transport adapter (proxies come here too)."""
