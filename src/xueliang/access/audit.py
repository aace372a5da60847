"""The audit log (审计): append-only, hash-chained, signed checkpoints.

Every record carries ``prev_hash`` (the hash of the record before it) and ``hash`` =
SHA-256 of its canonical JSON (all fields but ``hash``, in a fixed order, the time as UTC ISO
8601 with microseconds). One writer task per process owns the chain head in memory and writes
records in batches (≥ 5,000 records/s, bench/access.py). If another process wrote meanwhile,
the insert collides on ``seq``; the writer reloads the head and chains the batch again, so the
chain stays one line.

Checkpoints sign (seq, hash, time) with HMAC-SHA256 under a key that is not in the database
(``XUELIANG_AUDIT_KEY`` or a key file), and are also appended to the heads file. At every flush
the new head is signed too and appended to that file only (``"kind": "head"``), so that whoever
holds the database cannot cut its tail or put an older copy back unseen. ``verify`` walks the
chain and names the first bad record: changed (hash mismatch), removed (gap in ``seq`` or a
``prev_hash`` mismatch), reordered (prev_hash mismatch), rewritten wholesale with fresh hashes
(a signed checkpoint or head no longer matches) or cut off at the end ("tail missing": the chain
is shorter than a signed head or checkpoint).

The first record appended wakes the writer, which waits ``flush_seconds`` for more and then
writes all that is pending: a record lives in memory ``flush_seconds`` plus one write (the
test kills the server 1 s after its requests); ``flush()`` waits for them, and shutdown flushes.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import AuditCheckpoint, AuditRecord
from xueliang.registry.spreadsheet import safe_cell
from xueliang.tasks import woken

log = logging.getLogger("xueliang.audit")

GENESIS = "0" * 64
#: The hashed fields, in order.
FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor",
    "role",
    "actor_department",
    "action",
    "resource_type",
    "resource_id",
    "resource_department",
    "ip",
    "purpose",
    "case_ref",
    "outcome",
    "status",
    "detail",
    "prev_hash",
)
_LIMITS = {
    "actor": 64,
    "role": 32,
    "actor_department": 200,
    "action": 64,
    "resource_type": 32,
    "resource_id": 200,
    "resource_department": 200,
    "ip": 64,
    "purpose": 1000,
    "case_ref": 100,
    "outcome": 16,
}
_TABLE = cast(Table, AuditRecord.__table__)
#: Actions counted as a view in transparency reports.
VIEW_ACTIONS = ("media.live", "media.playback", "media.download", "media.snapshot")
#: Most records held in memory while the database is unreachable.
MAX_PENDING = 2_000_000


def at_text(at: datetime | str) -> str:
    if isinstance(at, str):
        return at  # already canonical
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    elif at.utcoffset():
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


def detail_text(d: Mapping[str, Any] | None) -> str | None:
    """A record's detail as canonical JSON (sorted keys, compact, UTF-8): stored as this text,
    hashed as this text. NUL-free and bounded, so a record is always writable."""
    if not d:
        return None
    try:
        text = _dumps(dict(d))
    except (TypeError, ValueError):
        text = _dumps(json.loads(json.dumps(dict(d), default=str)))
    if len(text) > 8000:
        text = _dumps({"truncated": text[:8000]})
    return text


def canonical(r: Any) -> bytes:
    """The hashed form: a JSON array of FIELDS (time as UTC ISO 8601 with microseconds; detail
    as its canonical text) — what ``json.dumps([...], sort_keys=True, ensure_ascii=False,
    separators=(",", ":"))`` gives for the record."""
    head = _dumps(
        [
            r["seq"],
            at_text(r["at"]),
            r["actor_id"],
            r["actor"],
            r["role"],
            r["actor_department"],
            r["action"],
            r["resource_type"],
            r["resource_id"],
            r["resource_department"],
            r["ip"],
            r["purpose"],
            r["case_ref"],
            r["outcome"],
            r["status"],
        ]
    )
    d = r["detail"]
    text: str = head[:-1] + "," + (d if d is not None else "null") + ',"' + r["prev_hash"] + '"]'
    return text.encode()


def record_hash(r: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(r)).hexdigest()


def _clip(v: Any, n: int) -> Any:
    if v is None:
        return None
    s = str(v).replace("\x00", "")
    return s[:n]


# ---- checkpoint key ------------------------------------------------------------------------
class CheckpointKey:
    """HMAC-SHA256 key for checkpoints, kept outside the database."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("audit key too short (≥ 16 bytes)")
        self._key = key
        self.key_id = hashlib.sha256(b"xueliang-audit-key-id:" + key).hexdigest()[:16]

    @classmethod
    def load(cls, path: Path, env: str = "XUELIANG_AUDIT_KEY", create: bool = True) -> CheckpointKey:
        """From the environment variable (hex, or text), else the key file (created 0600)."""
        raw = os.environ.get(env, "").strip()
        if raw:
            try:
                return cls(bytes.fromhex(raw))
            except ValueError:
                return cls(raw.encode())
        if path.exists():
            return cls(bytes.fromhex(path.read_text().strip()))
        if not create:
            raise FileNotFoundError(f"audit key {path} not found (and {env} not set)")
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.hex() + "\n")
        return cls(key)

    @staticmethod
    def message(seq: int, h: str, at: str) -> bytes:
        return f"xueliang-audit-checkpoint:v1:{seq}:{h}:{at}".encode()

    def sign(self, seq: int, h: str, at: str) -> str:
        return hmac.new(self._key, self.message(seq, h, at), hashlib.sha256).hexdigest()

    def check(self, seq: int, h: str, at: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(seq, h, at), signature)


