"""Fixtures for the cloud end-to-end tests: see tests/cloudlab.py."""

from tests.cloudlab import admin, box, camera_file, file_keyring, local_cloud, loopback_only_ice

__all__ = ["admin", "box", "camera_file", "file_keyring", "local_cloud", "loopback_only_ice"]
