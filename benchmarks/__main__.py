"""Run every benchmark: ``python -m benchmarks [NAME ...]`` (names: sim, psf, reflux, guidance, needle, api_load,
archive, stream, liveview).

Each benchmark is its own module (``python -m benchmarks.bench_NAME``) writing ``benchmarks/results/``;
docs/benchmarks.md records the figures with the machine and the date.
"""

from __future__ import annotations

import subprocess
import sys

ALL = ("sim", "psf", "reflux", "guidance", "needle", "api_load", "archive", "stream", "liveview")


def main(argv: list[str]) -> int:
    names = argv or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(ALL)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"== benchmarks.bench_{name}", flush=True)
        if subprocess.call([sys.executable, "-m", f"benchmarks.bench_{name}"]) != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
