// pstack-celery engine runtime: the graph instance, read from the instance file.
//
// The instance never becomes code: Python writes it as a binary file (docs/engine-protocol.md,
// "instance file") and every engine of the graph type loads it at start.  Loading turns the edge
// list into what the event loop walks without searching: per (device, output pin) slot, the local
// destinations (CSR) and the other regions that need an item.  Also the region list, which says
// which devices are this engine's.
#ifndef PSTACK_INSTANCE_HPP
#define PSTACK_INSTANCE_HPP

#include <cerrno>

struct Reader {
    const char* path;
    FILE* f;
    void read(void* dst, size_t n) {
        if (n && fread(dst, 1, n, f) != n) pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s is truncated", path);
    }
    uint32_t u32() { uint32_t v; read(&v, 4); return v; }
};

static void* xmalloc(size_t n) {
    void* p = malloc(n ? n : 1);
    if (!p) pstack_fatal(PSTACK_STATUS_USAGE, "out of memory allocating %zu bytes", n);
    return p;
}

// ---- regions ------------------------------------------------------------------------------------
static int region_pos(uint32_t r) {
    for (int i = 0; i < pstack.nregions; ++i) if ((uint32_t)pstack.regions[i] == r) return i;
    return -1;
}

static inline bool is_local(uint32_t d) { return pstack.dev_region[d] == (uint32_t)pstack.regions[pstack.my_pos]; }

// This engine runs `region` of the regions in `list` ("R0,R1,..."; null: `region` alone).
static void set_regions(int region, const char* list) {
    pstack.nregions = 1;
    if (list) for (const char* p = list; *p; ++p) if (*p == ',') ++pstack.nregions;
    pstack.regions = (int*)xmalloc(sizeof(int) * pstack.nregions);
    if (list) {
        const char* p = list;
        for (int i = 0; i < pstack.nregions; ++i) { pstack.regions[i] = atoi(p); p = strchr(p, ','); if (p) ++p; }
    } else {
        pstack.regions[0] = region;
    }
    pstack.region = region;
    pstack.my_pos = region_pos((uint32_t)region);
    if (pstack.my_pos < 0) pstack_fatal(PSTACK_STATUS_USAGE, "region %d is not in the region list", region);
}

// ---- the file, section by section ---------------------------------------------------------------
#define PSTACK_EDGE_WORDS 6  // src, src pin, dst, dst pin, index in the pin's edge data, sendIndex

static void read_header(Reader& in) {
    const char* path = in.path;
    char magic[4];
    in.read(magic, 4);
    if (memcmp(magic, "PSTI", 4) != 0 || in.u32() != 2)
        pstack_fatal(PSTACK_STATUS_USAGE, "%s is not a pstack instance file (version 2)", path);
    char hash[65] = {0};
    in.read(hash, 64);
    if (strncmp(hash, PSTACK_TYPE_HASH, 64) != 0)
        pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s was made for another graph type", path);
    pstack.ndev = in.u32();
    pstack.nedges = in.u32();
    uint32_t ntypes = in.u32();
    uint32_t gpsize = in.u32();
    if (ntypes != PSTACK_NTYPES || gpsize != PSTACK_GRAPH_PROPS_SIZE)
        pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s does not match the engine's graph type", path);
    pstack.graph_props = (char*)xmalloc(gpsize + 8);
    in.read(pstack.graph_props, gpsize);
}

// Each device's type and region, and its name (one blob of NUL-terminated names).
static void read_devices(Reader& in) {
    uint32_t ndev = pstack.ndev;
    pstack.dev_type = (uint32_t*)xmalloc(4ull * ndev);
    in.read(pstack.dev_type, 4ull * ndev);
    pstack.dev_region = (uint32_t*)xmalloc(4ull * ndev);
    in.read(pstack.dev_region, 4ull * ndev);
    uint32_t blob_len = in.u32();
    char* blob = (char*)xmalloc(blob_len + 1);
    in.read(blob, blob_len);
    const char** names = (const char**)xmalloc(sizeof(char*) * (ndev + 1ull));
    char* p = blob;
    for (uint32_t d = 0; d < ndev; ++d) { names[d] = p; p += strlen(p) + 1; }
    pstack.dev_names = names;
}

