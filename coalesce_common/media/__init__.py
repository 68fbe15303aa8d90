"""Media: capture threads and the outgoing track, encoder and receive tuning, the ICE host-address policy,
and the peer connections built with them. Only :mod:`~coalesce_common.media.aiortc_patches` patches aiortc
and aioice."""
