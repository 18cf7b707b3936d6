"""Label Studio credentials -> the ``Authorization`` header, for file downloads.

Label Studio 1.23 knows two kinds of key: a legacy key (``Authorization: Token KEY``) and a personal
access token (PAT), a JWT *refresh* token that is refused as a bearer token: it must be exchanged at
``POST /api/token/refresh/`` for an access token valid about five minutes. label-studio-sdk does this for
its own API client only (its ``get_local_path`` does not refresh), so file downloads need this small,
thread-safe version: the access token is cached, refreshed shortly before it expires, and on a 401.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import jwt
import requests

# Refresh this many seconds before the access token's ``exp`` (clock skew, slow downloads).
REFRESH_MARGIN_S = 30.0


class AuthError(Exception):
    """The key cannot be turned into credentials (refresh refused, server unreachable)."""


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The token's payload decoded WITHOUT verifying the signature (only to tell kinds apart), or None."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    return claims if isinstance(claims, dict) else None


class LabelStudioAuth:
    """Produces the header that authenticates a request to the Label Studio host.

    Args:
        ls_url: Label Studio's base URL (``http://host:8080``).
        api_key: a legacy key, a personal access token, or an access token; empty means no auth.
        session: the session used for the refresh call.
        timeout: seconds for the refresh call.
    """

    def __init__(self, ls_url: str, api_key: str | None, session: requests.Session, timeout: float = 10.0):
        self.ls_url = ls_url.rstrip("/")
        self._key = api_key or ""
        self._session = session
        self._timeout = timeout
        self._lock = threading.Lock()
        self._access: str | None = None
        self._access_exp = 0.0
        claims = jwt_claims(self._key) if self._key else None
        if claims is None:
            self.kind = "legacy" if self._key else "none"
        elif claims.get("token_type") == "refresh":
            self.kind = "pat"
        else:
            self.kind = "access"

    def header(self) -> dict[str, str]:
        """The ``Authorization`` header to send (empty without a key).

        Raises:
            AuthError: a personal access token could not be refreshed.
        """
        if self.kind == "none":
            return {}
        if self.kind == "legacy":
            return {"Authorization": f"Token {self._key}"}
        if self.kind == "access":
            return {"Authorization": f"Bearer {self._key}"}
        with self._lock:
            if self._access is None or time.time() >= self._access_exp - REFRESH_MARGIN_S:
                self._refresh()
            return {"Authorization": f"Bearer {self._access}"}

    def invalidate(self) -> bool:
        """Forget the cached access token after a 401; True if a retry with a fresh one makes sense."""
        if self.kind != "pat":
            return False
        with self._lock:
            self._access = None
        return True

    def _refresh(self) -> None:
        url = f"{self.ls_url}/api/token/refresh/"
        try:
            resp = self._session.post(
                url, json={"refresh": self._key}, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise AuthError(f"personal access token refresh at {url} failed: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise AuthError(
                f"personal access token refresh at {url} answered HTTP {resp.status_code}: "
                "the token is invalid, expired or revoked (create a new one under Account & Settings)"
            )
        try:
            access = resp.json()["access"]
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"personal access token refresh at {url} returned no access token") from None
        claims = jwt_claims(access) or {}
        self._access = access
        self._access_exp = float(claims.get("exp") or time.time() + 60)
