"""Fuzz the parsers with atheris (libFuzzer for Python), each for a bounded time (issue 10).

    .venv/bin/pip install atheris            # once: a manylinux wheel, no compiler needed
    .venv/bin/python tests/fuzz/run.py [--seconds 60] [--only challenge,sse,...]

Not part of ./tests/run: the suite replays the committed corpus instead
(tests/unit/test_fuzz_corpus.py). Each target of targets.py runs in its own process,
seeded from tests/fuzz/corpus/<target>/ (read only); what the fuzzer learns and any crash
go to --out (a temporary directory unless given). A crash stops its target and is
reported with its input's file: minimize it, fix the parser, and commit the input to
the target's corpus directory so the suite replays it from then on. Exit status 1 when
any target crashed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: `fuzz.targets`

CORPUS = HERE / "corpus"
# The code atheris instruments for coverage: mcpls (its SSE parser included).
INSTRUMENTED = ["mcpls"]
# A single input running this long is a hang, reported like a crash.
INPUT_TIMEOUT_S = 10
# How atheris starts the report of an exception that escaped a target.
UNCAUGHT = "=== Uncaught Python exception"
NAMES = ("challenge", "metadata", "settings", "callback", "sse", "token")


@dataclass
class Outcome:
    target: str
    seconds: float
    executions: int
    coverage: int
    crashes: list[Path]
    report: str  # the traceback of a crash

    @property
    def rate(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


def child(name: str, libfuzzer_args: list[str]) -> None:
    """Inside the target's process: instrument mcpls, then hand over to libFuzzer."""
    import atheris

    with atheris.instrument_imports(include=INSTRUMENTED):
        from fuzz import targets
    atheris.Setup([sys.argv[0], *libfuzzer_args], targets.TARGETS[name])
    atheris.Fuzz()


def fuzz(name: str, seconds: int, out: Path) -> Outcome:
    work = out / name / "corpus"
    crashes = out / name / "crashes"
    work.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, __file__, "--child", name, "--",
        str(work), str(CORPUS / name),  # new inputs go to the first; the seeds stay as they are
        f"-max_total_time={seconds}", f"-timeout={INPUT_TIMEOUT_S}",
        f"-artifact_prefix={crashes}/", "-print_final_stats=1", "-rss_limit_mb=2048",
    ]  # fmt: skip
    start = time.monotonic()
    done = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    elapsed = time.monotonic() - start
    log = done.stdout
    (out / name / "fuzz.log").write_text(log)
    executions = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    coverage = re.findall(r"\bcov: (\d+)", log)
    return Outcome(
        target=name,
        seconds=elapsed,
        executions=int(executions.group(1)) if executions else 0,
        coverage=int(coverage[-1]) if coverage else 0,
        crashes=sorted(crashes.iterdir()),
        report=log[log.find(UNCAUGHT) :] if UNCAUGHT in log else log[-3000:],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--seconds", type=int, default=60, help="time per target")
    parser.add_argument("--only", default=",".join(NAMES), help="comma-separated targets")
    parser.add_argument("--out", type=Path, help="work corpus, crashes and logs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        child(args.child, [a for a in rest if a != "--"])
        return 0
    try:
        import atheris  # noqa: F401 - only to say how to get it
    except ImportError:
        print("atheris is not installed: .venv/bin/pip install atheris", file=sys.stderr)
        return 2
    wanted = [n for n in args.only.split(",") if n]
    unknown = sorted(set(wanted) - set(NAMES))
    if unknown:
        parser.error(f"unknown targets {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    out = args.out or Path(tempfile.mkdtemp(prefix="mcpls-fuzz-"))
    outcomes = []
    for name in wanted:
        outcome = fuzz(name, args.seconds, out)
        outcomes.append(outcome)
        status = f"{len(outcome.crashes)} crash(es)" if outcome.crashes else "no crash"
        print(
            f"{name:<10} {outcome.executions:>10,} executions  {outcome.rate:>8,.0f}/s  "
            f"coverage {outcome.coverage:>5}  {status}",
            flush=True,
        )
        for crash in outcome.crashes:
            print(f"  input: {crash}\n{outcome.report[:3000]}", flush=True)
    total = sum(o.executions for o in outcomes)
    print(f"{total:,} executions in all; logs and work corpus in {out}")
    return 1 if any(o.crashes for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
