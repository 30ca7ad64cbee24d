"""Create the first admin of a stage, or promote an existing user.

    make admin STAGE=dev EMAIL=ops@example.com            # prompts for a password
    python -m scripts.create_admin --email ops@example.com --outputs stage-outputs.json

The stage's settings come from the environment the functions use (see
chalicelib/config.py) or from ``--outputs``, a JSON file of those variables:
the local stage writes one, and for a deployed stage it is the stack's outputs
(``docs/deploy.md`` shows the one-line ``aws cloudformation`` command).
It goes through the same services as the API, so the admin is a normal user
(Cognito, CONFIRMED, permanent password) with the ``admin`` role on its profile.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from chalicelib.bootstrap import Container
from chalicelib.config import Settings
from chalicelib.domain.errors import DomainError, NotFoundError
from chalicelib.domain.users import ROLE_ADMIN, ROLE_USER, Registration, normalise_email, password_problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--email", required=True)
    parser.add_argument("--name", default="Administrator")
    parser.add_argument("--password", help="for a new user; prompted for when omitted")
    parser.add_argument("--stage", default=os.environ.get("STAGE", "local"))
    parser.add_argument("--outputs", type=Path, help="JSON file of the stage's environment variables")
    args = parser.parse_args(argv)

    if args.outputs:
        # Into the process environment, not just the settings: boto3 reads the endpoint
        # (AWS_ENDPOINT_URL) and credentials from there, e.g. for the local stage's outputs.
        os.environ.update(json.loads(args.outputs.read_text()))
    env = dict(os.environ)
    env["STAGE"] = args.stage
    users = Container(Settings.from_env(env)).users
    email = normalise_email(args.email)
    try:
        profile = users.grant_admin(email)
        print(f"{email} is now an admin (user_id {profile.user_id})")
        return 0
    except NotFoundError:
        print(f"No user {email} yet: creating one")
    password = args.password or getpass.getpass(f"Password for new admin {email}: ")
    problems = password_problems(password)
    if problems:
        print("Password too weak: needs " + ", ".join(problems), file=sys.stderr)
        return 2
    try:
        profile = users.register(Registration(email, password, args.name, False), roles=(ROLE_USER, ROLE_ADMIN))
    except DomainError as exc:
        print(f"Could not create {email}: {exc.message}", file=sys.stderr)
        return 1
    print(f"Created admin {email} (user_id {profile.user_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
