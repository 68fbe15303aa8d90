"""The share flow: one share at a time, from the Share button to the end, written into ``ShareSession``.

Connecting asks for the PIN as often as it is wrong (:meth:`ShareFlow._connect`), and once more,
transparently, when the receiver gave up on a handshake while the user typed. Choosing another screen or
turning the camera on or off changes the live share (:meth:`Share.set_sources`): the room keeps the same
tile, nobody is asked for the PIN again. While a share runs, its status line, camera preview and screen
thumbnails are kept fresh; pause stops sending pictures (:meth:`Share.pause`) and the room shows it paused.

Sharing as the room's moderator (``ShareSession.moderator``) pairs with the moderator PIN, and the share
asks :meth:`ShareFlow._answer_join` about every sender waiting to share: the request is queued in the
session for the views, and the user's Allow or Deny (``ShareSession.answer_join``) is sent back; no answer
within ``SenderConfig.join_answer_timeout`` is a Deny. Requests still open when a share ends are withdrawn
unanswered.

What failures say to the user is worked out in one place, at the end of this module: the exception
handlers of :meth:`ShareFlow._connect` (why a share ended is :meth:`EndReason.describe`).
"""

from __future__ import annotations

import asyncio
import logging

from coalesce_client.app.config import SenderConfig, SenderServices
from coalesce_client.app.media_devices import MediaDevices
from coalesce_client.app.scheduler import Scheduler
from coalesce_client.app.share_handle import ShareHandle, lan_share_of
from coalesce_client.models.app_settings import AppSettingsModel
from coalesce_client.models.destination import Destination, DestinationError, parse_destination
from coalesce_client.models.media import MediaSources, preview_picture
from coalesce_client.models.session import (
    JoinRequest,
    LinkStatus,
    MediaChoice,
    PinRequest,
    SharePhase,
    ShareSession,
)
from coalesce_client.services.link_stats import ShareStats
from coalesce_client.services.remote import NotEnrolled
from coalesce_client.services.share import Share, ShareOptions, ShareState
from coalesce_common.discovery import ReceiverInfo
from coalesce_common.errors import (
    CoalesceError,
    MediaError,
    NoModerator,
    PairingError,
    ProtocolError,
    RoomFull,
    ShareRefused,
    SignalingError,
    Throttled,
    WrongPin,
)
from coalesce_common.net.proxy import ProxyConfig
from coalesce_common.protocol import EndReason, RoomCommand

logger = logging.getLogger(__name__)

PREVIEW_WIDTH = 320


