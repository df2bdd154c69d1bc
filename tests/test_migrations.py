"""Schema migrations: the revisions form one chain; a previous release's database upgrades with its data.

Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.script import ScriptDirectory
from sqlalchemy import text

from engine.incidents import flow
from engine.incidents.audit import verify_chain
from engine.incidents.opening import open_incident
from engine.incidents.tables import Incident
from engine.incidents.tasks import complete_task
from engine.migrations.migrate import alembic_config, current_revision, head_revision, upgrade
from engine.store.db import Store
from engine.wiring import hooks_for
from engine.workspace import Workspace

ZONE = "Asia/Shanghai"
FIRM = (
    '[firm]\nname = "示例财税"\naddress = "北京"\ncontact_name = "李静"\ncontact_phone = "400-800-0000"\n'
    'contact_email = "privacy@example-tax.cn"\ncontact_hours = "工作日 9:00–18:00"\n'
)


def revisions() -> list[str]:
    """Every revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


class TestMigrations:
    def test_revisions_form_one_line(self):
        """The revisions are a single chain ending at head: no branch for upgrade to choose between."""
        chain = revisions()
        assert chain[0] == "0001" and chain[-1] == head_revision()
        assert len(set(chain)) == len(chain)

    def test_previous_release_database_upgrades_with_its_data(self, db_url, builtin_source, tmp_path):
        """A database at the previous revision, with an incident, recipients and notices, upgrades to head;
        the incident keeps its trail and takes every later step, including those the new tables serve."""
        previous = revisions()[-2]
        store = Store(db_url)
        assert upgrade(store, previous) == previous
        incident = open_incident(
            store,
            source=builtin_source,
            title="旧事件",
            actor="alice",
            zone=ZONE,
            discovered_at=datetime.now(UTC) - timedelta(hours=1),
        )
        # The previous release's own rows, written as it wrote them (today's import also fills columns
        # that schema does not have yet).
        with store.engine.begin() as conn:
            for n, (kind, name) in enumerate(
                (("company", "旧客户单位"), ("person", "张三"), ("person", "李四"))
            ):
                conn.execute(
                    text(
                        "INSERT INTO person (incident_id, customer_id, type, name, locale, channel, "
                        "categories, identifiers, imported_at, import_sha256) VALUES (:i, :c, :t, :n, "
                        "'zh-CN', 'email', 'name', '[]', :at, :sha)"
                    ),
                    {
                        "i": incident.id,
                        "c": f"C-{n}",
                        "t": kind,
                        "n": name,
                        "at": datetime.now(UTC),
                        "sha": "0" * 64,
                    },
                )
        with store.engine.connect() as conn:
            people_before = conn.execute(text("SELECT COUNT(*) FROM person")).scalar()
        assert people_before == 3

        assert upgrade(store) == head_revision() == current_revision(store)
        home = tmp_path / "ws"
        (home / "config").mkdir(parents=True)
        (home / "config" / "settings.toml").write_text(FIRM, encoding="utf-8")
        hooks = hooks_for(Workspace.resolve(home, db_url))
        for task in (
            "stop_transfer",
            "preserve_evidence",
            "establish_scope",
            "start_investigation",
            "grade_incident",
        ):
            complete_task(store, incident.id, task, actor="alice", hooks=hooks)
        assert flow.advance(
            store, incident.id, "contain", actor="alice", zone=ZONE, hooks=hooks
        ).to_state == ("customer_notification")
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM person")).scalar() == people_before
        with store.read() as s:
            assert verify_chain(s, s.get(Incident, incident.id)).ok
        store.dispose()

    def test_upgrade_is_idempotent(self, db_url):
        """Upgrading a database already at head changes nothing and reports head."""
        store = Store(db_url)
        upgrade(store)
        assert upgrade(store) == head_revision()
        store.dispose()

    def test_head_schema_is_what_the_code_expects(self, db_url):
        """Upgraded to head, the database has every table, column and index the models declare:
        a model changed without its migration would otherwise fail only on an operator's database."""
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from engine.migrations.tables import METADATA

        store = Store(db_url)
        upgrade(store)
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            differences = compare_metadata(context, METADATA)
        store.dispose()
        assert differences == []
