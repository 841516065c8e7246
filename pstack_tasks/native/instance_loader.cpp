// pstack's native instance loader: the <GraphInstance> section of a graph-schema file packed at C speed.
//
// Usage: instance-loader LAYOUT XML BODY
//   LAYOUT  the graph type's packing layout, written by pstack_tasks/native/instance_loader.py
//   XML     the application file
//   BODY    written: the instance file's body (docs/engine-protocol.md) without its header and regions
// Prints the instance's counts and ids on stdout.  Exit 0: packed.  Exit 3: this loader cannot serve the
// file (an unusual construct, or an error in the file): one line on stderr says why, and the caller
// reads the file with the Python loader, which gives the result or the error message with file:line.
// Anything this loader accepts, it packs byte for byte as the Python loader does; anything it is not
// sure of, it refuses.
#include <expat.h>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <algorithm>

namespace {

[[noreturn]] void refuse(const std::string &why) {
    fprintf(stderr, "%s\n", why.c_str());
    exit(3);
}

struct Field { std::string name; char code; uint32_t offset; };
struct Layout { uint32_t size = 0; std::string dflt; std::vector<Field> fields; bool all_int = true; };
struct InPin { std::string name, msg; Layout props, state; };
struct OutPin { std::string name, msg; bool indexed; };
struct DevType { std::string id; Layout props, state; std::vector<InPin> in; std::vector<OutPin> out; };

int version;
std::string ns;
Layout gprops;
std::vector<DevType> types;

// ---- the layout file ---------------------------------------------------------------------------
FILE *lf;
std::string word() {
    std::string w;
    int c;
    while ((c = getc(lf)) != EOF && isspace(c)) {}
    for (; c != EOF && !isspace(c); c = getc(lf)) w.push_back((char)c);
    if (w.empty()) refuse("layout: truncated");
    return w;
}
std::string hex_bytes(const std::string &h) {
    if (h == "-") return "";
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back((char)strtol(h.substr(i, 2).c_str(), nullptr, 16));
    return out;
}
Layout read_layout() {
    Layout l;
    l.size = (uint32_t)std::stoul(word());
    l.dflt = hex_bytes(word());
    size_t n = std::stoul(word());
    for (size_t i = 0; i < n; i++) {
        Field f;
        f.name = word();
        f.code = word()[0];
        f.offset = (uint32_t)std::stoul(word());
        if (f.code == 'x' || f.code == 'f' || f.code == 'd') l.all_int = false;
        l.fields.push_back(f);
    }
    return l;
}
void read_layouts(const char *path) {
    lf = fopen(path, "r");
    if (!lf) refuse("layout: cannot open");
    version = std::stoi(word());
    ns = word();
    gprops = read_layout();
    size_t nt = std::stoul(word());
    for (size_t t = 0; t < nt; t++) {
        DevType d;
        d.id = word();
        d.props = read_layout();
        d.state = read_layout();
        size_t ni = std::stoul(word());
        for (size_t i = 0; i < ni; i++) {
            InPin p;
            p.name = word(); p.msg = word();
            p.props = read_layout(); p.state = read_layout();
            d.in.push_back(p);
        }
        size_t no = std::stoul(word());
        for (size_t i = 0; i < no; i++) {
            OutPin p;
            p.name = word(); p.msg = word(); p.indexed = word() == "1";
            d.out.push_back(p);
        }
        types.push_back(d);
    }
    fclose(lf);
}

// ---- values --------------------------------------------------------------------------------------
bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void put(std::string &out, const Field &f, const char *tok, size_t len, bool is_int_tok) {
    char buf[4400];
    if (len >= sizeof buf) refuse("a number too long");
    memcpy(buf, tok, len);
    buf[len] = 0;
    unsigned char *p = (unsigned char *)&out[f.offset];
    if (f.code == 'f' || f.code == 'd') {
        double d = strtod(buf, nullptr);
        if (is_int_tok && d == 0) d = 0.0;  // Python's float(-0) is +0.0
        if (is_int_tok && std::isinf(d)) refuse("an integer too large for a float");
        if (f.code == 'f') {
            float x = (float)d;
            if (std::isinf(x) && !std::isinf(d)) refuse("a value out of range for float");
            memcpy(p, &x, 4);
        } else {
            memcpy(p, &d, 8);
        }
        return;
    }
    if (!is_int_tok) refuse("a non-integer value for an integer member");
    bool neg = buf[0] == '-';
    if (len > 20 + (neg ? 1 : 0)) refuse("an integer out of range");
    errno = 0;
    int64_t sv = 0;
    uint64_t uv = 0;
    if (neg) { sv = strtoll(buf, nullptr, 10); } else { uv = strtoull(buf, nullptr, 10); }
    if (errno) refuse("an integer out of range");
    int size; bool sgn;
    switch (f.code) {
        case 'b': size = 1; sgn = true; break;  case 'B': size = 1; sgn = false; break;
        case 'h': size = 2; sgn = true; break;  case 'H': size = 2; sgn = false; break;
        case 'i': size = 4; sgn = true; break;  case 'I': size = 4; sgn = false; break;
        case 'q': size = 8; sgn = true; break;  case 'Q': size = 8; sgn = false; break;
        default: refuse("a member of an unusual type");
    }
    uint64_t bits;
    if (neg) {
        if (!sgn && sv != 0) refuse("a negative value for an unsigned member");
        if (size < 8 && sv < -(int64_t(1) << (8 * size - 1))) refuse("an integer out of range");
        bits = (uint64_t)sv;
    } else {
        if (sgn && uv > (uint64_t(1) << (8 * size - 1)) - 1) refuse("an integer out of range");
        if (!sgn && size < 8 && uv > (uint64_t(1) << (8 * size)) - 1) refuse("an integer out of range");
        bits = uv;
    }
    for (int i = 0; i < size; i++) p[i] = (unsigned char)(bits >> (8 * i));
}

const Field *field_of(const Layout &l, const char *name, size_t len) {
    for (const Field &f : l.fields)
        if (f.name.size() == len && memcmp(f.name.data(), name, len) == 0) {
            if (f.code == 'x') refuse("a value for an array or tuple member");
            return &f;
        }
    refuse("a value for an unknown member");
}

// A JSON number token at s[i..]: its end, and whether it is an integer token.
size_t number(const std::string &s, size_t i, bool &is_int) {
    size_t j = i;
    if (j < s.size() && s[j] == '-') j++;
    if (j >= s.size() || !isdigit((unsigned char)s[j])) refuse("an unusual JSON value");
    if (s[j] == '0') j++; else while (j < s.size() && isdigit((unsigned char)s[j])) j++;
    is_int = true;
    if (j < s.size() && s[j] == '.') {
        is_int = false; j++;
        if (j >= s.size() || !isdigit((unsigned char)s[j])) refuse("malformed JSON number");
        while (j < s.size() && isdigit((unsigned char)s[j])) j++;
    }
    if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        is_int = false; j++;
        if (j < s.size() && (s[j] == '+' || s[j] == '-')) j++;
        if (j >= s.size() || !isdigit((unsigned char)s[j])) refuse("malformed JSON number");
        while (j < s.size() && isdigit((unsigned char)s[j])) j++;
    }
    return j;
}

