"""Fixtures for the browser sender's tests: a local cloud and a box linked to it (tests/cloudlab.py)."""

from tests.cloudlab import admin, box, camera_file, file_keyring, local_cloud, loopback_only_ice

__all__ = ["admin", "box", "camera_file", "file_keyring", "local_cloud", "loopback_only_ice"]
