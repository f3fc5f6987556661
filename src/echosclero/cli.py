"""The ``echosclero`` command.

Each sub-command lives in ``echosclero.commands.<name>`` and exposes ``register(subparsers)``; heavy
imports happen inside the command's ``run`` so that ``echosclero --help`` stays instant.

Error policy: any :class:`~echosclero.errors.EchoScleroError` becomes exactly one line on stderr
(``echosclero: error: ...``) and exit code 2; anything unexpected becomes one line naming it as an
internal error (exit 70) unless ``--debug`` asks for the traceback. Library warnings are silenced so
that stderr carries only that line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from echosclero import __version__
from echosclero.errors import EchoScleroError, one_line

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = (
    "demo",
    "simulate",
    "info",
    "analyze",
    "reflux",
    "serve",
    "users",
    "attach",
    "export",
    "handout",
    "dicom_receive",
    "dicom_forward",
    "dicom_file",
)

EPILOG = """\
examples:
  echosclero simulate --list                       the built-in leg ultrasound scenarios
  echosclero simulate gsv_injection --out sim/     a simulated cine as US DICOM + truth.json
  echosclero info sim/gsv_injection.dcm            what a file holds, and its calibration
  echosclero analyze sim:gsv_injection --video out.mp4
  echosclero reflux doppler.dcm --plot reflux.png

Geometry is reported in millimetres from the scanner's calibration (DICOM ultrasound regions);
an image without calibration is refused unless you give --mm-per-px.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="echosclero",
        description="EchoSclero: ultrasound-guided sclerotherapy workstation (guidance, duplex mapping, "
        "clinic record).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"echosclero {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and library warnings")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"echosclero.commands.{name}")
        except ModuleNotFoundError as exc:  # a command not built yet in this checkout
            if exc.name != f"echosclero.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def _quiet_libraries() -> None:
    warnings.simplefilter("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    # Libraries (pydicom among them) reset their own logger levels when imported, after this runs: switch
    # library logging off globally instead; problems reach the user as exceptions, one line each.
    logging.disable(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.debug:
        _quiet_libraries()
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        result = args.func(args)
    except EchoScleroError as exc:
        if args.debug:
            raise
        print(f"echosclero: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("echosclero: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        if args.debug:
            raise
        text = one_line(str(exc).splitlines()[0]) if str(exc) else ""
        print(
            f"echosclero: internal error: {type(exc).__name__}: {text} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return 70
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
