"""The console's journeys, each walked by a person in headless Chromium against the real
services a Swift test started (Tests/GatewayServiceTests/ConsoleBrowserTests.swift):

    python journeys.py NAME --base http://127.0.0.1:PORT --out FOLDER --inputs JSON

Exit status 0 and, on the last line of standard output, a JSON object of what the journey
learned; any failed expectation exits 1 with its reason.
"""

import argparse
import base64
import hashlib
import hmac
import email
import email.policy
import glob
import os
import re
import http.server
import io
import json
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

import pyotp
import zxingcpp
from PIL import Image
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from console_browser import Browser, JourneyFailure, expect, otpauth_secret


def sign_in(browser, email, password, code=None):
    browser.open("/console/")
    expect(browser.path.startswith("/console/sign-in"), f"no session: the sign-in page, not {browser.path}")
    browser.fill("Email", email, secret=False)
    browser.fill("Password", password)
    browser.press("Sign in")
    if code is not None:
        expect(browser.heading() == "Your second factor", f"the MFA step, not {browser.heading()!r}")
        browser.fill("Code", code)
        browser.press("Continue")
    expect(browser.heading() == "Welcome", f"signed in, not {browser.heading()!r}: {browser.text()}")


def sign_out(browser):
    browser.press("Sign out")
    expect(browser.path == "/console/sign-in", f"signed out to the sign-in page, not {browser.path}")


def security_settings(browser, inputs):
    """Settings → Security: enable MFA by the QR code, save the backup codes, sign in again
    with a code and with a backup code, a refused password change, MFA off."""
    email, password = inputs["email"], inputs["password"]
    browser.open("/console/")
    browser.page("sign-in")
    sign_in(browser, email, password)
    browser.page("home")
    cookies = browser.cookies()
    for name in ("rampart_session", "rampart_access", "rampart_csrf"):
        expect(name in cookies, f"the {name} cookie is set")
        expect(cookies[name]["httpOnly"] and cookies[name].get("sameSite") == "Lax", f"{name}: {cookies[name]}")

    browser.press("Security")
    expect(browser.heading() == "Security" and "MFA is off" in browser.text(), browser.text())
    browser.page("security")

    # Enable MFA: the password again, then the QR code, read from the screen as a phone would.
    browser.fill("Your password", "not the password")
    browser.press("Enable MFA")
    expect(browser.error_of("Your password"), "a wrong password is said next to its field")
    browser.page("security-wrong-password")
    browser.fill("Your password", password)
    browser.press("Enable MFA")
    expect(browser.heading() == "Enable MFA", browser.text())
    browser.page("mfa-enroll")
    image = Image.open(io.BytesIO(browser.screenshot_png(browser.driver.find_element(By.CSS_SELECTOR, "img.qr"))))
    decoded = zxingcpp.read_barcodes(image)
    expect(decoded and decoded[0].text.startswith("otpauth://totp/"), f"the QR code reads as an otpauth URI: {decoded}")
    secret = otpauth_secret(decoded[0].text)
    typed = browser.driver.find_element(By.ID, "secret").text.replace(" ", "")
    expect(secret == typed, f"the QR code and the key to type agree: {secret} / {typed}")
    browser.secrets.add(secret)
    totp = pyotp.TOTP(secret)
    browser.fill("6-digit code", "000000")
    browser.press("Turn MFA on")
    expect(browser.error_of("6-digit code"), "a wrong code is said next to its field")
    browser.fill("6-digit code", totp.now())
    browser.press("Turn MFA on")
    expect(browser.heading() == "Your backup codes", browser.text())
    browser.page("backup-codes")
    codes = [element.text for element in browser.driver.find_elements(By.CSS_SELECTOR, ".codes code")]
    expect(len(codes) == 10, f"ten backup codes: {codes}")
    browser.secrets.update(codes)
    name, saved = browser.download("Download as text")
    expect(name == "rampart-backup-codes.txt" and all(code in saved for code in codes), f"the codes download as a text file: {name}")
    browser.press("I have saved them")
    expect("MFA is on" in browser.text() and "10 unused backup codes" in browser.text(), browser.text())
    browser.page("security-mfa-on")

    # Sign in again: with a code (the next step's: enrolment spent this one), then a backup code.
    sign_out(browser)
    browser.page("signed-out")
    browser.open("/console/")
    browser.fill("Email", email, secret=False)
    browser.fill("Password", password)
    browser.press("Sign in")
    browser.page("mfa-step")
    browser.fill("Code", totp.at(time.time() + 30))
    browser.press("Continue")
    expect(browser.heading() == "Welcome", browser.text())
    sign_out(browser)
    sign_in(browser, email, password, code=codes[0])
    browser.open("/console/settings/security")
    expect("9 unused backup codes" in browser.text(), browser.text())
    expect("This browser" in browser.text(), "the sessions list this browser's")

    # A new password the policy refuses: said next to the field, nothing changed.
    browser.fill("Current password", password)
    browser.fill("New password", "short")
    browser.press("Change password")
    expect(browser.error_of("New password"), f"the policy's refusal next to the field: {browser.text()}")
    browser.page("security-password-refused")

    # Readable at 320 px: nothing wider than the screen.
    browser.driver.set_window_size(320, 900)
    browser.open("/console/settings/security")
    width = browser.driver.execute_script("return document.documentElement.scrollWidth")
    wide = browser.driver.execute_script(
        "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 320)"
        ".map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)"
    )
    expect(width <= 320, f"the page is {width} px wide at 320 px: {wide}")
    browser.page("security-320px")
    browser.driver.set_window_size(1280, 1000)

    # MFA off needs a second factor: a code, here the next step's.
    browser.fill("Code from your app, or a backup code", codes[1])
    browser.press("Turn MFA off")
    expect("MFA is off" in browser.text(), browser.text())
    return {"backup_codes_used": 2}


