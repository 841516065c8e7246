// pstack-celery engine runtime: the event loop.
//
// Scheduling: a FIFO of devices whose ready-to-send may have changed.  A popped device sends on
// its lowest set RTS bit; the message is delivered at once (pstack_delivery.hpp) and the sender
// goes to the back of the queue if it still wants to send.  The hot path is step_device and the
// inner loop of run_ready_devices: no allocation, no system call, one compare per limit; the
// slower checks (progress, time limit, Redis) run every POLL_EVERY steps.
#ifndef PSTACK_LOOP_HPP
#define PSTACK_LOOP_HPP

#include <ctime>

static double now_seconds() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Start-up: every local device is initialised before anything is sent (all of them, even after a
// handler_exit, as graph_schema's simulators do); then those ready to send join the queue.
static void start_devices() {
#if PSTACK_HAS_SUPERVISOR  // supervisor hook (pstack_supervisor.hpp): its OnInit runs first
    supervisor_start();
#endif
    for (uint32_t d = 0; d < pstack.ndev; ++d) {
        if (!is_local(d)) continue;
        pstack.cur_dev = d;
        pstack_init(pstack.dev_type[d], pstack.dev_local[d]);
    }
    for (uint32_t d = 0; d < pstack.ndev && !pstack.stop; ++d) {
        if (!is_local(d)) continue;
        pstack.cur_dev = d;
        if (pstack_rts(pstack.dev_type[d], pstack.dev_local[d])) rq_push(d);
    }
}

// Kept out of the hot loop's code, so that its registers go to the local path.
__attribute__((noinline)) static void send_remote_out_of_line(uint32_t d, uint32_t t, uint32_t pin, uint32_t slot) {
    send_remote(d, t, pin, slot);
}

// A send on `pin` that leaves the local hot path (a supervisor's pin, an indexed pin): `pstack` is
// put in step first, and the sender is looked at again after.  The send is not one of the local
// path's deliveries (PstackHot).
template <bool Split, typename Send>
static inline void step_aside(PstackHot& h, uint32_t d, uint32_t t, Send send) {
    --pstack.extra_deliveries;
    h.devices[d].queued = 0;  // out of its turn: what the send delivers to d itself queues it
    hot_store(h);
    send();
    hot_load(h);
    PstackDevice& dev = h.devices[d];
    pstack.cur_dev = d;
    pstack.hot_where = PSTACK_WHERE_RTS;
    if (!pstack.stop && pstack_rts_hot(t, hot_props(h, dev, d), hot_state(h, dev, d))) hot_push<Split>(h, d, dev);
}

// One device's turn, on the loop's working copy `h`.  Anything outside the local hot path (an
// indexed send, a supervisor's receive, a message to other regions) gets `pstack` in step first.
// Each handler is named by one store, pstack.hot_where (pstack_core.hpp).
template <bool Split, bool SelfEdges>
static inline __attribute__((always_inline)) void step_device(PstackHot& h, uint32_t d) {
    PstackDevice& dev = h.devices[d];
    uint32_t t = hot_type(dev);
    char* props = hot_props(h, dev, d);
    char* state = hot_state(h, dev, d);
    pstack.cur_dev = d;
    pstack.hot_where = PSTACK_WHERE_RTS;
    uint32_t rts = pstack_rts_hot(t, props, state);
    if (!rts) { ++pstack.idle_turns; dev.queued = 0; return; }
    uint32_t pin = (uint32_t)__builtin_ctz(rts);
    bool doSend = true;
#if PSTACK_HAS_INDEXED
    unsigned sendIndex = PSTACK_NO_SEND_INDEX;
#else
    unsigned sendIndex = 0;
#endif
    pstack.hot_where = 1 + pin;
    pstack_send_hot(t, pin, props, state, pstack.msgbuf, &doSend, &sendIndex);  // a bit without a pin is reported there
    if (__builtin_expect(!doSend, 0)) { ++pstack.cancelled; hot_requeue<Split>(h, d); return; }
    if (hot_stopped<Split>()) { --pstack.extra_deliveries; dev.queued = 0; return; }  // sent, delivered nowhere
#if PSTACK_HAS_SUPERVISOR  // supervisor hook (pstack_supervisor.hpp): a SupervisorOutPin send goes to the supervisor
    if (__builtin_expect(pin == pstack_sup_out_pin[t], 0)) {
        step_aside<Split>(h, d, t, [&] { supervisor_send(d, pin); });
        return;
    }
#endif
    uint32_t slot = hot_slot(dev, d) + pin;
#if PSTACK_HAS_INDEXED
    if (__builtin_expect(pstack_out_indexed[pstack_out_base[t] + pin], 0)) {
        step_aside<Split>(h, d, t, [&] { send_indexed(d, t, pin, slot, sendIndex); });
        return;
    }
#endif
    if (Split && pstack.slot_remote[slot] != pstack.slot_remote[slot + 1]) send_remote_out_of_line(d, t, pin, slot);
    uint32_t to = PSTACK_HAS_FLAT ? h.flat_dst[slot] : PSTACK_NOT_FLAT;
    bool self;  // d received its own message, and is queued again already (where rq_push would have)
    if (__builtin_expect(to != PSTACK_NOT_FLAT, 1)) self = hot_deliver_flat<Split, SelfEdges>(h, d, pin, pstack_out_base[t] + pin, to, pstack.msgbuf);
    else self = hot_deliver<Split, SelfEdges>(h, d, dev.out + pin, pstack.msgbuf);
    // The sender's own ready-to-send changed; look at it again after the others had a turn.  Its
    // addresses are read again rather than kept: fewer registers live across the deliveries.
    PstackDevice& again = h.devices[d];
    pstack.hot_where = PSTACK_WHERE_RTS;
    bool ready = pstack_rts_hot(hot_type(again), hot_props(h, again, d), hot_state(h, again, d));
    if (self) return;
    if (ready) hot_requeue<Split>(h, d);
    else again.queued = 0;
}

static const uint32_t PSTACK_POLL_EVERY = 1024;  // turns between the slower checks

// Steps ready devices until none is left or the run stops.  `since_poll` counts turns across
// calls, so that the checks below keep their rhythm when a region goes idle and wakes again.
// The per-turn limits fold into one countdown: a turn adds at most one step, so no limit can be
// reached within `min(turns to the next poll, max_steps - steps)` turns; they are checked after them.
// Not inlined into run_loop (and main): the loop gets its own register allocation.
// `Split`: this region is one of several (it sweeps, sends items, polls Redis); one region's loop
// is compiled without those tests.
template <bool Split, bool SelfEdges>
__attribute__((noinline, hot)) static void run_ready_devices_in(double t0, uint32_t& since_poll) {
    PstackHot h;
    hot_load(h);
    for (;;) {
        uint64_t steps = h.steps();
        uint64_t to_limit = pstack.max_steps > steps ? pstack.max_steps - steps : 0;
        uint32_t turns = PSTACK_POLL_EVERY - since_poll;
        if (to_limit < turns) turns = (uint32_t)to_limit;
        // Every turn pops one device, so the head counts the turns (modulo 2^32, as the head does).
        uint32_t head0 = h.rq_head, last = head0 + turns;
        pstack.cur_handler = PSTACK_AT_HOT;  // the turns name their handlers by pstack.hot_where
        while (h.rq_head != last && h.rq_head != h.rq_tail) {
            uint32_t d = hot_pop<Split>(h);  // its queued flag stays set through its turn (step_device)
            step_device<Split, SelfEdges>(h, d);
            if (hot_stopped<Split>()) break;
        }
        since_poll += h.rq_head - head0;
        hot_store(h);
        if (pstack.stop) return;
        if (__builtin_expect(pstack.steps >= pstack.max_steps, 0)) { stop_run(1, PSTACK_EXIT_REASON_MAX_STEPS); return; }
        if (since_poll >= PSTACK_POLL_EVERY) {
            since_poll = 0;
            publish_progress();
            if (pstack.time_limit > 0 && now_seconds() - t0 > pstack.time_limit) { stop_run(1, PSTACK_EXIT_REASON_TIME_LIMIT); return; }
            if (Split) {
                net_poll_active(now_seconds());
                if (pstack.stop) return;
                hot_load(h);
            } else {
                snapshot_if_signalled();  // snapshot hook (pstack_snapshot_signal.hpp)
            }
        }
        if (h.rq_head == h.rq_tail) return;
    }
}

static void run_ready_devices(double t0, uint32_t& since_poll) {
    if (pstack.nregions > 1) {
        if (pstack.self_edges) run_ready_devices_in<true, true>(t0, since_poll);
        else run_ready_devices_in<true, false>(t0, since_poll);
    } else {
        if (pstack.self_edges) run_ready_devices_in<false, true>(t0, since_poll);
        else run_ready_devices_in<false, false>(t0, since_poll);
    }
}

// Single region, quiescent: OnHardwareIdle rounds until one wakes a device (true: go on), or
// enough in a row woke nothing (false: the run ends).
static bool single_region_idle_round() {
#if PSTACK_HAS_SUPERVISOR  // supervisor hook (pstack_supervisor.hpp): OnSupervisorIdle when the process is idle
    if (supervisor_idle()) return true;
#endif
    if (PSTACK_HAS_HW_IDLE && pstack.idle_consecutive < PSTACK_MAX_IDLE_ROUNDS) {
        ++pstack.idle_consecutive;
        if (hardware_idle_round()) pstack.idle_consecutive = 0;
        return true;
    }
    pstack.exit_code = PSTACK_IDLE_EXIT_CODE;
    return false;
}

static void run_loop() {
    double t0 = now_seconds();
    uint32_t since_poll = 0;
    while (!pstack.stop) {
        run_ready_devices(t0, since_poll);
        if (pstack.stop) break;
        if (pstack.nregions == 1) {
            snapshot_if_signalled();  // snapshot hook (pstack_snapshot_signal.hpp): before the idle turns
            if (single_region_idle_round()) continue;
            break;
        }
        publish_progress();
#if PSTACK_HAS_SUPERVISOR  // supervisor hook (pstack_supervisor.hpp): a woken device ends the supervisor's idle turn
        supervisor_report_wake();
#endif
        net_wait_idle();
        snapshot_pause_if_requested();  // snapshot hook (pstack_snapshot.hpp): no step before a requested pause
    }
    if (pstack.nregions > 1 && stopped_here()) broadcast_exit();
#if PSTACK_HAS_SUPERVISOR  // supervisor hook (pstack_supervisor.hpp): OnStop when the run ends
    supervisor_stop();
#endif
}

#endif  // PSTACK_LOOP_HPP
