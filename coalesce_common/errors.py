"""The one exception tree of Coalesce.

Every error a user can see derives from :class:`CoalesceError` and carries a message that says what
happened and what to do. Lower-level errors (``OSError``, ``ssl.SSLError``, websockets' errors) are
mapped to these at each boundary with ``raise ... from exc`` (the words for OS and TLS errors come from
:mod:`coalesce_common.net.why`). The classes defined here are the common ones; the others live beside the
code that raises them, and every one is listed below (``tests/test_error_tree.py`` keeps this list true).

    CoalesceError
    ├── ProtocolError            a peer sent something we cannot accept (malformed, oversized, out of order)
    │   ├── ControlRefused           a session-control message was refused; the share goes on
    │   └── MessageTooLarge
    ├── SignalingError           the signaling channel could not be opened or broke
    │   ├── ChannelClosed            (signaling.base) the peer closed the channel
    │   └── XmppAuthError            (signaling.xmpp) the cloud refused this device's XMPP login
    ├── PairingError             pairing with the receiver failed
    │   ├── WrongPin                 the PIN (or the moderator PIN) did not match; maybe ``retry_after``
    │   ├── Throttled                too many wrong PINs; retry after ``retry_after`` seconds
    │   ├── IdentityMismatch         a certificate or DTLS fingerprint differs: someone may be in between
    │   └── ShareRefused             the receiver refused for another reason
    │       ├── RoomFull                 it already shows as many shares as it can
    │       ├── RoomLocked               it takes no new shares now
    │       ├── ModeratorDeclined        the room's moderator said no
    │       └── NoModerator              asked to moderate a room without a moderator PIN
    ├── MediaError               capture, encoding or the media connection failed
    │   ├── SoundUnavailable         this computer's sound cannot be captured; shares go on without it
    │   └── UnsupportedLibraryVersion  (media.aiortc_patches) an aiortc/aioice our patches do not know
    ├── DiscoveryError           mDNS could not find what was asked for
    ├── ProxySettingsError       (net.proxy) the proxy settings or PAC file cannot be used
    ├── ProxyConnectError        (net.connector) no proxy (or direct route) reached the destination
    ├── CloudError               (cloud.rest) the cloud's REST API refused or could not be reached
    ├── KeyringUnavailable       (keyring_store) no OS keyring works, so a secret cannot be kept
    ├── CredentialStoreError     (cloud.store) stored cloud credentials are damaged, or cannot be sealed
    ├── UpdateError              (cloud.updates) an update manifest cannot be trusted
    │   ├── ManifestInvalid
    │   └── SignatureInvalid
    ├── DestinationError         (coalesce_client.models.destination) typed text is no address or meeting ID
    ├── NotEnrolled              (coalesce_client.services.remote) meeting IDs need an enrolled device
    ├── ReceiverStartError       (coalesce_receiver.services.receiver) no port to listen on, unusable folder
    └── CloudServiceError        (coalesce_cloud.errors) the cloud's own root
        ├── ApiError                 (api.errors) a REST error answer with a stable code
        ├── AdminCliError            (admin_cli) the admin command line failed
        ├── MeetingIdsExhausted      (crud) no free meeting ID could be drawn
        ├── XmppAdminError           (xmpp_admin) ejabberd's admin API failed
        │   └── XmppAccountExists
        └── ServerError              (servers.errors) a managed server (ejabberd, coturn, PostgreSQL)
            ├── ServerNotInstalledError
            ├── ServerStartError
            ├── ServerCommandError
            └── ServerStopError

Why a share *ended* is not an exception but :class:`coalesce_common.protocol.EndReason`.
"""

from __future__ import annotations


class CoalesceError(Exception):
    """Root of every Coalesce error."""


class ProtocolError(CoalesceError):
    """A signaling message was malformed, unknown, oversized or not legal in the current state.

    ``code`` is the stable machine-readable code sent to the peer in an ``error`` message.
    """

    def __init__(self, message: str, code: str = "bad-message") -> None:
        super().__init__(message)
        self.code = code
        self.message_type: str | None = None
        """The ``type`` the bad message named, when it named a known one."""


class ControlRefused(ProtocolError):
    """A session-control message (``constraints``) that cannot be accepted now: answered with ``refused``,
    and the share goes on (``message_type`` says which)."""


class MessageTooLarge(ProtocolError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the limit of {limit} bytes", code="too-large")
        self.size = size
        self.limit = limit


class SignalingError(CoalesceError):
    """The signaling channel to the peer could not be opened, or it closed unexpectedly."""


class PairingError(CoalesceError):
    """Pairing with the receiver failed."""


class WrongPin(PairingError):
    """The PIN did not match; ``retry_after`` is set when the receiver now makes us wait."""

    def __init__(self, *, retry_after: float | None = None, moderator: bool = False) -> None:
        if moderator:
            message = (
                "Wrong moderator PIN: ask whoever runs the room for it "
                "(it is not the PIN the room display shows)."
            )
        else:
            message = "Wrong PIN: check the PIN shown on the room display."
        if retry_after:
            message += f" Too many attempts: retry in {max(1, round(retry_after))} s."
        super().__init__(message)
        self.retry_after = retry_after
        self.moderator = moderator


class Throttled(PairingError):
    def __init__(self, retry_after: float) -> None:
        seconds = max(1, round(retry_after))
        super().__init__(f"Too many attempts: retry in {seconds} s.")
        self.retry_after = retry_after


class IdentityMismatch(PairingError):
    """A fingerprint did not match what pairing or discovery vouched for."""


class ShareRefused(PairingError):
    """The receiver refused the share for a reason other than the PIN."""


class RoomFull(ShareRefused):
    def __init__(self, room: str, *, replaceable: bool = False) -> None:
        if replaceable:
            super().__init__(
                f"{room} is already showing the most shares it can. Replace the oldest share with yours, "
                "or ask someone to stop first."
            )
        else:
            super().__init__(f"{room} is already showing the most shares it can; ask someone to stop first.")
        self.room = room
        self.replaceable = replaceable
        """The room lets this share take the oldest share's place (share again with ``replace_oldest``)."""


class RoomLocked(ShareRefused):
    def __init__(self, room: str) -> None:
        super().__init__(
            f"{room} is locked: no new shares can start until someone unlocks it in the room display's "
            "settings. The shares on its screen go on."
        )
        self.room = room


class ModeratorDeclined(ShareRefused):
    def __init__(self, room: str) -> None:
        super().__init__(f"The moderator of {room} declined your share.")
        self.room = room


class NoModerator(ShareRefused):
    """Asked to moderate a room that has no moderator PIN; the caller adds how to share without it."""

    def __init__(self, room: str) -> None:
        super().__init__(f"{room} has no moderator PIN set.")
        self.room = room


class MediaError(CoalesceError):
    """Capture, encoding or the media connection failed."""


class SoundUnavailable(MediaError):
    """This computer's sound cannot be captured (no sound server, no such output): the message says why;
    a share goes on without sound."""


class DiscoveryError(CoalesceError):
    """mDNS discovery could not find what was asked for."""
