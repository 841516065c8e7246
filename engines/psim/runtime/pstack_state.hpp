// pstack-celery engine runtime: everything the engine changes while it runs, in one struct.
//
// An engine process runs one region of one graph, so there is one instance, `pstack`.  Keeping
// the mutable state here, and only here, gives one place to read what a handler, a signal
// handler or a crash report may see, and what each part of the runtime owns (the sections name
// the header whose code writes them).  Constants stay beside the code that uses them; the graph
// type's read-only tables come from the generated code (pstack_contract.hpp).
//
// Needs the graph type's PSTACK_* constants (array sizes), so the generated engine defines them
// before including the runtime.
#ifndef PSTACK_STATE_HPP
#define PSTACK_STATE_HPP

#include <cstddef>
#include <cstdint>
#include <cstdio>

struct PstackEdge {        // a local destination of a (source device, output pin) slot
    uint32_t dst;          // global device index
    uint32_t local;        // index of dst within its type
    uint16_t type;
    uint16_t input;        // the input pin over all types (pstack_in_base[type] + pin): one switch delivers
    uint32_t eidx;         // index of this edge's properties/state for that pin
};
static_assert(PSTACK_NINPUTS_TOTAL < 65536, "PstackEdge::input is 16 bits");

struct PstackDevice {      // what the hot path reads and writes of a device, in one place (pstack_instance.hpp, index_devices)
    char* props;           // props_base[type] + local * the type's properties size
    char* state;           // state_base[type] + local * the type's state size
    const PstackEdge* const* out;  // slot_first + slot: pin p's local edges are [out[p], out[p + 1])
    uint32_t slot;         // its first output slot (= out_base)
    uint16_t type;
    uint8_t queued;        // 1 while the device is in the ready queue, and through its turn in the hot loop
    uint8_t unused;
};
static_assert(sizeof(PstackDevice) == 32, "PstackDevice: 32 bytes, two to a cache line, indexed by a shift");
static_assert(PSTACK_NTYPES < 65536, "PstackDevice::type is 16 bits");

// A growing buffer of RESP text: the command stream to Redis, or one region's pending items.
// The methods are in pstack_wire.hpp (growing it may fail, and failing needs pstack_core.hpp).
struct PstackOutBuf {
    char* data = nullptr;
    size_t len = 0, cap = 0;
    uint32_t items = 0;
    void reserve(size_t extra);
    void put(const char* s, size_t n);
    void bulk(const char* s, size_t n);
    void bulk(const char* s);
};

// What each reply Redis owes us is for, in the order the commands went out.
enum PstackPending : uint8_t { P_INT, P_LPOP, P_BLMPOP, P_SCRIPT, P_SEQ };
static const uint32_t PSTACK_MAX_PENDING = 1u << 16;  // a power of two: the ring is indexed by mask

// Every member has an initializer, so that the instance is initialized at compile time (no
// constructor runs at start-up); the big buffers are allocated when a run needs them.
struct PstackEngineState {
    // ---- the run (pstack_core.hpp): what handlers, logs and crash reports see
    int log_level = 1;                   // handler_log prints when level <= this
    int stop = 0;                        // set by handler_exit, limits and remote shutdown
    int exit_code = 0;
    const char* exit_reason = PSTACK_EXIT_REASON_QUIESCENCE;
    uint32_t cur_dev = 0;                // device whose handler runs now (for logs and crash reports),
                                         // unless the hot loop delivers (pstack_core.hpp)
    uint32_t hot_where = 0;              // the hot loop's handler of cur_dev's turn, with cur_handler PSTACK_AT_HOT
                                         // (pstack_core.hpp); beside cur_dev: a turn's first two stores are one
    const char* cur_handler = "startup"; // set by the generated dispatch functions; PSTACK_AT_HOT: see hot_where
    const PstackEdge* cur_edge = nullptr;  // the hot loop's delivery over an edge now (pstack_core.hpp, pstack_where_device)
    FILE* log_stream = nullptr;
    const char* app_file = nullptr;      // the application's path, for assertion messages
    uint64_t max_steps = UINT64_MAX;     // --max-steps
    double time_limit = 0;               // --time-limit, seconds; 0 = none

