"""`make bench`: every scenario against Notifier and the tutorial baseline, then the table.

    python -m bench [--quick] [--only S2,S3] [--profile S2,S3] [--output-dir bench/results]
                    [--postgres-workers 2]

Each scenario runs against a fresh `notifier serve` (SQLite, one process) and a fresh
baseline, one after the other, each pinned to core 0 while the load generator runs in
its own process on core 1. S2 and S3 also run on PostgreSQL + Redis (the services on
127.0.0.1, see bench/postgres.py), on a database created for the run and dropped after,
counting the connections the server opened; PostgreSQL and Redis are not pinned.
Writes `bench/results/<date>.json` (`<date>-quick.json` for
--quick) and prints a Markdown table with Notifier, baseline and their ratio.
"""

import argparse
import os
import platform
import resource
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import profile, report
from bench.postgres import BenchDatabase
from bench.servers import (
    ADMIN,
    ROOT,
    USER_PASSWORD,
    USER_PREFIX,
    Template,
    baseline_server,
    notifier_server,
    pinning,
)

LOADGEN_TIMEOUT = 300.0


@dataclass(frozen=True)
class ServerConfig:
    label: str
    kind: str  # "notifier" | "baseline"
    env: dict[str, str] = field(default_factory=dict)
    per_message_deflate: bool = False
    backend: str = "sqlite"  # "sqlite" (memory broker) | "postgres" (+ Redis)
    args: tuple[str, ...] = ()


NOTIFIER = ServerConfig("notifier", "notifier")
BASELINE = ServerConfig("baseline", "baseline")
# Tutorials run `uvicorn.run(app)`, whose default negotiates permessage-deflate whenever a
# browser offers it; Notifier keeps it off unless NOTIFIER_WS_PER_MESSAGE_DEFLATE is set.
BASELINE_DEFLATE = ServerConfig("baseline (uvicorn default: deflate on)", "baseline", {}, True)
NOTIFIER_DEFLATE = ServerConfig(
    "deflate on", "notifier", {"NOTIFIER_WS_PER_MESSAGE_DEFLATE": "true"}
)
POSTGRES = ServerConfig(report.POSTGRES_LABEL, "notifier", backend="postgres")


def postgres_workers(workers: int) -> ServerConfig:
    return ServerConfig(
        f"{report.POSTGRES_LABEL}, {workers} workers",
        "notifier",
        backend="postgres",
        args=("--workers", str(workers)),
    )


@dataclass(frozen=True)
class Scenario:
    key: str
    """The name in the table."""
    short: str
    """What --only and --profile match (by prefix): S1, S1-deflate, S2, S3-1k, S3-10k, S4, S5."""
    function: str
    users: int
    params: dict[str, Any]
    servers: tuple[ServerConfig, ...] = (NOTIFIER, BASELINE)
    rows: list[report.Row] = field(default_factory=list)
    compare: report.Getter | None = None
    """The figure PostgreSQL + Redis runs are compared on with SQLite (`vs_sqlite`)."""


