// pstack-celery engine runtime: running the v4 supervisor (graph-schema.md s7).
//
// The supervisor lives in the process's engine (one region).  A device's send on its
// SupervisorOutPin calls the supervisor's OnReceive at once, as local delivery calls a device's;
// a reply goes to the sender's SupervisorInPin, a broadcast to every device's (devices without
// one ignore it).  Replies and broadcasts carry the reply/bcast buffers the handler filled
// (graph_schema's epoch_sim delivers the original message instead: a tools bug, graph-schema.md
// s7).  OnSupervisorIdle runs when the whole process is idle, before OnHardwareIdle rounds.
#ifndef PSTACK_SUPERVISOR_RUN_HPP
#define PSTACK_SUPERVISOR_RUN_HPP

static char pstack_sup_reply_buf[PSTACK_MAX_MSG_SIZE + 8];
static char pstack_sup_bcast_buf[PSTACK_MAX_MSG_SIZE + 8];

static const char* const PSTACK_SUP_NAMES[] = {
    "OnInit (supervisor)", "OnReceive (supervisor)", "OnSupervisorIdle (supervisor)", "OnStop (supervisor)"};

// A reply or broadcast into device d's SupervisorInPin.
static void supervisor_to_device(uint32_t d, const char* msg) {
    uint32_t t = pstack.dev_type[d];
    uint32_t pin = pstack_sup_in_pin[t];
    if (pin == PSTACK_NO_SUPERVISOR_PIN) return;
    pstack.cur_dev = d;
    pstack_recv(t, pstack.dev_local[d], pin, 0, (void*)msg);
    ++pstack.delivered;
    rq_push(d);
}

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
        supervisor_to_device(from, pstack_sup_reply_buf);
    }
    if (out.bcast && !pstack.stop) {
        ++pstack_sup_sent;
        for (uint32_t d = 0; d < pstack.ndev && !pstack.stop; ++d)
            if (is_local(d)) supervisor_to_device(d, pstack_sup_bcast_buf);
    }
}

static void supervisor_start() {
    if (pstack.nregions > 1)  // not yet: the supervisor would need its own region's items (issue 18, part c)
        pstack_fatal(PSTACK_STATUS_USAGE, "the graph type has a v4 supervisor: runs split into regions do not "
                     "support supervisors yet; run it in one region");
    pstack_sup_create();
    if (pstack_sup_has(PSTACK_SUP_ON_INIT)) supervisor_call(PSTACK_SUP_ON_INIT, nullptr, 0);
}

static void supervisor_receive(uint32_t d) {
    ++pstack_sup_received;
    supervisor_call(PSTACK_SUP_ON_RECEIVE, pstack.msgbuf, d);
}

static bool supervisor_idle() {
    if (!pstack_sup_has(PSTACK_SUP_ON_IDLE) || pstack.stop) return false;
    uint32_t before = pstack.rq_tail;
    supervisor_call(PSTACK_SUP_ON_IDLE, nullptr, 0);
    if (pstack.stop) return true;
    // a device woke if it now wants to send (a broadcast queued it; ReadyToSend decides)
    bool woke = false;
    for (uint32_t i = before; i != pstack.rq_tail; ++i) {
        uint32_t d = pstack.rq[i & pstack.rq_mask];
        pstack.cur_dev = d;
        if (pstack_rts(pstack.dev_type[d], pstack.dev_local[d])) woke = true;
    }
    return woke;
}

static void supervisor_stop() {
    if (pstack_sup_has(PSTACK_SUP_ON_STOP)) supervisor_call(PSTACK_SUP_ON_STOP, nullptr, 0);
}

#endif  // PSTACK_SUPERVISOR_RUN_HPP
