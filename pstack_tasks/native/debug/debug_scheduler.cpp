// pstack-celery step debugger: the scheduler of a debug engine (docs/debugging.md, "The step debugger").
//
// Appended (with debug_commands.cpp after it: the commands and main) to the generated engine of a
// graph type, whose own main is renamed away (the source
// starts with `#define main pstack_engine_main`), so the handlers, tables and dispatch functions
// are the very ones psim runs.  The runtime's event loop is not used: this file keeps its own
// scheduler, one event per step, so that Python can stop between any two of them:
//   * a *send*: a ready device's OnSend runs; the message joins the pending queue of every region
//     holding one of its destinations (it is "in flight");
//   * a *delivery*: the oldest pending message of a region is delivered to its destinations there;
//   * an *idle round*: the whole graph is quiescent, OnHardwareIdle runs on every device.
// Deliveries go first, then sends in FIFO order, so one region runs its events in the same order
// as psim's engine (which delivers every message at once after its send).  A split is simulated
// here, in one process: the instance is loaded as one region and the real region of each device
// comes from a file; each region has its own ready queue and pending queue.
//
// Python drives it over stdin/stdout, one command a line; every reply ends with a line that
// starts with '.'; handler log lines are captured per event (pstack_tasks/native/debug/channel.py).
// Fatal errors (a failed assert, a crash) print the runtime's one error line on stderr and exit.
#undef main
#include <algorithm>
#include <deque>
#include <string>
#include <vector>

struct DbgMsg {            // a message in flight to one region
    uint64_t seq;
    uint32_t src, pin;
    int64_t index;         // the edge of an indexed send, else -1
    bool requeue_sender;   // the sender looks at its ReadyToSend again when this is delivered
    bool injected;
    char bytes[PSTACK_MAX_MSG_SIZE + 8];  // the message struct
};

// Triggers when its comparison becomes true (it was false before the event): a breakpoint that
// holds where the session stopped does not stop the next event again.
struct DbgBreak { int id; uint32_t dev, off; char code; int op; double fval; int64_t ival; uint64_t uval; bool held; };

// One event, kept raw and put into words only if it is reported (a long run reports its last ones).
enum DbgKind : uint8_t { K_START, K_SEND, K_CANCEL, K_DELIVER, K_IDLE, K_SUPERVISOR_IDLE, K_QUIESCENT };
static const char* const DBG_KIND_NAMES[] = {"start", "send", "cancel", "deliver", "idle", "supervisor-idle",
                                             "quiescent"};
static const int64_t DBG_NO_EDGE = -2;        // an indexed send on a pin without edges
static const int64_t DBG_TO_SUPERVISOR = -3;  // a send on a SupervisorOutPin (events.py: TO_SUPERVISOR)

struct DbgRec {
    DbgKind kind;
    bool end;               // the run ended in this event: end_code, end_reason
    int end_code;
    const char* end_reason;
    int32_t pos;            // the region position (-1: the whole graph)
    uint32_t src, pin;      // the sender (idle: src is the round)
    int64_t index;          // the edge of an indexed send, -1, DBG_NO_EDGE or DBG_TO_SUPERVISOR (idle: woke)
    uint32_t ndst;          // destinations: of a send, all (0 if the run stopped); of a delivery, those reached
    char msg[PSTACK_MAX_MSG_SIZE + 8];
    std::string logs;       // handler log lines, '\n'-terminated
};

static std::vector<uint32_t> dbg_region;               // per device: the position of its region
static std::vector<std::deque<uint32_t>> dbg_ready;    // per region position: devices that may send
static std::vector<std::deque<DbgMsg>> dbg_inbox;      // per region position: messages in flight
static std::vector<DbgBreak> dbg_breaks;
// The reserved external __halt__: a message delivered to it ends the run with its `code` field.
static int64_t dbg_halt_dev = -1;
static int64_t dbg_halt_off = -1;  // the offset of `code` in its message; -1: none (code 0)
static char dbg_halt_code = 'i';
static uint64_t dbg_seq = 0;
static size_t dbg_rr = 0;                              // the next region a send turn looks at first
static bool dbg_ended = false;
static int dbg_break_hit = -1;
static std::string dbg_logs;                           // handler log lines of the event running now
static std::vector<DbgRec> dbg_ring;                   // the last events of a command: a ring ...
static size_t dbg_ring_first = 0, dbg_ring_count = 0;  // ... from dbg_ring_first, dbg_ring_count of them
static DbgRec dbg_unkept;                              // an event when none is kept
static size_t dbg_report_max = 0;
static uint64_t dbg_report_dropped = 0;

