"""Per-person notices: our streaming, recorded, resumable render beside a bare Jinja2 loop, in one run.

1. **Throughput.** ``--people`` recipients (default 100,000) are bulk-inserted with raw SQL into a fresh
   SQLite workspace, then rendered as Markdown and as ``.eml`` through ``render_notices`` (keyset pages
   from the database, sandboxed templates, atomic 0600 files, a ``document`` row per file, resumable).
   Beside it, a bare loop renders the *same templates* with a plain ``jinja2.Environment`` (no sandbox,
   no StrictUndefined) over the *same rows and contexts*, and writes each file with ``open().write()``;
   for ``.eml`` it assembles the message with the same MIME writer as ours. Target: ours within 1.5x of
   the bare loop. The people are split into ``--batches`` incidents and the two sides take turns on
   them in one process, so a busy machine slows both alike.
2. **Memory.** Peak RSS (``ru_maxrss``) of a child process rendering 10,000 and 100,000 people (Markdown
   and ``.eml``): streaming keeps it flat. Target: less than 50 MB more at 100,000.
3. **Word.** Per-person ``.docx`` (a disciplinary decision each) through our ``DocumentRenderer``
   (package read and parts compiled once) against a naive docxtpl loop (load, render, save per person).
   Target: ours at least 3x faster.

Usage: ``python bench/notices.py [--scale 0.1] [--people N] [--batches N] [--docx N] [--no-memory]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import REPO, ZONE, builtin_source, open_store

FIRM = """[firm]
name = "示例财税咨询有限公司"
address = "北京市海淀区示例路88号"
legal_representative = "周明"
contact_name = "李静"
contact_phone = "400-800-0000"
contact_email = "privacy@example-tax.cn"
contact_hours = "工作日 9:00–18:00"
protection_officer = "法务部 周宁（个人信息保护负责人）"
[notices]
batch_size = 500
"""
CODES = ("name;id_number;bank_account;salary", "name;salary;tax", "name;phone", "name;id_number")
# What every notice states (both languages the recipients read): the fields a notice needs.
CONTENT = {
    "incident": {
        "cause": {"zh-CN": "前员工导出客户台账", "en": "A former employee exported the ledger"},
        "possible_harm": {"zh-CN": "可能被用于诈骗", "en": "It may be used for scams"},
        "measures": {"zh-CN": ["停用涉事账号"], "en": ["Disabled the account"]},
        "next_steps": {"zh-CN": ["配合公安机关追回数据"], "en": ["Help the police recover the data"]},
    }
}


def setup(folder: Path, people: int, batches: int = 1) -> tuple[Path, list[str]]:
    """A workspace at ``folder`` with ``batches`` incidents sharing ``people`` recipients (raw SQL bulk
    insert); one incident per batch lets the two sides take turns on equal halves of the work."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config").mkdir(exist_ok=True)
    (folder / "config" / "settings.toml").write_text(FIRM, encoding="utf-8")
    incidents = [_incident(folder) for _ in range(batches)]
    size = people // batches
    for number, incident in enumerate(incidents):
        _people(folder, incident, range(number * size, (number + 1) * size))
    return folder, incidents


def _incident(folder: Path) -> str:
    from engine.incidents.opening import open_incident
    from engine.notices.content import set_content
    from engine.notices.contexts import NoticeContent

    store = open_store(folder / "breach.db")
    incident = open_incident(
        store,
        source=builtin_source(),
        title="bench",
        actor="bench",
        zone=ZONE,
        discovered_at=datetime.now(UTC) - timedelta(hours=1),
    ).id
    set_content(store, incident, NoticeContent.parse(CONTENT, "bench"), actor="bench")
    store.dispose()
    return incident


