/*
 * gen.c - ABI conformance vectors for vdispl, produced from the real Xen public headers.
 *
 * Specification: README.md in this directory.
 *
 *   gcc -std=gnu11 -O1 -Wall -Wextra -Werror -o gen gen.c && ./gen <outdir>
 *
 * Writes <outdir>/layout.json, <outdir>/packets/<kind>.jsonl, <outdir>/ring-traces.json and
 * <outdir>/evtpage-traces.json, and prints the relative path of every file written on stdout.
 *
 * Everything below is taken from the compiler: sizes and offsets from sizeof/offsetof,
 * constants from the macros and enums, packet bytes from the C structs, ring traces from the
 * ring.h macros running on a real page. The output is deterministic: a fixed-seed xorshift64
 * PRNG (re-seeded per output file), no time, no addresses.
 */
#define _GNU_SOURCE
#include <errno.h> /* before xs_wire.h: enables xsd_errors[] */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Use the newest interface the installed headers implement rather than the legacy
 * interface 0x00000000 that guests get by default: xen-compat.h is include-guarded, so the
 * redefinition below is what every other header sees.
 */
#include <xen/xen-compat.h>
#undef __XEN_INTERFACE_VERSION__
#define __XEN_INTERFACE_VERSION__ __XEN_LATEST_INTERFACE_VERSION__

/* ring.h leaves the barriers to the user for interface versions >= 0x00030208. */
#define xen_mb() __sync_synchronize()
#define xen_rmb() __sync_synchronize()
#define xen_wmb() __sync_synchronize()

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/event_channel.h>
#include <xen/io/ring.h>
#include <xen/io/displif.h> /* does DEFINE_RING_TYPES(xen_displif, ...) itself */
#include <xen/io/xs_wire.h>
#include <xen/io/xenbus.h>
#include <drm_fourcc.h> /* libdrm-dev, built with -I/usr/include/libdrm */

/* The errno list through the header's own X-macro. */
struct xen_errno_entry {
    const char *name;
    int value;
};
static const struct xen_errno_entry xen_errnos[] = {
#define XEN_ERRNO(name, value) {#name, value},
#include <xen/errno.h>
};
#define N_XEN_ERRNOS (sizeof(xen_errnos) / sizeof(xen_errnos[0]))

#define PAGE_SZ 4096
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Deterministic PRNG (xorshift64)                                                             */

static uint64_t rng_state;

static void rng_seed(const char *name)
{
    /* FNV-1a of the output's name, mixed with a fixed seed: files are independent. */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = name; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 0x100000001b3ULL;
    }
    rng_state = h ^ 0x5eed0fd15b1a7e11ULL;
    if (!rng_state)
        rng_state = 1;
}

static uint64_t rnd64(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static uint32_t rnd32(void) { return (uint32_t)(rnd64() >> 32); }

/* uniform-ish in [0, n), n > 0 */
static uint32_t rndn(uint32_t n) { return (uint32_t)(rnd64() % n); }

/* true with probability pct percent */
static int chance(uint32_t pct) { return rndn(100) < pct; }

static uint8_t rnd_nonzero_byte(void) { return (uint8_t)(1 + rndn(255)); }

static uint32_t mix_u32(void)
{
    static const uint32_t ext[] = {0, 1, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    switch (rndn(10)) {
    case 0:
    case 1:
    case 2:
        return ext[rndn(ARRAY_LEN(ext))];
    case 3:
        return rndn(256);
    case 4:
        return rndn(65536);
    case 5:
        return rnd32() >> rndn(32);
    default:
        return rnd32();
    }
}

static uint16_t mix_u16(void)
{
    static const uint16_t ext[] = {0, 1, 0x7fff, 0x8000, 0xffff};
    switch (rndn(6)) {
    case 0:
    case 1:
        return ext[rndn(ARRAY_LEN(ext))];
    case 2:
        return (uint16_t)rndn(256);
    default:
        return (uint16_t)rnd32();
    }
}

static uint64_t mix_u64(void)
{
    static const uint64_t ext[] = {
        0, 1, UINT64_MAX, (1ULL << 53) - 1, 1ULL << 53, (1ULL << 53) + 1, 1ULL << 63,
        0xffffffffULL, 0x100000000ULL,
    };
    switch (rndn(10)) {
    case 0:
    case 1:
    case 2:
        return ext[rndn(ARRAY_LEN(ext))];
    case 3:
    case 4:
        return rnd64() | (1ULL << 63);
    case 5:
        return rnd64() >> rndn(64);
    case 6:
        return (1ULL << 53) + (uint64_t)rndn(64) - 32; /* around the double precision limit */
    default:
        return rnd64();
    }
}

static int32_t mix_status(void)
{
    switch (rndn(10)) {
    case 0:
    case 1:
    case 2:
        return 0;
    case 3:
    case 4:
    case 5:
        return -xen_errnos[rndn(N_XEN_ERRNOS)].value;
    case 6:
        return INT32_MIN;
    case 7: {
        static const int32_t ext[] = {INT32_MAX, -1, 1, INT32_MIN + 1};
        return ext[rndn(ARRAY_LEN(ext))];
    }
    default:
        return (int32_t)rnd32();
    }
}

/* ------------------------------------------------------------------------------------------ */
/* A tiny JSON tree with JSON.stringify-compatible output                                      */

enum { J_BOOL, J_INT, J_STR, J_ARR, J_OBJ };

typedef struct J J;
struct J {
    int t;
    int64_t i;
    char *s; /* J_STR: bytes, each byte is one code point (0..255) */
    size_t slen;
    J **v;
    char **k;
    size_t n, cap;
};

static J *jnew(int t)
{
    J *j = xmalloc(sizeof(*j));
    memset(j, 0, sizeof(*j));
    j->t = t;
    return j;
}

static J *jint(int64_t v)
{
    J *j = jnew(J_INT);
    j->i = v;
    return j;
}

static J *jbool(int v)
{
    J *j = jnew(J_BOOL);
    j->i = v ? 1 : 0;
    return j;
}

static J *jstrn(const void *p, size_t n)
{
    J *j = jnew(J_STR);
    j->s = xmalloc(n);
    if (n)
        memcpy(j->s, p, n);
    j->slen = n;
    return j;
}

static J *jstr(const char *s) { return jstrn(s, strlen(s)); }

static J *ju64(uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return jstr(buf);
}

static J *jhex(const void *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *b = p;
    char *s = xmalloc(2 * n);
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = digits[b[i] >> 4];
        s[2 * i + 1] = digits[b[i] & 15];
    }
    J *j = jnew(J_STR);
    j->s = s;
    j->slen = 2 * n;
    return j;
}

static J *jarr(void) { return jnew(J_ARR); }
static J *jobj(void) { return jnew(J_OBJ); }

static void jgrow(J *c)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
        if (c->t == J_OBJ)
            c->k = xrealloc(c->k, c->cap * sizeof(*c->k));
    }
}

static J *jpush(J *a, J *x)
{
    if (a->t != J_ARR)
        die("jpush on non-array");
    jgrow(a);
    a->v[a->n++] = x;
    return a;
}

static J *jset(J *o, const char *key, J *x)
{
    if (o->t != J_OBJ)
        die("jset on non-object");
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->k[i], key))
            die("duplicate key %s", key);
    jgrow(o);
    o->k[o->n] = xmalloc(strlen(key) + 1);
    strcpy(o->k[o->n], key);
    o->v[o->n++] = x;
    return o;
}

static J *jget(const J *o, const char *key)
{
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->k[i], key))
            return o->v[i];
    return NULL;
}

static void jfree(J *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++) {
        jfree(j->v[i]);
        if (j->t == J_OBJ)
            free(j->k[i]);
    }
    free(j->v);
    free(j->k);
    free(j->s);
    free(j);
}

/* Escapes '"' and '\\', and every byte < 0x20 or >= 0x7f as \u00xx: the output is ASCII. */
static void jwrite_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void jindent(FILE *f, int n)
{
    for (int i = 0; i < n; i++)
        fputc(' ', f);
}

/* pretty: the layout of JSON.stringify(value, null, 2); otherwise JSON.stringify(value). */
static void jwrite(FILE *f, const J *j, int pretty, int ind)
{
    switch (j->t) {
    case J_BOOL:
        fputs(j->i ? "true" : "false", f);
        return;
    case J_INT:
        fprintf(f, "%" PRId64, j->i);
        return;
    case J_STR:
        jwrite_str(f, j->s, j->slen);
        return;
    case J_ARR:
    case J_OBJ: {
        char open = j->t == J_ARR ? '[' : '{', close = j->t == J_ARR ? ']' : '}';
        fputc(open, f);
        if (j->n == 0) {
            fputc(close, f);
            return;
        }
        for (size_t i = 0; i < j->n; i++) {
            if (i)
                fputc(',', f);
            if (pretty) {
                fputc('\n', f);
                jindent(f, ind + 2);
            }
            if (j->t == J_OBJ) {
                jwrite_str(f, j->k[i], strlen(j->k[i]));
                fputs(pretty ? ": " : ":", f);
            }
            jwrite(f, j->v[i], pretty, ind + 2);
        }
        if (pretty) {
            fputc('\n', f);
            jindent(f, ind);
        }
        fputc(close, f);
        return;
    }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Output files                                                                                */

static const char *out_dir;

static FILE *open_out(const char *rel)
{
    size_t n = strlen(out_dir) + 1 + strlen(rel) + 1;
    char *path = xmalloc(n);
    snprintf(path, n, "%s/%s", out_dir, rel);
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write %s: %s", path, strerror(errno));
    free(path);
    return f;
}

static void close_out(FILE *f, const char *rel)
{
    if (ferror(f) || fclose(f))
        die("error writing %s", rel);
    printf("%s\n", rel);
}

static void write_json_file(const char *rel, J *root)
{
    FILE *f = open_out(rel);
    jwrite(f, root, 1, 0);
    fputc('\n', f);
    close_out(f, rel);
    jfree(root);
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0777) && errno != EEXIST)
        die("cannot create %s: %s", path, strerror(errno));
}

/* ------------------------------------------------------------------------------------------ */
/* layout.json                                                                                 */

/* one field: path = the member designator offsetof() takes */
#define LF(o, T, path)                                                                         \
    jset(o, #path,                                                                             \
         jset(jset(jobj(), "offset", jint((int64_t)offsetof(T, path))), "size",               \
              jint((int64_t)sizeof(((T *)0)->path))))

static J *lstruct(J *structs, const char *name, size_t size)
{
    J *fields = jobj();
    jset(structs, name, jset(jset(jobj(), "size", jint((int64_t)size)), "fields", fields));
    return fields;
}

