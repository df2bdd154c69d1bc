"""Stored deadlines, the scan that finds them due, escalation and the scheduler that runs the scan."""
