#!/usr/bin/env python3
"""Prints the token of the newest link to PAGE in the mail written to ADDRESS under FOLDER.

Usage: scripts/mail-token.py FOLDER ADDRESS PAGE   (PAGE: verify-email, reset-password,
invitations/accept). `make run` writes each message as an .eml file in .run/mail/ instead of
sending it; this reads them as a mail client would (MIME, base64 bodies). Exits 1 when no such
mail is there yet.
"""
import email
import email.policy
import glob
import os
import re
import sys


def newest_token(folder: str, address: str, page: str) -> str | None:
    link = re.compile(r"/" + re.escape(page) + r"\?token=([A-Za-z0-9_.-]+)")
    for path in sorted(glob.glob(os.path.join(folder, "*.eml")), reverse=True):
        with open(path, "rb") as file:
            message = email.message_from_binary_file(file, policy=email.policy.default)
        if address.lower() not in str(message["To"]).lower():
            continue
        body = message.get_body(preferencelist=("plain",))
        found = link.search(body.get_content()) if body else None
        if found:
            return found.group(1)
    return None


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    token = newest_token(*sys.argv[1:])
    if token is None:
        sys.exit(1)
    print(token)
