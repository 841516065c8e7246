// pstack-celery engine runtime: live snapshots and resuming from a checkpoint (docs/persistence.md).
//
// A snapshot request is an item (PSTACK_ITEM_SNAPSHOT, "9 <token> <mode> <timeout>") pushed to
// every region's queue at once.  A region takes it like any item; from then on it *holds* every
// element it pops (handled after the pause, not before), and at its next safe point (the end of a
// poll, or a wake-up from the idle wait) it pauses: it pushes what it has sent, reads every reply
// it is owed, writes its dump to `<prefix><pid>.snap.<token>.<region>` and waits (BLPOP, bounded)
// for `<prefix><pid>.resume.<token>.<region>`.  Why this is a consistent cut: a message handled
// before the request was pushed before it (each queue is FIFO and the request went to every queue
// in one script), so its sender's cut, which is later, includes the send; a message sent before a
// sender's cut but not handled before the receiver's is behind the request: held by the receiver
// (in its dump) or still in the receiver's queue, which the requester reads while all are paused.
//
// A dump (little-endian): "PSNP" u32 version, u32 region, ndev, ntypes, ninputs, ready devices;
// u64 delivered, sent, cancelled, steps, remote_sent, remote_received, idle_rounds; u32 idle_woke;
// u32 idle_consecutive (one region: OnHardwareIdle rounds in a row that woke nothing; a split keeps
// that count in <pid>.idle); u32 region[ndev]; per device type u32 count, u32 size, the state
// array; per input pin u32 count, u32 size, the edge state array; the v4 supervisor: u32 kind (0:
// not in this region or none, 1: its state follows as bytes, 2: its state is not plain data and
// cannot be copied), u32 size, the state's bytes, u64 supervisor receives, u64 supervisor sends;
// u32 held elements, each u32 length + bytes; u32 length + a JSON text {"metrics": {...},
// "states": {...}} (states only when the request's mode asks for them).
//
// A process of one region has no Redis wire: its engine, started with --snapshot-dir, takes the
// request as SIGUSR1 instead and writes the same dump to a file (pstack_snapshot_signal.hpp).
//
// `--resume FILE` (written by pstack_tasks/fleet/persistence/resume_file.py): "PSRS" u32 version,
// u32 n; n dumps (u32 length + bytes); then per dump the elements that were in its region's queue
// (u32 count, each u32 length + bytes); u32 OnHardwareIdle count of <pid>.idle.  Each region copies
// the state of its devices (and of the edges into them) from the dump of the region that held them
// then, so the region map may differ; the lowest region takes the old counters; every in-flight
// item is handled by every region, delivered only to destinations that were in the item's old region.
#ifndef PSTACK_SNAPSHOT_HPP
#define PSTACK_SNAPSHOT_HPP

#ifndef PSTACK_ITEM_SNAPSHOT
#error "the generated engine defines PSTACK_ITEM_SNAPSHOT (pstack_tasks.protocol.ItemKind)"
#endif

static const uint32_t PSTACK_SNAPSHOT_VERSION = 2;

struct PstackSnap {
    bool requested = false;
    char token[48] = "";
    int mode = 0;                 // 0: scalar states, 1: full states, 2: no JSON states (a checkpoint)
    double timeout = 10;          // the longest pause, seconds
    PstackOutBuf held;            // elements popped after the request: u32 length + bytes each
    uint32_t nheld = 0;
    const uint32_t* old_region = nullptr;  // resuming: each device's region in the checkpoint
    int old_r = -1;                        // resuming: the region whose in-flight items are handled now
};

static PstackSnap pstack_snap;

// ---- taking the request ------------------------------------------------------------------------
// "9 <token> <mode> <timeout>"; p is after the kind.
static void snapshot_request(const char* p) {
    p = pstack_skip_ws(p);
    size_t n = strcspn(p, " \n");
    if (n == 0 || n >= sizeof pstack_snap.token) pstack_fatal(PSTACK_STATUS_IO, "bad snapshot item: %.80s", p);
    memcpy(pstack_snap.token, p, n);
    pstack_snap.token[n] = 0;
    int64_t mode = 0;
    p = pstack_get_i64(p + n, &mode);
    pstack_snap.mode = (int)mode;
    pstack_snap.timeout = atof(p);
    if (pstack_snap.timeout <= 0) pstack_snap.timeout = 10;
    pstack_snap.requested = true;
}

