"""The exception tree of :mod:`coalesce_cloud.servers`.

CloudServiceError (coalesce_cloud.errors)
└── ServerError               something went wrong with one of the cloud's server processes
    ├── ServerNotInstalledError   a binary or system user is missing (the test fixtures skip)
    ├── ServerStartError          the process exited early or was not ready in time (message ends
    │                             with the tail of its log)
    ├── ServerCommandError        a control command (ejabberdctl, the ejabberd HTTP API, SQL set-up)
    │                             failed on a running server
    └── ServerStopError           a process survived SIGKILL
"""

from __future__ import annotations

from coalesce_cloud.errors import CloudServiceError


class ServerError(CloudServiceError):
    """Something went wrong with one of the cloud's server processes."""


class ServerNotInstalledError(ServerError):
    """A server's binary (or the system user it must run as) is not on this machine."""


class ServerStartError(ServerError):
    """A server process exited early or did not become ready in time."""


class ServerCommandError(ServerError):
    """A control command sent to a running server failed."""


class ServerStopError(ServerError):
    """A server process could not be stopped."""
