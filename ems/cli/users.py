"""``ems users``: the console's users (``add``, ``remove``, ``list``); passwords as argon2 hashes."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from pathlib import Path

from ems.config import load_portfolio


def register(subparsers) -> None:
    parser = subparsers.add_parser("users", help="the console's users: add, remove, list (docs/console.md)")
    commands = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    for name, text in (
        ("add", "add a user (asks for the password; or from the variable --password-env names)"),
        ("remove", "remove a user"),
        ("list", "list users and roles"),
    ):
        sub = commands.add_parser(name, help=text)
        where = sub.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", type=Path, help="take the users file from console.users_file")
        where.add_argument("--users", type=Path, help="the users file itself")
        if name != "list":
            sub.add_argument("name")
        if name == "add":
            sub.add_argument("--role", required=True, choices=("viewer", "operator"))
            sub.add_argument(
                "--password-env",
                metavar="VAR",
                help="read the password from this environment variable (for scripts; never on the command line)",
            )
            sub.add_argument("--replace", action="store_true", help="change an existing user's role and password")
        sub.set_defaults(handler=run)


def users_path(args: argparse.Namespace) -> Path:
    return args.users if args.users else Path(load_portfolio(args.config).console.users_file)


def run(args: argparse.Namespace) -> int:
    from ems.web.users import UsersError, add_user, read_users, remove_user

    path = users_path(args)
    try:
        if args.users_command == "list":
            for user in sorted((read_users(path) if path.exists() else {}).values(), key=lambda u: u.name):
                print(f"{user.name}\t{user.role}")
            return 0
        if args.users_command == "remove":
            remove_user(path, args.name)
            print(f"removed {args.name} from {path}")
            return 0
        password = _password(args)
        if password is None:
            return 2
        user = add_user(
            path, args.name, args.role, password, dt.datetime.now(dt.UTC).astimezone(), replace=args.replace
        )
    except UsersError as error:
        print(f"ems users: {error}", file=sys.stderr)
        return 2
    print(f"{'changed' if args.replace else 'added'} {user.name} ({user.role}) in {path}")
    return 0


def _password(args: argparse.Namespace) -> str | None:
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            print(f"ems users: environment variable {args.password_env} is not set or empty", file=sys.stderr)
            return None
        return value
    if not sys.stdin.isatty():
        print("ems users: no terminal to ask the password on: give --password-env VAR", file=sys.stderr)
        return None
    first = getpass.getpass(f"password for {args.name}: ")
    if first != getpass.getpass("again: "):
        print("ems users: the two passwords differ", file=sys.stderr)
        return None
    return first