static J *layout_structs(void)
{
    J *s = jobj(), *f;

#define T struct xendispl_req
    f = lstruct(s, "xendispl_req", sizeof(T));
    LF(f, T, id);
    LF(f, T, operation);
    LF(f, T, reserved);
    LF(f, T, op);
    LF(f, T, op.dbuf_create);
    LF(f, T, op.dbuf_create.dbuf_cookie);
    LF(f, T, op.dbuf_create.width);
    LF(f, T, op.dbuf_create.height);
    LF(f, T, op.dbuf_create.bpp);
    LF(f, T, op.dbuf_create.buffer_sz);
    LF(f, T, op.dbuf_create.flags);
    LF(f, T, op.dbuf_create.gref_directory);
    LF(f, T, op.dbuf_create.data_ofs);
    LF(f, T, op.dbuf_destroy);
    LF(f, T, op.dbuf_destroy.dbuf_cookie);
    LF(f, T, op.fb_attach);
    LF(f, T, op.fb_attach.dbuf_cookie);
    LF(f, T, op.fb_attach.fb_cookie);
    LF(f, T, op.fb_attach.width);
    LF(f, T, op.fb_attach.height);
    LF(f, T, op.fb_attach.pixel_format);
    LF(f, T, op.fb_detach);
    LF(f, T, op.fb_detach.fb_cookie);
    LF(f, T, op.set_config);
    LF(f, T, op.set_config.fb_cookie);
    LF(f, T, op.set_config.x);
    LF(f, T, op.set_config.y);
    LF(f, T, op.set_config.width);
    LF(f, T, op.set_config.height);
    LF(f, T, op.set_config.bpp);
    LF(f, T, op.pg_flip);
    LF(f, T, op.pg_flip.fb_cookie);
    LF(f, T, op.get_edid);
    LF(f, T, op.get_edid.buffer_sz);
    LF(f, T, op.get_edid.gref_directory);
    LF(f, T, op.reserved);
#undef T

#define T struct xendispl_resp
    f = lstruct(s, "xendispl_resp", sizeof(T));
    LF(f, T, id);
    LF(f, T, operation);
    LF(f, T, reserved);
    LF(f, T, status);
    LF(f, T, op);
    LF(f, T, op.get_edid);
    LF(f, T, op.get_edid.edid_sz);
    LF(f, T, op.reserved1);
#undef T

#define T struct xendispl_evt
    f = lstruct(s, "xendispl_evt", sizeof(T));
    LF(f, T, id);
    LF(f, T, type);
    LF(f, T, reserved);
    LF(f, T, op);
    LF(f, T, op.pg_flip);
    LF(f, T, op.pg_flip.fb_cookie);
    LF(f, T, op.reserved);
#undef T

#define T struct xendispl_event_page
    f = lstruct(s, "xendispl_event_page", sizeof(T));
    LF(f, T, in_cons);
    LF(f, T, in_prod);
    LF(f, T, reserved);
#undef T

#define T struct xendispl_page_directory
    f = lstruct(s, "xendispl_page_directory", sizeof(T));
    LF(f, T, gref_dir_next_page);
    LF(f, T, gref);
    LF(f, T, gref[0]);
#undef T

#define T struct xendispl_dbuf_create_req
    f = lstruct(s, "xendispl_dbuf_create_req", sizeof(T));
    LF(f, T, dbuf_cookie);
    LF(f, T, width);
    LF(f, T, height);
    LF(f, T, bpp);
    LF(f, T, buffer_sz);
    LF(f, T, flags);
    LF(f, T, gref_directory);
    LF(f, T, data_ofs);
#undef T

#define T struct xendispl_dbuf_destroy_req
    f = lstruct(s, "xendispl_dbuf_destroy_req", sizeof(T));
    LF(f, T, dbuf_cookie);
#undef T

#define T struct xendispl_fb_attach_req
    f = lstruct(s, "xendispl_fb_attach_req", sizeof(T));
    LF(f, T, dbuf_cookie);
    LF(f, T, fb_cookie);
    LF(f, T, width);
    LF(f, T, height);
    LF(f, T, pixel_format);
#undef T

#define T struct xendispl_fb_detach_req
    f = lstruct(s, "xendispl_fb_detach_req", sizeof(T));
    LF(f, T, fb_cookie);
#undef T

#define T struct xendispl_set_config_req
    f = lstruct(s, "xendispl_set_config_req", sizeof(T));
    LF(f, T, fb_cookie);
    LF(f, T, x);
    LF(f, T, y);
    LF(f, T, width);
    LF(f, T, height);
    LF(f, T, bpp);
#undef T

#define T struct xendispl_page_flip_req
    f = lstruct(s, "xendispl_page_flip_req", sizeof(T));
    LF(f, T, fb_cookie);
#undef T

#define T struct xendispl_get_edid_req
    f = lstruct(s, "xendispl_get_edid_req", sizeof(T));
    LF(f, T, buffer_sz);
    LF(f, T, gref_directory);
#undef T

#define T struct xendispl_get_edid_resp
    f = lstruct(s, "xendispl_get_edid_resp", sizeof(T));
    LF(f, T, edid_sz);
#undef T

#define T struct xendispl_pg_flip_evt
    f = lstruct(s, "xendispl_pg_flip_evt", sizeof(T));
    LF(f, T, fb_cookie);
#undef T

#define T struct xen_displif_sring
    f = lstruct(s, "xen_displif_sring", sizeof(T));
    LF(f, T, req_prod);
    LF(f, T, req_event);
    LF(f, T, rsp_prod);
    LF(f, T, rsp_event);
    LF(f, T, pvt);
    LF(f, T, pvt.netif.smartpoll_active);
    LF(f, T, pvt.tapif_user.msg);
    LF(f, T, pvt.pvt_pad);
    LF(f, T, __pad);
    LF(f, T, ring);
    LF(f, T, ring[0]);
    LF(f, T, ring[0].req);
    LF(f, T, ring[0].rsp);
#undef T

#define T union xen_displif_sring_entry
    f = lstruct(s, "xen_displif_sring_entry", sizeof(T));
    LF(f, T, req);
    LF(f, T, rsp);
#undef T

#define T struct grant_entry_v1
    f = lstruct(s, "grant_entry_v1", sizeof(T));
    LF(f, T, flags);
    LF(f, T, domid);
    LF(f, T, frame);
#undef T

#define T struct gnttab_map_grant_ref
    f = lstruct(s, "gnttab_map_grant_ref", sizeof(T));
    LF(f, T, host_addr);
    LF(f, T, flags);
    LF(f, T, ref);
    LF(f, T, dom);
    LF(f, T, status);
    LF(f, T, handle);
    LF(f, T, dev_bus_addr);
#undef T

#define T struct gnttab_unmap_grant_ref
    f = lstruct(s, "gnttab_unmap_grant_ref", sizeof(T));
    LF(f, T, host_addr);
    LF(f, T, dev_bus_addr);
    LF(f, T, handle);
    LF(f, T, status);
#undef T

#define T struct xsd_sockmsg
    f = lstruct(s, "xsd_sockmsg", sizeof(T));
    LF(f, T, type);
    LF(f, T, req_id);
    LF(f, T, tx_id);
    LF(f, T, len);
#undef T

#define T struct xenstore_domain_interface
    f = lstruct(s, "xenstore_domain_interface", sizeof(T));
    LF(f, T, req);
    LF(f, T, rsp);
    LF(f, T, req_cons);
    LF(f, T, req_prod);
    LF(f, T, rsp_cons);
    LF(f, T, rsp_prod);
    LF(f, T, server_features);
    LF(f, T, connection);
    LF(f, T, error);
#undef T

#define T struct evtchn_alloc_unbound
    f = lstruct(s, "evtchn_alloc_unbound", sizeof(T));
    LF(f, T, dom);
    LF(f, T, remote_dom);
    LF(f, T, port);
#undef T

#define T struct evtchn_bind_interdomain
    f = lstruct(s, "evtchn_bind_interdomain", sizeof(T));
    LF(f, T, remote_dom);
    LF(f, T, remote_port);
    LF(f, T, local_port);
#undef T

#define T struct evtchn_send
    f = lstruct(s, "evtchn_send", sizeof(T));
    LF(f, T, port);
#undef T

#define T struct evtchn_close
    f = lstruct(s, "evtchn_close", sizeof(T));
    LF(f, T, port);
#undef T

    return s;
}

#define CI(o, name) jset(o, #name, jint((int64_t)(name)))
#define CS(o, name) jset(o, #name, jstr(name))

