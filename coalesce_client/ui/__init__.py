"""The sender's desktop app: the only Qt code of ``coalesce_client``.

``app.run_sender_app()`` is the entry point. Widgets (``main_window``, ``connect_page``, ``sharing_page``,
``pin_dialog``, ``settings_dialog``, ``update_banner``, ``tray``) receive models and subscribe to them;
they call the controller (``controller``, a thin facade over the Qt-free :mod:`coalesce_client.app`) for
everything that takes time. ``app`` is the one module where Qt and asyncio meet.
"""
