"""How Coalesce reaches the cloud through whatever proxy is in the way: one proxy layer for every connection.

- :mod:`~coalesce_common.net.proxy`: the resolver, answering "how do I reach host:port?" with ordered hops
  (DIRECT, HTTP CONNECT, SOCKS5) from explicit settings, a PAC file or the system settings;
- :mod:`~coalesce_common.net.connector`: :func:`open_socket`, which tries those hops and hands back a
  connected socket; the XMPP client (:mod:`coalesce_common.signaling.xmpp`) uses it directly;
- :mod:`~coalesce_common.net.http`: the httpcore network backend that makes the REST client use it;
- :mod:`~coalesce_common.net.turn`: a peer connection's TURN route (the proxy and the CAs its TURN over
  TCP/TLS uses);
- :mod:`~coalesce_common.net.why`: low-level network errors in plain words, for every boundary that shows
  one to a person.
"""
