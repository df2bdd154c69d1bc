"""Correction emails answer the notice they correct: one thread in the reader's mail program."""

from __future__ import annotations

from test_delivery import EMAILED, mailing, smtp  # noqa: F401
from test_people import CONTENT

from engine.notices.contexts import NoticeContent
from engine.notices.correction import correct_content


class TestCorrectionThread:
    def test_correction_email_replies_to_the_original_notice(self, mailing, smtp, store):  # noqa: F811
        """Sent through a real SMTP server: each correction says so in its subject, names the Message-ID
        of the notice that person received in In-Reply-To and References, and quotes old and new text."""
        m = mailing()
        assert m.send().sent.sent == len(EMAILED)
        original = {rcpt[0]: str(msg["Message-ID"]) for rcpt, msg in smtp.received}
        assert set(original) == EMAILED and len(set(original.values())) == len(EMAILED)
        smtp.received.clear()

        cause = {"zh-CN": "外包人员越权访问", "en": "A contractor overreached"}
        content = NoticeContent.parse({"incident": {**CONTENT["incident"], "cause": cause}}, "corrected")
        done = correct_content(store, m.incident, content, actor="alice", locales=("zh-CN", "en"))
        assert done.recipients >= len(EMAILED)
        assert m.send().sent.sent == len(EMAILED)

        received = {rcpt[0]: msg for rcpt, msg in smtp.received}
        assert set(received) == EMAILED  # one correction each, no notice sent twice
        for address, message in received.items():
            assert message["In-Reply-To"] == original[address]
            assert message["References"] == original[address]
            assert str(message["Message-ID"]) not in original.values()
        chinese = received["zhangsan@example.com"]
        assert chinese["Subject"].startswith("更正通知")
        body = chinese.get_body(("plain",)).get_content()
        assert "前员工导出客户台账" in body and "外包人员越权访问" in body
        english = received["john.smith@example.com"]
        assert "orrect" in english["Subject"]
        text = english.get_body(("plain",)).get_content()
        assert "A former employee exported the ledger" in text and "A contractor overreached" in text
