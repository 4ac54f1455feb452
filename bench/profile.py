"""Profiling the server under a scenario with py-spy, and a text summary of the samples.

    python -m bench.profile PROFILE.txt [--top 15]

summarizes a py-spy `--format raw` (collapsed stacks) file: the functions with the most
samples of their own (leaf frame) and in total (anywhere on the stack).
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


def summarize(path: Path, top: int = 15) -> dict[str, object]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    return {
        "samples": samples,
        "own": [(f, n, round(100 * n / samples, 1)) for f, n in own.most_common(top)],
        "total": [(f, n, round(100 * n / samples, 1)) for f, n in total.most_common(top)],
    }


def as_text(summary: dict[str, object], title: str) -> str:
    lines = [f"{title}: {summary['samples']} on-CPU samples"]
    for kind in ("own", "total"):
        lines.append(f"  top by {kind} time:")
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