// Called for every element popped: after a request, the element waits for the pause's end.
static bool pstack_snap_hold(const char* s, size_t n) {
    if (!pstack_snap.requested) return false;
    uint32_t len = (uint32_t)n;
    pstack_snap.held.put((const char*)&len, 4);
    pstack_snap.held.put(s, n);
    ++pstack_snap.nheld;
    return true;
}

// ---- the dump ----------------------------------------------------------------------------------
static void put_u32(PstackOutBuf& b, uint32_t v) { b.put((const char*)&v, 4); }
static void put_u64(PstackOutBuf& b, uint64_t v) { b.put((const char*)&v, 8); }

static uint32_t local_edge_count() { return pstack.slot_edges[pstack.out_base[pstack.ndev]]; }

static void dump_arrays(PstackOutBuf& b) {
    for (uint32_t t = 0; t < PSTACK_NTYPES; ++t) {
        uint32_t count = 0;
        for (uint32_t d = 0; d < pstack.ndev; ++d) count += pstack.dev_type[d] == t;
        put_u32(b, count);
        put_u32(b, pstack_state_size[t]);
        b.put(pstack.state_base[t], (size_t)count * pstack_state_size[t]);
    }
    uint32_t ne = local_edge_count();
    for (uint32_t i = 0; i < PSTACK_NINPUTS_TOTAL; ++i) {
        uint32_t count = 0;  // this region's edges into pin i cover entries [0, count)
        if (pstack_edge_state_size[i])
            for (uint32_t e = 0; e < ne; ++e)
                if (pstack.edges[e].input == i && pstack.edges[e].eidx + 1 > count) count = pstack.edges[e].eidx + 1;
        put_u32(b, count);
        put_u32(b, pstack_edge_state_size[i]);
        b.put(pstack.edge_state_base[i], (size_t)count * pstack_edge_state_size[i]);
    }
}

// The supervisor's part (pstack_supervisor_run.hpp writes it where the supervisor runs).
static void dump_supervisor(PstackOutBuf& b) {
#if PSTACK_HAS_SUPERVISOR
    supervisor_dump(b);
#else
    put_u32(b, 0);
    put_u32(b, 0);
    put_u64(b, 0);
    put_u64(b, 0);
#endif
}

static void dump_json(PstackOutBuf& b) {
    char* text = nullptr;
    size_t len = 0;
    FILE* f = open_memstream(&text, &len);
    if (!f) pstack_fatal(PSTACK_STATUS_IO, "out of memory for a snapshot");
    print_json_metrics(f, 0, 0);
    fputs(", \"states\": {", f);
    if (pstack_snap.mode != 2) print_json_states(f, pstack_snap.mode == 1);
    fputs("}}", f);
    fclose(f);
    put_u32(b, (uint32_t)len);
    b.put(text, len);
    free(text);
}

static void build_dump(PstackOutBuf& b) {
    b.put("PSNP", 4);
    uint32_t head[] = {PSTACK_SNAPSHOT_VERSION, (uint32_t)pstack.region, pstack.ndev, PSTACK_NTYPES,
                       PSTACK_NINPUTS_TOTAL, pstack.rq_tail - pstack.rq_head};
    for (uint32_t v : head) put_u32(b, v);
    uint64_t counts[] = {pstack.delivered, pstack.sent, pstack.cancelled, pstack.steps, pstack.remote_sent,
                         pstack.remote_received, pstack.idle_rounds};
    for (uint64_t v : counts) put_u64(b, v);
    put_u32(b, pstack.idle_woke ? 1 : 0);
    put_u32(b, pstack.nregions == 1 ? (uint32_t)pstack.idle_consecutive : 0);
    b.put((const char*)pstack.dev_region, 4ull * pstack.ndev);
    dump_arrays(b);
    dump_supervisor(b);
    put_u32(b, pstack_snap.nheld);
    b.put(pstack_snap.held.data, pstack_snap.held.len);
    dump_json(b);
}

// ---- the pause ---------------------------------------------------------------------------------
static void handle_element_items(char* s, size_t n);

