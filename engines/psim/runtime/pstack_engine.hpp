// pstack-celery engine runtime: the parts in order, and main.
//
// Included at the end of every generated engine, after the tables and dispatch functions that
// pstack_contract.hpp declares.  The graph *instance* comes from a binary file at run time
// (docs/engine-protocol.md).  Each part uses only those before it; the one exception is an item
// read off the wire, handled by pstack_delivery.hpp (declared in pstack_wire.hpp).
#ifndef PSTACK_ENGINE_HPP
#define PSTACK_ENGINE_HPP

#include "pstack_contract.hpp"

#include "pstack_limits.hpp"       // signals, resource limits, crash reports, dying with the parent
#include "pstack_instance.hpp"     // the instance file and the region list
#include "pstack_output.hpp"       // progress counters, metrics and final states
#include "pstack_wire.hpp"         // RESP to and from Redis through socat
#include "pstack_sweep.hpp"        // a split region's ready set, swept in device order
#include "pstack_delivery.hpp"     // messages into devices, items from other regions, idle rounds
#include "pstack_termination.hpp"  // polling and waiting for items, the IDLE script, the end of a split
#include "pstack_snapshot.hpp"     // live snapshots, resuming from a checkpoint
#include "pstack_snapshot_signal.hpp"  // one region's snapshots, asked for by SIGUSR1
#include "pstack_loop.hpp"         // start-up and the event loop

// ---- the command line ---------------------------------------------------------------------------
// What main needs beyond the engine state, which the options set directly.
struct EngineOptions {
    const char* instance = nullptr;
    bool states = true, full = false;
    int skip_replies = 0;
    int region = 0;
    const char* region_list = nullptr;
    long parent = 0;
    int progress_fd = -1;
    const char* resume = nullptr;  // --resume: a checkpoint to start from (pstack_snapshot.hpp)
    const char* snapshot_dir = nullptr;  // --snapshot-dir: one region's snapshots (pstack_snapshot_signal.hpp)
};

static void usage() {
    pstack_fatal(PSTACK_STATUS_USAGE,
        "usage: engine INSTANCE [--no-states] [--full-state] [--level L] [--max-steps N] "
        "[--time-limit S] [--pid P] [--prefix K] [--region R] [--regions R0,R1,...] [--skip-replies N] "
        "[--command-fd FD] [--parent-pid P] [--progress-fd FD] [--cpu-limit S] [--memory-limit MIB] [--file-limit MIB] [--resume FILE] [--snapshot-dir DIR]");
}

static EngineOptions parse_options(int argc, char** argv) {
    EngineOptions o;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--json")) continue;  // the result is always JSON: accepted for older callers
        else if (!strcmp(a, "--no-states")) o.states = false;
        else if (!strcmp(a, "--full-state")) o.full = true;
        else if (!strcmp(a, "--level") && more) pstack.log_level = atoi(argv[++i]);
        else if (!strcmp(a, "--max-steps") && more) {
            pstack.max_steps = strtoull(argv[++i], nullptr, 10);
            if (!pstack.max_steps) pstack.max_steps = UINT64_MAX;
        }
        else if (!strcmp(a, "--time-limit") && more) pstack.time_limit = atof(argv[++i]);
        else if (!strcmp(a, "--pid") && more) pstack.pid = atol(argv[++i]);
        else if (!strcmp(a, "--prefix") && more) pstack.prefix = argv[++i];
        else if (!strcmp(a, "--region") && more) o.region = atoi(argv[++i]);
        else if (!strcmp(a, "--regions") && more) o.region_list = argv[++i];
        else if (!strcmp(a, "--skip-replies") && more) o.skip_replies = atoi(argv[++i]);
        else if (!strcmp(a, "--app-file") && more) pstack.app_file = argv[++i];
        else if (!strcmp(a, "--command-fd") && more) pstack.out_fd = atoi(argv[++i]);
        else if (!strcmp(a, "--progress-fd") && more) o.progress_fd = atoi(argv[++i]);
        else if (!strcmp(a, "--parent-pid") && more) o.parent = atol(argv[++i]);
        else if (!strcmp(a, "--cpu-limit") && more) pstack.cpu_limit = atol(argv[++i]);
        else if (!strcmp(a, "--memory-limit") && more) pstack.memory_limit_mib = atol(argv[++i]);
        else if (!strcmp(a, "--file-limit") && more) pstack.file_limit_mib = atol(argv[++i]);
        else if (!strcmp(a, "--resume") && more) o.resume = argv[++i];
        else if (!strcmp(a, "--snapshot-dir") && more) o.snapshot_dir = argv[++i];
        else if (a[0] != '-' && !o.instance) o.instance = a;
        else usage();
    }
    if (!o.instance) usage();
    return o;
}

// ---- main ----------------------------------------------------------------------------------------
int main(int argc, char** argv) {
    install_crash_handlers();
    // Handler logs and errors on stderr, a write per line; stdout carries the result alone.
    static char log_buf[1 << 16];
    setvbuf(stderr, log_buf, _IOLBF, sizeof log_buf);
    pstack.log_stream = stderr;
    EngineOptions o = parse_options(argc, argv);
    follow_parent(o.parent);
    apply_limits();
    if (o.progress_fd >= 0) map_progress(o.progress_fd);
    set_regions(o.region, o.region_list);
    bool split = pstack.nregions > 1;
    if (split) {
        open_wire(o.skip_replies);
        load_idle_script();
    }
    double t0 = now_seconds();
    load_instance(o.instance);
    double t1 = now_seconds();
    if (split) {
        await_idle_script();
        sweep_init();
    }
    char* resumed = nullptr;
    if (o.snapshot_dir && !split) snapshot_listen(o.snapshot_dir);
    if (o.resume) resume_from(o.resume, &resumed);
    else start_devices();
    if (!pstack.stop) run_loop();
    else if (split && stopped_here()) broadcast_exit();
    free(resumed);
    if (split) drain_replies();
    double t2 = now_seconds();
    publish_progress();
    pstack.cur_handler = "output";
    if (pstack.log_stream) fflush(pstack.log_stream);
    print_results(o.states, o.full, t1 - t0, t2 - t1);
    return PSTACK_STATUS_OK;
}

#endif  // PSTACK_ENGINE_HPP
