"""The fault soak (``tests/soak``) for each built-in provider and seed, printed as the table
``docs/reliability.md`` publishes: per fault kind, how many were injected and what calbridge did.

    python bench/bench_soak.py                 # the --slow size, seeds 1-3 (a few minutes)
    python bench/bench_soak.py --size ci --seeds 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the soak lives with the tests

from tests.soak.faults import KINDS
from tests.soak.soak import Outcome, size_for, soak

PROVIDERS = ("google", "graph", "feishu")


def table(outcomes: list[Outcome]) -> list[str]:
    """Markdown rows: each kind, injected per provider and in all, and what calbridge did."""
    injected: Counter[tuple[str, str]] = Counter((o.provider, f.kind) for o in outcomes for f in o.faults)
    did: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    for o in outcomes:
        for f in o.faults:
            did[f.kind][f.outcome] += 1
    rows = ["| fault | google | graph | feishu | all | what calbridge did |", "|---|---:|---:|---:|---:|---|"]
    for kind in KINDS:
        counts = [injected[p, kind] for p in PROVIDERS]
        what = "; ".join(f"{text}: {n}" for text, n in did[kind].most_common())
        rows.append(f"| `{kind}` | " + " | ".join(map(str, counts)) + f" | {sum(counts)} | {what} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=("ci", "slow"), default="slow")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    args = parser.parse_args()
    now = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as tmp:
        for provider in args.providers.split(","):
            for seed in map(int, args.seeds.split(",")):
                start, size = time.perf_counter(), size_for(provider, slow=args.size == "slow")
                o = soak(provider, seed, size, Path(tmp) / f"{provider}-{seed}", now=now)
                outcomes.append(o)
                took = time.perf_counter() - start
                print(f"{provider} seed {seed}: {o.requests} API requests in {size.rounds} faulted rounds "
                      f"({o.rounds_failed} failed), {len(o.faults)} faults, {o.clean_runs} clean run(s), "
                      f"{len(o.problems)} differences, {took:.1f}s", file=sys.stderr)  # fmt: skip
    sizes = {p: size_for(p, slow=args.size == "slow") for p in args.providers.split(",")}
    print(f"size {args.size}, seeds {args.seeds}: " + "; ".join(
        f"{p} {s.events} events ({s.series} series), {s.rounds} faulted rounds, {s.changes} changes between rounds"
        for p, s in sizes.items()))  # fmt: skip
    equal = sum(not o.problems for o in outcomes)
    print(f"API requests: {sum(o.requests for o in outcomes)}, faults: {sum(len(o.faults) for o in outcomes)}, "
          f"mirrors equal to the server at the end: {equal}/{len(outcomes)}\n")  # fmt: skip
    print("\n".join(table(outcomes)))


if __name__ == "__main__":
    main()
