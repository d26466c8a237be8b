"""The registry of `cnnport` subcommands."""

from __future__ import annotations

import argparse

from cnnport.runtime import Registry

__all__ = ["COMMANDS", "Command", "command"]


class Command:
    """A subcommand: a name, one line of help, its flags, and what it does."""

    name: str = ""
    help: str = ""
    description: str = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Adds this subcommand's flags; every flag gets a help text."""

    def run(self, args: argparse.Namespace) -> int:
        """Does the work; returns the exit status."""
        raise NotImplementedError


COMMANDS: Registry[Command] = Registry("subcommand")


def command(cls: type[Command]) -> type[Command]:
    """Class decorator registering a Command subclass under its ``name``."""
    COMMANDS.add(cls.name, cls())
    return cls