static ssize_t dbg_log_write(void*, const char* buf, size_t n) { dbg_logs.append(buf, n); return (ssize_t)n; }

// Keep the last `keep` events of the command that starts now.
static void dbg_keep_events(size_t keep) {
    dbg_report_max = keep;
    if (dbg_ring.size() < keep) dbg_ring.resize(keep);
    dbg_ring_first = dbg_ring_count = 0;
    dbg_report_dropped = 0;
}

static DbgRec& dbg_next_rec() {
    if (dbg_report_max == 0) { ++dbg_report_dropped; return dbg_unkept; }
    if (dbg_ring_count < dbg_report_max) return dbg_ring[(dbg_ring_first + dbg_ring_count++) % dbg_report_max];
    DbgRec& r = dbg_ring[dbg_ring_first];
    dbg_ring_first = (dbg_ring_first + 1) % dbg_report_max;
    ++dbg_report_dropped;
    return r;
}

// Record the event that just ran (its message in msgbuf), with the log lines it printed; and the end
// of the run if a handler stopped it (a v4 supervisor's OnStop runs then, its lines going with it).
static void dbg_event(DbgKind kind, int32_t pos, uint32_t src, uint32_t pin, int64_t index, uint32_t ndst) {
    DbgRec& r = dbg_next_rec();
    r.kind = kind; r.pos = pos; r.src = src; r.pin = pin; r.index = index; r.ndst = ndst; r.end = false;
    if (kind == K_SEND || kind == K_DELIVER) memcpy(r.msg, pstack.msgbuf, sizeof r.msg);
    r.logs.swap(dbg_logs);
    dbg_logs.clear();
    if (pstack.stop && !dbg_ended) {
        dbg_ended = true;
#if PSTACK_HAS_SUPERVISOR
        supervisor_stop();
        r.logs += dbg_logs;
        dbg_logs.clear();
#endif
        r.end = true; r.end_code = pstack.exit_code; r.end_reason = pstack.exit_reason;
    }
}

// ---- events, as reply lines: "E <kind> <region> <src> <pin> <index> <ndst> <dst>... F <nfields> <f>..."
static std::string dbg_fields(uint32_t src, uint32_t pin, const char* msg) {
    char text[PSTACK_MAX_ITEM_CHARS];
    uint32_t mt = pstack_out_msg[pstack_out_base[pstack.dev_type[src]] + pin];
    char* end = pstack_pack_msg(mt, msg, text);
    return std::string(text, (size_t)(end - text));
}

// The destinations of (slot, index) in region position `pos` (UINT32_MAX: every region), at most `limit`.
static std::string dbg_dsts_of(uint32_t slot, int64_t index, uint32_t pos, int* n, uint32_t limit = UINT32_MAX) {
    std::string out;
    *n = 0;
#if PSTACK_HAS_INDEXED
    if (index >= 0) {
        const PstackEdge* e = pstack.idx_edges + pstack.idx_off[slot] + index;
        if ((pos == UINT32_MAX || dbg_region[e->dst] == pos) && limit) { *n = 1; out = " " + std::to_string(e->dst); }
        return out;
    }
#endif
    if (index < -1) return out;
    for (uint32_t k = pstack.slot_edges[slot]; k < pstack.slot_edges[slot + 1] && (uint32_t)*n < limit; ++k) {
        uint32_t dst = pstack.edges[k].dst;
        if (pos == UINT32_MAX || dbg_region[dst] == pos) { ++*n; out += " " + std::to_string(dst); }
    }
    return out;
}

static std::string dbg_rec_text(const DbgRec& r) {
    std::string s = std::string("E ") + DBG_KIND_NAMES[r.kind] + " ";
    if (r.kind == K_SEND || r.kind == K_DELIVER) {
        int n = 0;
        uint32_t slot = pstack.out_base[r.src] + r.pin;
        std::string dsts = dbg_dsts_of(slot, r.index, r.kind == K_SEND ? UINT32_MAX : (uint32_t)r.pos, &n, r.ndst);
        s += std::to_string(r.pos) + " " + std::to_string(r.src) + " " + std::to_string(r.pin) + " "
             + std::to_string(r.index) + " " + std::to_string(n) + dsts + " F " + dbg_fields(r.src, r.pin, r.msg);
    } else if (r.kind == K_CANCEL) {
        s += std::to_string(r.pos) + " " + std::to_string(r.src) + " " + std::to_string(r.pin) + " -1 0 F 0";
    } else if (r.kind == K_IDLE) {
        s += "-1 " + std::to_string(r.src) + " 0 " + std::to_string(r.index) + " 0 F 0";
    } else {
        s += "-1 0 0 -1 0 F 0";
    }
    s += "\n";
    for (size_t at = 0; at < r.logs.size();) {
        size_t nl = r.logs.find('\n', at);
        if (nl == std::string::npos) nl = r.logs.size();
        s += "L " + r.logs.substr(at, nl - at) + "\n";
        at = nl + 1;
    }
    if (r.end) s += "E end " + std::to_string(r.end_code) + " " + r.end_reason + "\n";
    return s;
}

