"""Runnable glue outside the library: the fault-injecting upstream and the demo."""