def plan(quick: bool, postgres_worker_counts: list[int] | None = None) -> list[Scenario]:
    """Full counts follow the issue; --quick keeps every scenario with smaller counts."""
    on_postgres = (
        NOTIFIER,
        POSTGRES,
        *(postgres_workers(n) for n in postgres_worker_counts or []),
        BASELINE,
    )
    sizes = [500] if quick else [1000, 5000, 10000]
    # Per-socket RSS is flat from 1,000 sockets on; 5,000 keeps the full run under 10 min.
    deflate_sizes = [500] if quick else [1000, 5000]
    rates = [100, 500] if quick else [200, 500, 1000, 1500, 2000, 2500, 3000, 4000]
    shown_rates = rates if quick else [200, 1000, 2000]
    users = 300 if quick else 1000
    s1_plain, s1_deflate = "S1 sockets", "S1 sockets, client offers deflate"
    s3_small = f"S3 broadcast, {500 if quick else 1000:,} sockets"
    s3_large = "S3 broadcast, 10,000 sockets"
    deflate_servers = (NOTIFIER, BASELINE_DEFLATE)
    if not quick:
        deflate_servers = (NOTIFIER, NOTIFIER_DEFLATE, BASELINE_DEFLATE)
    scenarios = [
        Scenario(
            s1_plain,
            "S1",
            "s1_sockets",
            max(sizes),
            {"sizes": sizes, "offer_deflate": False},
            rows=report.s1_rows(s1_plain, sizes),
        ),
        Scenario(
            s1_deflate,
            "S1-deflate",
            "s1_sockets",
            max(deflate_sizes),
            {"sizes": deflate_sizes, "offer_deflate": True},
            deflate_servers,
            rows=report.s1_rows(s1_deflate, deflate_sizes),
        ),
        Scenario(
            "S2 targeted",
            "S2",
            "s2_targeted",
            users,
            {
                "users": users,
                "rates": rates,
                "step_seconds": 1 if quick else 4,
                "flat_seconds": 1 if quick else 5,
                "flat_concurrency": 32,
                "warm_seconds": 0.5 if quick else 1,
            },
            on_postgres,
            rows=report.s2_rows(shown_rates) + report.postgres_rows("S2 targeted", "flat out"),
            compare=report.dig("flat", "throughput"),
        ),
        Scenario(
            s3_small,
            "S3-1k",
            "s3_broadcast",
            500 if quick else 1000,
            {
                "users": 500 if quick else 1000,
                "sequential": 3 if quick else 20,
                "burst": 5 if quick else 30,
            },
            on_postgres,
            rows=report.s3_rows(s3_small) + report.postgres_rows(s3_small, "deliveries/s"),
            compare=report.dig("back_to_back", "deliveries_per_s"),
        ),
    ]
    if not quick:
        scenarios.append(
            Scenario(
                s3_large,
                "S3-10k",
                "s3_broadcast",
                10000,
                {"users": 10000, "sequential": 5, "burst": 5},
                on_postgres,
                rows=report.s3_rows(s3_large) + report.postgres_rows(s3_large, "deliveries/s"),
                compare=report.dig("back_to_back", "deliveries_per_s"),
            )
        )
    scenarios += [
        Scenario(
            "S4 slow consumers",
            "S4",
            "s4_slow_consumers",
            users,
            {
                "users": users,
                "rate": 100 if quick else 200,
                "feed_per_second": 30 if quick else 32,
                "phase_seconds": 1.5 if quick else 15,
                "resume_seconds": 1.5 if quick else 10,
                "post_timeout": 3 if quick else 5,
            },
            rows=report.s4_rows(),
        ),
        Scenario(
            "S5 reconnect storm",
            "S5",
            "s5_reconnect_storm",
            users,
            {
                "users": users,
                "rate": 100 if quick else 200,
                "before_seconds": 0.5 if quick else 3,
                "away_seconds": 0.5 if quick else 1,
                "after_seconds": 0.5 if quick else 3,
                "drain_seconds": 1.5 if quick else 5,
            },
            rows=report.s5_rows(),
        ),
    ]
    return scenarios


def raise_file_limit() -> None:
    # 10,000 sockets on each side: servers and load generator inherit this limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_loadgen(spec: dict[str, Any], directory: Path) -> dict[str, Any]:
    spec_path, result_path = directory / "spec.json", directory / "result.json"
    spec_path.write_bytes(orjson.dumps(spec))
    _, loadgen_pin = pinning()
    completed = subprocess.run(
        [*loadgen_pin, sys.executable, "-m", "bench.loadgen", str(spec_path), str(result_path)],
        cwd=ROOT,
        timeout=LOADGEN_TIMEOUT,
        capture_output=True,
    )
    if completed.returncode != 0 or not result_path.exists():
        return {"error": completed.stderr.decode(errors="replace")[-3000:]}
    return orjson.loads(result_path.read_bytes())


