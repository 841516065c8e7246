// pstack-celery engine runtime: snapshots of a run in one region, asked for by a signal.
//
// One region's engine talks to no Redis, so it cannot take the snapshot item (pstack_snapshot.hpp).
// Started with `--snapshot-dir DIR`, it writes its pid to DIR/engine.pid and takes SIGUSR1 as the
// request instead: the handler only sets a flag, which the loop looks at where it already stops
// every 1024 steps (and before each quiescence's OnSupervisorIdle / OnHardwareIdle), so a run that
// is never asked pays one load and a branch per 1024 steps.  At that safe point it reads the
// request, DIR/request ("<token> <mode>", mode as in item 9; missing: a snapshot with scalar
// states), writes its dump (the same layout, nothing held) to DIR/<token>.snap through a rename, and
// carries on: with one region there is nothing in flight, so the cut needs no barrier and no pause.
// Whoever asked reads the file: the worker of a one-region process forwards it to Redis as a
// split's region would (pstack_tasks/worker/snapshot_port.py); psim writes a snapshot or checkpoint.
#ifndef PSTACK_SNAPSHOT_SIGNAL_HPP
#define PSTACK_SNAPSHOT_SIGNAL_HPP

#include <csignal>

static volatile sig_atomic_t pstack_snap_signalled = 0;
static const char* pstack_snap_dir = nullptr;  // --snapshot-dir

static void snapshot_on_signal(int) { pstack_snap_signalled = 1; }

// Take SIGUSR1 as a request from now on, and say so with DIR/engine.pid (written after the
// handler is in place, so that a signal sent on its word never finds the default action).
static void snapshot_listen(const char* dir) {
    pstack_snap_dir = dir;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = snapshot_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, nullptr);
    sigset_t usr1;  // psim blocks it in its own threads (one of them waits for it): lifted here
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &usr1, nullptr);
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/engine.pid", dir);
    snprintf(tmp, sizeof tmp, "%s/engine.pid.tmp", dir);
    FILE* f = fopen(tmp, "w");
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
        pstack_fatal(PSTACK_STATUS_USAGE, "cannot write %s: %s", path, strerror(errno));
}

static void snapshot_to_file() {
    pstack_snap_signalled = 0;
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/request", pstack_snap_dir);
    strcpy(pstack_snap.token, "signal");
    pstack_snap.mode = 0;
    FILE* req = fopen(path, "r");
    if (req) {
        char token[sizeof pstack_snap.token];
        int mode = 0;
        if (fscanf(req, "%47s %d", token, &mode) == 2 && strspn(token, "0123456789abcdefABCDEF-_") == strlen(token)) {
            strcpy(pstack_snap.token, token);
            pstack_snap.mode = mode;
        }
        fclose(req);
    }
    PstackOutBuf dump;
    build_dump(dump);
    snprintf(path, sizeof path, "%s/%s.snap", pstack_snap_dir, pstack_snap.token);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE* f = fopen(tmp, "wb");
    bool ok = f && fwrite(dump.data, 1, dump.len, f) == dump.len;
    if (f && fclose(f) != 0) ok = false;
    if (!ok || rename(tmp, path) != 0)  // the run goes on: the requester times out and says so
        fprintf(pstack.log_stream ? pstack.log_stream : stderr, "pstack-engine: warning: cannot write snapshot %s: %s\n",
                path, strerror(errno));
    free(dump.data);
}

// At a safe point of a one-region run: a requested snapshot, written now.
static inline void snapshot_if_signalled() {
    if (__builtin_expect(pstack_snap_signalled, 0)) snapshot_to_file();
}

#endif  // PSTACK_SNAPSHOT_SIGNAL_HPP
