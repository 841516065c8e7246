// pstack-celery engine runtime: what handler code sees.
//
// Included (through pstack_contract.hpp) before the typed structs and the application's shared
// code: handler_log / handler_exit / assert are global so pstack's v2 shared code may call them,
// and logging costs one compare when its level is above the run's.  Also the runtime's own
// fatal errors and the exact text of numbers on the wire, which the generated pack/unpack use.
#ifndef PSTACK_CORE_HPP
#define PSTACK_CORE_HPP

#include <cassert>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstddef>
#include <unistd.h>

#include "pstack_state.hpp"

static inline const char* pstack_device_name(uint32_t d) {
    return pstack.dev_names ? pstack.dev_names[d] : "?";
}

// Where a handler runs now, for logs and fault reports.  Every dispatch names its handler and
// device (cur_handler, cur_dev) before calling it, except in the hot loop (cur_handler
// PSTACK_AT_HOT), which stores its device once a turn (cur_dev) and one word per handler,
// pstack.hot_where: the phase of the turn (ReadyToSend, or OnSend of a pin), a flat slot whose one
// edge's receive runs, or that the receive of cur_edge runs (pstack_loop.hpp,
// pstack_delivery.hpp).  Device and handler name are read from those only when something is reported.
extern const char* const pstack_recv_names[];  // by input pin over all types (the generated code)
extern const char* const pstack_rts_names[];   // by device type
extern const char* const pstack_send_names[];  // by output pin over all types
extern const uint32_t pstack_n_outputs[];      // output pins, per type (pstack_contract.hpp)
extern const uint32_t pstack_out_base[];
static const uint32_t PSTACK_WHERE_RTS = 0;    // ReadyToSend of cur_dev; 1 + pin (1..32): OnSend of that pin of cur_dev
static const uint32_t PSTACK_WHERE_EDGE = 64;  // the receive over the edge cur_edge
static const uint32_t PSTACK_WHERE_SLOT = 65;  // + pin (65..96): the receive over the one edge of cur_dev's slot of pin (flat_dst)

static inline const PstackEdge* pstack_where_edge() {
    if (pstack.cur_handler != PSTACK_AT_HOT) return nullptr;
    if (pstack.hot_where == PSTACK_WHERE_EDGE) return pstack.cur_edge;
    if (pstack.hot_where >= PSTACK_WHERE_SLOT)
        return pstack.edges + pstack.slot_edges[pstack.out_base[pstack.cur_dev] + pstack.hot_where - PSTACK_WHERE_SLOT];
    return nullptr;
}

static inline uint32_t pstack_where_device() {
    const PstackEdge* e = pstack_where_edge();
    return e ? e->dst : pstack.cur_dev;
}

static inline const char* pstack_where_handler() {
    const PstackEdge* e = pstack_where_edge();
    if (e) return pstack_recv_names[e->input];
    if (pstack.cur_handler != PSTACK_AT_HOT) return pstack.cur_handler;
    uint32_t t = pstack.dev_type[pstack.cur_dev];
    uint32_t phase = pstack.hot_where;
    if (phase == PSTACK_WHERE_RTS || phase > pstack_n_outputs[t]) return pstack_rts_names[t];  // a bit past the pins: ReadyToSend set it
    return pstack_send_names[pstack_out_base[t] + phase - 1];
}

static inline void handler_exit(int code) {
    if (!pstack.stop) {
        pstack.stop = 1;
        pstack.exit_code = code;
        pstack.exit_reason = PSTACK_EXIT_REASON_HANDLER_EXIT;
    }
}

// The runtime's own stops (limits, remote orders, quiescence in a split) replace any earlier reason.
static inline void stop_run(int code, const char* reason) {
    pstack.stop = 1;
    pstack.exit_code = code;
    pstack.exit_reason = reason;
}

__attribute__((format(printf, 2, 3), noinline, cold))
static void pstack_log_impl(int level, const char* fmt, ...) {
    // graph_schema's simulators treat the two marker texts as application exit (graph-schema.md s6).
    if (strcmp(fmt, PSTACK_EXIT_SUCCESS_MARKER) == 0) { handler_exit(0); return; }
    if (strcmp(fmt, PSTACK_EXIT_FAIL_MARKER) == 0) { handler_exit(1); return; }
    if (level > pstack.log_level) return;
    FILE* f = pstack.log_stream ? pstack.log_stream : stdout;
    fprintf(f, PSTACK_LOG_LINE_PREFIX "device %s, level %d]: ", pstack_device_name(pstack_where_device()), level);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
}

