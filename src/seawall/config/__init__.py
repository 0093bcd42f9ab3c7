"""Declarative configuration: a YAML file (or a dict) of defaults and named dependencies, and
the `Router` that gives each request the policy of the dependency it matches."""

from .load import ConfigError, load, load_file, parse_duration
from .router import Match, Router, router_from

__all__ = ["ConfigError", "Match", "Router", "load", "load_file", "parse_duration", "router_from"]
