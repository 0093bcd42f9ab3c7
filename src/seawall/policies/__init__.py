"""Sans-I/O resilience logic: no HTTP client, no telemetry, no sleeping, no real clock.

Every decision takes `now` (seconds, monotonic) and returns what to do, so each policy can be
tested with a fake clock and driven by a sync or an async pipeline alike.
"""
