"""What Notifier's metrics cost per publication, in one process and in multiprocess mode.

`python -m bench.metrics_cost`: times the updates the hub makes once per publication
(`notifier_deliveries_total{path="live"}` and the latency histogram) with prometheus-client
in its default mode and in multiprocess mode (`notifier serve --workers N`, values in
memory-mapped files), each in a fresh interpreter since the mode is chosen at import.
"""

import json
import os
import subprocess
import sys
import tempfile

UPDATES = 200_000

_MEASURE = f"""
import json, timeit
from notifier.metrics import Metrics
metrics = Metrics()
live, latency = metrics.live_deliveries, metrics.delivery_latency
def publication():
    live.inc(3)
    latency.observe(0.002)
seconds = min(timeit.repeat(publication, number={UPDATES}, repeat=5))
print(json.dumps({{"multiprocess": metrics.multiprocess_dir is not None,
                  "ns": seconds / {UPDATES} * 1e9}}))
"""


def measure(multiprocess_dir: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiprocess_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def main() -> None:
    single = measure(None)
    with tempfile.TemporaryDirectory(prefix="notifier-metrics-bench-") as directory:
        multi = measure(directory)
    for result in (single, multi):
        mode = "multiprocess" if result["multiprocess"] else "one process"
        print(f"{mode:>13}: {result['ns']:7.0f} ns per publication (counter inc + histogram)")


if __name__ == "__main__":
    main()
