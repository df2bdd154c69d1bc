"""Start-up time of the ``breach`` command, as ratios to a bare ``python -c pass`` in the same run.

A workspace with one incident is made in a temporary folder; then each command runs ``--runs`` times,
the commands interleaved round by round so that a burst of load on the machine hits them alike, after
one untimed round that warms the file cache. The contract's budgets: ``breach --version`` within 3x,
``breach --help`` and ``breach incident show ID`` (human and ``--json``) within 15x. A command over its
budget (or every command, with ``--importtime``) gets a ``python -X importtime`` list of what it imports.

The write commands an operator types all day come after: ``task done``, ``incident advance``,
``incident facts --set`` (which re-assesses), and the reads that go with them, ``assess ID`` and
``incident triggers ID``. Each write needs a state it can change, so the workspace holds one incident per
round and round N works on incident N: its containment tasks done, then ``contain``, then new facts.
Their budget is 25x the bare interpreter and 0.3 s on a quiet machine (``--writes-only`` skips the reads).

Each of those runs twice, taking turns: cold (``BREACH_DAEMON=off``: a new interpreter loads everything)
and through the warm ``breach daemon`` started for the run (a worker forked from a process that has
breach loaded), on incidents of its own. The cold rows show what the first command of a day costs; the
daemon rows what an operator ticking off tasks feels.

Usage: ``python bench/startup.py [--runs 15] [--breach PATH] [--importtime] [--writes-only]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from _common import median

BUDGETS = {"--version": 3.0, "--help": 15.0, "show": 15.0, "write": 25.0}
WRITE_SECONDS = 0.3
CONTAINMENT = [
    "stop_transfer",
    "preserve_evidence",
    "establish_scope",
    "start_investigation",
    "grade_incident",
]


def run(args: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds one run of ``args`` takes; it must exit 0."""
    started = time.perf_counter()
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return elapsed


def workspace(breach: str, home: Path, env: dict[str, str]) -> str:
    """Initialise ``home`` and open one incident in it; return the incident's id."""
    subprocess.run([breach, "init", str(home)], env=env, check=True, capture_output=True)
    return open_incident(breach, home, env)


def open_incident(breach: str, home: Path, env: dict[str, str]) -> str:
    """Open one incident under the built-in playbook, discovered a day ago; return its id."""
    when = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    opened = subprocess.run(
        [
            breach,
            "incident",
            "open",
            "--playbook",
            "cn-agency-firm",
            "--title",
            "台账泄露",
            "--discovered-at",
            when,
        ],
        env=env,
        cwd=home,
        check=True,
        capture_output=True,
        text=True,
    )
    return opened.stdout.strip().splitlines()[-1]


