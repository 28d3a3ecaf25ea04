/* SPDX-License-Identifier: MIT */
/* The pages' templates (#13 item 3): every page has one, values are escaped, sections show
 * only with a value, and templates_dir replaces exactly the files it holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "harness.h"
#include "web/web.h"

static const char *render(struct buf *b, const char *t, const struct web_var *v, size_t n)
{
    buf_reset(b);
    if (web_render(b, t, v, n) || buf_append(b, "", 1))
        return "(render failed)";
    return b->p;
}

TEST(every_page_renders_and_values_cannot_open_a_tag)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    const struct web_var v[] = {{"product", "<Acme & \"Co\">"}, {"client", "x'y"}};
    for (int p = 0; p < WEB_PAGES; p++) {
        ASSERT_TRUE(web_template((enum web_page)p) != NULL);
        const char *out = render(&b, web_template((enum web_page)p), v, 2);
        ASSERT_TRUE(strstr(out, "<!doctype html>") == out);
        ASSERT_TRUE(strstr(out, "<Acme") == NULL && strstr(out, "x'y") == NULL);
    }
    ASSERT_EQ_STR(render(&b, "a{{#e}}[{{e}}]{{/e}}b{{#f}}({{f}}){{/f}}",
                         (struct web_var[]){{"e", ""}, {"f", "1"}}, 2),
                  "ab(1)");
    ASSERT_EQ_STR(
        render(&b, "{{{raw}}}|{{raw}}|{{nope}}|{{unclosed", (struct web_var[]){{"raw", "<b>"}}, 1),
        "<b>|&lt;b&gt;||{{unclosed");
    ASSERT_TRUE(web_script("retry.js") && web_script("submit.js") && !web_script("x.js"));
    buf_fini(&b);
}

TEST(templates_dir_replaces_the_files_it_holds)
{
    char dir[64], path[128], err[256];
    snprintf(dir, sizeof(dir), "/tmp/fg-web-test-%d", (int)getpid());
    snprintf(path, sizeof(path), "mkdir -p %s", dir);
    ASSERT_EQ_INT(system(path), 0);
    snprintf(path, sizeof(path), "%s/busy.html", dir);
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fputs("mine", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/style.css", dir);
    f = fopen(path, "w");
    fputs("body{}", f);
    fclose(f);
    ASSERT_EQ_INT(web_load(dir, err, sizeof(err)), 0);
    ASSERT_EQ_STR(web_template(WEB_BUSY), "mine");
    ASSERT_EQ_STR(web_stylesheet(), "body{}");
    ASSERT_TRUE(strstr(web_template(WEB_LOGIN), "<form") != NULL); /* the built-in one */
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    ASSERT_EQ_INT(system(path), 0);
}
