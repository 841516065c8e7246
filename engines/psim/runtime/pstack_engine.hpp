// pstack-celery engine runtime, part 2: the event loop.
//
// Included at the end of every generated engine, after the dispatch functions
// (pstack_init / pstack_rts / pstack_send / pstack_recv / pstack_pack_msg /
// pstack_unpack_msg / pstack_print_state) and the per-type tables.  The graph
// *instance* comes from a binary file at run time (docs/engine-protocol.md).
//
// Scheduling: a FIFO of devices whose ready-to-send may have changed.  A popped
// device sends on its lowest set RTS bit; the message is delivered at once to
// every local destination (receive handlers never send, so there is no
// recursion and no message queue), and to remote regions as one item per
// region, batched per RPUSH.  No heap allocation happens per message.
#ifndef PSTACK_ENGINE_HPP
#define PSTACK_ENGINE_HPP

#include <csignal>
#include <ctime>
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/mman.h>

struct PstackEdge {        // a local destination of a (source device, output pin) slot
    uint32_t dst;          // global device index
    uint32_t local;        // index of dst within its type
    uint16_t type;
    uint16_t pin;          // input pin index
    uint32_t eidx;         // index of this edge's properties/state for that pin
};

// ---- loaded instance -----------------------------------------------------------------------------
static uint32_t g_ndev, g_nedges;
static uint32_t* g_dev_type;
static uint32_t* g_dev_region;
static uint32_t* g_dev_local;
static uint32_t* g_out_base;        // first slot of each device: slot = out_base[d] + pin
static uint32_t* g_slot_edges;      // CSR offsets into g_edges, one per slot (+1)
static PstackEdge* g_edges;
static uint32_t* g_slot_remote;     // CSR offsets into g_remote, one per slot (+1)
static uint16_t* g_remote;          // remote region positions per slot
static uint8_t* g_inq;
static uint32_t* g_rq;
static uint32_t g_rq_mask, g_rq_head, g_rq_tail;
static uint64_t g_delivered, g_sent, g_cancelled, g_steps, g_remote_sent, g_remote_received;
static uint64_t g_max_steps = UINT64_MAX;
// Live counters for whoever started us (--progress-fd): {delivered, steps}, in a shared mapping,
// refreshed every POLL_EVERY steps, when the region goes idle, and at the end.
static volatile uint64_t* g_progress;

static inline void publish_progress() {
    if (g_progress) { g_progress[0] = g_delivered; g_progress[1] = g_steps; }
}
static double g_time_limit;
static int g_region = 0;

// ---- OnHardwareIdle rounds (graph-schema.md s6): run at quiescence, at most PSTACK_MAX_IDLE_ROUNDS
// in a row that wake nothing; in a split every region runs each round (docs/engine-protocol.md).
static const int PSTACK_MAX_IDLE_ROUNDS = 10;
static uint64_t g_idle_rounds;         // rounds run (metric)
static int g_idle_consecutive;         // single region: rounds in a row that woke nothing
static bool g_idle_woke;               // split: a round woke a local device; told to Redis at the next IDLE

static inline void rq_push(uint32_t d) {
    if (!g_inq[d]) {
        g_inq[d] = 1;
        g_rq[g_rq_tail++ & g_rq_mask] = d;
    }
}

static double now_seconds() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---- crash reports --------------------------------------------------------------------------------
// Limits the worker set on this engine (--cpu-limit, --memory-limit, --file-limit): 0 = none.
static long g_cpu_limit = 0, g_memory_limit_mib = 0, g_file_limit_mib = 0;
enum { PSTACK_STATUS_LIMIT = 5 };

// Address space in use now, in MiB (async-signal-safe: open/read only); -1 if unknown.
static long address_space_mib() {
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return -1;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    long pages = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) pages = pages * 10 + (buf[i] - '0');
    return pages / (1048576 / 4096);
}

static void write_long(int fd, long v) {
    char buf[24];
    int i = sizeof buf;
    buf[--i] = 0;
    if (v == 0) buf[--i] = '0';
    while (v > 0 && i > 0) { buf[--i] = (char)('0' + v % 10); v /= 10; }
    pstack_write_str(fd, buf + i);
}

static void report_where() {
    pstack_write_str(2, "handler ");
    pstack_write_str(2, pstack_cur_handler);
    pstack_write_str(2, " of device '");
    pstack_write_str(2, pstack_device_name(pstack_cur_dev));
    pstack_write_str(2, "'");
}

// A limit was hit: say which, where, and exit with PSTACK_STATUS_LIMIT.
static void report_limit(const char* what, long limit, const char* unit) {
    pstack_write_str(2, "pstack-engine: error: the engine exceeded its ");
    pstack_write_str(2, what);
    pstack_write_str(2, " limit of ");
    write_long(2, limit);
    pstack_write_str(2, unit);
    pstack_write_str(2, " (in ");
    report_where();
    pstack_write_str(2, ")\n");
    _exit(PSTACK_STATUS_LIMIT);
}

static void pstack_on_signal(int sig) {
    if (sig == SIGXCPU) report_limit("CPU time", g_cpu_limit, " s");
    if (sig == SIGXFSZ) report_limit("file size", g_file_limit_mib, " MiB");
    // A failed allocation under the memory limit usually surfaces as a crash on the null pointer.
    if (g_memory_limit_mib && (sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT)
        && address_space_mib() * 10 >= g_memory_limit_mib * 9)
        report_limit("memory (address space)", g_memory_limit_mib, " MiB");
    const char* what = sig == SIGSEGV ? "segmentation fault" : sig == SIGBUS ? "bus error"
                     : sig == SIGFPE ? "arithmetic error (SIGFPE)" : sig == SIGILL ? "illegal instruction"
                     : sig == SIGABRT ? "abort" : "fatal signal";
    pstack_write_str(2, "pstack-engine: error: ");
    report_where();
    pstack_write_str(2, " crashed: ");
    pstack_write_str(2, what);
    pstack_write_str(2, "\n");
    _exit(PSTACK_STATUS_HANDLER);
}

static void set_limit(int resource, rlim_t value) {
    struct rlimit rl;
    rl.rlim_cur = value;
    rl.rlim_max = value;
    if (resource == RLIMIT_CPU) rl.rlim_max = value + 5;  // SIGXCPU at the soft limit, SIGKILL 5 s later
    if (setrlimit(resource, &rl) != 0)
        pstack_fatal(PSTACK_STATUS_USAGE, "cannot set resource limit %d: %s", resource, strerror(errno));
}

// Limits on this engine, and no core dumps: handler code is the users' native code.
static void apply_limits() {
    set_limit(RLIMIT_CORE, 0);
    if (g_cpu_limit > 0) set_limit(RLIMIT_CPU, (rlim_t)g_cpu_limit);
    if (g_memory_limit_mib > 0) set_limit(RLIMIT_AS, (rlim_t)g_memory_limit_mib << 20);
    if (g_file_limit_mib > 0) set_limit(RLIMIT_FSIZE, (rlim_t)g_file_limit_mib << 20);
}

