"""The sender's one scheduler: every coroutine the desktop app runs is started here, never in a widget.

No Qt here. Widgets call the controller's plain methods (:meth:`SenderController.share_to`,
:meth:`~SenderController.stop`, :meth:`~SenderController.submit_pin`, ...); the controller starts tasks on
the event loop it was given (qasync's, in the app), runs the services and writes what happens into the
models, which the widgets observe. :meth:`SenderController.run` is the app's main coroutine: it keeps
discovery, the cloud standing and update checks going until it is cancelled, then ends any share cleanly.

The IO edge (mDNS browsing, screen grabs, cameras, shares, the keyring, enrollment) comes in through
:class:`SenderServices`, whose defaults are the real implementations, so tests can shrink or replace it.

Shares cannot change their media once started, so choosing another screen or turning the camera on or
off ends the share and starts a new one to the same receiver with the PIN already given ("restarting").
Pause detaches the capture tracks from the peer connection (see :mod:`coalesce_client.models.share_media`).

Sharing as the room's moderator (``ShareSession.moderator``) pairs with the moderator PIN, and the share
asks :meth:`SenderController._answer_join` about every sender waiting to share: the request is queued in
the session for the views, and the user's Allow or Deny (``ShareSession.answer_join``) is sent back; no
answer within ``ControllerConfig.join_answer_timeout`` is a Deny. Requests still open when a share ends
(or restarts) are withdrawn unanswered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from coalesce_client.models.app_settings import AppSettingsModel, ProxyChoice
from coalesce_client.models.cloud import CloudAccount, UpdateOffer
from coalesce_client.models.destination import Destination, DestinationError, parse_destination
from coalesce_client.models.media import Camera, MediaSources, Monitor, preview_picture
from coalesce_client.models.receivers import ReceiverList, receiver_key
from coalesce_client.models.session import (
    JoinRequest,
    LinkStatus,
    MediaChoice,
    PinRequest,
    SharePhase,
    ShareSession,
)
from coalesce_client.services import devices, updater
from coalesce_client.services.remote import KEYRING_SERVICE, NotEnrolled, RemoteOptions, RemoteShare
from coalesce_client.services.share import JoinRequestHandler, PinProvider, Share, ShareOptions, ShareStats
from coalesce_client.settings import load_proxy, save_proxy
from coalesce_common.cloud import store
from coalesce_common.cloud.device import enroll
from coalesce_common.cloud.rest import DeviceCredentials
from coalesce_common.cloud.updates import Manifest, current_platform, installed_version
from coalesce_common.discovery import ReceiverInfo, browse
from coalesce_common.errors import (
    CoalesceError,
    MediaError,
    PairingError,
    SignalingError,
    Throttled,
    WrongPin,
)
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver

logger = logging.getLogger(__name__)

PREVIEW_WIDTH = 320
DISCOVERY_RETRY_AFTER_FAILURE = 10.0
CLOSE_TIMEOUT = 5.0
MODERATOR_MEETING = (
    "Moderating works with room displays on this network: type the room display's address, or clear "
    "“Join as moderator” to share to the meeting."
)


class ShareHandle(Protocol):
    """A LAN :class:`Share` or a cloud :class:`RemoteShare`, as the controller drives either."""

    async def start(self) -> None: ...

    async def stop(self, reason: str = "stopped") -> None: ...

    async def wait_ended(self) -> str: ...


ShareFactory = Callable[
    [Destination, ShareOptions, PinProvider, ProxyConfig, JoinRequestHandler], ShareHandle
]
BrowseFunction = Callable[..., Awaitable[list[ReceiverInfo]]]
EnrollFunction = Callable[..., Awaitable[DeviceCredentials]]


def open_share(
    destination: Destination,
    options: ShareOptions,
    pin_provider: PinProvider,
    proxy: ProxyConfig,
    on_join_request: JoinRequestHandler,
) -> ShareHandle:
    """The real share: to a meeting through the cloud (with the proxy settings), or straight on the LAN.

    Only a LAN share can moderate (``on_join_request``): the controller refuses moderator meetings.
    """
    if destination.is_meeting:
        return RemoteShare(
            destination.meeting_id, options, remote=RemoteOptions(proxy=proxy), pin_provider=pin_provider
        )
    return Share(
        destination.share_target(), options, pin_provider=pin_provider, on_join_request=on_join_request
    )


def share_of(handle: ShareHandle) -> Share | None:
    """The LAN-level :class:`Share` inside a handle, once it has one."""
    if isinstance(handle, Share):
        return handle
    if isinstance(handle, RemoteShare):
        return handle.share
    return None


def link_status(stats: ShareStats) -> LinkStatus:
    """What the status line shows of a share's :meth:`Share.stats`."""
    return LinkStatus(
        route=stats.route.value if stats.route is not None else None,
        width=stats.width,
        height=stats.height,
        fps=stats.fps,
        round_trip_ms=stats.round_trip_ms,
        kbps=stats.kbps,
    )


