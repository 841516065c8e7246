// pstack-celery step debugger: the commands Python sends, and main (docs/debugging.md, "The step debugger").
//
// Appended after debug_scheduler.cpp (the scheduler, events and breakpoints) by engine_build.py.
// One command a line on stdin; every reply ends with a line that starts with '.' (or '?' and why).

// Replies go to the session on a stream of their own (the stdout the engine was started with);
// `stdout` itself is pointed at the handler log, so that a handler's printf is a log line of its
// event and can never be taken for a reply.
static FILE* dbg_out = nullptr;

// ---- commands -----------------------------------------------------------------------------------
static void dbg_reply_events() {
    if (dbg_report_dropped) fprintf(dbg_out, "D %llu\n", (unsigned long long)dbg_report_dropped);
    for (size_t k = 0; k < dbg_ring_count; ++k)
        fputs(dbg_rec_text(dbg_ring[(dbg_ring_first + k) % dbg_report_max]).c_str(), dbg_out);
    dbg_ring_count = 0;
    dbg_report_dropped = 0;
}

// SIGINT (Ctrl-C at the terminal reaches the session's engine too, or the session sends it): the
// run in progress stops after its current event and replies as usual, saying it was interrupted.
static volatile sig_atomic_t dbg_interrupted = 0;
static void dbg_on_interrupt(int) { dbg_interrupted = 1; }

// ". <ended> <exit code> <exit reason> <events run> <breakpoint hit, -1: none> <interrupted>"
static void dbg_done(uint64_t events, bool interrupted = false) {
    fprintf(dbg_out, ". %d %d %s %llu %d %d\n", dbg_ended ? 1 : 0, pstack.exit_code, pstack.exit_reason,
           (unsigned long long)events, dbg_break_hit, interrupted ? 1 : 0);
}

// "run <max events, 0: no limit> <region, -1: any> <events to report> <stop at breakpoints 0/1>"
static void cmd_run(const char* args) {
    unsigned long long max = 0, keep = 0;
    int region = -1, breaks = 0;
    sscanf(args, "%llu %d %llu %d", &max, &region, &keep, &breaks);
    dbg_keep_events(keep);
    dbg_break_hit = -1;
    dbg_interrupted = 0;  // one that came between two runs has nothing to stop (the session sends its own)
    uint64_t n = 0;
    while (!dbg_ended && (max == 0 || n < max) && !dbg_interrupted) {
        if (!dbg_step(region)) break;
        ++n;
        if (breaks) {
            dbg_break_hit = dbg_break_now();
            if (dbg_break_hit >= 0) break;
        }
    }
    if (!breaks) dbg_break_now();  // breakpoints see the state a stepped event left
    dbg_reply_events();
    dbg_done(n, dbg_interrupted != 0);
}

static std::string dbg_hex(const char* p, size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < n; ++i) { out += digits[(uint8_t)p[i] >> 4]; out += digits[(uint8_t)p[i] & 15]; }
    return out;
}

static void dbg_unhex(const char* s, char* out, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        unsigned v = 0;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
}

static uint32_t dbg_state_size(uint32_t d) { return pstack_state_size[pstack.dev_type[d]]; }

// "get <device>": "S <hex of the state struct>"; "set <device> <hex>" writes it, and the device
// looks at its ReadyToSend again.
static void cmd_state(const char* cmd, const char* args) {
    unsigned d = 0;
    int used = 0;
    sscanf(args, "%u %n", &d, &used);
    if (d >= pstack.ndev) { fprintf(dbg_out, "? no device number %u\n", d); return; }
    if (cmd[0] == 'g') {
        fprintf(dbg_out, "S %s\n", dbg_hex(pstack.devices[d].state, dbg_state_size(d)).c_str());
    } else {
        dbg_unhex(args + used, pstack.devices[d].state, dbg_state_size(d));
        if (!dbg_ended) dbg_push(d);
        for (DbgBreak& b : dbg_breaks) b.held = dbg_break_holds(b);
    }
    fprintf(dbg_out, ".\n");
}

