"""The Markdown table printed at the end of `make bench`: Notifier, baseline, ratio, target."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Result = dict[str, Any]
Getter = Callable[[Result], Any]


@dataclass(frozen=True)
class Row:
    scenario: str
    metric: str
    get: Getter
    target: str = ""
    ratio_goal: Callable[[float], bool] | None = None
    """When set, whether the Notifier / baseline ratio meets the issue's target."""
    value_goal: Callable[[float], bool] | None = None
    """When set, whether the value itself meets the issue's target."""
    only_postgres: bool = False
    """Shown for the PostgreSQL + Redis runs only."""


POSTGRES_LABEL = "postgres + redis"
POOL_SIZE = 20
"""NOTIFIER_DATABASE_POOL_SIZE's default, which the bench servers run with."""


def _dig(result: Result, *path: Any) -> Any:
    value: Any = result
    for key in path:
        if value is None:
            return None
        if isinstance(key, int):
            value = value[key] if isinstance(value, list) and len(value) > key else None
        else:
            value = value.get(key) if isinstance(value, dict) else None
    return value


def dig(*path: Any) -> Getter:
    return lambda result: _dig(result, *path)


def _step(result: Result, sockets: int) -> Result | None:
    for step in result.get("steps", []):
        if step.get("sockets") == sockets:
            return step
    return None


def s1_rows(key: str, sizes: list[int]) -> list[Row]:
    rows = []
    for size in sizes:
        step = lambda r, n=size: _step(r, n) or {}  # noqa: E731
        rows += [
            Row(
                key,
                f"{size:,} sockets: connect rate (/s)",
                lambda r, s=step: s(r).get("connect_rate"),
            ),
            Row(
                key,
                f"{size:,} sockets: RSS per socket (KiB)",
                lambda r, s=step: s(r).get("rss_per_socket_kib"),
                "<= 0.75x",
                lambda ratio: ratio <= 0.75,
            ),
            Row(
                key,
                f"{size:,} sockets: all received a notification after",
                lambda r, s=step: _received(s(r).get("check")),
                "all",
            ),
        ]
    return rows


def _received(check: Result | None) -> str | None:
    if not check:
        return None
    return f"{check['received']}/{check['open_sockets']}"


def _s2_step(result: Result, rate: int, field: str) -> Any:
    for step in result.get("steps", []):
        if step.get("offered_rate") == rate:
            return step.get(field)
    return None


def s2_rows(rates: list[int]) -> list[Row]:
    key = "S2 targeted"
    rows = [
        Row(
            key,
            "highest rate held, p99 < 100 ms, no loss (POST/s)",
            dig("highest_held_rate"),
            ">= 1x",
            lambda ratio: ratio >= 1.0,
        ),
        Row(key, "flat out (POST/s)", dig("flat", "throughput")),
        Row(key, "flat out p50 / p99 (ms)", lambda r: _pair(_dig(r, "flat"))),
        Row(key, "server CPU per POST, flat out (µs)", dig("flat", "server_cpu_per_post_us")),
    ]
    for rate in rates:
        rows.append(
            Row(
                key,
                f"{rate}/s: p50 / p99 / max (ms)",
                lambda r, n=rate: _triple(
                    {f: _s2_step(r, n, f) for f in ("p50_ms", "p99_ms", "max_ms")}
                ),
            )
        )
    rows.append(
        Row(
            key,
            "lost / duplicated / wrong user",
            lambda r: f"{_lost(r)} / {r.get('duplicates')} / {r.get('wrong_user')}",
            "0 / 0 / 0",
        )
    )
    return rows


def _lost(result: Result) -> int:
    return sum(step.get("lost", 0) for step in result.get("steps", [])) + (
        _dig(result, "flat", "lost") or 0
    )


def _pair(summary: Result | None) -> str | None:
    if not summary or summary.get("p50_ms") is None:
        return None
    return f"{summary['p50_ms']:.1f} / {summary['p99_ms']:.1f}"


def _triple(summary: Result | None) -> str | None:
    if not summary or summary.get("p50_ms") is None:
        return None
    return f"{summary['p50_ms']:.1f} / {summary['p99_ms']:.1f} / {summary['max_ms']:.1f}"


