"""Token signing keys: from a Secrets Manager secret, or fixed ones for tests and the in-memory mode.

The secret holds ``{"kid": "k2", "key": "...", "previous": [{"kid": "k1", "key": "..."}]}``:
new tokens are signed with the top-level key, while the keys under ``previous``
still verify tokens issued before a rotation, until they expire.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.ports import SigningKey

logger = logging.getLogger(__name__)

# HS256 needs at least 256 bits; shorter keys can be brute-forced from one token.
MIN_KEY_LENGTH = 32


class SigningKeyError(Exception):
    """The signing-key secret is malformed. Messages name the fault, never the key material."""


class _KeySet:
    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise SigningKeyError("no signing key given")
        self.current = keys[0]
        self.by_kid: dict[str, SigningKey] = {}
        for key in keys:
            if key.kid in self.by_kid:
                raise SigningKeyError(f"kid {key.kid!r} appears more than once")
            self.by_kid[key.kid] = key


def _parse_key(entry: Any, where: str) -> SigningKey:
    if not isinstance(entry, dict):
        raise SigningKeyError(f"{where} must be a JSON object")
    kid, key = entry.get("kid"), entry.get("key")
    if not isinstance(kid, str) or not kid:
        raise SigningKeyError(f"{where} needs a non-empty string 'kid'")
    if not isinstance(key, str) or len(key) < MIN_KEY_LENGTH:
        raise SigningKeyError(f"{where} (kid {kid!r}) needs a string 'key' of at least {MIN_KEY_LENGTH} characters")
    return SigningKey(kid, key.encode("utf-8"))


def parse_secret(secret_string: str) -> list[SigningKey]:
    """The keys in a secret's JSON, current one first; ``SigningKeyError`` if it is malformed."""
    try:
        document = json.loads(secret_string)
    except ValueError:
        # ``from None``: the decode error carries the whole secret in its ``doc`` attribute.
        raise SigningKeyError("signing-key secret is not valid JSON") from None
    keys = [_parse_key(document, "signing-key secret")]
    previous = document.get("previous", [])
    if not isinstance(previous, list):
        raise SigningKeyError("signing-key secret: 'previous' must be a list")
    keys += [_parse_key(entry, f"signing-key secret previous[{i}]") for i, entry in enumerate(previous)]
    _KeySet(keys)  # rejects duplicate kids
    return keys


class SecretsManagerSigningKeys:
    """Keys cached for ``cache_seconds``; Secrets Manager is asked at most once per ``min_refresh_seconds``.

    The limit matters because ``find`` runs on a kid taken from an unverified
    token header: a flood of forged kids must not become a flood of Secrets
    Manager calls (cost and throttling). When a refresh of expired keys fails
    (Secrets Manager down, or a malformed rotation), the cached keys stay in
    use, so it does not log everybody out; only the very first load raises.
    """

    def __init__(
        self,
        client: Any,
        secret_id: str,
        cache_seconds: float = 300,
        min_refresh_seconds: float = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sm = client
        self._secret_id = secret_id
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: _KeySet | None = None
        self._loaded_at = 0.0
        self._attempted_at = 0.0

    def current(self) -> SigningKey:
        with self._lock:
            return self._fresh().current

    def find(self, kid: str) -> SigningKey | None:
        with self._lock:
            keys = self._fresh()
            if kid not in keys.by_kid and self._may_attempt():
                # Perhaps the secret was rotated since the last fetch.
                keys = self._refresh_or_keep(keys)
            return keys.by_kid.get(kid)

    def _may_attempt(self) -> bool:
        return self._clock() - self._attempted_at >= self._min_refresh_seconds

    def _fresh(self) -> _KeySet:
        if self._keys is None:
            return self._refresh()
        if self._clock() - self._loaded_at >= self._cache_seconds and self._may_attempt():
            return self._refresh_or_keep(self._keys)
        return self._keys

    def _refresh_or_keep(self, keys: _KeySet) -> _KeySet:
        try:
            return self._refresh()
        except DependencyUnavailableError:
            logger.warning("signing keys not refreshed; using the cached ones", exc_info=True)
            return keys
        except SigningKeyError as exc:
            # A bad rotation must not log everybody out; it is loud in the logs instead.
            logger.error("signing-key secret is malformed; using the cached keys: %s", exc)
            return keys

    def _refresh(self) -> _KeySet:
        self._attempted_at = self._clock()
        try:
            answer = self._sm.get_secret_value(SecretId=self._secret_id)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailableError("The signing keys could not be read; please retry") from exc
        if "SecretString" not in answer:
            raise SigningKeyError("signing-key secret has no SecretString (binary secrets are not supported)")
        self._keys = _KeySet(parse_secret(answer["SecretString"]))
        self._loaded_at = self._attempted_at
        return self._keys


class StaticSigningKeys:
    """Fixed keys, the first one current: tests and the in-memory mode."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self._keys = _KeySet(list(keys))

    def current(self) -> SigningKey:
        return self._keys.current

    def find(self, kid: str) -> SigningKey | None:
        return self._keys.by_kid.get(kid)


def generate_signing_keys() -> StaticSigningKeys:
    """One random key, for a process whose tokens need not outlive it."""
    return StaticSigningKeys([SigningKey(f"local-{secrets.token_hex(4)}", secrets.token_urlsafe(48).encode("utf-8"))])