def run_one(
    scenario: Scenario,
    config: ServerConfig,
    template: Template,
    workdir: Path,
    profile_dir: Path | None,
) -> dict[str, Any]:
    directory = workdir / f"{scenario.key}-{config.label}".replace(" ", "_").replace("/", "_")
    database: BenchDatabase | None = None
    if config.backend == "postgres":
        database = BenchDatabase.create()
        try:
            database.seed(template, scenario.users, directory.with_name(directory.name + "-seed"))
            sessions_before = database.sessions()
        except BaseException:
            database.drop()
            raise
    if config.kind == "notifier":
        env = {**config.env, **(database.server_env() if database else {})}
        server = notifier_server(
            template, directory, scenario.users, config.label, env, config.args
        )
    else:
        server = baseline_server(
            template.secret_key, directory, config.label, config.per_message_deflate
        )
    load_before = loadavg()
    started = time.monotonic()
    profiler = None
    extra: dict[str, Any] = {}
    try:
        server.start()
        if config.kind == "notifier":
            extra["seeded_user_login_status"] = server.login(f"{USER_PREFIX}00000", USER_PASSWORD)
        if profile_dir is not None:
            profile_path = profile_dir / f"{directory.name}.txt"
            profiler = profile.start(server.pid, profile_path)
        spec = {
            "target": config.kind,
            "host": "127.0.0.1",
            "port": server.port,
            "server_pid": server.pid,
            "secret_key": template.secret_key,
            "admin": ADMIN,
            "user_prefix": USER_PREFIX,
            "users": scenario.users,
            "scenario": scenario.function,
            "params": scenario.params,
        }
        try:
            result = run_loadgen(spec, directory)
        except subprocess.TimeoutExpired:
            result = {"error": f"load generator timed out after {LOADGEN_TIMEOUT} s"}
        if profiler is not None:
            messages = profile.stop(profiler)
            if profile_path.exists():
                summary = profile.summarize(profile_path)
                extra["profile"] = {"file": str(profile_path), **summary}
                print(profile.as_text(summary, f"profile {scenario.key} / {config.label}"))
            else:
                extra["profile"] = {"error": messages[-2000:]}
        if database is not None:
            # The pool's backends live through the run: their CPU is the database's share.
            extra["database"] = {"backends_cpu_s": round(database.backends_cpu_seconds(), 2)}
    finally:
        if profiler is not None and profiler.poll() is None:
            profile.stop(profiler)
        server.stop()
        if database is not None:
            try:
                if "database" in extra:
                    extra["database"]["sessions"] = database.sessions() - sessions_before
            finally:
                database.drop()
    if "error" in result:
        result["server_log"] = server.log_tail()
    result.update(extra)
    result["loadavg_before"] = load_before
    result["loadavg_after"] = loadavg()
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def _server_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        name: version(name)
        for name in ("notifier", "fastapi", "starlette", "uvicorn", "websockets", "sqlalchemy")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Notifier vs the tutorial FastAPI server.")
    parser.add_argument("--quick", action="store_true", help="smaller counts (< 1 minute)")
    parser.add_argument(
        "--only", default="", help="scenarios to run, e.g. S2,S3 or S3-1k (prefixes of their ids)"
    )
    parser.add_argument(
        "--profile", default="", help="scenario prefixes whose Notifier server py-spy records"
    )
    parser.add_argument("--output-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--postgres-workers",
        default="",
        help="also run S2 and S3 on PostgreSQL + Redis with `serve --workers N`, e.g. 2",
    )
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.postgres_workers.split(",") if n.strip()]
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    profiled = [p.strip() for p in args.profile.split(",") if p.strip()]

    raise_file_limit()
    started = time.monotonic()
    now = datetime.now(UTC)
    command = "python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    header_load = loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="notifier-bench-"))
    template = Template(workdir / "template", secrets.token_urlsafe(48))
    template.prepare()
    profile_dir = args.output_dir / "profiles" if profiled else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)

    scenarios = [
        s for s in plan(args.quick, worker_counts) if not only or s.short.startswith(tuple(only))
    ]
    results: dict[str, dict[str, Any]] = {}
    rows: list[report.Row] = []
    try:
        for scenario in scenarios:
            rows += scenario.rows
            results[scenario.key] = {}
            wants_profile = bool(profiled) and scenario.short.startswith(tuple(profiled))
            for config in scenario.servers:
                result = run_one(
                    scenario,
                    config,
                    template,
                    workdir,
                    profile_dir if wants_profile and config.kind == "notifier" else None,
                )
                results[scenario.key][config.label] = result
                if config.backend == "postgres" and scenario.compare is not None:
                    result["vs_sqlite"] = report.ratio_of(
                        scenario.compare(result),
                        scenario.compare(results[scenario.key]["notifier"]),
                    )
                state = "FAILED: " + result["error"][-300:] if "error" in result else "done"
                print(
                    f"[{time.monotonic() - started:6.1f}s] {scenario.key} / {config.label}: "
                    f"{state} ({result['seconds']} s, load {result['loadavg_after']})",
                    flush=True,
                )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    rows += report.loadgen_rows([s.key for s in scenarios])
    lines = report.table(rows, results)
    header = [
        f"Notifier vs the tutorial FastAPI baseline — {now:%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}",
        f"Command: `{command}` (make bench{'-quick' if args.quick else ''}); "
        f"server pinned to core 0, load generator to core 1: {'yes' if pinning()[0] else 'no'}; "
        f"load average at start {header_load}, at end {loadavg()}; "
        f"took {time.monotonic() - started:.0f} s",
    ]
    markdown = report.markdown(lines, header)
    document = {
        "date": now.isoformat(),
        "command": command,
        "quick": args.quick,
        "cores": os.cpu_count(),
        "pinned": bool(pinning()[0]),
        "loadavg_start": header_load,
        "loadavg_end": loadavg(),
        "seconds": round(time.monotonic() - started, 1),
        "python": platform.python_version(),
        "versions": _server_versions(),
        "scenarios": {
            s.key: {
                "function": s.function,
                "users": s.users,
                "params": s.params,
                "servers": [asdict(c) for c in s.servers],
            }
            for s in scenarios
        },
        "results": results,
        "table": lines,
        "markdown": markdown,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    name = f"{now:%Y-%m-%d}{'-quick' if args.quick else ''}.json"
    (args.output_dir / name).write_bytes(
        orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str)
    )
    print()
    print(markdown)
    print(f"\nWritten to {args.output_dir / name}")
    failed = [k for k, runs in results.items() for r in runs.values() if "error" in r]
    if failed:
        print(f"Scenarios that failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)
