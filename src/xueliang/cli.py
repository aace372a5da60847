"""The ``xueliang`` command."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from xueliang.config import ConfigError, Settings, load_settings, unknown_env_names

app = typer.Typer(
    help="xueliang: public-safety video networking platform (GB/T 28181).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database.", no_args_is_help=True)
survey_app = typer.Typer(help="Survey forms (摸底调查表 / 摸底汇总表).", no_args_is_help=True)
channels_app = typer.Typer(help="Channel lists (点位清单).", no_args_is_help=True)
divisions_app = typer.Typer(help="Administrative divisions (行政区划) and grids (网格).", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log (审计): verify the chain, sign checkpoints.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(survey_app, name="survey")
app.add_typer(channels_app, name="channels")
app.add_typer(divisions_app, name="divisions")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
health_app = typer.Typer(help="Health of the cameras: picture diagnosis (视频质量诊断).", no_args_is_help=True)
app.add_typer(health_app, name="health")
export_app = typer.Typer(help="Evidence exports (证据导出): check one offline.", no_args_is_help=True)
app.add_typer(export_app, name="export")
map_app = typer.Typer(help="The offline map (一张图): division boundaries, the demo's basemap.", no_args_is_help=True)
app.add_typer(map_app, name="map")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file", exists=False)
]
T = TypeVar("T")


def run_loop(main: Any) -> Any:
    """Run the server's event loop: uvloop when installed (it comes with uvicorn[standard]) —
    several times cheaper per datagram than the stock loop, which SIP and RTP live on."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from xueliang.access.redact import install

    install()
    # a misspelt variable would leave its setting at the default without a word
    for name in unknown_env_names(os.environ):
        logging.getLogger("xueliang.config").warning(
            "environment variable %s names no setting and is ignored (docs/operations.md, Configuration)", name)


async def _with_platform(settings: Settings, fn: Callable[[Any], Awaitable[T]]) -> T:
    from xueliang.app import Platform

    platform = Platform(settings)
    try:
        await platform.migrate()
        return await fn(platform)
    finally:
        await platform.engine.dispose()


@app.command()
def serve(
    config: ConfigOpt = None,
    role: Annotated[
        list[str] | None,
        typer.Option(help="api, signalling, media, worker or all (repeatable; default: cluster.roles)"),
    ] = None,
) -> None:
    """Run the platform: API, signalling and media; or, in a cluster, this node's roles."""
    overrides: dict[str, Any] = {}
    if role:
        base = _settings(config)
        overrides["cluster"] = {**base.cluster.model_dump(), "roles": role}
    settings = _settings(config, **overrides)
    _logging(settings)
    from xueliang.server import run

    run_loop(run(settings))


@app.command()
def demo(
    config: ConfigOpt = None,
    fresh: Annotated[bool, typer.Option(help="Start from an empty demo database")] = False,
    devices: Annotated[
        bool, typer.Option(help="Run simulated devices so cameras come online")
    ] = True,
) -> None:
    """Run the platform with a generated fictional city on the embedded defaults."""
    settings = _settings(config)
    _logging(settings)
    from xueliang.demo import run_demo

    run_loop(run_demo(settings, fresh=fresh, simulate=devices))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def simulate(ctx: typer.Context) -> None:
    """Run simulated GB/T 28181 devices: --server HOST:PORT --devices N --channels M (see --help)."""
    from xueliang.sim.__main__ import main as sim_main

    sim_main(list(ctx.args))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, revision: str = "head") -> None:
    """Apply database migrations, then load the national division list if it is not loaded yet."""
    settings = _settings(config)
    if revision != "head":
        from xueliang.db.migrate import upgrade

        upgrade(settings.database.url, revision)
        typer.echo(f"database at {revision}")
        return

    async def run() -> str:
        # the schema and the list only: no platform (no keys or files made under var/)
        from xueliang.db.engine import create_engine, session_factory
        from xueliang.db.migrate import upgrade_async
        from xueliang.registry import divisions as dv

        await upgrade_async(settings.database.url)
        engine = create_engine(settings.database.url, connect_timeout=settings.database.connect_timeout)
        try:
            sessions = session_factory(engine)
            try:
                rep = await dv.ensure_national(sessions)
            except dv.DivisionListMissing as exc:
                typer.echo(f"warning: {exc}", err=True)
            else:
                if rep is not None:
                    typer.echo(rep.text())
            return str(await dv.loaded_version(sessions) or "none")
        finally:
            await engine.dispose()

    version = asyncio.run(run())
    typer.echo(f"database at {revision}; national division list: {version}")


