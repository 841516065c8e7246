// pstack-celery engine runtime: messages into devices, and items from other regions.
//
// A message is delivered at once to every local destination (receive handlers never send, so
// there is no recursion and no message queue); the destination joins the ready queue, the FIFO
// of devices whose ready-to-send may have changed.  To other regions a message goes as one text
// item per region (docs/engine-protocol.md, "Items and queues"); items that come in are handled
// here.  No heap allocation happens per message.
#ifndef PSTACK_DELIVERY_HPP
#define PSTACK_DELIVERY_HPP

// ---- the ready queue ---------------------------------------------------------------------------
// A FIFO in one region; a split region sweeps its ready devices in device order (pstack_sweep.hpp).
// rq_head != rq_tail while a device is ready, either way.
static inline void rq_push(uint32_t d) {
    if (!pstack.devices[d].queued) {
        pstack.devices[d].queued = 1;
        if (__builtin_expect(pstack_sweep.on, 0)) { sweep_add(d); ++pstack.rq_tail; return; }
        pstack.rq[pstack.rq_tail++ & pstack.rq_mask] = d;
    }
}

// The next ready device; the caller has checked that there is one.
static inline uint32_t rq_pop() {
    if (__builtin_expect(pstack_sweep.on, 0)) { ++pstack.rq_head; return sweep_take(); }
    return pstack.rq[pstack.rq_head++ & pstack.rq_mask];
}

// ---- local delivery ----------------------------------------------------------------------------
static inline void deliver_one(const PstackEdge* e, const char* msg) {
    pstack.cur_dev = e->dst;
    const PstackDevice& dev = pstack.devices[e->dst];
    pstack_recv_at(e->input, dev.props, dev.state, e->eidx, (void*)msg);  // copies the message if handlers may write it
    ++pstack.delivered;
    rq_push(e->dst);
}

static inline void deliver_local(uint32_t slot, const char* msg) {
    const PstackEdge* e = pstack.edges + pstack.slot_edges[slot];
    const PstackEdge* end = pstack.edges + pstack.slot_edges[slot + 1];
    for (; e != end; ++e) {
        deliver_one(e, msg);
        if (__builtin_expect(pstack.stop, 0)) return;
    }
}

// ---- local delivery on the hot path -------------------------------------------------------------
// The same as rq_push / deliver_local, on the loop's working copy (PstackHot, pstack_state.hpp); a
// delivery names its handler by one store (pstack.hot_where, pstack_core.hpp), and counts nothing
// over a flat slot.  The device whose turn it is keeps its queued flag set through its turn (one
// store less at each end of it): a message it sends itself queues it here, where rq_push would.
// `Split`: a split region sweeps (pstack_sweep.hpp): the bitmap takes the device, the ends still
// count; one region's loop is compiled without the test.  `SelfEdges`: some device has an edge to
// itself (pstack.self_edges); a loop compiled without them does not compare each destination with
// the sender.
//
// A device's properties, state, type and first output slot on the hot path: with one device type
// (PSTACK_ONE_TYPE) they follow from its index, without a load from its record.
static inline __attribute__((always_inline)) uint32_t hot_type(const PstackDevice& dev) {
    return PSTACK_ONE_TYPE ? 0 : dev.type;
}
static inline __attribute__((always_inline)) char* hot_props(const PstackHot& h, const PstackDevice& dev, uint32_t d) {
    return PSTACK_ONE_TYPE ? h.props0 + (size_t)d * PSTACK_PROPS_SIZE0 : dev.props;
}
static inline __attribute__((always_inline)) char* hot_state(const PstackHot& h, const PstackDevice& dev, uint32_t d) {
    return PSTACK_ONE_TYPE ? h.state0 + (size_t)d * PSTACK_STATE_SIZE0 : dev.state;
}
static inline __attribute__((always_inline)) uint32_t hot_slot(const PstackDevice& dev, uint32_t d) {
    return PSTACK_ONE_TYPE ? d * PSTACK_NOUTPUTS0 : dev.slot;
}

template <bool Split>
static inline __attribute__((always_inline)) void hot_push(PstackHot& h, uint32_t d, PstackDevice& dev) {
    if (!dev.queued) {
        dev.queued = 1;
        if (Split) { sweep_add(d); ++h.rq_tail; return; }
        h.rq[h.rq_tail++ & h.rq_mask] = d;
    }
}

