// pstack-celery engine runtime: running the v4 supervisor (graph-schema.md s7).
//
// One supervisor per process, in one region's engine: the only one, or in a split the region
// with the lowest number (docs/formats-v4.md, "Supervisors in a split").  A device's send on its
// SupervisorOutPin calls the supervisor's OnReceive at once when the supervisor is in the
// device's region, as local delivery calls a device's; from another region it goes there as a
// message item (kind MESSAGE: the supervisor is the one destination of every SupervisorOutPin).
// A reply goes to the sender's SupervisorInPin, a broadcast to every device's (devices without
// one ignore it): locally at once, to other regions as items SUPERVISOR_REPLY (to the sender's
// region) and SUPERVISOR_BROADCAST (one per other region, each delivering to its own devices).
// Replies and broadcasts carry the reply/bcast buffers the handler filled (graph_schema's
// epoch_sim delivers the original message instead: a tools bug, graph-schema.md s7).
// OnSupervisorIdle runs when the whole process is idle, before OnHardwareIdle rounds: in one
// region from the loop (supervisor_idle), in a split when the IDLE script pushes SUPERVISOR_IDLE
// to the supervisor's region (pstack_tasks/native/lua/idle.lua).  Every item is counted into
// <pid>.active as any other, so termination stays exact.
#ifndef PSTACK_SUPERVISOR_RUN_HPP
#define PSTACK_SUPERVISOR_RUN_HPP

static char pstack_sup_reply_buf[PSTACK_MAX_MSG_SIZE + 8];
static char pstack_sup_bcast_buf[PSTACK_MAX_MSG_SIZE + 8];
static int pstack_sup_pos = 0;        // the supervisor's region, by position in the region list
static bool pstack_sup_here = true;   // it runs in this engine
static bool pstack_sup_woke = false;  // a reply or broadcast made a local device ready since it was last reported

static const char* const PSTACK_SUP_NAMES[] = {
    "OnInit (supervisor)", "OnReceive (supervisor)", "OnSupervisorIdle (supervisor)", "OnStop (supervisor)"};

// ---- into devices --------------------------------------------------------------------------------
// A reply or broadcast into local device d's SupervisorInPin; notes whether d now wants to send
// (its own receive is the only handler that changes its state, so right after it is as good as
// after the whole broadcast).
static void supervisor_to_device(uint32_t d, const char* msg) {
    uint32_t t = pstack.dev_type[d];
    uint32_t pin = pstack_sup_in_pin[t];
    if (pin == PSTACK_NO_SUPERVISOR_PIN) return;
    pstack.cur_dev = d;
    pstack_recv(t, pstack.dev_local[d], pin, 0, (void*)msg);
    ++pstack.delivered;
    rq_push(d);
    if (!pstack.stop && pstack_rts(t, pstack.dev_local[d])) pstack_sup_woke = true;
}

static void supervisor_broadcast_here(const char* msg) {
    for (uint32_t d = 0; d < pstack.ndev && !pstack.stop; ++d)
        if (is_local(d)) supervisor_to_device(d, msg);
}

// "<kind> [<device>] <nfields> <fields>": a reply (to device `to`) or a broadcast, to region position `pos`.
static void supervisor_push(int pos, char kind, int64_t to, const char* msg) {
    char item[PSTACK_MAX_ITEM_CHARS + 32];
    char* p = item;
    *p++ = kind; *p++ = ' ';
    if (to >= 0) { p = pstack_put_u64(p, (uint64_t)to); *p++ = ' '; }
    p = pstack_pack_msg(pstack_sup_reply_msg, msg, p);
    push_item(pos, item, (size_t)(p - item));
}

static void supervisor_reply(uint32_t to, const char* msg) {
    if (is_local(to)) supervisor_to_device(to, msg);
    else supervisor_push(region_pos(pstack.dev_region[to]), PSTACK_ITEM_SUPERVISOR_REPLY, to, msg);
}

static void supervisor_broadcast(const char* msg) {
    for (int pos = 0; pos < pstack.nregions; ++pos)
        if (pos != pstack.my_pos) supervisor_push(pos, PSTACK_ITEM_SUPERVISOR_BROADCAST, -1, msg);
    supervisor_broadcast_here(msg);
}