def import_times(breach: str, args: list[str], env: dict[str, str], cwd: Path, top: int = 15) -> list[str]:
    """The slowest top-level imports of one run, from ``python -X importtime``, as printable lines."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", breach, *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = (part.strip() for part in line[len("import time:") :].split("|"))
        depth = (len(line.split("|")[2]) - len(line.split("|")[2].lstrip())) // 2
        if depth <= 1:  # what the command imported, and what those imported directly
            rows.append((int(cumulative_us), name))
    rows.sort(reverse=True)
    return [f"    {us / 1000:8.1f} ms  {name}" for us, name in rows[:top]]


def write_commands(breach: str, incidents: list[str]) -> list[tuple[str, list[list[str]], str | None]]:
    """The write commands and their reads, one argument list per round (round N: incident N)."""
    return [
        (
            "breach task done ID 5 TASKS",
            [[breach, "task", "done", i, *CONTAINMENT] for i in incidents],
            "write",
        ),
        (
            "breach incident advance ID",
            [[breach, "incident", "advance", i, "contain"] for i in incidents],
            "write",
        ),
        (
            "breach incident facts ID --set",
            [
                [breach, "incident", "facts", i, "--set", f"people_affected={120 + n}"]
                for n, i in enumerate(incidents)
            ],
            "write",
        ),
        ("breach assess ID", [[breach, "assess", i] for i in incidents], "write"),
        ("breach incident triggers ID", [[breach, "incident", "triggers", i] for i in incidents], "write"),
    ]


def main() -> None:
    """Time each command and print medians, ratios and the verdict against the budgets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command (default 15)")
    parser.add_argument("--breach", default=str(Path(sys.executable).with_name("breach")), help="the script")
    parser.add_argument("--importtime", action="store_true", help="list imports of every command")
    parser.add_argument("--writes-only", action="store_true", help="time only the write commands")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="breach-startup-") as tmp:
        home = Path(tmp) / "ws"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BREACH_")}
        env |= {"BREACH_HOME": str(home), "COLUMNS": "120", "BREACH_RUN_DIR": str(Path(tmp) / "run")}
        cold = env | {"BREACH_DAEMON": "off"}
        incident = workspace(args.breach, home, cold)
        rounds = [incident] + [open_incident(args.breach, home, cold) for _ in range(args.runs)]
        warm_rounds = [open_incident(args.breach, home, cold) for _ in range(args.runs + 1)]
        base_argv = [sys.executable, "-c", "pass"]
        commands: list[Command] = [("python -c pass", [base_argv], None, cold)]
        if not args.writes_only:
            commands += [
                ("breach --version", [[args.breach, "--version"]], "--version", cold),
                ("breach --help", [[args.breach, "--help"]], "--help", cold),
                ("breach incident show ID", [[args.breach, "incident", "show", incident]], "show", cold),
                (
                    "breach incident show ID --json",
                    [[args.breach, "incident", "show", incident, "--json"]],
                    "show",
                    cold,
                ),
                (
                    "breach incident show ID, daemon",
                    [[args.breach, "incident", "show", incident]],
                    "show",
                    env,
                ),
            ]
        commands += [(label, argvs, key, cold) for label, argvs, key in write_commands(args.breach, rounds)]
        commands += [
            (f"{label}, daemon", argvs, key, env)
            for label, argvs, key in write_commands(args.breach, warm_rounds)
        ]
        subprocess.run([args.breach, "daemon", "start"], env=env, check=True, capture_output=True)
        try:
            times = timed(commands, args.runs, home)
        finally:
            subprocess.run([args.breach, "daemon", "stop"], env=env, capture_output=True)
        report(args, commands, times, home)


Command = tuple[str, list[list[str]], str | None, dict[str, str]]


def timed(commands: list[Command], runs: int, home: Path) -> dict[str, list[float]]:
    """Seconds of each run of each command, the commands taking turns round by round."""
    times: dict[str, list[float]] = {label: [] for label, *_ in commands}
    for round_ in range(runs + 1):
        for label, argvs, _, env in commands:
            elapsed = run(argvs[round_ % len(argvs)], env, home)
            if round_:  # round 0 warms the file cache
                times[label].append(elapsed)
    return times


def report(
    args: argparse.Namespace, commands: list[Command], times: dict[str, list[float]], home: Path
) -> None:
    """Print the medians, ratios and verdicts, then the imports of any command over its budget."""
    base = median(times["python -c pass"])
    print(
        f"median of {args.runs} runs each, {os.cpu_count()} cores, interpreter {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'command':44}{'median':>10}{'ratio':>8}{'budget':>8}")
    over = []
    for label, argvs, budget_key, env in commands:
        mid = median(times[label])
        ratio = mid / base
        budget = BUDGETS.get(budget_key or "")
        verdict = "" if budget is None else ("ok" if ratio <= budget else "OVER")
        if budget_key == "write" and verdict == "ok" and mid > WRITE_SECONDS:
            verdict = f"ok as a ratio, over {WRITE_SECONDS} s"
        shown = f"{budget:.0f}x" if budget else ""
        print(f"{label:44}{mid * 1000:8.1f}ms{ratio:7.1f}x{shown:>8}  {verdict}")
        if env.get("BREACH_DAEMON") == "off" and (
            verdict == "OVER" or (args.importtime and budget is not None)
        ):
            over.append((label, argvs[0], env))
    for label, argv, env in over:
        print(f"\n{label}: slowest imports (python -X importtime, cumulative):")
        print("\n".join(import_times(args.breach, argv[1:], env, home)))


if __name__ == "__main__":
    main()