// A v2/v3 <P>/<S> body ("name": value pairs, with or without their braces) over the defaults.
void json_body(const std::string &s, const Layout &l, std::string &out) {
    size_t a = 0, b = s.size();
    while (a < b && is_ws(s[a])) a++;
    while (b > a && is_ws(s[b - 1])) b--;
    if (a == b) return;
    bool braced = s[a] == '{';
    size_t i = braced ? a + 1 : a, end = b;
    if (braced) {
        if (s[end - 1] != '}') refuse("malformed JSON body");
        end--;
    }
    auto skip = [&]() { while (i < end && is_ws(s[i])) i++; };
    skip();
    if (i == end) {
        if (!braced) refuse("malformed JSON body");
        return;
    }
    for (;;) {
        if (s[i] != '"') refuse("malformed JSON body");
        size_t k = ++i;
        while (i < end && s[i] != '"') {
            if (s[i] == '\\' || (unsigned char)s[i] < 0x20) refuse("an escaped or control character in a name");
            i++;
        }
        if (i >= end) refuse("malformed JSON body");
        const Field *f = field_of(l, &s[k], i - k);
        i++;
        skip();
        if (i >= end || s[i] != ':') refuse("malformed JSON body");
        i++;
        skip();
        if (i < end && (s[i] == 't' || s[i] == 'f')) {
            const char *w = s[i] == 't' ? "true" : "false";
            size_t n = strlen(w);
            if (s.compare(i, n, w) != 0) refuse("an unusual JSON value");
            put(out, *f, s[i] == 't' ? "1" : "0", 1, true);
            i += n;
        } else {
            bool is_int;
            size_t j = number(s, i, is_int);
            if (j > end) refuse("malformed JSON body");
            put(out, *f, &s[i], j - i, is_int);
            i = j;
        }
        skip();
        if (i == end) return;
        if (s[i] != ',') refuse("malformed JSON body");
        i++;
        skip();
        if (i == end) refuse("a trailing comma");
    }
}