    // ---- the loaded instance (pstack_instance.hpp); the generated dispatch reads the data blocks
    uint32_t ndev = 0, nedges = 0;
    const char* const* dev_names = nullptr;
    uint32_t* dev_type = nullptr;
    uint32_t* dev_region = nullptr;
    uint32_t* dev_local = nullptr;       // index of each device within its type
    uint32_t* out_base = nullptr;        // first slot of each device: slot = out_base[d] + pin
    PstackDevice* devices = nullptr;     // per device: its data's addresses, type, first slot and queued flag
    uint32_t* slot_edges = nullptr;      // CSR offsets into edges, one per slot (+1)
    PstackEdge* edges = nullptr;
    const PstackEdge** slot_first = nullptr;  // edges + slot_edges[slot], one per slot (+1): the hot path's CSR
    bool self_edges = false;             // some local edge goes from a device to itself (pstack_loop.hpp)
    uint32_t* flat_dst = nullptr;        // per slot: its one local destination, when the hot loop may deliver
                                         // without the edge (pstack_instance.hpp, flatten_slots); else PSTACK_NOT_FLAT
    uint32_t* slot_remote = nullptr;     // CSR offsets into remote, one per slot (+1)
    uint16_t* remote = nullptr;          // remote region positions per slot
    char* graph_props = nullptr;
    char* props_base[PSTACK_NTYPES] = {};               // per device type, indexed by local index
    char* state_base[PSTACK_NTYPES] = {};
    char* edge_props_base[PSTACK_NINPUTS_TOTAL + 1] = {};  // per input pin of every type, by edge index
    char* edge_state_base[PSTACK_NINPUTS_TOTAL + 1] = {};
#if PSTACK_HAS_INDEXED
    uint32_t* idx_off = nullptr;         // indexed output pins: CSR offsets per slot (+1) ...
    PstackEdge* idx_edges = nullptr;     // ... into every edge of the slot, by sendIndex
#endif

    // ---- regions (pstack_instance.hpp)
    int region = 0;                      // this engine's region
    int nregions = 1;
    int* regions = nullptr;              // region numbers; position = index into the item buffers
    int my_pos = 0;                      // this region's position

    // ---- scheduling and counters (pstack_delivery.hpp, pstack_loop.hpp)
    uint32_t* rq = nullptr;              // ready queue: a ring of device indices
    uint32_t rq_mask = 0, rq_head = 0, rq_tail = 0;
    uint64_t delivered = 0, sent = 0, cancelled = 0, steps = 0, remote_sent = 0, remote_received = 0;
    uint64_t idle_turns = 0;             // turns whose ReadyToSend was 0 (the hot loop derives sent from it: PstackHot)
    uint64_t extra_deliveries = 0;       // deliveries beyond one per send in the hot loop (PstackHot)
    char msgbuf[PSTACK_MAX_MSG_SIZE + 8] = {};  // the message being sent or delivered now
    uint64_t idle_rounds = 0;            // OnHardwareIdle rounds run (metric)
    int idle_consecutive = 0;            // single region: rounds in a row that woke nothing
    bool idle_woke = false;              // split: a round woke a local device; told to Redis at the next IDLE

    // ---- limits and progress (pstack_limits.hpp, pstack_output.hpp)
    long cpu_limit = 0, memory_limit_mib = 0, file_limit_mib = 0;  // 0 = none
    volatile uint64_t* progress = nullptr;  // {delivered, steps}, shared with whoever started us

    // ---- the Redis wire (pstack_wire.hpp)
    const char* prefix = "";             // key prefix (--prefix)
    long pid = 0;                        // the process id the keys are named after (--pid)
    char my_queue[256] = "";
    char active_key[256] = "";
    int out_fd = 3;                      // commands go here (--command-fd); replies come on stdin
    PstackOutBuf wire;                   // bytes not yet written to out_fd
    PstackOutBuf* items = nullptr;       // per region position: pending items (as RESP bulks)
    PstackPending* pending = nullptr;    // a ring of PSTACK_MAX_PENDING, for split runs only
    uint32_t pend_head = 0, pend_tail = 0;
    bool lpop_outstanding = false;
    char* rbuf = nullptr;                // replies read but not yet parsed: rbuf[rpos, rlen)
    size_t rlen = 0, rpos = 0, rcap = 1 << 20;