static J *layout_constants(void)
{
    J *c = jobj();

    /* displif.h */
#ifdef XENDISPL_PROTOCOL_VERSION
    CS(c, XENDISPL_PROTOCOL_VERSION);
#endif
#ifdef XENDISPL_PROTOCOL_VERSION_INT
    CI(c, XENDISPL_PROTOCOL_VERSION_INT);
#endif
#ifdef XENDISPL_OP_DBUF_CREATE
    CI(c, XENDISPL_OP_DBUF_CREATE);
#endif
#ifdef XENDISPL_OP_DBUF_DESTROY
    CI(c, XENDISPL_OP_DBUF_DESTROY);
#endif
#ifdef XENDISPL_OP_FB_ATTACH
    CI(c, XENDISPL_OP_FB_ATTACH);
#endif
#ifdef XENDISPL_OP_FB_DETACH
    CI(c, XENDISPL_OP_FB_DETACH);
#endif
#ifdef XENDISPL_OP_SET_CONFIG
    CI(c, XENDISPL_OP_SET_CONFIG);
#endif
#ifdef XENDISPL_OP_PG_FLIP
    CI(c, XENDISPL_OP_PG_FLIP);
#endif
#ifdef XENDISPL_OP_GET_EDID
    CI(c, XENDISPL_OP_GET_EDID);
#endif
#ifdef XENDISPL_EVT_PG_FLIP
    CI(c, XENDISPL_EVT_PG_FLIP);
#endif
#ifdef XENDISPL_DRIVER_NAME
    CS(c, XENDISPL_DRIVER_NAME);
#endif
#ifdef XENDISPL_LIST_SEPARATOR
    CS(c, XENDISPL_LIST_SEPARATOR);
#endif
#ifdef XENDISPL_RESOLUTION_SEPARATOR
    CS(c, XENDISPL_RESOLUTION_SEPARATOR);
#endif
#ifdef XENDISPL_FIELD_BE_VERSIONS
    CS(c, XENDISPL_FIELD_BE_VERSIONS);
#endif
#ifdef XENDISPL_FIELD_FE_VERSION
    CS(c, XENDISPL_FIELD_FE_VERSION);
#endif
#ifdef XENDISPL_FIELD_REQ_RING_REF
    CS(c, XENDISPL_FIELD_REQ_RING_REF);
#endif
#ifdef XENDISPL_FIELD_REQ_CHANNEL
    CS(c, XENDISPL_FIELD_REQ_CHANNEL);
#endif
#ifdef XENDISPL_FIELD_EVT_RING_REF
    CS(c, XENDISPL_FIELD_EVT_RING_REF);
#endif
#ifdef XENDISPL_FIELD_EVT_CHANNEL
    CS(c, XENDISPL_FIELD_EVT_CHANNEL);
#endif
#ifdef XENDISPL_FIELD_RESOLUTION
    CS(c, XENDISPL_FIELD_RESOLUTION);
#endif
#ifdef XENDISPL_FIELD_BE_ALLOC
    CS(c, XENDISPL_FIELD_BE_ALLOC);
#endif
#ifdef XENDISPL_FIELD_UNIQUE_ID
    CS(c, XENDISPL_FIELD_UNIQUE_ID);
#endif
#ifdef XENDISPL_EDID_BLOCK_SIZE
    CI(c, XENDISPL_EDID_BLOCK_SIZE);
#endif
#ifdef XENDISPL_EDID_BLOCK_COUNT
    CI(c, XENDISPL_EDID_BLOCK_COUNT);
#endif
#ifdef XENDISPL_EDID_MAX_SIZE
    CI(c, XENDISPL_EDID_MAX_SIZE);
#endif
#ifdef XENDISPL_DBUF_FLG_REQ_ALLOC
    CI(c, XENDISPL_DBUF_FLG_REQ_ALLOC);
#endif
#ifdef XENDISPL_EVENT_PAGE_SIZE
    CI(c, XENDISPL_EVENT_PAGE_SIZE);
#endif
#ifdef XENDISPL_IN_RING_OFFS
    CI(c, XENDISPL_IN_RING_OFFS);
#endif
#ifdef XENDISPL_IN_RING_SIZE
    CI(c, XENDISPL_IN_RING_SIZE);
#endif
#ifdef XENDISPL_IN_RING_LEN
    CI(c, XENDISPL_IN_RING_LEN);
#endif

    /* ring.h */
    jset(c, "RING_SIZE_xen_displif_4096", jint((int64_t)__CONST_RING_SIZE(xen_displif, 4096)));

    /* grant_table.h */
#ifdef GTF_invalid
    CI(c, GTF_invalid);
#endif
#ifdef GTF_permit_access
    CI(c, GTF_permit_access);
#endif
#ifdef GTF_accept_transfer
    CI(c, GTF_accept_transfer);
#endif
#ifdef GTF_transitive
    CI(c, GTF_transitive);
#endif
#ifdef GTF_type_mask
    CI(c, GTF_type_mask);
#endif
#ifdef GTF_readonly
    CI(c, GTF_readonly);
#endif
#ifdef GTF_reading
    CI(c, GTF_reading);
#endif
#ifdef GTF_writing
    CI(c, GTF_writing);
#endif
#ifdef GTF_PWT
    CI(c, GTF_PWT);
#endif
#ifdef GTF_PCD
    CI(c, GTF_PCD);
#endif
#ifdef GTF_PAT
    CI(c, GTF_PAT);
#endif
#ifdef GTF_sub_page
    CI(c, GTF_sub_page);
#endif
#ifdef GTF_transfer_committed
    CI(c, GTF_transfer_committed);
#endif
#ifdef GTF_transfer_completed
    CI(c, GTF_transfer_completed);
#endif
#ifdef GTF_cache_flush /* not in every version */
    CI(c, GTF_cache_flush);
#endif
#ifdef GNTTAB_NR_RESERVED_ENTRIES
    CI(c, GNTTAB_NR_RESERVED_ENTRIES);
#endif
#ifdef GNTTAB_RESERVED_CONSOLE
    CI(c, GNTTAB_RESERVED_CONSOLE);
#endif
#ifdef GNTTAB_RESERVED_XENSTORE
    CI(c, GNTTAB_RESERVED_XENSTORE);
#endif
#ifdef GNTTABOP_map_grant_ref
    CI(c, GNTTABOP_map_grant_ref);
#endif
#ifdef GNTTABOP_unmap_grant_ref
    CI(c, GNTTABOP_unmap_grant_ref);
#endif
#ifdef GNTTABOP_setup_table
    CI(c, GNTTABOP_setup_table);
#endif
#ifdef GNTTABOP_dump_table
    CI(c, GNTTABOP_dump_table);
#endif
#ifdef GNTTABOP_transfer
    CI(c, GNTTABOP_transfer);
#endif
#ifdef GNTTABOP_copy
    CI(c, GNTTABOP_copy);
#endif
#ifdef GNTTABOP_query_size
    CI(c, GNTTABOP_query_size);
#endif
#ifdef GNTTABOP_unmap_and_replace
    CI(c, GNTTABOP_unmap_and_replace);
#endif
#ifdef GNTTABOP_set_version
    CI(c, GNTTABOP_set_version);
#endif
#ifdef GNTTABOP_get_status_frames
    CI(c, GNTTABOP_get_status_frames);
#endif
#ifdef GNTTABOP_get_version
    CI(c, GNTTABOP_get_version);
#endif
#ifdef GNTTABOP_swap_grant_ref
    CI(c, GNTTABOP_swap_grant_ref);
#endif
#ifdef GNTTABOP_cache_flush
    CI(c, GNTTABOP_cache_flush);
#endif
#ifdef GNTMAP_device_map
    CI(c, GNTMAP_device_map);
#endif
#ifdef GNTMAP_host_map
    CI(c, GNTMAP_host_map);
#endif
#ifdef GNTMAP_readonly
    CI(c, GNTMAP_readonly);
#endif
#ifdef GNTMAP_application_map
    CI(c, GNTMAP_application_map);
#endif
#ifdef GNTMAP_contains_pte
    CI(c, GNTMAP_contains_pte);
#endif
#ifdef GNTMAP_guest_avail_mask
    CI(c, GNTMAP_guest_avail_mask);
#endif
#ifdef GNTCOPY_source_gref
    CI(c, GNTCOPY_source_gref);
#endif
#ifdef GNTCOPY_dest_gref
    CI(c, GNTCOPY_dest_gref);
#endif
#ifdef GNTTAB_CACHE_CLEAN
    CI(c, GNTTAB_CACHE_CLEAN);
#endif
#ifdef GNTTAB_CACHE_INVAL
    CI(c, GNTTAB_CACHE_INVAL);
#endif
#ifdef GNTTAB_CACHE_SOURCE_GREF
    CI(c, GNTTAB_CACHE_SOURCE_GREF);
#endif
#ifdef GNTST_okay
    CI(c, GNTST_okay);
#endif
#ifdef GNTST_general_error
    CI(c, GNTST_general_error);
#endif
#ifdef GNTST_bad_domain
    CI(c, GNTST_bad_domain);
#endif
#ifdef GNTST_bad_gntref
    CI(c, GNTST_bad_gntref);
#endif
#ifdef GNTST_bad_handle
    CI(c, GNTST_bad_handle);
#endif
#ifdef GNTST_bad_virt_addr
    CI(c, GNTST_bad_virt_addr);
#endif
#ifdef GNTST_bad_dev_addr
    CI(c, GNTST_bad_dev_addr);
#endif
#ifdef GNTST_no_device_space
    CI(c, GNTST_no_device_space);
#endif
#ifdef GNTST_permission_denied
    CI(c, GNTST_permission_denied);
#endif
#ifdef GNTST_bad_page
    CI(c, GNTST_bad_page);
#endif
#ifdef GNTST_bad_copy_arg
    CI(c, GNTST_bad_copy_arg);
#endif
#ifdef GNTST_address_too_big
    CI(c, GNTST_address_too_big);
#endif
#ifdef GNTST_eagain
    CI(c, GNTST_eagain);
#endif
#ifdef GNTST_no_space
    CI(c, GNTST_no_space);
#endif

    /* xs_wire.h: enum xsd_sockmsg_type (enumerators cannot be tested with #ifdef; these are
     * the ones every header since the removal of XS_RESTRICT has) */
    CI(c, XS_CONTROL);
#ifdef XS_DEBUG
    CI(c, XS_DEBUG);
#endif
    CI(c, XS_DIRECTORY);
    CI(c, XS_READ);
    CI(c, XS_GET_PERMS);
    CI(c, XS_WATCH);
    CI(c, XS_UNWATCH);
    CI(c, XS_TRANSACTION_START);
    CI(c, XS_TRANSACTION_END);
    CI(c, XS_INTRODUCE);
    CI(c, XS_RELEASE);
    CI(c, XS_GET_DOMAIN_PATH);
    CI(c, XS_WRITE);
    CI(c, XS_MKDIR);
    CI(c, XS_RM);
    CI(c, XS_SET_PERMS);
    CI(c, XS_WATCH_EVENT);
    CI(c, XS_ERROR);
    CI(c, XS_IS_DOMAIN_INTRODUCED);
    CI(c, XS_RESUME);
    CI(c, XS_SET_TARGET);
    CI(c, XS_RESET_WATCHES);
    CI(c, XS_DIRECTORY_PART);
    CI(c, XS_TYPE_COUNT);
    CI(c, XS_INVALID);
    CI(c, XS_WATCH_PATH);
    CI(c, XS_WATCH_TOKEN);
#ifdef XS_WRITE_NONE
    CS(c, XS_WRITE_NONE);
#endif
#ifdef XS_WRITE_CREATE
    CS(c, XS_WRITE_CREATE);
#endif
#ifdef XS_WRITE_CREATE_EXCL
    CS(c, XS_WRITE_CREATE_EXCL);
#endif
#ifdef XENSTORE_RING_SIZE
    CI(c, XENSTORE_RING_SIZE);
#endif
#ifdef XENSTORE_PAYLOAD_MAX
    CI(c, XENSTORE_PAYLOAD_MAX);
#endif
#ifdef XENSTORE_ABS_PATH_MAX
    CI(c, XENSTORE_ABS_PATH_MAX);
#endif
#ifdef XENSTORE_REL_PATH_MAX
    CI(c, XENSTORE_REL_PATH_MAX);
#endif
#ifdef XENSTORE_SERVER_FEATURE_RECONNECTION
    CI(c, XENSTORE_SERVER_FEATURE_RECONNECTION);
#endif
#ifdef XENSTORE_SERVER_FEATURE_ERROR
    CI(c, XENSTORE_SERVER_FEATURE_ERROR);
#endif
#ifdef XENSTORE_SERVER_FEATURE_WATCHDEPTH
    CI(c, XENSTORE_SERVER_FEATURE_WATCHDEPTH);
#endif
#ifdef XENSTORE_SERVER_FEATURE_DOMID_ANY
    CI(c, XENSTORE_SERVER_FEATURE_DOMID_ANY);
#endif
#ifdef XENSTORE_CONNECTED
    CI(c, XENSTORE_CONNECTED);
#endif
#ifdef XENSTORE_RECONNECT
    CI(c, XENSTORE_RECONNECT);
#endif
#ifdef XENSTORE_ERROR_NONE
    CI(c, XENSTORE_ERROR_NONE);
#endif
#ifdef XENSTORE_ERROR_COMM
    CI(c, XENSTORE_ERROR_COMM);
#endif
#ifdef XENSTORE_ERROR_RINGIDX
    CI(c, XENSTORE_ERROR_RINGIDX);
#endif
#ifdef XENSTORE_ERROR_PROTO
    CI(c, XENSTORE_ERROR_PROTO);
#endif

    /* event_channel.h */
#ifdef EVTCHNOP_bind_interdomain
    CI(c, EVTCHNOP_bind_interdomain);
#endif
#ifdef EVTCHNOP_bind_virq
    CI(c, EVTCHNOP_bind_virq);
#endif
#ifdef EVTCHNOP_bind_pirq
    CI(c, EVTCHNOP_bind_pirq);
#endif
#ifdef EVTCHNOP_close
    CI(c, EVTCHNOP_close);
#endif
#ifdef EVTCHNOP_send
    CI(c, EVTCHNOP_send);
#endif
#ifdef EVTCHNOP_status
    CI(c, EVTCHNOP_status);
#endif
#ifdef EVTCHNOP_alloc_unbound
    CI(c, EVTCHNOP_alloc_unbound);
#endif
#ifdef EVTCHNOP_bind_ipi
    CI(c, EVTCHNOP_bind_ipi);
#endif
#ifdef EVTCHNOP_bind_vcpu
    CI(c, EVTCHNOP_bind_vcpu);
#endif
#ifdef EVTCHNOP_unmask
    CI(c, EVTCHNOP_unmask);
#endif
#ifdef EVTCHNOP_reset
    CI(c, EVTCHNOP_reset);
#endif
#ifdef EVTCHNOP_init_control
    CI(c, EVTCHNOP_init_control);
#endif
#ifdef EVTCHNOP_expand_array
    CI(c, EVTCHNOP_expand_array);
#endif
#ifdef EVTCHNOP_set_priority
    CI(c, EVTCHNOP_set_priority);
#endif
#ifdef EVTCHNOP_reset_cont
    CI(c, EVTCHNOP_reset_cont);
#endif
#ifdef EVTCHNSTAT_closed
    CI(c, EVTCHNSTAT_closed);
#endif
#ifdef EVTCHNSTAT_unbound
    CI(c, EVTCHNSTAT_unbound);
#endif
#ifdef EVTCHNSTAT_interdomain
    CI(c, EVTCHNSTAT_interdomain);
#endif
#ifdef EVTCHNSTAT_pirq
    CI(c, EVTCHNSTAT_pirq);
#endif
#ifdef EVTCHNSTAT_virq
    CI(c, EVTCHNSTAT_virq);
#endif
#ifdef EVTCHNSTAT_ipi
    CI(c, EVTCHNSTAT_ipi);
#endif

    /* xen.h */
#ifdef DOMID_FIRST_RESERVED
    CI(c, DOMID_FIRST_RESERVED);
#endif
#ifdef DOMID_SELF
    CI(c, DOMID_SELF);
#endif
#ifdef DOMID_IO
    CI(c, DOMID_IO);
#endif
#ifdef DOMID_XEN
    CI(c, DOMID_XEN);
#endif
#ifdef DOMID_COW
    CI(c, DOMID_COW);
#endif
#ifdef DOMID_INVALID
    CI(c, DOMID_INVALID);
#endif
#ifdef DOMID_IDLE
    CI(c, DOMID_IDLE);
#endif
#ifdef DOMID_MASK
    CI(c, DOMID_MASK);
#endif
#ifdef XEN_PAGE_SHIFT
    CI(c, XEN_PAGE_SHIFT);
#endif

    return c;
}