bool c_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// A v4 P/S attribute: a flat initialiser of decimal integers ({1, -2u, 3}) for an all-integer struct.
void c_initialiser(const char *text, const Layout &l, std::string &out) {
    if (!l.all_int) refuse("a v4 initialiser of a struct with float, array or tuple members");
    std::string s(text);
    size_t i = 0, n = s.size();
    auto skip = [&]() { while (i < n && c_ws(s[i])) i++; };
    skip();
    if (i >= n || s[i] != '{') refuse("an unusual v4 initialiser");
    i++;
    size_t member = 0;
    for (;;) {
        skip();
        if (i < n && s[i] == '}') break;
        size_t k = i;
        if (i < n && (s[i] == '-' || s[i] == '+')) i++;
        if (i >= n || !isdigit((unsigned char)s[i])) refuse("an unusual v4 initialiser");
        if (s[i] == '0' && i + 1 < n && isdigit((unsigned char)s[i + 1])) refuse("an octal v4 initialiser");
        while (i < n && isdigit((unsigned char)s[i])) i++;
        std::string tok = s.substr(s[k] == '+' ? k + 1 : k, i - (s[k] == '+' ? k + 1 : k));
        size_t sfx = i;
        while (i < n && strchr("uUlL", s[i])) i++;
        std::string suffix = s.substr(sfx, i - sfx);
        static const char *ok[] = {"", "u", "U", "ul", "uL", "Ul", "UL", "ull", "uLL", "Ull", "ULL", "l", "L", "ll",
                                   "LL", "lu", "lU", "Lu", "LU", "llu", "llU", "LLu", "LLU"};
        if (std::find_if(std::begin(ok), std::end(ok), [&](const char *x) { return suffix == x; }) == std::end(ok))
            refuse("an unusual v4 integer suffix");
        if (member >= l.fields.size()) refuse("more values than members");
        put(out, l.fields[member++], tok.data(), tok.size(), true);
        skip();
        if (i < n && s[i] == ',') { i++; continue; }
        skip();
        if (i < n && s[i] == '}') break;
        refuse("an unusual v4 initialiser");
    }
    i++;
    skip();
    if (i != n) refuse("text after a v4 initialiser");
}

// ---- devices by name -----------------------------------------------------------------------------
std::vector<char> names;            // the names blob: each name and a NUL, in device order
std::vector<uint64_t> name_at;      // offset of each device's name in `names`
std::vector<uint32_t> table;        // open addressing: device + 1, 0 empty
uint64_t hash_of(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}
int64_t find(const char *s, size_t n) {
    if (table.empty()) return -1;
    size_t mask = table.size() - 1;
    for (size_t i = hash_of(s, n) & mask;; i = (i + 1) & mask) {
        uint32_t v = table[i];
        if (!v) return -1;
        const char *name = &names[name_at[v - 1]];
        if (strncmp(name, s, n) == 0 && name[n] == 0) return v - 1;
    }
}
void insert_slot(uint32_t dev) {
    const char *name = &names[name_at[dev]];
    size_t mask = table.size() - 1;
    size_t i = hash_of(name, strlen(name)) & mask;
    while (table[i]) i = (i + 1) & mask;
    table[i] = dev + 1;
}
void add_name(const char *s) {
    size_t n = strlen(s);
    if (find(s, n) >= 0) refuse("a duplicate device id");
    if ((name_at.size() + 1) * 2 > table.size()) {
        table.assign(table.empty() ? 1024 : table.size() * 2, 0);
        for (uint32_t d = 0; d < name_at.size(); d++) insert_slot(d);
    }
    name_at.push_back(names.size());
    names.insert(names.end(), s, s + n + 1);
    insert_slot((uint32_t)(name_at.size() - 1));
}

