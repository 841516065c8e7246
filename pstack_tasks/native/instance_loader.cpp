// pstack's native instance loader: the <GraphInstance> section of a graph-schema file packed at C speed.
//
// Usage: instance-loader LAYOUT XML INST
//   LAYOUT  the graph type's packing layout, written by pstack_tasks/native/instance_loader.py
//   XML     the application file, plain or gzip-compressed (read through zlib's gzread, which reads both;
//           built with -DPSTACK_ZLIB -lz, else a gzip file is refused and left to the Python loader)
//   INST    written: the instance file (docs/engine-protocol.md), its type hash zero, all devices in region 0
// Prints the instance's counts and ids on stdout.  Exit 0: packed.  Exit 3: this loader cannot serve the
// file (an unusual construct, or an error in the file): one line on stderr says why, and the caller
// reads the file with the Python loader, which gives the result or the error message with file:line.
// Anything this loader accepts, it packs byte for byte as the Python loader does; anything it is not
// sure of, it refuses.
#include <expat.h>
#ifdef PSTACK_ZLIB
#include <zlib.h>
#endif
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <strings.h>
#include <string>
#include <vector>
#include <algorithm>

namespace {

[[noreturn]] void refuse(const std::string &why) {
    fprintf(stderr, "%s\n", why.c_str());
    exit(3);
}

// A member type: a scalar (its struct code), an array of `len` elements, or a tuple of named members.
struct Type;
struct Member { std::string name; const Type *type; uint32_t offset; };
struct Type { char kind = 's'; char code = 0; uint32_t size = 0, len = 0; const Type *elem = nullptr;
              std::vector<Member> members; };
struct Layout { uint32_t size = 0; std::string dflt; const Type *type = nullptr; bool all_int = true; };
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
uint32_t scalar_size(char code) {
    switch (code) {
        case 'b': case 'B': return 1;
        case 'h': case 'H': return 2;
        case 'i': case 'I': case 'f': return 4;
        case 'q': case 'Q': case 'd': return 8;
        default: refuse("layout: a member of an unusual type");
    }
}
// TYPE: a struct code (I), "[ len TYPE" (an array) or "{ n name TYPE ..." (a tuple)
const Type *read_type() {
    Type *t = new Type();  // lives as long as the process
    std::string w = word();
    if (w == "[") {
        t->kind = 'a';
        t->len = (uint32_t)std::stoul(word());
        t->elem = read_type();
        t->size = t->len * t->elem->size;
    } else if (w == "{") {
        t->kind = 't';
        size_t n = std::stoul(word());
        for (size_t i = 0; i < n; i++) {
            Member m;
            m.name = word();
            m.type = read_type();
            m.offset = t->size;
            t->size += m.type->size;
            t->members.push_back(m);
        }
    } else {
        t->code = w[0];
        t->size = scalar_size(t->code);
    }
    return t;
}
Layout read_layout() {
    Layout l;
    l.size = (uint32_t)std::stoul(word());
    l.dflt = hex_bytes(word());
    l.type = read_type();
    if (l.type->kind != 't' || l.type->size != l.size || l.dflt.size() != l.size) refuse("layout: inconsistent");
    for (const Member &m : l.type->members)
        if (m.type->kind != 's' || m.type->code == 'f' || m.type->code == 'd') l.all_int = false;
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

void put(unsigned char *p, char code, const char *tok, size_t len, bool is_int_tok) {
    char buf[4400];
    if (len >= sizeof buf) refuse("a number too long");
    memcpy(buf, tok, len);
    buf[len] = 0;
    if (code == 'f' || code == 'd') {
        double d = strtod(buf, nullptr);
        if (is_int_tok && d == 0) d = 0.0;  // Python's float(-0) is +0.0
        if (is_int_tok && std::isinf(d)) refuse("an integer too large for a float");
        if (code == 'f') {
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
    switch (code) {
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

// JSON values over the bytes of a struct, as values.py's _fill writes them: a scalar takes a number
// or true/false; an array a list (no longer than the array) or a sparse {"index": value} object; a
// tuple an object of its members.  null, strings, escapes and an array or tuple given twice (json.loads
// keeps the last, this would merge them) are refused.
struct Json {
    const std::string &s;
    size_t i, end;
    unsigned char *base;
    void skip() { while (i < end && is_ws(s[i])) i++; }
    void expect(char c) { skip(); if (i >= end || s[i] != c) refuse("malformed JSON body"); i++; }
    std::pair<size_t, size_t> key() {
        skip();
        if (i >= end || s[i] != '"') refuse("malformed JSON body");
        size_t k = ++i;
        while (i < end && s[i] != '"') {
            if (s[i] == '\\' || (unsigned char)s[i] < 0x20) refuse("an escaped or control character in a name");
            i++;
        }
        if (i >= end) refuse("malformed JSON body");
        i++;
        return {k, i - 1 - k};
    }
    // "{" already read: name/value pairs up to the "}", each value given to `member`
    template <class F> void object(F member) {
        skip();
        if (i < end && s[i] == '}') { i++; return; }
        for (;;) {
            auto k = key();
            expect(':');
            member(k.first, k.second);
            skip();
            if (i < end && s[i] == '}') { i++; return; }
            if (i >= end || s[i] != ',') refuse("malformed JSON body");
            i++;
        }
    }
    void value(const Type &t, uint32_t at) {
        skip();
        if (i >= end) refuse("malformed JSON body");
        char c = s[i];
        if (t.kind == 's') return scalar(t.code, at);
        if (c == '[' && t.kind == 'a') {
            i++;
            skip();
            if (i < end && s[i] == ']') { i++; return; }
            for (uint32_t n = 0;; n++) {
                if (n >= t.len) refuse("more values than the array holds");
                value(*t.elem, at + n * t.elem->size);
                skip();
                if (i < end && s[i] == ']') { i++; return; }
                if (i >= end || s[i] != ',') refuse("malformed JSON body");
                i++;
            }
        }
        if (c != '{') refuse("a JSON value of an unusual kind for its member");
        i++;
        if (t.kind == 'a') {
            std::vector<char> seen(t.len, 0);
            object([&](size_t k, size_t n) {
                if (n == 0 || n > 9) refuse("an unusual sparse array index");
                uint32_t x = 0;
                for (size_t j = k; j < k + n; j++) {
                    if (!isdigit((unsigned char)s[j])) refuse("an unusual sparse array index");
                    x = x * 10 + (uint32_t)(s[j] - '0');
                }
                if (x >= t.len || seen[x]) refuse("a sparse array index out of range or given twice");
                seen[x] = 1;
                value(*t.elem, at + x * t.elem->size);
            });
        } else {
            members(t, at);
        }
    }
    void members(const Type &t, uint32_t at) {
        std::vector<char> seen(t.members.size(), 0);
        object([&](size_t k, size_t n) {
            size_t m = 0;
            while (m < t.members.size() && !(t.members[m].name.size() == n && !memcmp(t.members[m].name.data(), &s[k], n))) m++;
            if (m == t.members.size()) refuse("a value for an unknown member");
            if (seen[m] && t.members[m].type->kind != 's') refuse("an array or tuple member given twice");
            seen[m] = 1;
            value(*t.members[m].type, at + t.members[m].offset);
        });
    }
    void scalar(char code, uint32_t at) {
        if (s[i] == 't' || s[i] == 'f') {
            const char *w = s[i] == 't' ? "true" : "false";
            size_t n = strlen(w);
            if (s.compare(i, n, w) != 0) refuse("an unusual JSON value");
            put(base + at, code, s[i] == 't' ? "1" : "0", 1, true);
            i += n;
            return;
        }
        bool is_int;
        size_t j = number(s, i, is_int);
        if (j > end) refuse("malformed JSON body");
        put(base + at, code, &s[i], j - i, is_int);
        i = j;
    }
};

// A v2/v3 <P>/<S> body ("name": value pairs, with or without their braces) over the defaults.
void json_body(const std::string &s, const Layout &l, std::string &out) {
    size_t a = 0, b = s.size();
    while (a < b && is_ws(s[a])) a++;
    while (b > a && is_ws(s[b - 1])) b--;
    if (a == b) return;
    std::string braced;
    const std::string *text = &s;
    if (s[a] != '{') {  // as elements.parse_json_body: the braces are added
        braced = "{" + s.substr(a, b - a) + "}";
        text = &braced;
        a = 0; b = braced.size();
    }
    Json j{*text, a + 1, b, (unsigned char *)&out[0]};
    j.members(*l.type, 0);
    j.skip();
    if (j.i != b) refuse("text after a JSON body");
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
        if (member >= l.type->members.size()) refuse("more values than members");
        put((unsigned char *)&out[l.type->members[member].offset], l.type->members[member].type->code, tok.data(), tok.size(), true);
        member++;
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
std::vector<uint64_t> table;        // open addressing by the hash's top 32 bits (the tag): tag << 32 | device + 1; 0 empty
uint64_t hash_of(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}
int64_t find_hashed(const char *s, size_t n) {
    if (table.empty()) return -1;
    size_t mask = table.size() - 1;
    uint64_t tag = hash_of(s, n) >> 32;
    for (size_t i = tag & mask;; i = (i + 1) & mask) {
        uint64_t v = table[i];
        if (!v) return -1;
        if ((v >> 32) != tag) continue;
        uint32_t dev = (uint32_t)v - 1;
        const char *name = &names[name_at[dev]];
        if (memcmp(name, s, n) == 0 && name[n] == 0) return dev;
    }
}
// A device by name: edges are mostly written in device order, so the devices next to the last two
// found are tried first (their names are close together in memory); else the hash table.
int64_t recent[2] = {0, 0};
int64_t find(const char *s, size_t n) {
    for (int64_t base : {recent[0], recent[1]})
        for (int64_t d = base; d <= base + 1; d++)
            if (d < (int64_t)name_at.size()) {
                const char *name = &names[name_at[d]];
                if (memcmp(name, s, n) == 0 && name[n] == 0) {
                    recent[1] = recent[0]; recent[0] = d;
                    return d;
                }
            }
    int64_t d = find_hashed(s, n);
    if (d >= 0) { recent[1] = recent[0]; recent[0] = d; }
    return d;
}
// an entry (tag << 32 | device + 1) put in its slot, found from its tag alone (a rehash reads no name)
void insert_entry(uint64_t v) {
    size_t mask = table.size() - 1;
    size_t i = (v >> 32) & mask;
    while (table[i]) i = (i + 1) & mask;
    table[i] = v;
}
void add_name(const char *s) {
    size_t n = strlen(s);
    if (find_hashed(s, n) >= 0) refuse("a duplicate device id");
    if ((name_at.size() + 1) * 2 > table.size()) {
        std::vector<uint64_t> old(table.empty() ? 1024 : table.size() * 2, 0);
        old.swap(table);
        for (uint64_t v : old) if (v) insert_entry(v);
    }
    name_at.push_back(names.size());
    names.insert(names.end(), s, s + n + 1);
    insert_entry(((hash_of(s, n) >> 32) << 32) | (uint64_t)name_at.size());
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
// "ASCII" (written by some generators; expat knows it as US-ASCII): bytes 0..127 as they are
int unknown_encoding(void *, const XML_Char *name, XML_Encoding *info) {
    if (strcasecmp(name, "ASCII") != 0) return XML_STATUS_ERROR;
    for (int i = 0; i < 256; i++) info->map[i] = i < 128 ? i : -1;
    info->data = nullptr; info->convert = nullptr; info->release = nullptr;
    return XML_STATUS_OK;
}
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
    if (n && fwrite(p, 1, n, f) != n) refuse("cannot write the instance file");
}
void write_u32(FILE *f, uint32_t v) { write_all(f, &v, 4); }
const size_t HEADER_BYTES = 4 + 4 + 64 + 16;  // magic, version, type hash, four counts

// The whole instance file (docs/engine-protocol.md): its type hash left zero (the caller puts in
// the engine's) and every device in region 0 (a split puts in its regions).
void write_instance(const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) refuse("cannot write the instance file");
    static char buf[1 << 22];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    write_all(f, "PSTI", 4);
    write_u32(f, 2);
    char hash[64] = {0};
    write_all(f, hash, 64);
    for (uint32_t v : {(uint32_t)dev_type.size(), (uint32_t)(edges.size() / 6), (uint32_t)types.size(),
                       (uint32_t)gp_bytes.size()})
        write_u32(f, v);
    write_all(f, gp_bytes.data(), gp_bytes.size());
    write_all(f, dev_type.data(), 4 * dev_type.size());
    std::vector<uint32_t> regions(dev_type.size(), 0);
    write_all(f, regions.data(), 4 * regions.size());
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
    if (fclose(f) != 0) refuse("cannot write the instance file");
}

void hex_line(const char *key, const std::string &v) {
    printf("%s ", key);
    for (unsigned char c : v) printf("%02x", c);
    printf("%s\n", v.empty() ? "-" : "");
}

// The application file as a stream of XML bytes: decompressed when it is gzip.  A damaged gzip
// stream is refused (the Python loader names what is wrong with it).
#ifdef PSTACK_ZLIB
struct Input {
    gzFile f;
    explicit Input(const char *path) : f(gzopen(path, "rb")) {
        if (!f) refuse("cannot open the file");
        gzbuffer(f, 1 << 20);
    }
    ~Input() { gzclose(f); }
    size_t read(void *buf, unsigned n) {
        int got = gzread(f, buf, n);
        if (got < 0) {
            int err = 0;
            const char *why = gzerror(f, &err);
            refuse(std::string("a damaged gzip file: ") + (why ? why : "read error"));
        }
        return (size_t)got;
    }
};
#else
struct Input {
    FILE *f;
    explicit Input(const char *path) : f(fopen(path, "rb")) {
        if (!f) refuse("cannot open the file");
        unsigned char magic[2] = {0, 0};
        if (fread(magic, 1, 2, f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
            refuse("a gzip-compressed file (this loader was built without zlib)");
        rewind(f);
    }
    ~Input() { fclose(f); }
    size_t read(void *buf, unsigned n) {
        size_t got = fread(buf, 1, n, f);
        if (got < n && ferror(f)) refuse("cannot read the file");
        return got;
    }
};
#endif

}  // namespace

int main(int argc, char **argv) {
    if (argc != 4) refuse("usage: instance-loader LAYOUT XML INST");
    read_layouts(argv[1]);
    props.resize(types.size()); state.resize(types.size()); counts.assign(types.size(), 0);
    for (const DevType &d : types) {
        pin_base.push_back(eprops.size());
        for (size_t i = 0; i < d.in.size(); i++) { eprops.emplace_back(); estate.emplace_back(); }
    }
    edge_counts.assign(eprops.size(), 0);
    gp_bytes = gprops.dflt;
    Input in(argv[2]);
    XML_Parser p = XML_ParserCreateNS(nullptr, '\x01');
    XML_SetElementHandler(p, start_wrap, end_wrap);
    XML_SetCharacterDataHandler(p, chars);
    XML_SetCommentHandler(p, comment);
    XML_SetProcessingInstructionHandler(p, pi);
    XML_SetStartDoctypeDeclHandler(p, doctype);
    XML_SetUnknownEncodingHandler(p, unknown_encoding, nullptr);
    for (;;) {
        void *buf = XML_GetBuffer(p, 1 << 20);
        if (!buf) refuse("out of memory");
        size_t n = in.read(buf, 1 << 20);
        if (XML_ParseBuffer(p, (int)n, n == 0) == XML_STATUS_ERROR) refuse("not well-formed XML");
        if (n == 0) break;
    }
    if (!seen_type || !seen_instance) refuse("no <GraphType> or no <GraphInstance>");
    if (W.has_gp_text) { gp_bytes = gprops.dflt; json_body(W.gp_text, gprops, gp_bytes); }
    number_indexed();
    write_instance(argv[3]);
    printf("devices %zu\nedges %zu\nregions_at %zu\n", dev_type.size(), edges.size() / 6,
           HEADER_BYTES + gp_bytes.size() + 4 * dev_type.size());
    hex_line("id", inst_id);
    hex_line("graph_type", type_ref);
    return 0;
}