@divisions_app.command("load")
def divisions_load(
    config: ConfigOpt = None,
    file: Annotated[
        Path | None,
        typer.Option(help="a newer list than the shipped one: csv (code,name; UTF-8 or GBK, may be gzip'd)"),
    ] = None,
    version: Annotated[str | None, typer.Option(help="the --file list's version, recorded with it")] = None,
    villages: Annotated[
        str | None, typer.Option(help="load the shipped villages (村/社区) under this division code")
    ] = None,
) -> None:
    """Load the national division list (idempotent): new codes added, changed names updated,
    codes the list no longer holds kept and marked historical."""
    settings = _settings(config)
    from xueliang.registry import divisions as dv

    async def run(p: Any) -> Any:
        if villages:
            return await dv.load_villages(p.sessions, villages)
        if file is not None:
            rows = dv.read_list_file(_read_file(file))
            return await dv.load_list(
                p.sessions, rows, version=version or file.name, source=f"file:{file.name}"
            )
        lst = dv.shipped()
        return await dv.load_list(
            p.sessions, lst.rows(), version=lst.version, source=lst.source, historical=lst.historical()
        )

    try:
        rep = asyncio.run(_with_platform(settings, run))
    except (ValueError, dv.DivisionListMissing) as exc:
        typer.echo(f"error: {exc}; nothing was loaded", err=True)
        raise typer.Exit(1) from exc
    typer.echo(rep.text())


@divisions_app.command("grids")
def divisions_grids(file: Path, config: ConfigOpt = None, dry_run: bool = False) -> None:
    """Import the city's grid list (网格): 网格编码, 网格名称, 所属区划代码, 边界 (GeoJSON). All rows or none."""
    settings = _settings(config)
    from xueliang.registry.grids import import_grids

    data = _read_file(file)
    report = asyncio.run(
        _with_platform(settings, lambda p: import_grids(p.sessions, data, file.name, dry_run=dry_run))
    )
    _print_report(report)


@map_app.command("load-divisions")
def map_load_divisions(file: Path, config: ConfigOpt = None, dry_run: bool = False) -> None:
    """Load division boundaries from a GeoJSON FeatureCollection (each feature: a registered
    division's code, its Polygon or MultiPolygon). All features or none, with a report."""
    settings = _settings(config)
    data = _read_file(file)
    report = asyncio.run(_with_platform(
        settings, lambda p: p.maps.load_divisions(data, file.name, dry_run=dry_run)))
    _print_report(report)


@map_app.command("demo-basemap")
def map_demo_basemap(out: Path, raster: Annotated[bool, typer.Option(
        "--raster", help="PNG tiles drawn with Pillow instead of vector tiles")] = False) -> None:
    """Write the demo city's basemap (MBTiles, vector tiles) to OUT: what `xueliang demo` serves."""
    from xueliang.maps import basemap, vectormap
    from xueliang.sim import city

    figures = (basemap if raster else vectormap).generate(out, city.generate().divisions)
    typer.echo(f"{out}: {figures['tiles']:.0f} tiles, {figures['bytes'] / 1e6:.1f} MB in {figures['seconds']} s")


@divisions_app.command("status")
def divisions_status(config: ConfigOpt = None) -> None:
    """Which national list is loaded and shipped, and how many divisions of each kind."""
    settings = _settings(config)
    from sqlalchemy import func, select

    from xueliang.db.tables import Division
    from xueliang.registry import divisions as dv

    async def run(p: Any) -> list[str]:
        async with p.sessions() as s:
            counts = (
                await s.execute(
                    select(Division.level, Division.source, Division.historical, func.count())
                    .group_by(Division.level, Division.source, Division.historical)
                    .order_by(Division.level, Division.source, Division.historical)
                )
            ).all()
        lines = [f"loaded: {await dv.loaded_version(p.sessions)}"]
        try:
            lines.append(f"shipped: {dv.shipped().version}")
        except dv.DivisionListMissing as exc:
            lines.append(f"shipped: none ({exc})")
        lines += [f"  {lvl:9} {src:9} {'historical' if h else 'current':10} {n}" for lvl, src, h, n in counts]
        return lines

    typer.echo("\n".join(asyncio.run(_with_platform(settings, run))))


def _print_report(report: Any) -> None:
    typer.echo(report.text())
    if not report.ok:
        raise typer.Exit(1)