def _load_credentials() -> DeviceCredentials | None:
    return store.load(KEYRING_SERVICE)


@dataclass(frozen=True)
class SenderServices:
    """The controller's IO edge; every default is the real thing."""

    browse: BrowseFunction = browse
    grab_monitors: Callable[[str | None], list[Monitor]] = devices.grab_monitors
    list_cameras: Callable[[], list[Camera]] = devices.list_cameras
    open_share: ShareFactory = open_share
    load_credentials: Callable[[], DeviceCredentials | None] = _load_credentials
    load_proxy: Callable[[], ProxyConfig] = load_proxy
    save_proxy: Callable[[ProxyConfig], Path] = save_proxy
    enroll: EnrollFunction = enroll


@dataclass(frozen=True)
class ControllerConfig:
    """Timings and where to look; tests shrink the timings instead of sleeping."""

    discovery: bool = True
    discovery_interfaces: list[str] | None = None
    browse_seconds: float = 3.0
    browse_pause: float = 2.0
    display: str | None = None  # X display to capture; None: $DISPLAY
    thumbnail_interval: float = 3.0
    status_interval: float = 1.0
    preview_interval: float = 0.25
    update_check_interval: float = 6 * 3600.0
    connect_timeout: float = 10.0
    join_answer_timeout: float = 100.0  # a join request nobody answers is denied after this long
    fps: float = 30.0
    platform: str = field(default_factory=current_platform)
    version: str = field(default_factory=installed_version)


@dataclass
class SenderModels:
    """Everything the sender's views observe."""

    receivers: ReceiverList
    session: ShareSession
    media: MediaSources
    settings: AppSettingsModel
    account: CloudAccount
    update: UpdateOffer
    proxy: ProxyChoice

    @classmethod
    def create(cls, settings_path: Path | None = None) -> SenderModels:
        settings = AppSettingsModel(settings_path)
        return cls(
            receivers=ReceiverList(),
            session=ShareSession(settings.settings.media),
            media=MediaSources(),
            settings=settings,
            account=CloudAccount(),
            update=UpdateOffer(),
            proxy=ProxyChoice(),
        )


class _ShareFailed(Exception):
    """Ends a share attempt with a message for the user."""


def ended_text(reason: str, receiver: str) -> str | None:
    """Why a share ended, in words, when it was not the user's doing (``None`` when it was)."""
    if reason in ("stopped", "restarting"):
        return None
    if reason == "receiver-shutdown":
        return f"{receiver} was switched off or restarted, so the share ended."
    if reason == "receiver-gone":
        return f"The connection to {receiver} was lost: the network or the room display went away."
    if reason == "media-failed":
        return f"The picture could not reach {receiver} any more: the media connection failed."
    if reason.startswith("error: "):
        return f"{receiver} ended the share: {reason.removeprefix('error: ')}"
    if reason.startswith("protocol-error: "):
        return f"{receiver} sent something unexpected, so the share ended ({reason.split(': ', 1)[1]})."
    return f"The share to {receiver} ended: {reason}."