// Properties and state of every device (per type) and of every edge (per input pin), as the
// handlers see them: packed structs, one array per type or pin.
static void read_handler_data(Reader& in) {
    for (uint32_t t = 0; t < PSTACK_NTYPES; ++t) {
        uint32_t count = in.u32();
        size_t ps = (size_t)pstack_props_size[t] * count, ss = (size_t)pstack_state_size[t] * count;
        pstack.props_base[t] = (char*)xmalloc(ps + 8);
        in.read(pstack.props_base[t], ps);
        pstack.state_base[t] = (char*)xmalloc(ss + 8);
        in.read(pstack.state_base[t], ss);
    }
    for (uint32_t i = 0; i < PSTACK_NINPUTS_TOTAL; ++i) {
        uint32_t n = in.u32();
        size_t ps = (size_t)pstack_edge_props_size[i] * n, ss = (size_t)pstack_edge_state_size[i] * n;
        pstack.edge_props_base[i] = (char*)xmalloc(ps + 8);
        in.read(pstack.edge_props_base[i], ps);
        pstack.edge_state_base[i] = (char*)xmalloc(ss + 8);
        in.read(pstack.edge_state_base[i], ss);
    }
}

// Device -> index within its type, and its first output slot.  Returns the number of slots.
static uint32_t number_devices(const char* path) {
    pstack.dev_local = (uint32_t*)xmalloc(4ull * pstack.ndev);
    pstack.out_base = (uint32_t*)xmalloc(4ull * (pstack.ndev + 1));
    uint32_t seen[PSTACK_NTYPES + 1] = {0};
    uint32_t nslots = 0;
    for (uint32_t d = 0; d < pstack.ndev; ++d) {
        uint32_t t = pstack.dev_type[d];
        if (t >= PSTACK_NTYPES) pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s: bad device type", path);
        pstack.dev_local[d] = seen[t]++;
        pstack.out_base[d] = nslots;
        nslots += pstack_n_outputs[t];
    }
    pstack.out_base[pstack.ndev] = nslots;
    return nslots;
}

// Each device's PstackDevice (pstack_state.hpp): the hot path dispatches on pointers computed here
// (after build_slot_lists: a device points at its slots' edge lists).
static void index_devices() {
    pstack.devices = (PstackDevice*)xmalloc(sizeof(PstackDevice) * (pstack.ndev + 1ull));
    for (uint32_t d = 0; d < pstack.ndev; ++d) {
        uint32_t t = pstack.dev_type[d], li = pstack.dev_local[d];
        pstack.devices[d] = PstackDevice{pstack.props_base[t] + (size_t)li * pstack_props_size[t],
                                         pstack.state_base[t] + (size_t)li * pstack_state_size[t],
                                         pstack.slot_first + pstack.out_base[d], pstack.out_base[d], (uint16_t)t, 0, 0};
    }
}

// ---- edges -> per-slot lists --------------------------------------------------------------------
// Local destinations per slot: counts, then offsets (slot_edges); checks every edge's range.
static void count_local_edges(const uint32_t* raw, uint32_t nslots, const char* path) {
    uint32_t my_region = (uint32_t)pstack.regions[pstack.my_pos];
    for (uint64_t e = 0; e < pstack.nedges; ++e) {
        const uint32_t* r = raw + PSTACK_EDGE_WORDS * e;
        uint32_t src = r[0], pin = r[1], dst = r[2];
        if (src >= pstack.ndev || dst >= pstack.ndev || pin >= pstack_n_outputs[pstack.dev_type[src]])
            pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s: edge %llu is out of range", path, (unsigned long long)e);
        if (pstack.dev_region[dst] == my_region) pstack.slot_edges[pstack.out_base[src] + pin + 1]++;
    }
    for (uint32_t s = 0; s < nslots; ++s) pstack.slot_edges[s + 1] += pstack.slot_edges[s];
}

// Remote regions per local source slot, at most one entry per (slot, region).  First an upper
// bound per slot (every crossing edge), into slot_remote; returns room for the lists.
static uint16_t* count_remote_edges(const uint32_t* raw, uint32_t nslots) {
    uint32_t my_region = (uint32_t)pstack.regions[pstack.my_pos];
    uint32_t* rcount = pstack.slot_remote;
    for (uint64_t e = 0; e < pstack.nedges; ++e) {
        const uint32_t* r = raw + PSTACK_EDGE_WORDS * e;
        if (pstack.dev_region[r[0]] == my_region && pstack.dev_region[r[2]] != my_region)
            rcount[pstack.out_base[r[0]] + r[1] + 1]++;
    }
    for (uint32_t s = 0; s < nslots; ++s) rcount[s + 1] += rcount[s];
    return (uint16_t*)xmalloc(2ull * (rcount[nslots] + 1));
}

