"""The Coalesce sender: finds receivers, pairs with a PIN and pushes screen and webcam streams.

``services`` holds the asyncio side (share session, discovery), ``models`` observable state with no Qt,
``app`` the app's flows over both (no Qt), ``ui`` the only Qt code, ``cli`` the ``coalesce`` command.
Its version is the distribution's (:func:`coalesce_common.cloud.updates.installed_version`).
"""