// The device whose turn it is, to the back of the queue: its queued flag is still set (step_device).
template <bool Split>
static inline __attribute__((always_inline)) void hot_requeue(PstackHot& h, uint32_t d) {
    if (Split) { sweep_add(d); ++h.rq_tail; return; }
    h.rq[h.rq_tail++ & h.rq_mask] = d;
}

template <bool Split>
static inline __attribute__((always_inline)) uint32_t hot_pop(PstackHot& h) {
    if (Split) { ++h.rq_head; return sweep_take(); }
    return h.rq[h.rq_head++ & h.rq_mask];
}

// Whether a handler has just stopped the run.  Within a batch of turns only handlers change
// pstack.stop, so when none of the graph type's handlers can (PSTACK_HANDLERS_MAY_STOP 0,
// codegen.handlers_may_stop) one region's loop does not look; a split region always does.
template <bool Split>
static inline __attribute__((always_inline)) bool hot_stopped() {
    return (Split || PSTACK_HANDLERS_MAY_STOP) && __builtin_expect(pstack.stop != 0, 0);
}

// Over the slot's edges, [out[0], out[1]): a slot with none or several (pstack.extra_deliveries
// counts the deliveries beyond the send's one: PstackHot).  True if the sender `from` received its
// own message and is queued again.
template <bool Split, bool SelfEdges>
static inline __attribute__((always_inline)) bool hot_deliver(PstackHot& h, uint32_t from, const PstackEdge* const* out,
                                                              const char* msg) {
    const PstackEdge* e = out[0];
    const PstackEdge* end = out[1];
    bool self = false;
    pstack.hot_where = PSTACK_WHERE_EDGE;  // fault reports: the receive of pstack.cur_edge runs (pstack_core.hpp)
    --pstack.extra_deliveries;
    for (; e != end; ++e) {
        uint32_t dst = e->dst;
        pstack.cur_edge = e;
        PstackDevice& dev = h.devices[dst];
        pstack_recv_hot(e->input, dev.props, dev.state, e->eidx, (void*)msg);  // copies the message if handlers may write it
        ++pstack.extra_deliveries;
        if (SelfEdges && __builtin_expect(dst == from, 0)) {
            if (!self) hot_requeue<Split>(h, from);
            self = true;
        } else {
            hot_push<Split>(h, dst, dev);
        }
        if (hot_stopped<Split>()) break;
    }
    return self;
}

// Over a slot with one local edge (flat_dst), into output pin `opin`'s one input pin: the
// destination is all it needs, and the send's one delivery is not counted (PstackHot).  True as
// hot_deliver.
template <bool Split, bool SelfEdges>
static inline __attribute__((always_inline)) bool hot_deliver_flat(PstackHot& h, uint32_t from, uint32_t pin, uint32_t opin,
                                                                   uint32_t to, const char* msg) {
    pstack.hot_where = PSTACK_WHERE_SLOT + pin;  // fault reports: the one edge of cur_dev's slot of pin
    PstackDevice& dev = h.devices[to];
    pstack_recv_flat(opin, hot_props(h, dev, to), hot_state(h, dev, to), (void*)msg);  // copies the message if handlers may write it
    if (SelfEdges && __builtin_expect(to == from, 0)) { hot_requeue<Split>(h, from); return true; }
    hot_push<Split>(h, to, dev);
    return false;
}

// ---- to other regions --------------------------------------------------------------------------
// A message item, "0 <device> <pin> <fields>", to every other region with a destination of the slot.
static inline void send_remote(uint32_t d, uint32_t t, uint32_t pin, uint32_t slot) {
    uint32_t mt = pstack_out_msg[pstack_out_base[t] + pin];
    char item[PSTACK_MAX_ITEM_CHARS];
    char* p = item;
    *p++ = PSTACK_ITEM_MESSAGE; *p++ = ' ';
    p = pstack_put_u64(p, d); *p++ = ' ';
    p = pstack_put_u64(p, pin); *p++ = ' ';
    p = pstack_pack_msg(mt, pstack.msgbuf, p);
    for (uint32_t k = pstack.slot_remote[slot]; k < pstack.slot_remote[slot + 1]; ++k)
        push_item(pstack.remote[k], item, (size_t)(p - item));
}

