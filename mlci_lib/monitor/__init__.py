"""Monitoring a served model: alert rules and a dashboard (:mod:`.render`), and the monitor verdict."""