class ShareFlow:
    """Runs the user's share; every method returns at once, the work goes on in the scheduler's tasks."""

    def __init__(
        self,
        session: ShareSession,
        settings: AppSettingsModel,
        media: MediaSources,
        devices: MediaDevices,
        scheduler: Scheduler,
        config: SenderConfig,
        services: SenderServices,
    ) -> None:
        self._session = session
        self._settings = settings
        self._media = media
        self._devices = devices
        self._scheduler = scheduler
        self._config = config
        self._services = services
        self._share_task: asyncio.Task[None] | None = None
        self._replace_oldest = False  # the next share may take a full room's oldest share's place
        self._share: Share | None = None  # the live share's media, while sharing
        self._handle: ShareHandle | None = None
        self._pin_future: asyncio.Future[str | None] | None = None
        self._pin: str | None = None
        self._pin_error: str | None = None
        self._pin_cancelled = False
        self._prompted = False

    # -- actions ---------------------------------------------------------------------------------

    def share_typed(self, text: str) -> None:
        """Share to what the user typed: an address or a meeting ID."""
        try:
            destination = parse_destination(text)
        except DestinationError as exc:
            self._session.fail_before_start(str(exc))
            return
        last = self._settings.settings.last_destination
        if last is not None and not destination.is_meeting and last.address == destination.address:
            destination = last  # keeps the name and the fingerprint mDNS vouched for
        self.share_to(destination)

    def share_receiver(self, info: ReceiverInfo) -> None:
        self.share_to(Destination.from_receiver(info))

    def share_to(self, destination: Destination) -> None:
        if self._scheduler.closed or self._session.active:
            return
        if destination.is_meeting and self._session.moderator:
            self._session.fail_before_start(MODERATOR_MEETING)
            return
        self._session.begin(destination)
        self._settings.update(last_destination=destination)
        self._share_task = self._scheduler.spawn(self._share_flow(destination), "share")

    def share_replacing(self) -> None:
        """Share again to the room that was full, taking the place of its oldest share."""
        destination = self._session.destination
        if destination is not None and self._session.can_replace and not self._session.active:
            self._replace_oldest = True
            self.share_to(destination)

    def share_last(self) -> None:
        """Share to the last receiver or meeting again (the tray's Share)."""
        last = self._settings.settings.last_destination
        if last is not None:
            self.share_to(last)

    def stop(self) -> None:
        """Stop sharing, or give up connecting; the receiver is told."""
        session = self._session
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
        session, share = self._session, self._share
        if share is None or session.phase is not SharePhase.SHARING:
            return
        session.set_paused(paused)
        self._scheduler.spawn(share.pause() if paused else share.resume(), "pause")

    def choose_sound(self, sound: bool) -> None:
        """Share this computer's sound, or stop; during a share it changes the live share."""
        session, share = self._session, self._share
        if sound == session.sound:
            return
        session.set_sound(sound)
        if session.phase is SharePhase.SHARING and share is not None:
            self._scheduler.spawn(self._send_sound(share, sound), "sound")

    def set_sound_volume(self, volume: float) -> None:
        """How loud the shared sound goes to the room (the room has its own volume too)."""
        self._session.set_sound_volume(volume)
        if self._share is not None:
            self._share.set_sound_volume(self._session.sound_volume)

    async def _send_sound(self, share: Share, sound: bool) -> None:
        try:
            await share.set_sound(sound)
        except MediaError as exc:  # SoundUnavailable says why; or the share ended meanwhile
            self._session.set_sound(False, str(exc))

    def control_room(self, command: RoomCommand, tile: int = 0, other: int = 0) -> None:
        """As the room's moderator: spotlight, swap or stop a numbered tile, or go back to the grid."""
        session, share = self._session, self._share
        if share is None or session.phase is not SharePhase.SHARING or not session.moderator:
            return
        self._scheduler.spawn(self._control_room(share, command, tile, other), "room-control")

    async def _control_room(self, share: Share, command: RoomCommand, tile: int, other: int) -> None:
        try:
            await share.control_room(command, tile, other)
        except ProtocolError:
            self._session.set_room_problem("The share has ended, so the room cannot be changed from here.")

    def choose_screen(self, screen: int | None) -> None:
        self._choose_media(MediaChoice(screen, self._session.media.camera))

    def choose_camera(self, camera: str | None) -> None:
        self._choose_media(MediaChoice(self._session.media.screen, camera))

    # -- the flow ----------------------------------------------------------------------------------

    def _choose_media(self, media: MediaChoice) -> None:
        session = self._session
        if media.screen is None and media.camera is None:
            return  # the views keep one of them on; Stop is the way to share nothing
        if media == session.media:
            return
        session.set_media(media)
        self._settings.update(media=media)
        if media.camera is None:
            self._media.set_preview(None)
        if session.phase is SharePhase.SHARING and self._share is not None:
            self._scheduler.spawn(self._send_media(self._share), "media")

    async def _send_media(self, share: Share) -> None:
        """Make the live share send what the session says (a no-op when it already does)."""
        media = self._session.media
        try:
            await share.set_sources(screen=media.screen, camera=media.camera)
        except MediaError as exc:
            self._session.set_media_problem(f"{exc} The room display keeps showing what it showed.")
            camera = share.options.camera
            self._session.set_media(
                MediaChoice(share.options.screen, str(camera) if camera is not None else None)
            )
        else:
            self._session.set_media_problem(None)

    async def _share_flow(self, destination: Destination) -> None:
        session = self._session
        self._pin, self._pin_error = None, None
        error: str | None = None
        notice: str | None = None
        can_replace = False
        try:
            handle = await self._connect(destination)
            if handle is None:
                return  # the user cancelled the PIN prompt
            self._handle = handle
            try:
                reason = await self._while_sharing(handle)
            finally:
                self._handle, self._share = None, None
                await handle.stop()  # idempotent; also closes a cloud share's XMPP stream
                session.withdraw_joins()  # asked through this share: it can no longer answer them
            notice = reason.describe(session.receiver_name)
        except _ShareFailed as exc:
            error, can_replace = str(exc), exc.can_replace
        finally:
            self._replace_oldest = False
            self._media.set_preview(None)
            session.ended(error=error, notice=notice, can_replace=can_replace)

    async def _media_to_send(self) -> MediaChoice:
        """The chosen media, adjusted to what this computer has (no screen to grab: the camera)."""
        session, sources = self._session, self._media
        media = session.media
        if media.screen is not None:
            await self._devices.refresh_monitors()
            indexes = [m.index for m in sources.monitors]
            if not indexes:
                media = MediaChoice(None, media.camera)
            elif media.screen not in indexes:
                media = MediaChoice(indexes[0], media.camera)
        if media.screen is None and media.camera is None:
            await asyncio.shield(self._devices.cameras_loaded())
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
            return self._pin  # the retry after a slow PIN prompt: the PIN given still holds
        future: asyncio.Future[str | None] = self._scheduler.loop.create_future()
        self._pin_future = future
        self._prompted = True
        session = self._session
        session.ask_pin(PinRequest(receiver_name, self._pin_error, moderator=session.moderator))
        try:
            pin = await future
        finally:
            self._pin_future = None
            self._session.pin_answered()
        if pin is None:
            self._pin_cancelled = True
        self._pin = pin
        return pin

    async def _answer_join(self, sender_name: str) -> bool:
        """As the room's moderator: may ``sender_name`` share? Queued for the user; Deny if unanswered."""
        session = self._session
        request = JoinRequest(sender_name, self._scheduler.loop.create_future())
        session.ask_join(request)
        try:
            return await asyncio.wait_for(asyncio.shield(request.answer), self._config.join_answer_timeout)
        except TimeoutError:
            logger.info("nobody answered %s's request to share in time: denied", sender_name)
            return False
        finally:
            session.withdraw_join(request)  # timed out or cancelled: the prompt goes

    async def _while_sharing(self, handle: ShareHandle) -> EndReason:
        """Keep the status, preview and thumbnails fresh until the share ends; return why it ended."""
        session, config, loop = self._session, self._config, self._scheduler.loop
        share = self._share = lan_share_of(handle)
        ended = asyncio.ensure_future(handle.wait_ended())
        thumbnails = self._scheduler.spawn(self._devices.refresh_thumbnails(), "thumbnails")
        next_status = 0.0
        try:
            if share is not None:
                await self._send_media(share)  # a change made while connecting
                if session.moderator:
                    share.watch_room(session.set_room, session.set_room_problem)
            while True:
                done, _ = await asyncio.wait({ended}, timeout=config.preview_interval)
                if done:
                    return ended.result()
                if share is None:
                    continue
                if session.media.camera is not None:
                    frame = share.latest_frame("camera")
                    self._media.set_preview(preview_picture(frame, PREVIEW_WIDTH) if frame else None)
                if loop.time() >= next_status:
                    next_status = loop.time() + config.status_interval
                    reconnecting = share.state is ShareState.RECONNECTING
                    session.set_status(
                        LinkStatus(reconnecting=True) if reconnecting else link_status(await share.stats())
                    )
        finally:
            thumbnails.cancel()
            if not ended.done():
                ended.cancel()

    # -- what failures say -------------------------------------------------------------------------

    async def _connect(self, destination: Destination) -> ShareHandle | None:
        """Start a share, asking for the PIN as often as it is wrong; ``None`` when the user gave up."""
        session = self._session
        retried_after_prompt = False
        while True:
            media = await self._media_to_send()
            options = ShareOptions(
                sender_name=self._settings.settings.display_name,
                moderator=session.moderator,
                screen=media.screen,
                camera=media.camera,
                fps=self._config.fps,
                display=self._config.display,
                connect_timeout=self._config.connect_timeout,
                replace_oldest=self._replace_oldest,
                sound=session.sound,
            )
            proxy = ProxyConfig(mode="none")
            if destination.is_meeting:
                proxy = await asyncio.to_thread(self._services.load_proxy)
            self._pin_cancelled = self._prompted = False
            try:
                handle = self._services.open_share(
                    destination, options, self._provide_pin, proxy, self._answer_join, session.waiting_to_join
                )
                await handle.start()
            except WrongPin as exc:
                self._pin, self._pin_error = None, str(exc)
                continue
            except NoModerator as exc:
                raise _ShareFailed(f"{exc} Clear “Join as moderator” to share.") from exc
            except RoomFull as exc:
                raise _ShareFailed(str(exc), can_replace=exc.replaceable) from exc
            except ShareRefused as exc:
                # The room said no (its moderator declined, it is full): final. Asking again would put the
                # same request in front of the moderator a moment after they answered it.
                raise _ShareFailed(str(exc)) from exc
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
                    raise _ShareFailed(f"{WrongPin(moderator=options.moderator)} {exc}") from exc  # why
                raise _ShareFailed(str(exc)) from exc
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
                raise _ShareFailed(
                    "Sharing failed because of a problem in this app. Try again; if it happens again, "
                    "report it with the app's log."
                ) from exc
            self._pin_error = None
            share = lan_share_of(handle)
            if share is not None and session.sound:
                session.set_sound(share.sound, share.sound_problem)
            if share is not None:
                share.set_sound_volume(session.sound_volume)
            session.started(share.receiver_name if share is not None else destination.label)
            return handle


def link_status(stats: ShareStats) -> LinkStatus:
    """What the status line shows of a share's :meth:`Share.stats`."""
    return LinkStatus(
        route=stats.route.value if stats.route is not None else None,
        relay=stats.relay,
        width=stats.width,
        height=stats.height,
        fps=stats.fps,
        round_trip_ms=stats.round_trip_ms,
        kbps=stats.kbps,
    )


MODERATOR_MEETING = (
    "Moderating works with room displays on this network: type the room display's address, or clear "
    "“Join as moderator” to share to the meeting."
)


class _ShareFailed(Exception):
    """Ends a share attempt with a message for the user (and whether it may take a full room's oldest
    share's place)."""

    def __init__(self, message: str, *, can_replace: bool = False) -> None:
        super().__init__(message)
        self.can_replace = can_replace