// Every edge into its slot's list: local destinations into edges, remote regions (without
// duplicates) into rtmp, where rfill[slot] ends each slot's list.
static void fill_edges(const uint32_t* raw, const char* path, uint32_t* fill, uint32_t* rfill, uint16_t* rtmp) {
    uint32_t my_region = (uint32_t)pstack.regions[pstack.my_pos];
    for (uint64_t e = 0; e < pstack.nedges; ++e) {
        const uint32_t* r = raw + PSTACK_EDGE_WORDS * e;
        uint32_t src = r[0], pin = r[1], dst = r[2], dpin = r[3], eidx = r[4];
        uint32_t slot = pstack.out_base[src] + pin;
        if (pstack.dev_region[dst] == my_region) {
            uint32_t dt = pstack.dev_type[dst];
            if (dpin >= pstack_n_inputs[dt]) pstack_fatal(PSTACK_STATUS_USAGE, "instance file %s: bad input pin", path);
            pstack.self_edges |= dst == src;
            pstack.edges[fill[slot]++] = PstackEdge{dst, pstack.dev_local[dst], (uint16_t)dt, (uint16_t)(pstack_in_base[dt] + dpin), eidx};
        } else if (pstack.nregions > 1 && pstack.dev_region[src] == my_region) {
            int pos = region_pos(pstack.dev_region[dst]);
            if (pos < 0) pstack_fatal(PSTACK_STATUS_USAGE, "device '%s' is in region %u, which is not in the region list",
                                      pstack.dev_names[dst], pstack.dev_region[dst]);
            bool dup = false;
            for (uint32_t k = pstack.slot_remote[slot]; k < rfill[slot]; ++k) if (rtmp[k] == pos) { dup = true; break; }
            if (!dup) rtmp[rfill[slot]++] = (uint16_t)pos;
        }
    }
}

// Close the gaps the duplicates left in the remote lists; they become pstack.remote.
static void compact_remote(uint32_t nslots, const uint32_t* rfill, uint16_t* rtmp) {
    uint32_t w = 0;
    for (uint32_t s = 0; s < nslots; ++s) {
        uint32_t b = pstack.slot_remote[s], e = rfill[s];
        pstack.slot_remote[s] = w;
        for (uint32_t k = b; k < e; ++k) rtmp[w++] = rtmp[k];
    }
    pstack.slot_remote[nslots] = w;
    pstack.remote = rtmp;
}

static void build_slot_lists(const uint32_t* raw, uint32_t nslots, const char* path) {
    pstack.slot_edges = (uint32_t*)calloc(nslots + 2ull, 4);
    pstack.slot_remote = (uint32_t*)calloc(nslots + 2ull, 4);
    if (!pstack.slot_edges || !pstack.slot_remote) pstack_fatal(PSTACK_STATUS_USAGE, "out of memory");
    count_local_edges(raw, nslots, path);
    pstack.edges = (PstackEdge*)xmalloc(sizeof(PstackEdge) * (size_t)(pstack.slot_edges[nslots] + 1));
    uint32_t* fill = (uint32_t*)xmalloc(4ull * (nslots + 1));
    memcpy(fill, pstack.slot_edges, 4ull * nslots);
    uint16_t* rtmp = pstack.nregions > 1 ? count_remote_edges(raw, nslots) : nullptr;
    uint32_t* rfill = (uint32_t*)xmalloc(4ull * (nslots + 1));
    memcpy(rfill, pstack.slot_remote, 4ull * nslots);
    fill_edges(raw, path, fill, rfill, rtmp);
    if (pstack.nregions > 1) compact_remote(nslots, rfill, rtmp);
    pstack.slot_first = (const PstackEdge**)xmalloc(sizeof(PstackEdge*) * (nslots + 1ull));
    for (uint32_t s = 0; s <= nslots; ++s) pstack.slot_first[s] = pstack.edges + pstack.slot_edges[s];
    free(fill);
    free(rfill);
}

