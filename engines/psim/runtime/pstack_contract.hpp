// pstack-celery engine runtime: the contract between the runtime and the generated engine.
//
// An engine is one C++ file rendered from templates/engine.cpp.j2 for one graph type, compiled
// with the runtime as a single translation unit (so the dispatch functions inline into the event
// loop).  The file is laid out as:
//   1. the graph type's constants: the PSTACK_* macros checked below;
//   2. #include "pstack_contract.hpp": this header, which brings the handler API
//      (pstack_core.hpp) and the engine state (pstack_state.hpp);
//   3. the typed structs, the application's shared code and its handlers;
//   4. the tables and dispatch functions declared below;
//   5. #include "pstack_engine.hpp": the runtime (loader, event loop, Redis wire, output, main).
// The declarations here are checked by the compiler: a template that leaves one out, or gives it
// another type, fails to build instead of misbehaving.
#ifndef PSTACK_CONTRACT_HPP
#define PSTACK_CONTRACT_HPP

// ---- the graph type's constants, as macros: they size arrays and switch code off at compile time
#if !defined(PSTACK_TYPE_HASH) || !defined(PSTACK_NTYPES) || !defined(PSTACK_NINPUTS_TOTAL) \
    || !defined(PSTACK_GRAPH_PROPS_SIZE) || !defined(PSTACK_MAX_MSG_SIZE) || !defined(PSTACK_MAX_ITEM_CHARS) \
    || !defined(PSTACK_HAS_INDEXED) || !defined(PSTACK_HAS_HW_IDLE) || !defined(PSTACK_IDLE_EXIT_CODE)
#error "the generated engine defines the graph type's PSTACK_* constants before including pstack_contract.hpp"
#endif
// PSTACK_TYPE_HASH       the graph type's hash; an instance file names the type it was made for
// PSTACK_NTYPES          device types; PSTACK_NINPUTS_TOTAL: input pins over all device types
// PSTACK_GRAPH_PROPS_SIZE, PSTACK_MAX_MSG_SIZE   bytes (packed structs)
// PSTACK_MAX_ITEM_CHARS  longest text of one message as a remote item
// PSTACK_HAS_INDEXED     some output pin is indexed (v3 sendIndex): one edge per send
// PSTACK_HAS_HW_IDLE     some device type has OnHardwareIdle
// PSTACK_IDLE_EXIT_CODE  exit code of a run that ends by quiescence (v2: 0, graph_schema: 1)

// ---- the engine protocol's names, rendered from pstack_tasks/protocol.py: the runtime spells none
#if !defined(PSTACK_ITEM_MESSAGE) || !defined(PSTACK_ITEM_STOP) || !defined(PSTACK_ITEM_QUIESCENT) \
    || !defined(PSTACK_ITEM_INDEXED_MESSAGE) || !defined(PSTACK_ITEM_HARDWARE_IDLE) \
    || !defined(PSTACK_ITEM_SUPERVISOR_REPLY) || !defined(PSTACK_ITEM_SUPERVISOR_BROADCAST) \
    || !defined(PSTACK_ITEM_SUPERVISOR_IDLE) || !defined(PSTACK_ITEM_SUPERVISOR_DONE)
#error "the generated engine defines the item kinds PSTACK_ITEM_* (pstack_tasks.protocol.ItemKind)"
#endif
#if !defined(PSTACK_EXIT_REASON_HANDLER_EXIT) || !defined(PSTACK_EXIT_REASON_QUIESCENCE) \
    || !defined(PSTACK_EXIT_REASON_MAX_STEPS) || !defined(PSTACK_EXIT_REASON_TIME_LIMIT) \
    || !defined(PSTACK_EXIT_REASON_REMOTE_STOP)
