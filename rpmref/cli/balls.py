"""``rpmref balls make | train | compare``: the bouncing-balls experiment (Sec. 5, Appendix D)."""
from rpmref.cli import compare, make, train
from rpmref.cli.common import OneLineErrorParser


def add_parser(subparsers):
    """Register ``rpmref balls`` and its three subcommands."""
    balls_parser = subparsers.add_parser(
        "balls", help="the bouncing-balls experiment (Sec. 5, Appendix D)",
        description="Generate bouncing-balls videos, train the CNN encoder with an "
        "InfoNCE critic, and compare critics.")
    commands = balls_parser.add_subparsers(dest="balls_command", metavar="BALLS_COMMAND",
                                           parser_class=OneLineErrorParser)
    commands.required = False   # rpmref.cli.main says what is missing
    for module in (make, train, compare):
        module.add_parser(commands)