// Arguments are always evaluated (handlers write `handler_log(1, "%d", ++x)`), but the formatting
// call is skipped when the level is off; exit-marker strings are logged at level 0 and always seen.
template <typename... Args>
static inline void handler_log(int level, const char* fmt, Args... args) {
    if (__builtin_expect(level <= pstack.log_level || level <= 0, 0)) pstack_log_impl(level, fmt, args...);
}

// ---- fatal errors, crash and assertion reports --------------------------------------------------
// Exit statuses are PSTACK_STATUS_* (pstack_contract.hpp); an error line starts with
// PSTACK_ENGINE_ERROR_PREFIX, and there is at most one, just before the exit.

static void pstack_write_all(int fd, const char* s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void pstack_write_str(int fd, const char* s) { pstack_write_all(fd, s, strlen(s)); }

__attribute__((noreturn, format(printf, 2, 3)))
static void pstack_fatal(int status, const char* fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fflush(pstack.log_stream);
    pstack_write_str(2, PSTACK_ENGINE_ERROR_PREFIX);
    pstack_write_str(2, buf);
    pstack_write_str(2, "\n");
    _exit(status);
}

__attribute__((noreturn, cold))
static void pstack_assert_fail(const char* expr, const char* file, int line) {
    pstack_fatal(PSTACK_STATUS_HANDLER, "assertion failed in device '%s', handler %s (%s:%d): %s",
                 pstack_device_name(pstack_where_device()), pstack_where_handler(), pstack.app_file ? pstack.app_file : file,
                 line, expr);
}

#undef assert
#define assert(cond) ((cond) ? (void)0 : pstack_assert_fail(#cond, __FILE__, __LINE__))

// ---- Orchestrator-compatibility macros (graph-schema.md s5) -------------------------------------
#define GRAPHPROPERTIES(a) (graphProperties->a)
#define DEVICEPROPERTIES(a) (deviceProperties->a)
#define DEVICESTATE(a) (deviceState->a)
#define EDGEPROPERTIES(a) (edgeProperties->a)
#define EDGESTATE(a) (edgeState->a)
#define MSG(a) (message->a)
#define PKT(a) (message->a)
#define RTS(pin) (*readyToSend |= RTS_FLAG_##pin)
// Supervisors are refused when the file is read; these only make a stray use fail to compile by name.
#define RTSSUP() pstack_error_supervisors_are_not_supported_yet()
#define RTSBCAST() pstack_error_supervisors_are_not_supported_yet()
#define RTSREPLY() pstack_error_supervisors_are_not_supported_yet()
#define SUPSTATE(a) pstack_error_supervisors_are_not_supported_yet()

// OnInit / OnHardwareIdle may call handler_checkpoint (graph_schema's snapshot hook): a no-op here.
template <typename... Args>
static inline void handler_checkpoint(Args...) {}

// ---- numbers on the wire: exact text for every scalar type --------------------------------------
static inline char* pstack_put_u64(char* p, uint64_t v) {
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static inline char* pstack_put_i64(char* p, int64_t v) {
    if (v < 0) { *p++ = '-'; return pstack_put_u64(p, (uint64_t)0 - (uint64_t)v); }
    return pstack_put_u64(p, (uint64_t)v);
}

static inline char* pstack_put_double(char* p, double v) { return p + sprintf(p, "%.17g", v); }
static inline char* pstack_put_float(char* p, float v) { return p + sprintf(p, "%.9g", (double)v); }

static inline const char* pstack_skip_ws(const char* p) {
    while (*p == ' ') ++p;
    return p;
}

static inline const char* pstack_get_i64(const char* p, int64_t* out) {
    p = pstack_skip_ws(p);
    bool neg = false;
    if (*p == '-') { neg = true; ++p; }
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') v = v * 10 + (uint64_t)(*p++ - '0');
    *out = neg ? (int64_t)((uint64_t)0 - v) : (int64_t)v;
    return p;
}

static inline const char* pstack_get_double(const char* p, double* out) {
    char* end;
    *out = strtod(p, &end);
    return end;
}

#endif  // PSTACK_CORE_HPP
