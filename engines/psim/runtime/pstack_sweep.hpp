// pstack-celery engine runtime: the ready set of a split region, swept in device order.
//
// Why not the FIFO: in one region a FIFO of ready devices settles into sweeps over the devices
// in file order, which touches device state and edges in address order.  In a split, items from
// other regions arrive a little late now and then; the devices they wake join the FIFO out of
// place, and the asynchrony spreads: after a few hundred time steps of gals_heat the FIFO's order
// is scattered over the whole grid (four pops in five jump to a far device), every step misses
// the caches and a region does less than half the work per second of a whole-graph run.  A
// region that sweeps its ready devices in device order keeps the addresses monotone whatever
// the arrival order: pop takes the next ready device at or after a cursor, wrapping around; a
// device that becomes ready behind the cursor waits for the next sweep (so the sender that is
// still ready goes after the others, as in the FIFO).  Arrival order is no guarantee across
// regions anyway (docs/psim.md, "How psim runs a graph").
//
// Two levels of bitmap: bit d of `ready` is device d; bit w of `words` says `ready[w]` is not
// zero, so a pop on a sparse set skips 4096 devices per word it reads.
#ifndef PSTACK_SWEEP_HPP
#define PSTACK_SWEEP_HPP

struct PstackSweep {
    bool on = false;           // a split region sweeps; one region keeps the FIFO
    uint64_t* ready = nullptr;
    uint64_t* words = nullptr;
    uint32_t nready = 0, nwords = 0, cursor = 0;
};

static PstackSweep pstack_sweep;

// After the instance is loaded: regions of a split sweep.
static void sweep_init() {
    if (pstack.nregions <= 1) return;
    PstackSweep& s = pstack_sweep;
    s.nready = (pstack.ndev + 63) / 64 + 1;
    s.nwords = (s.nready + 63) / 64;
    s.ready = (uint64_t*)calloc(s.nready, 8);
    s.words = (uint64_t*)calloc(s.nwords, 8);
    if (!s.ready || !s.words) pstack_fatal(PSTACK_STATUS_IO, "out of memory for the ready set");
    s.on = true;
}

static inline void sweep_add(uint32_t d) {
    PstackSweep& s = pstack_sweep;
    s.ready[d >> 6] |= 1ull << (d & 63);
    s.words[d >> 12] |= 1ull << ((d >> 6) & 63);
}

// The first word of `ready` at or after `w` that is not zero, wrapping around; the set must not be empty.
static inline uint32_t sweep_next_word(uint32_t w) {
    PstackSweep& s = pstack_sweep;
    if (w >= s.nready) w = 0;
    uint32_t i = w >> 6;
    uint64_t m = s.words[i] & (~0ull << (w & 63));
    while (!m) {
        if (++i >= s.nwords) i = 0;
        m = s.words[i];
    }
    return (i << 6) | (uint32_t)__builtin_ctzll(m);
}

// The next ready device at or after the cursor (wrapping around); the set must not be empty.
static inline uint32_t sweep_take() {
    PstackSweep& s = pstack_sweep;
    uint32_t w = s.cursor >> 6;
    uint64_t bits = s.ready[w] & (~0ull << (s.cursor & 63));
    if (!bits) {
        w = sweep_next_word(w + 1);
        bits = s.ready[w];  // whole word: if the search wrapped to the cursor's word, its bits below the cursor count
    }
    uint32_t d = (w << 6) | (uint32_t)__builtin_ctzll(bits);
    s.ready[w] &= ~(1ull << (d & 63));
    if (!s.ready[w]) s.words[w >> 6] &= ~(1ull << (w & 63));
    s.cursor = d + 1 < pstack.ndev ? d + 1 : 0;
    return d;
}

#endif  // PSTACK_SWEEP_HPP
