"""The sender's observable state, with no Qt: what the views show and the controller changes.

* :mod:`.observable`   the subscribe/notify base every model uses
* :mod:`.destination`  where to share (a LAN receiver or a cloud meeting) and parsing what the user types
* :mod:`.receivers`    the live list of receivers found on the LAN
* :mod:`.session`      the share in progress: phase, PIN request, media choice, pause, link status, errors
* :mod:`.media`        the screens (with thumbnails) and cameras that can be shared, and the camera preview
* :mod:`.app_settings` the app's own settings file (``app.json``: display name, last receiver, cloud)
* :mod:`.proxy_form`   the proxy choice as a form edits it, to and from :class:`ProxyConfig`
* :mod:`.cloud`        enrollment standing and the update offer

Listeners run synchronously on the thread that changes a model, which is always the event loop's.
"""