// ---- scheduling ---------------------------------------------------------------------------------
static void dbg_push(uint32_t d) {
    if (!pstack.devices[d].queued) {
        pstack.devices[d].queued = 1;
        dbg_ready[dbg_region[d]].push_back(d);
    }
}

#if PSTACK_HAS_SUPERVISOR
// The v4 supervisor runs as in psim's single region (pstack_supervisor_run.hpp): a message to it is
// handled at once, and its replies and broadcasts are delivered at once, their devices joining the
// runtime's ready queue; they are moved to this scheduler's queues after each supervisor call.
static void dbg_take_runtime_ready() {
    while (pstack.rq_head != pstack.rq_tail) {
        uint32_t d = pstack.rq[pstack.rq_head++ & pstack.rq_mask];
        pstack.devices[d].queued = 0;
        dbg_push(d);
    }
}
#endif

// How many destinations (slot, index) has in region position `pos` (UINT32_MAX: every region).
static uint32_t dbg_count_dsts(uint32_t slot, int64_t index, uint32_t pos) {
#if PSTACK_HAS_INDEXED
    if (index >= 0) {
        const PstackEdge* e = pstack.idx_edges + pstack.idx_off[slot] + index;
        return pos == UINT32_MAX || dbg_region[e->dst] == pos ? 1 : 0;
    }
#endif
    if (index < -1) return 0;
    if (pos == UINT32_MAX) return pstack.slot_edges[slot + 1] - pstack.slot_edges[slot];
    uint32_t n = 0;
    for (uint32_t k = pstack.slot_edges[slot]; k < pstack.slot_edges[slot + 1]; ++k)
        n += dbg_region[pstack.edges[k].dst] == pos;
    return n;
}

// The message in msgbuf, sent by d on pin (over edge `index` of an indexed pin, else -1), into the
// pending queue of each region holding a destination; true if one of them is the sender's region.
static bool dbg_queue(uint32_t d, uint32_t pin, int64_t index, bool injected) {
    uint32_t slot = pstack.out_base[d] + pin;
    bool own = false;
    for (uint32_t pos = 0; pos < dbg_inbox.size(); ++pos) {
        if (!dbg_count_dsts(slot, index, dbg_inbox.size() == 1 ? UINT32_MAX : pos)) continue;
        bool mine = pos == dbg_region[d] && !injected;
        own = own || mine;
        if (pos != dbg_region[d]) ++pstack.remote_sent;
        dbg_inbox[pos].emplace_back();
        DbgMsg& m = dbg_inbox[pos].back();
        m.seq = dbg_seq++; m.src = d; m.pin = pin; m.index = index; m.requeue_sender = mine; m.injected = injected;
        memcpy(m.bytes, pstack.msgbuf, sizeof m.bytes);
    }
    return own;
}

