"""Settings from the environment; unsafe defaults are refused.

- ``ECHOSCLERO_DATABASE_URL``: database (default: SQLite ``clinic.db`` in the data folder).
- ``ECHOSCLERO_DATA_DIR``: the data folder (default: the platform's per-user data folder).
- ``ECHOSCLERO_SECRET_KEY``: key that signs access tokens (at least 32 characters). When it is not set,
  a random key is generated once and kept in ``<data folder>/secret_key`` with permissions 0600; a key
  file readable by group or others is refused.
- ``ECHOSCLERO_TOKEN_MINUTES``: lifetime of an access token (default 480).
- ``ECHOSCLERO_PUBLIC_REQUESTS_PER_HOUR``: public appointment requests per client address (default 5; all
  addresses together: 20 times that, at least 100). Counted in the database, so the limit holds across
  the processes of ``echosclero serve --workers N``, as does the limit of 10 failed sign-ins per address
  and user name in 15 minutes.
- ``ECHOSCLERO_SQLITE_SYNCHRONOUS``: ``GROUP`` (default), ``FULL`` or ``NORMAL``; see
  :mod:`echosclero.store.db`.
- ``ECHOSCLERO_CLINIC_NAME``, ``ECHOSCLERO_CLINIC_PHONE``: printed on patient instructions.
- ``ECHOSCLERO_CLINIC_TIMEZONE``: the IANA time zone whose calendar days the daily dose limits count (e.g.
  ``Europe/Paris``; default: the server's local time zone).
- ``ECHOSCLERO_TRUSTED_PROXIES``: comma-separated addresses or networks of reverse proxies whose
  ``X-Forwarded-For`` header names the client (default: none; the header is then ignored, so that a client
  cannot choose the address its failed sign-ins and rate limits are counted under).
- ``ECHOSCLERO_LOGIN_FAILURES_PER_ACCOUNT``: failed sign-ins per user name in 15 minutes, from all addresses
  together, before that name is locked (default 30; the lock lifts as the window slides, so the real user is
  never locked out for ever).
- ``ECHOSCLERO_LATE_CHANGE_POLICY``: the clinic's policy for a late cancellation or change, recorded with it
  and returned to the caller.
- ``ECHOSCLERO_PACS``: the PACS that ``POST /api/sessions/{id}/send-sr`` sends SRs to (``AE@HOST:PORT``, e.g.
  ``PACS@10.0.0.7:104``; default: none, the route then refuses). ``ECHOSCLERO_DICOM_DIR``: where SRs sent are
  kept for their retries (default: ``<data folder>/dicom``, the receiver's store).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from echosclero.errors import EchoScleroError
from echosclero.store.db import data_dir, database_url

__all__ = ["Settings", "load_secret_key"]

MIN_SECRET_CHARS = 32
DEFAULT_LATE_CHANGE_POLICY = (
    "a cancellation or change inside the notice period is recorded as late; the clinic may ask for a fee"
)


class SettingsError(EchoScleroError):
    pass


def load_secret_key(folder: Path | None = None) -> str:
    env = os.environ.get("ECHOSCLERO_SECRET_KEY")
    if env is not None:
        if len(env) < MIN_SECRET_CHARS:
            raise SettingsError(
                f"ECHOSCLERO_SECRET_KEY is shorter than {MIN_SECRET_CHARS} characters; use e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return env
    folder = folder or data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077 and os.name == "posix":
            raise SettingsError(f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}`") from None
        key = path.read_text().strip()
        if len(key) < MIN_SECRET_CHARS:
            raise SettingsError(f"{path} holds a key shorter than {MIN_SECRET_CHARS} characters") from None
        return key
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


@dataclass(frozen=True)
class Settings:
    database_url: str
    secret_key: str
    token_minutes: int = 480
    public_requests_per_hour: int = 5
    login_failures_per_15min: int = 10
    clinic_name: str = "the clinic"
    clinic_phone: str = ""
    clinic_timezone: str = ""  # "" = the server's local time zone
    trusted_proxies: tuple[str, ...] = ()
    login_failures_per_account_15min: int = 30
    late_change_policy: str = DEFAULT_LATE_CHANGE_POLICY
    pacs: str = ""  # AE@HOST:PORT; "" = none
    dicom_dir: str = ""  # "" = <data folder>/dicom

    def __post_init__(self) -> None:
        self.tz  # noqa: B018 - refuse an unknown zone at start
        self.proxy_networks  # noqa: B018
        self.pacs_peer  # noqa: B018

    @property
    def pacs_peer(self):
        """The configured PACS (:class:`~echosclero.interop.dicomnet.Pacs`), or ``None``."""
        if not self.pacs.strip():
            return None
        from echosclero.errors import InputError
        from echosclero.interop.dicomnet import parse_peer

        try:
            return parse_peer(self.pacs.strip())
        except InputError as exc:
            raise SettingsError(f"ECHOSCLERO_PACS: {exc}") from None

    @property
    def dicom_folder(self) -> Path:
        from echosclero.interop.dicomqueue import default_dicom_dir

        return Path(self.dicom_dir).expanduser() if self.dicom_dir else default_dicom_dir()

    @property
    def tz(self) -> tzinfo | None:
        """The clinic's time zone (``None``: the server's local zone)."""
        if not self.clinic_timezone:
            return None
        try:
            return ZoneInfo(self.clinic_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"ECHOSCLERO_CLINIC_TIMEZONE {self.clinic_timezone!r} is not a known time zone (e.g. Europe/Paris)"
            ) from None

    def day_of(self, moment: datetime) -> date:
        """The clinic's calendar day of an aware moment."""
        return moment.astimezone(self.tz).date()

    def day_start(self, day: date) -> datetime:
        """The first moment of the clinic's calendar day ``day`` (aware)."""
        start = datetime.combine(day, time(0))
        return start.replace(tzinfo=self.tz) if self.tz is not None else start.astimezone()

    @property
    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        try:
            return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in self.trusted_proxies if p.strip())
        except ValueError as exc:
            raise SettingsError(
                f"ECHOSCLERO_TRUSTED_PROXIES: {exc} (give addresses or networks, e.g. 10.0.0.2)"
            ) from None

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=database_url(),
            secret_key=load_secret_key(),
            token_minutes=int(os.environ.get("ECHOSCLERO_TOKEN_MINUTES", "480")),
            public_requests_per_hour=int(os.environ.get("ECHOSCLERO_PUBLIC_REQUESTS_PER_HOUR", "5")),
            clinic_name=os.environ.get("ECHOSCLERO_CLINIC_NAME", "the clinic"),
            clinic_phone=os.environ.get("ECHOSCLERO_CLINIC_PHONE", ""),
            clinic_timezone=os.environ.get("ECHOSCLERO_CLINIC_TIMEZONE", ""),
            trusted_proxies=tuple(os.environ.get("ECHOSCLERO_TRUSTED_PROXIES", "").split(",")),
            login_failures_per_account_15min=int(os.environ.get("ECHOSCLERO_LOGIN_FAILURES_PER_ACCOUNT", "30")),
            late_change_policy=os.environ.get("ECHOSCLERO_LATE_CHANGE_POLICY", DEFAULT_LATE_CHANGE_POLICY),
            pacs=os.environ.get("ECHOSCLERO_PACS", ""),
            dicom_dir=os.environ.get("ECHOSCLERO_DICOM_DIR", ""),
        )
