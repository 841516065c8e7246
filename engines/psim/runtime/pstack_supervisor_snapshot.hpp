// pstack-celery engine runtime: the v4 supervisor in snapshots and checkpoints (docs/persistence.md).
//
// The supervisor runs in one region (the lowest: pstack_supervisor_run.hpp), so that region's dump
// carries its state, as bytes: SupervisorType's State is C++ (graph-schema.md s7), copied whole
// when it is plain data (std::is_trivially_copyable: numbers, arrays, structs of them); a state with
// a std::vector or a pointer is marked as such, a snapshot still shows the devices, and a
// checkpoint is refused (pstack_tasks/fleet/persistence/checkpoints.py).
//
// Resuming, the new supervisor region takes that state instead of running OnInit, and the
// supervisor's items that were in flight at the cut are handled as the run would have: a device's
// message to it is received (its reply goes to wherever the device is now; the sender's region
// waits for it as at any send to the supervisor), replies and broadcasts go to the devices that
// were in the item's region, an OnSupervisorIdle turn is taken, and a DONE (its sender has gone)
// is dropped.
#ifndef PSTACK_SUPERVISOR_SNAPSHOT_HPP
#define PSTACK_SUPERVISOR_SNAPSHOT_HPP

static void supervisor_dump(PstackOutBuf& b) {
    uint32_t kind = !pstack_sup_here ? 0 : pstack_sup_state_plain ? 1 : 2;
    uint32_t size = kind == 1 ? pstack_sup_state_size : 0;
    put_u32(b, kind);
    put_u32(b, size);
    if (size) b.put(pstack_sup_state_bytes(), size);
    put_u64(b, pstack_sup_here ? pstack_sup_received : 0);
    put_u64(b, pstack_sup_here ? pstack_sup_sent : 0);
}

static void supervisor_restore(const char* state, uint32_t size, uint64_t received, uint64_t sent) {
    pstack_sup_received += received;
    pstack_sup_sent += sent;
    if (!supervisor_place()) return;
    if (size != pstack_sup_state_size)
        pstack_fatal(PSTACK_STATUS_USAGE, "checkpoint: the supervisor's state is %u bytes, this engine's %u", size,
                     pstack_sup_state_size);
    memcpy(pstack_sup_state_bytes(), state, size);
}

static void supervisor_resume_message(uint32_t d) {
    if (pstack_sup_here && is_local(d)) { supervisor_receive(d); return; }
    if (pstack_sup_here) { supervisor_takes(d, pstack_sup_out_pin[pstack.dev_type[d]]); return; }
    if (is_local(d)) ++pstack_sup_awaiting;  // its DONE comes from the supervisor's region
}

static bool supervisor_resume_item(const char* p, const char* item, const uint32_t* old_region, uint32_t old_r) {
    if (*p == PSTACK_ITEM_SUPERVISOR_REPLY) {
        int64_t to;
        const char* q = pstack_get_i64(p + 1, &to);
        if (to < 0 || (uint64_t)to >= pstack.ndev)
            pstack_fatal(PSTACK_STATUS_USAGE, "bad supervisor reply in a checkpoint: %.80s", item);
        if (!is_local((uint32_t)to)) return true;
        supervisor_unpack(q, item);
        supervisor_to_device((uint32_t)to, pstack.msgbuf);
    } else if (*p == PSTACK_ITEM_SUPERVISOR_BROADCAST) {
        supervisor_unpack(p + 1, item);
        for (uint32_t d = 0; d < pstack.ndev && !pstack.stop; ++d)
            if (is_local(d) && old_region[d] == old_r) supervisor_to_device(d, pstack.msgbuf);
    } else if (*p == PSTACK_ITEM_SUPERVISOR_IDLE) {
        if (!pstack_sup_here) return true;
        if (pstack.nregions > 1) {  // the turn is on (idle.lua's field 't'), as when the script pushed it
            const char* hset[] = {"HSET", pstack.seq_key, "t", "1"};
            command(4, hset);
            expect(P_INT);
        }
        pstack_sup_woke = false;
        supervisor_call(PSTACK_SUP_ON_IDLE, nullptr, 0);
        if (pstack.nregions == 1) pstack_sup_turn_taken = true;
    } else if (*p != PSTACK_ITEM_SUPERVISOR_DONE) {
        return false;
    }
    return true;
}

#endif  // PSTACK_SUPERVISOR_SNAPSHOT_HPP