// ---- the instance being packed ---------------------------------------------------------------------
std::vector<uint32_t> dev_type, edges, edge_counts;   // edge_counts: per (type, input pin), flattened
std::vector<std::string> props, state;               // per device type
std::vector<uint32_t> counts;
std::vector<size_t> pin_base;                        // index of (type, 0) in the per-pin vectors
std::vector<std::string> eprops, estate;
struct Indexed { uint32_t src, spin; int64_t k; uint32_t edge; };
std::vector<Indexed> indexed;
std::string gp_bytes, inst_id, type_ref;
bool seen_type, seen_instance, have_gp;

const char *attr(const XML_Char **atts, const char *name) {
    for (int i = 0; atts[i]; i += 2) if (strcmp(atts[i], name) == 0) return atts[i + 1];
    return nullptr;
}

// ---- the walk ----------------------------------------------------------------------------------------
enum Kind { NONE, DEV, EDGE };
struct Walk {
    int depth = 0, skip_from = 0, inst_depth = 0;  // inst_depth: of the open <GraphInstance>, else 0
    Kind in = NONE; int in_depth = 0;
    std::string text; bool collecting = false; int value_depth = 0; bool value_has_child = false;
    std::string pv, sv; bool has_p = false, has_s = false;  // the current element's <P>/<S> texts
    std::string gp_text; bool has_gp_text = false;
    // current element
    uint32_t type = 0; std::string path; const char *send_index = nullptr; std::string send_copy;
    std::string v4p, v4s; bool has_v4p = false, has_v4s = false;
} W;

const char *local_of(const char *name) {
    size_t n = ns.size();
    if (strncmp(name, ns.c_str(), n) != 0 || name[n] != '\x01') refuse(std::string("an element in another namespace: ") + name);
    return name + n + 1;
}
bool is_instance_tag(const char *t) {
    return !strcmp(t, "GraphType") || !strcmp(t, "DevI") || !strcmp(t, "EdgeI") || !strcmp(t, "ExtI")
        || !strcmp(t, "GraphInstance") || !strcmp(t, "GraphTypeReference");
}

void start_device(const XML_Char **atts) {
    const char *id = attr(atts, "id"), *type = attr(atts, "type");
    if (!id || !*id) refuse("a device without an id");
    if (!type) refuse("a device without a type");
    size_t t = 0;
    while (t < types.size() && types[t].id != type) t++;
    if (t == types.size()) refuse("a device of an unknown type");
    add_name(id);
    W.type = (uint32_t)t;
}