def placement_warnings(database_url: str, key_file: Path, heads_file: Path) -> list[str]:
    """What is wrong with where the audit's proofs are kept: a key file or signed heads in the
    directory of a SQLite database go with whoever takes the database (docs/operations.md)."""
    prefix = "sqlite+aiosqlite:///"
    if not database_url.startswith(prefix) or ":memory:" in database_url:
        return []
    data_dir = Path(database_url[len(prefix):].split("?", 1)[0]).resolve().parent
    out = []
    things = [("signed audit heads", heads_file)]
    if not os.environ.get("XUELIANG_AUDIT_KEY", "").strip():
        things.insert(0, ("audit key", key_file))
    for what, path in things:
        if path.resolve().is_relative_to(data_dir):
            out.append(f"{what} at {path}, beside the database in {data_dir}: whoever holds "
                       "that directory can cut the audit tail unseen; keep them elsewhere "
                       "(docs/operations.md, 'Audit key, signed heads')")
    return out


# ---- writer --------------------------------------------------------------------------------
class AuditLog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        key: CheckpointKey | None,
        *,
        batch_max: int = 5000,
        flush_seconds: float = 0.2,
        checkpoint_seconds: float = 300.0,
        checkpoint_file: Path | None = None,
    ) -> None:
        self.sessions = sessions
        self.key = key
        self.batch_max = batch_max
        self.flush_seconds = flush_seconds
        self.checkpoint_seconds = checkpoint_seconds
        self.checkpoint_file = checkpoint_file
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._written = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._urgent = False
        self.head_seq = 0
        self.head_hash = GENESIS
        self._head_loaded = False
        self._checkpointed_seq = 0
        self._last_checkpoint = time.monotonic()
        #: The last head signed into ``checkpoint_file`` (at every flush).
        self.signed_seq = 0
        self._file_lock = asyncio.Lock()
        self.appended = 0
        self.written = 0
        self.dropped = 0
        self.failures = 0

    # ---- appending ----------------------------------------------------------------------
    def append(
        self,
        action: str,
        outcome: str = "ok",
        *,
        actor_id: int | None = None,
        actor: str = "",
        role: str = "",
        actor_department: str | None = None,
        resource_type: str = "",
        resource_id: str = "",
        resource_department: str | None = None,
        ip: str = "",
        purpose: str | None = None,
        case_ref: str | None = None,
        status: int | None = None,
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Queue one record (never blocks, never raises for content)."""
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            if self.dropped % 10000 == 1:
                log.error("audit backlog full (%d): records are being dropped", MAX_PENDING)
            return
        rec = {
            "at": at or datetime.now(UTC),
            "actor_id": actor_id,
            "actor": _clip(actor, 64) or "",
            "role": _clip(role, 32) or "",
            "actor_department": _clip(actor_department, 200),
            "action": _clip(action, 64) or "",
            "resource_type": _clip(resource_type, 32) or "",
            "resource_id": _clip(resource_id, 200) or "",
            "resource_department": _clip(resource_department, 200),
            "ip": _clip(ip, 64) or "",
            "purpose": _clip(purpose, 1000),
            "case_ref": _clip(case_ref, 100),
            "outcome": _clip(outcome, 16) or "",
            "status": int(status) if status is not None else None,
            "detail": detail_text(detail),
        }
        self._pending.append(rec)
        self.appended += 1
        if len(self._pending) == 1 or len(self._pending) >= self.batch_max:
            # The first record starts the flush clock (the writer waits ``flush_seconds`` for
            # more, then writes); a full batch goes at once.
            self._wake.set()
        self._ensure_task()

    def append_for(self, p: Any, action: str, outcome: str = "ok", **kw: Any) -> None:
        """Append with the actor taken from a Principal."""
        self.append(
            action, outcome, actor_id=p.user_id, actor=p.username, role=p.role,
            actor_department=p.department, **kw,
        )

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._stopping = False
            self._task = loop.create_task(self._run(), name="audit-writer")
            self._wake.set()

    async def start(self) -> None:
        self._ensure_task()

    async def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record appended so far is in the database."""
        target = self.appended
        self._ensure_task()
        deadline = time.monotonic() + timeout
        while self.written + self.dropped < target:
            self._urgent = True
            self._wake.set()
            self._written.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"audit flush: {target - self.written} records not yet written")
            await woken(self._written, min(left, 1.0))
        self._urgent = False

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._stopping = True
            self._wake.set()
            try:
                async with asyncio.timeout(30):
                    await asyncio.shield(self._task)
            except TimeoutError:
                log.error("audit writer did not finish: %d records unwritten", len(self._pending))
                self._task.cancel()
        self._task = None
        if self.key is not None and self._head_loaded and self.head_seq > self._checkpointed_seq:
            try:
                await self.checkpoint()
            except Exception:
                log.exception("final audit checkpoint failed")

    # ---- the writer task ----------------------------------------------------------------
    async def _load_head(self) -> None:
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
                )
            ).first()
            cp = await s.scalar(select(func.max(AuditCheckpoint.seq)))
        self.head_seq, self.head_hash = (int(row[0]), str(row[1])) if row else (0, GENESIS)
        self._checkpointed_seq = int(cp or 0)
        if not self._head_loaded and self.checkpoint_file is not None:
            signed = await asyncio.to_thread(_last_signed_seq, self.checkpoint_file)
            self.signed_seq = max(self.signed_seq, min(signed, self.head_seq))
            if signed > self.head_seq:
                log.error(
                    "AUDIT TAIL MISSING: the chain in the database ends at record %d, but record %d "
                    "was signed (%s): records were cut or the database was rolled back; run "
                    "`xueliang audit verify`", self.head_seq, signed, self.checkpoint_file,
                )
        self._head_loaded = True

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                if not self._head_loaded:
                    await self._load_head()
                if not self._pending and not self._stopping:
                    self._wake.clear()
                    await woken(self._wake, self._checkpoint_due_in())
                if (
                    self._pending
                    and len(self._pending) < self.batch_max
                    and not (self._urgent or self._stopping)
                ):
                    self._wake.clear()
                    await woken(self._wake, self.flush_seconds)
                while self._pending:
                    batch = self._pending[: self.batch_max]
                    await self._write(batch)
                    del self._pending[: len(batch)]
                    if not self._pending:
                        # Every flush ends with the head signed outside the database, so a
                        # tail cut from the database is seen against it (verify). Counted as
                        # written only after: flush() returns with the head signed.
                        await self._sign_head()
                    self.written += len(batch)
                    self._written.set()
                backoff = 0.5
                due = self._checkpoint_due_in()
                if due is not None and due <= 0:
                    await self.checkpoint()
                if self._stopping and not self._pending:
                    return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                log.exception("audit write failed; retrying in %.1f s (%d pending)", backoff, len(self._pending))
                self._head_loaded = False
                if self._stopping and self.failures > 5:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _checkpoint_due_in(self) -> float | None:
        if self.key is None or self.checkpoint_seconds <= 0:
            return None
        if self.head_seq <= self._checkpointed_seq:
            return self.checkpoint_seconds
        return self._last_checkpoint + self.checkpoint_seconds - time.monotonic()

    def _chain(self, batch: list[dict[str, Any]], seq: int, prev: str) -> list[dict[str, Any]]:
        rows = []
        for rec in batch:
            seq += 1
            r = dict(rec)
            r["seq"] = seq
            r["prev_hash"] = prev
            prev = r["hash"] = record_hash(r)
            rows.append(r)
        return rows

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        for _attempt in range(5):
            rows = self._chain(batch, self.head_seq, self.head_hash)
            try:
                async with self.sessions() as s, s.begin():
                    await s.execute(insert(_TABLE), rows)
            except IntegrityError:
                # Another writer took these sequence numbers: chain after its records.
                await self._load_head()
                continue
            except DataError:
                # A record the database refuses must not block the chain: keep its trace. Only
                # for its data refused, never for an outage (a lost connection, no primary during
                # a failover): those are waited out with the record itself, by the caller.
                if len(batch) > 1:
                    # Which one? One by one, so that only the refused record is replaced.
                    for rec in batch:
                        await self._write([rec])
                    return
                log.exception("audit record refused by the database; writing a placeholder")
                batch = [self._placeholder(batch[0])]
                continue
            self.head_seq = rows[-1]["seq"]
            self.head_hash = rows[-1]["hash"]
            return
        raise RuntimeError("audit: could not append after 5 attempts")

    @staticmethod
    def _placeholder(rec: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **{k: rec.get(k) for k in ("at", "actor_id", "status")},
            "actor": "", "role": "", "actor_department": None, "action": "audit.unwritable",
            "resource_type": "", "resource_id": "", "resource_department": None, "ip": "",
            "purpose": None, "case_ref": None, "outcome": "error",
            "detail": detail_text({"original_action": str(rec.get("action", ""))[:64]}),
        }

    # ---- signed heads and checkpoints ---------------------------------------------------
    def _signed(self, seq: int, h: str, at: datetime) -> dict[str, Any]:
        assert self.key is not None
        a = at_text(at)
        return {"seq": seq, "hash": h, "at": a, "key_id": self.key.key_id,
                "signature": self.key.sign(seq, h, a)}

    async def _append_file(self, entry: Mapping[str, Any]) -> None:
        if self.checkpoint_file is not None:
            async with self._file_lock:
                await asyncio.to_thread(_append_line, self.checkpoint_file, json.dumps(entry))

    async def _sign_head(self) -> None:
        """Append the signed head to ``checkpoint_file`` (outside the database). A failure is
        logged, never fatal: the records are written; the next flush signs again."""
        if self.key is None or self.checkpoint_file is None or self.head_seq <= self.signed_seq:
            return
        seq = self.head_seq
        try:
            await self._append_file({"kind": "head", **self._signed(seq, self.head_hash, datetime.now(UTC))})
        except OSError:
            log.exception("audit: could not append the signed head to %s", self.checkpoint_file)
            return
        self.signed_seq = max(self.signed_seq, seq)

    async def checkpoint(self) -> dict[str, Any]:
        """Sign the current head (after writing what is pending)."""
        if self.key is None:
            raise RuntimeError("no audit key")
        if self._pending and self._task is not None and not self._task.done():
            await self.flush()
        if not self._head_loaded:
            await self._load_head()
        seq, h = self.head_seq, self.head_hash
        at = datetime.now(UTC)
        entry = self._signed(seq, h, at)
        async with self.sessions() as s, s.begin():
            s.add(AuditCheckpoint(seq=seq, hash=h, at=at, key_id=self.key.key_id, signature=entry["signature"]))
        await self._append_file(entry)
        self.signed_seq = max(self.signed_seq, seq)
        self._checkpointed_seq = seq
        self._last_checkpoint = time.monotonic()
        return entry