static void gen_layout(void)
{
    J *root = jobj();
    char ver[16];
    snprintf(ver, sizeof(ver), "0x%08x", (unsigned)__XEN_INTERFACE_VERSION__);
    jset(root, "xen_interface_version", jstr(ver));
    jset(root, "structs", layout_structs());
    jset(root, "constants", layout_constants());

    J *e = jobj();
    for (size_t i = 0; i < N_XEN_ERRNOS; i++)
        jset(e, xen_errnos[i].name, jint(xen_errnos[i].value));
    jset(root, "errno", e);

    J *x = jarr();
    for (size_t i = 0; i < ARRAY_LEN(xsd_errors); i++)
        jpush(x, jstr(xsd_errors[i].errstring));
    jset(root, "xsd_errors", x);

    static const char *const gntst_msgs[] = GNTTABOP_error_msgs;
    J *g = jarr();
    for (size_t i = 0; i < ARRAY_LEN(gntst_msgs); i++)
        jpush(g, jstr(gntst_msgs[i]));
    jset(root, "gntst_messages", g);

    J *s = jobj();
#define XB(name) jset(s, #name, jint((int64_t)(name)))
    XB(XenbusStateUnknown);
    XB(XenbusStateInitialising);
    XB(XenbusStateInitWait);
    XB(XenbusStateInitialised);
    XB(XenbusStateConnected);
    XB(XenbusStateClosing);
    XB(XenbusStateClosed);
    XB(XenbusStateReconfiguring);
    XB(XenbusStateReconfigured);
#undef XB
    jset(root, "xenbus_states", s);

    J *d = jobj();
#define DF(name) jset(d, #name, jint((int64_t)(name)))
    DF(DRM_FORMAT_RGB565);
    DF(DRM_FORMAT_BGR565);
    DF(DRM_FORMAT_RGB888);
    DF(DRM_FORMAT_BGR888);
    DF(DRM_FORMAT_XRGB8888);
    DF(DRM_FORMAT_XBGR8888);
    DF(DRM_FORMAT_RGBX8888);
    DF(DRM_FORMAT_BGRX8888);
    DF(DRM_FORMAT_ARGB8888);
    DF(DRM_FORMAT_ABGR8888);
    DF(DRM_FORMAT_RGBA8888);
    DF(DRM_FORMAT_BGRA8888);
    DF(DRM_FORMAT_XRGB4444);
    DF(DRM_FORMAT_ARGB4444);
    DF(DRM_FORMAT_XBGR4444);
    DF(DRM_FORMAT_ABGR4444);
    DF(DRM_FORMAT_XRGB1555);
    DF(DRM_FORMAT_ARGB1555);
    DF(DRM_FORMAT_XBGR1555);
    DF(DRM_FORMAT_ABGR1555);
    DF(DRM_FORMAT_XRGB2101010);
    DF(DRM_FORMAT_ARGB2101010);
    DF(DRM_FORMAT_XBGR2101010);
    DF(DRM_FORMAT_ABGR2101010);
    DF(DRM_FORMAT_YUYV);
#undef DF
    jset(root, "drm_formats", d);

    write_json_file("layout.json", root);
}

/* ------------------------------------------------------------------------------------------ */
/* Packet decoders: bytes -> fields, read through the C structs                                */

/*
 * used[] marks the bytes covered by the fields that are printed (offsetof + sizeof of the
 * very members that are read); every other byte of the packet is reserved.
 */
static void mark(uint8_t *used, size_t off, size_t size)
{
    memset(used + off, 1, size);
}

/* key = member, value from the decoded struct, bytes marked as used */
#define DNUM(o, used, T, var, m, key) \
    (jset(o, key, jint((int64_t)(var).m)), mark(used, offsetof(T, m), sizeof((var).m)))
#define DU64(o, used, T, var, m, key) \
    (jset(o, key, ju64((var).m)), mark(used, offsetof(T, m), sizeof((var).m)))
#define DHEX(o, used, T, var, m, key) \
    (jset(o, key, jhex(&(var).m, sizeof((var).m))), mark(used, offsetof(T, m), sizeof((var).m)))

static void finish_reserved(J *o, const uint8_t *b, const uint8_t *used, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!used[i] && b[i]) {
            jset(o, "reserved_nonzero", jbool(1));
            return;
        }
}

static J *decode_req(const uint8_t *b, uint8_t *used)
{
    struct xendispl_req r;
    J *o = jobj();
    memcpy(&r, b, sizeof(r));
    memset(used, 0, sizeof(r));
#define T struct xendispl_req
    DNUM(o, used, T, r, id, "id");
    DNUM(o, used, T, r, operation, "operation");
    switch (r.operation) {
    case XENDISPL_OP_DBUF_CREATE:
        DU64(o, used, T, r, op.dbuf_create.dbuf_cookie, "dbuf_cookie");
        DNUM(o, used, T, r, op.dbuf_create.width, "width");
        DNUM(o, used, T, r, op.dbuf_create.height, "height");
        DNUM(o, used, T, r, op.dbuf_create.bpp, "bpp");
        DNUM(o, used, T, r, op.dbuf_create.buffer_sz, "buffer_sz");
        DNUM(o, used, T, r, op.dbuf_create.flags, "flags");
        DNUM(o, used, T, r, op.dbuf_create.gref_directory, "gref_directory");
        DNUM(o, used, T, r, op.dbuf_create.data_ofs, "data_ofs");
        break;
    case XENDISPL_OP_DBUF_DESTROY:
        DU64(o, used, T, r, op.dbuf_destroy.dbuf_cookie, "dbuf_cookie");
        break;
    case XENDISPL_OP_FB_ATTACH:
        DU64(o, used, T, r, op.fb_attach.dbuf_cookie, "dbuf_cookie");
        DU64(o, used, T, r, op.fb_attach.fb_cookie, "fb_cookie");
        DNUM(o, used, T, r, op.fb_attach.width, "width");
        DNUM(o, used, T, r, op.fb_attach.height, "height");
        DNUM(o, used, T, r, op.fb_attach.pixel_format, "pixel_format");
        break;
    case XENDISPL_OP_FB_DETACH:
        DU64(o, used, T, r, op.fb_detach.fb_cookie, "fb_cookie");
        break;
    case XENDISPL_OP_SET_CONFIG:
        DU64(o, used, T, r, op.set_config.fb_cookie, "fb_cookie");
        DNUM(o, used, T, r, op.set_config.x, "x");
        DNUM(o, used, T, r, op.set_config.y, "y");
        DNUM(o, used, T, r, op.set_config.width, "width");
        DNUM(o, used, T, r, op.set_config.height, "height");
        DNUM(o, used, T, r, op.set_config.bpp, "bpp");
        break;
    case XENDISPL_OP_PG_FLIP:
        DU64(o, used, T, r, op.pg_flip.fb_cookie, "fb_cookie");
        break;
    case XENDISPL_OP_GET_EDID:
        DNUM(o, used, T, r, op.get_edid.buffer_sz, "buffer_sz");
        DNUM(o, used, T, r, op.get_edid.gref_directory, "gref_directory");
        break;
    default:
        DHEX(o, used, T, r, op.reserved, "op");
        break;
    }
#undef T
    finish_reserved(o, b, used, sizeof(r));
    return o;
}

static J *decode_resp(const uint8_t *b, uint8_t *used)
{
    struct xendispl_resp r;
    J *o = jobj();
    memcpy(&r, b, sizeof(r));
    memset(used, 0, sizeof(r));
#define T struct xendispl_resp
    DNUM(o, used, T, r, id, "id");
    DNUM(o, used, T, r, operation, "operation");
    DNUM(o, used, T, r, status, "status");
    if (r.operation == XENDISPL_OP_GET_EDID)
        DNUM(o, used, T, r, op.get_edid.edid_sz, "edid_sz");
#undef T
    finish_reserved(o, b, used, sizeof(r));
    return o;
}

static J *decode_evt(const uint8_t *b, uint8_t *used)
{
    struct xendispl_evt e;
    J *o = jobj();
    memcpy(&e, b, sizeof(e));
    memset(used, 0, sizeof(e));
#define T struct xendispl_evt
    DNUM(o, used, T, e, id, "id");
    DNUM(o, used, T, e, type, "type");
    if (e.type == XENDISPL_EVT_PG_FLIP)
        DU64(o, used, T, e, op.pg_flip.fb_cookie, "fb_cookie");
    else
        DHEX(o, used, T, e, op.reserved, "op");
#undef T
    finish_reserved(o, b, used, sizeof(e));
    return o;
}

static J *decode_evtpage(const uint8_t *b, uint8_t *used)
{
    struct xendispl_event_page p;
    J *o = jobj();
    memcpy(&p, b, sizeof(p));
    memset(used, 0, sizeof(p));
#define T struct xendispl_event_page
    DNUM(o, used, T, p, in_cons, "in_cons");
    DNUM(o, used, T, p, in_prod, "in_prod");
#undef T
    finish_reserved(o, b, used, sizeof(p));
    return o;
}

/* the 64-byte header of the shared ring page (everything before ring[]) */
#define SRING_HDR offsetof(struct xen_displif_sring, ring)

static J *decode_sring(const uint8_t *b, uint8_t *used)
{
    struct xen_displif_sring s;
    J *o = jobj();
    memset(&s, 0, sizeof(s));
    memcpy(&s, b, SRING_HDR);
    memset(used, 0, SRING_HDR);
#define T struct xen_displif_sring
    DNUM(o, used, T, s, req_prod, "req_prod");
    DNUM(o, used, T, s, req_event, "req_event");
    DNUM(o, used, T, s, rsp_prod, "rsp_prod");
    DNUM(o, used, T, s, rsp_event, "rsp_event");
#undef T
    finish_reserved(o, b, used, SRING_HDR);
    return o;
}

static J *decode_gntentry(const uint8_t *b, uint8_t *used)
{
    struct grant_entry_v1 g;
    J *o = jobj();
    memcpy(&g, b, sizeof(g));
    memset(used, 0, sizeof(g));
#define T struct grant_entry_v1
    DNUM(o, used, T, g, flags, "flags");
    DNUM(o, used, T, g, domid, "domid");
    DNUM(o, used, T, g, frame, "frame");
#undef T
    finish_reserved(o, b, used, sizeof(g));
    return o;
}

static J *decode_xsmsg(const uint8_t *b, size_t n)
{
    struct xsd_sockmsg m;
    uint8_t used[sizeof(m)];
    J *o = jobj();
    if (n < sizeof(m))
        die("short xsmsg");
    memcpy(&m, b, sizeof(m));
    memset(used, 0, sizeof(used));
#define T struct xsd_sockmsg
    DNUM(o, used, T, m, type, "type");
    DNUM(o, used, T, m, req_id, "req_id");
    DNUM(o, used, T, m, tx_id, "tx_id");
    DNUM(o, used, T, m, len, "len");
#undef T
    if ((size_t)m.len != n - sizeof(m))
        die("xsmsg len mismatch");
    J *pl = jarr();
    const uint8_t *p = b + sizeof(m);
    size_t start = 0;
    for (size_t i = 0; i <= m.len; i++) {
        if (i == m.len || p[i] == 0) {
            jpush(pl, jstrn(p + start, i - start));
            start = i + 1;
        }
    }
    jset(o, "payload", pl);
    finish_reserved(o, b, used, sizeof(m));
    return o;
}