#if PSTACK_HAS_INDEXED
static const unsigned PSTACK_NO_SEND_INDEX = 0xffffffffu;

static const PstackEdge* indexed_edge(uint32_t slot, unsigned k, uint32_t d) {
    uint32_t n = pstack.idx_off[slot + 1] - pstack.idx_off[slot];
    if (n == 0) return nullptr;  // a pin without edges: the send goes nowhere, as on any pin
    if (k == PSTACK_NO_SEND_INDEX)
        pstack_fatal(PSTACK_STATUS_HANDLER, "%s of device '%s' did not set *sendIndex (the pin is indexed, with %u edges)",
                     pstack_where_handler(), pstack_device_name(d), n);
    if (k >= n)
        pstack_fatal(PSTACK_STATUS_HANDLER, "%s of device '%s' set *sendIndex = %u, but the pin has %u edges (0..%u)",
                     pstack_where_handler(), pstack_device_name(d), k, n, n - 1);
    return pstack.idx_edges + pstack.idx_off[slot] + k;
}

// A send on an indexed pin goes over one edge: delivered here, or pushed as an indexed message item to its region.
static void send_indexed(uint32_t d, uint32_t t, uint32_t pin, uint32_t slot, unsigned k) {
    const PstackEdge* e = indexed_edge(slot, k, d);
    if (!e) return;
    if (is_local(e->dst)) { deliver_one(e, pstack.msgbuf); return; }
    uint32_t mt = pstack_out_msg[pstack_out_base[t] + pin];
    char item[PSTACK_MAX_ITEM_CHARS + 16];
    char* p = item;
    *p++ = PSTACK_ITEM_INDEXED_MESSAGE; *p++ = ' ';
    p = pstack_put_u64(p, d); *p++ = ' ';
    p = pstack_put_u64(p, pin); *p++ = ' ';
    p = pstack_put_u64(p, k); *p++ = ' ';
    p = pstack_pack_msg(mt, pstack.msgbuf, p);
    push_item(region_pos(pstack.dev_region[e->dst]), item, (size_t)(p - item));
}
#endif

// ---- OnHardwareIdle rounds (graph-schema.md s6) --------------------------------------------------
// Run at quiescence, at most PSTACK_MAX_IDLE_ROUNDS in a row that wake nothing; in a split every
// region runs each round (docs/engine-protocol.md).
static const int PSTACK_MAX_IDLE_ROUNDS = 10;

// OnHardwareIdle on every local device, then ReadyToSend; true if any device wants to send.
static bool hardware_idle_round() {
    ++pstack.idle_rounds;
    // Like graph_schema's epoch_sim, a round that calls handler_exit still runs on every device.
    for (uint32_t d = 0; d < pstack.ndev; ++d) {
        if (!is_local(d)) continue;
        pstack.cur_dev = d;
        pstack_hw_idle(pstack.dev_type[d], pstack.dev_local[d]);
    }
    bool woke = false;
    for (uint32_t d = 0; d < pstack.ndev && !pstack.stop; ++d) {
        if (!is_local(d)) continue;
        pstack.cur_dev = d;
        if (pstack_rts(pstack.dev_type[d], pstack.dev_local[d])) { rq_push(d); woke = true; }
    }
    return woke;
}

// ---- items from other regions ------------------------------------------------------------------
// The message of a message item (plain or indexed) from `src`'s output `port`, whose fields start at p; the caller
// has checked src and port.
static void unpack_item_message(uint32_t src, uint32_t port, const char* p) {
    uint32_t mt = pstack_out_msg[pstack_out_base[pstack.dev_type[src]] + port];
    memset(pstack.msgbuf, 0, pstack_msg_size[mt] + 1);
    pstack_unpack_msg(mt, pstack.msgbuf, p);
    ++pstack.remote_received;
}