def _last_signed_seq(path: Path, tail: int = 65536) -> int:
    """The highest record signed in the last lines of the heads file (0 if none; signatures
    are not checked here: this is a warning at start, ``verify`` is the check)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - tail))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return 0
    if size > tail:
        lines = lines[1:]  # the first is cut
    best = 0
    for line in lines:
        try:
            best = max(best, int(json.loads(line)["seq"]))
        except (ValueError, KeyError, TypeError):
            continue
    return best


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


# ---- verification --------------------------------------------------------------------------
@dataclass
class VerifyReport:
    records: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    checkpoints: int = 0
    #: Heads signed at flushes, in the file outside the database.
    heads: int = 0
    #: The last record a signature outside the database covers; the records after it are
    #: unvouched (written since the last flush's head, by another process, or added by someone
    #: without the key): a notice, not a failure, since a live writer signs just after writing.
    signed_seq: int = 0
    #: The first bad record's seq (None when the chain is intact).
    first_bad: int | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, seq: int | None, text: str) -> None:
        if seq is not None and (self.first_bad is None or seq < self.first_bad):
            self.first_bad = seq
        if len(self.problems) < 50:
            self.problems.append(text)
        elif len(self.problems) == 50:
            self.problems.append("… more problems not listed")

    def text(self) -> str:
        if self.ok:
            return (
                f"audit chain intact: {self.records} records, head {self.head_seq} "
                f"{self.head_hash[:16]}…, {self.checkpoints} signed checkpoints and the last of "
                f"{self.heads} signed heads verified ({self.seconds:.1f} s)"
                + self._unsigned()
            )
        first = f"first bad record: {self.first_bad}\n" if self.first_bad is not None else ""
        return (
            f"AUDIT CHAIN BROKEN: {len(self.problems)} problem(s) in {self.records} records\n"
            + first
            + "\n".join("  " + p for p in self.problems)
        )

    def _unsigned(self) -> str:
        if self.head_seq <= self.signed_seq:
            return ""
        return (f"\nnotice: records {self.signed_seq + 1}..{self.head_seq} come after the last "
                "signed head in the heads file (written since, by another process, or added "
                "without the key)")

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "records": self.records, "head_seq": self.head_seq,
            "head_hash": self.head_hash, "checkpoints": self.checkpoints, "heads": self.heads,
            "signed_seq": self.signed_seq,
            "first_bad": self.first_bad, "problems": self.problems, "seconds": round(self.seconds, 3),
        }


def read_checkpoint_file(path: Path | None) -> list[dict[str, Any]]:
    if path is None or not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"bad_line": n})
    return out


@dataclass
class SignedOutside:
    """What the file outside the database vouches for: checkpoints (line, seq, hash, signature),
    the highest signed head (line, seq, hash, time), and lines that are not valid."""

    found: bool = False
    checkpoints: list[tuple[int, int, str, str]] = field(default_factory=list)
    head: tuple[int, int, str, str] | None = None
    heads: int = 0
    problems: list[str] = field(default_factory=list)


def read_signed_file(path: Path | None, key: CheckpointKey | None) -> SignedOutside:
    """Read the checkpoint file line by line (it gains a head at every flush, so it is long:
    only checkpoints and the highest head are kept). Signatures are checked when the key is
    known; a line that fails is a problem, never a vouching."""
    out = SignedOutside()
    if path is None or not path.exists():
        return out
    out.found = True
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                seq, h, at, sig = int(e["seq"]), str(e["hash"]), str(e["at"]), str(e["signature"])
                kind = e.get("kind", "checkpoint")
            except (ValueError, KeyError, TypeError, AttributeError):
                out.problems.append(f"checkpoint file line {n} is malformed")
                continue
            if key is not None and (e.get("key_id") != key.key_id or not key.check(seq, h, at, sig)):
                out.problems.append(f"checkpoint file line {n} (record {seq}): signature invalid")
                continue
            if kind == "head":
                out.heads += 1
                if out.head is None or seq >= out.head[1]:
                    out.head = (n, seq, h, at)
            else:
                out.checkpoints.append((n, seq, h, sig))
    return out


def _fast_at(v: Any) -> str:
    """at_text for what the driver returns: a datetime, or SQLite's stored text
    ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC), converted without parsing."""
    if isinstance(v, str):
        if len(v) == 26 and v[10] == " " and v[19] == ".":
            return v[:10] + "T" + v[11:] + "Z"
        return at_text(datetime.fromisoformat(v))
    return at_text(v)


async def verify(
    sessions: async_sessionmaker[AsyncSession],
    key: CheckpointKey | None,
    checkpoint_file: Path | None = None,
) -> VerifyReport:
    """Walk the whole chain; report every changed, removed or reordered record."""
    t0 = time.perf_counter()
    rep = VerifyReport()
    async with sessions() as s:
        cps = list((await s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id))).all())
    expected: dict[int, list[tuple[str, str]]] = {}
    db_set = set()
    for cp in cps:
        at = at_text(cp.at)
        db_set.add((cp.seq, cp.hash, cp.signature))
        if key is not None:
            if cp.key_id != key.key_id:
                rep.add(None, f"checkpoint {cp.id} (record {cp.seq}) was signed with another key ({cp.key_id})")
                continue
            if not key.check(cp.seq, cp.hash, at, cp.signature):
                rep.add(None, f"checkpoint {cp.id} (record {cp.seq}): signature invalid (forged or altered)")
                continue
        expected.setdefault(cp.seq, []).append((cp.hash, f"checkpoint {cp.id}"))
        rep.checkpoints += 1
    outside = await asyncio.to_thread(read_signed_file, checkpoint_file, key)
    for text in outside.problems:
        rep.add(None, text)
    for n, seq, h, sig in outside.checkpoints:
        if (seq, h, sig) not in db_set:
            rep.add(None, f"checkpoint of record {seq} (file line {n}) is missing from the database")
        expected.setdefault(seq, []).append((h, f"checkpoint file line {n}"))
    #: The highest record signed anywhere, and by what (the tail must reach it).
    last_signed = max(((seq, f"checkpoint file line {n}") for n, seq, _h, _s in outside.checkpoints),
                      default=(0, ""))
    if outside.head is not None:
        n, seq, h, at = outside.head
        rep.heads = outside.heads
        expected.setdefault(seq, []).append((h, f"the head signed at {at} (file line {n})"))
        last_signed = max(last_signed, (seq, f"the head signed at {at} (file line {n})"))
    prev_seq, prev_hash = 0, GENESIS
    #: The last record a checkpoint vouches for (a rewrite with fresh hashes lies after it).
    vouched = 0
    from sqlalchemy import String, type_coerce

    t = AuditRecord.__table__.c
    # Raw columns, no ORM: verification reads a million rows.
    cols = [type_coerce(t.at, String) if k == "at" else t[k] for k in FIELDS] + [t.hash]
    sha256 = hashlib.sha256
    keys = FIELDS
    async with sessions() as s:
        conn = await s.connection()
        result = await conn.stream(
            select(*cols).order_by(t.seq).execution_options(yield_per=20_000)
        )
        async for part in result.partitions():
            for row in part:
                r = dict(zip(keys, row, strict=False))
                r["at"] = _fast_at(r["at"])
                stored = row[-1]
                seq = r["seq"]
                rep.records += 1
                if seq != prev_seq + 1:
                    rep.add(prev_seq + 1, f"records {prev_seq + 1}..{seq - 1} are missing (removed)"
                            if seq > prev_seq + 2 else f"record {prev_seq + 1} is missing (removed)")
                if r["prev_hash"] != prev_hash:
                    rep.add(seq, f"record {seq}: does not follow record {prev_seq} "
                                 "(a record before it was removed, changed or reordered)")
                if sha256(canonical(r)).hexdigest() != stored:
                    rep.add(seq, f"record {seq}: content does not match its hash (changed)")
                signed = expected.get(seq)
                if signed:
                    if all(want == stored for want, _src in signed):
                        vouched = seq
                    else:
                        src = next(src for want, src in signed if want != stored)
                        rep.add(vouched + 1, f"record {seq} differs from what {src} signed: records "
                                f"{vouched + 1}..{seq} were rewritten (hashes recomputed); "
                                f"record {vouched} is the last one a checkpoint vouches for")
                        vouched = seq
                prev_seq, prev_hash = seq, stored
    rep.head_seq, rep.head_hash = prev_seq, prev_hash
    rep.signed_seq = min(last_signed[0], prev_seq) if checkpoint_file is not None else prev_seq
    beyond = sorted(s for s in expected if s > prev_seq)
    if beyond:
        what = last_signed[1] if last_signed[0] == beyond[-1] else "a signed checkpoint"
        rep.add(prev_seq + 1, f"tail missing: the chain in the database ends at record {prev_seq} but "
                              f"{what} covers record {beyond[-1]}: records {prev_seq + 1}..{beyond[-1]} "
                              "were removed from the end (or the database was rolled back)")
    if checkpoint_file is not None and not outside.found and rep.records:
        rep.add(None, f"no signed heads outside the database: {checkpoint_file} is missing, so a tail "
                      "cut from the database (or a rolled-back database) would go unseen")
    rep.seconds = time.perf_counter() - t0
    return rep


# ---- queries -------------------------------------------------------------------------------
@dataclass
class AuditQuery:
    actor: str | None = None
    actor_id: int | None = None
    channel: str | None = None
    department: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[Any]:
        from sqlalchemy import or_

        c: list[Any] = []
        if self.actor:
            c.append(AuditRecord.actor == self.actor)
        if self.actor_id is not None:
            c.append(AuditRecord.actor_id == self.actor_id)
        if self.channel:
            c.append(AuditRecord.resource_id == self.channel)
        if self.department:
            c.append(
                or_(
                    AuditRecord.actor_department == self.department,
                    AuditRecord.resource_department == self.department,
                )
            )
        if self.action:
            if self.action.endswith("*"):
                c.append(AuditRecord.action.startswith(self.action[:-1], autoescape=True))
            else:
                c.append(AuditRecord.action == self.action)
        if self.outcome:
            c.append(AuditRecord.outcome == self.outcome)
        if self.since:
            c.append(AuditRecord.at >= self.since)
        if self.until:
            c.append(AuditRecord.at < self.until)
        return c


def as_dict(r: AuditRecord) -> dict[str, Any]:
    d = {f: getattr(r, f) for f in FIELDS}
    d["at"] = at_text(r.at)
    d["detail"] = json.loads(r.detail) if r.detail else None
    d["hash"] = r.hash
    return d


async def query(
    sessions: async_sessionmaker[AsyncSession], q: AuditQuery, before: int | None = None, limit: int = 100
) -> tuple[list[AuditRecord], int | None]:
    stmt = select(AuditRecord).where(*q.conditions())
    if before is not None:
        stmt = stmt.where(AuditRecord.seq < before)
    stmt = stmt.order_by(AuditRecord.seq.desc()).limit(limit + 1)
    async with sessions() as s:
        rows = list((await s.scalars(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


async def stream_records(
    sessions: async_sessionmaker[AsyncSession], q: AuditQuery, max_rows: int = 1_000_000
) -> AsyncIterator[AuditRecord]:
    stmt = (
        select(AuditRecord).where(*q.conditions()).order_by(AuditRecord.seq)
        .limit(max_rows).execution_options(yield_per=5000)
    )
    async with sessions() as s:
        result = await s.stream_scalars(stmt)
        async for r in result:
            yield r


EXPORT_COLUMNS = [f for f in FIELDS if f != "prev_hash"] + ["prev_hash", "hash"]


def _export_value(v: Any, xlsx: bool) -> Any:
    if isinstance(v, dict):
        v = _dumps(v)  # the canonical text that was hashed, so the export's hashes can be checked
    elif v is None:
        return None if xlsx else ""
    # User names of failed logins, paths, purposes are chosen by whoever asks: text that a
    # spreadsheet would evaluate is escaped (the one rule of every export, registry.spreadsheet).
    return safe_cell(v, xlsx=xlsx)


def csv_line(values: Iterable[Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([_export_value(v, False) for v in values])
    return buf.getvalue()


def xlsx_row(d: Mapping[str, Any]) -> list[Any]:
    """One record (``as_dict``) as the cells of an xlsx export row, in EXPORT_COLUMNS order."""
    return [_export_value(d[c], True) for c in EXPORT_COLUMNS]


async def transparency(
    sessions: async_sessionmaker[AsyncSession],
    by: str,
    key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    top: int = 100,
    owner_department: str | None = None,
) -> list[dict[str, Any]]:
    """Per camera (``by="channel"``) or per owning department (``by="department"``): how often it
    was viewed (live, playback, download, snapshot) and by whom."""
    col = AuditRecord.resource_id if by == "channel" else AuditRecord.resource_department
    c: list[Any] = [AuditRecord.action.in_(VIEW_ACTIONS), AuditRecord.outcome == "ok", col.is_not(None)]
    if key is not None:
        c.append(col == key)
    if owner_department is not None:
        c.append(AuditRecord.resource_department == owner_department)
    if since:
        c.append(AuditRecord.at >= since)
    if until:
        c.append(AuditRecord.at < until)
    stmt = (
        select(col, AuditRecord.actor, AuditRecord.actor_department, AuditRecord.action,
               func.count(), func.max(AuditRecord.at))
        .where(*c)
        .group_by(col, AuditRecord.actor, AuditRecord.actor_department, AuditRecord.action)
    )
    async with sessions() as s:
        rows = (await s.execute(stmt)).all()
    out: dict[str, dict[str, Any]] = {}
    for k, actor, dept, action, n, last in rows:
        if k in (None, ""):
            continue
        e = out.setdefault(str(k), {by: str(k), "views": 0, "by_action": {}, "viewers": {}})
        e["views"] += n
        e["by_action"][action] = e["by_action"].get(action, 0) + n
        v = e["viewers"].setdefault(actor, {"user": actor, "department": dept, "views": 0, "last": None})
        v["views"] += n
        lt = at_text(last) if last is not None else None
        if lt and (v["last"] is None or lt > v["last"]):
            v["last"] = lt
    items = sorted(out.values(), key=lambda e: (-e["views"], e[by]))[:top]
    for e in items:
        e["viewers"] = sorted(e["viewers"].values(), key=lambda v: (-v["views"], v["user"]))
    return items
