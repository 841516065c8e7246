// pstack-celery engine runtime: the engine as a process under a worker.
//
// Resource limits the worker sets (--cpu-limit, --memory-limit, --file-limit), what a crash or a
// limit reports (which handler of which device), and dying with the process that started us.
// Everything a signal handler calls here is async-signal-safe: write(2), open/read, _exit.
#ifndef PSTACK_LIMITS_HPP
#define PSTACK_LIMITS_HPP

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>


// Address space in use now, in MiB (async-signal-safe: open/read only); -1 if unknown.
static long address_space_mib() {
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return -1;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    long pages = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) pages = pages * 10 + (buf[i] - '0');
    return pages / (1048576 / 4096);
}

static void write_long(int fd, long v) {
    char buf[24];
    int i = sizeof buf;
    buf[--i] = 0;
    if (v == 0) buf[--i] = '0';
    while (v > 0 && i > 0) { buf[--i] = (char)('0' + v % 10); v /= 10; }
    pstack_write_str(fd, buf + i);
}

static void report_where() {
    pstack_write_str(2, "handler ");
    pstack_write_str(2, pstack_where_handler());
    pstack_write_str(2, " of device '");
    pstack_write_str(2, pstack_device_name(pstack_where_device()));
    pstack_write_str(2, "'");
}

// A limit was hit: say which, where, and exit with PSTACK_STATUS_LIMIT.
static void report_limit(const char* what, long limit, const char* unit) {
    pstack_write_str(2, PSTACK_ENGINE_ERROR_PREFIX "the engine exceeded its ");
    pstack_write_str(2, what);
    pstack_write_str(2, " limit of ");
    write_long(2, limit);
    pstack_write_str(2, unit);
    pstack_write_str(2, " (in ");
    report_where();
    pstack_write_str(2, ")\n");
    _exit(PSTACK_STATUS_LIMIT);
}

static void pstack_on_signal(int sig) {
    if (sig == SIGXCPU) report_limit("CPU time", pstack.cpu_limit, " s");
    if (sig == SIGXFSZ) report_limit("file size", pstack.file_limit_mib, " MiB");
    // A failed allocation under the memory limit usually surfaces as a crash on the null pointer.
    if (pstack.memory_limit_mib && (sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT)
        && address_space_mib() * 10 >= pstack.memory_limit_mib * 9)
        report_limit("memory (address space)", pstack.memory_limit_mib, " MiB");
    const char* what = sig == SIGSEGV ? "segmentation fault" : sig == SIGBUS ? "bus error"
                     : sig == SIGFPE ? "arithmetic error (SIGFPE)" : sig == SIGILL ? "illegal instruction"
                     : sig == SIGABRT ? "abort" : "fatal signal";
    pstack_write_str(2, PSTACK_ENGINE_ERROR_PREFIX);
    report_where();
    pstack_write_str(2, " crashed: ");
    pstack_write_str(2, what);
    pstack_write_str(2, "\n");
    _exit(PSTACK_STATUS_HANDLER);
}

static void install_crash_handlers() {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pstack_on_signal;
    sa.sa_flags = SA_RESETHAND;
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGXCPU, SIGXFSZ};
    for (int s : sigs) sigaction(s, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

static void set_limit(int resource, rlim_t value) {
    struct rlimit rl;
    rl.rlim_cur = value;
    rl.rlim_max = value;
    if (resource == RLIMIT_CPU) rl.rlim_max = value + 5;  // SIGXCPU at the soft limit, SIGKILL 5 s later
    if (setrlimit(resource, &rl) != 0)
        pstack_fatal(PSTACK_STATUS_USAGE, "cannot set resource limit %d: %s", resource, strerror(errno));
}

// Limits on this engine, and no core dumps: handler code is the users' native code.
static void apply_limits() {
    set_limit(RLIMIT_CORE, 0);
    if (pstack.cpu_limit > 0) set_limit(RLIMIT_CPU, (rlim_t)pstack.cpu_limit);
    if (pstack.memory_limit_mib > 0) set_limit(RLIMIT_AS, (rlim_t)pstack.memory_limit_mib << 20);
    if (pstack.file_limit_mib > 0) set_limit(RLIMIT_FSIZE, (rlim_t)pstack.file_limit_mib << 20);
}

// Die with the process that started this engine (a worker killed with SIGKILL included).
static void follow_parent(long parent) {
    if (parent <= 0) return;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if ((long)getppid() != parent) _exit(PSTACK_STATUS_IO);  // it died before prctl took effect
}

#endif  // PSTACK_LIMITS_HPP
