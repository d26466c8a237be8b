"""The `cnnport` command: a thin layer of subcommands over the library.

Each subcommand is a :class:`~cnnport.apps.command.Command` registered in
``COMMANDS``; its module is imported when the parser is built, so it must not import
heavy packages at module level (do that inside ``run``).

Example:
    $ cnnport predict model.onnx photos/ --top-k 3 --json
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from cnnport.runtime import CnnportError, __version__

from .command import COMMANDS

__all__ = ["build_parser", "main"]

logger = logging.getLogger("cnnport")


def _register_commands() -> None:
    """Imports every module of apps/commands/, each registering its command."""
    from . import commands

    for module in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"{commands.__name__}.{module.name}")


def build_parser() -> argparse.ArgumentParser:
    _register_commands()
    parser = argparse.ArgumentParser(
        prog="cnnport",
        description="Train an image classifier, export it to ONNX, and run it live on a camera.",
        epilog="Run `cnnport COMMAND --help` for the flags of one command.",
    )
    parser.add_argument("--version", action="version", version=f"cnnport {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        dest="log_verbose",
        action="count",
        default=0,
        help="more log output (-vv for debug)",
    )
    parser.add_argument(
        "-q", "--quiet", dest="log_quiet", action="store_true", help="only warnings and errors on stderr"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        cmd = COMMANDS.get(name)
        child = sub.add_parser(
            name,
            help=cmd.help,
            description=cmd.description or cmd.help,
            formatter_class=_DefaultsHelpFormatter,
        )
        cmd.add_arguments(child)
        child.set_defaults(handler=cmd)
    return parser


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default where its help does not say it already and where there is
    one to show: no "(default: None)" after "(default: SOURCE/model.onnx)", none for
    switches that are off or lists that start empty, nor for a --no-X switch (its
    "(default: True)" is the feature's, and read as the switch being on)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text, default = action.help or "", action.default
        # By identity: 0 and 0.0 equal False, and their defaults are worth showing.
        if "default:" in text or default is None or default is False or default is argparse.SUPPRESS:
            return text
        if isinstance(action, argparse._StoreFalseAction):  # --no-cam: "(default: True)" reads as on
            return text
        if isinstance(default, list) and not default:
            return text
        return super()._get_help_string(action)


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    if verbose < 2:
        # Their step-by-step INFO lines drown ours; -vv shows them.
        for name in ("tf2onnx", "absl", "h5py", "matplotlib", "onnxslim", "onnxruntime", "tensorflow"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # TensorFlow's later C++ INFO/WARNING lines; the few it prints before absl's
        # logging initializes (oneDNN, CUDA drivers) ignore this and cannot be silenced.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cnnport` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    _configure_logging(args.log_verbose, args.log_quiet)
    try:
        return int(args.handler.run(args) or 0)
    except CnnportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of standard output went away (`cnnport predict ... | head`): stop
        # quietly, as other command-line tools do, and keep Python from reporting it again
        # when it flushes standard output at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it
    except OSError as exc:
        if exc.filename is None:
            raise
        # A file the system refused (a read-only file system, no permission, a full disk)
        # where no check of ours came first: the path and the reason, without a traceback
        # (-vv logs it).
        logging.getLogger(__name__).debug("OSError", exc_info=True)
        target = f" -> {exc.filename2!r}" if exc.filename2 else ""
        print(f"error: {exc.strerror or exc}: {str(exc.filename)!r}{target}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
