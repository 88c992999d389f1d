"""Placeholder: being written (see the open issue)."""


def add_parser(subparsers):
    p = subparsers.add_parser("compare", help="(not yet implemented)")
    p.set_defaults(func=lambda args: print("not yet implemented") or 2)
