# SPDX-License-Identifier: MIT
"""The hosted login page in a real browser: Debian's chromium, headless, driven through
chromium-driver by python3-selenium. A small relying party (an HTTP server on loopback)
receives the redirect; the page is used with the keyboard only (type, Tab, Enter), a wrong
password first. Screenshots of the login page (desktop and phone), the failed sign-in and
the error page for a link that is not valid go to OUT_DIR. Run by
tests/integration/test_oidc.py with /usr/bin/python3; prints JSON: the code and state the
relying party received, and the page facts the test checks.

    browser_login.py ISSUER CLIENT_ID RP_PORT CHALLENGE USERNAME PASSWORD OUT_DIR"""

import http.server
import json
import os
import sys
import threading
import urllib.parse

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

received = {}


class RelyingParty(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        received.update(q)
        body = b"<!doctype html><title>app</title><p id=done>signed in</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def browser():
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--lang=en-US"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def main():
    iss, cid, rp_port, challenge, user, password, out = sys.argv[1:8]
    os.makedirs(out, exist_ok=True)
    rp = http.server.ThreadingHTTPServer(("127.0.0.1", int(rp_port)), RelyingParty)
    threading.Thread(target=rp.serve_forever, daemon=True).start()
    cb = f"http://127.0.0.1:{rp_port}/callback"
    url = iss + "/oauth2/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": cid, "redirect_uri": cb,
        "scope": "openid", "state": "s-browser", "nonce": "n-browser",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    facts, first = {}, {}
    d = browser()
    try:
        wait = WebDriverWait(d, 20)
        d.get(url)
        wait.until(EC.presence_of_element_located((By.ID, "username")))
        facts["title"] = d.title
        facts["logo_width"] = d.execute_script(
            "var i = document.querySelector('img.logo'); return i ? i.naturalWidth : -1")
        facts["focused"] = d.switch_to.active_element.get_attribute("id")
        facts["labels"] = [e.text for e in d.find_elements(By.TAG_NAME, "label")]
        d.save_screenshot(os.path.join(out, "login-desktop.png"))
        d.set_window_size(390, 844)  # a phone
        d.save_screenshot(os.path.join(out, "login-phone.png"))
        facts["phone_overflow"] = d.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth")
        d.set_window_size(1280, 900)
        # the keyboard only: type, Tab to the password, Enter to submit
        d.switch_to.active_element.send_keys(user)
        d.switch_to.active_element.send_keys(Keys.TAB)
        d.switch_to.active_element.send_keys("not the password" + Keys.ENTER)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".error")))
        facts["error"] = d.find_element(By.CSS_SELECTOR, ".error").text
        facts["refocused"] = d.switch_to.active_element.get_attribute("id")
        d.save_screenshot(os.path.join(out, "login-failed.png"))
        d.switch_to.active_element.send_keys(password + Keys.ENTER)
        # a third-party application: the consent page, allowed with the keyboard
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "ul.scopes")))
        facts["consent"] = d.find_element(By.TAG_NAME, "h1").text
        facts["consent_items"] = [e.text for e in d.find_elements(By.CSS_SELECTOR, "ul.scopes li")]
        d.save_screenshot(os.path.join(out, "consent.png"))
        d.set_window_size(390, 844)
        d.save_screenshot(os.path.join(out, "consent-phone.png"))
        d.set_window_size(1280, 900)
        d.find_element(By.CSS_SELECTOR, "button[value=allow]").send_keys(Keys.ENTER)
        wait.until(EC.presence_of_element_located((By.ID, "done")))
        facts["landed"] = d.current_url.split("?")[0]
        first.update(received)
        # a link that is not valid: an error page, not a redirect
        d.get(url.replace(urllib.parse.quote(cb, safe=""),
                          urllib.parse.quote("https://evil.example/cb", safe="")))
        facts["invalid_link"] = d.find_element(By.TAG_NAME, "h1").text
        facts["invalid_url"] = d.current_url.split("?")[0]
        d.save_screenshot(os.path.join(out, "error-invalid-link.png"))
        # signed in: the next authorization is answered from the session, without the form
        d.get(url)
        wait.until(EC.presence_of_element_located((By.ID, "done")))
        facts["sso"] = received.get("code") is not None and d.current_url.startswith(cb)
        # over the per-user rate limit (the server allows two a minute): the busy page,
        # counting down to posting the form again by itself (prompt=login: past the session)
        d.get(url + "&prompt=login")
        wait.until(EC.presence_of_element_located((By.ID, "username")))
        d.switch_to.active_element.send_keys(user + Keys.TAB)
        d.switch_to.active_element.send_keys(password + Keys.ENTER)
        wait.until(EC.presence_of_element_located((By.ID, "countdown")))
        facts["busy"] = d.find_element(By.TAG_NAME, "h1").text
        count0 = int(d.find_element(By.ID, "countdown").text)
        d.save_screenshot(os.path.join(out, "busy.png"))
        wait.until(lambda drv: int(drv.find_element(By.ID, "countdown").text) < count0)
        facts["counting_down"] = True
    finally:
        d.quit()
        rp.shutdown()
    print(json.dumps({"received": first, "facts": facts}))


if __name__ == "__main__":
    main()
