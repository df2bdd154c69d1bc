"""Side effects exactly once: the claim/lease/fence mechanism and the channels (SMTP, webhooks)."""
