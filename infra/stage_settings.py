"""Per-stage operating settings: custom domain, retained data, alert subscriptions, CORS, retention.

They are not Chalice settings, so they live beside them, under ``"stage_settings"`` in the stage's
entry of ``.chalice/config.json`` (Chalice ignores the key). What is account-specific (a domain, a
certificate, a hosted zone, the on-call addresses) usually stays out of the repository: a JSON file
with the same keys, named by ``--settings FILE`` or ``STAGE_SETTINGS_FILE``, is laid over the
committed ones (explicit argument beats environment). Every key has a default, so a stage without
any deploys as before: no domain, no subscription, disposable data. ``docs/deploy.md`` lists them.

    settings = load_stage_settings("prod")                      # config.json, then STAGE_SETTINGS_FILE
    settings = load_stage_settings("prod", Path("ops/prod.json"))
    settings.domain.name("prod")                                # "api.prod.example.com"

The CORS origin is the stage's ``CORS_ALLOW_ORIGIN`` (the variable the API reads), so the API, its
gateway responses and the uploads bucket cannot disagree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

CONFIG_FILE = Path(__file__).resolve().parent.parent / ".chalice" / "config.json"
SETTINGS_KEY = "stage_settings"
SETTINGS_FILE_VARIABLE = "STAGE_SETTINGS_FILE"
BASE_PATH = "v1"  # the seed's base path mapping
DEFAULT_ACCESS_LOG_RETENTION_DAYS = 14
DEFAULT_ABANDONED_UPLOAD_DAYS = 30
# CloudWatch Logs' accepted retention values (PutRetentionPolicy refuses any other).
LOG_RETENTION_VALUES = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
KNOWN_KEYS = frozenset(
    {
        "domain",
        "certificate_arn",
        "hosted_zone_id",
        "alert_emails",
        "alert_endpoints",
        "retain_data",
        "access_log_retention_days",
        "abandoned_upload_days",
    }
)


class StageSettingsError(ValueError):
    """A stage setting is unknown, missing a companion or out of range."""


@dataclass(frozen=True)
class CustomDomain:
    """``api.<stage>.<domain>`` with base path ``v1``, its ACM certificate and Route 53 hosted zone."""

    domain: str
    certificate_arn: str
    hosted_zone_id: str
    base_path: str = BASE_PATH

    def name(self, stage: str) -> str:
        return f"api.{stage}.{self.domain}"


@dataclass(frozen=True)
class StageSettings:
    """What a stage's operator decides; the defaults are a disposable stage nobody is paged for."""

    cors_origin: str = "*"
    domain: CustomDomain | None = None
    alert_emails: tuple[str, ...] = ()
    alert_endpoints: tuple[str, ...] = ()  # HTTPS URLs (http:// only on the local stage)
    retain_data: bool = False
    access_log_retention_days: int = DEFAULT_ACCESS_LOG_RETENTION_DAYS
    abandoned_upload_days: int = DEFAULT_ABANDONED_UPLOAD_DAYS

    @property
    def deletion_policy(self) -> str:
        """CloudFormation's ``DeletionPolicy``/``UpdateReplacePolicy`` for the stage's data."""
        return "Retain" if self.retain_data else "Delete"


def load_stage_settings(
    stage: str, settings_file: Path | None = None, config_file: Path = CONFIG_FILE, env: Mapping[str, str] | None = None
) -> StageSettings:
    """The settings of ``stage``: ``.chalice/config.json``'s, with ``settings_file`` (else the file
    ``STAGE_SETTINGS_FILE`` names) laid over them. A stage the config does not have gets the defaults."""
    config = json.loads(config_file.read_text())["stages"].get(stage, {})
    values: dict[str, Any] = dict(config.get(SETTINGS_KEY, {}))
    environ = os.environ if env is None else env
    overlay = settings_file or (Path(environ[SETTINGS_FILE_VARIABLE]) if environ.get(SETTINGS_FILE_VARIABLE) else None)
    if overlay is not None:
        try:
            values.update(json.loads(overlay.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise StageSettingsError(f"stage settings file {overlay}: {exc}") from exc
    cors_origin = str(config.get("environment_variables", {}).get("CORS_ALLOW_ORIGIN", "*"))
    return parse_stage_settings(stage, values, cors_origin)


def parse_stage_settings(stage: str, values: Mapping[str, Any], cors_origin: str = "*") -> StageSettings:
    """Check and convert one stage's settings (``StageSettingsError`` names the key at fault)."""
    unknown = sorted(set(values) - KNOWN_KEYS)
    if unknown:
        raise StageSettingsError(f"{stage}: unknown stage setting(s) {', '.join(unknown)}; known: {sorted(KNOWN_KEYS)}")
    domain_keys = [values.get(k) for k in ("domain", "certificate_arn", "hosted_zone_id")]
    domain = None
    if any(domain_keys):
        if not all(domain_keys):
            raise StageSettingsError(f"{stage}: domain, certificate_arn and hosted_zone_id go together")
        name, certificate, zone = (str(v) for v in domain_keys)
        if not certificate.startswith("arn:") or ":acm:" not in certificate:
            raise StageSettingsError(f"{stage}: certificate_arn {certificate!r} is not an ACM certificate ARN")
        domain = CustomDomain(name.strip(".").lower(), certificate, zone)
    emails = tuple(str(e) for e in values.get("alert_emails", ()))
    for email in emails:
        if "@" not in email:
            raise StageSettingsError(f"{stage}: alert_emails: {email!r} is not an e-mail address")
    endpoints = tuple(str(u) for u in values.get("alert_endpoints", ()))
    for url in endpoints:
        scheme = urlparse(url).scheme
        if scheme != "https" and not (scheme == "http" and stage == "local"):
            raise StageSettingsError(f"{stage}: alert_endpoints: {url!r} must be https:// (http:// only locally)")
    retention = int(values.get("access_log_retention_days", DEFAULT_ACCESS_LOG_RETENTION_DAYS))
    if retention not in LOG_RETENTION_VALUES:
        raise StageSettingsError(f"{stage}: access_log_retention_days {retention} is not one CloudWatch Logs accepts")
    abandoned = int(values.get("abandoned_upload_days", DEFAULT_ABANDONED_UPLOAD_DAYS))
    if abandoned < 1:
        raise StageSettingsError(f"{stage}: abandoned_upload_days must be at least 1")
    retain = values.get("retain_data", False)
    if not isinstance(retain, bool):
        raise StageSettingsError(f"{stage}: retain_data must be true or false")
    return StageSettings(cors_origin, domain, emails, endpoints, retain, retention, abandoned)