static J *decode_pgdir(const uint8_t *b)
{
    /* a whole directory page seen through the struct (gref[] runs to the end of the page) */
    static union {
        struct xendispl_page_directory d;
        uint8_t bytes[PAGE_SZ];
    } page;
    J *o = jobj();
    memcpy(page.bytes, b, PAGE_SZ);
    const grant_ref_t *gref = page.d.gref;
    size_t count = (PAGE_SZ - offsetof(struct xendispl_page_directory, gref)) / sizeof(grant_ref_t);
    jset(o, "gref_dir_next_page", jint(page.d.gref_dir_next_page));
    J *a = jarr();
    for (size_t i = 0; i < count; i++)
        jpush(a, jint(gref[i]));
    jset(o, "gref", a);
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* Packet generators                                                                           */

static void write_packet_line(FILE *f, const uint8_t *b, size_t n, J *fields)
{
    J *line = jobj();
    jset(line, "hex", jhex(b, n));
    jset(line, "fields", fields);
    jwrite(f, line, 0, 0);
    fputc('\n', f);
    jfree(line);
}

typedef J *(*decoder_fn)(const uint8_t *, uint8_t *);

struct reserved_stats {
    unsigned total, nonzero, unknown;
};

/*
 * Make some reserved bytes non-zero (about 15% of the packets). pad_lo/pad_hi (may be
 * equal) is a range of reserved bytes that gets picked on its own now and then (the tail
 * padding of a payload struct).
 */
static int maybe_dirty_reserved(uint8_t *b, size_t n, decoder_fn dec, size_t pad_lo, size_t pad_hi)
{
    uint8_t used[PAGE_SZ];
    size_t pos[PAGE_SZ], npos = 0;
    if (!chance(15))
        return 0;
    jfree(dec(b, used));
    for (size_t i = 0; i < n; i++)
        if (!used[i])
            pos[npos++] = i;
    if (!npos)
        return 0;
    if (pad_hi > pad_lo && chance(35)) {
        /* only the tail padding of the payload struct */
        b[pad_lo + rndn((uint32_t)(pad_hi - pad_lo))] = rnd_nonzero_byte();
    } else if (chance(20)) {
        for (size_t i = 0; i < npos; i++)
            b[pos[i]] = chance(50) ? 0xff : rnd_nonzero_byte();
    } else {
        unsigned k = 1 + rndn(3);
        for (unsigned i = 0; i < k; i++)
            b[pos[rndn((uint32_t)npos)]] = rnd_nonzero_byte();
    }
    return 1;
}

static const uint32_t fourccs[] = {
    0x36314752, 0x34324752, 0x34325258, 0x34325241, 0x32315258,
    0x32315241, 0x35315258, 0x35315241, 0x56595559,
};

static uint32_t mix_dim(void)
{
    static const uint32_t dims[] = {640, 480, 800, 600, 1024, 768, 1920, 1080, 3840, 2160, 4096};
    return chance(40) ? dims[rndn(ARRAY_LEN(dims))] : mix_u32();
}

static uint32_t mix_bpp(void)
{
    static const uint32_t bpps[] = {8, 16, 24, 32};
    return chance(60) ? bpps[rndn(ARRAY_LEN(bpps))] : mix_u32();
}

static uint8_t unknown_op(void)
{
    static const uint8_t ext[] = {0x00, 0x01, 0x0f, 0x17, 0x18, 0x7f, 0x80, 0xfe, 0xff};
    if (chance(50))
        return ext[rndn(ARRAY_LEN(ext))];
    for (;;) {
        uint8_t v = (uint8_t)rnd32();
        if (v < XENDISPL_OP_DBUF_CREATE || v > XENDISPL_OP_GET_EDID)
            return v;
    }
}

static void fill_random(void *p, size_t n)
{
    uint8_t *b = p;
    int mode = (int)rndn(4);
    for (size_t i = 0; i < n; i++)
        b[i] = mode == 0 ? 0 : mode == 1 ? (chance(80) ? 0 : (uint8_t)rnd32()) : (uint8_t)rnd32();
}

#define N_PACKETS 300

static void gen_req(void)
{
    static const uint8_t ops[] = {
        XENDISPL_OP_DBUF_CREATE, XENDISPL_OP_DBUF_DESTROY, XENDISPL_OP_FB_ATTACH,
        XENDISPL_OP_FB_DETACH,   XENDISPL_OP_SET_CONFIG,   XENDISPL_OP_PG_FLIP,
        XENDISPL_OP_GET_EDID,
    };
    rng_seed("packets/req");
    FILE *f = open_out("packets/req.jsonl");
    for (int i = 0; i < N_PACKETS; i++) {
        struct xendispl_req r;
        uint8_t b[sizeof(r)], used[sizeof(r)];
        size_t pad_lo = 0, pad_hi = 0, base = offsetof(struct xendispl_req, op);
        memset(&r, 0, sizeof(r));
        r.id = mix_u16();
        r.operation = chance(10) ? unknown_op() : ops[i < 14 ? (uint32_t)i % 7 : rndn(ARRAY_LEN(ops))];
        switch (r.operation) {
        case XENDISPL_OP_DBUF_CREATE:
            r.op.dbuf_create.dbuf_cookie = mix_u64();
            r.op.dbuf_create.width = mix_dim();
            r.op.dbuf_create.height = mix_dim();
            r.op.dbuf_create.bpp = mix_bpp();
            r.op.dbuf_create.buffer_sz = mix_u32();
            r.op.dbuf_create.flags = chance(60) ? (chance(50) ? XENDISPL_DBUF_FLG_REQ_ALLOC : 0) : mix_u32();
            r.op.dbuf_create.gref_directory = mix_u32();
            r.op.dbuf_create.data_ofs = chance(50) ? 0 : mix_u32();
            pad_lo = base + offsetof(struct xendispl_dbuf_create_req, data_ofs) + sizeof(uint32_t);
            pad_hi = base + sizeof(struct xendispl_dbuf_create_req);
            break;
        case XENDISPL_OP_DBUF_DESTROY:
            r.op.dbuf_destroy.dbuf_cookie = mix_u64();
            break;
        case XENDISPL_OP_FB_ATTACH:
            r.op.fb_attach.dbuf_cookie = mix_u64();
            r.op.fb_attach.fb_cookie = mix_u64();
            r.op.fb_attach.width = mix_dim();
            r.op.fb_attach.height = mix_dim();
            r.op.fb_attach.pixel_format = chance(60) ? fourccs[rndn(ARRAY_LEN(fourccs))] : mix_u32();
            pad_lo = base + offsetof(struct xendispl_fb_attach_req, pixel_format) + sizeof(uint32_t);
            pad_hi = base + sizeof(struct xendispl_fb_attach_req);
            break;
        case XENDISPL_OP_FB_DETACH:
            r.op.fb_detach.fb_cookie = mix_u64();
            break;
        case XENDISPL_OP_SET_CONFIG:
            r.op.set_config.fb_cookie = chance(15) ? 0 : mix_u64();
            r.op.set_config.x = mix_u32();
            r.op.set_config.y = mix_u32();
            r.op.set_config.width = mix_dim();
            r.op.set_config.height = mix_dim();
            r.op.set_config.bpp = mix_bpp();
            pad_lo = base + offsetof(struct xendispl_set_config_req, bpp) + sizeof(uint32_t);
            pad_hi = base + sizeof(struct xendispl_set_config_req);
            break;
        case XENDISPL_OP_PG_FLIP:
            r.op.pg_flip.fb_cookie = mix_u64();
            break;
        case XENDISPL_OP_GET_EDID:
            r.op.get_edid.buffer_sz = chance(50) ? XENDISPL_EDID_MAX_SIZE : mix_u32();
            r.op.get_edid.gref_directory = mix_u32();
            break;
        default:
            fill_random(r.op.reserved, sizeof(r.op.reserved));
            break;
        }
        memcpy(b, &r, sizeof(r));
        maybe_dirty_reserved(b, sizeof(b), decode_req, pad_lo, pad_hi);
        write_packet_line(f, b, sizeof(b), decode_req(b, used));
    }
    close_out(f, "packets/req.jsonl");
}

static void gen_resp(void)
{
    static const uint8_t ops[] = {
        XENDISPL_OP_DBUF_CREATE, XENDISPL_OP_DBUF_DESTROY, XENDISPL_OP_FB_ATTACH,
        XENDISPL_OP_FB_DETACH,   XENDISPL_OP_SET_CONFIG,   XENDISPL_OP_PG_FLIP,
        XENDISPL_OP_GET_EDID,    XENDISPL_OP_GET_EDID,     XENDISPL_OP_GET_EDID,
    };
    rng_seed("packets/resp");
    FILE *f = open_out("packets/resp.jsonl");
    for (int i = 0; i < N_PACKETS; i++) {
        struct xendispl_resp r;
        uint8_t b[sizeof(r)], used[sizeof(r)];
        memset(&r, 0, sizeof(r));
        r.id = mix_u16();
        r.operation = chance(10) ? unknown_op() : ops[rndn(ARRAY_LEN(ops))];
        r.status = mix_status();
        if (r.operation == XENDISPL_OP_GET_EDID)
            r.op.get_edid.edid_sz = chance(40) ? XENDISPL_EDID_BLOCK_SIZE * (1 + rndn(4)) : mix_u32();
        memcpy(b, &r, sizeof(r));
        maybe_dirty_reserved(b, sizeof(b), decode_resp, 0, 0);
        write_packet_line(f, b, sizeof(b), decode_resp(b, used));
    }
    close_out(f, "packets/resp.jsonl");
}

static void gen_evt(void)
{
    rng_seed("packets/evt");
    FILE *f = open_out("packets/evt.jsonl");
    for (int i = 0; i < N_PACKETS; i++) {
        struct xendispl_evt e;
        uint8_t b[sizeof(e)], used[sizeof(e)];
        memset(&e, 0, sizeof(e));
        e.id = mix_u16();
        if (chance(10)) {
            static const uint8_t ext[] = {1, 2, 0x10, 0x15, 0x7f, 0x80, 0xff};
            e.type = chance(50) ? ext[rndn(ARRAY_LEN(ext))] : (uint8_t)(1 + rndn(255));
            fill_random(e.op.reserved, sizeof(e.op.reserved));
        } else {
            e.type = XENDISPL_EVT_PG_FLIP;
            e.op.pg_flip.fb_cookie = mix_u64();
        }
        memcpy(b, &e, sizeof(e));
        maybe_dirty_reserved(b, sizeof(b), decode_evt, 0, 0);
        write_packet_line(f, b, sizeof(b), decode_evt(b, used));
    }
    close_out(f, "packets/evt.jsonl");
}

static void gen_evtpage(void)
{
    rng_seed("packets/evtpage");
    FILE *f = open_out("packets/evtpage.jsonl");
    for (int i = 0; i < N_PACKETS; i++) {
        struct xendispl_event_page p;
        uint8_t b[sizeof(p)], used[sizeof(p)];
        memset(&p, 0, sizeof(p));
        p.in_cons = mix_u32();
        /* mostly a plausible distance (0..63, wrapping), sometimes anything */
        p.in_prod = chance(70) ? p.in_cons + rndn((uint32_t)XENDISPL_IN_RING_LEN + 1) : mix_u32();
        memcpy(b, &p, sizeof(p));
        maybe_dirty_reserved(b, sizeof(b), decode_evtpage, 0, 0);
        write_packet_line(f, b, sizeof(b), decode_evtpage(b, used));
    }
    close_out(f, "packets/evtpage.jsonl");
}

static void gen_sring(void)
{
    static union {
        struct xen_displif_sring s;
        uint8_t bytes[PAGE_SZ];
    } page;
    rng_seed("packets/sring");
    FILE *f = open_out("packets/sring.jsonl");
    for (int i = 0; i < N_PACKETS; i++) {
        uint8_t b[SRING_HDR], used[SRING_HDR];
        memset(&page, 0, sizeof(page));
        if (i == 0) {
            SHARED_RING_INIT(&page.s);
        } else {
            page.s.req_prod = mix_u32();
            page.s.req_event = chance(50) ? page.s.req_prod + 1 : mix_u32();
            page.s.rsp_prod = chance(60) ? page.s.req_prod - rndn(33) : mix_u32();
            page.s.rsp_event = chance(50) ? page.s.rsp_prod + 1 : mix_u32();
        }
        memcpy(b, page.bytes, SRING_HDR);
        maybe_dirty_reserved(b, sizeof(b), decode_sring, 0, 0);
        write_packet_line(f, b, sizeof(b), decode_sring(b, used));
    }
    close_out(f, "packets/sring.jsonl");
}

static void gen_gntentry(void)
{
    static const uint16_t flagset[] = {
        GTF_invalid,
        GTF_permit_access,
        GTF_permit_access | GTF_readonly,
        GTF_permit_access | GTF_reading,
        GTF_permit_access | GTF_reading | GTF_writing,
        GTF_permit_access | GTF_readonly | GTF_reading,
        GTF_accept_transfer,
        GTF_accept_transfer | GTF_transfer_committed,
        GTF_accept_transfer | GTF_transfer_committed | GTF_transfer_completed,
        GTF_transitive,
        GTF_permit_access | GTF_sub_page,
        GTF_permit_access | GTF_PWT | GTF_PCD | GTF_PAT,
        0xffff,
    };
    static const uint16_t domids[] = {0, 1, 2, DOMID_FIRST_RESERVED, DOMID_SELF, 0x7fff, 0xffff};
    rng_seed("packets/gntentry");
    FILE *f = open_out("packets/gntentry.jsonl");
    for (int i = 0; i < N_PACKETS; i++) {
        struct grant_entry_v1 g;
        uint8_t b[sizeof(g)], used[sizeof(g)];
        memset(&g, 0, sizeof(g));
        g.flags = chance(70) ? flagset[rndn(ARRAY_LEN(flagset))] : mix_u16();
        g.domid = chance(60) ? domids[rndn(ARRAY_LEN(domids))] : mix_u16();
        g.frame = mix_u32();
        memcpy(b, &g, sizeof(g));
        write_packet_line(f, b, sizeof(b), decode_gntentry(b, used));
    }
    close_out(f, "packets/gntentry.jsonl");
}

/* one payload string (no NUL inside) of the given class */
static size_t xs_string(uint8_t *p, size_t len, int cls)
{
    for (size_t i = 0; i < len; i++) {
        switch (cls) {
        case 0: /* printable ASCII, including '"' and '\\' */
            p[i] = (uint8_t)(0x20 + rndn(0x5f));
            break;
        case 1: /* path-like */
            p[i] = (uint8_t)"/local/domain/0123456789abcdef-_@"[rndn(33)];
            break;
        case 2: /* bytes 0x80..0xff */
            p[i] = (uint8_t)(0x80 + rndn(0x80));
            break;
        case 3: /* control bytes */
            p[i] = chance(10) ? 0x7f : (uint8_t)(1 + rndn(0x1f));
            break;
        default: /* any non-NUL byte */
            p[i] = rnd_nonzero_byte();
            break;
        }
    }
    return len;
}

static void gen_xsmsg(void)
{
    static const uint32_t types[] = {
        XS_CONTROL,      XS_DIRECTORY,           XS_READ,           XS_GET_PERMS,
        XS_WATCH,        XS_UNWATCH,             XS_TRANSACTION_START, XS_TRANSACTION_END,
        XS_INTRODUCE,    XS_RELEASE,             XS_GET_DOMAIN_PATH,   XS_WRITE,
        XS_MKDIR,        XS_RM,                  XS_SET_PERMS,         XS_WATCH_EVENT,
        XS_ERROR,        XS_IS_DOMAIN_INTRODUCED, XS_RESUME,           XS_SET_TARGET,
        XS_RESET_WATCHES, XS_DIRECTORY_PART,     XS_TYPE_COUNT,        XS_INVALID,
    };
    static uint8_t buf[sizeof(struct xsd_sockmsg) + XENSTORE_PAYLOAD_MAX];
    rng_seed("packets/xsmsg");
    FILE *f = open_out("packets/xsmsg.jsonl");
    for (int i = 0; i < N_PACKETS; i++) {
        struct xsd_sockmsg m;
        uint8_t *pl = buf + sizeof(m);
        size_t len = 0;
        int trailing_nul = chance(60);
        memset(&m, 0, sizeof(m));
        m.type = chance(85) ? types[rndn(ARRAY_LEN(types))] : mix_u32();
        m.req_id = mix_u32();
        m.tx_id = chance(50) ? 0 : mix_u32();
        if (i == 0) {
            len = 0; /* empty payload */
        } else if (i == 1) {
            pl[len++] = 0; /* just a NUL */
        } else if (i == 2 || i == 3 || i == 4 || chance(2)) {
            /* payload of exactly XENSTORE_PAYLOAD_MAX bytes (or just below) */
            size_t total = i == 4 ? XENSTORE_PAYLOAD_MAX - 1 - rndn(16) : XENSTORE_PAYLOAD_MAX;
            int nstr = 1 + (int)rndn(4), tn = i == 3 ? 0 : i == 2 ? 1 : chance(50);
            size_t room = total - (size_t)(nstr - 1) - (size_t)tn;
            for (int s = 0; s < nstr; s++) {
                size_t l = s == nstr - 1 ? room : rndn((uint32_t)room + 1);
                if (s)
                    pl[len++] = 0;
                len += xs_string(pl + len, l, (int)rndn(5));
                room -= l;
            }
            if (tn)
                pl[len++] = 0;
        } else {
            int nstr = (int)rndn(5);
            for (int s = 0; s < nstr; s++) {
                size_t l = chance(15) ? 0 : chance(10) ? rndn(600) : rndn(40);
                if (s)
                    pl[len++] = 0;
                len += xs_string(pl + len, l, (int)rndn(5));
            }
            if (trailing_nul)
                pl[len++] = 0;
        }
        if (len > XENSTORE_PAYLOAD_MAX)
            die("xsmsg payload too long");
        m.len = (uint32_t)len;
        memcpy(buf, &m, sizeof(m));
        write_packet_line(f, buf, sizeof(m) + len, decode_xsmsg(buf, sizeof(m) + len));
    }
    close_out(f, "packets/xsmsg.jsonl");
}

static void gen_pgdir(void)
{
    static union {
        struct xendispl_page_directory d;
        uint8_t bytes[PAGE_SZ];
    } page;
    size_t count = (PAGE_SZ - offsetof(struct xendispl_page_directory, gref)) / sizeof(grant_ref_t);
    rng_seed("packets/pgdir");
    FILE *f = open_out("packets/pgdir.jsonl");
    for (int i = 0; i < 200; i++) {
        grant_ref_t *gref;
        memset(&page, 0, sizeof(page));
        gref = page.d.gref;
        int kind = i < 4 ? i : (int)("\0\1\4\4\1\2"[rndn(6)]);
        page.d.gref_dir_next_page = chance(40) ? 0 : chance(70) ? GNTTAB_NR_RESERVED_ENTRIES + rndn(5000) : mix_u32();
        switch (kind) {
        case 0: /* a full page of consecutive grant references */
        case 1: { /* the last page of a buffer: consecutive refs, then zeros */
            grant_ref_t base = GNTTAB_NR_RESERVED_ENTRIES + rndn(chance(20) ? 1000000 : 2000);
            size_t n = kind == 0 ? count : rndn((uint32_t)count + 1);
            for (size_t k = 0; k < n; k++)
                gref[k] = base + (grant_ref_t)k;
            break;
        }
        case 2: /* extremes and random values */
            for (size_t k = 0; k < count; k++)
                gref[k] = mix_u32();
            break;
        case 3: /* all 0xff */
            memset(gref, 0xff, count * sizeof(grant_ref_t));
            break;
        default: { /* scattered small refs */
            size_t n = rndn((uint32_t)count + 1);
            for (size_t k = 0; k < n; k++)
                gref[k] = GNTTAB_NR_RESERVED_ENTRIES + rndn(1u << 16);
            break;
        }
        }
        write_packet_line(f, page.bytes, PAGE_SZ, decode_pgdir(page.bytes));
    }
    close_out(f, "packets/pgdir.jsonl");
}

/* ------------------------------------------------------------------------------------------ */
/* Page diffs                                                                                  */

static J *page_diff(uint8_t *prev, const uint8_t *cur, size_t n)
{
    J *a = jarr();
    size_t i = 0;
    while (i < n) {
        if (prev[i] == cur[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && prev[j] != cur[j])
            j++;
        jpush(a, jpush(jpush(jarr(), jint((int64_t)i)), jhex(cur + i, j - i)));
        i = j;
    }
    memcpy(prev, cur, n);
    return a;
}

static J *args0(void) { return jobj(); }

static J *args_u32(const char *k, uint32_t v) { return jset(jobj(), k, jint(v)); }

/* ------------------------------------------------------------------------------------------ */
/* ring-traces.json                                                                            */

static union {
    struct xen_displif_sring s;
    uint8_t bytes[PAGE_SZ];
} rpage __attribute__((aligned(PAGE_SZ)));

struct ring_trace {
    struct xen_displif_front_ring front;
    struct xen_displif_back_ring back;
    struct xen_displif_sring *s;
    uint8_t prev[PAGE_SZ];
    J *steps;
    uint16_t next_id;
    /* requests the back end has taken and not answered yet */
    uint16_t pending[64];
    unsigned npending;
    unsigned notify_true, notify_false, work_zero, work_nonzero;
};

static void rt_begin(struct ring_trace *t, uint16_t first_id)
{
    memset(t, 0, sizeof(*t));
    memset(&rpage, 0, sizeof(rpage));
    t->s = &rpage.s;
    t->steps = jarr();
    t->next_id = first_id;
}

static void rt_step(struct ring_trace *t, const char *op, J *args, J *result)
{
    J *st = jobj();
    jset(st, "op", jstr(op));
    jset(st, "args", args);
    jset(st, "result", result);
    J *fr = jobj();
    jset(fr, "req_prod_pvt", jint(t->front.req_prod_pvt));
    jset(fr, "rsp_cons", jint(t->front.rsp_cons));
    jset(fr, "nr_ents", jint(t->front.nr_ents));
    jset(st, "front", fr);
    J *bk = jobj();
    jset(bk, "rsp_prod_pvt", jint(t->back.rsp_prod_pvt));
    jset(bk, "req_cons", jint(t->back.req_cons));
    jset(bk, "nr_ents", jint(t->back.nr_ents));
    jset(st, "back", bk);
    J *sh = jobj();
    jset(sh, "req_prod", jint(t->s->req_prod));
    jset(sh, "req_event", jint(t->s->req_event));
    jset(sh, "rsp_prod", jint(t->s->rsp_prod));
    jset(sh, "rsp_event", jint(t->s->rsp_event));
    jset(st, "shared", sh);
    jset(st, "page", page_diff(t->prev, rpage.bytes, PAGE_SZ));
    jpush(t->steps, st);
}

static void rt_front_init(struct ring_trace *t)
{
    XEN_FRONT_RING_INIT(&t->front, t->s, PAGE_SZ);
    rt_step(t, "front_init", args0(), jobj());
}

static void rt_back_init(struct ring_trace *t)
{
    BACK_RING_INIT(&t->back, t->s, PAGE_SZ);
    rt_step(t, "back_init", args0(), jobj());
}

static void rt_front_attach(struct ring_trace *t, RING_IDX start)
{
    FRONT_RING_ATTACH(&t->front, t->s, start, PAGE_SZ);
    rt_step(t, "front_attach", args_u32("start", start), jobj());
}

static void rt_back_attach(struct ring_trace *t, RING_IDX start)
{
    BACK_RING_ATTACH(&t->back, t->s, start, PAGE_SZ);
    rt_step(t, "back_attach", args_u32("start", start), jobj());
}

static void rt_set_shared(struct ring_trace *t, const char *field, RING_IDX value)
{
    if (!strcmp(field, "req_prod"))
        t->s->req_prod = value;
    else if (!strcmp(field, "req_event"))
        t->s->req_event = value;
    else if (!strcmp(field, "rsp_prod"))
        t->s->rsp_prod = value;
    else if (!strcmp(field, "rsp_event"))
        t->s->rsp_event = value;
    else
        die("bad shared field %s", field);
    J *a = jobj();
    jset(a, "field", jstr(field));
    jset(a, "value", jint(value));
    rt_step(t, "set_shared", a, jobj());
}

static void rt_front_put_request(struct ring_trace *t)
{
    struct xendispl_req req;
    uint16_t id = t->next_id++;
    uint64_t cookie = mix_u64();
    memset(&req, 0, sizeof(req));
    req.id = id;
    req.operation = XENDISPL_OP_PG_FLIP;
    req.op.pg_flip.fb_cookie = cookie;
    *RING_GET_REQUEST(&t->front, t->front.req_prod_pvt) = req;
    t->front.req_prod_pvt++;
    J *a = jobj();
    jset(a, "id", jint(id));
    jset(a, "fb_cookie", ju64(cookie));
    rt_step(t, "front_put_request", a, jobj());
}

static void rt_front_push(struct ring_trace *t)
{
    RING_PUSH_REQUESTS(&t->front);
    rt_step(t, "front_push", args0(), jobj());
}

static void rt_front_push_check(struct ring_trace *t)
{
    int notify;
    RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&t->front, notify);
    if (notify)
        t->notify_true++;
    else
        t->notify_false++;
    rt_step(t, "front_push_check", args0(), jset(jobj(), "notify", jbool(notify)));
}

static void rt_front_take_response(struct ring_trace *t)
{
    struct xendispl_resp rsp;
    RING_COPY_RESPONSE(&t->front, t->front.rsp_cons, &rsp);
    t->front.rsp_cons++;
    J *r = jobj();
    jset(r, "id", jint(rsp.id));
    jset(r, "status", jint(rsp.status));
    rt_step(t, "front_take_response", args0(), r);
}

static RING_IDX rt_front_final_check(struct ring_trace *t)
{
    RING_IDX work;
    RING_FINAL_CHECK_FOR_RESPONSES(&t->front, work);
    if (work)
        t->work_nonzero++;
    else
        t->work_zero++;
    rt_step(t, "front_final_check", args0(), jset(jobj(), "work", jint(work)));
    return work;
}

static void rt_front_query(struct ring_trace *t)
{
    J *r = jobj();
    jset(r, "free_requests", jint((RING_IDX)RING_FREE_REQUESTS(&t->front)));
    jset(r, "full", jbool(RING_FULL(&t->front)));
    jset(r, "unconsumed_responses", jint((RING_IDX)RING_HAS_UNCONSUMED_RESPONSES(&t->front)));
    jset(r, "response_prod_overflow", jbool(RING_RESPONSE_PROD_OVERFLOW(&t->front, t->s->rsp_prod)));
    rt_step(t, "front_query", args0(), r);
}

static void rt_back_take_request(struct ring_trace *t)
{
    J *r = jobj();
    if (RING_REQUEST_CONS_OVERFLOW(&t->back, t->back.req_cons)) {
        jset(r, "cons_overflow", jbool(1));
    } else {
        struct xendispl_req req;
        RING_COPY_REQUEST(&t->back, t->back.req_cons, &req);
        t->back.req_cons++;
        jset(r, "cons_overflow", jbool(0));
        jset(r, "id", jint(req.id));
        jset(r, "operation", jint(req.operation));
        if (t->npending < ARRAY_LEN(t->pending))
            t->pending[t->npending++] = req.id;
    }
    rt_step(t, "back_take_request", args0(), r);
}

static void rt_back_put_response(struct ring_trace *t, uint16_t id, int32_t status)
{
    struct xendispl_resp rsp;
    memset(&rsp, 0, sizeof(rsp));
    rsp.id = id;
    rsp.operation = XENDISPL_OP_PG_FLIP;
    rsp.status = status;
    *RING_GET_RESPONSE(&t->back, t->back.rsp_prod_pvt) = rsp;
    t->back.rsp_prod_pvt++;
    J *a = jobj();
    jset(a, "id", jint(id));
    jset(a, "status", jint(status));
    rt_step(t, "back_put_response", a, jobj());
}

/* answer one of the pending requests (mostly the oldest) */
static void rt_back_answer(struct ring_trace *t)
{
    unsigned k = chance(75) ? 0 : rndn(t->npending);
    uint16_t id = t->pending[k];
    memmove(&t->pending[k], &t->pending[k + 1], (t->npending - k - 1) * sizeof(t->pending[0]));
    t->npending--;
    rt_back_put_response(t, id, mix_status());
}

static void rt_back_push(struct ring_trace *t)
{
    RING_PUSH_RESPONSES(&t->back);
    rt_step(t, "back_push", args0(), jobj());
}

static void rt_back_push_check(struct ring_trace *t)
{
    int notify;
    RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&t->back, notify);
    if (notify)
        t->notify_true++;
    else
        t->notify_false++;
    rt_step(t, "back_push_check", args0(), jset(jobj(), "notify", jbool(notify)));
}

