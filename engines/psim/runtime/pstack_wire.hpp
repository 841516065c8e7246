// pstack-celery engine runtime: the Redis wire of a split run.
//
// A region talks to Redis through socat: RESP commands written to fd 3 (--command-fd), replies
// read from stdin.  Commands are pipelined: each one records what its reply is for (expect), and
// replies are read in order whenever the engine has time (read_reply), never waited for one by
// one.  Items for other regions collect in one buffer per region and go out as one RPUSH each.
//
// Items travel packed: one list element carries many items, separated by newlines (an item never
// holds one), up to ELEMENT_BYTES.  Redis then parses, stores and replies one string per batch
// instead of one per item: per item it cost Redis more CPU than both engines together, and on a
// shared machine every CPU second of the chain engine -> socat -> Redis -> socat -> engine is
// wake-up latency.  The termination counter counts elements, so nothing else changes.
#ifndef PSTACK_WIRE_HPP
#define PSTACK_WIRE_HPP

#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>

// ---- output buffers ----------------------------------------------------------------------------
inline void PstackOutBuf::reserve(size_t extra) {
    if (len + extra <= cap) return;
    size_t nc = cap ? cap * 2 : 1 << 16;
    while (nc < len + extra) nc *= 2;
    data = (char*)realloc(data, nc);
    if (!data) pstack_fatal(PSTACK_STATUS_IO, "out of memory in the output buffer");
    cap = nc;
}

inline void PstackOutBuf::put(const char* s, size_t n) { reserve(n); memcpy(data + len, s, n); len += n; }

inline void PstackOutBuf::bulk(const char* s, size_t n) {
    char hdr[32];
    int h = snprintf(hdr, sizeof hdr, "$%zu\r\n", n);
    reserve(h + n + 2);
    put(hdr, h); put(s, n); put("\r\n", 2);
}

inline void PstackOutBuf::bulk(const char* s) { bulk(s, strlen(s)); }

// ---- commands ----------------------------------------------------------------------------------
static void expect(PstackPending p) {
    if (pstack.pend_tail - pstack.pend_head >= PSTACK_MAX_PENDING)
        pstack_fatal(PSTACK_STATUS_IO, "too many outstanding Redis replies");
    pstack.pending[pstack.pend_tail++ & (PSTACK_MAX_PENDING - 1)] = p;
}

static void command(int argc, const char* const* argv) {
    char hdr[32];
    pstack.wire.put(hdr, snprintf(hdr, sizeof hdr, "*%d\r\n", argc));
    for (int i = 0; i < argc; ++i) pstack.wire.bulk(argv[i]);
}

// Replies read while a write waited (wire_flush), not yet moved into rbuf: they go there first
// (fill_some).  A buffer of their own, because rbuf may hold an element being handled.
static PstackOutBuf pstack_spill;
static size_t pstack_spill_pos = 0;

// Whatever socat has for us now, into the spill buffer (fd 0 is readable: read does not block).
static void absorb_replies() {
    pstack_spill.reserve(1 << 16);
    ssize_t r;
    do { r = read(0, pstack_spill.data + pstack_spill.len, pstack_spill.cap - pstack_spill.len); } while (r < 0 && errno == EINTR);
    if (r == 0) pstack_fatal(PSTACK_STATUS_IO, "lost the connection to Redis (socat closed stdin)");
    if (r < 0) pstack_fatal(PSTACK_STATUS_IO, "lost the connection to Redis (reading stdin: %s)", strerror(errno));
    pstack_spill.len += (size_t)r;
}