#error "the generated engine defines the exit reasons PSTACK_EXIT_REASON_* (pstack_tasks.protocol.ExitReason)"
#endif
#if !defined(PSTACK_EXIT_SUCCESS_MARKER) || !defined(PSTACK_EXIT_FAIL_MARKER) \
    || !defined(PSTACK_ENGINE_ERROR_PREFIX) || !defined(PSTACK_LOG_LINE_PREFIX)
#error "the generated engine defines the exit markers and output prefixes (pstack_tasks.protocol)"
#endif
#if !defined(PSTACK_STATUS_OK) || !defined(PSTACK_STATUS_USAGE) || !defined(PSTACK_STATUS_HANDLER) \
    || !defined(PSTACK_STATUS_IO) || !defined(PSTACK_STATUS_LIMIT)
#error "the generated engine defines the exit statuses PSTACK_STATUS_* (pstack_tasks.protocol.EngineStatus)"
#endif
#if !defined(PSTACK_METRIC_DELIVERED) || !defined(PSTACK_METRIC_SENT) || !defined(PSTACK_METRIC_CANCELLED) \
    || !defined(PSTACK_METRIC_REMOTE_SENT) || !defined(PSTACK_METRIC_REMOTE_RECEIVED) \
    || !defined(PSTACK_METRIC_EXIT_CODE) || !defined(PSTACK_METRIC_EXIT_REASON) \
    || !defined(PSTACK_METRIC_IDLE_ROUNDS) || !defined(PSTACK_METRIC_LOAD_SECONDS) \
    || !defined(PSTACK_METRIC_RUN_SECONDS)
#error "the generated engine defines the metric names PSTACK_METRIC_* (pstack_tasks.protocol.Metric)"
#endif
#if !defined(PSTACK_KEY_QUEUE_FMT) || !defined(PSTACK_KEY_ACTIVE_FMT) || !defined(PSTACK_KEY_IDLE_FMT) \
    || !defined(PSTACK_KEY_CALLS_FMT) || !defined(PSTACK_IDLE_SCRIPT)
#error "the generated engine defines the key names (pstack_tasks.protocol.QueueKeys) and the IDLE script"
#endif
// PSTACK_ITEM_*          the first character of an item in a region's queue (char literals)
// PSTACK_EXIT_REASON_*   why a region stopped; PSTACK_EXIT_*_MARKER: handler_log texts that exit
// PSTACK_ENGINE_ERROR_PREFIX, PSTACK_LOG_LINE_PREFIX   how error and log lines on stderr start
// PSTACK_STATUS_*        the engine's exit statuses; PSTACK_METRIC_*: the metric names of the result
// PSTACK_KEY_*_FMT       printf formats of the Redis keys, over (prefix, pid) and, for a queue, region
// PSTACK_IDLE_SCRIPT     the termination detector's Lua text (pstack_tasks/native/lua/idle.lua)

// ---- what the runtime offers the generated code
// pstack_core.hpp: handler_log, handler_exit, handler_checkpoint, assert and the Orchestrator
//   macros for handlers; pstack_fatal and pstack_device_name for dispatch errors;
//   pstack_put_* / pstack_get_* for the text of message fields on the wire.
// pstack_state.hpp: the instance data the loader fills and the dispatch functions read
//   (pstack.graph_props, pstack.props_base[type], pstack.state_base[type],
//   pstack.edge_props_base[input], pstack.edge_state_base[input]: arrays indexed by the device's
//   or edge's local index), and pstack.cur_handler, which every dispatch sets before it calls a
//   handler so that logs and crash reports can name it.
#include "pstack_core.hpp"

static const uint32_t PSTACK_NO_INPUT = 0xffffffffu;  // pstack_out_only_input: none, or more than one