void start_el(void *, const XML_Char *name, const XML_Char **atts) {
    W.depth++;
    const char *tag = local_of(name);
    if (W.collecting) { W.value_has_child = true; refuse("an element inside a value element"); }
    if (W.skip_from) {
        if (is_instance_tag(tag)) refuse(std::string("<") + tag + "> nested in an unusual place");
        return;
    }
    if (W.depth == 1) return;  // <Graphs>
    if (W.in != NONE) {
        if (W.depth == W.in_depth + 1 && version != 4 && (!strcmp(tag, "P") || !strcmp(tag, "S"))) {
            W.collecting = true; W.value_depth = W.depth; W.text.clear();
            return;
        }
        if (version == 4) refuse("a child element of a v4 DevI/EdgeI");
        W.skip_from = W.depth;
        if (is_instance_tag(tag)) refuse("nested instance elements");
        return;
    }
    if (!strcmp(tag, "GraphTypeReference") || !strcmp(tag, "ExtI")) refuse(std::string("<") + tag + ">");
    if (!strcmp(tag, "GraphType")) {
        if (seen_type || seen_instance || W.depth != 2) refuse("an unusual <GraphType>");
        seen_type = true;
        W.skip_from = W.depth;
        return;
    }
    if (!strcmp(tag, "GraphInstance")) {
        if (!seen_type || seen_instance || W.depth != 2) refuse("an unusual <GraphInstance>");
        seen_instance = true;
        W.inst_depth = W.depth;
        const char *id = attr(atts, "id"), *ref = attr(atts, "graphTypeId");
        inst_id = id ? id : "";
        type_ref = ref ? ref : "\x01";
        if (version == 4) {
            const char *p = attr(atts, "P");
            if (p) { gp_bytes = gprops.dflt; c_initialiser(p, gprops, gp_bytes); have_gp = true; }
        }
        return;
    }
    if (!W.inst_depth) {
        if (!strcmp(tag, "DevI") || !strcmp(tag, "EdgeI")) refuse("instance data outside <GraphInstance>");
        W.skip_from = W.depth;
        return;
    }
    if (W.depth == W.inst_depth + 1 && !strcmp(tag, "Properties")) {
        if (version == 4) refuse("<Properties> in a v4 <GraphInstance>");
        W.collecting = true; W.value_depth = W.depth; W.text.clear();
        return;
    }
    bool dev = !strcmp(tag, "DevI");
    if (dev || !strcmp(tag, "EdgeI")) {
        W.in = dev ? DEV : EDGE; W.in_depth = W.depth;
        W.has_p = W.has_s = false;
        if (dev) {
            start_device(atts);
        } else {
            const char *p = attr(atts, "path");
            W.path = p ? p : "";
            const char *si = attr(atts, "sendIndex");
            W.send_index = si ? (W.send_copy = si, W.send_copy.c_str()) : nullptr;
        }
        if (version == 4) {
            const char *p = attr(atts, "P"), *s = attr(atts, "S");
            W.has_v4p = p; W.has_v4s = s;
            if (p) W.v4p = p;
            if (s) W.v4s = s;
        }
        return;
    }
    if (is_instance_tag(tag)) refuse(std::string("<") + tag + "> in an unusual place");
    // DeviceInstances, EdgeInstances and anything else Python passes over: walk into it
}

struct Pins { uint32_t dst, dt, dpin, src, st, spin; };

bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }
bool ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }

// ``dstDevice:dstPin-srcDevice:srcPin`` as Python's EDGE_PATH regex splits it (greedy groups).
Pins edge_pins(const std::string &s) {
    for (char c : s) if ((unsigned char)c >= 0x80 || c == '\n' || c == '\r') refuse("an unusual edge path");
    size_t last = s.rfind(':');
    if (last == std::string::npos || last + 1 >= s.size() || !ident_start(s[last + 1])) refuse("a malformed edge path");
    for (size_t i = last + 1; i < s.size(); i++) if (!ident_char(s[i])) refuse("a malformed edge path");
    for (size_t p = last; p-- > 0;) {
        if (s[p] != ':' || p + 1 >= last || !ident_start(s[p + 1])) continue;
        size_t q = p + 1;
        while (q < last && ident_char(s[q])) q++;
        if (s[q] != '-') continue;
        int64_t dst = find(s.data(), p), src = find(s.data() + q + 1, last - q - 1);
        if (dst < 0 || src < 0) refuse("an edge naming an unknown device");
        Pins r{(uint32_t)dst, dev_type[dst], 0, (uint32_t)src, dev_type[src], 0};
        const DevType &dt = types[r.dt], &st = types[r.st];
        std::string dpin = s.substr(p + 1, q - p - 1), spin = s.substr(last + 1);
        while (r.dpin < dt.in.size() && dt.in[r.dpin].name != dpin) r.dpin++;
        while (r.spin < st.out.size() && st.out[r.spin].name != spin) r.spin++;
        if (r.dpin == dt.in.size() || r.spin == st.out.size()) refuse("an edge naming an unknown pin");
        if (dt.in[r.dpin].msg != st.out[r.spin].msg) refuse("an edge joining pins of different message types");
        return r;
    }
    refuse("a malformed edge path");
}