@survey_app.command("import")
def survey_import(
    file: Path,
    config: ConfigOpt = None,
    department: Annotated[
        str | None, typer.Option(help="主管部门, if the file has no title line")
    ] = None,
    dry_run: bool = False,
) -> None:
    """Import a survey form or summary table (xlsx or csv). All rows or none."""
    settings = _settings(config)
    from xueliang.registry.survey import import_survey

    data = _read_file(file)
    report = asyncio.run(
        _with_platform(
            settings,
            lambda p: import_survey(p.sessions, data, file.name, department, dry_run=dry_run),
        )
    )
    _print_report(report)


@survey_app.command("export")
def survey_export(
    file: Path,
    config: ConfigOpt = None,
    department: str | None = None,
    summary: Annotated[bool, typer.Option(help="Write the summary table (摸底汇总表)")] = False,
) -> None:
    """Export the survey form (or the summary table) as xlsx or csv."""
    settings = _settings(config)
    from xueliang.registry.survey import export_summary, export_survey

    fn = export_summary if summary else export_survey
    asyncio.run(_with_platform(settings, lambda p: fn(p.sessions, file, department)))
    typer.echo(f"wrote {file}")


@channels_app.command("import")
def channels_import(file: Path, config: ConfigOpt = None, dry_run: bool = False) -> None:
    """Import a channel list (点位清单). All rows or none."""
    settings = _settings(config)
    from xueliang.registry.channel_list import import_channels

    data = _read_file(file)
    report = asyncio.run(
        _with_platform(
            settings, lambda p: import_channels(p.sessions, data, file.name, dry_run=dry_run)
        )
    )
    _print_report(report)


@channels_app.command("export")
def channels_export(file: Path, config: ConfigOpt = None) -> None:
    """Export the channel list as xlsx or csv."""
    settings = _settings(config)
    from xueliang.registry.channel_list import export_channels

    n = asyncio.run(_with_platform(settings, lambda p: export_channels(p.sessions, file)))
    typer.echo(f"wrote {n} channels to {file}")


@app.command()
def report(
    kind: Annotated[str, typer.Argument(help="daily, weekly or monthly (日统计、周通报、月分析)")],
    date_: Annotated[str, typer.Option("--date", help="YYYY-MM-DD: the day, a day of the week, of the month")],
    out: Annotated[Path, typer.Option("--out", help="the file: .xlsx or .pdf")],
    config: ConfigOpt = None,
) -> None:
    """Write a daily, weekly or monthly report of availability, intact rate and tickets."""
    from datetime import date

    from xueliang.health.reports import KINDS, generate

    if kind not in KINDS:
        typer.echo(f"error: the kind is one of {', '.join(KINDS)}", err=True)
        raise typer.Exit(2)
    try:
        day = date.fromisoformat(date_)
    except ValueError:
        typer.echo(f"error: --date must be YYYY-MM-DD, got {date_!r}", err=True)
        raise typer.Exit(2) from None
    if out.suffix.lower() not in (".xlsx", ".pdf"):
        typer.echo("error: --out must end in .xlsx or .pdf", err=True)
        raise typer.Exit(2)
    settings = _settings(config)
    data = asyncio.run(_with_platform(settings, lambda p: generate(p.sessions, settings.health, kind, day, out)))
    if data.empty:
        typer.echo(f"no data for {data.start} — {data.end}: the report says so")
    typer.echo(f"wrote {out}")