// "pending": a "P <injected> <region> <src> <pin> <index> <ndst> <dst>... F <fields>" line per message, oldest first.
static void cmd_pending() {
    std::vector<std::pair<uint64_t, std::string>> lines;
    for (uint32_t pos = 0; pos < dbg_inbox.size(); ++pos)
        for (const DbgMsg& m : dbg_inbox[pos]) {
            int n;
            std::string dsts = dbg_dsts_of(pstack.out_base[m.src] + m.pin, m.index, pos, &n);
            lines.emplace_back(m.seq, "P " + std::to_string(m.injected ? 1 : 0) + " " + std::to_string(pos) + " "
                               + std::to_string(m.src) + " " + std::to_string(m.pin) + " " + std::to_string(m.index)
                               + " " + std::to_string(n) + dsts
                               + " F " + dbg_fields(m.src, m.pin, m.bytes));
        }
    std::sort(lines.begin(), lines.end());
    for (auto& l : lines) fprintf(dbg_out, "%s\n", l.second.c_str());
    fprintf(dbg_out, ".\n");
}

// "inject <device> <pin> <index, -1: every edge> <nfields> <f>...": a message in flight from the device's pin.
static void cmd_inject(const char* args) {
    unsigned d = 0, pin = 0;
    long long index = -1, nfields = 0;
    int used = 0;
    sscanf(args, "%u %u %lld %lld%n", &d, &pin, &index, &nfields, &used);
    if (d >= pstack.ndev || pin >= pstack_n_outputs[pstack.dev_type[d]]) { fprintf(dbg_out, "? no such device or pin\n"); return; }
    uint32_t mt = pstack_out_msg[pstack_out_base[pstack.dev_type[d]] + pin];
    if ((uint32_t)nfields != pstack_msg_nfields[mt]) { fprintf(dbg_out, "? expected %u fields\n", pstack_msg_nfields[mt]); return; }
    memset(pstack.msgbuf, 0, sizeof pstack.msgbuf);
    pstack_unpack_msg(mt, pstack.msgbuf, args + used);
    dbg_queue(d, pin, index, true);
    fprintf(dbg_out, ".\n");
}

// "break <id> <device> <offset> <struct code> <op 0-5> <value>"; "unbreak <id>" (-1: all)
static void cmd_break(const char* args) {
    DbgBreak b{};
    char code = 0;
    char value[64] = "";
    sscanf(args, "%d %u %u %c %d %63s", &b.id, &b.dev, &b.off, &code, &b.op, value);
    if (b.dev >= pstack.ndev || b.off >= dbg_state_size(b.dev)) { fprintf(dbg_out, "? bad breakpoint\n"); return; }
    b.code = code;
    b.fval = strtod(value, nullptr);
    b.ival = strtoll(value, nullptr, 10);
    b.uval = strtoull(value, nullptr, 10);
    b.held = dbg_break_holds(b);
    dbg_breaks.push_back(b);
    fprintf(dbg_out, ".\n");
}

static void cmd_unbreak(const char* args) {
    int id = atoi(args);
    std::vector<DbgBreak> keep;
    for (const DbgBreak& b : dbg_breaks) if (id >= 0 && b.id != id) keep.push_back(b);
    dbg_breaks.swap(keep);
    fprintf(dbg_out, ".\n");
}

// "ready": an "R <region> <device>..." line per region, in the order they will send.
static void cmd_ready() {
    for (uint32_t pos = 0; pos < dbg_ready.size(); ++pos) {
        fprintf(dbg_out, "R %u", pos);
        for (uint32_t d : dbg_ready[pos]) fprintf(dbg_out, " %u", d);
        fprintf(dbg_out, "\n");
    }
    fprintf(dbg_out, ".\n");
}

// "result <full 0/1>": the engine's JSON result (pstack_output.hpp), states as they are now.
static void cmd_result(const char* args) {
    int full = atoi(args);
    print_json_metrics(dbg_out, 0, 0);
    fputs(", \"states\": {", dbg_out);
    print_json_states(dbg_out, full != 0);
    fputs("}}\n.\n", dbg_out);
}

