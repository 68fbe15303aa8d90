"""Coalesce cloud: REST API, XMPP signaling on ejabberd, STUN/TURN on coturn, admin and updates."""
