"""Profiling the server under a scenario with py-spy, and a text summary of the samples.

    python -m bench.profile PROFILE.txt [--top 15]

summarizes a py-spy `--format raw` (collapsed stacks) file: the functions with the most
samples of their own (leaf frame) and in total (anywhere on the stack).

Recordings are made with `--threads` and summarized for the event loop's thread (the
main thread) apart from the rest. py-spy counts a thread waiting for the GIL as busy, so
the aiosqlite and thread-pool workers look far busier in an all-threads view than they
are; per-thread CPU from /proc is what says which thread burns the time.
"""

import argparse
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


def start(pid: int, output: Path, rate: int = 200) -> subprocess.Popen[bytes] | None:
    """Start `py-spy record` on `pid`; None when py-spy is not installed."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return None
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--function",
            "--threads",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(process: subprocess.Popen[bytes]) -> str:
    """Stop recording (py-spy writes its file on SIGINT); returns py-spy's messages."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err.decode(errors="replace")


def _short(frame: str) -> str:
    # "send_text (starlette/websockets.py:160)" -> keep the path from site-packages on.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    if "/notifier/" in where:
        where = "notifier/" + where.split("/notifier/", 1)[1]
    return f"{name} ({where})" if where else name


ENTRY_FRAMES = (
    "<module> (",
    "_run_module_as_main",
    "_run_code",
    "Typer",
    "Command.",
    "Context.invoke",
    "_main (typer",
    "get_callback",
    "serve (notifier",
    "run (uvicorn/main.py",
    "Server.run (uvicorn",
    "asyncio_run (uvicorn",
    "Runner.run (asyncio",
    "Thread._bootstrap",
    "Thread.run (threading",
)
"""Frames every sample of a thread passes through: left out of the "total" ranking."""


def _ranked(counter: Counter[str], samples: int, top: int) -> list[tuple[str, int, float]]:
    return [(f, n, round(100 * n / samples, 1)) for f, n in counter.most_common(top)]


def summarize(path: Path, top: int = 15) -> dict[str, object]:
    """Own and total samples per function, for the main thread and for all threads."""
    own: dict[str, Counter[str]] = {"main": Counter(), "all": Counter()}
    total: dict[str, Counter[str]] = {"main": Counter(), "all": Counter()}
    samples: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        thread = "main"
        if frames and frames[0].startswith("thread ("):
            name = frames.pop(0).split(": ", 1)[-1]
            threads[name] += count
            thread = "main" if name == "MainThread" else "other"
        else:
            threads["(not recorded)"] += count
        frames = [_short(f) for f in frames]
        if not frames:
            continue
        for scope in ("all", thread) if thread == "main" else ("all",):
            samples[scope] += count
            own[scope][frames[-1]] += count
            for frame in set(frames):
                if not frame.startswith(ENTRY_FRAMES):
                    total[scope][frame] += count
    return {
        "samples": samples["all"],
        "main_thread_samples": samples["main"],
        "threads": dict(threads.most_common()),
        "own": _ranked(own["main"], samples["main"] or 1, top),
        "total": _ranked(total["main"], samples["main"] or 1, top),
        "all_threads_own": _ranked(own["all"], samples["all"] or 1, top),
    }


def as_text(summary: dict[str, object], title: str) -> str:
    lines = [
        f"{title}: {summary['samples']} samples, {summary['main_thread_samples']} in the "
        f"event loop's thread; by thread: {summary['threads']}"
    ]
    headings = {
        "own": "event loop thread, top by own time",
        "total": "event loop thread, top by total time",
        "all_threads_own": "all threads, top by own time",
    }
    for kind, heading in headings.items():
        lines.append(f"  {heading}:")
        for frame, _count, share in summary[kind]:  # type: ignore[attr-defined]
            lines.append(f"    {share:5.1f}%  {frame}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    print(as_text(summarize(args.profile, args.top), str(args.profile)))


if __name__ == "__main__":
    main()