// ---- the supervisor's handlers -------------------------------------------------------------------
// One handler call; `from` is the device a reply goes to.  Sends stop once the run stops.
static void supervisor_call(int which, const char* msg, uint32_t from) {
    PstackSupOut out = {false, false};
    memset(pstack_sup_reply_buf, 0, sizeof pstack_sup_reply_buf);
    memset(pstack_sup_bcast_buf, 0, sizeof pstack_sup_bcast_buf);
    pstack.cur_handler = PSTACK_SUP_NAMES[which];
    pstack_sup_handler(which, msg, pstack_sup_reply_buf, pstack_sup_bcast_buf, &out);
    if (out.reply && !pstack.stop) {
        if (which != PSTACK_SUP_ON_RECEIVE)
            pstack_fatal(PSTACK_STATUS_HANDLER, "%s called RTSREPLY(): only OnReceive has a sender to reply to",
                         PSTACK_SUP_NAMES[which]);
        ++pstack_sup_sent;
        supervisor_reply(from, pstack_sup_reply_buf);
    }
    if (out.bcast && !pstack.stop) {
        ++pstack_sup_sent;
        supervisor_broadcast(pstack_sup_bcast_buf);
    }
}

// The region with the lowest number holds the supervisor; with OnSupervisorIdle it tells the IDLE
// script where its queue is (field 's' of <pid>.calls: KEYS index 4 + position), before its
// first IDLE call on the same connection, so before any quiescence.
static bool supervisor_place() {
    for (int pos = 1; pos < pstack.nregions; ++pos)
        if (pstack.regions[pos] < pstack.regions[pstack_sup_pos]) pstack_sup_pos = pos;
    pstack_sup_here = pstack_sup_pos == pstack.my_pos;
    if (!pstack_sup_here) return false;
    if (pstack.nregions > 1 && pstack_sup_has(PSTACK_SUP_ON_IDLE)) {
        char keys_index[16];
        snprintf(keys_index, sizeof keys_index, "%d", 4 + pstack_sup_pos);
        const char* hset[] = {"HSET", pstack.seq_key, "s", keys_index};
        command(4, hset);
        expect(P_INT);
    }
    pstack_sup_create();
    return true;
}

static void supervisor_start() {
    if (supervisor_place() && pstack_sup_has(PSTACK_SUP_ON_INIT)) supervisor_call(PSTACK_SUP_ON_INIT, nullptr, 0);
}

static void supervisor_receive(uint32_t d) {
    ++pstack_sup_received;
    supervisor_call(PSTACK_SUP_ON_RECEIVE, pstack.msgbuf, d);
}

// ---- from devices --------------------------------------------------------------------------------
// Split, in a region without the supervisor, after a message to it: take items (blocking pops)
// until the supervisor's region says it handled the message (SUPERVISOR_DONE, behind any reply or
// broadcast it sent here) or the run stops.  So a send to the supervisor is handled before the
// sender's region takes another step, as in one region: a supervisor's stop leaves no device
// of the sender's region a step further.  The region keeps its share of <pid>.active meanwhile.
// A snapshot requested meanwhile pauses the region here (the DONE it waits for would be held).
static void supervisor_await_done() {
    flush_items();
    while (pstack_sup_awaiting && !pstack.stop) {
        send_blocking_pop();
        read_pending_replies();
        snapshot_pause_if_requested();  // snapshot hook (pstack_snapshot.hpp)
    }
}

// Device d's send on its SupervisorOutPin: OnReceive here, or a message item to the supervisor's
// region and a wait for its answer.
static void supervisor_send(uint32_t d, uint32_t pin) {
    if (pstack_sup_here) { supervisor_receive(d); return; }
    uint32_t mt = pstack_out_msg[pstack_out_base[pstack.dev_type[d]] + pin];
    char item[PSTACK_MAX_ITEM_CHARS];
    char* p = item;
    *p++ = PSTACK_ITEM_MESSAGE; *p++ = ' ';
    p = pstack_put_u64(p, d); *p++ = ' ';
    p = pstack_put_u64(p, pin); *p++ = ' ';
    p = pstack_pack_msg(mt, pstack.msgbuf, p);
    push_item(pstack_sup_pos, item, (size_t)(p - item));
    ++pstack_sup_awaiting;
    supervisor_await_done();
}

// A message item from d's `pin` (already in pstack.msgbuf): the supervisor's if it is d's SupervisorOutPin.
static bool supervisor_takes(uint32_t d, uint32_t pin) {
    if (pin != pstack_sup_out_pin[pstack.dev_type[d]]) return false;
    if (!pstack_sup_here)
        pstack_fatal(PSTACK_STATUS_IO, "bad remote item: a message to the supervisor from device '%s' reached region %d, "
                     "which does not hold it", pstack_device_name(d), pstack.region);
    supervisor_receive(d);
    if (!pstack.stop) {  // the sender's region waits for this (a stop reaches it as item STOP)
        char item[4] = {PSTACK_ITEM_SUPERVISOR_DONE, 0};
        push_item(region_pos(pstack.dev_region[d]), item, 1);
    }
    return true;
}

