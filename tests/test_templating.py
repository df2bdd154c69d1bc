"""The template layer: filters, the sandboxed environment, refusals of injection, the static check."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from engine.documents.render import KINDS, DocumentRenderer
from engine.documents.templating import (
    check_templates,
    cn_doc_number,
    date_local,
    datetime_local,
    get_environment,
    load_contexts,
    mask_account,
    mask_id,
    mask_phone,
    resolve_locale,
)
from engine.errors import BadInput
from engine.workspace import builtin_root

BUILTIN = builtin_root() / "templates"


def workspace_template(tmp_path: Path, name: str, text: str, locale: str = "zh-CN") -> list[Path]:
    """Write a workspace template and return the search path (workspace first, then built-in)."""
    folder = tmp_path / "templates" / locale
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return [tmp_path / "templates", BUILTIN]


class TestFilters:
    def test_mask_id_keeps_first_and_last_four(self):
        """An ID number shows its first and last four characters around eight stars."""
        assert mask_id("110101199001011234") == "1101********1234"
        assert mask_id("1234") == "********"
        assert mask_id(None) == ""

    def test_mask_phone(self):
        """A mobile number shows 3 + 4 digits; a +86 prefix and spaces are handled."""
        assert mask_phone("13800000001") == "138****0001"
        assert mask_phone("+86 138 0000 0001") == "+86 138****0001"

    def test_mask_account_shows_last_four(self):
        """A bank account shows only its last four digits."""
        assert mask_account("6222 0212 3456 7890 123") == "****0123"

    def test_date_local_in_both_languages(self):
        """Dates read 2026年11月20日 in Chinese and 20 November 2026 in English."""
        assert date_local(date(2026, 11, 20), "zh-CN") == "2026年11月20日"
        assert date_local(date(2026, 11, 20), "en") == "20 November 2026"

    def test_date_local_converts_an_aware_moment_to_the_zone(self):
        """A UTC evening is the next day in Shanghai."""
        moment = datetime(2026, 11, 19, 20, 0, tzinfo=UTC)
        assert date_local(moment, "zh-CN", "Asia/Shanghai") == "2026年11月20日"

    def test_datetime_local_names_the_zone(self):
        """A time is shown in the zone asked for, with the zone and offset."""
        moment = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
        assert (
            datetime_local(moment, "Asia/Shanghai", "zh-CN") == "2026年11月20日 14:30（北京时间，UTC+08:00）"
        )
        assert (
            datetime_local(moment, "Europe/London", "en")
            == "20 November 2026, 06:30 (Europe/London, UTC+00:00)"
        )

    def test_naive_datetime_is_refused(self):
        """A time without a zone is refused rather than guessed."""
        with pytest.raises(BadInput, match="no time zone"):
            datetime_local(datetime(2026, 11, 20, 6, 30))

    def test_unknown_is_to_follow(self):
        """A missing date prints as 待补报 / to follow, never as None."""
        assert date_local(None, "zh-CN") == "待补报"
        assert datetime_local(None, locale="en") == "to follow"

    def test_cn_doc_number(self):
        """A document number is written 〔year〕N号 after the prefix."""
        assert cn_doc_number(3, 2026, "示例财税") == "示例财税〔2026〕3号"

    def test_filters_in_a_template_follow_the_context_locale(self, tmp_path):
        """Filters read the locale and zone the renderer puts in the context."""
        paths = workspace_template(tmp_path, "x.md.j2", "{{ d|date_local }}|{{ n|tbd }}")
        env = get_environment(paths, "zh-CN")
        text = env.get_template("x.md.j2").render(d=date(2026, 1, 2), n=None, locale="en")
        assert text == "2 January 2026|to follow"


class TestEnvironment:
    def test_sandboxed_and_strict(self, tmp_path):
        """The environment is a sandbox with StrictUndefined."""
        env = get_environment([BUILTIN], "zh-CN")
        assert isinstance(env, SandboxedEnvironment)
        assert env.undefined is StrictUndefined

    def test_cached_per_search_path_and_locale(self, tmp_path):
        """The same search path and locale give the same environment object (compiled once)."""
        assert get_environment([BUILTIN], "en") is get_environment([BUILTIN], "en")
        assert get_environment([BUILTIN], "en") is not get_environment([tmp_path, BUILTIN], "en")

    def test_autoescape_only_for_markup(self, tmp_path):
        """HTML templates escape values; Markdown keeps them literal."""
        paths = workspace_template(tmp_path, "a.html.j2", "{{ v }}")
        workspace_template(tmp_path, "a.md.j2", "{{ v }}")
        env = get_environment(paths, "zh-CN")
        assert env.get_template("a.html.j2").render(v="<b>&") == "&lt;b&gt;&amp;"
        assert env.get_template("a.md.j2").render(v="<b>&") == "<b>&"

    def test_none_prints_as_to_follow(self, tmp_path):
        """A null value in a formal document prints 待补报, never None."""
        env = get_environment(workspace_template(tmp_path, "n.md.j2", "原因：{{ v }}"), "zh-CN")
        assert env.get_template("n.md.j2").render(v=None) == "原因：待补报"

    def test_locale_resolution(self):
        """en_GB reads the en folder, an unknown locale falls back to zh-CN, junk is refused."""
        assert resolve_locale("en_GB", [BUILTIN]) == "en"
        assert resolve_locale("fr", [BUILTIN]) == "zh-CN"
        with pytest.raises(BadInput, match="invalid locale"):
            resolve_locale("../../etc", [BUILTIN])

    def test_compiled_once_but_an_edited_template_is_compiled_again(self, tmp_path):
        """A new renderer reuses what the process compiled, yet renders a template edited since."""
        paths = workspace_template(tmp_path, "customer_notice.md.j2", "旧：{{ person.name }}")
        context = {"person": {"name": "张三"}}
        assert DocumentRenderer(paths).render("customer_notice", "md", context).content.decode() == "旧：张三"
        assert DocumentRenderer(paths).render("customer_notice", "md", context).content.decode() == "旧：张三"
        workspace_template(tmp_path, "customer_notice.md.j2", "新：{{ person.name }}")
        assert DocumentRenderer(paths).render("customer_notice", "md", context).content.decode() == "新：张三"

    def test_compiled_code_is_kept_per_locale(self, tmp_path):
        """One file compiled for two locales keeps each locale's words for a missing value."""
        paths = workspace_template(tmp_path, "n.md.j2", "{{ none }}|{{ v }}")
        (tmp_path / "templates" / "en").mkdir()
        for _ in range(2):
            zh = get_environment(paths, "zh-CN", cached=False).get_template("n.md.j2").render(v=None)
            en = get_environment(paths, "en", cached=False).get_template("n.md.j2").render(v=None)
            assert (zh, en) == ("待补报|待补报", "to follow|to follow")

    def test_missing_template_in_a_locale_falls_back_to_zh_cn(self, tmp_path):
        """A locale folder without a template uses the zh-CN one."""
        paths = workspace_template(tmp_path, "only.md.j2", "中文")
        (tmp_path / "templates" / "en").mkdir()
        assert get_environment(paths, "en").get_template("only.md.j2").render() == "中文"


INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__ }}",
    "{{ config }}",
    "{{ request.application }}",
    "{{ person.name.__class__ }}",
    "{{ person|attr('__class__') }}",
    "{{ '{0.__class__}'.format(person.name) }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ 'x' * 1000000000 }}",
    "{{ 10 ** 100000 }}",
]


class TestInjection:
    @pytest.mark.parametrize("payload", INJECTIONS)
    def test_workspace_payload_is_refused_with_template_and_line(self, tmp_path, payload):
        """Each payload on line 3 of a workspace notice fails as BadInput naming the template and line."""
        text = f"第一行\n{{{{ person.name }}}}\n{payload}\n"
        renderer = DocumentRenderer(workspace_template(tmp_path, "customer_notice.md.j2", text))
        expected = r"template customer_notice\.md\.j2 line 3: refused unsafe expression"
        with pytest.raises(BadInput, match=expected):
            renderer.render("customer_notice", "md", {"person": {"name": "张三"}, "drill": False})

    def test_data_is_never_evaluated(self, tmp_path):
        """Template syntax inside data comes out literally."""
        paths = workspace_template(tmp_path, "customer_notice.md.j2", "{{ person.name }}")
        rendered = DocumentRenderer(paths).render("customer_notice", "md", {"person": {"name": "{{ 7*7 }}"}})
        assert rendered.content.decode() == "{{ 7*7 }}"

    def test_syntax_error_names_template_and_line(self, tmp_path):
        """A broken workspace template is one line naming file and line."""
        paths = workspace_template(tmp_path, "customer_notice.md.j2", "a\n{% if %}\n")
        with pytest.raises(BadInput, match=r"customer_notice\.md\.j2 line 2: syntax error"):
            DocumentRenderer(paths).render("customer_notice", "md", {})

    def test_typo_is_an_undefined_value(self, tmp_path):
        """A misspelt field is reported as undefined, with its line."""
        paths = workspace_template(tmp_path, "customer_notice.md.j2", "\n{{ person.nmae }}")
        with pytest.raises(BadInput, match=r"line 2: undefined value .*nmae"):
            DocumentRenderer(paths).render("customer_notice", "md", {"person": {"name": "x"}})


