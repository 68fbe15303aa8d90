"""Account administration on the XMPP server: the ``XmppAdmin`` protocol and its ejabberd implementation.

The API needs six things from the XMPP server: create, delete and re-password accounts, drop live
sessions, ban, and send a message from a service JID. ``EjabberdHttpAdmin`` does them over ejabberd's
``mod_http_api`` (``POST {api_url}/{command}`` with a JSON object of arguments; the commands come from
ejabberd's core and ``mod_admin_extra``), authenticated as the cloud's own ejabberd account with HTTP Basic
(``xmpp.api_user`` and ``xmpp.api_password``). ejabberd must allow these commands to that account in
``api_permissions``: register, unregister, change_password, kick_user, ban_account, send_message
(coalesce_cloud/servers/ejabberd/config.py writes such a configuration).

Every failure (ejabberd unreachable, refusing, or answering an error) is raised as
:class:`XmppAdminError`; an account that already exists as its subclass :class:`XmppAccountExists`.
Passwords are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, Protocol, Self

import httpx

from coalesce_cloud.errors import CloudServiceError
from coalesce_common.net.why import describe_os_error

logger = logging.getLogger(__name__)

MessageType = Literal["chat", "normal", "headline"]

_EJABBERD_ALREADY_REGISTERED = 10090
_DEFAULT_PORTS = {"https": 443, "http": 80}


class XmppAdminError(CloudServiceError):
    """The XMPP server did not do what was asked; ``command`` names what, ``status`` the HTTP status."""

    def __init__(self, message: str, *, command: str, status: int | None = None) -> None:
        super().__init__(message)
        self.command = command
        self.status = status


class XmppAccountExists(XmppAdminError):
    """``register`` found the account already there."""


class XmppAdmin(Protocol):
    """What the cloud asks of its XMPP server. ``user`` is always a localpart of the service domain."""

    async def register(self, user: str, password: str) -> None: ...

    async def unregister(self, user: str) -> None: ...

    async def change_password(self, user: str, password: str) -> None: ...

    async def kick(self, user: str) -> int:
        """Drop every live session of ``user``; return how many there were."""
        ...

    async def ban(self, user: str, reason: str) -> None: ...

    async def send_message(
        self,
        from_jid: str,
        to_jid: str,
        body: str,
        *,
        message_type: MessageType = "normal",
        subject: str = "",
    ) -> None: ...

    async def aclose(self) -> None: ...


async def ensure_account(admin: XmppAdmin, user: str, password: str) -> None:
    """Register ``user`` with ``password``, or set that password if the account exists already."""
    try:
        await admin.register(user, password)
    except XmppAccountExists:
        await admin.change_password(user, password)


class EjabberdHttpAdmin:
    """``XmppAdmin`` over ejabberd's ``mod_http_api``; one pooled HTTP client, closed by :meth:`aclose`."""

    def __init__(
        self,
        api_url: str | Sequence[str],
        domain: str,
        *,
        user: str,
        password: str | None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``user``: the admin account's localpart in ``domain``; ``password`` None sends no credentials
        (every call is then refused, with a message that says which setting is missing).

        ``api_url`` may list every node of an ejabberd cluster: a call that cannot connect to one (the request
        never left) goes to the next, and later calls start from the node that answered."""
        urls = [api_url] if isinstance(api_url, str) else list(api_url)
        if not urls:
            raise ValueError("no ejabberd admin API URL")
        self._api_urls = [url.rstrip("/") for url in urls]
        self._api_url = self._api_urls[0]
        self._domain = domain
        self._account = f"{user}@{domain}"
        auth = httpx.BasicAuth(self._account, password) if password is not None else None
        self._has_password = password is not None
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport, auth=auth)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def register(self, user: str, password: str) -> None:
        await self._call("register", user=user, host=self._domain, password=password)

    async def unregister(self, user: str) -> None:
        await self._call("unregister", user=user, host=self._domain)

    async def change_password(self, user: str, password: str) -> None:
        await self._call("change_password", user=user, host=self._domain, newpass=password)

    async def kick(self, user: str) -> int:
        result = await self._call("kick_user", user=user, host=self._domain)
        # ejabberd 23+ answers {"num_resources": n}; older releases a bare integer.
        if isinstance(result, dict):
            result = result.get("num_resources", 0)
        return result if isinstance(result, int) else 0

    async def ban(self, user: str, reason: str) -> None:
        await self._call("ban_account", user=user, host=self._domain, reason=reason)

    async def send_message(
        self,
        from_jid: str,
        to_jid: str,
        body: str,
        *,
        message_type: MessageType = "normal",
        subject: str = "",
    ) -> None:
        await self._call(
            "send_message", type=message_type, to=to_jid, subject=subject, body=body, **{"from": from_jid}
        )

    async def _call(self, command: str, **args: str) -> Any:
        response = await self._post_to_a_node(command, args)
        return self._result(command, args, response)

    async def _post_to_a_node(self, command: str, args: dict[str, str]) -> httpx.Response:
        """POST to the node that answered last, or to the next when it cannot be connected to (the request
        never left then, so no command runs twice)."""
        start = self._api_urls.index(self._api_url)
        order = self._api_urls[start:] + self._api_urls[:start]
        for index, base in enumerate(order):
            url = f"{base}/{command}"
            try:
                response = await self._client.post(url, json=args)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if index == len(order) - 1:
                    raise self._unreachable(command, url, exc) from exc
                logger.warning("ejabberd's API at %s cannot be reached (%s); trying the next node", base, exc)
                continue
            except httpx.HTTPError as exc:
                raise self._unreachable(command, url, exc) from exc
            if base != self._api_url:
                logger.info("ejabberd's API: now using %s", base)
                self._api_url = base
            return response
        raise AssertionError("the last node's failure is raised above")

    def _unreachable(self, command: str, url: str, exc: httpx.HTTPError) -> XmppAdminError:
        target = httpx.URL(url)
        why = describe_os_error(
            exc, target.host, target.port or _DEFAULT_PORTS.get(target.scheme), peer="ejabberd"
        )
        where = " nor ".join(self._api_urls) if len(self._api_urls) > 1 else self._api_urls[0]
        return XmppAdminError(
            f"could not reach ejabberd's API at {where} for {command}: {why} "
            "(and that xmpp.api_url is right)",
            command=command,
        )

    def _result(self, command: str, args: dict[str, str], response: httpx.Response) -> Any:
        try:
            result: Any = response.json()
        except ValueError:
            result = response.text
        if response.is_success:
            logger.debug("ejabberd %s for %s: ok", command, args.get("user") or args.get("to"))
            return result
        message = result.get("message") if isinstance(result, dict) else result
        code = result.get("code") if isinstance(result, dict) else None
        error_type = XmppAdminError
        if command == "register" and code == _EJABBERD_ALREADY_REGISTERED:
            error_type = XmppAccountExists
        hint = ""
        if not self._has_password and response.status_code in (401, 403):
            hint = "; set xmpp.api_password (COALESCE_CLOUD_XMPP__API_PASSWORD) to the API account's password"
        elif response.status_code == 401:
            hint = f"; check that {self._account} exists in ejabberd with the password xmpp.api_password"
        elif response.status_code == 403:
            hint = f"; allow {command} to {self._account} from this address in ejabberd's api_permissions"
        raise error_type(
            f"ejabberd refused {command} (HTTP {response.status_code}): {str(message)[:200]}{hint}",
            command=command,
            status=response.status_code,
        )