// SET the dump (binary: written as one bulk), then wait for the requester's word, bounded.
static void send_dump_and_wait() {
    char key[400], resume[400], ex[32], wait[32];
    snprintf(key, sizeof key, "%s%ld.snap.%s.%d", pstack.prefix, pstack.pid, pstack_snap.token, pstack.region);
    snprintf(resume, sizeof resume, "%s%ld.resume.%s.%d", pstack.prefix, pstack.pid, pstack_snap.token, pstack.region);
    PstackOutBuf dump;
    build_dump(dump);
    snprintf(ex, sizeof ex, "%d", (int)pstack_snap.timeout + 60);
    pstack.wire.put("*5\r\n", 4);
    pstack.wire.bulk("SET");
    pstack.wire.bulk(key);
    pstack.wire.bulk(dump.data, dump.len);
    pstack.wire.bulk("EX");
    pstack.wire.bulk(ex);
    expect(P_INT);
    free(dump.data);
    snprintf(wait, sizeof wait, "%.3f", pstack_snap.timeout + 2);
    const char* bl[] = {"BLPOP", resume, wait};
    command(3, bl);
    expect(P_INT);
    wire_flush();
    read_pending_replies();
}

// At a safe point (no handler runs, the loop's working copy is stored): pause if asked, then handle
// what was held, in order.  Returns true if anything was held (the caller reloads its copy).
static bool snapshot_pause_if_requested() {
    bool any = false;
    while (pstack_snap.requested && !pstack.stop) {
        any = true;
        close_elements();
        flush_items();            // what this region sent is in Redis before it says it paused
        wire_flush();
        read_pending_replies();   // a pop's elements are held too
        send_dump_and_wait();
        pstack_single_pops_left = PSTACK_SINGLE_POPS_AFTER_PAUSE;  // the pause must not merge rounds
        pstack_snap.requested = false;
        PstackOutBuf held = pstack_snap.held;
        uint32_t nheld = pstack_snap.nheld;
        pstack_snap.held = PstackOutBuf();
        pstack_snap.nheld = 0;
        size_t off = 0;
        for (uint32_t k = 0; k < nheld; ++k) {
            uint32_t len;
            memcpy(&len, held.data + off, 4);
            char* s = held.data + off + 4;
            off += 4ull + len;
            if (pstack_snap_hold(s, len)) continue;  // a second request among them: held again
            char save = s[len];
            s[len] = 0;
            handle_element_items(s, len);
            s[len] = save;
        }
        free(held.data);
    }
    return any;
}

// Each newline-separated item of an element.
static void handle_element_items(char* s, size_t n) {
    char* end = s + n;
    for (;;) {
        char* nl = (char*)memchr(s, '\n', (size_t)(end - s));
        if (nl) *nl = 0;
        handle_item(s);
        if (nl) *nl = '\n';
        if (!nl) return;
        s = nl + 1;
    }
}

// ---- resuming from a checkpoint -----------------------------------------------------------------
struct ResumeReader {
    const char* p;
    const char* end;
    const char* path;
    uint32_t u32() { uint32_t v; need(4); memcpy(&v, p, 4); p += 4; return v; }
    uint64_t u64() { uint64_t v; need(8); memcpy(&v, p, 8); p += 8; return v; }
    const char* take(size_t n) { need(n); const char* q = p; p += n; return q; }
    void need(size_t n) {
        if ((size_t)(end - p) < n) pstack_fatal(PSTACK_STATUS_USAGE, "checkpoint file %s is truncated", path);
    }
};

struct ResumeDump {
    uint32_t region, nheld;
    uint64_t counts[7];
    bool woke;
    uint32_t idle_consecutive;
    uint32_t sup_kind, sup_size;  // the supervisor's part: kind (0, 1, 2: see the dump), its state's size ...
    const char* sup_state;        // ... and bytes
    uint64_t sup_counts[2];       // its receives and sends
    const uint32_t* old_region;
    const char* held;     // nheld elements: u32 length + bytes
};