// p: after the item kind; src and port must name a device and one of its output pins.
static const char* read_item_source(const char* p, const char* item, int64_t* src, int64_t* port) {
    p = pstack_get_i64(p, src);
    p = pstack_get_i64(p, port);
    if (*src < 0 || (uint64_t)*src >= pstack.ndev || *port < 0
        || (uint32_t)*port >= pstack_n_outputs[pstack.dev_type[*src]])
        pstack_fatal(PSTACK_STATUS_IO, "bad remote item (no such device/port): %.80s", item);
    return p;
}

// A message item: a message to every local destination of the slot.
static void take_message_item(const char* p, const char* item) {
    int64_t src, port, nfields;
    p = read_item_source(p, item, &src, &port);
    p = pstack_get_i64(p, &nfields);
    uint32_t mt = pstack_out_msg[pstack_out_base[pstack.dev_type[src]] + (uint32_t)port];
    if ((uint32_t)nfields != pstack_msg_nfields[mt])
        pstack_fatal(PSTACK_STATUS_IO, "bad remote item (expected %u fields): %.80s", pstack_msg_nfields[mt], item);
    unpack_item_message((uint32_t)src, (uint32_t)port, p);
#if PSTACK_HAS_SUPERVISOR  // supervisor hook (pstack_supervisor.hpp): a SupervisorOutPin's message is the supervisor's
    if (supervisor_takes((uint32_t)src, (uint32_t)port)) return;
#endif
    deliver_local(pstack.out_base[src] + (uint32_t)port, pstack.msgbuf);
}

#if PSTACK_HAS_INDEXED
// An indexed message item: a message over one edge of an indexed pin, "3 <device> <pin> <sendIndex> <fields>".
static void take_indexed_item(const char* p, const char* item) {
    int64_t src, port, k, nfields;
    p = read_item_source(p, item, &src, &port);
    p = pstack_get_i64(p, &k);
    p = pstack_get_i64(p, &nfields);
    uint32_t mt = pstack_out_msg[pstack_out_base[pstack.dev_type[src]] + (uint32_t)port];
    uint32_t slot = pstack.out_base[src] + (uint32_t)port;
    if ((uint32_t)nfields != pstack_msg_nfields[mt] || k < 0 || (uint64_t)k >= pstack.idx_off[slot + 1] - pstack.idx_off[slot])
        pstack_fatal(PSTACK_STATUS_IO, "bad remote item (indexed send): %.80s", item);
    unpack_item_message((uint32_t)src, (uint32_t)port, p);
    deliver_one(pstack.idx_edges + pstack.idx_off[slot] + k, pstack.msgbuf);
}
#endif

static void snapshot_request(const char* p);  // pstack_snapshot.hpp

// Items by kind: a message, stop (with an exit code), quiescence, an indexed send, an idle round,
// the supervisor's (pstack_supervisor_run.hpp).
static void handle_item(const char* s) {
    if (pstack.stop) return;
    const char* p = pstack_skip_ws(s);
    if (*p == PSTACK_ITEM_MESSAGE) {
        take_message_item(p + 1, s);
    } else if (*p == PSTACK_ITEM_STOP) {
        int64_t code = 0;
        pstack_get_i64(p + 1, &code);
        stop_run((int)code, PSTACK_EXIT_REASON_REMOTE_STOP);
    } else if (*p == PSTACK_ITEM_QUIESCENT) {
        stop_run(PSTACK_IDLE_EXIT_CODE, PSTACK_EXIT_REASON_QUIESCENCE);
    } else if (*p == PSTACK_ITEM_HARDWARE_IDLE) {
        if (hardware_idle_round()) pstack.idle_woke = true;
    } else if (*p == PSTACK_ITEM_SNAPSHOT) {  // snapshot hook: pause at the next safe point
        snapshot_request(p + 1);
#if PSTACK_HAS_INDEXED
    } else if (*p == PSTACK_ITEM_INDEXED_MESSAGE) {
        take_indexed_item(p + 1, s);
#endif
#if PSTACK_HAS_SUPERVISOR  // supervisor hook (pstack_supervisor.hpp): replies, broadcasts, OnSupervisorIdle's turn
    } else if (supervisor_item(p, s)) {
#endif
    } else {
        pstack_fatal(PSTACK_STATUS_IO, "unknown remote item: %.80s", s);
    }
}

#endif  // PSTACK_DELIVERY_HPP