void end_device() {
    const DevType &d = types[W.type];
    std::string p = d.props.dflt, s = d.state.dflt;
    if (version == 4) {
        if (W.has_v4p) c_initialiser(W.v4p.c_str(), d.props, p);
        if (W.has_v4s) c_initialiser(W.v4s.c_str(), d.state, s);
    } else {
        if (W.has_p) json_body(W.pv, d.props, p);
        if (W.has_s) json_body(W.sv, d.state, s);
    }
    dev_type.push_back(W.type);
    props[W.type] += p;
    state[W.type] += s;
    counts[W.type]++;
}

void end_edge() {
    Pins r = edge_pins(W.path);
    const InPin &ip = types[r.dt].in[r.dpin];
    std::string p = ip.props.dflt, s = ip.state.dflt;
    if (version == 4) {
        if (W.has_v4p) c_initialiser(W.v4p.c_str(), ip.props, p);
        if (W.has_v4s) c_initialiser(W.v4s.c_str(), ip.state, s);
    } else {
        if (W.has_p) json_body(W.pv, ip.props, p);
        if (W.has_s) json_body(W.sv, ip.state, s);
    }
    size_t key = pin_base[r.dt] + r.dpin;
    uint32_t eidx = edge_counts[key]++;
    if (ip.props.size || ip.state.size) { eprops[key] += p; estate[key] += s; }
    const OutPin &op = types[r.st].out[r.spin];
    if (!op.indexed) {
        if (W.send_index) refuse("a sendIndex on a pin not indexed");
    } else {
        int64_t k = -1;
        if (W.send_index) {
            const char *v = W.send_index;
            size_t n = strlen(v);
            if (n == 0 || n > 9 || strspn(v, "0123456789") != n) refuse("an unusual sendIndex");
            k = atoll(v);
        }
        indexed.push_back({r.src, r.spin, k, (uint32_t)(edges.size() / 6)});
    }
    uint32_t rec[6] = {r.src, r.spin, r.dst, r.dpin, eidx, 0xFFFFFFFFu};
    edges.insert(edges.end(), rec, rec + 6);
}

void end_el(void *, const XML_Char *) {
    if (W.collecting && W.depth == W.value_depth) W.collecting = false;
    if (W.skip_from) {
        if (W.depth == W.skip_from) W.skip_from = 0;
        W.depth--;
        return;
    }
    if (W.in != NONE && W.depth == W.in_depth) {
        if (W.in == DEV) end_device(); else end_edge();
        W.in = NONE;
    } else if (W.inst_depth && W.depth == W.inst_depth) {
        W.inst_depth = 0;  // closed: instance data after it is refused
    }
    W.depth--;
}

// which value element is being collected: set by start_el through the tag, kept here
char value_tag;
void start_wrap(void *u, const XML_Char *name, const XML_Char **atts) {
    start_el(u, name, atts);
    if (W.collecting && W.depth == W.value_depth) value_tag = local_of(name)[0];
}
void end_wrap(void *u, const XML_Char *name) {
    if (W.collecting && W.depth == W.value_depth) {
        if (W.in == NONE) { W.gp_text = W.text; W.has_gp_text = true; }
        else if (value_tag == 'P') { W.pv = W.text; W.has_p = true; }
        else { W.sv = W.text; W.has_s = true; }
    }
    end_el(u, name);
}
void chars(void *, const XML_Char *s, int len) {
    if (W.collecting) W.text.append(s, (size_t)len);
}
void comment(void *, const XML_Char *) { if (W.collecting) refuse("a comment inside a value element"); }
void pi(void *, const XML_Char *, const XML_Char *) { if (W.collecting) refuse("a processing instruction inside a value element"); }
void doctype(void *, const XML_Char *, const XML_Char *, const XML_Char *, int) { refuse("a DOCTYPE"); }

