"""The sender's desktop app: the only Qt code of ``coalesce_client``.

``app.run_sender_app()`` is the entry point. Widgets (``main_window``, ``connect_page``, ``sharing_page``,
``pin_dialog``, ``settings_dialog``, ``update_banner``, ``tray``) receive models and subscribe to them;
they call the controller (``controller``, no Qt) for everything that takes time. ``app`` is the one module
where Qt and asyncio meet. ``devices`` and ``updater`` are Qt-free helpers the controller runs.
"""
