// pstack-celery engine runtime: a split run's regions working together, and knowing when to stop.
//
// While it has work a region polls Redis now and then for items (net_poll_active).  Without work
// it hands its share of <pid>.active to the termination detector, the IDLE script, and waits for
// items (net_wait_idle); the script ends the run, or starts an OnHardwareIdle round, when the
// counter says that no region works and no item is in flight (docs/engine-protocol.md).
#ifndef PSTACK_TERMINATION_HPP
#define PSTACK_TERMINATION_HPP

static const uint32_t POP_COUNT = 256;  // elements taken per pop (each up to ELEMENT_BYTES of items)

// Elements a region pushes with its IDLE call instead of in RPUSHes of their own (more go first,
// as RPUSH commands: Lua would unpack them one by one).
static const uint32_t IDLE_CALL_ITEMS = 64;

// ---- the IDLE script ---------------------------------------------------------------------------
// PSTACK_IDLE_SCRIPT, rendered from pstack_tasks/native/lua/idle.lua (its KEYS and ARGV are
// described there).  Loaded once, called by SHA on every idle transition.  Sent at the start; its reply is read
// after loading the instance (await_idle_script), by when it has long arrived.
static void load_idle_script() {
    snprintf(pstack.seq_key, sizeof pstack.seq_key, PSTACK_KEY_CALLS_FMT, pstack.prefix, pstack.pid);
    snprintf(pstack.idle_key, sizeof pstack.idle_key, PSTACK_KEY_IDLE_FMT, pstack.prefix, pstack.pid);
    snprintf(pstack.idle_round_limit, sizeof pstack.idle_round_limit, "%d", PSTACK_HAS_HW_IDLE ? PSTACK_MAX_IDLE_ROUNDS : 0);
    pstack.queue_names = (char**)xmalloc(sizeof(char*) * pstack.nregions);
    for (int i = 0; i < pstack.nregions; ++i) {
        pstack.queue_names[i] = (char*)xmalloc(256);
        queue_name(pstack.queue_names[i], 256, i);
    }
    const char* load[] = {"SCRIPT", "LOAD", PSTACK_IDLE_SCRIPT};
    command(3, load);
    expect(P_SCRIPT);
    wire_flush();
}

static void await_idle_script() {
    read_reply();
    if (!pstack.idle_sha[0]) pstack_fatal(PSTACK_STATUS_IO, "Redis did not load the termination script");
}

// The IDLE call's arguments after the keys (ARGV[1..5+R]), then the items (which leave the batches).
static void put_idle_call_args() {
    char share[32], region[16], seq[32], count[16];
    pstack.wire.bulk(pstack.idle_round_limit);
    pstack.wire.bulk(pstack.idle_woke ? "1" : "0");
    snprintf(share, sizeof share, "%ld", pstack.share);
    pstack.wire.bulk(share);
    snprintf(region, sizeof region, "%d", pstack.region);
    pstack.wire.bulk(region);
    snprintf(seq, sizeof seq, "%ld", ++pstack.seq);
    pstack.wire.bulk(seq);
    for (int i = 0; i < pstack.nregions; ++i) {
        snprintf(count, sizeof count, "%u", pstack.items[i].items);
        pstack.wire.bulk(count);
    }
    for (int i = 0; i < pstack.nregions; ++i) {
        PstackOutBuf& b = pstack.items[i];
        if (b.items) pstack.wire.put(b.data, b.len);
        b.len = 0;
        b.items = 0;
    }
}

// The IDLE script call, carrying this region's unflushed items, with its reply skipped (CLIENT
// REPLY SKIP): a region going idle then waits for nothing but its blocking pop, so a message
// crossing regions costs Redis, socat and the engines one wake-up less.
static void send_idle_script() {
    close_elements();
    uint32_t total = unflushed_items();
    const char* skip[] = {"CLIENT", "REPLY", "SKIP"};
    command(3, skip);
    char hdr[32], nk[16];
    unsigned nregions = (unsigned)pstack.nregions;
    pstack.wire.put(hdr, snprintf(hdr, sizeof hdr, "*%u\r\n", 3u + 3u + nregions + 5u + nregions + total));
    pstack.wire.bulk("EVALSHA");
    pstack.wire.bulk(pstack.idle_sha);
    snprintf(nk, sizeof nk, "%d", 3 + pstack.nregions);
    pstack.wire.bulk(nk);
    pstack.wire.bulk(pstack.active_key);
    pstack.wire.bulk(pstack.idle_key);
    pstack.wire.bulk(pstack.seq_key);
    for (int i = 0; i < pstack.nregions; ++i) pstack.wire.bulk(pstack.queue_names[i]);
    put_idle_call_args();
    pstack.idle_woke = false;
    pstack.share = 0;
}

