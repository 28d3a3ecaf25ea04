/* SPDX-License-Identifier: MIT */
/* The admin console's page, script and stylesheet (web.h), compiled in from console.html,
 * console.js and console.css beside this file (the Makefile makes them C strings). */
#include "web_console.h" /* (generated: console_html, console_js, console_css, openapi_json) */

#include <string.h>

#include "web/web.h"

const char *web_console_asset(const char *name, const char **ctype)
{
    if (strcmp(name, "console.html") == 0) {
        *ctype = "text/html; charset=utf-8";
        return console_html;
    }
    if (strcmp(name, "console.js") == 0) {
        *ctype = "text/javascript; charset=utf-8";
        return console_js;
    }
    if (strcmp(name, "openapi.json") == 0) { /* (docs/openapi.json, made from the YAML) */
        *ctype = "application/json";
        return openapi_json;
    }
    if (strcmp(name, "favicon.svg") == 0) { /* (a gate: two posts and a bar) */
        *ctype = "image/svg+xml";
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">"
               "<rect x=\"1\" y=\"2\" width=\"3\" height=\"13\" fill=\"#2457c5\"/>"
               "<rect x=\"12\" y=\"2\" width=\"3\" height=\"13\" fill=\"#2457c5\"/>"
               "<rect x=\"4\" y=\"6\" width=\"8\" height=\"3\" fill=\"#7aa2ff\"/></svg>";
    }
    if (strcmp(name, "console.css") == 0) {
        *ctype = "text/css; charset=utf-8";
        return console_css;
    }
    return NULL;
}