// Write the pipelined commands.  The command pipe is non-blocking (open_wire): socat writes
// replies and reads commands in one loop, so an engine blocked writing a big batch while socat
// is blocked writing it a big reply (an LPOP of many elements) would wait for ever, both of them.
// While the pipe is full, the replies that arrive are read into the spill buffer instead.
static void wire_flush() {
    size_t off = 0;
    while (off < pstack.wire.len) {
        ssize_t w = write(pstack.out_fd, pstack.wire.data + off, pstack.wire.len - off);
        if (w >= 0) { off += (size_t)w; continue; }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            pstack_fatal(PSTACK_STATUS_IO, "lost the connection to Redis (writing fd %d: %s)", pstack.out_fd, strerror(errno));
        struct pollfd p[2] = {{pstack.out_fd, POLLOUT, 0}, {0, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            pstack_fatal(PSTACK_STATUS_IO, "lost the connection to Redis (poll: %s)", strerror(errno));
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) absorb_replies();
    }
    pstack.wire.len = 0;
}

static void queue_name(char* out, size_t n, int pos) {
    snprintf(out, n, PSTACK_KEY_QUEUE_FMT, pstack.prefix, pstack.pid, pstack.regions[pos]);
}

// ---- items for other regions -------------------------------------------------------------------
static const size_t ELEMENT_BYTES = 32 << 10;  // an element is closed once it holds this much

// Per region position: the element being filled (raw items, newline-separated; `items` counts
// them).  pstack.items[pos] holds the closed elements as RESP bulks (`items` counts elements).
static PstackOutBuf* pstack_open = nullptr;

// Wire counters, for tuning: a line per region appended to the file $PSTACK_WIRE_STATS at the end.
struct PstackWireStats {
    uint64_t elements_out = 0, items_out = 0, pushes = 0, pops = 0, elements_in = 0, items_in = 0;
    uint64_t waits = 0, largest = 0;  // largest: bytes of the largest element sent
    double wait_seconds = 0;
};
static PstackWireStats pstack_wire_stats;

static void close_element(int pos) {
    PstackOutBuf& open = pstack_open[pos];
    pstack.items[pos].bulk(open.data, open.len);
    pstack.items[pos].items++;
    pstack_wire_stats.elements_out++;
    pstack_wire_stats.items_out += open.items;
    if (open.len > pstack_wire_stats.largest) pstack_wire_stats.largest = open.len;
    open.len = 0;
    open.items = 0;
}

// Every region's element being filled joins its closed ones.
static void close_elements() {
    for (int pos = 0; pos < pstack.nregions; ++pos)
        if (pstack_open[pos].len) close_element(pos);
}

// Closed elements waiting in this region's batches for every region.
static uint32_t unflushed_items() {
    uint32_t total = 0;
    for (int pos = 0; pos < pstack.nregions; ++pos) total += pstack.items[pos].items;
    return total;
}

// Move every region's pending items into RPUSH commands (one command per region).
static void flush_items() {
    // Elements are counted into <pid>.active before they are pushed (same connection, so in that
    // order): the counter never reads 0 while an item is queued or being handled.
    close_elements();
    uint32_t total = unflushed_items();
    if (!total) return;
    char n[32];
    snprintf(n, sizeof n, "%u", total);
    const char* incr[] = {"INCRBY", pstack.active_key, n};
    command(3, incr);
    expect(P_INT);
    for (int pos = 0; pos < pstack.nregions; ++pos) {
        PstackOutBuf& b = pstack.items[pos];
        if (!b.items) continue;
        char q[256], hdr[64];
        queue_name(q, sizeof q, pos);
        pstack.wire.put(hdr, snprintf(hdr, sizeof hdr, "*%u\r\n", b.items + 2));
        pstack.wire.bulk("RPUSH");
        pstack.wire.bulk(q);
        pstack.wire.put(b.data, b.len);
        b.len = 0;
        b.items = 0;
        expect(P_INT);
        pstack_wire_stats.pushes++;
    }
}

// One item (text without a newline) for the region at `pos`.
static void push_item(int pos, const char* item, size_t n) {
    PstackOutBuf& b = pstack_open[pos];
    b.reserve(n + 1);
    if (b.len) b.data[b.len++] = '\n';
    memcpy(b.data + b.len, item, n);
    b.len += n;
    b.items++;
    pstack.remote_sent++;
    if (b.len >= ELEMENT_BYTES) close_element(pos);
}

// ---- reading replies ---------------------------------------------------------------------------
static void fill_some() {
    if (pstack.rpos > 0 && pstack.rpos == pstack.rlen) pstack.rpos = pstack.rlen = 0;
    if (pstack.rlen == pstack.rcap) {
        if (pstack.rpos > 0) {
            memmove(pstack.rbuf, pstack.rbuf + pstack.rpos, pstack.rlen - pstack.rpos);
            pstack.rlen -= pstack.rpos;
            pstack.rpos = 0;
        } else {
            pstack.rcap *= 2;
            pstack.rbuf = (char*)realloc(pstack.rbuf, pstack.rcap);
            if (!pstack.rbuf) pstack_fatal(PSTACK_STATUS_IO, "out of memory reading Redis replies");
        }
    }
    if (pstack_spill_pos < pstack_spill.len) {  // replies read while a write waited come first
        size_t k = pstack_spill.len - pstack_spill_pos;
        if (k > pstack.rcap - pstack.rlen) k = pstack.rcap - pstack.rlen;
        memcpy(pstack.rbuf + pstack.rlen, pstack_spill.data + pstack_spill_pos, k);
        pstack.rlen += k;
        pstack_spill_pos += k;
        if (pstack_spill_pos == pstack_spill.len) pstack_spill_pos = pstack_spill.len = 0;
        return;
    }
    ssize_t r;
    do { r = read(0, pstack.rbuf + pstack.rlen, pstack.rcap - pstack.rlen); } while (r < 0 && errno == EINTR);
    if (r == 0) pstack_fatal(PSTACK_STATUS_IO, "lost the connection to Redis (socat closed stdin)");
    if (r < 0) pstack_fatal(PSTACK_STATUS_IO, "lost the connection to Redis (reading stdin: %s)", strerror(errno));
    pstack.rlen += (size_t)r;
}

// A line without its CRLF; valid until the next read.
static char* read_line(size_t* n) {
    for (;;) {
        char* start = pstack.rbuf + pstack.rpos;
        char* nl = (char*)memchr(start, '\n', pstack.rlen - pstack.rpos);
        if (nl) {
            *n = (size_t)(nl - start) - (nl > start && nl[-1] == '\r' ? 1 : 0);
            *(start + *n) = 0;
            pstack.rpos = (size_t)(nl - pstack.rbuf) + 1;
            return start;
        }
        fill_some();
    }
}

static char* read_bulk(long n) {
    while (pstack.rlen - pstack.rpos < (size_t)n + 2) fill_some();
    char* s = pstack.rbuf + pstack.rpos;
    s[n] = 0;
    pstack.rpos += (size_t)n + 2;
    return s;
}

// The length of the next element of an array reply, which must be a bulk string.
static long read_bulk_header() {
    size_t n;
    char* h = read_line(&n);
    if (h[0] != '$') pstack_fatal(PSTACK_STATUS_IO, "unexpected Redis reply element: %s", h);
    return atol(h + 1);
}

static bool replies_ready() {
    if (pstack.rpos < pstack.rlen || pstack_spill_pos < pstack_spill.len) return true;
    struct pollfd p = {0, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

static void handle_item(const char* s);  // pstack_delivery.hpp: an item from another region
static bool pstack_snap_hold(const char* s, size_t n);  // pstack_snapshot.hpp: held during a snapshot

// An element taken from this region's queue (`n` bytes at s, NUL-terminated): it joins the
// region's share of <pid>.active, and each of its newline-separated items is handled.
static void take_element(char* s, size_t n) {
    ++pstack.share;
    pstack_wire_stats.elements_in++;
    if (pstack_snap_hold(s, n)) return;  // snapshot hook: after a request, handled after the pause
    char* end = s + n;
    for (;;) {
        char* nl = (char*)memchr(s, '\n', (size_t)(end - s));
        if (nl) *nl = 0;
        pstack_wire_stats.items_in++;
        handle_item(s);
        if (!nl) return;
        s = nl + 1;
    }
}

// The rest of an array reply of `count` elements: items, for the pops.  Returns its length.
static long read_array_reply(PstackPending kind, long count) {
    if (kind == P_LPOP) pstack.lpop_outstanding = false;
    if (kind == P_BLMPOP && count > 0) {  // [queue name, [item, ...]]
        if (count != 2) pstack_fatal(PSTACK_STATUS_IO, "unexpected BLMPOP reply of %ld elements", count);
        read_bulk(read_bulk_header());
        size_t n;
        char* h = read_line(&n);
        if (h[0] != '*') pstack_fatal(PSTACK_STATUS_IO, "unexpected Redis reply element: %s", h);
        count = atol(h + 1);
        pstack.took_items = count > 0;
    }
    for (long i = 0; i < count; ++i) {
        long len = read_bulk_header();
        if (len < 0) continue;
        char* s = read_bulk(len);
        if (kind == P_LPOP || kind == P_BLMPOP) take_element(s, (size_t)len);
    }
    return count < 0 ? 0 : count;
}

// Read one reply; items (LPOP/BLMPOP replies) are taken (take_element).  Returns an integer reply's value.
static long read_reply() {
    if (pstack.pend_head == pstack.pend_tail) pstack_fatal(PSTACK_STATUS_IO, "internal error: reply without a command");
    PstackPending kind = pstack.pending[pstack.pend_head++ & (PSTACK_MAX_PENDING - 1)];
    size_t n;
    char* line = read_line(&n);
    switch (line[0]) {
    case '-':
        pstack_fatal(PSTACK_STATUS_IO, "Redis refused a command: %s", line + 1);
    case ':':
        return atol(line + 1);
    case '+':
        return 0;
    case '$': {
        long len = atol(line + 1);
        if (len < 0) { if (kind == P_LPOP) pstack.lpop_outstanding = false; return 0; }
        char* s = read_bulk(len);
        if (kind == P_LPOP) { pstack.lpop_outstanding = false; take_element(s, (size_t)len); }
        if (kind == P_SCRIPT) snprintf(pstack.idle_sha, sizeof pstack.idle_sha, "%s", s);
        if (kind == P_SEQ) pstack.seq_seen = atol(s);
        return 1;
    }
    case '*':
        return read_array_reply(kind, atol(line + 1));
    default:
        pstack_fatal(PSTACK_STATUS_IO, "unexpected Redis reply: %s", line);
    }
}

// Every reply still owed, taking any items they bring.
static void read_pending_replies() {
    while (pstack.pend_head != pstack.pend_tail) read_reply();
}

// ---- the connection ----------------------------------------------------------------------------
static int pstack_out_fd_flags = -1;

// The command pipe as the worker gave it to us: it hands the same relay to its next engine.
static void close_wire() {
    if (pstack_out_fd_flags >= 0) fcntl(pstack.out_fd, F_SETFL, pstack_out_fd_flags);
}

// A split run's keys and buffers; the first `skip_replies` replies on stdin belong to commands the
// worker sent on this connection before starting us.
static void open_wire(int skip_replies) {
    snprintf(pstack.my_queue, sizeof pstack.my_queue, PSTACK_KEY_QUEUE_FMT, pstack.prefix, pstack.pid, pstack.region);
    snprintf(pstack.active_key, sizeof pstack.active_key, PSTACK_KEY_ACTIVE_FMT, pstack.prefix, pstack.pid);
    pstack.items = new PstackOutBuf[pstack.nregions];
    pstack_open = new PstackOutBuf[pstack.nregions];
    pstack.pending = (PstackPending*)xmalloc(sizeof(PstackPending) * PSTACK_MAX_PENDING);
    pstack.rbuf = (char*)xmalloc(pstack.rcap);
    struct stat st;
    if (fstat(pstack.out_fd, &st) != 0)
        pstack_fatal(PSTACK_STATUS_USAGE, "a multi-region run needs fd %d connected to Redis (through socat)", pstack.out_fd);
    pstack_out_fd_flags = fcntl(pstack.out_fd, F_GETFL);  // non-blocking while we run (wire_flush); close_wire restores
    if (pstack_out_fd_flags < 0 || fcntl(pstack.out_fd, F_SETFL, pstack_out_fd_flags | O_NONBLOCK) < 0)
        pstack_fatal(PSTACK_STATUS_IO, "cannot make fd %d non-blocking: %s", pstack.out_fd, strerror(errno));
    for (int i = 0; i < skip_replies; ++i) { expect(P_INT); read_reply(); }
}

#endif  // PSTACK_WIRE_HPP