// One send by the next ready device of region `pos`; false if none is ready.
static bool dbg_send_turn(uint32_t pos) {
    std::deque<uint32_t>& q = dbg_ready[pos];
    while (!q.empty()) {
        uint32_t d = q.front();
        q.pop_front();
        pstack.devices[d].queued = 0;
        uint32_t t = pstack.dev_type[d], li = pstack.dev_local[d];
        pstack.cur_dev = d;
        uint32_t rts = pstack_rts(t, li);
        if (!rts) continue;
        uint32_t pin = (uint32_t)__builtin_ctz(rts);
        bool doSend = true;
#if PSTACK_HAS_INDEXED
        unsigned sendIndex = PSTACK_NO_SEND_INDEX;
#else
        unsigned sendIndex = 0;
#endif
        memset(pstack.msgbuf, 0, sizeof pstack.msgbuf);
        pstack_send(t, li, pin, pstack.msgbuf, &doSend, &sendIndex);
        ++pstack.steps;
        if (!doSend) {
            ++pstack.cancelled;
            dbg_push(d);
            dbg_event(K_CANCEL, (int32_t)pos, d, pin, -1, 0);
            return true;
        }
        ++pstack.sent;
        int64_t index = -1;
        uint32_t slot = pstack.out_base[d] + pin;
#if PSTACK_HAS_INDEXED
        if (pstack_out_indexed[pstack_out_base[t] + pin] && !pstack.stop) {
            const PstackEdge* e = indexed_edge(slot, sendIndex, d);
            index = e ? (int64_t)(e - (pstack.idx_edges + pstack.idx_off[slot])) : DBG_NO_EDGE;
        }
#endif
#if PSTACK_HAS_SUPERVISOR
        if (pin == pstack_sup_out_pin[t] && !pstack.stop) {
            supervisor_receive(d);
            dbg_take_runtime_ready();
            pstack.cur_dev = d;
            if (!pstack.stop && pstack_rts(t, li)) dbg_push(d);
            dbg_event(K_SEND, (int32_t)pos, d, pin, DBG_TO_SUPERVISOR, 0);
            return true;
        }
#endif
        bool own = false;
        uint32_t n = 0;
        if (!pstack.stop) {
            own = dbg_queue(d, pin, index, false);
            n = dbg_count_dsts(slot, index, UINT32_MAX);
        }
        if (!own && !pstack.stop) {  // nothing to deliver here: the sender looks again now
            pstack.cur_dev = d;
            if (pstack_rts(t, li)) dbg_push(d);
        }
        dbg_event(K_SEND, (int32_t)pos, d, pin, index, n);
        return true;
    }
    return false;
}

static void dbg_halt() {
    int64_t code = 0;
    if (dbg_halt_off >= 0) {
        const char* p = pstack.msgbuf + dbg_halt_off;
        switch (dbg_halt_code) {
        case 'b': { int8_t v; memcpy(&v, p, 1); code = v; break; }
        case 'B': { uint8_t v; memcpy(&v, p, 1); code = v; break; }
        case 'h': { int16_t v; memcpy(&v, p, 2); code = v; break; }
        case 'H': { uint16_t v; memcpy(&v, p, 2); code = v; break; }
        case 'I': case 'L': { uint32_t v; memcpy(&v, p, 4); code = v; break; }
        case 'q': case 'Q': memcpy(&code, p, 8); break;
        default: { int32_t v; memcpy(&v, p, 4); code = v; break; }
        }
    }
    stop_run((int)code, "halt");
}

// OnReceive of the edge's destination, with the message in msgbuf.
static void dbg_deliver_edge(const PstackEdge* e) {
    pstack.cur_dev = e->dst;
    const PstackDevice& dev = pstack.devices[e->dst];
    pstack_recv_at(e->input, dev.props, dev.state, e->eidx, pstack.msgbuf);
    ++pstack.delivered;
    dbg_push(e->dst);
    if ((int64_t)e->dst == dbg_halt_dev) dbg_halt();
}

// Deliver the oldest message in flight to region `pos`.
static void dbg_deliver(uint32_t pos) {
    const DbgMsg& m = dbg_inbox[pos].front();
    uint32_t src = m.src, pin = m.pin;
    int64_t index = m.index;
    bool requeue = m.requeue_sender;
    memcpy(pstack.msgbuf, m.bytes, sizeof m.bytes);
    if (dbg_region[src] != pos && !m.injected) ++pstack.remote_received;
    dbg_inbox[pos].pop_front();
    uint32_t slot = pstack.out_base[src] + pin;
    uint32_t done = 0;
    bool all = dbg_inbox.size() == 1;
#if PSTACK_HAS_INDEXED
    if (index >= 0) { dbg_deliver_edge(pstack.idx_edges + pstack.idx_off[slot] + index); done = 1; }
#endif
    if (index < 0)
        for (uint32_t k = pstack.slot_edges[slot]; k < pstack.slot_edges[slot + 1] && !pstack.stop; ++k)
            if (all || dbg_region[pstack.edges[k].dst] == pos) { dbg_deliver_edge(pstack.edges + k); ++done; }
    if (requeue && !pstack.stop) {
        pstack.cur_dev = src;
        if (pstack_rts(pstack.dev_type[src], pstack.dev_local[src])) dbg_push(src);
    }
    dbg_event(K_DELIVER, (int32_t)pos, src, pin, index, done);
}