// Redis has heard nothing from the other regions for a while: make sure it ran this region's last
// IDLE call (its reply was skipped), else the region would wait for ever.
static void check_idle_call_ran() {
    char region[16];
    snprintf(region, sizeof region, "%d", pstack.region);
    const char* get[] = {"HGET", pstack.seq_key, region};
    command(3, get);
    expect(P_SEQ);
    wire_flush();
    pstack.seq_seen = -1;
    read_pending_replies();
    if (pstack.seq_seen != pstack.seq)
        pstack_fatal(PSTACK_STATUS_IO, "Redis did not run this region's termination script (call %ld; it last ran "
                     "call %ld): were its scripts flushed, or is it out of memory?", pstack.seq, pstack.seq_seen);
}

// ---- a region with work, and without -----------------------------------------------------------
// True once the region has woken with items since its last poll.  A region that went idle within
// the last poll interval exchanged everything with Redis then (its IDLE call pushed its items, its
// pop took what was queued), so the next poll is skipped.  A poll in the middle of a short burst
// of work cost a round trip: the region, idle a moment later, must read the LPOP's reply before
// its IDLE call (the pop may bring work), and the partial batch it flushed split the other
// region's next round in two.  The 2-region ring (bursts of 500 steps) moved 1.5-2x as many
// messages per second without them; long bursts still poll at every other interval at least.
static bool pstack_woke_since_poll = false;

static bool snapshot_pause_if_requested();  // pstack_snapshot.hpp

// After a snapshot's pause a region's queue can hold elements of two rounds at once (what the
// other regions sent while it paused, or as they let go).  Taken by one blocking pop, they became
// one burst and stayed merged: the lockstep multi-token ring, split in two, then alternated one
// region working while the other waited, instead of both working at once, and ran 16% slower with
// a checkpoint every 10 s (bench/checkpoint_bench.py).  So the first blocking pops after a pause
// take one element each, as the rounds arrived; afterwards a pop takes up to POP_COUNT again.
static const uint32_t PSTACK_SINGLE_POPS_AFTER_PAUSE = 16;
static uint32_t pstack_single_pops_left = 0;

static double wire_clock() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// An LPOP that finds the queue empty costs both relays and Redis a wake-up each: polled at every
// check (every 1024 turns) a gals_heat region sent ~20 k of them in 4 s and the relays and Redis
// took half a core from the engines on a 2-core machine.  Items are pushed at every check (a
// region waiting for them gets them at once, through its blocking pop); the queue is asked at
// most every PSTACK_POP_INTERVAL seconds while there is local work.
#ifndef PSTACK_POP_INTERVAL
#define PSTACK_POP_INTERVAL 0.001
#endif
static double pstack_last_pop = 0;

// Called now and then while local work remains: send what is pending, ask for new items now and
// then, and take in whatever replies have already arrived, without waiting.
static void net_poll_active(double now) {
    if (pstack_woke_since_poll) { pstack_woke_since_poll = false; return; }
    flush_items();
    if (!pstack.lpop_outstanding && now - pstack_last_pop >= PSTACK_POP_INTERVAL) {
        pstack_last_pop = now;
        char cnt[16];
        snprintf(cnt, sizeof cnt, "%u", POP_COUNT);
        const char* argv[] = {"LPOP", pstack.my_queue, cnt};
        command(3, argv);
        expect(P_LPOP);
        pstack.lpop_outstanding = true;
        pstack_wire_stats.pops++;
    }
    wire_flush();
    while (pstack.pend_head != pstack.pend_tail && replies_ready()) read_reply();
    snapshot_pause_if_requested();  // snapshot hook (pstack_snapshot.hpp)
}