static void resume_arrays(ResumeReader& in, const ResumeDump& dump) {
    for (uint32_t t = 0; t < PSTACK_NTYPES; ++t) {
        uint32_t count = in.u32(), size = in.u32();
        const char* data = in.take((size_t)count * size);
        if (size != pstack_state_size[t]) pstack_fatal(PSTACK_STATUS_USAGE, "checkpoint %s: state sizes differ from this engine's", in.path);
        for (uint32_t d = 0; d < pstack.ndev; ++d) {
            if (pstack.dev_type[d] != t || !is_local(d) || dump.old_region[d] != dump.region) continue;
            uint32_t li = pstack.dev_local[d];
            if (li < count) memcpy(pstack.state_base[t] + (size_t)li * size, data + (size_t)li * size, size);
        }
    }
    uint32_t ne = local_edge_count();
    for (uint32_t i = 0; i < PSTACK_NINPUTS_TOTAL; ++i) {
        uint32_t count = in.u32(), size = in.u32();
        const char* data = in.take((size_t)count * size);
        if (!size) continue;
        for (uint32_t e = 0; e < ne; ++e) {
            const PstackEdge& edge = pstack.edges[e];
            if (edge.input != i || edge.eidx >= count || dump.old_region[edge.dst] != dump.region) continue;
            memcpy(pstack.edge_state_base[i] + (size_t)edge.eidx * size, data + (size_t)edge.eidx * size, size);
        }
    }
}

static ResumeDump read_dump(ResumeReader& in) {
    uint32_t len = in.u32();
    ResumeReader d{in.take(len), nullptr, in.path};
    d.end = d.p + len;
    if (memcmp(d.take(4), "PSNP", 4) || d.u32() != PSTACK_SNAPSHOT_VERSION)
        pstack_fatal(PSTACK_STATUS_USAGE, "checkpoint %s: not a snapshot of this engine's version", in.path);
    ResumeDump out{};
    out.region = d.u32();
    uint32_t ndev = d.u32(), ntypes = d.u32(), ninputs = d.u32();
    d.u32();  // ready devices: recomputed from the states
    if (ndev != pstack.ndev || ntypes != PSTACK_NTYPES || ninputs != PSTACK_NINPUTS_TOTAL)
        pstack_fatal(PSTACK_STATUS_USAGE, "checkpoint %s is of another graph (%u devices, this one has %u)", in.path, ndev, pstack.ndev);
    for (uint64_t& c : out.counts) c = d.u64();
    out.woke = d.u32() != 0;
    out.idle_consecutive = d.u32();
    out.old_region = (const uint32_t*)d.take(4ull * ndev);
    resume_arrays(d, out);
    out.sup_kind = d.u32();
    out.sup_size = d.u32();
    out.sup_state = d.take(out.sup_size);
    out.sup_counts[0] = d.u64();
    out.sup_counts[1] = d.u64();
    out.nheld = d.u32();
    out.held = d.p;
    return out;
}

