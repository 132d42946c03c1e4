#!/usr/bin/env python3
"""Prints the token of the newest link to PAGE in the mail written to ADDRESS under FOLDER, or
with --link the whole link, to open in a browser.

Usage: scripts/mail-token.py [--link] FOLDER ADDRESS PAGE   (PAGE: verify-email, reset-password,
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


def newest_link(folder: str, address: str, page: str) -> re.Match | None:
    link = re.compile(r"\S*/" + re.escape(page) + r"\?token=([A-Za-z0-9_.-]+)")
    for path in sorted(glob.glob(os.path.join(folder, "*.eml")), reverse=True):
        with open(path, "rb") as file:
            message = email.message_from_binary_file(file, policy=email.policy.default)
        if address.lower() not in str(message["To"]).lower():
            continue
        body = message.get_body(preferencelist=("plain",))
        found = link.search(body.get_content()) if body else None
        if found:
            return found
    return None


if __name__ == "__main__":
    arguments = sys.argv[1:]
    whole = arguments[:1] == ["--link"]
    if whole:
        arguments = arguments[1:]
    if len(arguments) != 3:
        sys.exit(__doc__)
    found = newest_link(*arguments)
    if found is None:
        sys.exit(1)
    print(found.group(0) if whole else found.group(1))