def s3_rows(key: str) -> list[Row]:
    return [
        Row(
            key,
            "deliveries/s (broadcasts back to back)",
            dig("back_to_back", "deliveries_per_s"),
            ">= 2x",
            lambda ratio: ratio >= 2.0,
        ),
        Row(key, "server CPU per delivery (µs)", dig("back_to_back", "server_cpu_per_delivery_us")),
        Row(
            key,
            "last socket has a broadcast, p50 / p99 (ms)",
            lambda r: _pair(_dig(r, "one_at_a_time", "completion")),
        ),
        Row(
            key,
            "broadcasts complete (one at a time + back to back)",
            lambda r: (
                f"{_dig(r, 'one_at_a_time', 'complete')}/{_dig(r, 'one_at_a_time', 'broadcasts')}"
                f" + {_dig(r, 'back_to_back', 'complete')}/{_dig(r, 'back_to_back', 'broadcasts')}"
            ),
            "all",
        ),
    ]


def postgres_rows(key: str, compared: str) -> list[Row]:
    """PostgreSQL + Redis against SQLite in the same run, and what the database took."""
    return [
        Row(
            key,
            f"{compared}: PostgreSQL + Redis / SQLite, same run",
            dig("vs_sqlite"),
            ">= 0.8",
            value_goal=lambda ratio: ratio >= 0.8,
            only_postgres=True,
        ),
        Row(
            key,
            "database connections opened during the run",
            dig("database", "sessions"),
            f"<= {2 * POOL_SIZE} (2x pool)",
            value_goal=lambda opened: opened <= 2 * POOL_SIZE,
            only_postgres=True,
        ),
        Row(
            key,
            "database backends' CPU during the run (s)",
            dig("database", "backends_cpu_s"),
            only_postgres=True,
        ),
    ]


def s4_rows() -> list[Row]:
    key = "S4 slow consumers"
    reading, stuck = ("phases", "all reading"), ("phases", "1% stuck")
    return [
        Row(key, "others' p99, all reading (ms)", dig(*reading, "others_targeted", "p99_ms")),
        Row(key, "others' p99, 1% stuck (ms)", dig(*stuck, "others_targeted", "p99_ms")),
        Row(key, "others' p99 rise (%)", dig("others_p99_rise_percent"), "< 20 %"),
        Row(
            key,
            "others' targeted lost, 1% stuck",
            dig(*stuck, "others_targeted", "lost"),
            "0",
        ),
        Row(
            key,
            "broadcasts reaching every reading socket, 1% stuck",
            lambda r: (
                f"{_dig(r, *stuck, 'broadcasts_reaching_every_reading_socket')}"
                f"/{_dig(r, *stuck, 'broadcasts')}"
            ),
            "all",
        ),
        Row(
            key,
            "broadcast to all reading sockets p99, 1% stuck (ms)",
            dig(*stuck, "broadcast_completion", "p99_ms"),
        ),
        Row(
            key,
            "POSTs failed or timed out, 1% stuck",
            lambda r: _failures(r, stuck),
            "0",
        ),
        Row(
            key,
            "backlog addressed to each stuck socket (KiB)",
            dig("backlog_per_stuck_socket_kib"),
        ),
        Row(
            key,
            "server RSS max, all reading -> 1% stuck (MiB)",
            lambda r: _mib_pair(_dig(r, *reading, "rss_max_kib"), _dig(r, *stuck, "rss_max_kib")),
        ),
        Row(key, "stuck sockets afterwards", lambda r: _outcomes(r.get("stuck_outcomes"))),
        Row(
            key,
            "queue overflows (server counter, where /metrics exists)",
            dig("server_counters", "notifier_queue_overflows_total"),
        ),
        Row(
            key,
            "stuck sockets: notifications missing",
            dig("stuck_missing_notifications"),
            "0",
        ),
        Row(
            key,
            "doubled / ids out of order (all sockets)",
            lambda r: f"{r.get('duplicates')} / {r.get('out_of_order')}",
            "0 / 0",
        ),
    ]


