# SPDX-License-Identifier: MIT
"""The admin console in a real browser: Debian's chromium, headless, driven through
chromium-driver by python3-selenium, while the test runs a load on the server. Signs in
with the admin token, watches the numbers for a few seconds, pins a mode, announces an
event and unlocks a user from the page,
takes screenshots (desktop and phone) into OUT_DIR, and prints the page facts the test
checks as JSON. Run by tests/integration/test_console.py with /usr/bin/python3.

    browser_console.py ADMIN_URL TOKEN OUT_DIR"""

import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def browser():
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1000", "--lang=en-US"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def number(text):
    t = text.strip()
    if t.endswith("k"):
        return float(t[:-1]) * 1000
    try:
        return float(t)
    except ValueError:
        return -1


def main():
    url, token, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    d = browser()
    facts = {}
    try:
        d.get(url + "/admin/console")
        facts["title"] = d.title
        wait = WebDriverWait(d, 20)
        wait.until(EC.visibility_of_element_located((By.ID, "token")))
        facts["signin_shown"] = d.find_element(By.ID, "signin").is_displayed()
        d.find_element(By.ID, "token").send_keys(token)
        d.find_element(By.CSS_SELECTOR, "#signin-form button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "live"))
        facts["url"] = d.current_url
        facts["stored"] = d.execute_script(
            "return sessionStorage.getItem('floodgate-admin-token')")
        rps, logins, points = [], [], []
        for _ in range(6):  # six seconds of the load
            time.sleep(1)
            rps.append(number(d.find_element(By.ID, "rps").text))
            logins.append(number(d.find_element(By.ID, "logins").text))
            # each frame the page takes adds a point to the chart (a steady load can show
            # the same rate every second: the chart, not the number, says the page is live)
            points.append(d.execute_script(
                "const l = document.querySelector('#rps-chart polyline');"
                "return l ? l.getAttribute('points').split(' ').length : 0"))
        facts["rps_seen"], facts["rps_max"], facts["logins_max"] = rps, max(rps), max(logins)
        facts["chart_points"] = points
        facts["status"] = d.find_element(By.ID, "status").text
        facts["routes"] = [r.find_element(By.TAG_NAME, "td").text
                           for r in d.find_elements(By.CSS_SELECTOR, "#routes tr")]
        d.save_screenshot(os.path.join(out, "console-desktop.png"))
        Select(d.find_element(By.ID, "pin-mode")).select_by_value("surge")
        d.find_element(By.ID, "pin").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "notice"), "Pinned"))
        facts["pinned_notice"] = d.find_element(By.ID, "notice").text
        wait.until(lambda d: d.find_element(By.ID, "mode").text.lower() == "surge")
        facts["badge"] = d.find_element(By.ID, "mode").text.lower()
        # announce an event from the page: it is listed
        name = d.find_element(By.ID, "ev-name")
        name.clear()
        name.send_keys("ticket sale")
        d.find_element(By.CSS_SELECTOR, "#event-form button").click()
        wait.until(lambda d: "ticket sale" in d.find_element(By.ID, "events").text)
        facts["events"] = d.find_element(By.ID, "events").text
        facts["announced_notice"] = d.find_element(By.ID, "notice").text
        # unlock a user from the page
        d.find_element(By.ID, "unlock-user").send_keys("ann")
        d.find_element(By.CSS_SELECTOR, "#unlock-form button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "notice"), "Unlocked"))
        facts["unlocked_notice"] = d.find_element(By.ID, "notice").text
        d.set_window_size(390, 844)  # a phone
        time.sleep(1.2)
        d.save_screenshot(os.path.join(out, "console-phone.png"))
        facts["phone_overflow"] = d.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth")
        facts["errors"] = [e["message"] for e in d.get_log("browser")
                           if e["level"] in ("SEVERE", "WARNING")]
    finally:
        d.quit()
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
