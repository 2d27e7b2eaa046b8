"""The local stack's secrets, generated once into files under its folder, owner-only.

``admin-password`` (the bootstrap admin), ``key-encryption-key`` (auth's
``TASKMESH_KEY_ENCRYPTION_KEY``: losing it means auth cannot open its signing keys) and
``broker-passwords`` (each service's RabbitMQ password, ``<service>=<password>`` lines).
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from taskmesh_local import broker_users

__all__ = ["admin_password", "broker_passwords", "key_encryption_key"]


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


def _kept(path: Path, make: str) -> str:
    if not path.exists():
        _write_private(path, make + "\n")
    return path.read_text().strip()


def admin_password(base: Path) -> str:
    return _kept(base / "admin-password", secrets.token_urlsafe(18))


def key_encryption_key(base: Path) -> str:
    return _kept(
        base / "key-encryption-key", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    )


def broker_passwords(base: Path) -> dict[str, str]:
    """Every service's broker password; the ones missing from the file are added to it."""
    path = base / "broker-passwords"
    saved: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            service, _, password = line.partition("=")
            if password.strip():
                saved[service.strip()] = password.strip()
    if set(broker_users.SERVICE_USERS) <= set(saved):
        return {service: saved[service] for service in broker_users.SERVICE_USERS}
    passwords = broker_users.new_passwords() | {
        s: saved[s] for s in broker_users.SERVICE_USERS if s in saved
    }
    _write_private(path, "".join(f"{s}={p}\n" for s, p in passwords.items()))
    return passwords
