// pstack-celery engine runtime: the v4 supervisor (graph-schema.md s7), what its handlers see.
//
// Included by the generated engine right after pstack_contract.hpp when the graph type has a
// SupervisorType.  One supervisor per process: handlers get graphProperties, supervisorProperties,
// supervisorState, message (OnReceive only), reply and bcast (zeroed before each call), and the
// macros RTSREPLY() / RTSBCAST() ask for them to be sent when the handler returns.  Super::post
// logs a line (the exit markers end the run as handler_exit does); Super::stop_application() is
// handler_exit(0).  The runtime part (delivery, OnInit/OnSupervisorIdle/OnStop calls) is in
// pstack_supervisor_run.hpp, included after the engine; the engine calls it through the hooks
// declared at the end of this file (marked "supervisor hook" in pstack_loop.hpp, pstack_delivery.hpp
// and pstack_output.hpp).
#ifndef PSTACK_SUPERVISOR_HPP
#define PSTACK_SUPERVISOR_HPP

#include <string>
#include <type_traits>

// What a supervisor handler asked for: a reply to the sender, a broadcast to every device.
struct PstackSupOut {
    bool reply;
    bool bcast;
};

static uint64_t pstack_sup_received = 0;  // metric Metric.SUPERVISOR_RECEIVED (protocol.py)
static uint64_t pstack_sup_sent = 0;      // metric Metric.SUPERVISOR_SENT: replies and broadcasts, one per call

static void pstack_sup_log(const char* text) {
    FILE* f = pstack.log_stream ? pstack.log_stream : stdout;
    fprintf(f, PSTACK_LOG_LINE_PREFIX "device (supervisor), level 0]: %s\n", text);
}

namespace Super {
// graph_schema's simulators treat the two marker texts as application exit (graph-schema.md s6).
static inline void post(const std::string& text) {
    if (text == PSTACK_EXIT_SUCCESS_MARKER) { handler_exit(0); return; }
    if (text == PSTACK_EXIT_FAIL_MARKER) { handler_exit(1); return; }
    pstack_sup_log(text.c_str());
}

template <typename... Args>
static inline void post(const char* fmt, Args... args) {
    if (sizeof...(args) == 0) { post(std::string(fmt)); return; }
    char buf[1024];
    snprintf(buf, sizeof buf, fmt, args...);
    post(std::string(buf));
}

static inline void stop_application() { handler_exit(0); }
}  // namespace Super

#undef RTSSUP
#undef RTSBCAST
#undef RTSREPLY
#undef SUPSTATE
#define RTSSUP() (*readyToSend |= RTS_SUPER_IMPLICIT_SEND_FLAG)
#define RTSREPLY() (pstack_sup_out->reply = true)
#define RTSBCAST() (pstack_sup_out->bcast = true)
#define SUPSTATE(a) (supervisorState->a)
#define SUPPROPERTIES(a) (supervisorProperties->a)

// The supervisor's handlers, by number (the generated pstack_sup_handler dispatches on it).
enum PstackSupHandler { PSTACK_SUP_ON_INIT = 0, PSTACK_SUP_ON_RECEIVE = 1, PSTACK_SUP_ON_IDLE = 2, PSTACK_SUP_ON_STOP = 3 };
static const uint32_t PSTACK_NO_SUPERVISOR_PIN = 0xffffffffu;

// Generated (supervisor.cpp.j2): the state's creation, the handlers, the pins of each device type.
static void pstack_sup_create();
static char* pstack_sup_state_bytes();     // the state, for a snapshot's dump (pstack_snapshot.hpp) ...
extern const uint32_t pstack_sup_state_size;  // ... its size,
extern const bool pstack_sup_state_plain;     // ... and whether it is plain data (copied as bytes)
static bool pstack_sup_has(int which);
static void pstack_sup_handler(int which, const void* msg, void* reply, void* bcast, PstackSupOut* out);
extern const uint32_t pstack_sup_out_pin[];  // per device type: the SupervisorOutPin's index, or none
extern const uint32_t pstack_sup_in_pin[];   // per device type: the SupervisorInPin's index, or none
extern const uint32_t pstack_sup_reply_msg;  // the message type of replies and broadcasts

// Hooks the engine calls (defined in pstack_supervisor_run.hpp).  In a split the supervisor lives
// in the region with the lowest number (docs/formats-v4.md, "Supervisors in a split").
static void supervisor_start();                   // before the devices' OnInit: the state and OnInit (its region)
static void supervisor_send(uint32_t d, uint32_t pin);  // device d sent pstack.msgbuf on its SupervisorOutPin
static bool supervisor_takes(uint32_t d, uint32_t pin);  // a message item from d's pin is the supervisor's: take it
static bool supervisor_item(const char* p, const char* item);  // items SUPERVISOR_*: true if p's kind is one
static void supervisor_report_wake();              // split: before going idle, tell the IDLE script a device woke
static bool supervisor_idle();                     // one region, idle: OnSupervisorIdle; true if a device woke
static void supervisor_stop();                     // the run ended: OnStop (its region)
// Snapshots and resuming from a checkpoint (pstack_snapshot.hpp; defined in pstack_supervisor_run.hpp).
static uint32_t pstack_sup_awaiting = 0;           // split: messages to the supervisor it has not yet said it handled
static void supervisor_await_done();               // split: wait until the supervisor handled them
static void supervisor_dump(PstackOutBuf& b);      // its part of a dump
static void supervisor_restore(const char* state, uint32_t size, uint64_t received, uint64_t sent);  // instead of supervisor_start
static void supervisor_resume_message(uint32_t d); // a message from d to the supervisor, in flight at the cut
static bool supervisor_resume_item(const char* p, const char* item, const uint32_t* old_region, uint32_t old_r);

#endif  // PSTACK_SUPERVISOR_HPP
