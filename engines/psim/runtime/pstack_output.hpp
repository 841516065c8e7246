// pstack-celery engine runtime: what the engine tells whoever started it.
//
// Live progress counters in a shared mapping (--progress-fd), and at the end the metrics and
// final states on stdout, as one JSON document (docs/engine-protocol.md, "What runs").  The
// engine prints nothing else: pstack's text ("Metric [...]: ", "State [...]: ") is rendered from
// this by pstack_tasks/native/results.py, the one renderer of it.
#ifndef PSTACK_OUTPUT_HPP
#define PSTACK_OUTPUT_HPP

#include <sys/mman.h>

// ---- progress ----------------------------------------------------------------------------------
// The progress file comes as an open descriptor (already unlinked: nothing to leak if we die).
static void map_progress(int fd) {
    void* m = mmap(nullptr, 2 * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) pstack_fatal(PSTACK_STATUS_USAGE, "cannot map the progress file (fd %d): %s", fd, strerror(errno));
    close(fd);
    pstack.progress = (volatile uint64_t*)m;
}

// {delivered, steps}: refreshed every so many steps, when the region goes idle, and at the end.
static inline void publish_progress() {
    if (pstack.progress) { pstack.progress[0] = pstack.delivered; pstack.progress[1] = pstack.steps; }
}

// ---- results -----------------------------------------------------------------------------------
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

// `, "name": ` (no comma before the first): a member of the metrics object, named by the protocol.
static void json_member(FILE* f, const char* name, bool first = false) {
    if (!first) fputs(", ", f);
    json_string(f, name);
    fputs(": ", f);
}

static void json_count(FILE* f, const char* name, uint64_t v, bool first = false) {
    json_member(f, name, first);
    fprintf(f, "%llu", (unsigned long long)v);
}

static void json_seconds(FILE* f, const char* name, double v) {
    json_member(f, name);
    fprintf(f, "%.6f", v);
}

static void print_json_metrics(FILE* f, double load_s, double run_s) {
    fputs("{\"metrics\": {", f);
    json_count(f, PSTACK_METRIC_DELIVERED, pstack.delivered, true);
    json_member(f, PSTACK_METRIC_EXIT_CODE);
    fprintf(f, "%d", pstack.exit_code);
    json_count(f, PSTACK_METRIC_SENT, pstack.sent);
    json_count(f, PSTACK_METRIC_CANCELLED, pstack.cancelled);
    json_count(f, PSTACK_METRIC_IDLE_ROUNDS, pstack.idle_rounds);
    json_member(f, PSTACK_METRIC_EXIT_REASON);
    json_string(f, pstack.exit_reason);
    json_count(f, PSTACK_METRIC_REMOTE_SENT, pstack.remote_sent);
    json_count(f, PSTACK_METRIC_REMOTE_RECEIVED, pstack.remote_received);
#if PSTACK_HAS_SUPERVISOR  // supervisor hook (pstack_supervisor.hpp): its receives and sends
    json_count(f, PSTACK_METRIC_SUPERVISOR_RECEIVED, pstack_sup_received);
    json_count(f, PSTACK_METRIC_SUPERVISOR_SENT, pstack_sup_sent);
#endif
    json_seconds(f, PSTACK_METRIC_LOAD_SECONDS, load_s);
    json_seconds(f, PSTACK_METRIC_RUN_SECONDS, run_s);
    fputc('}', f);
}

static void print_json_states(FILE* f, bool full) {
    bool first = true;
    for (uint32_t d = 0; d < pstack.ndev; ++d) {
        if (!is_local(d)) continue;
        fputs(first ? "\n" : ",\n", f);
        first = false;
        json_string(f, pstack.dev_names[d]);
        fputs(": ", f);
        pstack_print_state(f, pstack.dev_type[d], pstack.dev_local[d], full);
    }
}

static void print_results(bool states, bool full, double load_s, double run_s) {
    FILE* f = stdout;
    static char buf[1 << 20];  // states of a big graph: one write per MiB
    setvbuf(f, buf, _IOFBF, sizeof buf);
    print_json_metrics(f, load_s, run_s);
    fputs(", \"states\": {", f);
    if (states) print_json_states(f, full);
    fputs("}}\n", f);
    fflush(f);
}

#endif  // PSTACK_OUTPUT_HPP
