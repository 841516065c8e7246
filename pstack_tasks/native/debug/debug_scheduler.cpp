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
    std::string bytes;     // the message struct
};

// Triggers when its comparison becomes true (it was false before the event): a breakpoint that
// holds where the session stopped does not stop the next event again.
struct DbgBreak { int id; uint32_t dev, off; char code; int op; double fval; int64_t ival; uint64_t uval; bool held; };

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
static std::deque<std::string> dbg_report;             // the last events of a command, as reply lines
static size_t dbg_report_max = 0;
static uint64_t dbg_report_dropped = 0;

static ssize_t dbg_log_write(void*, const char* buf, size_t n) { dbg_logs.append(buf, n); return (ssize_t)n; }

// ---- events, as reply lines: "E <kind> <region> <src> <pin> <index> <ndst> <dst>... F <nfields> <f>..."
static std::string dbg_fields(uint32_t src, uint32_t pin, const char* msg) {
    char text[PSTACK_MAX_ITEM_CHARS];
    uint32_t mt = pstack_out_msg[pstack_out_base[pstack.dev_type[src]] + pin];
    char* end = pstack_pack_msg(mt, msg, text);
    return std::string(text, (size_t)(end - text));
}

static void dbg_event(const std::string& head) {
    std::string rec = "E " + head + "\n";
    size_t start = 0;
    while (start < dbg_logs.size()) {
        size_t nl = dbg_logs.find('\n', start);
        if (nl == std::string::npos) nl = dbg_logs.size();
        rec += "L " + dbg_logs.substr(start, nl - start) + "\n";
        start = nl + 1;
    }
    dbg_logs.clear();
    if (pstack.stop && !dbg_ended) {
        dbg_ended = true;
#if PSTACK_HAS_SUPERVISOR
        supervisor_stop();
        for (size_t at = 0; at < dbg_logs.size();) {  // OnStop's log lines
            size_t nl = dbg_logs.find('\n', at);
            if (nl == std::string::npos) nl = dbg_logs.size();
            rec += "L " + dbg_logs.substr(at, nl - at) + "\n";
            at = nl + 1;
        }
        dbg_logs.clear();
#endif
        rec += "E end " + std::to_string(pstack.exit_code) + " " + pstack.exit_reason + "\n";
    }
    dbg_report.push_back(rec);
    while (dbg_report.size() > dbg_report_max) { dbg_report.pop_front(); ++dbg_report_dropped; }
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

static std::string dbg_dsts_of(uint32_t slot, int64_t index, uint32_t pos, int* n) {
    std::string out;
    *n = 0;
#if PSTACK_HAS_INDEXED
    if (index >= 0) {
        const PstackEdge* e = pstack.idx_edges + pstack.idx_off[slot] + index;
        if (dbg_region[e->dst] == pos) { *n = 1; out = " " + std::to_string(e->dst); }
        return out;
    }
#endif
    for (uint32_t k = pstack.slot_edges[slot]; k < pstack.slot_edges[slot + 1]; ++k) {
        uint32_t dst = pstack.edges[k].dst;
        if (pos == UINT32_MAX || dbg_region[dst] == pos) { ++*n; out += " " + std::to_string(dst); }
    }
    return out;
}

// The message in msgbuf, sent by d on pin (over edge `index` of an indexed pin, else -1), into the
// pending queue of each region holding a destination; true if one of them is the sender's region.
static bool dbg_queue(uint32_t d, uint32_t pin, int64_t index, bool injected) {
    uint32_t slot = pstack.out_base[d] + pin;
    uint32_t mt = pstack_out_msg[pstack_out_base[pstack.dev_type[d]] + pin];
    std::string bytes(pstack.msgbuf, pstack_msg_size[mt]);
    bool own = false;
    for (uint32_t pos = 0; pos < dbg_inbox.size(); ++pos) {
        int n;
        dbg_dsts_of(slot, index, pos, &n);
        if (!n) continue;
        bool mine = pos == dbg_region[d] && !injected;
        own = own || mine;
        if (pos != dbg_region[d]) ++pstack.remote_sent;
        dbg_inbox[pos].push_back(DbgMsg{dbg_seq++, d, pin, index, mine, injected, bytes});
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
        std::string head = std::to_string(pos) + " " + std::to_string(d) + " " + std::to_string(pin);
        if (!doSend) {
            ++pstack.cancelled;
            dbg_push(d);
            dbg_event("cancel " + head + " -1 0 F 0");
            return true;
        }
        ++pstack.sent;
        int64_t index = -1;
        uint32_t slot = pstack.out_base[d] + pin;
#if PSTACK_HAS_INDEXED
        if (pstack_out_indexed[pstack_out_base[t] + pin] && !pstack.stop) {
            const PstackEdge* e = indexed_edge(slot, sendIndex, d);
            index = e ? (int64_t)(e - (pstack.idx_edges + pstack.idx_off[slot])) : -2;
        }
#endif
        bool own = false;
        int n = 0;
        std::string dsts;
#if PSTACK_HAS_SUPERVISOR
        if (pin == pstack_sup_out_pin[t] && !pstack.stop) {
            supervisor_receive(d);
            dbg_take_runtime_ready();
            pstack.cur_dev = d;
            if (!pstack.stop && pstack_rts(t, li)) dbg_push(d);
            dbg_event("send " + head + " -3 0 F " + dbg_fields(d, pin, pstack.msgbuf));  // -3: to the supervisor
            return true;
        }
#endif
        if (!pstack.stop && index != -2) {
            own = dbg_queue(d, pin, index, false);
            dsts = dbg_dsts_of(slot, index, UINT32_MAX, &n);
        }
        if (!own && !pstack.stop) {  // nothing to deliver here: the sender looks again now
            pstack.cur_dev = d;
            if (pstack_rts(t, li)) dbg_push(d);
        }
        dbg_event("send " + head + " " + std::to_string(index) + " " + std::to_string(n) + dsts + " F "
                  + dbg_fields(d, pin, pstack.msgbuf));
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

// Deliver the oldest message in flight to region `pos`.
static void dbg_deliver(uint32_t pos) {
    DbgMsg m = dbg_inbox[pos].front();
    dbg_inbox[pos].pop_front();
    memcpy(pstack.msgbuf, m.bytes.data(), m.bytes.size());
    if (dbg_region[m.src] != pos && !m.injected) ++pstack.remote_received;
    uint32_t slot = pstack.out_base[m.src] + m.pin;
    std::vector<const PstackEdge*> edges;
#if PSTACK_HAS_INDEXED
    if (m.index >= 0) edges.push_back(pstack.idx_edges + pstack.idx_off[slot] + m.index);
#endif
    if (m.index < 0)
        for (uint32_t k = pstack.slot_edges[slot]; k < pstack.slot_edges[slot + 1]; ++k)
            if (dbg_region[pstack.edges[k].dst] == pos) edges.push_back(pstack.edges + k);
    std::string fields = dbg_fields(m.src, m.pin, pstack.msgbuf);
    std::string dsts;
    for (const PstackEdge* e : edges) {
        if (pstack.stop) break;
        pstack.cur_dev = e->dst;
        const PstackDevice& dev = pstack.devices[e->dst];
        pstack_recv_at(e->input, dev.props, dev.state, e->eidx, pstack.msgbuf);
        ++pstack.delivered;
        dbg_push(e->dst);
        if ((int64_t)e->dst == dbg_halt_dev) dbg_halt();
        dsts += " " + std::to_string(e->dst);
    }
    if (m.requeue_sender && !pstack.stop) {
        pstack.cur_dev = m.src;
        if (pstack_rts(pstack.dev_type[m.src], pstack.dev_local[m.src])) dbg_push(m.src);
    }
    dbg_event("deliver " + std::to_string(pos) + " " + std::to_string(m.src) + " " + std::to_string(m.pin) + " "
              + std::to_string(m.index) + " " + std::to_string(edges.size()) + dsts + " F " + fields);
}

// The whole graph is quiescent: an OnHardwareIdle round, or the end (as the engine's single region does).
static void dbg_idle() {
#if PSTACK_HAS_SUPERVISOR
    if (supervisor_idle()) {
        dbg_take_runtime_ready();
        dbg_event("supervisor-idle -1 0 0 -1 0 F 0");
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
        dbg_event("idle -1 " + std::to_string(pstack.idle_rounds) + " 0 " + std::to_string(woke ? 1 : 0) + " 0 F 0");
        return;
    }
    stop_run(PSTACK_IDLE_EXIT_CODE, PSTACK_EXIT_REASON_QUIESCENCE);
    dbg_event("quiescent -1 0 0 -1 0 F 0");
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