// One blocking pop of this region's queue (up to POP_COUNT elements, or one just after a pause,
// waiting at most 5 s), sent;
// its reply is read by the caller (read_pending_replies takes the items it brings).
static void send_blocking_pop() {
    char cnt[16];
    snprintf(cnt, sizeof cnt, "%u", pstack_single_pops_left ? 1 : POP_COUNT);
    if (pstack_single_pops_left) --pstack_single_pops_left;
    const char* bl[] = {"BLMPOP", "5", "1", pstack.my_queue, "LEFT", "COUNT", cnt};
    command(7, bl);
    expect(P_BLMPOP);
    wire_flush();
}

// No local work: hand the region's share to the termination detector and wait for items.  The
// IDLE script and the blocking pop go out together: one round trip per wake-up.  The script's
// answer needs no wait: when it ends the run (PSTACK_ITEM_QUIESCENT) or starts an idle round
// (PSTACK_ITEM_HARDWARE_IDLE), the item is in this region's queue too, and the pop brings it.
static void net_wait_idle() {
    close_elements();
    if (unflushed_items() > IDLE_CALL_ITEMS) flush_items();  // a few go with the IDLE call instead
    if (pstack.lpop_outstanding) {  // it may bring work: wait for it before saying this region is idle
        wire_flush();
        while (pstack.lpop_outstanding) read_reply();
        if (snapshot_pause_if_requested()) return;  // snapshot hook: never idle with held items
        if (pstack.stop || pstack.rq_head != pstack.rq_tail) return;
    }
    send_idle_script();
    for (;;) {
        send_blocking_pop();
        pstack.took_items = false;
        double t0 = wire_clock();
        read_pending_replies();
        pstack_wire_stats.waits++;
        pstack_wire_stats.wait_seconds += wire_clock() - t0;
        if (pstack.took_items || pstack.stop) { pstack_woke_since_poll = true; return; }
        check_idle_call_ran();  // nothing after 5 s: was the IDLE call refused?  Else wait again.
    }
}

// ---- the end of a split run --------------------------------------------------------------------
// Read every reply still owed: an engine leaves its Redis connection as it found it (the worker
// hands the same relay to the next engine).
static void drain_replies() {
    wire_flush();
    read_pending_replies();
    close_wire();
    const char* stats_file = getenv("PSTACK_WIRE_STATS");  // a file to append this region's line to
    FILE* f = stats_file && *stats_file ? fopen(stats_file, "a") : nullptr;
    if (f) {
        const PstackWireStats& w = pstack_wire_stats;
        fprintf(f, "wire region %d: pushes %llu, elements out %llu (items %llu), pops %llu, blocking waits %llu "
                "(%.3f s), elements in %llu (items %llu), largest element %llu bytes\n", pstack.region, (unsigned long long)w.pushes,
                (unsigned long long)w.elements_out, (unsigned long long)w.items_out, (unsigned long long)w.pops,
                (unsigned long long)w.waits, w.wait_seconds, (unsigned long long)w.elements_in,
                (unsigned long long)w.items_in, (unsigned long long)w.largest);
        fclose(f);
    }
}

// A stop that began in this region (handler_exit, a limit) must reach the other regions.
static bool stopped_here() {
    return strcmp(pstack.exit_reason, PSTACK_EXIT_REASON_QUIESCENCE) != 0
        && strcmp(pstack.exit_reason, PSTACK_EXIT_REASON_REMOTE_STOP) != 0;
}

// PSTACK_ITEM_STOP with the exit code to every other region.
static void broadcast_exit() {
    char item[32];
    int n = snprintf(item, sizeof item, "%c %d", PSTACK_ITEM_STOP, pstack.exit_code);
    close_elements();  // messages before the stop
    for (int pos = 0; pos < pstack.nregions; ++pos)
        if (pos != pstack.my_pos) { pstack.items[pos].bulk(item, n); pstack.items[pos].items++; }
    flush_items();
    wire_flush();
    read_pending_replies();
}

#endif  // PSTACK_TERMINATION_HPP