static RING_IDX rt_back_final_check(struct ring_trace *t)
{
    RING_IDX work;
    RING_FINAL_CHECK_FOR_REQUESTS(&t->back, work);
    if (work)
        t->work_nonzero++;
    else
        t->work_zero++;
    rt_step(t, "back_final_check", args0(), jset(jobj(), "work", jint(work)));
    return work;
}

static void rt_back_query(struct ring_trace *t)
{
    J *r = jobj();
    jset(r, "unconsumed_requests", jint((RING_IDX)RING_HAS_UNCONSUMED_REQUESTS(&t->back)));
    jset(r, "request_prod_overflow", jbool(RING_REQUEST_PROD_OVERFLOW(&t->back, t->s->req_prod)));
    jset(r, "request_cons_overflow", jbool(RING_REQUEST_CONS_OVERFLOW(&t->back, t->back.req_cons)));
    rt_step(t, "back_query", args0(), r);
}

enum walk_mode { WALK_BALANCED, WALK_FRONT_BURST, WALK_BACK_BURST, WALK_LAZY, N_WALK_MODES };

/* One protocol-respecting random step. */
static void rt_random_step(struct ring_trace *t, enum walk_mode mode)
{
    enum {
        PUT, FPUSH, FPUSHC, FTAKE, FFINAL, FQUERY, BTAKE, BPUT, BPUSH, BPUSHC, BFINAL, BQUERY, NOPS
    };
    unsigned w[NOPS] = {0};
    int can_put = RING_FREE_REQUESTS(&t->front) > 0;
    int req_unpushed = t->front.req_prod_pvt != t->s->req_prod;
    int can_ftake = XEN_RING_NR_UNCONSUMED_RESPONSES(&t->front) > 0;
    int can_btake = XEN_RING_NR_UNCONSUMED_REQUESTS(&t->back) > 0;
    int can_bput = t->npending > 0;
    int rsp_unpushed = t->back.rsp_prod_pvt != t->s->rsp_prod;

    w[PUT] = can_put ? 30 : 0;
    w[FPUSH] = req_unpushed ? 4 : 1;
    w[FPUSHC] = req_unpushed ? 16 : 2;
    w[FTAKE] = can_ftake ? 30 : 0;
    w[FFINAL] = can_ftake ? 6 : 24;
    w[FQUERY] = 3;
    w[BTAKE] = can_btake ? 30 : 0;
    w[BPUT] = can_bput ? 25 : 0;
    w[BPUSH] = rsp_unpushed ? 4 : 1;
    w[BPUSHC] = rsp_unpushed ? 16 : 2;
    w[BFINAL] = can_btake ? 6 : 24;
    w[BQUERY] = 3;
    switch (mode) {
    case WALK_FRONT_BURST: /* the back end is slow: the ring fills up */
        w[PUT] *= 4;
        w[BTAKE] /= 6;
        w[BPUT] /= 6;
        w[BPUSH] /= 4;
        w[BPUSHC] /= 4;
        break;
    case WALK_BACK_BURST: /* the front end is slow: responses pile up */
        w[PUT] /= 3;
        w[FTAKE] /= 6;
        w[BTAKE] *= 2;
        w[BPUT] *= 2;
        break;
    case WALK_LAZY: /* few pushes, many final checks */
        w[FPUSH] /= 2;
        w[BPUSH] /= 2;
        w[FFINAL] *= 3;
        w[BFINAL] *= 3;
        break;
    default:
        break;
    }
    unsigned total = 0;
    for (int i = 0; i < NOPS; i++)
        total += w[i];
    unsigned x = rndn(total);
    int op = 0;
    while (x >= w[op])
        x -= w[op++];
    switch (op) {
    case PUT:
        rt_front_put_request(t);
        break;
    case FPUSH:
        rt_front_push(t);
        break;
    case FPUSHC:
        rt_front_push_check(t);
        break;
    case FTAKE:
        rt_front_take_response(t);
        break;
    case FFINAL:
        rt_front_final_check(t);
        break;
    case FQUERY:
        rt_front_query(t);
        break;
    case BTAKE:
        rt_back_take_request(t);
        break;
    case BPUT:
        rt_back_answer(t);
        break;
    case BPUSH:
        rt_back_push(t);
        break;
    case BPUSHC:
        rt_back_push_check(t);
        break;
    case BFINAL:
        rt_back_final_check(t);
        break;
    case BQUERY:
    default:
        rt_back_query(t);
        break;
    }
}

