"""Sources' throughput against the same-run baseline (`POST /v1/events` in batches): runs
bench/sources_mqtt.py (MQTT messages -> events, target >= 5,000/s) and bench/sources_db.py
(database changes -> events, target >= 2,000 rows/s) and prints their JSON together.

    .venv/bin/python bench/sources.py [--configs embedded,distributed] [--rounds N]

Each part alternates its source and its baseline within one platform run; see each file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = {"mqtt": "sources_mqtt.py", "db": "sources_db.py"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(PARTS), help="run one part")
    parser.add_argument("--configs", help="embedded,distributed (as bench/configs.py)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    passed = ["--rounds", str(args.rounds)]
    if args.configs:
        passed += ["--configs", args.configs]
    out: dict[str, object] = {}
    failed = False
    for name, script in PARTS.items():
        if args.only and name != args.only:
            continue
        print(f"sources bench: {name} ({script}) …", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, str(HERE / script), *passed], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            out[name] = {"error": f"{script} exited with {done.returncode}"}
            failed = True
            continue
        out[name] = json.loads(done.stdout)
    print(json.dumps(out, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