@health_app.command("diagnose")
def health_diagnose(
    source: Annotated[str, typer.Argument(help="a video file, an rtsp:// URL, or a channel ID on the running platform")],
    reference: Annotated[Path | None, typer.Option("--reference", help="the camera's reference picture (基准图)")] = None,
    seconds: Annotated[float, typer.Option("--seconds", min=0.0, help="the sample spans this long")] = 3.0,
    frames: Annotated[int, typer.Option("--frames", min=1, max=50, help="frames in the sample")] = 4,
    api: Annotated[str, typer.Option("--api", envvar="XUELIANG_API_URL", help="the platform, for a channel ID")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option("--token", envvar="XUELIANG_TOKEN", help="an API token, for a channel ID")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Diagnose a camera's picture: which of the ten faults it shows, with their scores.

    Exit status 0 when diagnosed (with or without faults); 2 when the source or the reference
    cannot be read.
    """
    import json
    import re

    from xueliang.diagnosis.detectors import Reference, diagnose
    from xueliang.diagnosis.faults import FAULTS
    from xueliang.diagnosis.source import SourceError, read_image, read_sample

    headers: dict[str, str] = {}
    if re.fullmatch(r"\d{20}", source):
        if not token:
            typer.echo("error: a channel ID needs --token (or XUELIANG_TOKEN) for the platform's API", err=True)
            raise typer.Exit(2)
        headers["Authorization"] = f"Bearer {token}"
        source = f"{api.rstrip('/')}/api/v1/channels/{source}/live.flv"
    try:
        ref = Reference(read_image(reference)) if reference is not None else None
        sample = read_sample(source, seconds=seconds, count=frames, headers=headers)
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not sample:
        typer.echo(f"error: {source}: no frame could be decoded", err=True)
        raise typer.Exit(2)
    d = diagnose(sample, ref)
    if as_json:
        typer.echo(json.dumps(d.to_json(), ensure_ascii=False))
        return
    typer.echo(f"{len(sample)} frames, {d.profile} profile")
    for code in d.faults:
        typer.echo(f"  {code} ({FAULTS[code]}): {d.scores[code]:.2f}, {d.severities[code]}")
    if not d.faults:
        typer.echo("  no fault")


def _read_file(file: Path) -> bytes:
    from xueliang.registry.spreadsheet import MAX_IMPORT_BYTES

    if not file.is_file():
        typer.echo(f"error: {file} not found", err=True)
        raise typer.Exit(2)
    size = file.stat().st_size
    if size > MAX_IMPORT_BYTES:
        typer.echo(
            f"{file.name}: NOT imported: the file is {size / 1e6:.1f} MB; imports are limited to "
            f"{MAX_IMPORT_BYTES // (1024 * 1024)} MB; the database is unchanged",
            err=True,
        )
        raise typer.Exit(1)
    return file.read_bytes()


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[
        str,
        typer.Option(
            help="administrator, operator, department_user, maintainer, supervisor, auditor, resident, grid_member, agency, system"
        ),
    ],
    config: ConfigOpt = None,
    department: str | None = None,
    division: str | None = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Add a user. The password comes from a prompt, or standard input with --password-stdin."""
    settings = _settings(config)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            typer.echo("error: passwords differ", err=True)
            raise typer.Exit(2)
    from xueliang.errors import DomainError

    try:
        asyncio.run(
            _with_platform(
                settings,
                lambda p: p.users.create(
                    name, password, role, department=department, division_code=division
                ),
            )
        )
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"user {name} ({role}) added")


def _audit_key(settings: Settings) -> Any:
    from xueliang.access.audit import CheckpointKey
    from xueliang.access.service import key_path

    try:
        return CheckpointKey.load(key_path(settings), create=False)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"warning: {exc}: checkpoint signatures cannot be checked", err=True)
        return None


@audit_app.command("verify")
def audit_verify(config: ConfigOpt = None) -> None:
    """Walk the whole audit chain and its signed checkpoints; name the first bad record.

    Exit status 0: intact; 1: changed, removed or reordered records (or bad checkpoints).
    """
    settings = _settings(config)
    from xueliang.access.audit import verify
    from xueliang.access.service import checkpoint_path

    key = _audit_key(settings)
    rep = asyncio.run(
        _with_platform(settings, lambda p: verify(p.sessions, key, checkpoint_path(settings)))
    )
    typer.echo(rep.text())
    if not rep.ok:
        raise typer.Exit(1)
    if key is None:
        raise typer.Exit(2)


@audit_app.command("checkpoint")
def audit_checkpoint(config: ConfigOpt = None) -> None:
    """Sign the audit chain's current head with the audit key (kept outside the database)."""
    settings = _settings(config)
    from xueliang.access.audit import AuditLog, CheckpointKey
    from xueliang.access.service import checkpoint_path, key_path

    key = CheckpointKey.load(key_path(settings))

    async def run(p: Any) -> dict[str, Any]:
        return await AuditLog(p.sessions, key, checkpoint_file=checkpoint_path(settings)).checkpoint()

    cp = asyncio.run(_with_platform(settings, run))
    typer.echo(f"checkpoint: record {cp['seq']} hash {cp['hash']} at {cp['at']} (key {cp['key_id']})")


@export_app.command("verify")
def export_verify(
    path: Annotated[Path, typer.Argument(help="the export's folder (its MP4s, manifest.json, manifest.sig)")],
    key: Annotated[Path | None, typer.Option(help="the platform's public key (PEM) to trust; default: the "
                                                  "folder's public-key.pem")] = None,
) -> None:
    """Check an evidence export offline: the signature over manifest.json, then every file.

    Exit status 0: intact; 1: a file changed, missing or added, or a bad signature (named).
    """
    from xueliang.evidence.verify import verify_export

    verdict = verify_export(path, key.read_bytes() if key is not None else None)
    typer.echo(verdict.text(), err=not verdict.ok)
    if not verdict.ok:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
