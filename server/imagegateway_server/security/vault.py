"""Encryption of provider secrets at rest: AES-256-GCM envelopes under a master key.

Each secret gets a fresh random data key; the secret is encrypted under the data key and the data
key under the master key (the envelope), so rotating the master key re-wraps 48 bytes per secret
and never touches the secret's ciphertext. The row the secret belongs to (``virtual_key:<id>``,
``config:<id>@<version>``) is bound as associated data: a sealed value copied to another row
does not open.

Sealed layout (all lengths in bytes)::

    1   format version (1)
    1   length n of the master key id
    n   master key id (ASCII)
    12  nonce of the data-key wrap
    48  data key (32) encrypted under the master key, with its tag (16)
    12  nonce of the secret
    *   secret encrypted under the data key, with its tag (16)

The wrap authenticates ``header || associated_data`` (header = the first 2 + n bytes), the
secret ``version || associated_data``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

logger = logging.getLogger(__name__)

MASTER_KEY_FILE = "master.key"
_FORMAT_VERSION = 1
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_WRAPPED_KEY_BYTES = _KEY_BYTES + _TAG_BYTES
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class VaultError(Exception):
    """A sealed value cannot be opened: wrong key or associated data, tampering, or no such key."""


def master_key_id(key: bytes) -> str:
    """The public name of a master key: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:8]


class Vault:
    """Seals and opens secrets. Holds every master key that may still be in use; seals with one."""

    def __init__(self, master_keys: Mapping[str, bytes], active_key_id: str) -> None:
        for key_id, key in master_keys.items():
            if len(key) != _KEY_BYTES:
                raise ValueError(f"master key {key_id!r} must be {_KEY_BYTES} bytes")
            if not key_id.isascii() or not 0 < len(key_id) < 256:
                raise ValueError(f"master key id {key_id!r} must be 1-255 ASCII characters")
        if active_key_id not in master_keys:
            raise ValueError(f"the active master key {active_key_id!r} is not among the master keys")
        self._ciphers = MappingProxyType({key_id: AESGCM(key) for key_id, key in master_keys.items()})
        self._active_key_id = active_key_id

    @property
    def active_key_id(self) -> str:
        """The master key new secrets are sealed under."""
        return self._active_key_id

    def __repr__(self) -> str:
        return f"Vault(active_key_id={self._active_key_id!r}, key_ids={sorted(self._ciphers)!r})"

    def seal(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        """Encrypts ``plaintext`` for the row named by ``associated_data``."""
        data_key = AESGCM.generate_key(bit_length=_KEY_BYTES * 8)
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, bytes([_FORMAT_VERSION]) + associated_data)
        return self._wrap(self._active_key_id, data_key, associated_data) + nonce + ciphertext

    def open(self, sealed: bytes, *, associated_data: bytes) -> bytes:
        """Decrypts what ``seal`` made for the same ``associated_data``; VaultError otherwise."""
        _, data_key, rest = self._unwrap(sealed, associated_data)
        nonce, ciphertext = rest[:_NONCE_BYTES], rest[_NONCE_BYTES:]
        try:
            return AESGCM(data_key).decrypt(nonce, ciphertext, bytes([_FORMAT_VERSION]) + associated_data)
        except InvalidTag:
            raise VaultError("sealed secret does not open: tampered or bound to another row") from None

    def key_id_of(self, sealed: bytes) -> str:
        """The master key a sealed value is wrapped under."""
        return self._parse_header(sealed)[0]

    def rewrap(self, sealed: bytes, *, associated_data: bytes) -> bytes:
        """The same secret with its data key wrapped under the active master key."""
        key_id, data_key, rest = self._unwrap(sealed, associated_data)
        if key_id == self._active_key_id:
            return sealed
        return self._wrap(self._active_key_id, data_key, associated_data) + rest

    def _wrap(self, key_id: str, data_key: bytes, associated_data: bytes) -> bytes:
        encoded_id = key_id.encode("ascii")
        header = bytes([_FORMAT_VERSION, len(encoded_id)]) + encoded_id
        nonce = os.urandom(_NONCE_BYTES)
        return header + nonce + self._ciphers[key_id].encrypt(nonce, data_key, header + associated_data)

    def _parse_header(self, sealed: bytes) -> tuple[str, int]:
        if len(sealed) < 2 or sealed[0] != _FORMAT_VERSION:
            raise VaultError("sealed secret is malformed or of an unknown format")
        end = 2 + sealed[1]
        minimum = end + 2 * _NONCE_BYTES + _WRAPPED_KEY_BYTES + _TAG_BYTES
        if len(sealed) < minimum:
            raise VaultError("sealed secret is malformed (too short)")
        try:
            return sealed[2:end].decode("ascii"), end
        except UnicodeDecodeError:
            raise VaultError("sealed secret is malformed (bad key id)") from None

    def _unwrap(self, sealed: bytes, associated_data: bytes) -> tuple[str, bytes, bytes]:
        key_id, end = self._parse_header(sealed)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise VaultError(
                f"sealed secret is wrapped under master key {key_id!r}, which is not loaded "
                "(list it in IMAGEGW_PREVIOUS_MASTER_KEYS until a rotation re-wraps it)"
            )
        nonce = sealed[end : end + _NONCE_BYTES]
        wrapped = sealed[end + _NONCE_BYTES : end + _NONCE_BYTES + _WRAPPED_KEY_BYTES]
        try:
            data_key = cipher.decrypt(nonce, wrapped, sealed[:end] + associated_data)
        except InvalidTag:
            raise VaultError("sealed secret does not open: tampered or bound to another row") from None
        return key_id, data_key, sealed[end + _NONCE_BYTES + _WRAPPED_KEY_BYTES :]


