"""The sandbox's world and the Python face of its control API.

One re-entrant lock guards everything: uvicorn serves requests on its event-loop thread while
tests create, revoke and expire tokens from theirs. Public methods return plain JSON-ready dicts,
the same shapes the ``/_sandbox/`` control API returns.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any, TypeVar

from permatoken._secret import fingerprint
from permatoken.sandbox.clock import SandboxClock
from permatoken.sandbox.config import SandboxConfig
from permatoken.sandbox.faults import FaultRegistry
from permatoken.sandbox.models import (
    KNOWN_SCOPES,
    SYSTEM_KINDS,
    TOKEN_KINDS,
    USER_KINDS,
    WHATSAPP_SCOPES,
    App,
    AuthCode,
    Business,
    PhoneNumber,
    SystemUser,
    Token,
    Waba,
    new_id,
    new_token_value,
)
from permatoken.sandbox.providers import ProviderStore
from permatoken.sandbox.usage import UsageMeter
from permatoken.sandbox.verification import check_settings, verify_endpoint
from permatoken.sandbox.webhooks import WebhookOutbox

_T = TypeVar("_T")


class SandboxState:
    def __init__(
        self, config: SandboxConfig | None = None, clock: SandboxClock | None = None
    ) -> None:
        self.config = config or SandboxConfig()
        self.clock = clock or SandboxClock()
        self.lock = threading.RLock()
        self.graph_url = "http://sandbox.invalid"
        #: Webhook and deauthorize deliveries; its own lock and thread (see ``webhooks.py``).
        self.webhooks = WebhookOutbox(lambda: self.config, self.clock)
        self._clear()

    def _clear(self) -> None:
        self.apps: dict[str, App] = {}
        self.businesses: dict[str, Business] = {}
        self.system_users: dict[str, SystemUser] = {}
        self.wabas: dict[str, Waba] = {}
        self.phone_numbers: dict[str, PhoneNumber] = {}
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, AuthCode] = {}
        self.faults = FaultRegistry(self.config.random_seed)
        self.usage = UsageMeter()
        self.providers = ProviderStore()
        self.seeded_tokens: dict[str, str] = {}  # kind -> value, for the fixtures
        self.provider_fixtures: dict[str, Any] = {}
        self._calls: list[dict[str, Any]] = []
        self._messages: list[dict[str, Any]] = []
        self._media: list[dict[str, Any]] = []
        #: (business id, app id) -> when the business installed the app (Embedded Signup).
        self.installations: dict[tuple[str, str], float] = {}
        #: WABA id -> app ids subscribed with ``POST /{waba-id}/subscribed_apps``.
        self.subscriptions: dict[str, list[str]] = {}
        self.webhooks.reset()

    # -- the world ------------------------------------------------------------------------------

    def reset(self, *, seed: bool = True) -> dict[str, Any]:
        """Forget objects, tokens, logs, faults and counters; reseed unless told not to."""
        with self.lock:
            self._clear()
            return self.seed() if seed else self.fixtures()

    def seed(self) -> dict[str, Any]:
        """Create the default world (see ``docs/sandbox.md``) and return the fixtures dict."""
        from permatoken.sandbox.seed import seed_world

        with self.lock:
            seed_world(self)
            return self.fixtures()

    def fixtures(self) -> dict[str, Any]:
        from permatoken.sandbox.seed import fixtures_of

        with self.lock:
            return fixtures_of(self)

    def create_app(
        self, name: str, *, require_app_secret: bool = False, business_id: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            app = App(new_id(), secrets.token_hex(16), name, require_app_secret, business_id)
            self.apps[app.id] = app
            return app.to_fixture()

    def create_business(
        self, name: str, *, requires_expiring_tokens: bool = False
    ) -> dict[str, Any]:
        with self.lock:
            business = Business(new_id(), name, requires_expiring_tokens)
            self.businesses[business.id] = business
            return business.to_fixture()

    def create_system_user(
        self, business_id: str, name: str, *, role: str = "ADMIN", apps: list[str] | None = None
    ) -> dict[str, Any]:
        with self.lock:
            self._need(self.businesses, business_id, "business")
            user = SystemUser(new_id(), business_id, name, role, set(apps or self.apps))
            self.system_users[user.id] = user
            return user.to_fixture()

    def create_waba(self, business_id: str, name: str) -> dict[str, Any]:
        with self.lock:
            self._need(self.businesses, business_id, "business")
            waba = Waba(new_id(), business_id, name)
            self.wabas[waba.id] = waba
            return waba.to_fixture()

    def create_phone_number(
        self, waba_id: str, display_phone_number: str, *, verified_name: str = "Sandbox Shop"
    ) -> dict[str, Any]:
        with self.lock:
            self._need(self.wabas, waba_id, "WABA")
            phone = PhoneNumber(new_id(), waba_id, display_phone_number, verified_name)
            self.phone_numbers[phone.id] = phone
            return phone.to_fixture()

    def create_code(
        self,
        *,
        app_id: str | None = None,
        business_id: str | None = None,
        redirect_uri: str | None = None,
    ) -> str:
        """An Embedded Signup code for ``GET /oauth/access_token?code=``: single use, 30 s."""
        with self.lock:
            app = self._app_or_default(app_id)
            business_id = business_id or self._default_business(client=True)
            self._need(self.businesses, business_id, "business")
            code = "AQ" + secrets.token_urlsafe(96)
            self.codes[code] = AuthCode(code, app.id, business_id, self.clock.now(), redirect_uri)
            return code

    # -- tokens -----------------------------------------------------------------------------

    def create_token(
        self,
        kind: str,
        *,
        app_id: str | None = None,
        system_user_id: str | None = None,
        business_id: str | None = None,
        scopes: list[str] | None = None,
        waba_ids: list[str] | None = None,
        expires_in: int | None = None,
        expires_at: int | None = None,
    ) -> dict[str, Any]:
        """Issue a token of ``kind`` (see ``TOKEN_KINDS``); defaults come from the seeded world."""
        with self.lock:
            return self.issue(
                kind,
                app_id=app_id,
                system_user_id=system_user_id,
                business_id=business_id,
                scopes=scopes,
                waba_ids=waba_ids,
                expires_in=expires_in,
                expires_at=expires_at,
            ).to_fixture()

    def issue(
        self,
        kind: str,
        *,
        app_id: str | None = None,
        system_user_id: str | None = None,
        business_id: str | None = None,
        scopes: list[str] | None = None,
        waba_ids: list[str] | None = None,
        expires_in: int | None = None,
        expires_at: int | None = None,
        user_id: str | None = None,
    ) -> Token:
        """Like :meth:`create_token` but returns the record; callers hold the lock."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"kind must be one of {', '.join(TOKEN_KINDS)}")
        for scope in scopes or []:
            if scope not in KNOWN_SCOPES:
                raise ValueError(f"unknown scope {scope!r}")
        app = self._app_or_default(app_id)
        now = int(self.clock.now())
        if kind in SYSTEM_KINDS:
            if system_user_id is None:
                business_id = business_id or self._default_business(client=kind == "bisu")
                system_user_id = self._system_user_of(business_id, integration=kind == "bisu")
            user = self._need(self.system_users, system_user_id, "system user")
            business_id = user.business_id
            user_id = user_id or user.id
        elif kind in USER_KINDS:
            business_id = business_id or self._default_business(client=False)
        else:
            business_id = business_id or app.business_id
        if business_id is not None:
            self._need(self.businesses, business_id, "business")
        if waba_ids is None:
            waba_ids = [w.id for w in self.wabas.values() if w.business_id == business_id]
        lifetime = self._lifetime(kind)
        if expires_at is None:
            expires_at = (
                0 if lifetime == 0 and expires_in is None else now + (expires_in or lifetime)
            )
        token = Token(
            value=new_token_value(),
            kind=kind,
            app_id=app.id,
            user_id=user_id or (app.id if kind == "app" else new_id(17)),
            issued_at=now,
            expires_at=expires_at,
            data_access_expires_at=now + self.config.data_access_lifetime
            if kind in USER_KINDS
            else 0,
            scopes=list(scopes) if scopes is not None else self._default_scopes(kind),
            waba_ids=list(waba_ids),
            business_id=business_id,
            system_user_id=system_user_id if kind in SYSTEM_KINDS else None,
        )
        self.tokens[token.value] = token
        return token

    def token(self, value: str) -> Token | None:
        with self.lock:
            return self.tokens.get(value)

    def revoke_token(self, value: str, subcode: int | None = None) -> dict[str, Any]:
        """Invalidate at once; ``subcode`` defaults to ``config.revoked_subcode``."""
        with self.lock:
            token = self._need(self.tokens, value, "token")
            token.revoked = True
            token.invalid_subcode = subcode if subcode is not None else self.config.revoked_subcode
            return token.to_fixture()

    def expire_token(self, value: str) -> dict[str, Any]:
        """Make the token expired as of now (a never-expiring one too)."""
        with self.lock:
            token = self._need(self.tokens, value, "token")
            token.expires_at = int(self.clock.now())
            return token.to_fixture()

    # -- Embedded Signup, account events, webhooks (signup.py) ------------------------------

    def embedded_signup(
        self, *, app_id: str | None = None, business_name: str | None = None
    ) -> dict[str, Any]:
        """A new client business completes Embedded Signup: ``{code, business_id, waba_id,
        phone_number_id}``; the code is single use and lives ``code_ttl_seconds``."""
        from permatoken.sandbox import signup

        with self.lock:
            return signup.embedded_signup(self, app_id, business_name)

    def install_app(self, business_id: str, app_id: str | None = None) -> dict[str, Any]:
        from permatoken.sandbox import signup

        with self.lock:
            return signup.install(self, business_id, app_id)

    def uninstall_app(self, business_id: str, app_id: str | None = None) -> dict[str, Any]:
        """The business removes the app: its tokens die, ``PARTNER_APP_UNINSTALLED`` per WABA."""
        from permatoken.sandbox import signup

        with self.lock:
            return signup.uninstall(self, business_id, app_id)

    def account_event(
        self,
        waba_id: str,
        event: str,
        *,
        app_id: str | None = None,
        ban_state: str | None = None,
    ) -> dict[str, Any]:
        """Raise an ``account_update`` event (``signing.AccountEvent``) with its effects."""
        from permatoken.sandbox import signup
        from permatoken.sandbox.signing import AccountEvent

        if event not in AccountEvent.__members__:
            raise ValueError(f"event must be one of {', '.join(AccountEvent)}")
        with self.lock:
            return signup.account_event(self, waba_id, AccountEvent(event), app_id, ban_state)

    def deauthorize(self, user_id: str, app_id: str | None = None) -> dict[str, Any]:
        """The person ``user_id`` removes the app: tokens die, the deauthorize callback goes."""
        from permatoken.sandbox import signup

        with self.lock:
            return signup.deauthorize(self, user_id, app_id)

    def set_webhook(self, url: str | None, verify_token: str | None = None) -> dict[str, Any]:
        """Like ``PATCH /_sandbox/config``: the handshake runs first (outside the lock); a
        failure raises ``ValueError`` and changes nothing."""
        changes = {"webhook_url": url, "webhook_verify_token": verify_token}
        new = self.config.updated(changes)
        check_settings(new)
        if url is not None and verify_token is not None:
            problem = verify_endpoint(url, verify_token, new.webhook_timeout_seconds)
            if problem is not None:
                raise ValueError(f"webhook verification failed: {url} {problem}")
        with self.lock:
            self.config = self.config.updated(changes)
            return self.config.as_dict()

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        return self.webhooks.log()

    # -- logs and faults ---------------------------------------------------------------------

    def record_call(
        self,
        endpoint: str,
        method: str,
        path: str,
        status: int,
        code: int | None,
        token: str | None,
    ) -> None:
        with self.lock:
            self._calls.append(
                {
                    "seq": len(self._calls) + 1,
                    "at": self.clock.now(),
                    "endpoint": endpoint,
                    "method": method,
                    "path": path,
                    "status": status,
                    "error_code": code,
                    "token_fingerprint": fingerprint(token) if token else None,
                }
            )

    def calls(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(c) for c in self._calls if endpoint is None or c["endpoint"] == endpoint]

    def record_message(self, message: dict[str, Any]) -> None:
        with self.lock:
            self._messages.append(message)

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self._messages]

    def record_media(self, media: dict[str, Any]) -> None:
        with self.lock:
            self._media.append(media)

    def media(self) -> list[dict[str, Any]]:
        """Uploads accepted by ``POST /{phone-number-id}/media`` (size and SHA-256, no bytes)."""
        with self.lock:
            return [dict(m) for m in self._media]

    def clear_logs(self) -> None:
        with self.lock:
            self._calls.clear()
            self._messages.clear()
            self._media.clear()

    def inject_fault(self, endpoint: str = "*", kind: str = "error", **spec: Any) -> dict[str, Any]:
        """Add a fault (see :class:`~permatoken.sandbox.faults.Fault` for the fields)."""
        with self.lock:
            return self.faults.add(endpoint=endpoint, kind=kind, **spec).to_dict()

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    # -- internals ---------------------------------------------------------------------------

    def _lifetime(self, kind: str) -> int:
        c = self.config
        return {
            "dashboard": c.dashboard_lifetime,
            "user_short": c.user_short_lifetime,
            "user_long": c.long_lived_lifetime,
            "system_user": 0,
            "system_user_60d": c.long_lived_lifetime,
            "bisu": c.long_lived_lifetime if c.bisu_expires_in_60_days else 0,
            "app": 0,
        }[kind]

    @staticmethod
    def _default_scopes(kind: str) -> list[str]:
        if kind == "app":
            return []
        if kind in USER_KINDS:
            return [*WHATSAPP_SCOPES, "business_management", "public_profile"]
        return list(WHATSAPP_SCOPES)

    def _app_or_default(self, app_id: str | None) -> App:
        if app_id is None:
            if not self.apps:
                raise ValueError("no app exists: call seed() or create_app() first")
            return next(iter(self.apps.values()))
        return self._need(self.apps, app_id, "app")

    def _default_business(self, *, client: bool) -> str:
        # Seeded order: the developer's own business first, the client business second.
        businesses = list(self.businesses)
        if not businesses:
            raise ValueError("no business exists: call seed() or create_business() first")
        return businesses[-1] if client else businesses[0]

    def _system_user_of(self, business_id: str, *, integration: bool) -> str:
        users = [u for u in self.system_users.values() if u.business_id == business_id]
        preferred = [u for u in users if (u.role == "INTEGRATION") == integration]
        chosen = preferred or users
        if not chosen:
            raise ValueError(f"business {business_id} has no system user")
        return chosen[0].id

    @staticmethod
    def _need(table: dict[str, _T], key: str | None, what: str) -> _T:
        if key is None or key not in table:
            raise KeyError(f"unknown {what}")
        return table[key]