// One in-flight item of old region `r`: delivered only where its destinations were then.
static void resume_item(char* s) {
    const char* p = pstack_skip_ws(s);
#if PSTACK_HAS_SUPERVISOR  // supervisor hook (pstack_supervisor_run.hpp): its replies, broadcasts, turns
    if (supervisor_resume_item(p, s, pstack_snap.old_region, (uint32_t)pstack_snap.old_r)) return;
#endif
    if (*p == PSTACK_ITEM_MESSAGE) {
        int64_t src, port, nfields;
        const char* q = read_item_source(p + 1, s, &src, &port);
        q = pstack_get_i64(q, &nfields);
        unpack_item_message((uint32_t)src, (uint32_t)port, q);
#if PSTACK_HAS_SUPERVISOR  // supervisor hook: a message to the supervisor
        if ((uint32_t)port == pstack_sup_out_pin[pstack.dev_type[src]]) { supervisor_resume_message((uint32_t)src); return; }
#endif
        uint32_t slot = pstack.out_base[src] + (uint32_t)port;
        for (const PstackEdge* e = pstack.edges + pstack.slot_edges[slot]; e != pstack.edges + pstack.slot_edges[slot + 1]; ++e)
            if (pstack_snap.old_region[e->dst] == (uint32_t)pstack_snap.old_r) deliver_one(e, pstack.msgbuf);
    } else if (*p == PSTACK_ITEM_HARDWARE_IDLE) {
        for (uint32_t d = 0; d < pstack.ndev; ++d) {
            if (!is_local(d) || pstack_snap.old_region[d] != (uint32_t)pstack_snap.old_r) continue;
            pstack.cur_dev = d;
            pstack_hw_idle(pstack.dev_type[d], pstack.dev_local[d]);
            if (pstack_rts(pstack.dev_type[d], pstack.dev_local[d])) { rq_push(d); pstack.idle_woke = true; }
        }
    } else if (*p == PSTACK_ITEM_SNAPSHOT) {
        // a request that was pending when the checkpoint was taken: its requester has gone
#if PSTACK_HAS_INDEXED
    } else if (*p == PSTACK_ITEM_INDEXED_MESSAGE) {  // one edge: delivered by the one region that holds it
        int64_t src, port, k, nfields;
        const char* q = read_item_source(p + 1, s, &src, &port);
        q = pstack_get_i64(q, &k);
        q = pstack_get_i64(q, &nfields);
        uint32_t slot = pstack.out_base[src] + (uint32_t)port;
        if (k < 0 || (uint64_t)k >= pstack.idx_off[slot + 1] - pstack.idx_off[slot])
            pstack_fatal(PSTACK_STATUS_USAGE, "bad indexed item in a checkpoint: %.80s", s);
        const PstackEdge* e = pstack.idx_edges + pstack.idx_off[slot] + k;
        if (is_local(e->dst)) { unpack_item_message((uint32_t)src, (uint32_t)port, q); deliver_one(e, pstack.msgbuf); }
#endif
    } else if (*p == PSTACK_ITEM_STOP || *p == PSTACK_ITEM_QUIESCENT) {
        handle_item(s);
    } else {
        pstack_fatal(PSTACK_STATUS_USAGE, "a checkpoint with this item in flight cannot be resumed: %.80s", s);
    }
}

static bool resume_has_round(const char* elems, uint32_t n) {
    const char* p = elems;
    for (uint32_t k = 0; k < n; ++k) {
        uint32_t len;
        memcpy(&len, p, 4);
        for (const char* c = p + 4; c < p + 4 + len; ++c)
            if (*c == PSTACK_ITEM_HARDWARE_IDLE && (c == p + 4 || c[-1] == '\n')) return true;
        p += 4ull + len;
    }
    return false;
}

// Every element (u32 length + bytes, n of them) of old region r, item by item.
static const char* resume_elements(const char* p, uint32_t n, uint32_t r) {
    pstack_snap.old_r = (int)r;
    for (uint32_t k = 0; k < n && !pstack.stop; ++k) {
        uint32_t len;
        memcpy(&len, p, 4);
        char* copy = (char*)xmalloc(len + 1ull);
        memcpy(copy, p + 4, len);
        copy[len] = 0;
        char* s = copy;
        for (;;) {
            char* nl = strchr(s, '\n');
            if (nl) *nl = 0;
            resume_item(s);
            if (!nl || pstack.stop) break;
            s = nl + 1;
        }
        free(copy);
        p += 4ull + len;
    }
    return p;
}

static const char* skip_elements(const char* p, uint32_t n) {
    for (uint32_t k = 0; k < n; ++k) { uint32_t len; memcpy(&len, p, 4); p += 4ull + len; }
    return p;
}

static void restore_counters(const ResumeDump* dumps, uint32_t n, const bool* round) {
    uint64_t rounds = 0;
    for (uint32_t k = 0; k < n; ++k) {
        uint64_t r = dumps[k].counts[6] + (round[k] ? 1 : 0);
        if (r > rounds) rounds = r;
        if (dumps[k].woke) pstack.idle_woke = true;
        if (pstack.my_pos != 0) continue;  // the lowest region carries the counts so far
        pstack.delivered += dumps[k].counts[0]; pstack.sent += dumps[k].counts[1];
        pstack.cancelled += dumps[k].counts[2]; pstack.steps += dumps[k].counts[3];
        pstack.remote_sent += dumps[k].counts[4]; pstack.remote_received += dumps[k].counts[5];
    }
    pstack.idle_rounds = rounds;
}

