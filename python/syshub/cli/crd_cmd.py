"""``syshub crd``: print the Trace CustomResourceDefinition(s) as YAML (``kubectl apply -f -``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from syshub.cli.errors import OutputError

GROUP_CHOICES = ("syshub", "swoll", "all")


def add_crd_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Register ``syshub crd`` on the top-level subparsers (its handler in ``handler``)."""
    c = sub.add_parser(
        "crd",
        help="print the Trace CustomResourceDefinition YAML",
        description="Print the Trace CRD, generated from the Trace model: "
        "syshub crd | kubectl apply -f -",
        formatter_class=formatter,
    )
    c.add_argument(
        "--group",
        choices=GROUP_CHOICES,
        default="syshub",
        help="syshub.io, swoll's tools.swoll.criticalstack.com, or both",
    )
    c.set_defaults(handler=run_crd)


def groups_of(choice: str) -> list[str]:
    return ["syshub", "swoll"] if choice == "all" else [choice]


def run_crd(args: argparse.Namespace) -> int:
    from syshub.spec.crd import crd_yaml

    text = crd_yaml(groups_of(args.group))
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as e:
        raise OutputError(f"cannot write the CRD: {e.strerror or e}") from None
    return 0