def _decode_master_key(text: str, source: str) -> bytes:
    value = text.strip()
    if _BASE64URL.fullmatch(value):
        try:
            key = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
        except binascii.Error:
            key = b""
        if len(key) == _KEY_BYTES:
            return key
    raise ValueError(
        f"{source} must be the base64url encoding of exactly {_KEY_BYTES} random bytes "
        '(make one with: python -c "import secrets; print(secrets.token_urlsafe(32))")'
    )


def load_master_key(setting: str | None, data_dir: Path) -> tuple[str, bytes, bool]:
    """The master key as (key id, key, generated).

    From ``setting`` (the IMAGEGW_MASTER_KEY value) when it is set and not blank; else from
    ``data_dir/master.key``; else a new random key is written there (0600) and ``generated`` is
    True, so the caller can warn that the key now lives beside the data it protects.
    """
    if setting is not None and setting.strip():
        key = _decode_master_key(setting, "IMAGEGW_MASTER_KEY")
        return master_key_id(key), key, False
    path = data_dir / MASTER_KEY_FILE
    generated = False
    if not path.exists():
        generated = _write_new_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("master key file %s is accessible to other users (mode %o); it should be 0600", path, mode)
    key = _decode_master_key(path.read_text(encoding="ascii", errors="replace"), f"the master key file {path}")
    return master_key_id(key), key, generated


def load_vault(
    master_key_setting: str | None,
    previous_master_keys: Sequence[str],
    data_dir: Path,
    *,
    generate: bool = True,
) -> tuple[Vault, bool]:
    """The vault of a process: seals under the master key, opens under it and every previous key.

    ``previous_master_keys`` are the IMAGEGW_PREVIOUS_MASTER_KEYS values: keys a rotation is moving
    away from, still needed for rows not yet re-wrapped. With ``generate`` False a missing key
    file is an error instead of a new key (for offline tools, which must not invent a key).
    Returns the vault and whether a new master key was generated.
    """
    if (
        not generate
        and not (master_key_setting and master_key_setting.strip())
        and not (data_dir / MASTER_KEY_FILE).exists()
    ):
        raise ValueError(f"no master key: IMAGEGW_MASTER_KEY is unset and {data_dir / MASTER_KEY_FILE} does not exist")
    key_id, key, generated = load_master_key(master_key_setting, data_dir)
    keys = {key_id: key}
    for number, text in enumerate(previous_master_keys, 1):
        previous = _decode_master_key(text, f"IMAGEGW_PREVIOUS_MASTER_KEYS entry {number}")
        keys.setdefault(master_key_id(previous), previous)
    return Vault(keys, key_id), generated


def _write_new_key_file(path: Path) -> bool:
    """Writes a new key to ``path`` atomically; False if another process got there first."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
    text = base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode().rstrip("=") + "\n"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link() never replaces an existing file, so two first starts agree on one key.
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True