void number_indexed() {
    std::sort(indexed.begin(), indexed.end(), [](const Indexed &a, const Indexed &b) {
        return a.src != b.src ? a.src < b.src : a.spin != b.spin ? a.spin < b.spin : a.edge < b.edge;
    });
    for (size_t i = 0; i < indexed.size();) {
        size_t j = i;
        while (j < indexed.size() && indexed[j].src == indexed[i].src && indexed[j].spin == indexed[i].spin) j++;
        size_t n = j - i, given = 0;
        for (size_t x = i; x < j; x++) given += indexed[x].k >= 0;
        if (given == 0) {
            for (size_t x = i; x < j; x++) edges[indexed[x].edge * 6 + 5] = (uint32_t)(x - i);
        } else {
            if (given != n) refuse("sendIndex on some edges of a pin only");
            std::vector<char> seen(n, 0);
            for (size_t x = i; x < j; x++) {
                int64_t k = indexed[x].k;
                if (k >= (int64_t)n || seen[k]) refuse("sendIndex values that are not 0..n-1");
                seen[k] = 1;
            }
            for (size_t x = i; x < j; x++) edges[indexed[x].edge * 6 + 5] = (uint32_t)indexed[x].k;
        }
        i = j;
    }
}

void write_all(FILE *f, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, f) != n) refuse("cannot write the body file");
}
void write_u32(FILE *f, uint32_t v) { write_all(f, &v, 4); }

void write_body(const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) refuse("cannot write the body file");
    write_all(f, gp_bytes.data(), gp_bytes.size());
    write_all(f, dev_type.data(), 4 * dev_type.size());
    write_u32(f, (uint32_t)names.size());
    write_all(f, names.data(), names.size());
    for (size_t t = 0; t < types.size(); t++) {
        write_u32(f, counts[t]);
        write_all(f, props[t].data(), props[t].size());
        write_all(f, state[t].data(), state[t].size());
    }
    for (size_t k = 0; k < eprops.size(); k++) {
        write_u32(f, edge_counts[k]);
        write_all(f, eprops[k].data(), eprops[k].size());
        write_all(f, estate[k].data(), estate[k].size());
    }
    write_all(f, edges.data(), 4 * edges.size());
    if (fclose(f) != 0) refuse("cannot write the body file");
}

void hex_line(const char *key, const std::string &v) {
    printf("%s ", key);
    for (unsigned char c : v) printf("%02x", c);
    printf("%s\n", v.empty() ? "-" : "");
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 4) refuse("usage: instance-loader LAYOUT XML BODY");
    read_layouts(argv[1]);
    props.resize(types.size()); state.resize(types.size()); counts.assign(types.size(), 0);
    for (const DevType &d : types) {
        pin_base.push_back(eprops.size());
        for (size_t i = 0; i < d.in.size(); i++) { eprops.emplace_back(); estate.emplace_back(); }
    }
    edge_counts.assign(eprops.size(), 0);
    gp_bytes = gprops.dflt;
    FILE *in = fopen(argv[2], "rb");
    if (!in) refuse("cannot open the file");
    XML_Parser p = XML_ParserCreateNS(nullptr, '\x01');
    XML_SetElementHandler(p, start_wrap, end_wrap);
    XML_SetCharacterDataHandler(p, chars);
    XML_SetCommentHandler(p, comment);
    XML_SetProcessingInstructionHandler(p, pi);
    XML_SetStartDoctypeDeclHandler(p, doctype);
    for (;;) {
        void *buf = XML_GetBuffer(p, 1 << 20);
        if (!buf) refuse("out of memory");
        size_t n = fread(buf, 1, 1 << 20, in);
        if (XML_ParseBuffer(p, (int)n, n == 0) == XML_STATUS_ERROR) refuse("not well-formed XML");
        if (n == 0) break;
    }
    fclose(in);
    if (!seen_type || !seen_instance) refuse("no <GraphType> or no <GraphInstance>");
    if (W.has_gp_text) { gp_bytes = gprops.dflt; json_body(W.gp_text, gprops, gp_bytes); }
    number_indexed();
    write_body(argv[3]);
    printf("devices %zu\nedges %zu\nbody_names %zu\n", dev_type.size(), edges.size() / 6,
           gp_bytes.size() + 4 * dev_type.size());
    hex_line("id", inst_id);
    hex_line("graph_type", type_ref);
    return 0;
}