def _people(folder: Path, incident: str, numbers: range) -> None:
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    masked = json.dumps([{"code": "id_number", "masked": "1101********1234"}])
    rows = (
        (
            incident,
            f"P-{i:07d}",
            "person",
            f"测试用户{i}",
            f"user{i}@example.com",
            "zh-CN" if i % 5 else "en",
            "email",
            CODES[i % 4],
            masked if i % 2 else "[]",
            now,
            "0" * 64,
        )
        for i in numbers
    )
    with sqlite3.connect(folder / "breach.db") as db:
        db.executemany(
            "INSERT INTO person (incident_id, customer_id, type, name, email, locale, channel, categories, "
            "identifiers, imported_at, import_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def ours(folder: Path, incident: str, fmt: str) -> dict[str, float]:
    """Our path for one format; the seconds and this process's peak RSS."""
    from engine.notices.render import render_notices
    from engine.store.db import Store
    from engine.workspace import Workspace

    store = Store(f"sqlite:///{folder / 'breach.db'}")
    started = time.perf_counter()
    report = render_notices(
        store,
        Workspace.resolve(folder),
        incident,
        actor="bench",
        formats=[fmt],
        kinds=["customer_notice"],
        out_dir=folder / f"ours-{fmt}" / incident,
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "count": sum(report.rendered.values()), "maxrss_mb": _maxrss_mb()}


def bare(folder: Path, incident: str, fmt: str) -> dict[str, float]:
    """The bare loop: same templates, rows and contexts; plain Environment, plain writes."""
    from jinja2 import Environment, FileSystemLoader

    from engine.documents.eml import email_bytes
    from engine.documents.templating import FILTERS
    from engine.incidents.tables import Incident
    from engine.notices.contexts import IncidentStats, NoticeContent, NoticeContexts
    from engine.notices.firm import firm_settings
    from engine.store.db import Store
    from engine.workspace import Workspace

    ws = Workspace.resolve(folder)
    store = Store(f"sqlite:///{folder / 'breach.db'}")
    with store.read() as session:
        incident_row = session.get(Incident, incident)
    builder = NoticeContexts(
        incident_row,
        firm_settings(ws.settings),
        NoticeContent.parse(CONTENT, "bench"),
        datetime.now(UTC).replace(microsecond=0),
        IncidentStats(people=1),
    )
    envs = {}
    for locale in ("zh-CN", "en"):
        env = Environment(
            loader=FileSystemLoader([str(REPO / "templates" / locale)]),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters.update(FILTERS)
        envs[locale] = {n: env.get_template(f"customer_notice.{n}.j2") for n in ("md", "html", "subject")}
    out = folder / f"bare-{fmt}" / incident
    out.mkdir(parents=True)
    db = sqlite3.connect(folder / "breach.db")
    db.row_factory = sqlite3.Row
    started = time.perf_counter()
    count = 0
    for row in db.execute("SELECT * FROM person WHERE incident_id = ? ORDER BY id", (incident,)):
        person = dict(row)
        person["identifiers"] = json.loads(person["identifiers"])
        ctx = builder.customer(person)
        templates = envs[person["locale"]]
        ctx["locale"] = person["locale"]
        if fmt == "md":
            data = templates["md"].render(ctx).encode()
        else:  # the same MIME writer as ours: the comparison is about everything around it
            subject = " ".join(templates["subject"].render(ctx).split())
            data = email_bytes(
                sender=(ctx["firm"]["name"], ctx["firm"]["contact_email"]),
                to=(person["name"], person["email"]),
                subject=subject,
                text=templates["md"].render(ctx),
                html=templates["html"].render(ctx),
                date=ctx["generated_at"],
                message_id=f"<{person['customer_id']}@example-tax.cn>",
            )
        with open(out / f"{person['customer_id']}_{person['name']}.{fmt}", "wb") as handle:
            handle.write(data)
        count += 1
    return {"seconds": time.perf_counter() - started, "count": count, "maxrss_mb": _maxrss_mb()}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def docx(folder: Path, people: int) -> dict[str, float]:
    """Per-person Word files: our renderer against docxtpl loading, rendering and saving each one."""
    from docxtpl import DocxTemplate

    from engine.documents.render import DocumentRenderer, write_private
    from engine.documents.templating import get_environment
    from engine.incidents.tables import Incident
    from engine.notices.contexts import (
        IncidentStats,
        NoticeContent,
        base_context,
        report_block,
    )
    from engine.notices.firm import firm_settings
    from engine.store.db import Store
    from engine.workspace import Workspace

    ws = Workspace.resolve(folder)
    store = Store(f"sqlite:///{ws.home / 'breach.db'}")
    with store.read() as session:
        first = session.execute(__import__("sqlalchemy").text("SELECT id FROM incident LIMIT 1"))
        incident = session.get(Incident, first.scalar_one())
    firm = firm_settings(ws.settings)
    shared = base_context(
        incident=incident,
        firm=firm,
        content=NoticeContent(),
        locale="zh-CN",
        generated_at=datetime.now(UTC),
        stats=IncidentStats(),
    )
    shared["report"] = report_block(number="示例财税〔2026〕9号", day=date(2026, 11, 20), issuer=firm.name)

    def context(i: int) -> dict[str, Any]:
        return {
            **shared,
            "employee": {"name": f"员工{i}", "department": "信息部", "position": "系统管理员"},
            "decision": {
                "facts": f"第{i}号事实：未按规定注销账号。",
                "rules_broken": ["《账号管理办法》第十二条"],
                "responsibility": "direct",
                "sanction": "demerit",
                "compensation": None,
                "appeal_to": "公司管理委员会",
                "appeal_days": 15,
                "appeal_deadline": date(2026, 12, 5),
            },
        }

    renderer = DocumentRenderer(ws.search_path("templates"))
    out = folder / "docx-ours"
    started = time.perf_counter()
    for i in range(people):
        rendered = renderer.render("disciplinary_decision", "docx", context(i))
        write_private(out, f"decision_{i}.docx", rendered.content)
    ours_seconds = time.perf_counter() - started
    template = REPO / "templates" / "zh-CN" / "disciplinary_decision.docx"
    env = get_environment(ws.search_path("templates"), "zh-CN", docx=True)
    naive_out = folder / "docx-naive"
    naive_out.mkdir()
    started = time.perf_counter()
    for i in range(people):
        document = DocxTemplate(template)
        document.render({**context(i), "locale": "zh-CN"}, jinja_env=env, autoescape=True)
        document.save(naive_out / f"decision_{i}.docx")
    return {"ours": ours_seconds, "naive": time.perf_counter() - started, "count": people}


def child(args: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (its own peak RSS), return its JSON line."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def alternate(folder: Path, incidents: list[str], fmt: str) -> dict[str, float]:
    """Ours and the bare loop take turns, batch by batch, in one process (who goes first alternates too),
    so a busy spell on a shared machine slows both sides alike; the totals of each side."""
    totals = {"ours": 0.0, "bare": 0.0, "count": 0.0}
    for number, incident in enumerate(incidents):
        sides = (ours, bare) if number % 2 == 0 else (bare, ours)
        for side in sides:
            run = side(folder, incident, fmt)
            totals[side.__name__] += run["seconds"]
        totals["count"] += run["count"]
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="Multiply every size (0.05 for a quick run)."
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--docx", type=int, default=300, help="People in the Word comparison.")
    parser.add_argument("--no-memory", action="store_true", help="Skip the 10,000-person memory run.")
    parser.add_argument(
        "--batches", type=int, default=20, help="Turns each side takes (alternating, in one process)."
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, folder, fmt, *incidents = args.child
        if what == "alternate":
            print(json.dumps(alternate(Path(folder), incidents, fmt)))
        else:
            print(json.dumps(ours(Path(folder), incidents[0], fmt)))
        return
    people = max(100, int(args.people * args.scale))
    small = max(100, people // 10)
    root = Path(tempfile.mkdtemp(prefix="breach-bench-notices-"))
    rows: list[tuple[str, str, str, str]] = []
    try:
        started = time.perf_counter()
        batches = max(2, args.batches)
        folder, incidents = setup(root / "turns", people, batches)
        print(
            f"setup: {people:,} people bulk-inserted in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        for fmt in ("md", "eml"):
            t = child(["alternate", str(folder), fmt, *incidents])
            ratio = t["ours"] / t["bare"]
            rows.append(
                (
                    f"{fmt} x{int(t['count']):,}: ours vs bare Jinja2 loop, {batches} turns each",
                    f"{t['count'] / t['ours']:,.0f}/s vs {t['count'] / t['bare']:,.0f}/s",
                    f"{ratio:.2f}x time",
                    "ok" if ratio <= 1.5 else "MISSED (target ≤1.5x)",
                )
            )
            for name in (f"ours-{fmt}", f"bare-{fmt}"):
                shutil.rmtree(folder / name, ignore_errors=True)
        if not args.no_memory:
            # Memory is about one incident of every person at once: streaming must keep it flat.
            big_folder, (big,) = setup(root / "big", people)
            small_folder, (small_incident,) = setup(root / "small", small)
            peak = max(child(["ours", str(big_folder), f, big])["maxrss_mb"] for f in ("md", "eml"))
            small_peak = max(
                child(["ours", str(small_folder), f, small_incident])["maxrss_mb"] for f in ("md", "eml")
            )
            growth = peak - small_peak
            rows.append(
                (
                    f"peak RSS at {small:,} vs {people:,} people",
                    f"{small_peak:.0f} MB vs {peak:.0f} MB",
                    f"+{growth:.0f} MB",
                    "ok" if growth < 50 else "MISSED (target <50 MB)",
                )
            )
        count = max(20, int(args.docx * args.scale))
        word = docx(folder, count)
        ratio = word["naive"] / word["ours"]
        rows.append(
            (
                f"docx x{count}: ours vs naive docxtpl loop",
                f"{count / word['ours']:,.0f}/s vs {count / word['naive']:,.0f}/s",
                f"{ratio:.1f}x faster",
                "ok" if ratio >= 3 else "MISSED (target ≥3x)",
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'rate / size':<26} {'ratio':<14} target")
    for name, figure, ratio_text, verdict in rows:
        print(f"{name:<{width}}  {figure:<26} {ratio_text:<14} {verdict}")


if __name__ == "__main__":
    os.environ.setdefault("BREACH_HOME", tempfile.gettempdir())
    main()