// Slots the hot loop delivers without their edge (PstackHot, pstack_loop.hpp): exactly one local
// edge, into the one input pin that takes the output pin's messages and has no edge properties or
// state (pstack_out_only_input, the generated code), so that the destination is all it needs.
static void flatten_slots(uint32_t nslots) {
    pstack.flat_dst = (uint32_t*)xmalloc(4ull * (nslots + 1));
    for (uint32_t s = 0; s <= nslots; ++s) pstack.flat_dst[s] = PSTACK_NOT_FLAT;
    for (uint32_t d = 0; d < pstack.ndev; ++d) {
        uint32_t t = pstack.dev_type[d];
        for (uint32_t pin = 0; pin < pstack_n_outputs[t]; ++pin) {
            uint32_t s = pstack.out_base[d] + pin;
            const PstackEdge* e = pstack.edges + pstack.slot_edges[s];
            if (pstack.slot_edges[s + 1] - pstack.slot_edges[s] == 1 && e->input == pstack_out_only_input[pstack_out_base[t] + pin])
                pstack.flat_dst[s] = e->dst;
        }
    }
}

#if PSTACK_HAS_INDEXED
// Indexed output pins (v3 sendIndex): every edge of such a slot, local or not, by sendIndex, in every
// region, so that a sender picks one edge and a receiving region finds it from (device, pin, index).
static void build_indexed(const uint32_t* raw, uint32_t nslots) {
    pstack.idx_off = (uint32_t*)calloc(nslots + 2ull, 4);
    if (!pstack.idx_off) pstack_fatal(PSTACK_STATUS_USAGE, "out of memory");
    for (uint64_t e = 0; e < pstack.nedges; ++e) {
        const uint32_t* r = raw + PSTACK_EDGE_WORDS * e;
        if (pstack_out_indexed[pstack_out_base[pstack.dev_type[r[0]]] + r[1]]) pstack.idx_off[pstack.out_base[r[0]] + r[1] + 1]++;
    }
    for (uint32_t s = 0; s < nslots; ++s) pstack.idx_off[s + 1] += pstack.idx_off[s];
    pstack.idx_edges = (PstackEdge*)xmalloc(sizeof(PstackEdge) * (size_t)(pstack.idx_off[nslots] + 1));
    for (uint64_t e = 0; e < pstack.nedges; ++e) {
        const uint32_t* r = raw + PSTACK_EDGE_WORDS * e;
        uint32_t src = r[0], pin = r[1], dst = r[2];
        if (!pstack_out_indexed[pstack_out_base[pstack.dev_type[src]] + pin]) continue;
        uint32_t slot = pstack.out_base[src] + pin, k = r[5];
        if (k >= pstack.idx_off[slot + 1] - pstack.idx_off[slot])
            pstack_fatal(PSTACK_STATUS_USAGE, "instance file: edge %llu has sendIndex %u out of range", (unsigned long long)e, k);
        uint32_t dt = pstack.dev_type[dst];
        if (r[3] >= pstack_n_inputs[dt]) pstack_fatal(PSTACK_STATUS_USAGE, "instance file: edge %llu has a bad input pin", (unsigned long long)e);
        pstack.idx_edges[pstack.idx_off[slot] + k] = PstackEdge{dst, pstack.dev_local[dst], (uint16_t)dt, (uint16_t)(pstack_in_base[dt] + r[3]), r[4]};
    }
}
#endif

// The ready queue holds each device at most once: a power of two above the device count.
static void allocate_ready_queue() {
    uint32_t cap = 1;
    while (cap < pstack.ndev + 1) cap <<= 1;
    pstack.rq = (uint32_t*)xmalloc(4ull * cap);
    pstack.rq_mask = cap - 1;
}

// Needs the region list (set_regions): only this region's edges are kept.
static void load_instance(const char* path) {
    Reader in{path, fopen(path, "rb")};
    if (!in.f) pstack_fatal(PSTACK_STATUS_USAGE, "cannot open instance file %s: %s", path, strerror(errno));
    setvbuf(in.f, nullptr, _IOFBF, 1 << 20);
    read_header(in);
    read_devices(in);
    read_handler_data(in);
    uint32_t nslots = number_devices(path);
    uint32_t* raw = (uint32_t*)xmalloc(4ull * PSTACK_EDGE_WORDS * pstack.nedges);
    in.read(raw, 4ull * PSTACK_EDGE_WORDS * pstack.nedges);
    fclose(in.f);
    build_slot_lists(raw, nslots, path);
    flatten_slots(nslots);
    index_devices();
#if PSTACK_HAS_INDEXED
    build_indexed(raw, nslots);
#endif
    free(raw);
    allocate_ready_queue();
}

#endif  // PSTACK_INSTANCE_HPP
