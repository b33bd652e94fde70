"""Repeatable speed measurements of rknb against named peers.

    python benchmarks/run.py [NAME ...] [--smoke]

Each benchmark prints one JSON line:
{"name", "rknb_s", "peer", "peer_s", "ratio", "goal", "peak_rss_mb", "goals"}
where ratio = peer time / rknb time. --smoke runs a tiny variant of each (CI runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "report" / "ok.ipynb"
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss_bytes(pid: int) -> int:
    """Sum the resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(int(stat[1]), []).append(int(entry.name))
        rss[int(entry.name)] = pages * PAGE
    total, queue = 0, [pid]
    while queue:
        current = queue.pop()
        total += rss.get(current, 0)
        queue.extend(children.get(current, []))
    return total


def measure(command: list[str], cwd: Path, output: Path | None = None) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS of its process tree in MB).

    Its standard output is written to ``output`` when given, else dropped.
    """
    peak = 0
    started = time.monotonic()
    # The child keeps its own copy of the file; this process's is closed once it started.
    with open(output or os.devnull, "wb") as sink:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_bytes(proc.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    if proc.returncode not in (0, 1):
        tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise SystemExit(f"{command[:4]} exited {proc.returncode}: {' | '.join(tail)}")
    return elapsed, peak / 2**20


def _shipped() -> list[Path]:
    folder = ROOT / "rknb" / "notebooks"
    return sorted(folder.glob("*.ipynb"))


def bench_demo(smoke: bool) -> dict[str, object]:
    """rknb demo (parallel) against the plain papermill CLI running the notebooks in turn."""
    notebooks = [FIXTURE] if smoke else _shipped()
    if not notebooks:
        raise SystemExit("no notebooks under rknb/notebooks/ to benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if smoke:
            rknb_cmd = [sys.executable, "-m", "rknb.cli", "run", str(FIXTURE), "--output", tmp]
        else:
            rknb_cmd = [sys.executable, "-m", "rknb.cli", "demo", "--output", str(out / "rknb")]
        rknb_s, rknb_mb = measure(rknb_cmd, ROOT)

        peer_s, peer_mb = 0.0, 0.0
        for nb in notebooks:
            peer_cmd = [
                sys.executable, "-m", "papermill", str(nb), str(out / f"peer-{nb.name}"),
                "--cwd", str(nb.parent), "-k", "python3", "--no-progress-bar",
            ]  # fmt: skip
            seconds, mb = measure(peer_cmd, ROOT)
            peer_s += seconds
            peer_mb = max(peer_mb, mb)

    ratio = peer_s / rknb_s
    return {
        "name": "demo-smoke" if smoke else "demo",
        "rknb_s": round(rknb_s, 2),
        "peer": "papermill CLI, one notebook after another",
        "peer_s": round(peer_s, 2),
        "ratio": round(ratio, 2),
        "goal": "> 1" if not smoke else "none (smoke: one notebook each way)",
        "peak_rss_mb": round(rknb_mb, 1),
        "goals": {
            "rknb_under_60_s": {"value_s": round(rknb_s, 2), "met": rknb_s < 60},
            "peak_rss_under_2048_mb": {"value_mb": round(rknb_mb, 1), "met": rknb_mb < 2048},
            "ratio_over_1": {"value": round(ratio, 2), "met": ratio > 1},
            "peer_peak_rss_mb": round(peer_mb, 1),
        },
    }


def bench_hpa_replay(smoke: bool) -> dict[str, object]:
    """The compiled HPA grid replay against the per-decision exact controller (hpa_replay.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hpa_replay import bench

    return bench(smoke)


def bench_prom_frames(smoke: bool) -> dict[str, object]:
    """A ~1M-sample query_range answer to a DataFrame, against prometheus-api-client."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from prom_frames import bench_prom_frames as bench

    return bench(smoke)


def bench_audit(smoke: bool) -> dict[str, object]:
    """rknb audit on 10,000 generated objects against Checkov on the same files (audit_bench.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from audit_bench import bench_audit as bench

    return bench(smoke, measure, ROOT)


BENCHMARKS: dict[str, Callable[[bool], dict[str, object]]] = {
    "demo": bench_demo,
    "hpa_replay": bench_hpa_replay,
    "prom_frames": bench_prom_frames,
    "audit": bench_audit,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(BENCHMARKS)}")
    parser.add_argument("--smoke", action="store_true", help="a tiny run of each benchmark")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    for name in args.names or list(BENCHMARKS):
        print(json.dumps(BENCHMARKS[name](args.smoke), sort_keys=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