/*
 * One request/response round the way drivers do it: the front end queues a few requests and
 * pushes; the back end takes everything, re-arms with a final check, answers and pushes; the
 * front end takes everything and re-arms. Returns the number of steps.
 */
static unsigned rt_round(struct ring_trace *t)
{
    size_t before = t->steps->n;
    unsigned k = 1 + rndn(4);
    for (unsigned i = 0; i < k && RING_FREE_REQUESTS(&t->front) > 0; i++)
        rt_front_put_request(t);
    rt_front_push_check(t);
    for (;;) {
        while (XEN_RING_NR_UNCONSUMED_REQUESTS(&t->back) > 0)
            rt_back_take_request(t);
        if (chance(40) && RING_FREE_REQUESTS(&t->front) > 0) {
            /* the race the final check is for: a request arrives after the last take */
            rt_front_put_request(t);
            rt_front_push_check(t);
        }
        if (!rt_back_final_check(t))
            break;
    }
    while (t->npending > 0 && chance(85))
        rt_back_answer(t);
    rt_back_push_check(t);
    for (;;) {
        while (XEN_RING_NR_UNCONSUMED_RESPONSES(&t->front) > 0)
            rt_front_take_response(t);
        if (chance(40) && t->npending > 0) {
            /* a response arrives after the last take */
            rt_back_answer(t);
            rt_back_push_check(t);
        }
        if (!rt_front_final_check(t))
            break;
    }
    return (unsigned)(t->steps->n - before);
}

static void rt_walk(struct ring_trace *t, unsigned nsteps)
{
    unsigned i = 0;
    while (i < nsteps) {
        unsigned seg = 30 + rndn(20);
        if (chance(50)) {
            for (unsigned j = 0; j < seg && i < nsteps;)
            {
                unsigned n = rt_round(t);
                j += n;
                i += n;
            }
        } else {
            enum walk_mode mode = (enum walk_mode)rndn(N_WALK_MODES);
            for (unsigned j = 0; j < seg && i < nsteps; j++, i++)
                rt_random_step(t, mode);
        }
    }
}

static void rt_start_at(struct ring_trace *t, RING_IDX start)
{
    rt_front_init(t);
    rt_set_shared(t, "req_prod", start);
    rt_set_shared(t, "req_event", start + 1);
    rt_set_shared(t, "rsp_prod", start);
    rt_set_shared(t, "rsp_event", start + 1);
    rt_front_attach(t, start);
    rt_back_attach(t, start);
}

static J *rt_end(struct ring_trace *t, const char *name)
{
    J *sc = jobj();
    jset(sc, "name", jstr(name));
    jset(sc, "steps", t->steps);
    t->steps = NULL;
    if (getenv("GEN_ABI_STATS"))
        fprintf(stderr, "ring %-18s steps %4zu notify %3u/%3u work %3u/%3u (true|nonzero / false|zero)\n",
            name, jget(sc, "steps")->n, t->notify_true, t->notify_false, t->work_nonzero,
            t->work_zero);
    return sc;
}

static J *rt_scenario_start(const char *name, RING_IDX start, unsigned nsteps, uint16_t first_id)
{
    static struct ring_trace t;
    rng_seed(name);
    rt_begin(&t, first_id);
    if (start == 0) {
        rt_front_init(&t);
        rt_back_init(&t);
    } else {
        rt_start_at(&t, start);
    }
    rt_walk(&t, nsteps);
    /* drain: everything answered, consumed, and both ends idle with events armed */
    for (int guard = 0; guard < 400; guard++) {
        if (XEN_RING_NR_UNCONSUMED_REQUESTS(&t.back) > 0)
            rt_back_take_request(&t);
        else if (t.npending)
            rt_back_answer(&t);
        else if (t.back.rsp_prod_pvt != t.s->rsp_prod)
            rt_back_push_check(&t);
        else if (XEN_RING_NR_UNCONSUMED_RESPONSES(&t.front) > 0)
            rt_front_take_response(&t);
        else if (t.front.req_prod_pvt != t.s->req_prod)
            rt_front_push_check(&t);
        else
            break;
    }
    rt_front_final_check(&t);
    rt_back_final_check(&t);
    rt_front_query(&t);
    rt_back_query(&t);
    return rt_end(&t, name);
}

