"""The exception tree of :mod:`coalesce_cloud`: one root, :class:`CloudServiceError`.

The cloud is one package of the project, so its root derives from the project's root
(:class:`coalesce_common.errors.CoalesceError`): one tree, in which ``except CoalesceError`` at a command's
edge (``coalesce-cloud up``) catches the cloud's errors too. Every class below carries a message that says
what happened and what to do.

    CoalesceError (coalesce_common.errors)
    └── CloudServiceError            something in the cloud failed or refused
        ├── ApiError                 (api.errors) an answer to an API client: HTTP status, stable code,
        │                            message; the error handlers turn it into the JSON error body
        ├── AdminCliError            (admin_cli) something the admin must fix; ``coalesce-cloud admin``
        │                            prints it and exits with status 1
        ├── MeetingIdsExhausted      (crud) no free meeting ID after many draws (should never happen)
        ├── XmppAdminError           (xmpp_admin) ejabberd did not do what the API asked
        │   └── XmppAccountExists    ``register`` found the account already there
        └── ServerError              (servers.errors) one of the cloud's server processes failed
            ├── ServerNotInstalledError
            ├── ServerStartError
            ├── ServerCommandError
            └── ServerStopError

The update-manifest errors the cloud raises (``UpdateError`` and its subclasses) are the devices' own,
from :mod:`coalesce_common.cloud.updates`: both sides check the same document.
"""

from __future__ import annotations

from coalesce_common.errors import CoalesceError


class CloudServiceError(CoalesceError):
    """Root of the cloud's errors (see the module docstring for the tree)."""
