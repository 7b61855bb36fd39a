"""Provider keys stored by `pilothouse keys set PROVIDER`: in the operating system's
keyring when one is available (macOS Keychain, Windows Credential Locker, the Secret
Service on a Linux desktop, through the `keyring` library), else in
`provider-keys.json` in the data directory, readable by its owner only (0600).

Never in config.toml. The index file `provider-keys.json` says where each provider's
key is; a key kept in the keyring is not in it. Settings read a key from here only
when config.toml and the environment have none (see `Settings.api_key`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from pilothouse.errors import ConfigError

FILE_NAME = "provider-keys.json"
SERVICE = "pilothouse"
log = logging.getLogger(__name__)

Where = Literal["keyring", "file"]


@dataclass(frozen=True, slots=True)
class Stored:
    provider: str
    where: Where


class ProviderKeyStore:
    """The provider keys of one data directory."""

    def __init__(self, home: Path, *, use_keyring: bool = True):
        self.path = home / FILE_NAME
        self.use_keyring = use_keyring

    # --- writing ------------------------------------------------------------------

    def set(self, provider: str, key: str) -> Where:
        """Store `key` for `provider` (replacing any); where it went."""
        if not key.strip():
            raise ConfigError("the key is empty; nothing stored")
        entries = self._read()
        backend = self._keyring() if self.use_keyring else None
        if backend is not None:
            try:
                backend.set_password(SERVICE, provider, key.strip())
            except Exception as exc:  # a locked or refusing keyring: fall back to the file
                log.warning("the keyring refused the key (%s); using %s", exc, self.path)
            else:
                entries[provider] = {"store": "keyring"}
                self._write(entries)
                return "keyring"
        entries[provider] = {"store": "file", "key": key.strip()}
        self._write(entries)
        return "file"

    def remove(self, provider: str) -> bool:
        """Forget `provider`'s key; False when none was stored."""
        entries = self._read()
        entry = entries.pop(provider, None)
        if entry is None:
            return False
        if entry.get("store") == "keyring":
            backend = self._keyring()
            if backend is not None:
                try:
                    backend.delete_password(SERVICE, provider)
                except Exception as exc:  # already gone from the keyring
                    log.info("keyring: %s", exc)
        self._write(entries)
        return True

    # --- reading ------------------------------------------------------------------

    def stored(self) -> list[Stored]:
        return [
            Stored(p, "keyring" if e.get("store") == "keyring" else "file")
            for p, e in sorted(self._read().items())
        ]

    def get(self, provider: str) -> SecretStr | None:
        entry = self._read().get(provider)
        if entry is None:
            return None
        if entry.get("store") == "keyring":
            backend = self._keyring()
            try:
                value = backend.get_password(SERVICE, provider) if backend else None
            except Exception as exc:
                log.warning("cannot read %s's key from the keyring: %s", provider, exc)
                return None
            return SecretStr(value) if value else None
        key = entry.get("key")
        return SecretStr(key) if isinstance(key, str) and key else None

    # --- the file and the keyring -------------------------------------------------

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{self.path}: cannot read the stored provider keys ({exc}); fix or delete "
                "the file and store the keys again (pilothouse keys set PROVIDER)"
            ) from None
        providers = data.get("providers") if isinstance(data, dict) else None
        if not isinstance(providers, dict):
            raise ConfigError(f'{self.path}: expected {{"providers": {{...}}}}')
        return {str(k): v for k, v in providers.items() if isinstance(v, dict)}

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump({"providers": entries}, file, indent=2)
        os.chmod(temporary, 0o600)  # also when the file existed with wider rights
        os.replace(temporary, self.path)

    @staticmethod
    def _keyring() -> Any:
        """The keyring module when a real backend is available, else None."""
        try:
            import keyring
            from keyring.backends import fail
        except ImportError:
            return None
        try:
            backend = keyring.get_keyring()
        except Exception:
            return None
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
            return None
        return keyring
