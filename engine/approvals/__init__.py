"""Steps that need someone else's approval: a request by the operator, an approval by the approver.

A step whose playbook names an approver (the PIPL Art 57 waiver of notice) and a deadline waiver no
longer take a typed ``--approver NAME``: they become a request (:mod:`engine.approvals.service`), and the
step happens only when the approver, under their own identity, runs ``breach approve ID REQUEST``.
"""