def api_call(browser, path, key, method="GET"):
    """A program's request with an API key, as curl makes it: the status and the JSON answer."""
    request = urllib.request.Request(browser.base + path, method=method, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def with_proof(browser, password, act):
    """`act()` (fill a form, press its button), once the console has a recent proof: its
    re-authentication page answered with the password, then `act()` again."""
    act()
    for _ in range(3):
        if browser.heading() != "Confirm it is you":
            return
        browser.page("confirm")
        browser.fill("Your password", password)
        browser.press("Confirm")
        expect("Thank you" in browser.text(), f"back from the proof: {browser.text()}")
        act()
    raise JourneyFailure("the console kept asking for a proof")


def api_keys(browser, inputs):
    """API keys: refused empty form, a new key after re-authentication, used by a program,
    the unused-for-90-days filter, rotation with a grace period, revocation."""
    email, password = inputs["email"], inputs["password"]
    sign_in(browser, email, password)
    browser.press("API keys")
    expect(browser.heading() == "API keys" and "There is no key yet" in browser.text(), browser.text())
    browser.page("api-keys")
    browser.press("Create key")
    expect(browser.error_of("Name"), "an empty name is said next to its field")
    expect("Choose at least one scope" in browser.text(), browser.text())
    browser.page("api-keys-refused")

    # Older than the step-up window: the console asks for the password first.
    time.sleep(inputs["step_up_seconds"] + 1)

    def create():
        browser.fill("Name", "Deploy bot", secret=False)
        box = browser.driver.find_element(By.ID, "scope-boards:read")
        if not box.is_selected():
            box.click()
        browser.press("Create key")

    headings = []

    def create_noting():
        create()
        headings.append(browser.heading())

    with_proof(browser, password, create_noting)
    expect(headings[0] == "Confirm it is you", f"a new key needs a recent proof first: {headings}")
    expect(browser.heading() == "Your new API key", browser.text())
    browser.page("api-key-created")
    key = browser.driver.find_element(By.ID, "new-key").get_attribute("value")
    expect(key.startswith("rk_"), f"the key is shown: {key[:3]}…")
    browser.secrets.add(key)

    status, whoami = api_call(browser, "/v1/auth/whoami", key)
    expect(status == 200 and whoami.get("scopes") == ["boards:read"], f"the key works with its scope: {status} {whoami}")
    tenant = whoami["tenant_id"]
    status, _ = api_call(browser, f"/v1/tenants/{tenant}/api-keys", key)
    expect(status in (401, 403), f"a key does not manage keys: {status}")

    browser.press("I have copied it")
    expect("Deploy bot" in browser.text() and key[:11] in browser.text(), f"listed by its prefix: {browser.text()}")
    expect("Never" not in browser.driver.find_element(By.CSS_SELECTOR, "tbody tr td:nth-child(4)").text, "last used: just now")
    browser.press("Show only keys unused for 90 days")
    expect("No key has gone unused for 90 days" in browser.text(), browser.text())
    browser.page("api-keys-unused")
    browser.press("Show every key")

    with_proof(browser, password, lambda: browser.press(f"Rotate Deploy bot ({key[:11]})"))
    expect(browser.heading() == "Your new API key" and "24 hours" in browser.text(), browser.text())
    rotated = browser.driver.find_element(By.ID, "new-key").get_attribute("value")
    browser.secrets.add(rotated)
    expect(rotated != key, "rotation makes a new key")
    expect(api_call(browser, "/v1/auth/whoami", rotated)[0] == 200, "the new key works")
    expect(api_call(browser, "/v1/auth/whoami", key)[0] == 200, "the old key works for its grace period")

    browser.press("I have copied it")
    expect("Replaced" in browser.text(), browser.text())
    browser.page("api-keys-rotated")
    browser.press(f"Revoke Deploy bot ({rotated[:11]})")
    expect("The key is revoked" in browser.text(), browser.text())
    deadline = time.time() + 10
    while api_call(browser, "/v1/auth/whoami", rotated)[0] != 401 and time.time() < deadline:
        time.sleep(0.2)
    expect(api_call(browser, "/v1/auth/whoami", rotated)[0] == 401, "a revoked key is refused")
    return {"tenant": tenant}


def mailed_link(folder, address, page, timeout=30):
    """The newest link to `page` in the mail the mail service wrote for `address`, waiting for
    it as a person waits for their mail."""
    pattern = re.compile(r"(https?://[^\s]+/console/" + re.escape(page) + r"\?token=[A-Za-z0-9_.-]+)")
    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in sorted(glob.glob(os.path.join(folder, "*.eml")), key=os.path.getmtime, reverse=True):
            with open(path, "rb") as file:
                message = email.message_from_binary_file(file, policy=email.policy.default)
            if address.lower() not in str(message["To"]).lower():
                continue
            found = pattern.search(message.get_body(preferencelist=("plain",)).get_content())
            if found:
                return found.group(1)
        time.sleep(0.25)
    raise JourneyFailure(f"no mail to {address} with a link to {page}")


def team(browser, inputs):
    """Sign up, confirm the address from the mail, sign in; invite a colleague, who accepts in
    a second browser profile as a new person; change their role; disable them and see their
    session end; enable them again; the access review; the colleague resets their password;
    someone signed in elsewhere joins and switches between their organizations."""
    mail, owner, colleague = inputs["mail_folder"], inputs["owner"], inputs["colleague"]
    password = inputs["password"]
    browser.open("/console/sign-in")
    browser.press("Create an account for your organization")
    browser.page("sign-up")
    browser.press("Create the account")
    expect(browser.error_of("Work email") and browser.error_of("Password"), f"each refused field says why: {browser.text()}")
    browser.page("sign-up-refused")
    browser.fill("Your name", "Grace Hopper", secret=False)
    browser.fill("Work email", owner, secret=False)
    browser.fill("Password", password)
    browser.fill("Name", "Acme Compilers", secret=False)
    browser.fill("Country (two letters, such as FR or US)", "US", secret=False)
    browser.fill("Business registration number (SIRET, EIN, VAT number…)", "94-2404110", secret=False)
    browser.press("Create the account")
    expect(browser.heading() == "Check your mail", browser.text())
    browser.page("signed-up")

    browser.driver.get(mailed_link(mail, owner, "verify-email"))
    browser.page("verify-email")
    browser.press("Confirm my address")
    expect("Your address is confirmed" in browser.text(), browser.text())
    sign_in(browser, owner, password)
    expect("Acme Compilers" in browser.driver.find_element(By.TAG_NAME, "header").text, "the header names the organization")

    browser.press("Members")
    expect("Only one person can manage this organization" in browser.text(), browser.text())
    browser.page("members")
    browser.fill("Email", colleague, secret=False)
    browser.press("Send the invitation")
    expect("The invitation is sent" in browser.text() and colleague in browser.text(), browser.text())
    browser.page("members-invited")

    other = Browser(browser.base, browser.out, name="colleague")
    try:
        other.driver.get(mailed_link(mail, colleague, "invitations/accept"))
        other.page("invitation")
        other.fill("Your name", "Lin Colleague", secret=False)
        other.fill("Choose a password", "short")
        other.press("Create my account and join")
        expect(other.error_of("Choose a password"), f"the password policy, next to the field: {other.text()}")
        other.fill("Your name", "Lin Colleague", secret=False)
        other.fill("Choose a password", password)
        other.press("Create my account and join")
        expect("Your account is ready" in other.text(), other.text())
        sign_in(other, colleague, password)
        other.page("colleague-home")

        browser.open("/console/members")
        Select(browser.field(f"Role of {colleague}")).select_by_visible_text("Admin")
        browser.press(f"Change the role of {colleague}")
        expect("The role is changed" in browser.text(), browser.text())
        expect("Only one person" not in browser.text(), "two people manage it now")
        browser.page("members-role-changed")

        browser.press(f"Disable {colleague}")
        expect("The member is disabled" in browser.text(), browser.text())
        # The colleague's session ended: their next page is the sign-in.
        deadline = time.time() + 10
        while time.time() < deadline:
            other.open("/console/")
            if other.path.startswith("/console/sign-in"):
                break
            time.sleep(0.5)
        expect(other.path.startswith("/console/sign-in"), f"a disabled member's session ends: {other.path}")
        browser.press(f"Enable {colleague}")
        expect("can sign in again" in browser.text(), browser.text())

        browser.press("Access review")
        expect(owner in browser.text() and colleague in browser.text(), browser.text())
        browser.page("access-review")
        name, report = browser.download("Download as CSV")
        expect(name.endswith(".csv") and owner in report and colleague in report, f"the report as CSV: {name} {report[:300]}")
        browser.fill("Note (optional)", "Q4 review", secret=False)
        browser.press("Mark the review complete")
        expect("recorded as complete" in browser.text() and "The last review was completed" in browser.text(), browser.text())

        # The colleague forgot their password: the reset, from the sign-in page and the mail.
        other.open("/console/sign-in")
        other.press("Forgot your password?")
        other.page("reset-request")
        other.fill("Email", colleague, secret=False)
        other.press("Send the link")
        expect(f"If {colleague} has an account" in other.text(), other.text())
        other.driver.get(mailed_link(mail, colleague, "reset-password"))
        other.page("reset-new-password")
        other.fill("New password", "short")
        other.press("Set the new password")
        expect(other.error_of("New password"), f"the policy's refusal by the field: {other.text()}")
        renewed = password + "-renewed"
        other.fill("New password", renewed)
        other.press("Set the new password")
        expect("Your password is changed" in other.text(), other.text())
        sign_in(other, colleague, renewed)
        other.finish()
    finally:
        other.quit()

    # Someone with an account elsewhere joins, signed in, and switches between organizations.
    browser.open("/console/members")
    browser.fill("Email", inputs["member"], secret=False)
    browser.press("Send the invitation")
    expect("The invitation is sent" in browser.text(), browser.text())
    member = Browser(browser.base, browser.out, name="member")
    try:
        sign_in(member, inputs["member"], password)
        home = member.driver.find_element(By.CSS_SELECTOR, ".organization").text
        member.driver.get(mailed_link(mail, inputs["member"], "invitations/accept"))
        member.page("invitation-signed-in")
        member.press("Join the organization")
        expect(member.heading() == "Welcome" and member.driver.find_element(By.CSS_SELECTOR, ".organization").text == "Acme Compilers", member.text())
        member.page("joined")
        Select(member.field("Switch to another organization")).select_by_index(0)
        member.press("Switch")
        back = member.driver.find_element(By.CSS_SELECTOR, ".organization").text
        expect(member.heading() == "Welcome" and back == home, f"back in the first organization: {back}, not {home}")
        member.finish()
    finally:
        member.quit()
    return {}


def organization(browser, inputs):
    """Organization and IP allowlist: the name and policy saved; an allowlist that would lock
    the owner out refused by its field; one that allows them saved; a sign-in from elsewhere
    refused."""
    email, password = inputs["email"], inputs["password"]
    sign_in(browser, email, password)
    browser.press("Organization")
    browser.page("organization")
    browser.fill("Name", "", secret=False)
    browser.press("Save the details")
    expect(browser.error_of("Name"), f"an empty name is refused by its field: {browser.text()}")
    browser.fill("Name", "Lovelace Analytical Engines", secret=False)
    browser.press("Save the details")
    expect("Saved." in browser.text(), browser.text())
    expect("Lovelace Analytical Engines" in browser.driver.find_element(By.TAG_NAME, "header").text, "the header has the new name")
    Select(browser.field("Passwords must change")).select_by_visible_text("Every year")
    browser.press("Save the policy")
    expect("Saved." in browser.text(), browser.text())
    expect(Select(browser.field("Passwords must change")).first_selected_option.text == "Every year", "the policy is kept")

    browser.press("IP allowlist")
    expect("Members may call from anywhere" in browser.text(), browser.text())
    browser.page("allowlist")
    browser.fill("Allowed addresses and networks", "10.0.0.0/8", secret=False)
    browser.press("Save the allowlist")
    expect(browser.error_of("Allowed addresses and networks"), f"locking oneself out is refused by the field: {browser.text()}")
    browser.page("allowlist-refused")
    browser.fill("Allowed addresses and networks", "127.0.0.1/32\n10.0.0.0/8", secret=False)
    browser.press("Save the allowlist")
    expect("Saved." in browser.text() and "only from these addresses" in browser.text(), browser.text())

    elsewhere = Browser(browser.base, browser.out, name="elsewhere", forwarded_for="203.0.113.9")
    try:
        elsewhere.open("/console/sign-in")
        elsewhere.fill("Email", email, secret=False)
        elsewhere.fill("Password", password)
        elsewhere.press("Sign in")
        # Refused as a wrong password is (TEN-11): the answer does not confirm the password.
        expect("invalid email or password" in elsewhere.text(), f"a sign-in from elsewhere is refused: {elsewhere.text()}")
        expect("rampart_session" not in elsewhere.cookies(), "no session from elsewhere")
        elsewhere.page("sign-in-refused-elsewhere")
        elsewhere.finish()
    finally:
        elsewhere.quit()
    # The owner's own session, taken elsewhere (a laptop on another network): refused.
    browser.elsewhere("203.0.113.9")
    browser.open("/console/")
    expect("not in this organization's IP allowlist" in browser.text(), f"a session from elsewhere is refused: {browser.text()}")
    browser.page("session-refused-elsewhere")
    browser.elsewhere(None)
    browser.open("/console/")
    expect(browser.heading() == "Welcome", "from the allowed address, the console opens again")
    return {}


def audit_log(browser, inputs):
    """Audit log: a failed sign-in found by action and outcome, a malformed address refused by
    its field, the filtered events exported as CSV and JSON lines, the chain verified."""
    email, password = inputs["email"], inputs["password"]
    browser.open("/console/sign-in")
    browser.fill("Email", email, secret=False)
    browser.fill("Password", "not the password")
    browser.press("Sign in")
    sign_in(browser, email, password)
    browser.press("Audit log")
    browser.page("audit")
    Select(browser.field("Action")).select_by_visible_text("login.failed")
    Select(browser.field("Outcome")).select_by_visible_text("Failure")
    deadline = time.time() + 15
    while True:
        browser.press("Filter")
        rows = browser.driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        if rows or time.time() > deadline:
            break
        time.sleep(0.5)
    expect(rows and all("login.failed" in row.text and "Failure" in row.text for row in rows), f"the failed sign-in: {browser.text()}")
    expect("action=login.failed" in browser.path and "outcome=failure" in browser.path, f"the filter is in the page's address: {browser.path}")
    browser.page("audit-filtered")
    name, csv = browser.download("Export as CSV")
    expect(name.endswith(".csv") and "login.failed" in csv and "login.succeeded" not in csv, f"the CSV holds the filtered events: {name} {csv[:300]}")
    name, lines = browser.download("Export as JSON lines")
    expect(name.endswith(".jsonl") and "login.failed" in lines, f"the JSON lines export: {name}")

    browser.fill("IP address", "not-an-address", secret=False)
    browser.press("Filter")
    expect(browser.error_of("IP address"), f"a malformed address is refused by its field: {browser.text()}")
    browser.page("audit-refused")
    browser.press("Verify the chain")
    expect("The chain holds" in browser.text(), browser.text())
    browser.page("audit-verified")
    return {}


class Receiver:
    """A webhook receiver on loopback: what it was posted, headers and body."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def wait(self, count, timeout=20):
        deadline = time.time() + timeout
        while len(self.received) < count and time.time() < deadline:
            time.sleep(0.1)
        expect(len(self.received) >= count, f"{count} deliveries expected, {len(self.received)} arrived")
        return self.received[count - 1]

    def stop(self):
        self.server.shutdown()


def signed_by(delivery, secret):
    """Whether one of the delivery's Standard Webhooks signatures is `secret`'s."""
    headers = delivery["headers"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + delivery["body"]
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return expected in headers.get("webhook-signature", "").split(" ")


def webhooks(browser, inputs):
    """Webhooks: a bad URL refused by its field; an endpoint added, its secret shown once and
    checked on a test event's signature; the delivery log; a redelivery with the same event ID;
    the secret rotated (both sign for the grace period); the endpoint removed."""
    receiver = Receiver()
    try:
        sign_in(browser, inputs["email"], inputs["password"])
        browser.press("Webhooks")
        browser.page("webhooks")
        browser.fill("URL", "ftp://files.example/hooks", secret=False)
        browser.press("Add the endpoint")
        expect(browser.error_of("URL"), f"a URL that is not http(s) is refused by its field: {browser.text()}")
        browser.page("webhooks-refused")
        browser.fill("URL", receiver.url, secret=False)
        browser.fill("Description", "Security team's receiver", secret=False)
        browser.fill("Event types", "member.*, mfa.reset", secret=False)
        browser.press("Add the endpoint")
        expect(browser.heading() == "The endpoint's signing secret", browser.text())
        browser.page("webhook-secret")
        secret = browser.driver.find_element(By.ID, "secret").get_attribute("value")
        expect(secret.startswith("whsec_"), "the secret is shown")
        browser.secrets.add(secret)
        browser.press("I have copied it")
        browser.page("webhook")

        browser.press("Send a test event")
        expect("webhook.test event is on its way" in browser.text(), browser.text())
        first = receiver.wait(1)
        expect(signed_by(first, secret), f"the test event is signed with the secret shown: {first['headers']}")
        expect(json.loads(first["body"]).get("type") == "webhook.test", f"a webhook.test event: {first['body'][:200]}")
        deadline = time.time() + 15
        while "Delivered" not in browser.text() and time.time() < deadline:
            time.sleep(0.5)
            browser.press("Refresh")
        expect("Delivered" in browser.text(), f"the log shows the delivery: {browser.text()}")
        browser.page("webhook-delivered")

        browser.press(browser.driver.find_element(By.CSS_SELECTOR, "tbody button").get_attribute("aria-label"))
        expect("being sent again" in browser.text(), browser.text())
        again = receiver.wait(2)
        expect(again["headers"]["webhook-id"] == first["headers"]["webhook-id"], "a redelivery keeps the event ID")

        browser.press("Rotate the secret")
        expect(browser.heading() == "The endpoint's signing secret" and "24 hours" in browser.text(), browser.text())
        rotated = browser.driver.find_element(By.ID, "secret").get_attribute("value")
        browser.secrets.add(rotated)
        expect(rotated != secret, "a new secret")
        browser.press("I have copied it")
        browser.press("Send a test event")
        third = receiver.wait(3)
        expect(signed_by(third, rotated) and signed_by(third, secret), "both secrets sign during the grace period")

        browser.press("Remove the endpoint")
        expect("The endpoint is removed" in browser.text() and "There is no endpoint yet" in browser.text(), browser.text())
    finally:
        receiver.stop()
    return {}


def sso(browser, inputs):
    """SSO: a domain claimed and verified by its TXT record (refused before it is published),
    a connection added to the provider the test started, tested with one person who signs in
    through it from the sign-in page, activated, then required, with a break-glass owner."""
    email, password, issuer = inputs["email"], inputs["password"], inputs["issuer"]
    sign_in(browser, email, password)
    browser.press("SSO")
    browser.page("sso")
    browser.fill("Domain to claim", "lovelace.example", secret=False)
    browser.press("Claim")
    expect("publish its TXT record" in browser.text(), browser.text())
    record_name, record_value = [c.text for c in browser.driver.find_elements(By.CSS_SELECTOR, "tbody code")][:2]
    expect(record_name == "_rampart-challenge.lovelace.example", f"the record to publish: {record_name}")
    browser.page("sso-domain-claimed")
    browser.press("Check the DNS record of lovelace.example")
    expect(browser.driver.find_elements(By.CSS_SELECTOR, "[role=alert]"), f"not verified before the record is published: {browser.text()}")
    with open(inputs["dns_records"], "w") as file:
        json.dump({record_name + ".": [record_value]}, file)
    browser.press("Check the DNS record of lovelace.example")
    expect("The domain is verified" in browser.text(), browser.text())

    browser.fill("Issuer URL (Okta and other providers)", issuer, secret=False)
    browser.fill("Client ID", "rampart", secret=False)
    browser.fill("Client secret", "client-secret")
    browser.fill("Domains it serves", "lovelace.example", secret=False)
    browser.fill("Test users (addresses)", email, secret=False)
    browser.press("Add the connection")
    expect("The connection is added" in browser.text(), browser.text())
    redirect = browser.driver.find_element(By.CSS_SELECTOR, "article input[readonly]").get_attribute("value")
    expect(redirect.endswith("/v1/auth/sso/callback"), f"the redirect URI to register: {redirect}")
    browser.page("sso-connection")
    browser.press("Start testing")
    expect("The connection is testing" in browser.text(), browser.text())

    # The test user signs in through the provider, from the console's sign-in page.
    sign_out(browser)
    browser.fill("Work email, for your organization's SSO", email, secret=False)
    browser.press("Sign in with SSO")
    WebDriverWait(browser.driver, 20).until(lambda d: d.current_url.startswith(issuer))
    browser.driver.find_element(By.CSS_SELECTOR, "input[type=text][name=sub]").send_keys(inputs["subject"])
    browser.driver.find_element(By.XPATH, "//button[normalize-space()='Authorize']").click()
    WebDriverWait(browser.driver, 20).until(lambda d: d.current_url.startswith(browser.base + "/console/"))
    expect(browser.heading() == "Welcome", f"signed in through SSO: {browser.text()}")

    browser.press("SSO")
    browser.press("Activate")
    expect("The connection is active" in browser.text(), browser.text())
    browser.driver.find_element(By.ID, "enforced").click()
    browser.driver.find_element(By.XPATH, f"//label[normalize-space()='{email}']").click()
    browser.press("Save the requirement")
    expect("Saved." in browser.text() and browser.driver.find_element(By.ID, "enforced").is_selected(), browser.text())
    expect(browser.driver.find_element(By.XPATH, f"//label[normalize-space()='{email}']/preceding-sibling::input").is_selected(), "the break-glass owner is kept")
    browser.page("sso-enforced")
    return {}


def mfa_required(browser, inputs):
    """MFA-7 in the console: the organization requires MFA and the person has none; the sign-in
    leads through setting it up (QR code, a wrong code refused, the right one), shows the backup
    codes once, and opens the session."""
    email, password = inputs["email"], inputs["password"]
    browser.open("/console/sign-in")
    browser.fill("Email", email, secret=False)
    browser.fill("Password", password)
    browser.press("Sign in")
    expect(browser.heading() == "Enable MFA" and "requires two-factor" in browser.text(), browser.text())
    expect("rampart_session" not in browser.cookies(), "no session before the second factor")
    browser.page("sign-in-mfa-enroll")
    image = Image.open(io.BytesIO(browser.screenshot_png(browser.driver.find_element(By.CSS_SELECTOR, "img.qr"))))
    secret = otpauth_secret(zxingcpp.read_barcodes(image)[0].text)
    browser.secrets.add(secret)
    browser.fill("6-digit code", "000000")
    browser.press("Turn MFA on")
    expect(browser.error_of("6-digit code") and browser.heading() == "Enable MFA", f"a wrong code, said by its field: {browser.text()}")
    browser.fill("6-digit code", pyotp.TOTP(secret).now())
    browser.press("Turn MFA on")
    expect(browser.heading() == "Your backup codes", browser.text())
    codes = [element.text for element in browser.driver.find_elements(By.CSS_SELECTOR, ".codes code")]
    expect(len(codes) == 10, f"ten backup codes: {codes}")
    browser.secrets.update(codes)
    browser.page("sign-in-backup-codes")
    browser.press("I have saved them")
    expect(browser.heading() == "Welcome", browser.text())
    return {}


def keyboard_sign_in(browser, email, password):
    """A sign-in with the keyboard alone: the skip link first, then the fields in order, each
    with a visible focus; Enter sends the form."""
    browser.open("/console/sign-in")
    body = browser.driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    focused = browser.driver.switch_to.active_element
    expect(focused.text == "Skip to the content", f"the skip link comes first: {focused.text!r}")
    expect(focused.value_of_css_property("outline-style") != "none", "the focus is visible")
    focused.send_keys(Keys.TAB)
    focused = browser.driver.switch_to.active_element
    expect(focused.get_attribute("id") == "email", f"then the email: {focused.get_attribute('outerHTML')[:120]}")
    expect(focused.value_of_css_property("outline-style") != "none", "the field's focus is visible")
    focused.send_keys(email, Keys.TAB)
    focused = browser.driver.switch_to.active_element
    expect(focused.get_attribute("id") == "password", "then the password")
    focused.send_keys(password, Keys.ENTER)

    def welcomed(driver):
        try:
            return driver.find_element(By.TAG_NAME, "h1").text == "Welcome"
        except WebDriverException:
            return False

    WebDriverWait(browser.driver, 20).until(welcomed)


def hostile_pages(browser, inputs):
    """Signed in with the keyboard alone; then another site's page: its form posted at the
    console is refused (CSRF), and the console does not show inside its frame."""
    email, password = inputs["email"], inputs["password"]
    keyboard_sign_in(browser, email, password)
    gateway = browser.base
    other = OtherSite(
        {
            "/form": f"""<!doctype html><html lang="en"><title>Prize</title><body>
<form method="post" action="{gateway}/console/sign-out"><input type="hidden" name="csrf" value="guess">
<button type="submit">Claim your prize</button></form></body></html>""",
            "/frame": f"""<!doctype html><html lang="en"><title>Framed</title><body>
<iframe id="framed" title="console" src="{gateway}/console/sign-in" width="600" height="400"></iframe></body></html>""",
        }
    )
    try:
        browser.driver.get(other.url("/form"))
        browser.press("Claim your prize")
        expect(browser.heading() == "That did not work" and "another site" in browser.text(), f"the cross-site post is refused: {browser.text()}")
        browser.page("cross-site-refused")
        browser.open("/console/")
        expect(browser.heading() == "Welcome", "the forged sign-out did not end the session")

        browser.driver.get(other.url("/frame"))
        time.sleep(1)
        browser.driver.switch_to.frame(browser.driver.find_element(By.ID, "framed"))
        framed = browser.driver.find_elements(By.ID, "email")
        browser.driver.switch_to.default_content()
        expect(not framed, "the console's sign-in does not show inside another site's frame")
    finally:
        other.stop()
    return {}


class OtherSite:
    """Another site, on loopback under the name `localhost` (the console is at 127.0.0.1: a
    different site to the browser)."""

    def __init__(self, pages):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://localhost:{self.server.server_address[1]}{path}"

    def stop(self):
        self.server.shutdown()


JOURNEYS = {"security_settings": security_settings, "api_keys": api_keys, "team": team, "organization": organization, "audit_log": audit_log, "webhooks": webhooks, "sso": sso, "mfa_required": mfa_required,
            "hostile_pages": hostile_pages}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("journey", choices=sorted(JOURNEYS))
    parser.add_argument("--base", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--inputs", default="{}")
    arguments = parser.parse_args()
    browser = Browser(arguments.base, arguments.out, name=arguments.journey)
    try:
        learned = JOURNEYS[arguments.journey](browser, json.loads(arguments.inputs))
    except Exception as error:
        traceback.print_exc()
        try:
            browser.driver.save_screenshot(f"{arguments.out}/failed-{arguments.journey}.png")
            print(f"at {browser.driver.current_url}: {browser.driver.find_element(By.TAG_NAME, 'body').text[:2000]}", file=sys.stderr)
        except Exception:
            pass
        browser.quit()
        print(f"journey {arguments.journey} failed: {error}", file=sys.stderr)
        return 1
    try:
        learned.update(browser.finish())
    except JourneyFailure as error:
        print(f"journey {arguments.journey} failed at the end: {error}", file=sys.stderr)
        return 1
    print(json.dumps(learned))
    return 0


if __name__ == "__main__":
    sys.exit(main())
