# SPDX-License-Identifier: MIT
"""A single-page app on another origin, in headless Chromium: its page (served here, on
127.0.0.1:APP_PORT) calls floodgate with fetch(), as an SPA redeeming a code would. Prints
JSON: what each call could read (the browser refuses a cross-origin answer CORS does not
allow, and the script sees a TypeError).

    cors_page.py ISSUER APP_PORT CLIENT_ID"""

import http.server
import json
import sys
import threading

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

PAGE = """<!doctype html><meta charset=utf-8><title>spa</title><pre id=out></pre><script>
const iss = %(iss)s, cid = %(cid)s, out = {};
async function call(name, url, init) {
  try { const r = await fetch(url, init); out[name] = [r.status, await r.text()]; }
  catch (e) { out[name] = ["refused", String(e)]; }
}
(async () => {
  await call("discovery", iss + "/.well-known/openid-configuration");
  await call("token", iss + "/oauth2/token", {method: "POST",
    headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: "grant_type=authorization_code&client_id=" + cid +
          "&code=nope&redirect_uri=x&code_verifier=" + "v".repeat(43)});
  await call("introspect", iss + "/oauth2/introspect", {method: "POST",
    headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "token=x"});
  document.getElementById("out").textContent = JSON.stringify(out);
})();
</script>"""


def main():
    iss, port, cid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    body = (PAGE % {"iss": json.dumps(iss), "cid": json.dumps(cid)}).encode()

    class App(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    app = http.server.ThreadingHTTPServer(("127.0.0.1", port), App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        o.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    try:
        d.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(d, 20).until(
            lambda drv: drv.find_element(By.ID, "out").text.startswith("{"))
        print(d.find_element(By.ID, "out").text)
    finally:
        d.quit()
        app.shutdown()


if __name__ == "__main__":
    main()