// ---- what the generated code defines: tables, per device type / output pin / message type
// Output pins are numbered per type from pstack_out_base[type]; input pins over all types in
// declaration order (the index into pstack.edge_*_base).
extern const uint32_t pstack_props_size[];       // bytes of a device's properties, per type
extern const uint32_t pstack_state_size[];       // bytes of a device's state, per type
extern const uint32_t pstack_n_inputs[];         // input pins, per type
extern const uint32_t pstack_n_outputs[];        // output pins, per type
extern const uint32_t pstack_out_base[];         // first output pin of each type
extern const uint32_t pstack_in_base[];          // first input pin of each type, over all types
extern const uint8_t pstack_out_indexed[];       // per output pin: 1 if indexed (sendIndex)
extern const uint32_t pstack_out_msg[];          // per output pin: its message type
extern const uint32_t pstack_edge_props_size[];  // per input pin: bytes of an edge's properties
extern const uint32_t pstack_edge_state_size[];  // per input pin: bytes of an edge's state
extern const uint32_t pstack_out_only_input[];  // per output pin: the one input pin (over all types) that takes
                                                 // its messages and has no edge data, or PSTACK_NO_INPUT
extern const uint32_t pstack_msg_size[];         // per message type: bytes
extern const uint32_t pstack_msg_nfields[];      // per message type: scalar fields on the wire

// ---- what the generated code defines: dispatch to the handlers of device `local` of `type`
// Each sets pstack.cur_handler first.  Handlers never call back into the runtime's scheduling:
// receive handlers cannot send, so delivery needs no recursion and no message queue.
static inline uint32_t pstack_rts(uint32_t type, uint32_t local);  // ReadyToSend: a bit per output pin
static inline void pstack_init(uint32_t type, uint32_t local);     // OnInit (or the v2 __init__ pin)
static inline void pstack_hw_idle(uint32_t type, uint32_t local);  // OnHardwareIdle, if the type has one
// OnSend of `pin`, into a zeroed `msg`; a handler may clear *doSend or (indexed pins) set *sendIndex.
static inline void pstack_send(uint32_t type, uint32_t local, uint32_t pin, void* msg, bool* doSend,
                               unsigned* sendIndex);
// OnReceive of input `pin` over edge `eidx`; copies `msg` first when handlers may write it (v2).
static inline void pstack_recv(uint32_t type, uint32_t local, uint32_t pin, uint32_t eidx, void* msg);
// The hot path's dispatch: the same, given the device's property and state pointers (PstackDevice), and
// a receive by the input's index over all types (pstack_in_base[type] + pin), so one switch finds the handler.
static inline uint32_t pstack_rts_at(uint32_t type, char* props, char* state);
static inline void pstack_recv_at(uint32_t input, char* props, char* state, uint32_t eidx, void* msg);
// The same without naming the handler: the hot loop names it by pstack.hot_where or pstack.cur_edge
// (pstack_core.hpp).  pstack_send_hot zeroes the message first, as pstack_send does.
static inline uint32_t pstack_rts_hot(uint32_t type, char* props, char* state);
static inline void pstack_send_hot(uint32_t type, uint32_t pin, char* props, char* state, void* msg, bool* doSend,
                                   unsigned* sendIndex);
static inline void pstack_recv_hot(uint32_t input, char* props, char* state, uint32_t eidx, void* msg);
// The receive of output pin `opin`'s (over all types) one input pin, pstack_out_only_input[opin]: the hot
// loop's delivery over a slot with one local edge (flat_dst), named by pstack.hot_where.
static inline void pstack_recv_flat(uint32_t opin, char* props, char* state, void* msg);
// A message's fields as remote-item text, "<nfields> <f1> ... <fn>": returns the end of what it wrote.
static inline char* pstack_pack_msg(uint32_t msg_type, const void* msg, char* p);
// The reverse, from just after the field count; returns where it stopped reading.
static inline const char* pstack_unpack_msg(uint32_t msg_type, void* msg, const char* p);
// A device's final state as a JSON object; scalars only unless `full`.
static void pstack_print_state(FILE* f, uint32_t type, uint32_t local, int full);

#endif  // PSTACK_CONTRACT_HPP