// "halt <device> <offset of code, -1: none> <struct code>": the device is the __halt__ external.
static void cmd_halt(const char* args) {
    long long d = -1, off = -1;
    char code = 'i';
    sscanf(args, "%lld %lld %c", &d, &off, &code);
    dbg_halt_dev = d;
    dbg_halt_off = off;
    dbg_halt_code = code;
    fprintf(dbg_out, ".\n");
}

static void dbg_command(char* line) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    char* args = strchr(line, ' ');
    if (args) *args++ = 0; else args = line + n;
    if (!strcmp(line, "run")) cmd_run(args);
    else if (!strcmp(line, "get") || !strcmp(line, "set")) cmd_state(line, args);
    else if (!strcmp(line, "pending")) cmd_pending();
    else if (!strcmp(line, "inject")) cmd_inject(args);
    else if (!strcmp(line, "break")) cmd_break(args);
    else if (!strcmp(line, "unbreak")) cmd_unbreak(args);
    else if (!strcmp(line, "ready")) cmd_ready();
    else if (!strcmp(line, "result")) cmd_result(args);
    else if (!strcmp(line, "halt")) cmd_halt(args);
    else fprintf(dbg_out, "? unknown command %s\n", line);
    fflush(dbg_out);
}

// ---- start-up: debug-engine INSTANCE REGIONS-FILE LEVEL APP-FILE ---------------------------------
// REGIONS-FILE: one uint32 per device, the position of its region (0 ..); the instance is one region.
static void dbg_read_regions(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) pstack_fatal(PSTACK_STATUS_USAGE, "cannot open the region file %s", path);
    dbg_region.assign(pstack.ndev, 0);
    if (pstack.ndev && fread(dbg_region.data(), 4, pstack.ndev, f) != pstack.ndev)
        pstack_fatal(PSTACK_STATUS_USAGE, "the region file %s is short", path);
    fclose(f);
    uint32_t npos = 1;
    for (uint32_t r : dbg_region) if (r + 1 > npos) npos = r + 1;
    dbg_ready.resize(npos);
    dbg_inbox.resize(npos);
}

static void dbg_start_devices() {
#if PSTACK_HAS_SUPERVISOR
    supervisor_start();
#endif
    for (uint32_t d = 0; d < pstack.ndev; ++d) {
        pstack.cur_dev = d;
        pstack_init(pstack.dev_type[d], pstack.dev_local[d]);
    }
    for (uint32_t d = 0; d < pstack.ndev && !pstack.stop; ++d) {
        pstack.cur_dev = d;
        if (pstack_rts(pstack.dev_type[d], pstack.dev_local[d])) dbg_push(d);
    }
#if PSTACK_HAS_SUPERVISOR
    dbg_take_runtime_ready();
#endif
    dbg_keep_events(1);
    dbg_event(K_START, -1, 0, 0, -1, 0);
}

int main(int argc, char** argv) {
    install_crash_handlers();
    signal(SIGINT, dbg_on_interrupt);
    if (argc < 5) pstack_fatal(PSTACK_STATUS_USAGE, "usage: debug-engine INSTANCE REGIONS-FILE LEVEL APP-FILE");
    pstack.log_level = atoi(argv[3]);
    pstack.app_file = argv[4];
    cookie_io_functions_t io{};
    io.write = dbg_log_write;
    pstack.log_stream = fopencookie(nullptr, "w", io);
    setvbuf(pstack.log_stream, nullptr, _IONBF, 0);
    fflush(stdout);
    dbg_out = fdopen(dup(1), "w");
    if (!dbg_out) pstack_fatal(PSTACK_STATUS_USAGE, "cannot open the reply stream");
    stdout = pstack.log_stream;
    set_regions(0, nullptr);
    load_instance(argv[1]);
    dbg_read_regions(argv[2]);
    dbg_start_devices();
    dbg_reply_events();
    dbg_done(0);
    fflush(dbg_out);
    char* line = nullptr;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        if (!strncmp(line, "quit", 4)) break;
        dbg_command(line);
    }
    return PSTACK_STATUS_OK;
}
