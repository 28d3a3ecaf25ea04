/* SPDX-License-Identifier: MIT */
/* Web pages from templates; see web.h. */
#include "web/web.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/mem.h"

#define TEMPLATE_MAX (64 * 1024)

/* ---- the defaults ---------------------------------------------------------------------- */

static const char default_login[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Sign in to {{product}}</title>\n"
    "<link rel=\"stylesheet\" href=\"/oauth2/assets/style.css\">\n"
    "</head>\n"
    "<body>\n"
    "<main class=\"card\">\n"
    "{{#logo}}<img class=\"logo\" src=\"/oauth2/assets/logo\" alt=\"{{product}}\">{{/logo}}\n"
    "<h1>Sign in</h1>\n"
    "<p class=\"sub\">to continue to <strong>{{client}}</strong></p>\n"
    "{{#error}}<p class=\"error\" role=\"alert\">{{error}}</p>{{/error}}\n"
    "<form method=\"post\" action=\"/oauth2/login\">\n"
    "{{{hidden}}}"
    "<label for=\"username\">Username</label>\n"
    "<input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" "
    "autocapitalize=\"none\" spellcheck=\"false\" required value=\"{{username}}\"{{#focus_user}} "
    "autofocus{{/focus_user}}>\n"
    "<label for=\"password\">Password</label>\n"
    "<input id=\"password\" name=\"password\" type=\"password\" "
    "autocomplete=\"current-password\" required{{#focus_password}} autofocus{{/focus_password}}>\n"
    "<button type=\"submit\">Sign in</button>\n"
    "</form>\n"
    "</main>\n"
    "<footer>{{product}}</footer>\n"
    "</body>\n"
    "</html>\n";

static const char default_error[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>{{title}} - {{product}}</title>\n"
    "<link rel=\"stylesheet\" href=\"/oauth2/assets/style.css\">\n"
    "</head>\n"
    "<body>\n"
    "<main class=\"card\">\n"
    "<h1>{{title}}</h1>\n"
    "<p>{{message}}</p>\n"
    "{{#code}}<p class=\"detail\">Error: <code>{{code}}</code></p>{{/code}}\n"
    "</main>\n"
    "<footer>{{product}}</footer>\n"
    "</body>\n"
    "</html>\n";

static const char default_form_post[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Signing in - {{product}}</title>\n"
    "<link rel=\"stylesheet\" href=\"/oauth2/assets/style.css\">\n"
    "<script src=\"/oauth2/assets/submit.js\" defer></script>\n"
    "</head>\n"
    "<body>\n"
    "<main class=\"card\">\n"
    "<form method=\"post\" action=\"{{action}}\" id=\"answer\">\n"
    "{{{hidden}}}"
    "<p>Signed in. If you are not taken back at once, continue:</p>\n"
    "<button type=\"submit\">Continue</button>\n"
    "</form>\n"
    "</main>\n"
    "</body>\n"
    "</html>\n";

/* A login shed under a surge (503) or over a rate limit (429): the form again, posted by
 * itself after the delay (retry.js; a button without script), so a crowd spreads itself out
 * instead of pressing reload. The password travels in the page's body, never in a URL. */
static const char default_busy[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Busy right now - {{product}}</title>\n"
    "<link rel=\"stylesheet\" href=\"/oauth2/assets/style.css\">\n"
    "<script src=\"/oauth2/assets/retry.js\" defer></script>\n"
    "</head>\n"
    "<body>\n"
    "<main class=\"card\">\n"
    "<h1>Busy right now</h1>\n"
    "<p>{{message}}</p>\n"
    "<p class=\"sub\" role=\"status\" aria-live=\"polite\">Trying again in about "
    "<span id=\"countdown\">{{retry}}</span> seconds.</p>\n"
    "<form method=\"post\" action=\"/oauth2/login\" id=\"retry\" data-retry=\"{{retry}}\">\n"
    "{{{hidden}}}"
    "<button type=\"submit\">Try again now</button>\n"
    "</form>\n"
    "</main>\n"
    "<footer>{{product}}</footer>\n"
    "</body>\n"
    "</html>\n";

/* Logout asked without proof that the application asked it (no valid id_token_hint): the
 * person confirms, so that a link on another site cannot sign them out. */
static const char default_logout[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Sign out - {{product}}</title>\n"
    "<link rel=\"stylesheet\" href=\"/oauth2/assets/style.css\">\n"
    "</head>\n"
    "<body>\n"
    "<main class=\"card\">\n"
    "<h1>Sign out?</h1>\n"
    "<p>You are about to sign out of {{product}}.</p>\n"
    "<form method=\"post\" action=\"/oauth2/logout\">\n"
    "{{{hidden}}}"
    "<button type=\"submit\">Sign out</button>\n"
    "</form>\n"
    "</main>\n"
    "</body>\n"
    "</html>\n";

/* What a third-party application asks, allowed or denied by the person. */
static const char default_consent[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Allow {{client}}? - {{product}}</title>\n"
    "<link rel=\"stylesheet\" href=\"/oauth2/assets/style.css\">\n"
    "</head>\n"
    "<body>\n"
    "<main class=\"card\">\n"
    "{{#logo}}<img class=\"logo\" src=\"/oauth2/assets/logo\" alt=\"{{product}}\">{{/logo}}\n"
    "<h1>Allow {{client}}?</h1>\n"
    "<p class=\"sub\">{{client}} asks to:</p>\n"
    "<ul class=\"scopes\">\n{{{scopes}}}</ul>\n"
    "<form method=\"post\" action=\"/oauth2/consent\">\n"
    "{{{hidden}}}"
    "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n"
    "<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">"
    "Deny</button>\n"
    "</form>\n"
    "</main>\n"
    "<footer>{{product}}</footer>\n"
    "</body>\n"
    "</html>\n";

/* Contrast (WCAG AA): text #1b1f24 on #fff is 16:1, the button's white on #1d4ed8 6.7:1,
 * the error's #8a1c1c on #fdecec 7.4:1, the muted #57606a on #fff 6.3:1. */
static const char default_style[] =
    ":root{color-scheme:light}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;"
    "justify-content:center;background:#f3f5f8;color:#1b1f24;"
    "font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,"
    "sans-serif}\n"
    ".card{width:100%;max-width:24rem;margin:1rem;padding:2rem;background:#fff;"
    "border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12),0 8px 24px rgba(0,0,0,.06)}\n"
    "h1{margin:0 0 .25rem;font-size:1.5rem}\n"
    ".logo{display:block;max-height:48px;max-width:100%;margin:0 0 1.25rem}\n"
    ".sub{margin:0 0 1.5rem;color:#57606a}\n"
    "label{display:block;margin:1rem 0 .25rem;font-weight:600}\n"
    "input{width:100%;padding:.7rem .8rem;border:1px solid #8c959f;border-radius:8px;"
    "font:inherit;color:inherit;background:#fff}\n"
    "input:focus,button:focus{outline:3px solid #1d4ed8;outline-offset:2px}\n"
    "button{width:100%;margin-top:1.5rem;padding:.75rem;border:0;border-radius:8px;"
    "background:#1d4ed8;color:#fff;font:inherit;font-weight:600;cursor:pointer}\n"
    "button:hover{background:#1e40af}\n"
    "button.secondary{margin-top:.75rem;background:#fff;color:#1d4ed8;"
    "border:1px solid #1d4ed8}\n"
    "button.secondary:hover{background:#eef2ff}\n"
    ".scopes{margin:0 0 .5rem;padding-left:1.25rem}\n"
    ".scopes li{margin:.35rem 0}\n"
    ".error{margin:0 0 1rem;padding:.75rem .9rem;border-radius:8px;background:#fdecec;"
    "color:#8a1c1c}\n"
    ".detail{color:#57606a;font-size:.875rem}\n"
    "footer{margin:1rem;color:#57606a;font-size:.875rem}\n"
    "@media (max-width:30rem){.card{margin:0;border-radius:0;box-shadow:none;"
    "min-height:100vh}footer{display:none}}\n";

static char *loaded[WEB_PAGES + 1]; /* read from templates_dir; NULL: the default */
static char *logo;                  /* logo_file's bytes; NULL: none */
static size_t logo_len;
static const char *logo_type;

const char *const web_headers[] = {
    "Content-Security-Policy",
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options",
    "DENY",
    "X-Content-Type-Options",
    "nosniff",
    "Referrer-Policy",
    "no-referrer",
    "Cache-Control",
    "no-store",
    NULL,
};

const char *web_template(enum web_page p)
{
    static const char *const defaults[WEB_PAGES] = {
        [WEB_LOGIN] = default_login,         [WEB_ERROR] = default_error,
        [WEB_FORM_POST] = default_form_post, [WEB_BUSY] = default_busy,
        [WEB_LOGOUT] = default_logout,       [WEB_CONSENT] = default_consent,
    };
    return loaded[p] ? loaded[p] : defaults[p];
}

const char *web_script(const char *name)
{
    if (strcmp(name, "submit.js") == 0)
        return "document.getElementById('answer').submit();\n";
    if (strcmp(name, "retry.js") == 0) /* the delay, plus up to half of it at random */
        return "(function () {\n"
               "  var f = document.getElementById('retry');\n"
               "  if (!f) return;\n"
               "  var s = parseInt(f.getAttribute('data-retry'), 10) || 1;\n"
               "  var left = s + Math.floor(Math.random() * (s / 2 + 1));\n"
               "  var c = document.getElementById('countdown');\n"
               "  var t = setInterval(function () {\n"
               "    left -= 1;\n"
               "    if (c) c.textContent = Math.max(left, 0);\n"
               "    if (left <= 0) { clearInterval(t); f.submit(); }\n"
               "  }, 1000);\n"
               "})();\n";
    return NULL;
}

const char *web_stylesheet(void)
{
    return loaded[WEB_PAGES] ? loaded[WEB_PAGES] : default_style;
}

static int read_file(const char *dir, const char *name, char **out, char *err, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return ERR_OK; /* the default then */
        snprintf(err, cap, "templates_dir: cannot read %s: %s", path, strerror(errno));
        return ERR_IO;
    }
    char *s = xmalloc(TEMPLATE_MAX + 1);
    size_t n = fread(s, 1, TEMPLATE_MAX + 1, f);
    int bad = ferror(f) || n > TEMPLATE_MAX;
    fclose(f);
    if (bad) {
        snprintf(err, cap, "templates_dir: %s is unreadable or over 64 KiB", path);
        free(s);
        return ERR_IO;
    }
    s[n] = '\0';
    *out = s;
    return ERR_OK;
}

int web_load(const char *dir, char *err, size_t cap)
{
    static const char *const names[WEB_PAGES + 1] = {
        [WEB_LOGIN] = "login.html",         [WEB_ERROR] = "error.html",
        [WEB_FORM_POST] = "form_post.html", [WEB_BUSY] = "busy.html",
        [WEB_LOGOUT] = "logout.html",       [WEB_CONSENT] = "consent.html",
        [WEB_PAGES] = "style.css",
    };
    if (!dir || !dir[0])
        return ERR_OK;
    for (int i = 0; i <= WEB_PAGES; i++) {
        if (!names[i]) { /* (every page has its file name: checked here, not assumed) */
            snprintf(err, cap, "templates_dir: page %d has no file name", i);
            return ERR_IO;
        }
        free(loaded[i]);
        loaded[i] = NULL;
        if (read_file(dir, names[i], &loaded[i], err, cap))
            return ERR_IO;
    }
    return ERR_OK;
}

/* ---- rendering ------------------------------------------------------------------------- */

int web_escape(struct buf *b, const char *s)
{
    int rc = ERR_OK;
    for (const char *p = s; *p && !rc;) {
        size_t n = strcspn(p, "&<>\"'");
        rc = buf_append(b, p, n);
        p += n;
        if (!*p || rc)
            break;
        rc = buf_puts(b, *p == '&'   ? "&amp;"
                         : *p == '<' ? "&lt;"
                         : *p == '>' ? "&gt;"
                         : *p == '"' ? "&quot;"
                                     : "&#39;");
        p++;
    }
    return rc;
}

int web_hidden(struct buf *b, const char *name, const char *value)
{
    int rc = buf_puts(b, "<input type=\"hidden\" name=\"");
    if (!rc)
        rc = web_escape(b, name);
    if (!rc)
        rc = buf_puts(b, "\" value=\"");
    if (!rc)
        rc = web_escape(b, value);
    return rc ? rc : buf_puts(b, "\">\n");
}

static const char *lookup(const struct web_var *vars, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0)
            return vars[i].value ? vars[i].value : "";
    return "";
}

int web_render(struct buf *out, const char *t, const struct web_var *vars, size_t n)
{
    int rc = ERR_OK;
    const char *skip_to = NULL; /* inside a section that is off: its closing tag */
    size_t skip_len = 0;

    while (*t && !rc) {
        const char *open = strstr(t, "{{");
        if (!open) {
            if (!skip_to)
                rc = buf_puts(out, t);
            break;
        }
        if (!skip_to)
            rc = buf_append(out, t, (size_t)(open - t));
        bool raw = open[2] == '{';
        const char *name = open + (raw ? 3 : 2);
        char kind = *name == '#' || *name == '/' ? *name++ : 0;
        const char *close = strstr(name, raw ? "}}}" : "}}");
        if (!close) { /* not a tag: the rest as text */
            if (!skip_to && !rc)
                rc = buf_puts(out, open);
            break;
        }
        size_t len = (size_t)(close - name);
        t = close + (raw ? 3 : 2);
        if (rc)
            break;
        if (skip_to) {
            if (kind == '/' && len == skip_len && memcmp(name, skip_to, len) == 0)
                skip_to = NULL;
            continue;
        }
        const char *v = lookup(vars, n, name, len);
        if (kind == '#' && !v[0]) {
            skip_to = name;
            skip_len = len;
        } else if (!kind) {
            rc = raw ? buf_puts(out, v) : web_escape(out, v);
        }
    }
    return rc;
}

int web_load_logo(const char *path, char *err, size_t cap)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".png", "image/png"},
                 {".svg", "image/svg+xml"},
                 {".jpg", "image/jpeg"},
                 {".jpeg", "image/jpeg"},
                 {".webp", "image/webp"}};
    const char *dot = path ? strrchr(path, '.') : NULL;

    if (!path || !path[0])
        return ERR_OK;
    logo_type = NULL;
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            logo_type = types[i].type;
    if (!logo_type) {
        snprintf(err, cap, "logo_file: %s is not .png, .svg, .jpg or .webp", path);
        return ERR_IO;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "logo_file: cannot read %s: %s", path, strerror(errno));
        return ERR_IO;
    }
    free(logo);
    logo = xmalloc(256 * 1024 + 1);
    logo_len = fread(logo, 1, 256 * 1024 + 1, f);
    int bad = ferror(f) || logo_len > 256 * 1024 || logo_len == 0;
    fclose(f);
    if (bad) {
        snprintf(err, cap, "logo_file: %s is empty, unreadable or over 256 KiB", path);
        free(logo);
        logo = NULL;
        return ERR_IO;
    }
    return ERR_OK;
}

const void *web_logo(size_t *len, const char **ctype)
{
    *len = logo_len;
    *ctype = logo_type;
    return logo;
}
