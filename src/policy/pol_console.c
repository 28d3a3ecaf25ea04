/* SPDX-License-Identifier: MIT */
/* The live console's second as JSON (pol_console.h). */
#include "policy/pol_console.h"

#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

#define DOC_MAX (1u << 20) /* a fleet of some 300 instances' frames */

/* new - *last, and *last = new (a counter that went back, as after a restart: 0). */
static uint64_t delta(uint64_t *last, uint64_t now)
{
    uint64_t d = now >= *last ? now - *last : 0;
    *last = now;
    return d;
}

static int put_str(struct buf *out, const char *s)
{
    int rc = buf_puts(out, "\"");
    rc |= buf_json_escape(out, s, strlen(s));
    return rc | buf_puts(out, "\"");
}

int pol_console_frame(struct pol_console *c, const struct pol_console_in *in, struct buf *out)
{
    const struct pol_control *pc = in->pc;
    int rc = buf_puts(out, "{\"instance\":");

    rc |= put_str(out, in->instance);
    rc |= buf_printf(out,
                     ",\"t\":%lld,\"mode\":\"%s\",\"override\":\"%s\",\"floor\":\"%s\","
                     "\"stuffing\":%s,\"change\":",
                     (long long)in->now_ms, pol_mode_name(in->mode), pol_mode_name(in->override),
                     pol_mode_name(in->floor), in->t->stuffing ? "true" : "false");
    if (pc->change.at) {
        rc |= buf_printf(
            out, "{\"at\":%lld,\"from\":\"%s\",\"to\":\"%s\",\"why\":", (long long)pc->change.at,
            pol_mode_name(pc->change.from), pol_mode_name(pc->change.to));
        rc |= put_str(out, pc->change.why);
        rc |= buf_puts(out, "}");
    } else {
        rc |= buf_puts(out, "null");
    }
    rc |=
        buf_printf(out,
                   ",\"recommended\":%u,\"serving\":%u,\"workers\":%u,\"queued\":%u,"
                   "\"hash_deadline_ms\":%u,",
                   in->t->recommended, in->serving, in->workers, in->queued, in->hash_deadline_ms);
    rc |= buf_printf(out,
                     "\"logins\":{\"ok\":%llu,\"failed\":%llu,\"locked\":%llu,\"shed\":%llu},"
                     "\"rate_limited\":{",
                     (unsigned long long)delta(&c->ok, in->ok),
                     (unsigned long long)delta(&c->failed, in->failed),
                     (unsigned long long)delta(&c->locked, in->locked),
                     (unsigned long long)delta(&c->shed, in->shed));
    for (unsigned r = 0; r < POL_RL_COUNT; r++)
        rc |= buf_printf(out, "%s\"%s\":%llu", r ? "," : "", pol_limits_key_name(r),
                         (unsigned long long)delta(&c->rate_limited[r], in->rate_limited[r]));
    rc |= buf_puts(out, "},\"events\":[");
    for (unsigned i = 0; i < pc->nevents; i++)
        rc |= buf_printf(out, "%s{\"at\":%lld,\"duration\":%lld,\"expect\":%g}", i ? "," : "",
                         (long long)pc->events[i].at, (long long)pc->events[i].duration_s,
                         pc->events[i].expect);
    rc |= buf_printf(out, "],\"sample\":%s}", in->sample ? in->sample : "null");
    return rc ? ERR_LIMIT : ERR_OK;
}

void pol_console_pub_init(struct pol_console_pub *p)
{
    pthread_mutex_init(&p->mu, NULL);
    buf_init(&p->doc, DOC_MAX);
    p->seq = 0;
    atomic_store(&p->watchers, 0);
}

void pol_console_pub_fini(struct pol_console_pub *p)
{
    buf_fini(&p->doc);
    pthread_mutex_destroy(&p->mu);
}

struct fleet {
    struct buf *b;
    int rc; /* a frame that did not fit: the document is not published */
};

static int add_frame(void *ctx, const char *json, size_t len)
{
    struct fleet *f = ctx;
    if (f->b->len && f->b->p[f->b->len - 1] != '[')
        f->rc |= buf_puts(f->b, ",");
    f->rc |= buf_append(f->b, json, len);
    return f->rc ? 1 : 0;
}

void pol_console_publish(struct pol_console_pub *p, struct store *st, const char *instance,
                         int64_t now_ms, const struct buf *frame)
{
    static int64_t warned;
    struct buf b;

    if (store_shared(st) && store_console_put(st, now_ms, frame->p, frame->len) &&
        now_ms - warned > 60000) {
        warned = now_ms; /* (the store's own health is reported elsewhere: once a minute) */
        log_kv(LOG_WARN, "console: this instance's second was not filed in the store", LOG_END);
    }
    if (!atomic_load(&p->watchers))
        return; /* nobody watches: nothing more to do */
    buf_init(&b, DOC_MAX);
    int rc = buf_puts(&b, "{\"self\":\"");
    rc |= buf_json_escape(&b, instance, strlen(instance));
    rc |= buf_printf(&b, "\",\"t\":%lld,\"fleet\":[", (long long)now_ms);
    struct fleet f = {&b, ERR_OK};
    if (!store_shared(st) || store_console_each(st, add_frame, &f))
        rc |= buf_append(&b, frame->p, frame->len); /* alone, or the store did not answer */
    rc |= f.rc | buf_puts(&b, "]}");
    if (!rc) { /* (the new document takes the old one's place; the old one is freed) */
        pthread_mutex_lock(&p->mu);
        struct buf old = p->doc;
        p->doc = b;
        b = old;
        p->seq++;
        pthread_mutex_unlock(&p->mu);
    }
    buf_fini(&b);
}

bool pol_console_read(struct pol_console_pub *p, uint64_t *seq, struct buf *out)
{
    bool fresh = false;
    pthread_mutex_lock(&p->mu);
    if (p->seq != *seq && p->doc.len) {
        buf_reset(out);
        fresh = buf_append(out, p->doc.p, p->doc.len) == ERR_OK;
        *seq = p->seq;
    }
    pthread_mutex_unlock(&p->mu);
    return fresh;
}