class TestStaticCheck:
    def test_builtin_templates_pass(self):
        """Every built-in template (text and Word) uses only declared variables."""
        assert [str(p) for p in check_templates([BUILTIN])] == []

    def test_undeclared_variable_is_reported_with_file_and_line(self, tmp_path):
        """A name not declared for the kind is flagged at its file and line."""
        text = "{{ person.name }}\n\n{{ secret_plan }}\n"
        paths = workspace_template(tmp_path, "customer_notice.md.j2", text)
        problems = check_templates(paths)
        assert len(problems) == 1
        assert problems[0].file.name == "customer_notice.md.j2" and problems[0].line == 3
        assert "secret_plan" in problems[0].message

    def test_undeclared_field_of_a_declared_object(self, tmp_path):
        """firm.nmae is flagged and the declared fields are listed."""
        problems = check_templates(workspace_template(tmp_path, "client_notice.md.j2", "{{ firm.nmae }}"))
        assert [p.line for p in problems] == [1]
        assert "firm.nmae" in problems[0].message and "contact_phone" in problems[0].message

    def test_loop_set_and_macro_names_are_not_reported(self, tmp_path):
        """Names a template binds itself (loop, set, macro, import) are fine, item fields are checked."""
        text = (
            '{% import "_advice.j2" as advice %}{{ advice.warning }}\n'
            "{% set total = person.categories|length %}{{ total }}\n"
            "{% for item in person.identifiers %}{{ loop.index }} {{ item.masked }}{% endfor %}\n"
            "{% macro line(x) %}{{ x }}{{ caller() }}{% endmacro %}{% call line(1) %}y{% endcall %}\n"
            "{% for a, b in [(1, 2)] %}{{ a }}{{ b }}{% endfor %}\n"
            "{% for item in person.identifiers %}{{ item.raw }}{% endfor %}\n"
        )
        problems = check_templates(workspace_template(tmp_path, "customer_notice.md.j2", text))
        assert [(p.line, "item.raw" in p.message) for p in problems] == [(6, True)]

    def test_with_block_binds_its_names_and_checks_its_values(self, tmp_path):
        """A {% with %} block is checked like any other: its names are bound, its values are checked."""
        text = (
            "{% with n = person.name, ids = person.identifiers %}{{ n }}{{ ids|length }}{% endwith %}\n"
            "{% with x = person.nmae %}{{ x }}{{ secret_plan }}{% endwith %}\n"
        )
        problems = check_templates(workspace_template(tmp_path, "customer_notice.md.j2", text))
        assert [p.line for p in problems] == [2, 2]
        assert "person.nmae" in problems[0].message and "secret_plan" in problems[1].message

    def test_private_attributes_are_flagged(self, tmp_path):
        """Any attribute starting with '_' is reported, also through the attr filter."""
        text = "{{ firm.__class__ }}\n{{ firm|attr('_x') }}\n"
        problems = check_templates(workspace_template(tmp_path, "customer_notice.md.j2", text))
        assert sorted(p.line for p in problems if "unsafe attribute" in p.message) == [1, 2]

    def test_syntax_and_unknown_filter_errors(self, tmp_path):
        """A syntax error and an unknown filter are both reported with their line."""
        workspace_template(tmp_path, "client_notice.md.j2", "ok\n{{ firm.name|nosuchfilter }}")
        paths = workspace_template(tmp_path, "customer_notice.md.j2", "ok\n\n{% for %}")
        found = {(p.file.name, p.line) for p in check_templates(paths)}
        assert found == {("client_notice.md.j2", 2), ("customer_notice.md.j2", 3)}

    def test_unknown_kind_and_missing_include(self, tmp_path):
        """A file named after no kind, and an include of a missing file, are reported."""
        workspace_template(tmp_path, "custmer_notice.md.j2", "x")
        paths = workspace_template(tmp_path, "customer_notice.md.j2", '{% include "_nowhere.j2" %}')
        messages = " | ".join(p.message for p in check_templates(paths))
        assert "no document kind 'custmer_notice'" in messages and "_nowhere.j2" in messages

    def test_bulletin_cannot_use_customer_data(self, tmp_path):
        """The internal bulletin has no person in its context, so a template printing one is flagged."""
        paths = workspace_template(tmp_path, "internal_bulletin.html.j2", "{{ person.name }}")
        problems = check_templates(paths)
        assert len(problems) == 1 and "'person'" in problems[0].message

    def test_word_template_is_checked_by_paragraph(self, tmp_path):
        """An undeclared variable in a workspace .docx is reported with its paragraph."""
        from docx import Document

        document = Document()
        document.add_paragraph("{{ report.number }}")
        document.add_paragraph("{{ leaked_secret }}")
        folder = tmp_path / "templates" / "zh-CN"
        folder.mkdir(parents=True)
        document.save(folder / "internal_bulletin.docx")
        problems = check_templates([tmp_path / "templates"])
        assert [(p.file.name, p.line) for p in problems] == [("internal_bulletin.docx", 2)]
        assert "leaked_secret" in problems[0].message and "paragraph" in problems[0].message


class TestContextsFile:
    def test_every_kind_is_documented(self):
        """The contexts file and the renderer know the same kinds."""
        assert set(load_contexts()) == set(KINDS)

    def test_every_variable_has_type_and_description(self):
        """Each declared variable, field and list item says its type, and variables say what they are."""

        def walk(name, spec, needs_description=True):
            assert spec.get("type") in {"str", "int", "bool", "date", "datetime", "list", "object"}, name
            if needs_description:
                assert spec.get("description"), name
            for field, sub in spec.get("fields", {}).items():
                walk(f"{name}.{field}", sub)
            if "items" in spec:
                walk(f"{name}[]", spec["items"], needs_description=False)

        for kind, variables in load_contexts().items():
            for name, spec in variables.items():
                walk(f"{kind}:{name}", spec)

    def test_common_blocks_are_in_every_kind(self):
        """firm, incident, drill and generated_at are available to every kind."""
        for variables in load_contexts().values():
            assert {"firm", "incident", "drill", "generated_at", "locale", "timezone"} <= set(variables)
