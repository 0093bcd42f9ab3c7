"""The `seawall` command (also `python -m seawall`).

    seawall check-config FILE   print the effective policy of every dependency; exit 1 on errors
    seawall status [--url URL] [--token-env VAR] [--json]
                                print a running process's snapshot, from its admin URL
    seawall demo                run the demo (from a checkout of the repository)
"""

from __future__ import annotations

import argparse
import sys


def check_config(path: str) -> int:
    from .config import ConfigError, Router, load_file
    try:
        router = Router(load_file(path), telemetry=False)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{path}: ok\n")
    print(router.describe())
    return 0


def status(url: str, token_env: str, as_json: bool) -> int:
    import json
    import os
    import urllib.error
    import urllib.request

    from .admin.table import render
    token = os.environ.get(token_env)
    if not token:
        print(f"seawall status: ${token_env} holds no token (the admin read or control token)",
              file=sys.stderr)
        return 2
    request = urllib.request.Request(url.rstrip("/") + "/status",
                                     headers={"Authorization": f"Bearer {token}"})
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
        print(f"seawall status: cannot read {url}/status: {getattr(error, 'reason', error)}",
              file=sys.stderr)
        return 1
    print(json.dumps(snapshot, indent=2) if as_json else render(snapshot))
    return 0


def demo(speed: float) -> int:
    try:
        from integrations import demo as module
    except ImportError:
        print("seawall demo: the demo lives in the repository's integrations/ folder; run it "
              "from a checkout (make demo)", file=sys.stderr)
        return 1
    import asyncio
    asyncio.run(module.main(speed))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seawall", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    show = commands.add_parser("status", help="print a running process's snapshot")
    show.add_argument("--url", default="http://127.0.0.1:9901",
                      help="the admin surface (default: %(default)s)")
    show.add_argument("--token-env", default="SEAWALL_ADMIN_READ_TOKEN",
                      help="the environment variable holding the token (default: %(default)s)")
    show.add_argument("--json", action="store_true", help="the snapshot as JSON")
    run_demo = commands.add_parser("demo", help="run the demo")
    run_demo.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "status":
        return status(args.url, args.token_env, args.json)
    return demo(args.speed)


if __name__ == "__main__":
    sys.exit(main())