// ---- items from other regions --------------------------------------------------------------------
// p: after the item kind, at "<nfields> <fields>": the message into pstack.msgbuf.
static void supervisor_unpack(const char* p, const char* item) {
    int64_t nfields;
    p = pstack_get_i64(p, &nfields);
    if ((uint32_t)nfields != pstack_msg_nfields[pstack_sup_reply_msg])
        pstack_fatal(PSTACK_STATUS_IO, "bad remote item (expected %u fields): %.80s",
                     pstack_msg_nfields[pstack_sup_reply_msg], item);
    memset(pstack.msgbuf, 0, pstack_msg_size[pstack_sup_reply_msg] + 1);
    pstack_unpack_msg(pstack_sup_reply_msg, pstack.msgbuf, p);
    ++pstack.remote_received;
}

// SUPERVISOR_REPLY, SUPERVISOR_BROADCAST, SUPERVISOR_DONE and SUPERVISOR_IDLE (OnSupervisorIdle's
// turn, here in the supervisor's region); false for any other kind.
static bool supervisor_item(const char* p, const char* item) {
    if (*p == PSTACK_ITEM_SUPERVISOR_REPLY) {
        int64_t to;
        p = pstack_get_i64(p + 1, &to);
        if (to < 0 || (uint64_t)to >= pstack.ndev || !is_local((uint32_t)to))
            pstack_fatal(PSTACK_STATUS_IO, "bad remote item (no such local device): %.80s", item);
        supervisor_unpack(p, item);
        supervisor_to_device((uint32_t)to, pstack.msgbuf);
    } else if (*p == PSTACK_ITEM_SUPERVISOR_BROADCAST) {
        supervisor_unpack(p + 1, item);
        supervisor_broadcast_here(pstack.msgbuf);
    } else if (*p == PSTACK_ITEM_SUPERVISOR_DONE) {
        if (pstack_sup_awaiting) --pstack_sup_awaiting;
    } else if (*p == PSTACK_ITEM_SUPERVISOR_IDLE) {
        if (!pstack_sup_here)
            pstack_fatal(PSTACK_STATUS_IO, "bad remote item: OnSupervisorIdle's turn reached region %d, which does "
                         "not hold the supervisor", pstack.region);
        supervisor_call(PSTACK_SUP_ON_IDLE, nullptr, 0);
    } else {
        return false;
    }
    return true;
}

// Split, before the region goes idle: a device woke from a reply or broadcast since the last
// report, so the supervisor's turn (if one is on) did something: HDEL field 't' of <pid>.calls,
// on the connection of the coming IDLE call, so Redis runs it first (idle.lua).
static void supervisor_report_wake() {
    if (!pstack_sup_woke) return;
    pstack_sup_woke = false;
    if (!pstack_sup_has(PSTACK_SUP_ON_IDLE)) return;
    const char* hdel[] = {"HDEL", pstack.seq_key, "t"};
    command(3, hdel);
    expect(P_INT);
}

// ---- the ends of a run ---------------------------------------------------------------------------
// One region resumed from a split's cut taken during OnSupervisorIdle's turn, which woke nothing:
// the next quiescence goes on to the OnHardwareIdle round or the end, as the split's would.
static bool pstack_sup_turn_taken = false;

// One region, nothing ready: OnSupervisorIdle; true if it made a device ready (or stopped the run).
static bool supervisor_idle() {
    if (pstack_sup_turn_taken) {
        pstack_sup_turn_taken = false;
        if (!pstack_sup_woke) return false;
    }
    if (!pstack_sup_has(PSTACK_SUP_ON_IDLE) || pstack.stop) return false;
    pstack_sup_woke = false;
    supervisor_call(PSTACK_SUP_ON_IDLE, nullptr, 0);
    bool woke = pstack_sup_woke || pstack.stop;
    pstack_sup_woke = false;
    return woke;
}

static void supervisor_stop() {
    if (pstack_sup_here && pstack_sup_has(PSTACK_SUP_ON_STOP)) supervisor_call(PSTACK_SUP_ON_STOP, nullptr, 0);
}

#include "pstack_supervisor_snapshot.hpp"  // its part of snapshots and checkpoints

#endif  // PSTACK_SUPERVISOR_RUN_HPP