class SenderController:
    """Runs shares, discovery, enrollment and updates for the views; see the module docstring."""

    def __init__(
        self,
        models: SenderModels,
        *,
        loop: asyncio.AbstractEventLoop,
        config: ControllerConfig | None = None,
        services: SenderServices | None = None,
    ) -> None:
        self.models = models
        self.config = config or ControllerConfig()
        self._loop = loop
        self._services = services or SenderServices()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._share_task: asyncio.Task[None] | None = None
        self._share: Share | None = None  # the live share's media, while sharing
        self._handle: ShareHandle | None = None
        self._pin_future: asyncio.Future[str | None] | None = None
        self._pin: str | None = None
        self._pin_error: str | None = None
        self._pin_cancelled = False
        self._prompted = False
        self._restart_reason: str | None = None
        self._sent_media: MediaChoice | None = None
        self._manifest: Manifest | None = None
        self._credentials: DeviceCredentials | None = None
        self._cameras_task: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """The app's main coroutine: background work until cancelled, then :meth:`aclose`."""
        if self.config.discovery:
            self._spawn(self._discover(), "discovery")
        self._cameras_loaded()
        self._spawn(self._load_proxy(), "proxy")
        self._spawn(self._cloud_standing(), "cloud")
        try:
            await asyncio.Event().wait()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """End a share in progress (telling the receiver), stop all background work. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._pin_future is not None and not self._pin_future.done():
            self._pin_future.set_result(None)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: quitting must not hang on a peer or an mDNS socket that takes its time to close.
            _, stuck = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
            for task in stuck:
                logger.warning("%s did not stop within %.0f s of quitting", task.get_name(), CLOSE_TIMEOUT)

    async def __aenter__(self) -> SenderController:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = self._loop.create_task(coro, name=f"coalesce-sender-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed", task.get_name(), exc_info=task.exception())

    # -- actions for the views ------------------------------------------------------------------

    def share_typed(self, text: str) -> None:
        """Share to what the user typed: an address or a meeting ID."""
        try:
            destination = parse_destination(text)
        except DestinationError as exc:
            self.models.session.fail_before_start(str(exc))
            return
        last = self.models.settings.settings.last_destination
        if last is not None and not destination.is_meeting and last.address == destination.address:
            destination = last  # keeps the name and the fingerprint mDNS vouched for
        self.share_to(destination)

    def share_receiver(self, info: ReceiverInfo) -> None:
        self.share_to(Destination.from_receiver(info))

    def share_to(self, destination: Destination) -> None:
        if self._closed or self.models.session.active:
            return
        if destination.is_meeting and self.models.session.moderator:
            self.models.session.fail_before_start(MODERATOR_MEETING)
            return
        self.models.session.begin(destination)
        self.models.settings.update(last_destination=destination)
        self._share_task = self._spawn(self._share_flow(destination), "share")

    def share_last(self) -> None:
        """Share to the last receiver or meeting again (the tray's Share)."""
        last = self.models.settings.settings.last_destination
        if last is not None:
            self.share_to(last)

    def stop(self) -> None:
        """Stop sharing, or give up connecting; the receiver is told."""
        session = self.models.session
        if session.phase is SharePhase.WAITING_FOR_PIN:
            self.cancel_pin()
            return
        if session.phase in (SharePhase.IDLE, SharePhase.STOPPING) or self._share_task is None:
            return
        session.stopping()
        self._share_task.cancel()

    def submit_pin(self, pin: str) -> None:
        if self._pin_future is not None and not self._pin_future.done():
            self._pin_future.set_result(pin)

    def cancel_pin(self) -> None:
        if self._pin_future is not None and not self._pin_future.done():
            self._pin_future.set_result(None)

    def set_paused(self, paused: bool) -> None:
        session = self.models.session
        share = self._share
        if share is None or session.phase is not SharePhase.SHARING:
            return
        session.set_paused(paused)
        self._spawn(share.pause() if paused else share.resume(), "pause")

    def choose_screen(self, screen: int | None) -> None:
        self._choose_media(MediaChoice(screen, self.models.session.media.camera), "another screen")

    def choose_camera(self, camera: str | None) -> None:
        reason = "the camera" if camera is not None else "no camera"
        self._choose_media(MediaChoice(self.models.session.media.screen, camera), reason)

    def add_camera_file(self, path: str) -> None:
        """Offer a video file as a camera (for demos, and where no webcam is at hand)."""
        self.models.media.add_camera(Camera(path, Path(path).name))

    def save_settings(self, *, display_name: str, proxy: ProxyConfig) -> None:
        """Keep the display name (app.json) and the proxy choice (sender.json, password to the keyring)."""
        name = display_name.strip() or self.models.settings.settings.display_name
        self.models.settings.update(display_name=name)
        self._spawn(self._save_proxy(proxy), "save-proxy")

    def enroll(self, *, url: str, code: str, ca_file: str, proxy: ProxyConfig) -> None:
        account = self.models.account
        if account.enrolling:
            return
        account.begin_enrollment()
        self._spawn(self._enroll(url.strip(), code.strip(), ca_file.strip(), proxy), "enroll")

    def check_for_update(self) -> None:
        if self._credentials is not None:
            self._spawn(self._check_update(self._credentials), "update-check")

    def install_update(self) -> None:
        if self._manifest is not None and self._credentials is not None:
            self._spawn(self._install_update(self._manifest, self._credentials), "update-install")

    # -- sharing ---------------------------------------------------------------------------------

    def _choose_media(self, media: MediaChoice, reason: str) -> None:
        session = self.models.session
        if media.screen is None and media.camera is None:
            return  # the views keep one of them on; Stop is the way to share nothing
        if media == session.media:
            return
        session.set_media(media)
        self.models.settings.update(media=media)
        if media.camera is None:
            self.models.media.set_preview(None)
        if session.phase is SharePhase.SHARING and self._handle is not None:
            self._restart(reason)

    def _restart(self, reason: str) -> None:
        handle = self._handle
        if handle is None or self._restart_reason is not None:
            return
        self._restart_reason = reason
        self.models.session.restarting(reason)
        self._spawn(handle.stop("restarting"), "restart")

    async def _share_flow(self, destination: Destination) -> None:
        session = self.models.session
        self._pin, self._pin_error = None, None
        error: str | None = None
        notice: str | None = None
        try:
            while True:
                handle = await self._connect(destination)
                if handle is None:
                    return  # the user cancelled the PIN prompt
                self._handle = handle
                try:
                    reason = await self._while_sharing(handle)
                finally:
                    self._handle, self._share = None, None
                    await handle.stop("stopped")  # idempotent; also closes a cloud share's XMPP stream
                    session.withdraw_joins()  # asked through this share: it can no longer answer them
                if reason == "restarting" and self._restart_reason is not None:
                    self._restart_reason = None
                    continue
                notice = ended_text(reason, session.receiver_name)
                return
        except _ShareFailed as exc:
            error = str(exc)
        finally:
            self._restart_reason = None
            self._sent_media = None
            self.models.media.set_preview(None)
            session.ended(error=error, notice=notice)

    async def _connect(self, destination: Destination) -> ShareHandle | None:
        """Start a share, asking for the PIN as often as it is wrong; ``None`` when the user gave up."""
        session = self.models.session
        retried_after_prompt = False
        while True:
            media = await self._media_to_send()
            options = ShareOptions(
                sender_name=self.models.settings.settings.display_name,
                moderator=session.moderator,
                screen=media.screen,
                camera=media.camera,
                fps=self.config.fps,
                display=self.config.display,
                connect_timeout=self.config.connect_timeout,
            )
            proxy = ProxyConfig(mode="none")
            if destination.is_meeting:
                proxy = await asyncio.to_thread(self._services.load_proxy)
            self._pin_cancelled = self._prompted = False
            try:
                handle = self._services.open_share(
                    destination, options, self._provide_pin, proxy, self._answer_join
                )
                await handle.start()
            except WrongPin as exc:
                self._pin, self._pin_error = None, str(exc)
                if options.moderator and self._pin_error == str(WrongPin()):
                    self._pin_error = (
                        "Wrong moderator PIN: ask whoever runs the room for it (it is not the PIN the "
                        "room display shows)."
                    )
                continue
            except (PairingError, SignalingError) as exc:
                if self._pin_cancelled:
                    return None
                # The receiver gives up on a handshake after ~15 s: someone slow to type the PIN gets one
                # transparent second attempt with the PIN they typed.
                if self._prompted and self._pin is not None and not retried_after_prompt:
                    logger.info("retrying once after the PIN prompt: %s", exc)
                    retried_after_prompt = True
                    continue
                if isinstance(exc, Throttled) and self._pin_error is not None:
                    raise _ShareFailed(f"{WrongPin()} {exc}") from exc  # say why it is throttled
                # The service words a room without a moderator PIN for its command line.
                raise _ShareFailed(
                    str(exc).replace("share without --moderator", "clear “Join as moderator” to share")
                ) from exc
            except NotEnrolled as exc:
                raise _ShareFailed(
                    "Meeting IDs work once this computer is enrolled with your organisation's Coalesce "
                    "cloud: open Settings and enroll it with the code from your IT administrator."
                ) from exc
            except CoalesceError as exc:
                raise _ShareFailed(str(exc)) from exc
            except TimeoutError as exc:
                raise _ShareFailed(
                    f"{session.receiver_name} did not answer in time. Check that it is on and try again."
                ) from exc
            except Exception as exc:
                logger.exception("the share to %s failed unexpectedly", destination.label)
                raise _ShareFailed(f"Sharing failed unexpectedly ({exc.__class__.__name__}: {exc}).") from exc
            self._pin_error = None
            share = share_of(handle)
            self._sent_media = media
            session.started(share.receiver_name if share is not None else destination.label)
            return handle

    async def _media_to_send(self) -> MediaChoice:
        """The chosen media, adjusted to what this computer has (no screen to grab: the camera)."""
        session, sources = self.models.session, self.models.media
        media = session.media
        if media.screen is not None:
            await self._refresh_monitors()
            indexes = [m.index for m in sources.monitors]
            if not indexes:
                media = MediaChoice(None, media.camera)
            elif media.screen not in indexes:
                media = MediaChoice(indexes[0], media.camera)
        if media.screen is None and media.camera is None:
            await asyncio.shield(self._cameras_loaded())
            if sources.cameras:
                media = MediaChoice(None, sources.cameras[0].spec)
            else:
                raise _ShareFailed(
                    (sources.screen_problem or "No screen can be captured here.")
                    + " No camera was found either, so there is nothing to share."
                )
        if media != session.media:
            session.set_media(media)
        return media

    async def _provide_pin(self, receiver_name: str) -> str | None:
        if self._pin is not None:
            return self._pin  # a restart: the PIN given for this share still holds
        future: asyncio.Future[str | None] = self._loop.create_future()
        self._pin_future = future
        self._prompted = True
        session = self.models.session
        session.ask_pin(PinRequest(receiver_name, self._pin_error, moderator=session.moderator))
        try:
            pin = await future
        finally:
            self._pin_future = None
            self.models.session.pin_answered()
        if pin is None:
            self._pin_cancelled = True
        self._pin = pin
        return pin

    async def _answer_join(self, sender_name: str) -> bool:
        """As the room's moderator: may ``sender_name`` share? Queued for the user; Deny if unanswered."""
        session = self.models.session
        request = JoinRequest(sender_name, self._loop.create_future())
        session.ask_join(request)
        try:
            return await asyncio.wait_for(asyncio.shield(request.answer), self.config.join_answer_timeout)
        except TimeoutError:
            logger.info("nobody answered %s's request to share in time: denied", sender_name)
            return False
        finally:
            session.withdraw_join(request)  # timed out or cancelled: the prompt goes

    async def _while_sharing(self, handle: ShareHandle) -> str:
        """Keep the status, preview and thumbnails fresh until the share ends; return why it ended."""
        session, config = self.models.session, self.config
        share = self._share = share_of(handle)
        if share is not None and session.paused:
            await share.pause()  # restarted while paused: stay paused
        ended = asyncio.ensure_future(handle.wait_ended())
        thumbnails = self._spawn(self._thumbnail_loop(), "thumbnails")
        next_status = 0.0
        try:
            if self._sent_media != session.media:
                self._restart("a change made while connecting")
            while True:
                done, _ = await asyncio.wait({ended}, timeout=config.preview_interval)
                if done:
                    return ended.result()
                if share is None:
                    continue
                if session.media.camera is not None:
                    frame = share.latest_frame("camera")
                    self.models.media.set_preview(preview_picture(frame, PREVIEW_WIDTH) if frame else None)
                if self._loop.time() >= next_status:
                    next_status = self._loop.time() + config.status_interval
                    session.set_status(link_status(await share.stats()))
        finally:
            thumbnails.cancel()
            if not ended.done():
                ended.cancel()

    async def _refresh_monitors(self) -> None:
        try:
            monitors = await asyncio.to_thread(self._services.grab_monitors, self.config.display)
        except MediaError as exc:
            self.models.media.set_monitors([], str(exc))
        else:
            self.models.media.set_monitors(monitors)

    async def _thumbnail_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.thumbnail_interval)
            await self._refresh_monitors()

    # -- discovery, devices, settings -----------------------------------------------------------

    async def _discover(self) -> None:
        receivers, config = self.models.receivers, self.config
        while True:
            known = {receiver_key(r) for r in receivers.receivers}
            started = self._loop.time()
            try:
                found = await self._services.browse(
                    config.browse_seconds,
                    interfaces=config.discovery_interfaces,
                    until=lambda info, known=known: receiver_key(info) not in known,
                )
            except (OSError, CoalesceError) as exc:
                logger.warning("mDNS browsing failed: %s", exc)
                receivers.set_problem(
                    f"Cannot look for room displays on this network ({exc}). "
                    "Type the address shown on the room display instead."
                )
                await asyncio.sleep(DISCOVERY_RETRY_AFTER_FAILURE)
                continue
            complete = self._loop.time() - started >= config.browse_seconds * 0.9
            receivers.merge(found, complete=complete)
            if complete:
                await asyncio.sleep(config.browse_pause)

    def _cameras_loaded(self) -> asyncio.Task[None]:
        """The (one) task that lists the cameras; awaited by a share that needs one."""
        if self._cameras_task is None:
            self._cameras_task = self._spawn(self._load_cameras(), "cameras")
        return self._cameras_task

    async def _load_cameras(self) -> None:
        cameras = await asyncio.to_thread(self._services.list_cameras)
        chosen = self.models.session.media.camera
        if chosen is not None and not any(c.spec == chosen for c in cameras):
            cameras.append(Camera(chosen, Path(chosen).name if not chosen.isdigit() else f"Camera {chosen}"))
        self.models.media.set_cameras(cameras)

    async def _load_proxy(self) -> None:
        try:
            config = await asyncio.to_thread(self._services.load_proxy)
        except (OSError, CoalesceError) as exc:
            self.models.proxy.set_error(f"The saved proxy settings could not be read: {exc}")
            return
        self.models.proxy.set_config(config)

    async def _save_proxy(self, proxy: ProxyConfig) -> None:
        try:
            await asyncio.to_thread(self._services.save_proxy, proxy)
        except (OSError, CoalesceError) as exc:
            message = f"The proxy settings could not be saved: {exc}"
            self.models.proxy.set_error(message)
            self.models.session.fail_before_start(message)
            return
        self.models.proxy.set_config(proxy)

    # -- cloud ---------------------------------------------------------------------------------

    async def _cloud_standing(self) -> None:
        try:
            credentials = await asyncio.to_thread(self._services.load_credentials)
        except CoalesceError as exc:
            logger.warning("cannot read the cloud credentials: %s", exc)
            return
        if credentials is None:
            return
        self._set_credentials(credentials)
        while True:
            await self._check_update(credentials)
            await asyncio.sleep(self.config.update_check_interval)

    def _set_credentials(self, credentials: DeviceCredentials) -> None:
        self._credentials = credentials
        self.models.account.set_enrolled(credentials.api_url, credentials.device_id, credentials.org)

    async def _enroll(self, url: str, code: str, ca_file: str, proxy: ProxyConfig) -> None:
        account = self.models.account
        if not url.startswith(("https://", "http://")) or not code:
            account.enrollment_done(
                error="Type the cloud's address (https://…) and the enrollment code from your IT "
                "administrator."
            )
            return
        try:
            credentials = await self._services.enroll(
                url,
                code,
                self.models.settings.settings.display_name,
                ca_file=ca_file or None,
                service=KEYRING_SERVICE,
                kind="sender",
                resolver=ProxyResolver(proxy),
            )
        except (CoalesceError, OSError) as exc:
            account.enrollment_done(error=str(exc))
            return
        self.models.settings.update(cloud_url=url, cloud_ca=ca_file)
        self._set_credentials(credentials)
        account.enrollment_done()
        await self._check_update(credentials)

    async def _check_update(self, credentials: DeviceCredentials) -> None:
        try:
            proxy = await asyncio.to_thread(self._services.load_proxy)
            manifest = await updater.newer_release(
                credentials,
                ProxyResolver(proxy),
                platform=self.config.platform,
                current=self.config.version,
            )
        except CoalesceError as exc:
            logger.warning("update check failed: %s", exc)
            return
        if manifest is not None:
            self._manifest = manifest
            self.models.update.offer(manifest.version, manifest.notes)

    async def _install_update(self, manifest: Manifest, credentials: DeviceCredentials) -> None:
        offer = self.models.update
        offer.downloading(0.0)
        try:
            proxy = await asyncio.to_thread(self._services.load_proxy)
            path = await updater.download(
                manifest,
                updater.downloads_dir(),
                resolver=ProxyResolver(proxy),
                ca_file=credentials.ca_file,
                progress=offer.downloading,
            )
            message = updater.hand_to_installer(path)
        except (CoalesceError, OSError) as exc:
            offer.failed(str(exc))
            return
        offer.ready(path, message)
