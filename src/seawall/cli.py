"""The `seawall` command (also `python -m seawall`).

    seawall check-config FILE   print the effective policy of every dependency; exit 1 on errors
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
    run_demo = commands.add_parser("demo", help="run the demo")
    run_demo.add_argument("--speed", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file)
    return demo(args.speed)


if __name__ == "__main__":
    sys.exit(main())
