"""SIP passwords: the platform-wide one and the devices' own (设备注册密码).

No password works out of the box. Without ``sip.password``, the first start generates one and
keeps it in ``<var_dir>/sip_password`` (mode 0600), and every start logs where it is: give it to
the devices, or set ``sip.password`` (``XUELIANG_SIP__PASSWORD``) to the one they already have.

Device passwords are sealed at rest like TOTP seeds (``sealing.py``): the database holds
``v1:`` + AES-GCM text bound to the device's row, under a key that is not in the database. A
password stored before sealing still opens (it is returned as it is) and is sealed the next time
signalling starts.
"""

from __future__ import annotations

import logging
import os
import secrets
import string
from pathlib import Path

from xueliang.sealing import Sealer

log = logging.getLogger("xueliang.signalling")

PASSWORD_FILE = "sip_password"
#: Letters and digits only, 16 of them (95 bits): every device's web page accepts these.
_ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 16) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def platform_password(configured: str, var_dir: Path | None) -> str:
    """The configured password, or the generated one kept in ``var_dir`` (made on first use)."""
    if configured:
        return configured
    if var_dir is None:  # nowhere to keep one: this run's own, which no device knows
        log.warning("sip.password is not set and there is no var directory: devices cannot register until it is set")
        return generate_password(32)
    path = Path(var_dir) / PASSWORD_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    if text:
        log.info("SIP device password (sip.password not set): the generated one in %s", path)
        return text
    path.parent.mkdir(parents=True, exist_ok=True)
    password = generate_password()
    # Created 0600 from the start, never readable by others even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    os.chmod(path, 0o600)
    log.warning("sip.password is not set: generated a SIP device password in %s (mode 0600); configure devices "
                "with it, or set sip.password / XUELIANG_SIP__PASSWORD", path)
    return password


def device_context(device_id: str) -> str:
    return f"device:{device_id}:sip"


def seal_device_password(sealer: Sealer, device_id: str, password: str) -> str:
    return sealer.seal(password, context=device_context(device_id))


def open_device_password(sealer: Sealer | None, device_id: str, stored: str | None) -> str | None:
    """The device's password in clear (memory only), or None (the platform's applies).

    A clear value stored before sealing is returned as it is. One that does not open (another
    platform key, moved from another row) becomes a password nobody knows: falling back to the
    platform-wide one would let anyone who knows that register as this device.
    """
    if not stored:
        return None
    if sealer is None or not sealer.is_sealed(stored):
        return stored
    try:
        return sealer.open(stored, context=device_context(device_id))
    except ValueError:
        log.error("the sealed SIP password of device %s does not open (another secret key?): it cannot register "
                  "until its password is set again", device_id)
        return generate_password(32)