#if PSTACK_HAS_SUPERVISOR
// The supervisor's state from the dump of the region that held it, and the counts of its calls.
static void resume_supervisor(const ResumeDump* dumps, uint32_t n, const char* path) {
    const ResumeDump* held = nullptr;
    uint64_t received = 0, sent = 0;
    for (uint32_t k = 0; k < n; ++k) {
        if (dumps[k].sup_kind) held = &dumps[k];
        received += dumps[k].sup_counts[0];
        sent += dumps[k].sup_counts[1];
    }
    if (!held) pstack_fatal(PSTACK_STATUS_USAGE, "checkpoint %s holds no supervisor state", path);
    if (held->sup_kind != 1)
        pstack_fatal(PSTACK_STATUS_USAGE, "checkpoint %s: the supervisor's state is not plain data (it has members such "
                     "as std::vector or pointers) and cannot be resumed", path);
    supervisor_restore(held->sup_state, held->sup_size, pstack.my_pos == 0 ? received : 0, pstack.my_pos == 0 ? sent : 0);
}
#endif

// Instead of start_devices: states from the checkpoint, ready devices from them, then the items in flight.
static void resume_from(const char* path, char** file_data) {
    FILE* f = fopen(path, "rb");
    if (!f) pstack_fatal(PSTACK_STATUS_USAGE, "cannot open checkpoint file %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char* data = (char*)xmalloc((size_t)size + 1);
    if (fread(data, 1, (size_t)size, f) != (size_t)size) pstack_fatal(PSTACK_STATUS_USAGE, "cannot read checkpoint file %s", path);
    fclose(f);
    *file_data = data;
    ResumeReader in{data, data + size, path};
    if (memcmp(in.take(4), "PSRS", 4) || in.u32() != PSTACK_SNAPSHOT_VERSION)
        pstack_fatal(PSTACK_STATUS_USAGE, "%s is not a checkpoint file of this engine's version", path);
    uint32_t n = in.u32();
    ResumeDump* dumps = (ResumeDump*)xmalloc(sizeof(ResumeDump) * (n + 1ull));
    for (uint32_t k = 0; k < n; ++k) dumps[k] = read_dump(in);
    const char** queued = (const char**)xmalloc(sizeof(char*) * (n + 1ull));
    uint32_t* nqueued = (uint32_t*)xmalloc(4ull * (n + 1));
    bool* round = (bool*)xmalloc(n + 1ull);
    for (uint32_t k = 0; k < n; ++k) {
        nqueued[k] = in.u32();
        queued[k] = in.p;
        in.p = skip_elements(in.p, nqueued[k]);
        round[k] = resume_has_round(dumps[k].held, dumps[k].nheld) || resume_has_round(queued[k], nqueued[k]);
    }
    restore_counters(dumps, n, round);
    uint32_t idle_count = in.u32();  // <pid>.idle: OnHardwareIdle rounds in a row that woke nothing
    for (uint32_t k = 0; k < n; ++k)  // a one-region checkpoint kept it in its engine
        if (dumps[k].idle_consecutive > idle_count) idle_count = dumps[k].idle_consecutive;
#if PSTACK_HAS_SUPERVISOR  // supervisor hook (pstack_supervisor_run.hpp): its state, without OnInit
    resume_supervisor(dumps, n, path);
#endif
    if (pstack.nregions == 1) pstack.idle_consecutive = (int)idle_count;
    else if (pstack.my_pos == 0 && idle_count) {
        char v[16];
        snprintf(v, sizeof v, "%u", idle_count);
        const char* set[] = {"SET", pstack.idle_key, v};
        command(3, set);
        expect(P_INT);
        wire_flush();
    }
    for (uint32_t d = 0; d < pstack.ndev && !pstack.stop; ++d) {
        if (!is_local(d)) continue;
        pstack.cur_dev = d;
        if (pstack_rts(pstack.dev_type[d], pstack.dev_local[d])) rq_push(d);
    }
    for (uint32_t k = 0; k < n && !pstack.stop; ++k) {
        pstack_snap.old_region = dumps[k].old_region;
        resume_elements(dumps[k].held, dumps[k].nheld, dumps[k].region);
        resume_elements(queued[k], nqueued[k], dumps[k].region);
    }
    pstack_snap.old_region = nullptr;
#if PSTACK_HAS_SUPERVISOR  // supervisor hook: a message from here to the supervisor was in flight
    if (!pstack.stop && pstack_sup_awaiting) supervisor_await_done();
#endif
}

#endif  // PSTACK_SNAPSHOT_HPP