// The whole graph is quiescent: an OnHardwareIdle round, or the end (as the engine's single region does).
static void dbg_idle() {
#if PSTACK_HAS_SUPERVISOR
    if (supervisor_idle()) {
        dbg_take_runtime_ready();
        dbg_event(K_SUPERVISOR_IDLE, -1, 0, 0, -1, 0);
        return;
    }
#endif
    if (PSTACK_HAS_HW_IDLE && pstack.idle_consecutive < PSTACK_MAX_IDLE_ROUNDS) {
        ++pstack.idle_consecutive;
        ++pstack.idle_rounds;
        for (uint32_t d = 0; d < pstack.ndev; ++d) {
            pstack.cur_dev = d;
            pstack_hw_idle(pstack.dev_type[d], pstack.dev_local[d]);
        }
        bool woke = false;
        for (uint32_t d = 0; d < pstack.ndev && !pstack.stop; ++d) {
            pstack.cur_dev = d;
            if (pstack_rts(pstack.dev_type[d], pstack.dev_local[d])) { dbg_push(d); woke = true; }
        }
        if (woke) pstack.idle_consecutive = 0;
        dbg_event(K_IDLE, -1, (uint32_t)pstack.idle_rounds, 0, woke ? 1 : 0, 0);
        return;
    }
    stop_run(PSTACK_IDLE_EXIT_CODE, PSTACK_EXIT_REASON_QUIESCENCE);
    dbg_event(K_QUIESCENT, -1, 0, 0, -1, 0);
}

// One event of region `region` (-1: of the whole process); false if that region has nothing to do.
static bool dbg_step(int region) {
    if (dbg_ended) return false;
    size_t nreg = dbg_inbox.size();
    if (region >= 0) {
        uint32_t pos = (uint32_t)region;
        if (!dbg_inbox[pos].empty()) { dbg_deliver(pos); return true; }
        return dbg_send_turn(pos);
    }
    int oldest = -1;
    for (size_t pos = 0; pos < nreg; ++pos)
        if (!dbg_inbox[pos].empty() && (oldest < 0 || dbg_inbox[pos].front().seq < dbg_inbox[oldest].front().seq))
            oldest = (int)pos;
    if (oldest >= 0) { dbg_deliver((uint32_t)oldest); return true; }
    for (size_t k = 0; k < nreg; ++k) {
        uint32_t pos = (uint32_t)((dbg_rr + k) % nreg);
        if (dbg_send_turn(pos)) { dbg_rr = (pos + 1) % nreg; return true; }
    }
    dbg_idle();
    return true;
}

// ---- breakpoints: a field of a device's state compared after every event -------------------------
static bool dbg_break_holds(const DbgBreak& b) {
    const char* p = pstack.devices[b.dev].state + b.off;
    double f = 0; int64_t i = 0; uint64_t u = 0;
    int kind = 0;  // 0 float, 1 signed, 2 unsigned
    switch (b.code) {
    case 'f': { float v; memcpy(&v, p, 4); f = v; break; }
    case 'd': memcpy(&f, p, 8); break;
    case 'b': { int8_t v; memcpy(&v, p, 1); i = v; kind = 1; break; }
    case 'h': { int16_t v; memcpy(&v, p, 2); i = v; kind = 1; break; }
    case 'i': case 'l': { int32_t v; memcpy(&v, p, 4); i = v; kind = 1; break; }
    case 'q': memcpy(&i, p, 8); kind = 1; break;
    case 'B': case '?': { uint8_t v; memcpy(&v, p, 1); u = v; kind = 2; break; }
    case 'H': { uint16_t v; memcpy(&v, p, 2); u = v; kind = 2; break; }
    case 'I': case 'L': { uint32_t v; memcpy(&v, p, 4); u = v; kind = 2; break; }
    default: memcpy(&u, p, 8); kind = 2; break;
    }
    int c = kind == 0 ? (f < b.fval ? -1 : f > b.fval ? 1 : 0)
          : kind == 1 ? (i < b.ival ? -1 : i > b.ival ? 1 : 0)
          : (u < b.uval ? -1 : u > b.uval ? 1 : 0);
    switch (b.op) {  // 0 ==, 1 !=, 2 <, 3 <=, 4 >, 5 >=
    case 0: return c == 0;
    case 1: return c != 0;
    case 2: return c < 0;
    case 3: return c <= 0;
    case 4: return c > 0;
    default: return c >= 0;
    }
}

static int dbg_break_now() {
    int hit = -1;
    for (DbgBreak& b : dbg_breaks) {
        bool now = dbg_break_holds(b);
        if (now && !b.held && hit < 0) hit = b.id;
        b.held = now;
    }
    return hit;
}

