"""cnnport.apps: the `cnnport` command and the apps built on the runtime engine.

Heavy packages (TensorFlow, tf2onnx) are imported only inside the subcommands that
need them, so `cnnport --help`, `cnnport predict` and `cnnport webcam` start fast.
"""

from .cli import main
from .command import COMMANDS, Command, command

__all__ = ["COMMANDS", "Command", "command", "main"]
