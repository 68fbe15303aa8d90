"""Code shared by the Coalesce sender, receiver and cloud: protocol, signaling, media, discovery, TLS."""

PROTOCOL_VERSION = 1
"""Version of the signaling protocol spoken by this code; carried in every hello and in mDNS TXT."""
