"""Checking an export offline (``xueliang export verify PATH``): the signature over the
manifest's exact bytes, then every file the manifest lists (present, same size, same SHA-256),
and no file the manifest does not list. Each problem names its file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from xueliang.evidence.signing import fingerprint, signature_ok

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public-key.pem"
#: The files of a folder besides those the manifest lists.
OWN_FILES = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEY})


@dataclass(slots=True)
class Verdict:
    problems: list[str] = field(default_factory=list)
    files: int = 0
    key_id: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.ok:
            return f"intact: {self.files} files and the manifest, signed by key {self.key_id}"
        return "\n".join(self.problems)


def sha256_of(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def verify_export(folder: Path, key_pem: bytes | None = None) -> Verdict:
    """What is wrong with the export in ``folder`` (nothing: ``ok``). ``key_pem``: the
    platform's public key as the checker trusts it; None: the copy in the folder."""
    v = Verdict()
    manifest_path, sig_path = folder / MANIFEST, folder / SIGNATURE
    if not folder.is_dir():
        v.problems.append(f"{folder}: not a folder")
        return v
    for p in (manifest_path, sig_path):
        if not p.is_file():
            v.problems.append(f"{p.name}: missing")
    if key_pem is None:
        if not (folder / PUBLIC_KEY).is_file():
            v.problems.append(f"{PUBLIC_KEY}: missing (or give the key with --key)")
        else:
            key_pem = (folder / PUBLIC_KEY).read_bytes()
    if v.problems:
        return v
    assert key_pem is not None
    data = manifest_path.read_bytes()
    try:
        v.key_id = fingerprint(key_pem)
        good = signature_ok(key_pem, data, sig_path.read_bytes())
    except ValueError as exc:
        v.problems.append(f"{PUBLIC_KEY}: {exc}")
        return v
    if not good:
        v.problems.append(f"{MANIFEST}: the signature in {SIGNATURE} does not match it (changed, or another key)")
    try:
        manifest = json.loads(data)
        listed = {str(f["name"]): f for f in manifest["files"]}
    except (ValueError, KeyError, TypeError) as exc:
        v.problems.append(f"{MANIFEST}: unreadable ({exc})")
        return v
    for name, entry in sorted(listed.items()):
        path = folder / name
        if Path(name).name != name or name in OWN_FILES:
            v.problems.append(f"{name}: not a file name an export lists")
            continue
        if not path.is_file():
            v.problems.append(f"{name}: missing")
            continue
        digest, size = sha256_of(path)
        if size != entry.get("size") or digest != entry.get("sha256"):
            v.problems.append(f"{name}: changed (SHA-256 {digest}, the manifest says {entry.get('sha256')})")
        v.files += 1
    for path in sorted(folder.iterdir()):
        if path.name not in listed and path.name not in OWN_FILES:
            v.problems.append(f"{path.name}: added (not in the manifest)")
    return v