    // ---- termination detection (pstack_termination.hpp)
    // This region's share of <pid>.active (docs/engine-protocol.md): 1 for itself at the start,
    // plus every item taken since it last went idle.  Going idle gives the whole share back at once.
    long share = 1;
    bool took_items = false;             // the last BLMPOP brought something
    long seq = 0;                        // IDLE script calls sent (their replies are skipped)
    long seq_seen = -1;                  // what Redis says the last one that ran was
    char seq_key[256] = "";
    char idle_key[300] = "";
    char idle_sha[64] = "";              // the IDLE script's SHA1, from SCRIPT LOAD at the start
    char idle_round_limit[16] = "";      // ARGV[1] of the IDLE script
    char** queue_names = nullptr;        // every region's queue, by position
};

static PstackEngineState pstack;
// cur_handler's value in the hot loop, which names its handlers by hot_where (pstack_core.hpp)
static const char PSTACK_AT_HOT[] = "the handler of pstack.hot_where";
static const uint32_t PSTACK_NOT_FLAT = 0xffffffffu;  // flat_dst: the slot is delivered over its edges

// The local hot path's working copy of the ready queue and the instance's read-only arrays
// (pstack_loop.hpp, run_ready_devices).  Handler code stores through pointers that may alias
// anything in `pstack` (-fno-strict-aliasing), so every field of `pstack` is reloaded after each
// handler; a local copy whose address never escapes stays in registers.  Copied in by hot_load and
// back by hot_store around anything else that reads or writes these fields (progress, remote
// items, indexed sends, the end of a batch of turns).
//
// The counters are not counted per message: a memory increment per message is a chain of
// store-to-load latencies from one turn to the next, and a register per counter is more than the
// loop has.  Every turn pops one device, so the queue's head counts turns; a turn ends idle
// (ReadyToSend 0: pstack.idle_turns), cancelled (pstack.cancelled) or with a send, so
// sent = turns - idle - cancelled, and steps = sent + cancelled.  A send delivers one message per
// local edge of its slot; the slots with exactly one (flat_dst) count nothing, the others add
// their edges minus one to pstack.extra_deliveries, so delivered = sent + extra_deliveries.  The
// rarer kinds of turn and the slots of several edges count in memory; the loop's registers go to
// the queue and the message.
struct PstackHot {
    uint32_t* rq;
    uint32_t rq_mask, rq_head, rq_tail;
    PstackDevice* devices;
    const uint32_t* flat_dst;
    char* props0;          // one device type (PSTACK_ONE_TYPE): its properties and state arrays
    char* state0;
    uint32_t head0;        // rq_head at hot_load: the turns since are rq_head - head0
    uint64_t sent0, cancelled0, idle0, extra0, delivered0, steps0;  // pstack's counters at hot_load
    uint64_t turns() const { return (uint32_t)(rq_head - head0); }
    uint64_t sent() const { return turns() - (pstack.idle_turns - idle0) - (pstack.cancelled - cancelled0); }
    uint64_t steps() const { return steps0 + turns() - (pstack.idle_turns - idle0); }
};

// Takes the counters' values from pstack (the base the loop counts from).
static inline __attribute__((always_inline)) void hot_anchor(PstackHot& h) {
    h.head0 = h.rq_head;
    h.sent0 = pstack.sent; h.cancelled0 = pstack.cancelled; h.idle0 = pstack.idle_turns;
    h.extra0 = pstack.extra_deliveries; h.delivered0 = pstack.delivered; h.steps0 = pstack.steps;
}

static inline __attribute__((always_inline)) void hot_load(PstackHot& h) {
    h.rq = pstack.rq;
    h.rq_mask = pstack.rq_mask; h.rq_head = pstack.rq_head; h.rq_tail = pstack.rq_tail;
    h.devices = pstack.devices;
    h.flat_dst = pstack.flat_dst;
    h.props0 = pstack.props_base[0];
    h.state0 = pstack.state_base[0];
    hot_anchor(h);
    pstack.cur_handler = PSTACK_AT_HOT;  // fault reports: the loop names its handlers by pstack.hot_where
}

// Writes the queue's ends and the counters back, and counts afresh from them (so that the turns
// since the anchor stay below 2^32, and storing twice counts nothing twice).
static inline __attribute__((always_inline)) void hot_store(PstackHot& h) {
    uint64_t sent = h.sent();
    pstack.rq_head = h.rq_head; pstack.rq_tail = h.rq_tail;
    pstack.steps = h.steps();
    pstack.sent = h.sent0 + sent;
    pstack.delivered = h.delivered0 + sent + (pstack.extra_deliveries - h.extra0);
    hot_anchor(h);
}

#endif  // PSTACK_STATE_HPP
