"""The `seawall` command (also `python -m seawall`).

    seawall run COMMAND...       run COMMAND with seawall applied to its Python programs
                                 (configured by $SEAWALL_CONFIG; no OpenTelemetry set-up needed)
    seawall check-config [FILE]  print the effective policy of every dependency (default:
                                 $SEAWALL_CONFIG); exit 1 on errors
    seawall status [--url URL] [--token-env VAR] [--json]
                                 print a running process's snapshot, from its admin URL
    seawall dlq --db FILE list|show|replay|resolve|purge ...
                                 dead letters (docs/dead-letters.md)
    seawall simulate --preset NAME [--config FILE [--dependency NAME]] [--plot DIR]
                                 what-if: the real policies on a virtual clock (docs/simulate.md)
    seawall --version

The demo runs from a checkout of the repository (`make demo`): it is not part of the package.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__


def check_config(path: str | None) -> int:
    from .config import ConfigError, Router, load_file

    path = path or os.environ.get("SEAWALL_CONFIG")
    if not path:
        print("seawall check-config: give a file, or set SEAWALL_CONFIG", file=sys.stderr)
        return 2
    try:
        router = Router(load_file(path), telemetry=False, dead_letters=False)  # no store opened
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{path}: ok\n")
    print(router.describe())
    return 0


def status(url: str, token_env: str, as_json: bool) -> int:
    import json
    import urllib.error
    import urllib.request

    from .admin.table import render

    token = os.environ.get(token_env)
    if not token:
        print(
            f"seawall status: ${token_env} holds no token (the admin read or control token)",
            file=sys.stderr,
        )
        return 2
    request = urllib.request.Request(
        url.rstrip("/") + "/status", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            snapshot = json.load(answer)
    except urllib.error.HTTPError as error:
        try:
            message = json.load(error).get("message", "")
        except ValueError:
            message = ""
        print(f"seawall status: {url} answered {error.code} {message}".rstrip(), file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(
            f"seawall status: cannot read {url}/status: {getattr(error, 'reason', error)}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(snapshot, indent=2) if as_json else render(snapshot))
    return 0


def simulate(args: argparse.Namespace) -> int:
    from .simulate.cli import run

    return run(
        args.preset,
        seed=args.seed,
        config=args.config,
        dependency=args.dependency,
        plot_dir=args.plot,
        markdown=args.markdown,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seawall", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"seawall {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a command with seawall applied")
    run.add_argument("program", nargs=argparse.REMAINDER)
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", nargs="?", help="default: $SEAWALL_CONFIG")
    show = commands.add_parser("status", help="print a running process's snapshot")
    show.add_argument(
        "--url", default="http://127.0.0.1:9901", help="the admin surface (default: %(default)s)"
    )
    show.add_argument(
        "--token-env",
        default="SEAWALL_ADMIN_READ_TOKEN",
        help="the environment variable holding the token (default: %(default)s)",
    )
    show.add_argument("--json", action="store_true", help="the snapshot as JSON")
    from .deadletters import cli as dlq

    dlq.add_parser(commands)
    sim = commands.add_parser("simulate", help="what-if: the policies against a simulated server")
    from .simulate.presets import PRESETS

    sim.add_argument("--preset", required=True, choices=sorted(PRESETS))
    sim.add_argument("--config", help="a seawall YAML file: its policy runs as one more variant")
    sim.add_argument("--dependency", help="which dependency of --config (default: its defaults)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--plot", metavar="DIR", help="write DIR/PRESET.png (needs matplotlib)")
    sim.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    if args.command == "run":
        from ._startup import run as run_program

        return run_program(args.program)
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "dlq":
        return dlq.run(args)
    if args.command == "simulate":
        return simulate(args)
    return status(args.url, args.token_env, args.json)


if __name__ == "__main__":
    sys.exit(main())
