"""A person's browser in the console: headless Chromium (Debian `chromium`, `chromium-driver`)
driven by Selenium, for the journeys of journeys.py.

axe-core comes from PyPI `axe-core-python` (axe-core 4.4): the copy `axe-selenium-python`
carries is axe-core 3.1 (2018), which does not know `autocomplete="one-time-code"`.

Every page a journey names is saved as a screenshot and checked with axe-core (no violation of
impact serious or critical). Every response the browser got from the console is checked for its
Content-Security-Policy, and no URL it asked for may carry a secret the journey saw (a password,
a code, a key, a cookie's value): both from Chromium's performance log.
"""

import json
import os
import re
import tempfile
import time
import urllib.parse

from axe_core_python.selenium import Axe
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

CONSOLE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class JourneyFailure(AssertionError):
    pass


def expect(condition, message):
    if not condition:
        raise JourneyFailure(message)


class Browser:
    """One browser profile (its own cookies), at `base` (the gateway's origin)."""

    def __init__(self, base, out, name="browser", width=1280, forwarded_for=None):
        self.base = base.rstrip("/")
        self.out = out
        self.name = name
        self.shots = 0
        self.secrets = set()
        self.events = []
        os.makedirs(out, exist_ok=True)
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("RAMPART_CHROMIUM", "/usr/bin/chromium")
        self.profile = tempfile.mkdtemp(prefix="rampart-chromium-")
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            "--password-store=basic",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},1000",
            "--lang=en-US",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        service = Service(os.environ.get("RAMPART_CHROMEDRIVER", "/usr/bin/chromedriver"))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_page_load_timeout(30)
        if forwarded_for:
            self.elsewhere(forwarded_for)

    def elsewhere(self, address):
        """From `address` (None: from here again): the address a trusted proxy in front of the
        gateway forwards."""
        self.driver.execute_cdp_cmd("Network.enable", {})
        headers = {"X-Forwarded-For": address} if address else {}
        self.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})

    # Navigation and forms

    def open(self, path):
        self.driver.get(self.base + path)

    @property
    def path(self):
        url = urllib.parse.urlsplit(self.driver.current_url)
        return url.path + (("?" + url.query) if url.query else "")

    def field(self, label):
        """The input a label names, as a screen reader finds it."""
        element = self.driver.find_element(By.XPATH, f"//label[normalize-space()={xpath_text(label)}]")
        return self.driver.find_element(By.ID, element.get_attribute("for"))

    def fill(self, label, value, secret=True):
        if secret and value:
            self.secrets.add(value)
        field = self.field(label)
        field.clear()
        field.send_keys(value)
        return field

    def press(self, text):
        """Clicks the button or link showing `text` (or named so for a screen reader, by its
        aria-label), and waits for the next page."""
        literal = xpath_text(text)
        buttons = self.driver.find_elements(
            By.XPATH, f"//button[normalize-space()={literal} or @aria-label={literal}] | //a[normalize-space()={literal}]"
        )
        expect(buttons, f"no button {text!r} on {self.path}")
        button = buttons[0]
        old = self.driver.find_element(By.TAG_NAME, "html")
        button.click()

        def replaced(driver):
            # The old page's root is gone (Chromium says so as "stale" or, mid-navigation, as
            # a node that "does not belong to the document"), and the new one has loaded.
            try:
                old.tag_name
                return False
            except WebDriverException:
                return driver.execute_script("return document.readyState") == "complete"

        WebDriverWait(self.driver, 20).until(replaced)

    def download(self, text, timeout=20):
        """Clicks the link showing `text` and waits for the file it downloads: its name and
        content."""
        folder = tempfile.mkdtemp(prefix="rampart-download-")
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": folder})
        self.driver.find_element(By.XPATH, f"//a[normalize-space()={xpath_text(text)}]").click()
        deadline = time.time() + timeout
        while time.time() < deadline:
            done = [name for name in os.listdir(folder) if not name.endswith(".crdownload")]
            if done:
                with open(os.path.join(folder, done[0]), encoding="utf-8") as file:
                    return done[0], file.read()
            time.sleep(0.2)
        raise JourneyFailure(f"{text!r} downloaded nothing")

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "main").text

    def heading(self):
        return self.driver.find_element(By.TAG_NAME, "h1").text

    def error_of(self, label):
        """The error shown next to the field `label` names (its aria-describedby), or None."""
        field = self.field(label)
        if field.get_attribute("aria-invalid") != "true":
            return None
        described = (field.get_attribute("aria-describedby") or "").split()
        texts = [self.driver.find_element(By.ID, i).text for i in described if i.endswith("-error")]
        return " ".join(texts) or None

    # Checks of every page

    def page(self, name):
        """The page as it is: a screenshot, then axe-core's serious and critical violations."""
        self.shots += 1
        self.driver.save_screenshot(os.path.join(self.out, f"{self.shots:02d}-{self.name}-{name}.png"))
        results = Axe().run(self.driver)
        bad = [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]
        expect(not bad, f"{name}: accessibility violations: " + json.dumps(
            [{"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"][:3]]} for v in bad],
            indent=1,
        ))

    def screenshot_png(self, element=None):
        return (element or self.driver).screenshot_as_png

    def cookies(self):
        return {cookie["name"]: cookie for cookie in self.driver.get_cookies()}

    def collect(self):
        for entry in self.driver.get_log("performance"):
            self.events.append(json.loads(entry["message"])["message"])

    def finish(self):
        """The checks of the whole visit, then the browser closes."""
        try:
            self.collect()
            for cookie in self.cookies().values():
                self.secrets.add(cookie["value"])
            urls, answers = [], []
            for event in self.events:
                params = event.get("params", {})
                if event.get("method") == "Network.requestWillBeSent":
                    urls.append(params["request"]["url"])
                    if "redirectResponse" in params:
                        answers.append(params["redirectResponse"])
                elif event.get("method") == "Network.responseReceived":
                    answers.append(params["response"])
            urls += self.driver.execute_script("return performance.getEntries().map(e => e.name)") or []
            expect(urls, "the performance log recorded no request")
            for url in urls:
                for secret in self.secrets:
                    if len(secret) >= 6 and (secret in url or urllib.parse.quote(secret, safe="") in url):
                        raise JourneyFailure(f"a secret went into a URL: {url}")
            console = [a for a in answers if urllib.parse.urlsplit(a["url"]).path.startswith("/console")]
            expect(console, "no console response was recorded")
            for answer in console:
                headers = {k.lower(): v for k, v in answer.get("headers", {}).items()}
                expect(headers.get("content-security-policy") == CONSOLE_POLICY, f"{answer['url']}: CSP {headers.get('content-security-policy')!r}")
                expect(headers.get("cache-control") == "no-store", f"{answer['url']}: Cache-Control {headers.get('cache-control')!r}")
            return {"urls": len(urls), "console_responses": len(console)}
        finally:
            self.quit()

    def quit(self):
        try:
            self.driver.quit()
        except Exception:
            pass


def xpath_text(text):
    """A string literal for XPath, whatever quotes it holds."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"


def otpauth_secret(uri):
    """The secret of an otpauth:// URI."""
    match = re.search(r"[?&]secret=([A-Z2-7]+)", uri)
    expect(match, f"no secret in {uri!r}")
    return match.group(1)