def _failures(result: Result, phase: tuple[str, str]) -> int | None:
    targeted = _dig(result, *phase, "others_targeted", "errors") or {}
    feed = _dig(result, *phase, "feed_post_errors") or 0
    broadcasts = _dig(result, *phase, "broadcast_errors") or 0
    return sum(targeted.values()) + feed + broadcasts


def _mib_pair(a: int | None, b: int | None) -> str | None:
    if a is None or b is None:
        return None
    return f"{a / 1024:.0f} -> {b / 1024:.0f}"


def _outcomes(outcomes: dict[str, int] | None) -> str | None:
    if not outcomes:
        return None
    return ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items()))


def s5_rows() -> list[Row]:
    key = "S5 reconnect storm"
    return [
        Row(key, "notifications stored while the clients were away", dig("stored_while_away")),
        Row(key, "all reconnected, from the storm (s)", dig("all_reconnected_s")),
        Row(key, "all caught up with what they missed, from the storm (s)", dig("caught_up_s")),
        Row(
            key,
            "missed / doubled / ids out of order (of accepted POSTs)",
            lambda r: (
                f"{r.get('missed')} / {r.get('doubled')} / {r.get('out_of_order')}"
                f" (of {r.get('accepted')})"
            ),
            "0 / 0 / 0",
        ),
    ]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio_of(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return a / b
    return None


def table(rows: list[Row], results: dict[str, dict[str, Result]]) -> list[dict[str, Any]]:
    """One line per row and per Notifier configuration run in that scenario."""
    lines = []
    for row in rows:
        runs = results.get(row.scenario)
        if not runs:
            continue
        baseline_label = next((label for label in runs if label.startswith("baseline")), None)
        baseline_value = row.get(runs[baseline_label]) if baseline_label else None
        for label, result in runs.items():
            if label.startswith("baseline"):
                continue
            if row.only_postgres and not label.startswith(POSTGRES_LABEL):
                continue
            value = row.get(result)
            ratio = None if row.only_postgres else ratio_of(value, baseline_value)
            met = None
            if row.ratio_goal is not None and ratio is not None:
                met = row.ratio_goal(ratio)
            if row.value_goal is not None and isinstance(value, int | float):
                met = row.value_goal(value)
            lines.append(
                {
                    "scenario": row.scenario,
                    "metric": row.metric + ("" if label == "notifier" else f" [{label}]"),
                    "notifier": value,
                    "baseline": baseline_value,
                    "baseline_label": baseline_label,
                    "ratio": round(ratio, 2) if ratio is not None else None,
                    "target": row.target,
                    "met": met,
                }
            )
    return lines


def markdown(lines: list[dict[str, Any]], header: list[str]) -> str:
    out = [*header, ""]
    out.append("| Scenario | Metric | Notifier | Baseline | Notifier / baseline | Target |")
    out.append("|---|---|---:|---:|---:|---|")
    for line in lines:
        ratio = "-" if line["ratio"] is None else f"{line['ratio']:.2f}x"
        target = line["target"]
        if line["met"] is not None:
            target += " ✅" if line["met"] else " ❌"
        out.append(
            f"| {line['scenario']} | {line['metric']} | {_fmt(line['notifier'])} "
            f"| {_fmt(line['baseline'])} | {ratio} | {target} |"
        )
    return "\n".join(out)


def _loadgen_peak(result: Any) -> float | None:
    """The busiest phase's share of a core used by the load generator, anywhere in a result."""
    peaks: list[float] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            share = value.get("loadgen_cpu")
            if isinstance(share, int | float):
                peaks.append(float(share))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(result)
    return max(peaks) if peaks else None


def loadgen_rows(keys: list[str]) -> list[Row]:
    def peak(result: Result) -> str | None:
        share = _loadgen_peak(result)
        if share is None:
            return None
        return f"{share:.2f}" + (" SATURATED" if share > 0.9 else "")

    return [
        Row(key, "load generator CPU, busiest phase (share of its core)", peak, "< 0.90")
        for key in keys
    ]