// The progress file comes as an open descriptor (already unlinked: nothing to leak if we die).
static void map_progress(int fd) {
    void* m = mmap(nullptr, 2 * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) pstack_fatal(PSTACK_STATUS_USAGE, "cannot map the progress file (fd %d): %s", fd, strerror(errno));
    close(fd);
    g_progress = (volatile uint64_t*)m;
}

// Die with the process that started this engine (a worker killed with SIGKILL included).
static void follow_parent(long parent) {
    if (parent <= 0) return;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if ((long)getppid() != parent) _exit(PSTACK_STATUS_IO);  // it died before prctl took effect
}

static void install_crash_handlers() {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pstack_on_signal;
    sa.sa_flags = SA_RESETHAND;
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGXCPU, SIGXFSZ};
    for (int s : sigs) sigaction(s, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

// ---- instance file --------------------------------------------------------------------------------
struct Reader {
    const char* path;
    FILE* f;
    void read(void* dst, size_t n) {
        if (n && fread(dst, 1, n, f) != n) pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s is truncated", path);
    }
    uint32_t u32() { uint32_t v; read(&v, 4); return v; }
};

static void* xmalloc(size_t n) {
    void* p = malloc(n ? n : 1);
    if (!p) pstack_fatal(PSTACK_STATUS_USAGE, "out of memory allocating %zu bytes", n);
    return p;
}

static int g_nregions = 1;
static int* g_regions;                 // region numbers; position = index into out buffers
static int g_my_pos = 0;

static int region_pos(uint32_t r) {
    for (int i = 0; i < g_nregions; ++i) if ((uint32_t)g_regions[i] == r) return i;
    return -1;
}

#define PSTACK_EDGE_WORDS 6  // src, src pin, dst, dst pin, index in the pin's edge data, sendIndex

#if PSTACK_HAS_INDEXED
// Indexed output pins (v3 sendIndex): every edge of such a slot, local or not, by sendIndex, in every
// region, so that a sender picks one edge and a receiving region finds it from (device, pin, index).
static uint32_t* g_idx_off;         // CSR offsets per slot (+1)
static PstackEdge* g_idx_edges;

static void build_indexed(const uint32_t* raw, uint32_t nslots) {
    g_idx_off = (uint32_t*)calloc(nslots + 2ull, 4);
    if (!g_idx_off) pstack_fatal(PSTACK_STATUS_USAGE, "out of memory");
    for (uint64_t e = 0; e < g_nedges; ++e) {
        const uint32_t* r = raw + PSTACK_EDGE_WORDS * e;
        if (pstack_out_indexed[pstack_out_base[g_dev_type[r[0]]] + r[1]]) g_idx_off[g_out_base[r[0]] + r[1] + 1]++;
    }
    for (uint32_t s = 0; s < nslots; ++s) g_idx_off[s + 1] += g_idx_off[s];
    g_idx_edges = (PstackEdge*)xmalloc(sizeof(PstackEdge) * (size_t)(g_idx_off[nslots] + 1));
    for (uint64_t e = 0; e < g_nedges; ++e) {
        const uint32_t* r = raw + PSTACK_EDGE_WORDS * e;
        uint32_t src = r[0], pin = r[1], dst = r[2];
        if (!pstack_out_indexed[pstack_out_base[g_dev_type[src]] + pin]) continue;
        uint32_t slot = g_out_base[src] + pin, k = r[5];
        if (k >= g_idx_off[slot + 1] - g_idx_off[slot])
            pstack_fatal(PSTACK_STATUS_USAGE, "instance file: edge %llu has sendIndex %u out of range", (unsigned long long)e, k);
        g_idx_edges[g_idx_off[slot] + k] = PstackEdge{dst, g_dev_local[dst], (uint16_t)g_dev_type[dst], (uint16_t)r[3], r[4]};
    }
}
#endif

static void load_instance(const char* path) {
    Reader in{path, fopen(path, "rb")};
    if (!in.f) pstack_fatal(PSTACK_STATUS_USAGE, "cannot open instance file %s: %s", path, strerror(errno));
    setvbuf(in.f, nullptr, _IOFBF, 1 << 20);
    char magic[4];
    in.read(magic, 4);
    if (memcmp(magic, "PSTI", 4) != 0 || in.u32() != 2)
        pstack_fatal(PSTACK_STATUS_USAGE, "%s is not a pstack instance file (version 2)", path);
    char hash[65] = {0};
    in.read(hash, 64);
    if (strncmp(hash, PSTACK_TYPE_HASH, 64) != 0)
        pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s was made for another graph type", path);
    g_ndev = in.u32();
    g_nedges = in.u32();
    uint32_t ntypes = in.u32();
    uint32_t gpsize = in.u32();
    if (ntypes != PSTACK_NTYPES || gpsize != PSTACK_GRAPH_PROPS_SIZE)
        pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s does not match the engine's graph type", path);
    pstack_graph_props = (char*)xmalloc(gpsize + 8);
    in.read(pstack_graph_props, gpsize);
    g_dev_type = (uint32_t*)xmalloc(4ull * g_ndev);
    in.read(g_dev_type, 4ull * g_ndev);
    g_dev_region = (uint32_t*)xmalloc(4ull * g_ndev);
    in.read(g_dev_region, 4ull * g_ndev);
    uint32_t blob_len = in.u32();
    char* blob = (char*)xmalloc(blob_len + 1);
    in.read(blob, blob_len);
    const char** names = (const char**)xmalloc(sizeof(char*) * (g_ndev + 1ull));
    {
        char* p = blob;
        for (uint32_t d = 0; d < g_ndev; ++d) { names[d] = p; p += strlen(p) + 1; }
    }
    pstack_dev_names = names;
    uint32_t counts[PSTACK_NTYPES + 1];
    for (uint32_t t = 0; t < PSTACK_NTYPES; ++t) {
        counts[t] = in.u32();
        size_t ps = (size_t)pstack_props_size[t] * counts[t], ss = (size_t)pstack_state_size[t] * counts[t];
        pstack_props_base[t] = (char*)xmalloc(ps + 8);
        in.read(pstack_props_base[t], ps);
        pstack_state_base[t] = (char*)xmalloc(ss + 8);
        in.read(pstack_state_base[t], ss);
    }
    for (uint32_t i = 0; i < PSTACK_NINPUTS_TOTAL; ++i) {
        uint32_t n = in.u32();
        size_t ps = (size_t)pstack_edge_props_size[i] * n, ss = (size_t)pstack_edge_state_size[i] * n;
        pstack_edge_props_base[i] = (char*)xmalloc(ps + 8);
        in.read(pstack_edge_props_base[i], ps);
        pstack_edge_state_base[i] = (char*)xmalloc(ss + 8);
        in.read(pstack_edge_state_base[i], ss);
    }
    // device -> index within its type, and slot bases
    g_dev_local = (uint32_t*)xmalloc(4ull * g_ndev);
    g_out_base = (uint32_t*)xmalloc(4ull * (g_ndev + 1));
    uint32_t seen[PSTACK_NTYPES + 1] = {0};
    uint32_t nslots = 0;
    for (uint32_t d = 0; d < g_ndev; ++d) {
        uint32_t t = g_dev_type[d];
        if (t >= PSTACK_NTYPES) pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s: bad device type", path);
        g_dev_local[d] = seen[t]++;
        g_out_base[d] = nslots;
        nslots += pstack_n_outputs[t];
    }
    g_out_base[g_ndev] = nslots;
    // edges -> CSR of local destinations per slot, and remote regions per local source slot
    uint32_t* raw = (uint32_t*)xmalloc(4ull * PSTACK_EDGE_WORDS * g_nedges);
    in.read(raw, 4ull * PSTACK_EDGE_WORDS * g_nedges);
    fclose(in.f);
    uint32_t my_region = (uint32_t)g_regions[g_my_pos];
    g_slot_edges = (uint32_t*)calloc(nslots + 2ull, 4);
    g_slot_remote = (uint32_t*)calloc(nslots + 2ull, 4);
    if (!g_slot_edges || !g_slot_remote) pstack_fatal(PSTACK_STATUS_USAGE, "out of memory");
    for (uint64_t e = 0; e < g_nedges; ++e) {
        const uint32_t* r = raw + PSTACK_EDGE_WORDS * e;
        uint32_t src = r[0], pin = r[1], dst = r[2];
        if (src >= g_ndev || dst >= g_ndev || pin >= pstack_n_outputs[g_dev_type[src]])
            pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s: edge %llu is out of range", path, (unsigned long long)e);
        if (g_dev_region[dst] == my_region) g_slot_edges[g_out_base[src] + pin + 1]++;
    }
    for (uint32_t s = 0; s < nslots; ++s) g_slot_edges[s + 1] += g_slot_edges[s];
    g_edges = (PstackEdge*)xmalloc(sizeof(PstackEdge) * (size_t)(g_slot_edges[nslots] + 1));
    uint32_t* fill = (uint32_t*)xmalloc(4ull * (nslots + 1));
    memcpy(fill, g_slot_edges, 4ull * nslots);
    // remote regions: at most one entry per (slot, region); count with a small dedupe per slot
    uint32_t* rcount = g_slot_remote;  // reused as counts then offsets
    uint16_t* rtmp = nullptr;
    if (g_nregions > 1) {
        for (uint64_t e = 0; e < g_nedges; ++e) {
            const uint32_t* r = raw + PSTACK_EDGE_WORDS * e;
            if (g_dev_region[r[0]] == my_region && g_dev_region[r[2]] != my_region) rcount[g_out_base[r[0]] + r[1] + 1]++;
        }
        for (uint32_t s = 0; s < nslots; ++s) rcount[s + 1] += rcount[s];
        rtmp = (uint16_t*)xmalloc(2ull * (rcount[nslots] + 1));
    }
    uint32_t* rfill = (uint32_t*)xmalloc(4ull * (nslots + 1));
    memcpy(rfill, g_slot_remote, 4ull * nslots);
    for (uint64_t e = 0; e < g_nedges; ++e) {
        const uint32_t* r = raw + PSTACK_EDGE_WORDS * e;
        uint32_t src = r[0], pin = r[1], dst = r[2], dpin = r[3], eidx = r[4];
        uint32_t slot = g_out_base[src] + pin;
        if (g_dev_region[dst] == my_region) {
            uint32_t dt = g_dev_type[dst];
            if (dpin >= pstack_n_inputs[dt]) pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s: bad input pin", path);
            g_edges[fill[slot]++] = PstackEdge{dst, g_dev_local[dst], (uint16_t)dt, (uint16_t)dpin, eidx};
        } else if (g_nregions > 1 && g_dev_region[src] == my_region) {
            int pos = region_pos(g_dev_region[dst]);
            if (pos < 0) pstack_fatal(PSTACK_STATUS_USAGE, "device '%s' is in region %u, which is not in the region list",
                                      names[dst], g_dev_region[dst]);
            bool dup = false;
            for (uint32_t k = g_slot_remote[slot]; k < rfill[slot]; ++k) if (rtmp[k] == pos) { dup = true; break; }
            if (!dup) rtmp[rfill[slot]++] = (uint16_t)pos;
        }
    }
    // compact the remote lists (duplicates left gaps)
    if (g_nregions > 1) {
        uint32_t w = 0;
        for (uint32_t s = 0; s < nslots; ++s) {
            uint32_t b = g_slot_remote[s], e = rfill[s];
            g_slot_remote[s] = w;
            for (uint32_t k = b; k < e; ++k) rtmp[w++] = rtmp[k];
        }
        g_slot_remote[nslots] = w;
        g_remote = rtmp;
    }
    free(fill);
    free(rfill);
#if PSTACK_HAS_INDEXED
    build_indexed(raw, nslots);
#endif
    free(raw);
    uint32_t cap = 1;
    while (cap < g_ndev + 1) cap <<= 1;
    g_rq = (uint32_t*)xmalloc(4ull * cap);
    g_rq_mask = cap - 1;
    g_inq = (uint8_t*)calloc(g_ndev + 1ull, 1);
}

static inline bool is_local(uint32_t d) { return g_dev_region[d] == (uint32_t)g_regions[g_my_pos]; }

// ---- Redis through socat: RESP written to fd 3, replies read from stdin ----------------------------
static const char* g_prefix = "";
static long g_pid = 0;
static char g_myq[256];
static char g_active_key[256];
static int g_out_fd = 3;

struct OutBuf {
    char* data = nullptr;
    size_t len = 0, cap = 0;
    uint32_t items = 0;
    void reserve(size_t extra) {
        if (len + extra <= cap) return;
        size_t nc = cap ? cap * 2 : 1 << 16;
        while (nc < len + extra) nc *= 2;
        data = (char*)realloc(data, nc);
        if (!data) pstack_fatal(PSTACK_STATUS_IO, "out of memory in the output buffer");
        cap = nc;
    }
    void put(const char* s, size_t n) { reserve(n); memcpy(data + len, s, n); len += n; }
    void puts(const char* s) { put(s, strlen(s)); }
    void bulk(const char* s, size_t n) {
        char hdr[32];
        int h = snprintf(hdr, sizeof hdr, "$%zu\r\n", n);
        reserve(h + n + 2);
        put(hdr, h); put(s, n); put("\r\n", 2);
    }
    void bulk(const char* s) { bulk(s, strlen(s)); }
};

static OutBuf g_wire;            // bytes for the command fd (3, or --command-fd)
static OutBuf* g_items;          // per region position: pending items (as RESP bulks)
enum Pending : uint8_t { P_INT, P_LPOP, P_BLMPOP, P_SCRIPT, P_SEQ };
static long g_seq = 0;                 // IDLE script calls sent (their replies are skipped)
static long g_seq_seen = -1;           // what Redis says the last one that ran was
static char g_seq_key[256];
static char g_idle_sha[64];           // the IDLE script's SHA1, from SCRIPT LOAD at the start
static Pending g_pending[1 << 16];
static uint32_t g_pend_head, g_pend_tail;
static bool g_lpop_outstanding = false;
// This region's share of <pid>.active (docs/engine-protocol.md): 1 for itself at the start, plus
// every item taken since it last went idle.  Going idle gives the whole share back at once.
static long g_share = 1;
static bool g_took_items = false;   // the last BLMPOP brought something
static const size_t ITEM_FLUSH_BYTES = 1 << 18;
static const uint32_t POP_COUNT = 8192;

static void expect(Pending p) {
    if (g_pend_tail - g_pend_head >= (1u << 16)) pstack_fatal(PSTACK_STATUS_IO, "too many outstanding Redis replies");
    g_pending[g_pend_tail++ & 0xffff] = p;
}

static void command(int argc, const char* const* argv) {
    char hdr[32];
    g_wire.put(hdr, snprintf(hdr, sizeof hdr, "*%d\r\n", argc));
    for (int i = 0; i < argc; ++i) g_wire.bulk(argv[i]);
}

static void wire_flush() {
    size_t off = 0;
    while (off < g_wire.len) {
        ssize_t w = write(g_out_fd, g_wire.data + off, g_wire.len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            pstack_fatal(PSTACK_STATUS_IO, "lost the connection to Redis (writing fd %d: %s)", g_out_fd, strerror(errno));
        }
        off += (size_t)w;
    }
    g_wire.len = 0;
}

static void queue_name(char* out, size_t n, int pos) {
    snprintf(out, n, "%s%ld.%d", g_prefix, g_pid, g_regions[pos]);
}

// Items waiting in this region's batches for every region.
static uint32_t unflushed_items() {
    uint32_t total = 0;
    for (int pos = 0; pos < g_nregions; ++pos) total += g_items[pos].items;
    return total;
}

// Move every region's pending items into RPUSH commands (one command per region).
static void flush_items() {
    // Items are counted into <pid>.active before they are pushed (same connection, so in that
    // order): the counter never reads 0 while an item is queued or being handled.
    uint32_t total = unflushed_items();
    if (!total) return;
    char n[32];
    snprintf(n, sizeof n, "%u", total);
    const char* incr[] = {"INCRBY", g_active_key, n};
    command(3, incr);
    expect(P_INT);
    for (int pos = 0; pos < g_nregions; ++pos) {
        OutBuf& b = g_items[pos];
        if (!b.items) continue;
        char q[256], hdr[64];
        queue_name(q, sizeof q, pos);
        g_wire.put(hdr, snprintf(hdr, sizeof hdr, "*%u\r\n", b.items + 2));
        g_wire.bulk("RPUSH");
        g_wire.bulk(q);
        g_wire.put(b.data, b.len);
        b.len = 0;
        b.items = 0;
        expect(P_INT);
    }
}

static void push_item(int pos, const char* item, size_t n) {
    OutBuf& b = g_items[pos];
    b.bulk(item, n);
    b.items++;
    g_remote_sent++;
}

// -- reading replies
static char* g_rbuf;
static size_t g_rlen = 0, g_rpos = 0, g_rcap = 1 << 20;

static void fill_some() {
    if (g_rpos > 0 && g_rpos == g_rlen) g_rpos = g_rlen = 0;
    if (g_rlen == g_rcap) {
        if (g_rpos > 0) {
            memmove(g_rbuf, g_rbuf + g_rpos, g_rlen - g_rpos);
            g_rlen -= g_rpos;
            g_rpos = 0;
        } else {
            g_rcap *= 2;
            g_rbuf = (char*)realloc(g_rbuf, g_rcap);
            if (!g_rbuf) pstack_fatal(PSTACK_STATUS_IO, "out of memory reading Redis replies");
        }
    }
    ssize_t r;
    do { r = read(0, g_rbuf + g_rlen, g_rcap - g_rlen); } while (r < 0 && errno == EINTR);
    if (r == 0) pstack_fatal(PSTACK_STATUS_IO, "lost the connection to Redis (socat closed stdin)");
    if (r < 0) pstack_fatal(PSTACK_STATUS_IO, "lost the connection to Redis (reading stdin: %s)", strerror(errno));
    g_rlen += (size_t)r;
}

// A line without its CRLF; valid until the next read.
static char* read_line(size_t* n) {
    for (;;) {
        char* start = g_rbuf + g_rpos;
        char* nl = (char*)memchr(start, '\n', g_rlen - g_rpos);
        if (nl) {
            *n = (size_t)(nl - start) - (nl > start && nl[-1] == '\r' ? 1 : 0);
            *(start + *n) = 0;
            g_rpos = (size_t)(nl - g_rbuf) + 1;
            return start;
        }
        fill_some();
    }
}

static char* read_bulk(long n) {
    while (g_rlen - g_rpos < (size_t)n + 2) fill_some();
    char* s = g_rbuf + g_rpos;
    s[n] = 0;
    g_rpos += (size_t)n + 2;
    return s;
}

static bool replies_ready() {
    if (g_rpos < g_rlen) return true;
    struct pollfd p = {0, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

static void handle_item(const char* s);

// An item taken from this region's queue: it joins the region's share of <pid>.active.
static inline void take_item(const char* s) {
    ++g_share;
    handle_item(s);
}

// Read one reply; items (LPOP/BLMPOP replies) are taken (take_item).  Returns an integer reply's value.
static long read_reply() {
    if (g_pend_head == g_pend_tail) pstack_fatal(PSTACK_STATUS_IO, "internal error: reply without a command");
    Pending kind = g_pending[g_pend_head++ & 0xffff];
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
        if (len < 0) { if (kind == P_LPOP) g_lpop_outstanding = false; return 0; }
        char* s = read_bulk(len);
        if (kind == P_LPOP) { g_lpop_outstanding = false; take_item(s); }
        if (kind == P_SCRIPT) snprintf(g_idle_sha, sizeof g_idle_sha, "%s", s);
        if (kind == P_SEQ) g_seq_seen = atol(s);
        return 1;
    }
    case '*': {
        long count = atol(line + 1);
        if (kind == P_LPOP) g_lpop_outstanding = false;
        if (kind == P_BLMPOP && count > 0) {  // [queue name, [item, ...]]
            if (count != 2) pstack_fatal(PSTACK_STATUS_IO, "unexpected BLMPOP reply of %ld elements", count);
            char* h = read_line(&n);
            if (h[0] != '$') pstack_fatal(PSTACK_STATUS_IO, "unexpected Redis reply element: %s", h);
            read_bulk(atol(h + 1));
            h = read_line(&n);
            if (h[0] != '*') pstack_fatal(PSTACK_STATUS_IO, "unexpected Redis reply element: %s", h);
            count = atol(h + 1);
            g_took_items = count > 0;
        }
        for (long i = 0; i < count; ++i) {
            char* h = read_line(&n);
            if (h[0] != '$') pstack_fatal(PSTACK_STATUS_IO, "unexpected Redis reply element: %s", h);
            long len = atol(h + 1);
            if (len < 0) continue;
            char* s = read_bulk(len);
            if (kind == P_LPOP || kind == P_BLMPOP) take_item(s);
        }
        return count < 0 ? 0 : count;
    }
    default:
        pstack_fatal(PSTACK_STATUS_IO, "unexpected Redis reply: %s", line);
    }
}

static const char* IDLE_SCRIPT =
    // KEYS[1] = active counter, KEYS[2] = idle-round counter, KEYS[3] = calls hash, KEYS[4..] =
    // every region's queue.  ARGV[1] = most idle rounds in a row (0: the graph has no
    // OnHardwareIdle), ARGV[2] = 1 if an idle round woke a device here since the last call,
    // ARGV[3] = this region's share of the counter (1 for itself at the start, plus every item it
    // took since its last call), ARGV[4] = this region, ARGV[5] = its call number, ARGV[6..5+R] =
    // how many items follow for each queue, then the items.
    // Called when this region has no local work.  First its last items are counted and pushed;
    // the call number is recorded (the reply is skipped: a region that hears nothing for 5 s
    // checks it, so a call Redis refused cannot go unnoticed).  The counter is the sum of the
    // regions' shares and the items still queued (a sender counts its items before it pushes
    // them), so at 0 nobody is working and nothing is in flight: the whole graph is quiescent.
    // Then start an OnHardwareIdle round (item 4 to every region, counted; return 2) unless
    // ARGV[1] rounds in a row woke nothing; otherwise every region gets item 2 (return 1).
    "local R = #KEYS - 3 "
    "local total, a = 0, 6 + R "
    "for i = 1, R do total = total + tonumber(ARGV[5 + i]) end "
    "if total > 0 then redis.call('INCRBY', KEYS[1], total) end "
    "for i = 1, R do "
    "  local k = tonumber(ARGV[5 + i]) "
    "  if k > 0 then redis.call('RPUSH', KEYS[3 + i], unpack(ARGV, a, a + k - 1)); a = a + k end "
    "end "
    "redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]) "
    "if ARGV[2] == '1' then redis.call('SET', KEYS[2], 0) end "
    "local n = redis.call('DECRBY', KEYS[1], ARGV[3]) "
    "if n > 0 then return 0 end "
    "local c = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "if c < tonumber(ARGV[1]) then "
    "  redis.call('SET', KEYS[2], c + 1) "
    "  redis.call('INCRBY', KEYS[1], R) "
    "  for i = 4, #KEYS do redis.call('RPUSH', KEYS[i], '4') end "
    "  return 2 "
    "end "
    "redis.call('DEL', KEYS[2]) "
    "for i = 4, #KEYS do redis.call('RPUSH', KEYS[i], '2') end "
    "return 1";

// Items a region pushes with its IDLE call instead of in RPUSHes of their own (more go first, as
// RPUSH commands: Lua would unpack them one by one).
static const uint32_t IDLE_CALL_ITEMS = 64;

// The IDLE script call, carrying this region's unflushed items, with its reply skipped (CLIENT
// REPLY SKIP): a region going idle then waits for nothing but its blocking pop, so a message
// crossing regions costs Redis, socat and the engines one wake-up less.
static void send_idle_script() {
    static char idle_key[300], limit[16];
    static char** qs = nullptr;
    if (!qs) {
        qs = (char**)xmalloc(sizeof(char*) * g_nregions);
        for (int i = 0; i < g_nregions; ++i) {
            qs[i] = (char*)xmalloc(256);
            queue_name(qs[i], 256, i);
        }
        snprintf(idle_key, sizeof idle_key, "%s%ld.idle", g_prefix, g_pid);
        snprintf(limit, sizeof limit, "%d", PSTACK_HAS_HW_IDLE ? PSTACK_MAX_IDLE_ROUNDS : 0);
    }
    uint32_t total = unflushed_items();
    const char* skip[] = {"CLIENT", "REPLY", "SKIP"};
    command(3, skip);
    char hdr[32], nk[16], region[16], seq[32], share[32], count[16];
    g_wire.put(hdr, snprintf(hdr, sizeof hdr, "*%u\r\n", 3u + 3u + (unsigned)g_nregions + 5u + (unsigned)g_nregions + total));
    g_wire.bulk("EVALSHA");
    g_wire.bulk(g_idle_sha);
    snprintf(nk, sizeof nk, "%d", 3 + g_nregions);
    g_wire.bulk(nk);
    g_wire.bulk(g_active_key);
    g_wire.bulk(idle_key);
    g_wire.bulk(g_seq_key);
    for (int i = 0; i < g_nregions; ++i) g_wire.bulk(qs[i]);
    g_wire.bulk(limit);
    g_wire.bulk(g_idle_woke ? "1" : "0");
    snprintf(share, sizeof share, "%ld", g_share);
    g_wire.bulk(share);
    snprintf(region, sizeof region, "%d", g_region);
    g_wire.bulk(region);
    snprintf(seq, sizeof seq, "%ld", ++g_seq);
    g_wire.bulk(seq);
    for (int i = 0; i < g_nregions; ++i) {
        snprintf(count, sizeof count, "%u", g_items[i].items);
        g_wire.bulk(count);
    }
    for (int i = 0; i < g_nregions; ++i) {
        OutBuf& b = g_items[i];
        if (b.items) g_wire.put(b.data, b.len);
        b.len = 0;
        b.items = 0;
    }
    g_idle_woke = false;
    g_share = 0;
}

// Redis has heard nothing from the other regions for a while: make sure it ran this region's last
// IDLE call (its reply was skipped), else the region would wait for ever.
static void check_idle_call_ran() {
    char region[16];
    snprintf(region, sizeof region, "%d", g_region);
    const char* get[] = {"HGET", g_seq_key, region};
    command(3, get);
    expect(P_SEQ);
    wire_flush();
    g_seq_seen = -1;
    while (g_pend_head != g_pend_tail) read_reply();
    if (g_seq_seen != g_seq)
        pstack_fatal(PSTACK_STATUS_IO, "Redis did not run this region's termination script (call %ld; it last ran "
                     "call %ld): were its scripts flushed, or is it out of memory?", g_seq, g_seq_seen);
}

// ---- message delivery ---------------------------------------------------------------------------
static char g_msgbuf[PSTACK_MAX_MSG_SIZE + 8];

static inline void deliver_one(const PstackEdge* e, const char* msg) {
    pstack_cur_dev = e->dst;
    pstack_recv(e->type, e->local, e->pin, e->eidx, (void*)msg);  // copies the message if handlers may write it
    ++g_delivered;
    rq_push(e->dst);
}

static inline void deliver_local(uint32_t slot, const char* msg) {
    const PstackEdge* e = g_edges + g_slot_edges[slot];
    const PstackEdge* end = g_edges + g_slot_edges[slot + 1];
    for (; e != end; ++e) {
        deliver_one(e, msg);
        if (__builtin_expect(pstack_stop, 0)) return;
    }
}


// OnHardwareIdle on every local device, then ReadyToSend; true if any device wants to send.
static bool hardware_idle_round() {
    ++g_idle_rounds;
    // Like graph_schema's epoch_sim, a round that calls handler_exit still runs on every device.
    for (uint32_t d = 0; d < g_ndev; ++d) {
        if (!is_local(d)) continue;
        pstack_cur_dev = d;
        pstack_hw_idle(g_dev_type[d], g_dev_local[d]);
    }
    bool woke = false;
    for (uint32_t d = 0; d < g_ndev && !pstack_stop; ++d) {
        if (!is_local(d)) continue;
        pstack_cur_dev = d;
        if (pstack_rts(g_dev_type[d], g_dev_local[d])) { rq_push(d); woke = true; }
    }
    return woke;
}

#if PSTACK_HAS_INDEXED
static const unsigned PSTACK_NO_SEND_INDEX = 0xffffffffu;

static const PstackEdge* indexed_edge(uint32_t slot, unsigned k, uint32_t d) {
    uint32_t n = g_idx_off[slot + 1] - g_idx_off[slot];
    if (n == 0) return nullptr;  // a pin without edges: the send goes nowhere, as on any pin
    if (k == PSTACK_NO_SEND_INDEX)
        pstack_fatal(PSTACK_STATUS_HANDLER, "%s of device '%s' did not set *sendIndex (the pin is indexed, with %u edges)",
                     pstack_cur_handler, pstack_device_name(d), n);
    if (k >= n)
        pstack_fatal(PSTACK_STATUS_HANDLER, "%s of device '%s' set *sendIndex = %u, but the pin has %u edges (0..%u)",
                     pstack_cur_handler, pstack_device_name(d), k, n, n - 1);
    return g_idx_edges + g_idx_off[slot] + k;
}

// A send on an indexed pin goes over one edge: delivered here, or pushed as item 3 to its region.
static void send_indexed(uint32_t d, uint32_t t, uint32_t pin, uint32_t slot, unsigned k) {
    const PstackEdge* e = indexed_edge(slot, k, d);
    if (!e) return;
    if (is_local(e->dst)) { deliver_one(e, g_msgbuf); return; }
    uint32_t mt = pstack_out_msg[pstack_out_base[t] + pin];
    char item[PSTACK_MAX_ITEM_CHARS + 16];
    char* p = item;
    *p++ = '3'; *p++ = ' ';
    p = pstack_put_u64(p, d); *p++ = ' ';
    p = pstack_put_u64(p, pin); *p++ = ' ';
    p = pstack_put_u64(p, k); *p++ = ' ';
    p = pstack_pack_msg(mt, g_msgbuf, p);
    push_item(region_pos(g_dev_region[e->dst]), item, (size_t)(p - item));
}
#endif

static void handle_item(const char* s) {
    if (pstack_stop) return;
    const char* p = pstack_skip_ws(s);
    if (*p == '0') {
        int64_t src, port, nfields;
        p = pstack_get_i64(p + 1, &src);
        p = pstack_get_i64(p, &port);
        p = pstack_get_i64(p, &nfields);
        if (src < 0 || (uint64_t)src >= g_ndev || port < 0 || (uint32_t)port >= pstack_n_outputs[g_dev_type[src]])
            pstack_fatal(PSTACK_STATUS_IO, "bad remote item (no such device/port): %.80s", s);
        uint32_t t = g_dev_type[src];
        uint32_t mt = pstack_out_msg[pstack_out_base[t] + (uint32_t)port];
        if ((uint32_t)nfields != pstack_msg_nfields[mt])
            pstack_fatal(PSTACK_STATUS_IO, "bad remote item (expected %u fields): %.80s", pstack_msg_nfields[mt], s);
        memset(g_msgbuf, 0, pstack_msg_size[mt] + 1);
        pstack_unpack_msg(mt, g_msgbuf, p);
        ++g_remote_received;
        deliver_local(g_out_base[src] + (uint32_t)port, g_msgbuf);
    } else if (*p == '1') {
        int64_t code = 0;
        pstack_get_i64(p + 1, &code);
        pstack_stop = 1;
        pstack_exit_code = (int)code;
        pstack_exit_reason = "remote stop";
    } else if (*p == '2') {
        pstack_stop = 1;
        pstack_exit_code = PSTACK_IDLE_EXIT_CODE;
        pstack_exit_reason = "quiescence";
    } else if (*p == '4') {
        if (hardware_idle_round()) g_idle_woke = true;
#if PSTACK_HAS_INDEXED
    } else if (*p == '3') {
        int64_t src, port, k, nfields;
        p = pstack_get_i64(p + 1, &src);
        p = pstack_get_i64(p, &port);
        p = pstack_get_i64(p, &k);
        p = pstack_get_i64(p, &nfields);
        if (src < 0 || (uint64_t)src >= g_ndev || port < 0 || (uint32_t)port >= pstack_n_outputs[g_dev_type[src]])
            pstack_fatal(PSTACK_STATUS_IO, "bad remote item (no such device/port): %.80s", s);
        uint32_t t = g_dev_type[src];
        uint32_t mt = pstack_out_msg[pstack_out_base[t] + (uint32_t)port];
        uint32_t slot = g_out_base[src] + (uint32_t)port;
        if ((uint32_t)nfields != pstack_msg_nfields[mt] || k < 0 || (uint64_t)k >= g_idx_off[slot + 1] - g_idx_off[slot])
            pstack_fatal(PSTACK_STATUS_IO, "bad remote item (indexed send): %.80s", s);
        memset(g_msgbuf, 0, pstack_msg_size[mt] + 1);
        pstack_unpack_msg(mt, g_msgbuf, p);
        ++g_remote_received;
        deliver_one(g_idx_edges + g_idx_off[slot] + k, g_msgbuf);
#endif
    } else {
        pstack_fatal(PSTACK_STATUS_IO, "unknown remote item: %.80s", s);
    }
}

// Called now and then while local work remains: send what is pending, ask for new items, and take
// in whatever replies have already arrived, without waiting.
static void net_poll_active() {
    flush_items();
    if (!g_lpop_outstanding) {
        char cnt[16];
        snprintf(cnt, sizeof cnt, "%u", POP_COUNT);
        const char* argv[] = {"LPOP", g_myq, cnt};
        command(3, argv);
        expect(P_LPOP);
        g_lpop_outstanding = true;
    }
    wire_flush();
    while (g_pend_head != g_pend_tail && replies_ready()) read_reply();
}

// No local work: hand the region's share to the termination detector and wait for items.  The
// IDLE script and the blocking pop go out together: one round trip per wake-up.  The script's
// answer needs no wait: when it ends the run (item 2) or starts an idle round (item 4), the item
// is in this region's queue too, and the pop brings it.
static void net_wait_idle() {
    if (unflushed_items() > IDLE_CALL_ITEMS) flush_items();  // a few go with the IDLE call instead
    if (g_lpop_outstanding) {  // it may bring work: wait for it before saying this region is idle
        wire_flush();
        while (g_lpop_outstanding) read_reply();
        if (pstack_stop || g_rq_head != g_rq_tail) return;
    }
    send_idle_script();
    char cnt[16];
    snprintf(cnt, sizeof cnt, "%u", POP_COUNT);
    for (;;) {
        const char* bl[] = {"BLMPOP", "5", "1", g_myq, "LEFT", "COUNT", cnt};
        command(7, bl);
        expect(P_BLMPOP);
        wire_flush();
        g_took_items = false;
        while (g_pend_head != g_pend_tail) read_reply();
        if (g_took_items || pstack_stop) return;
        check_idle_call_ran();  // nothing after 5 s: was the IDLE call refused?  Else wait again.
    }
}

// Read every reply still owed: an engine leaves its Redis connection as it found it (the worker
// hands the same relay to the next engine).
static void drain_replies() {
    wire_flush();
    while (g_pend_head != g_pend_tail) read_reply();
}

static void broadcast_exit() {
    char item[32];
    int n = snprintf(item, sizeof item, "1 %d", pstack_exit_code);
    for (int pos = 0; pos < g_nregions; ++pos)
        if (pos != g_my_pos) { g_items[pos].bulk(item, n); g_items[pos].items++; }
    flush_items();
    wire_flush();
    while (g_pend_head != g_pend_tail) read_reply();
}

// A stop that began in this region (handler_exit, a limit) must reach the other regions.
static bool stopped_here() {
    return strcmp(pstack_exit_reason, "quiescence") != 0 && strcmp(pstack_exit_reason, "remote stop") != 0;
}

// ---- the event loop -----------------------------------------------------------------------------
static inline void step_device(uint32_t d) {
    uint32_t t = g_dev_type[d], li = g_dev_local[d];
    pstack_cur_dev = d;
    uint32_t rts = pstack_rts(t, li);
    if (!rts) return;
    uint32_t pin = (uint32_t)__builtin_ctz(rts);
    bool doSend = true;
#if PSTACK_HAS_INDEXED
    unsigned sendIndex = PSTACK_NO_SEND_INDEX;
#else
    unsigned sendIndex = 0;
#endif
    pstack_send(t, li, pin, g_msgbuf, &doSend, &sendIndex);  // a bit without a pin is reported there
    ++g_steps;
    if (__builtin_expect(!doSend, 0)) { ++g_cancelled; rq_push(d); return; }
    ++g_sent;
    if (__builtin_expect(pstack_stop, 0)) return;
    uint32_t slot = g_out_base[d] + pin;
#if PSTACK_HAS_INDEXED
    if (__builtin_expect(pstack_out_indexed[pstack_out_base[t] + pin], 0)) {
        send_indexed(d, t, pin, slot, sendIndex);
        pstack_cur_dev = d;
        if (!pstack_stop && pstack_rts(t, li)) rq_push(d);
        return;
    }
#endif
    if (g_nregions > 1 && g_slot_remote[slot] != g_slot_remote[slot + 1]) {
        uint32_t mt = pstack_out_msg[pstack_out_base[t] + pin];
        char item[PSTACK_MAX_ITEM_CHARS];
        char* p = item;
        *p++ = '0'; *p++ = ' ';
        p = pstack_put_u64(p, d); *p++ = ' ';
        p = pstack_put_u64(p, pin); *p++ = ' ';
        p = pstack_pack_msg(mt, g_msgbuf, p);
        for (uint32_t k = g_slot_remote[slot]; k < g_slot_remote[slot + 1]; ++k) push_item(g_remote[k], item, (size_t)(p - item));
    }
    deliver_local(slot, g_msgbuf);
    // The sender's own ready-to-send changed; look at it again after the others had a turn.
    pstack_cur_dev = d;
    if (pstack_rts(t, li)) rq_push(d);
}

static void run_loop() {
    double t0 = now_seconds();
    const uint32_t POLL_EVERY = 1024;
    uint32_t since_poll = 0;
    while (!pstack_stop) {
        while (g_rq_head != g_rq_tail) {
            uint32_t d = g_rq[g_rq_head++ & g_rq_mask];
            g_inq[d] = 0;
            step_device(d);
            if (pstack_stop) break;
            if (__builtin_expect(g_steps >= g_max_steps, 0)) {
                pstack_stop = 1; pstack_exit_code = 1; pstack_exit_reason = "max-steps";
                break;
            }
            if (++since_poll >= POLL_EVERY) {
                since_poll = 0;
                publish_progress();
                if (g_time_limit > 0 && now_seconds() - t0 > g_time_limit) {
                    pstack_stop = 1; pstack_exit_code = 1; pstack_exit_reason = "time-limit";
                    break;
                }
                if (g_nregions > 1) {
                    net_poll_active();
                    if (pstack_stop) break;
                }
            }
        }
        if (pstack_stop) break;
        if (g_nregions == 1) {
            // Quiescent: OnHardwareIdle rounds until one wakes a device, or enough in a row woke nothing.
            if (PSTACK_HAS_HW_IDLE && g_idle_consecutive < PSTACK_MAX_IDLE_ROUNDS) {
                ++g_idle_consecutive;
                if (hardware_idle_round()) g_idle_consecutive = 0;
                continue;
            }
            pstack_exit_code = PSTACK_IDLE_EXIT_CODE;
            break;
        }
        publish_progress();
        net_wait_idle();
    }
    if (g_nregions > 1 && stopped_here()) broadcast_exit();
}

// ---- results --------------------------------------------------------------------------------------
static void json_string(FILE* f, const char* s) {
    fputc('"', f);
    for (; *s; ++s) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { fputc('\\', f); fputc(c, f); }
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void print_results(bool json, bool states, bool full, double load_s, double run_s) {
    FILE* f = stdout;
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    if (json) {
        fputs("{\"metrics\": {", f);
        fprintf(f, "\"Delivered messages\": %llu, \"Exit code\": %d, \"Sent messages\": %llu, "
                   "\"Cancelled sends\": %llu, \"Hardware idle rounds\": %llu, \"Exit reason\": ",
                (unsigned long long)g_delivered, pstack_exit_code, (unsigned long long)g_sent,
                (unsigned long long)g_cancelled, (unsigned long long)g_idle_rounds);
        json_string(f, pstack_exit_reason);
        fprintf(f, ", \"Remote messages sent\": %llu, \"Remote messages received\": %llu, "
                   "\"Load seconds\": %.6f, \"Run seconds\": %.6f}",
                (unsigned long long)g_remote_sent, (unsigned long long)g_remote_received, load_s, run_s);
        fputs(", \"states\": {", f);
        bool first = true;
        if (states) {
            for (uint32_t d = 0; d < g_ndev; ++d) {
                if (!is_local(d)) continue;
                fputs(first ? "\n" : ",\n", f);
                first = false;
                json_string(f, pstack_dev_names[d]);
                fputs(": ", f);
                pstack_print_state(f, g_dev_type[d], g_dev_local[d], 1, full);
            }
        }
        fputs("}}\n", f);
    } else {
        fprintf(f, "Metric [Delivered messages]: %llu\n", (unsigned long long)g_delivered);
        fprintf(f, "Metric [Exit code]: %d\n", pstack_exit_code);
        if (states) {
            for (uint32_t d = 0; d < g_ndev; ++d) {
                if (!is_local(d)) continue;
                fprintf(f, "State [%s]: ", pstack_dev_names[d]);
                pstack_print_state(f, g_dev_type[d], g_dev_local[d], 0, full);
                fputc('\n', f);
            }
        }
    }
    fflush(f);
}

static void usage() {
    pstack_fatal(PSTACK_STATUS_USAGE,
        "usage: engine INSTANCE [--json] [--no-states] [--full-state] [--level L] [--max-steps N] "
        "[--time-limit S] [--pid P] [--prefix K] [--region R] [--regions R0,R1,...] [--skip-replies N] "
        "[--command-fd FD] [--parent-pid P] [--progress-fd FD] [--cpu-limit S] [--memory-limit MIB] [--file-limit MIB]");
}

int main(int argc, char** argv) {
    install_crash_handlers();
    pstack_log_stream = stdout;
    const char* instance = nullptr;
    bool json = false, states = true, full = false;
    int skip_replies = 0;
    int region = 0;
    const char* region_list = nullptr;
    long parent = 0;
    int progress_fd = -1;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--no-states")) states = false;
        else if (!strcmp(a, "--full-state")) full = true;
        else if (!strcmp(a, "--level") && more) pstack_log_level = atoi(argv[++i]);
        else if (!strcmp(a, "--max-steps") && more) {
            g_max_steps = strtoull(argv[++i], nullptr, 10);
            if (!g_max_steps) g_max_steps = UINT64_MAX;
        }
        else if (!strcmp(a, "--time-limit") && more) g_time_limit = atof(argv[++i]);
        else if (!strcmp(a, "--pid") && more) g_pid = atol(argv[++i]);
        else if (!strcmp(a, "--prefix") && more) g_prefix = argv[++i];
        else if (!strcmp(a, "--region") && more) region = atoi(argv[++i]);
        else if (!strcmp(a, "--regions") && more) region_list = argv[++i];
        else if (!strcmp(a, "--skip-replies") && more) skip_replies = atoi(argv[++i]);
        else if (!strcmp(a, "--app-file") && more) pstack_app_file = argv[++i];
        else if (!strcmp(a, "--command-fd") && more) g_out_fd = atoi(argv[++i]);
        else if (!strcmp(a, "--progress-fd") && more) progress_fd = atoi(argv[++i]);
        else if (!strcmp(a, "--parent-pid") && more) parent = atol(argv[++i]);
        else if (!strcmp(a, "--cpu-limit") && more) g_cpu_limit = atol(argv[++i]);
        else if (!strcmp(a, "--memory-limit") && more) g_memory_limit_mib = atol(argv[++i]);
        else if (!strcmp(a, "--file-limit") && more) g_file_limit_mib = atol(argv[++i]);
        else if (a[0] != '-' && !instance) instance = a;
        else usage();
    }
    if (!instance) usage();
    follow_parent(parent);
    apply_limits();
    if (progress_fd >= 0) map_progress(progress_fd);
    if (json) pstack_log_stream = stderr;
    // regions
    g_nregions = 1;
    if (region_list) for (const char* p = region_list; *p; ++p) if (*p == ',') ++g_nregions;
    g_regions = (int*)xmalloc(sizeof(int) * g_nregions);
    if (region_list) {
        const char* p = region_list;
        for (int i = 0; i < g_nregions; ++i) { g_regions[i] = atoi(p); p = strchr(p, ','); if (p) ++p; }
    } else {
        g_regions[0] = region;
    }
    g_region = region;
    g_my_pos = region_pos((uint32_t)region);
    if (g_my_pos < 0) pstack_fatal(PSTACK_STATUS_USAGE, "region %d is not in the region list", region);
    if (g_nregions > 1) {
        snprintf(g_myq, sizeof g_myq, "%s%ld.%d", g_prefix, g_pid, region);
        snprintf(g_active_key, sizeof g_active_key, "%s%ld.active", g_prefix, g_pid);
        snprintf(g_seq_key, sizeof g_seq_key, "%s%ld.calls", g_prefix, g_pid);
        g_items = new OutBuf[g_nregions];
        g_rbuf = (char*)xmalloc(g_rcap);
        struct stat st;
        if (fstat(g_out_fd, &st) != 0)
            pstack_fatal(PSTACK_STATUS_USAGE, "a multi-region run needs fd %d connected to Redis (through socat)", g_out_fd);
        for (int i = 0; i < skip_replies; ++i) { expect(P_INT); read_reply(); }
        // Loaded once, called by SHA on every idle transition; the reply is read after loading
        // the instance, by when it has long arrived.
        const char* load[] = {"SCRIPT", "LOAD", IDLE_SCRIPT};
        command(3, load);
        expect(P_SCRIPT);
        wire_flush();
    }
    double t0 = now_seconds();
    load_instance(instance);
    double t1 = now_seconds();
    if (g_nregions > 1) {
        read_reply();
        if (!g_idle_sha[0]) pstack_fatal(PSTACK_STATUS_IO, "Redis did not load the termination script");
    }
    // start-up: every local device is initialised before anything is sent (all of them, even
    // after a handler_exit, as graph_schema's simulators do)
    for (uint32_t d = 0; d < g_ndev; ++d) {
        if (!is_local(d)) continue;
        pstack_cur_dev = d;
        pstack_init(g_dev_type[d], g_dev_local[d]);
    }
    for (uint32_t d = 0; d < g_ndev && !pstack_stop; ++d) {
        if (!is_local(d)) continue;
        pstack_cur_dev = d;
        if (pstack_rts(g_dev_type[d], g_dev_local[d])) rq_push(d);
    }
    if (!pstack_stop) run_loop();
    else if (g_nregions > 1 && stopped_here()) broadcast_exit();
    if (g_nregions > 1) drain_replies();
    double t2 = now_seconds();
    publish_progress();
    pstack_cur_handler = "output";
    if (pstack_log_stream) fflush(pstack_log_stream);
    print_results(json, states, full, t1 - t0, t2 - t1);
    return PSTACK_STATUS_OK;
}

#endif  // PSTACK_ENGINE_HPP