static J *rt_scenario_misbehaving(void)
{
    static struct ring_trace t;
    RING_IDX start = 0xfffffff0u;
    rng_seed("misbehaving-peer");
    rt_begin(&t, 0x100);
    rt_start_at(&t, start);
    rt_walk(&t, 40);

    /* a front end publishing a producer index far beyond the ring */
    rt_back_query(&t);
    rt_set_shared(&t, "req_prod", t.back.req_cons + 1000);
    rt_back_query(&t);
    rt_back_final_check(&t);
    /* the back end keeps taking without answering until the consumer guard trips */
    for (int i = 0; i < 40; i++) {
        int overflow = RING_REQUEST_CONS_OVERFLOW(&t.back, t.back.req_cons);
        rt_back_take_request(&t);
        if (overflow)
            break;
    }
    rt_back_query(&t);
    rt_back_final_check(&t);
    rt_back_take_request(&t);
    /* answering one frees one slot for the consumer */
    rt_back_answer(&t);
    rt_back_query(&t);
    rt_back_take_request(&t);
    rt_back_take_request(&t);
    rt_back_push_check(&t);
    /* a producer index behind the consumer */
    rt_set_shared(&t, "req_prod", t.back.req_cons - 3);
    rt_back_query(&t);
    rt_back_final_check(&t);
    /* a producer index exactly at the limit and one past it */
    rt_set_shared(&t, "req_prod", t.back.rsp_prod_pvt + t.back.nr_ents);
    rt_back_query(&t);
    rt_set_shared(&t, "req_prod", t.back.rsp_prod_pvt + t.back.nr_ents + 1);
    rt_back_query(&t);

    /* a back end publishing responses beyond what was requested */
    rt_front_query(&t);
    rt_set_shared(&t, "rsp_prod", t.front.req_prod_pvt + 2);
    rt_front_query(&t);
    rt_front_final_check(&t);
    rt_set_shared(&t, "rsp_prod", t.front.rsp_cons + t.front.nr_ents);
    rt_front_query(&t);
    rt_set_shared(&t, "rsp_prod", t.front.rsp_cons + t.front.nr_ents + 1);
    rt_front_query(&t);
    rt_set_shared(&t, "rsp_prod", t.front.rsp_cons + 5000);
    rt_front_query(&t);
    rt_front_final_check(&t);
    rt_front_take_response(&t);
    rt_front_take_response(&t);
    rt_front_query(&t);
    /* a response producer behind the consumer */
    rt_set_shared(&t, "rsp_prod", t.front.rsp_cons - 1);
    rt_front_query(&t);
    rt_front_final_check(&t);

    /* reconnect on the same page, then event indices set by the peer */
    rt_front_init(&t);
    rt_back_init(&t);
    t.npending = 0;
    rt_set_shared(&t, "req_event", t.front.req_prod_pvt + 100); /* far ahead */
    rt_front_put_request(&t);
    rt_front_push_check(&t);
    rt_set_shared(&t, "req_event", t.front.req_prod_pvt + 1); /* exactly the next one */
    rt_front_put_request(&t);
    rt_front_push_check(&t);
    rt_set_shared(&t, "req_event", t.front.req_prod_pvt + 2); /* inside the next batch */
    rt_front_put_request(&t);
    rt_front_put_request(&t);
    rt_front_put_request(&t);
    rt_front_push_check(&t);
    rt_set_shared(&t, "req_event", t.front.req_prod_pvt - 10); /* behind */
    rt_front_put_request(&t);
    rt_front_push_check(&t);
    rt_front_push_check(&t); /* nothing new */
    while (XEN_RING_NR_UNCONSUMED_REQUESTS(&t.back) > 0)
        rt_back_take_request(&t);
    rt_set_shared(&t, "rsp_event", t.back.rsp_prod_pvt + 1); /* exactly the next one */
    rt_back_answer(&t);
    rt_back_push_check(&t);
    rt_set_shared(&t, "rsp_event", t.back.rsp_prod_pvt + 0x80000000u); /* half the space away */
    rt_back_answer(&t);
    rt_back_answer(&t);
    rt_back_push_check(&t);
    rt_set_shared(&t, "rsp_event", t.back.rsp_prod_pvt + 1);
    rt_back_answer(&t);
    rt_back_push(&t); /* a plain push passes the event index: the next check does not notify */
    rt_back_answer(&t);
    rt_back_push_check(&t);
    rt_back_query(&t);
    rt_front_query(&t);
    rt_front_final_check(&t);
    return rt_end(&t, "misbehaving-peer");
}

static void gen_ring_traces(void)
{
    rng_seed("ring-traces");
    J *root = jobj();
    jset(root, "entry_size", jint((int64_t)sizeof(union xen_displif_sring_entry)));
    jset(root, "page_size", jint(PAGE_SZ));
    jset(root, "ring_size", jint((int64_t)__RING_SIZE(&rpage.s, PAGE_SZ)));
    J *sc = jarr();
    jpush(sc, rt_scenario_start("start-0", 0, 400, 1));
    jpush(sc, rt_scenario_start("start-2^31-16", 0x80000000u - 16, 300, 0x7ff0));
    jpush(sc, rt_scenario_start("start-2^32-20", 0xffffffffu - 19, 300, 0xffe0));
    jpush(sc, rt_scenario_start("start-0xffffffff", 0xffffffffu, 200, 0xffff));
    jpush(sc, rt_scenario_misbehaving());
    jset(root, "scenarios", sc);
    write_json_file("ring-traces.json", root);
}

/* ------------------------------------------------------------------------------------------ */
/* evtpage-traces.json                                                                         */

static union {
    struct xendispl_event_page hdr;
    uint8_t bytes[XENDISPL_EVENT_PAGE_SIZE];
} epage __attribute__((aligned(PAGE_SZ)));

struct evt_trace {
    uint8_t prev[XENDISPL_EVENT_PAGE_SIZE];
    J *steps;
    uint16_t next_id;
    unsigned fills;
};

static void et_step(struct evt_trace *t, const char *op, J *args, J *result)
{
    J *st = jobj();
    jset(st, "op", jstr(op));
    jset(st, "args", args);
    jset(st, "result", result);
    J *s = jobj();
    jset(s, "in_cons", jint(epage.hdr.in_cons));
    jset(s, "in_prod", jint(epage.hdr.in_prod));
    jset(st, "state", s);
    jset(st, "page", page_diff(t->prev, epage.bytes, sizeof(epage.bytes)));
    jpush(t->steps, st);
}

static void et_init(struct evt_trace *t, uint32_t start)
{
    epage.hdr.in_cons = start;
    epage.hdr.in_prod = start;
    et_step(t, "init", args_u32("start", start), jobj());
}

/* back end: returns 1 if the page was full */
static int et_produce(struct evt_trace *t)
{
    struct xendispl_event_page *page = &epage.hdr;
    uint16_t id = t->next_id++;
    uint64_t cookie = mix_u64();
    J *r = jobj();
    uint32_t prod = page->in_prod, cons = page->in_cons;
    int full = (uint32_t)(prod - cons) >= XENDISPL_IN_RING_LEN;
    /*
     * vdispl's rule on top of libxenbe's: never write a slot that still holds an unconsumed
     * event. Only reachable across the u32 wrap, where 2^32 mod 63 = 4 makes indices fewer
     * than 63 apart share a slot through XENDISPL_IN_RING_REF.
     */
    for (uint32_t j = cons; !full && j != prod; j++)
        if (&XENDISPL_IN_RING_REF(page, j) == &XENDISPL_IN_RING_REF(page, prod))
            full = 1;
    jset(r, "full", jbool(full));
    if (!full) {
        struct xendispl_evt e;
        memset(&e, 0, sizeof(e));
        e.id = id;
        e.type = XENDISPL_EVT_PG_FLIP;
        e.op.pg_flip.fb_cookie = cookie;
        XENDISPL_IN_RING_REF(page, prod) = e;
        jset(r, "slot", jint((int64_t)(&XENDISPL_IN_RING_REF(page, prod) - XENDISPL_IN_RING(page))));
        xen_wmb();
        page->in_prod = prod + 1;
    }
    J *a = jobj();
    jset(a, "id", jint(id));
    jset(a, "fb_cookie", ju64(cookie));
    et_step(t, "produce", a, r);
    return full;
}

/* front end */
static void et_consume(struct evt_trace *t, uint32_t max)
{
    struct xendispl_event_page *page = &epage.hdr;
    uint32_t cons = page->in_cons, n = 0;
    J *ev = jarr();
    while (cons != page->in_prod && n < max) {
        struct xendispl_evt e = XENDISPL_IN_RING_REF(page, cons);
        J *x = jarr();
        jpush(x, jint(e.id));
        jpush(x, ju64(e.op.pg_flip.fb_cookie));
        jpush(ev, x);
        cons++;
        n++;
    }
    xen_mb();
    page->in_cons = cons;
    et_step(t, "consume", args_u32("max", max), jset(jobj(), "events", ev));
}

static uint32_t et_pending(void) { return epage.hdr.in_prod - epage.hdr.in_cons; }

static J *et_scenario(const char *name, uint32_t start, unsigned nsteps, unsigned min_fills)
{
    static struct evt_trace t;
    rng_seed(name);
    memset(&t, 0, sizeof(t));
    memset(&epage, 0, sizeof(epage));
    t.steps = jarr();
    t.next_id = (uint16_t)rnd32();
    et_init(&t, start);
    unsigned step = 1;
    while (step < nsteps || t.fills < min_fills) {
        int phase = (int)rndn(4);
        if (phase == 0 || (t.fills < min_fills && step > nsteps / 4 * (t.fills + 1))) {
            /* fill up to full, then bounce off the limit once or twice */
            while (!et_produce(&t))
                step++;
            step++;
            t.fills++;
            if (chance(50)) {
                et_produce(&t);
                step++;
            }
            et_consume(&t, 1 + rndn(3));
            step++;
            et_produce(&t);
            step++;
        } else if (phase == 1) {
            /* drain in chunks */
            while (et_pending()) {
                et_consume(&t, chance(20) ? 64 : 1 + rndn(20));
                step++;
            }
            et_consume(&t, 1 + rndn(8)); /* nothing left */
            step++;
        } else {
            unsigned k = 4 + rndn(12);
            for (unsigned i = 0; i < k; i++, step++) {
                if (chance(55))
                    et_produce(&t);
                else
                    et_consume(&t, chance(10) ? 0 : 1 + rndn(5));
            }
        }
    }
    J *sc = jobj();
    jset(sc, "name", jstr(name));
    jset(sc, "steps", t.steps);
    if (getenv("GEN_ABI_STATS"))
        fprintf(stderr, "evtpage %-18s steps %4zu fills %u\n", name, t.steps->n, t.fills);
    return sc;
}

static void gen_evtpage_traces(void)
{
    rng_seed("evtpage-traces");
    J *root = jobj();
    jset(root, "event_size", jint((int64_t)sizeof(struct xendispl_evt)));
    jset(root, "page_size", jint(XENDISPL_EVENT_PAGE_SIZE));
    jset(root, "in_ring_offs", jint((int64_t)XENDISPL_IN_RING_OFFS));
    jset(root, "in_ring_len", jint((int64_t)XENDISPL_IN_RING_LEN));
    J *sc = jarr();
    jpush(sc, et_scenario("start-0", 0, 250, 2));
    jpush(sc, et_scenario("start-0xffffffc0", 0xffffffc0u, 200, 2));
    jpush(sc, et_scenario("start-0xffffffff", 0xffffffffu, 150, 1));
    jset(root, "scenarios", sc);
    write_json_file("evtpage-traces.json", root);
}

/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: %s <outdir>", argv[0]);
    out_dir = argv[1];
    make_dir(out_dir);
    {
        size_t n = strlen(out_dir) + sizeof("/packets");
        char *p = xmalloc(n);
        snprintf(p, n, "%s/packets", out_dir);
        make_dir(p);
        free(p);
    }
    gen_layout();
    gen_req();
    gen_resp();
    gen_evt();
    gen_evtpage();
    gen_sring();
    gen_gntentry();
    gen_xsmsg();
    gen_pgdir();
    gen_ring_traces();
    gen_evtpage_traces();
    if (fflush(stdout))
        die("cannot write stdout");
    return 0;
}
