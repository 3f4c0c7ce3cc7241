/*
 * http_client.c: the least HTTP/1.1 client the api scenario needs: GET
 * requests over one keep-alive TCP connection to a loopback port, and
 * answers read back whole. It parses only the status line, the
 * Content-Length, Transfer-Encoding and Connection headers, and chunked
 * bodies; anything else in an answer is skipped. It is a measuring
 * instrument, not a general client: the server it talks to is evstore's
 * own, and a malformed answer fails the bench.
 */
#include "evbench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HEAD_MAX ((size_t)64 << 10)
#define IO_TIMEOUT_S 30

static int fail(bench_http *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(bench_http *h, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(h->err, sizeof(h->err), fmt, ap);
    va_end(ap);
    return -1;
}

static void drop_conn(bench_http *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->in_len = h->in_pos = 0;
}

static int reserve(char **p, size_t *cap, size_t need)
{
    size_t n = *cap ? *cap : 4096;
    char *q;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    if (!(q = realloc(*p, n)))
        return -ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static int conn_open(bench_http *h)
{
    struct sockaddr_in a;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    int one = 1;

    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0)
        return fail(h, "socket: %s", strerror(errno));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(h->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Small requests and answers: no Nagle delay, and a server that
     * stops answering fails the bench instead of hanging it. */
    if (setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(h->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(h->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        drop_conn(h);
        return fail(h, "connecting to 127.0.0.1:%u: %s", (unsigned)h->port,
                    strerror(e));
    }
    return 0;
}

int bench_http_connect(bench_http *h, uint16_t port)
{
    memset(h, 0, sizeof(*h));
    h->fd = -1;
    h->port = port;
    return conn_open(h);
}

/* Reads what the socket has into h->in. Returns the bytes read, 0 at
 * the end of the stream, or -1. */
static ssize_t fill(bench_http *h)
{
    ssize_t n;

    if (h->in_pos > 0) {
        /* Keep only the unread bytes. */
        memmove(h->in, h->in + h->in_pos, h->in_len - h->in_pos);
        h->in_len -= h->in_pos;
        h->in_pos = 0;
    }
    if (reserve(&h->in, &h->in_cap, h->in_len + 65536) != 0)
        return fail(h, "out of memory");
    do
        n = read(h->fd, h->in + h->in_len, h->in_cap - h->in_len);
    while (n < 0 && errno == EINTR);
    h->io_errno = n < 0 ? errno : 0;
    if (n < 0)
        return fail(h, "reading the answer: %s",
                    errno == EAGAIN ? "timed out" : strerror(errno));
    h->in_len += (size_t)n;
    return n;
}

/* Makes at least `n` unread bytes available. */
static int need(bench_http *h, size_t n)
{
    while (h->in_len - h->in_pos < n) {
        ssize_t got = fill(h);
        if (got < 0)
            return -1;
        if (got == 0)
            return fail(h, "the server closed the connection mid-answer");
    }
    return 0;
}

/* The unread bytes up to and including the next CRLF; *len without it. */
static int line(bench_http *h, const char **out, size_t *len, size_t max)
{
    for (;;) {
        const char *p = h->in + h->in_pos;
        size_t have = h->in_len - h->in_pos;
        const char *e = have ? memmem(p, have, "\r\n", 2) : NULL;

        if (e) {
            *out = p;
            *len = (size_t)(e - p);
            h->in_pos += *len + 2;
            return 0;
        }
        if (have > max)
            return fail(h, "a line of the answer is over %zu bytes", max);
        if (need(h, have + 1) != 0)
            return -1;
    }
}

static int body_add(bench_http *h, const char *p, size_t n)
{
    if (reserve(&h->body, &h->body_cap, h->body_len + n + 1) != 0)
        return fail(h, "out of memory");
    memcpy(h->body + h->body_len, p, n);
    h->body_len += n;
    h->body[h->body_len] = '\0';
    return 0;
}

/* Takes `n` body bytes from the stream. */
static int body_take(bench_http *h, size_t n)
{
    if (need(h, n) != 0 || body_add(h, h->in + h->in_pos, n) != 0)
        return -1;
    h->in_pos += n;
    return 0;
}

static int is_header(const char *l, size_t len, const char *name,
                     const char **val, size_t *vlen)
{
    size_t n = strlen(name);

    if (len <= n || l[n] != ':' || strncasecmp(l, name, n) != 0)
        return 0;
    l += n + 1;
    len -= n + 1;
    while (len && (*l == ' ' || *l == '\t'))
        l++, len--;
    while (len && (l[len - 1] == ' ' || l[len - 1] == '\t'))
        len--;
    *val = l;
    *vlen = len;
    return 1;
}

static int has_token(const char *v, size_t len, const char *tok)
{
    size_t n = strlen(tok);

    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(v + i, tok, n) == 0)
            return 1;
    return 0;
}

static int read_chunked(bench_http *h)
{
    for (;;) {
        const char *l;
        size_t len;
        unsigned long long size = 0;
        size_t i;

        if (line(h, &l, &len, 256) != 0)
            return -1;
        for (i = 0; i < len && l[i] != ';'; i++) {
            int d = l[i] >= '0' && l[i] <= '9'   ? l[i] - '0'
                    : l[i] >= 'a' && l[i] <= 'f' ? l[i] - 'a' + 10
                    : l[i] >= 'A' && l[i] <= 'F' ? l[i] - 'A' + 10
                                                 : -1;
            if (d < 0 || size > (SIZE_MAX >> 4))
                return fail(h, "a bad chunk size line: %.*s",
                            (int)(len < 40 ? len : 40), l);
            size = size * 16 + (unsigned)d;
        }
        if (i == 0)
            return fail(h, "an empty chunk size line");
        if (size == 0)
            break;
        if (body_take(h, (size_t)size) != 0 || need(h, 2) != 0)
            return -1;
        if (memcmp(h->in + h->in_pos, "\r\n", 2) != 0)
            return fail(h, "a chunk is not followed by CRLF");
        h->in_pos += 2;
    }
    /* Trailers, if any, up to the empty line. */
    for (;;) {
        const char *l;
        size_t len;

        if (line(h, &l, &len, HEAD_MAX) != 0)
            return -1;
        if (len == 0)
            return 0;
    }
}

/* Reads one answer: status line, headers, body. *fresh says whether
 * the server ended the connection before sending a byte of it (a
 * keep-alive connection it had closed), which the caller may retry. */
static int read_answer(bench_http *h, int *fresh)
{
    const char *l, *v;
    size_t len, vlen;
    unsigned long long clen = 0;
    int have_clen = 0, chunked = 0, close_after = 0;

    *fresh = 0;
    h->status = 0;
    h->body_len = 0;
    if (h->in_pos == h->in_len) {
        ssize_t got = fill(h);
        if (got <= 0) {
            *fresh = got == 0 || h->io_errno == ECONNRESET;
            return got == 0 ? fail(h, "the server closed the connection") : -1;
        }
    }
    if (line(h, &l, &len, HEAD_MAX) != 0)
        return -1;
    if (len < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[8] != ' ' || l[9] < '1' ||
        l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9')
        return fail(h, "not an HTTP/1.x status line: %.*s",
                    (int)(len < 60 ? len : 60), l);
    h->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    close_after = l[7] == '0'; /* HTTP/1.0 closes unless told */
    for (;;) {
        if (line(h, &l, &len, HEAD_MAX) != 0)
            return -1;
        if (len == 0)
            break;
        if (is_header(l, len, "content-length", &v, &vlen)) {
            char num[24];
            char *end;

            if (vlen == 0 || vlen >= sizeof(num))
                return fail(h, "a bad Content-Length");
            memcpy(num, v, vlen);
            num[vlen] = '\0';
            errno = 0;
            clen = strtoull(num, &end, 10);
            if (errno || *end || num[0] == '-')
                return fail(h, "a bad Content-Length: %s", num);
            have_clen = 1;
        } else if (is_header(l, len, "transfer-encoding", &v, &vlen)) {
            chunked = has_token(v, vlen, "chunked");
        } else if (is_header(l, len, "connection", &v, &vlen)) {
            if (has_token(v, vlen, "close"))
                close_after = 1;
            else if (has_token(v, vlen, "keep-alive"))
                close_after = 0;
        }
    }
    if (body_add(h, "", 0) != 0)
        return -1;
    if (chunked) {
        if (read_chunked(h) != 0)
            return -1;
    } else if (have_clen) {
        if (body_take(h, (size_t)clen) != 0)
            return -1;
    } else {
        /* Delimited by the end of the connection. */
        ssize_t got;

        while ((got = fill(h)) > 0)
            ;
        if (got < 0 || body_take(h, h->in_len - h->in_pos) != 0)
            return -1;
        close_after = 1;
    }
    if (close_after)
        drop_conn(h);
    return 0;
}

int bench_http_get(bench_http *h, const char *target)
{
    char req[2048];
    int n, fresh;

    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Accept: application/json\r\n\r\n",
                 target);
    if (n < 0 || (size_t)n >= sizeof(req))
        return fail(h, "request target too long");
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t off = 0;
        int gone = 0;

        if (h->fd < 0 && conn_open(h) != 0)
            return -1;
        while (off < (size_t)n) {
            ssize_t w = send(h->fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                gone = errno == EPIPE || errno == ECONNRESET;
                if (!gone)
                    return fail(h, "sending the request: %s", strerror(errno));
                break;
            }
            off += (size_t)w;
        }
        if (!gone) {
            if (read_answer(h, &fresh) == 0)
                return 0;
            if (!fresh)
                return -1;
        }
        /* The server had closed the idle connection: once more on a new
         * one (a GET may be repeated), counted. */
        drop_conn(h);
        h->reconnects++;
    }
    return -1;
}

void bench_http_close(bench_http *h)
{
    if (!h)
        return;
    drop_conn(h);
    free(h->in);
    free(h->body);
    h->in = h->body = NULL;
    h->in_cap = h->body_cap = h->body_len = 0;
}
