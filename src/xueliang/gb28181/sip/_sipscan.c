/* What every SIP message of a registration storm passes through, in C: message._parse's header
 * loop and digest._parse_auth_params were over a quarter of the server's handling, and the
 * request line, the CSeq, the Via stamp, the Keepalive's device and the answer's bytes most of
 * the rest of the parsing and writing (issue 18; bench/sip_instructions.py counts them).
 *
 * HeadScanner(exact, key_and_name).scan(data, start) -> (first_line, items, body_start, firsts,
 *   request) or None: the header block from data[start] on, read as message._parse's Python code reads it. It ends
 *   at the first LF followed by LF or CR LF (the two finds; the body begins after them) or at the
 *   end of the data. Its lines end at LF, less one CR just before it (replace("\r\n", "\n")); the
 *   first line is stripped of " \t\r"; every other non-empty line is a header, (key, display
 *   name, value) with the value stripped of " \t\r", or a continuation (it starts with a space or
 *   a tab), folded into the value before it with one space. A name is looked up in a table made
 *   once from `exact` (message._EXACT, which stays the one list of spellings): a known header
 *   costs no string of its name and gets _EXACT's own key and display strings. Any other name goes
 *   to key_and_name (message._key_and_name). None whenever the Python code must decide: a byte
 *   >= 0x80 in the head (its UTF-8 decoding with surrogateescape), a line without a colon, a
 *   continuation before the first header, a name key_and_name refuses; it then reads the message
 *   again and raises its own errors in its own order (the start line's first: only Python checks
 *   the start line). `firsts` is Headers._index made in the same call: each key's first value.
 *   `request` is (method, uri, Content-Length or None) when the message is a request that
 *   message._parse_with would take as it is (its request line, required headers, CSeq and
 *   Content-Length checked as the Python checks them), so the Python need not read them again;
 *   else None, and the Python reads the start line and raises its errors in its own order.
 *
 * parse_auth_params(value) -> (scheme, params) or None: digest._parse_auth_params where its one
 *   findall of _PARAM tiles the parameter list, for a value without control characters but tab
 *   (so that \s and str.split's whitespace are just space and tab). Each step below is one the
 *   regex takes with no choice left (it never backtracks into another match); where it would
 *   look further (no tiling: a stray quote, a doubled comma, an unclosed string), the answer is
 *   None and the regexes read the value.
 *
 * cseq(value) -> (number, method) or None: message._parse_cseq for a well-formed CSeq value.
 *
 * keepalive_id(body) -> str or None: the device of a Keepalive that answers.py reads on its plain
 *   path (its CmdType and DeviceID spelt as nearly every device spells them).
 *
 * HeadScanner.response(start_line, request_items, extra, routes) -> bytes or None: the bytes of a
 *   response with no body that repeats a request's headers (message._response_bytes_py), each
 *   part read once, none made a str or a tuple on the way; None leaves it to the Python.
 *
 * stamp_via(value, host, port) -> str, None or False: uri._stamp_via_fast_py (a received request's
 *   top Via stamped with its source, RFC 3581) for an ASCII value and host; False leaves any other
 *   to the Python. Every request a device sends passes here.
 *
 * serialize(start_line, items, body) -> bytes or None: message._serialize_py's bytes (a message's
 *   start line, its header lines in order, one Content-Length that says len(body), the body) in
 *   one allocation, where the Python writes a string per line, joins and encodes them. None (the
 *   Python writes it) unless the start line and every item's three parts are ASCII str: a
 *   non-ASCII value, or a lone surrogate from a surrogateescape'd input, is the Python's to encode.
 *
 * Built by scripts/build_native.py and loaded only when this source is unchanged since the build
 * (src/xueliang/_native.py); message.py and digest.py keep their Python for when it is not, and
 * tests/gb28181/sip/test_sipscan.py and the sip_scan fuzz target hold the two to the same answers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* A str of n ASCII bytes. */
static PyObject *
ascii_str(const unsigned char *p, Py_ssize_t n)
{
    PyObject *s = PyUnicode_New(n, 127);
    if (s != NULL && n > 0) {
        memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)n);
    }
    return s;
}

static int
is_ascii(const unsigned char *p, Py_ssize_t n)
{
    uint64_t words = 0; /* eight bytes a step: every line of every message passes here */
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        words |= w;
    }
    unsigned char any = 0;
    for (; i < n; i++) {
        any |= p[i];
    }
    return (words & 0x8080808080808080ULL) == 0 && (any & 0x80) == 0;
}

/* Every str is ready from Python 3.12 on (and the call deprecated). */
#if PY_VERSION_HEX < 0x030C0000
#define READY(s) PyUnicode_READY(s)
#else
#define READY(s) 0
#endif

#define IS_SP(c) ((c) == ' ' || (c) == '\t')
#define IS_SP_CR(c) ((c) == ' ' || (c) == '\t' || (c) == '\r')

/* -- the header block ------------------------------------------------------------------------ */

typedef struct {
    const unsigned char *name; /* an `exact` key's ASCII bytes; NULL: an empty slot */
    Py_ssize_t len;
    PyObject *key; /* borrowed, like name, from the scanner's copy of `exact` */
    PyObject *display;
} Slot;

typedef struct {
    PyObject_HEAD
    PyObject *names; /* a copy of `exact`: owns what the slots point to, and nobody changes it */
    PyObject *key_and_name;
    Slot *slots;
    size_t mask;
    /* `exact`'s keys of via, from, to, call-id, cseq and content-length (borrowed like the
     * slots'); any NULL (an `exact` without them) turns the request fast path off */
    PyObject *keys[6];
} Scanner;

enum { K_VIA, K_FROM, K_TO, K_CALL_ID, K_CSEQ, K_LENGTH, N_KEYS };
static const char *const KEY_NAMES[N_KEYS] = {"via", "from", "to", "call-id", "cseq", "content-length"};

/* The methods message._KNOWN_METHODS holds, each a str made once: a request's own is shared. */
static const char *const METHODS[] = {
    "REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "INFO", "SUBSCRIBE", "NOTIFY", "UPDATE",
    "PRACK", "REFER", "PUBLISH",
};
#define N_METHODS (sizeof(METHODS) / sizeof(METHODS[0]))
static PyObject *methods_str[N_METHODS];

static size_t
name_hash(const unsigned char *p, Py_ssize_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a: header names are a few bytes */
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

static const Slot *
lookup(const Scanner *self, const unsigned char *p, Py_ssize_t n)
{
    size_t i = name_hash(p, n) & self->mask;
    for (;;) { /* the table is at most a quarter full: an empty slot ends every probe */
        const Slot *slot = &self->slots[i];
        if (slot->name == NULL) {
            return NULL;
        }
        if (slot->len == n && memcmp(slot->name, p, (size_t)n) == 0) {
            return slot;
        }
        i = (i + 1) & self->mask;
    }
}

static PyObject *
scanner_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *exact, *key_and_name;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "HeadScanner() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O:HeadScanner", &PyDict_Type, &exact, &key_and_name)) {
        return NULL;
    }
    if (!PyCallable_Check(key_and_name)) {
        PyErr_SetString(PyExc_TypeError, "HeadScanner(): key_and_name must be callable");
        return NULL;
    }
    Scanner *self = PyObject_GC_New(Scanner, type);
    if (self == NULL) {
        return NULL;
    }
    self->key_and_name = Py_NewRef(key_and_name);
    self->slots = NULL;
    self->mask = 0;
    memset(self->keys, 0, sizeof(self->keys));
    self->names = PyDict_Copy(exact);
    if (self->names == NULL) {
        goto fail;
    }
    size_t size = 16;
    while (size < 4 * (size_t)PyDict_GET_SIZE(self->names)) {
        size *= 2;
    }
    self->slots = PyMem_Calloc(size, sizeof(Slot));
    if (self->slots == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    self->mask = size - 1;
    Py_ssize_t pos = 0;
    PyObject *name, *pair;
    while (PyDict_Next(self->names, &pos, &name, &pair)) {
        if (!PyUnicode_Check(name) || READY(name) < 0 || !PyUnicode_IS_ASCII(name)
            || !PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2
            || !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0)) || !PyUnicode_Check(PyTuple_GET_ITEM(pair, 1))) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "HeadScanner(): exact maps ASCII names to (key, name) pairs of str");
            }
            goto fail;
        }
        const unsigned char *p = PyUnicode_1BYTE_DATA(name);
        Py_ssize_t n = PyUnicode_GET_LENGTH(name);
        size_t i = name_hash(p, n) & self->mask;
        while (self->slots[i].name != NULL) { /* dict keys are distinct: no duplicate to meet */
            i = (i + 1) & self->mask;
        }
        self->slots[i] = (Slot){p, n, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)};
    }
    for (int k = 0; k < N_KEYS; k++) {
        const Slot *slot = lookup(self, (const unsigned char *)KEY_NAMES[k], (Py_ssize_t)strlen(KEY_NAMES[k]));
        self->keys[k] = slot != NULL && PyUnicode_CompareWithASCIIString(slot->key, KEY_NAMES[k]) == 0 ? slot->key : NULL;
    }
    PyObject_GC_Track(self);
    return (PyObject *)self;
fail:
    Py_CLEAR(self->names);
    Py_CLEAR(self->key_and_name);
    PyMem_Free(self->slots);
    self->slots = NULL;
    PyObject_GC_Del(self);
    return NULL;
}

static int
scanner_traverse(Scanner *self, visitproc visit, void *arg)
{
    Py_VISIT(self->names);
    Py_VISIT(self->key_and_name);
    return 0;
}

static int
scanner_clear(Scanner *self)
{
    Py_CLEAR(self->names);
    Py_CLEAR(self->key_and_name);
    return 0;
}

static void
scanner_dealloc(Scanner *self)
{
    PyObject_GC_UnTrack(self);
    scanner_clear(self);
    PyMem_Free(self->slots);
    PyObject_GC_Del(self);
}

/* The (key, name) pair of a header name that is not in the table, from key_and_name. NULL with
 * no exception set: it refused the name (the Python loop will raise the same error in turn). */
static PyObject *
slow_pair(Scanner *self, const unsigned char *p, Py_ssize_t n)
{
    PyObject *name = ascii_str(p, n);
    if (name == NULL) {
        return NULL;
    }
    PyObject *pair = PyObject_CallOneArg(self->key_and_name, name);
    Py_DECREF(name);
    if (pair == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear();
        }
        return NULL;
    }
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0))
        || !PyUnicode_Check(PyTuple_GET_ITEM(pair, 1))) {
        Py_DECREF(pair);
        PyErr_SetString(PyExc_TypeError, "key_and_name must return a (key, name) pair of str");
        return NULL;
    }
    return pair;
}

/* Folds a continuation line's text [a, b) into the last item: "value more", or "more". */
static int
fold(PyObject *items, const unsigned char *a, const unsigned char *b)
{
    Py_ssize_t last = PyList_GET_SIZE(items) - 1;
    PyObject *item = PyList_GET_ITEM(items, last);
    PyObject *value = PyTuple_GET_ITEM(item, 2); /* ours: compact ASCII */
    Py_ssize_t had = PyUnicode_GET_LENGTH(value), more = b - a;
    PyObject *folded;
    if (had == 0) {
        folded = ascii_str(a, more);
    }
    else {
        folded = PyUnicode_New(had + 1 + more, 127);
        if (folded != NULL) {
            Py_UCS1 *out = PyUnicode_1BYTE_DATA(folded);
            memcpy(out, PyUnicode_1BYTE_DATA(value), (size_t)had);
            out[had] = ' ';
            memcpy(out + had + 1, a, (size_t)more);
        }
    }
    if (folded == NULL) {
        return -1;
    }
    PyObject *again = PyTuple_Pack(3, PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1), folded);
    Py_DECREF(folded);
    if (again == NULL) {
        return -1;
    }
    return PyList_SetItem(items, last, again); /* steals again, releases the old item */
}

/* Strips " \t\r" from both ends of [*a, *b). */
static void
strip_sp_cr(const unsigned char **a, const unsigned char **b)
{
    while (*a < *b && IS_SP_CR(**a)) {
        (*a)++;
    }
    while (*b > *a && IS_SP_CR((*b)[-1])) {
        (*b)--;
    }
}

/* -- a request read through ---------------------------------------------------------------- */

/* The space-separated words of [s, s+n): up to `most` of them into (at, len), their count, or -1
 * when str.split() could see it otherwise (a control character but tab, DEL) or more words come. */
static int
words(const unsigned char *s, Py_ssize_t n, int most, Py_ssize_t *at, Py_ssize_t *len)
{
    int count = 0;
    Py_ssize_t i = 0;
    for (;;) {
        while (i < n && IS_SP(s[i])) {
            i++;
        }
        if (i == n) {
            return count;
        }
        if (count == most) {
            return -1;
        }
        Py_ssize_t w = i;
        while (i < n && !IS_SP(s[i])) {
            if (s[i] < 0x20 || s[i] == 0x7f) {
                return -1;
            }
            i++;
        }
        at[count] = w, len[count] = i - w;
        count++;
    }
}

static int
is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c != 0 && strchr("-.!%*_+`'~", c) != NULL);
}

/* A decimal of 1 to 10 digits (message._parse_length's and _parse_cseq's rule), or -1. */
static long long
digits_value(const unsigned char *s, Py_ssize_t n)
{
    if (n < 1 || n > 10) {
        return -1;
    }
    long long v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* A method's str: the one made once when it is a known method, else a new one. */
static PyObject *
method_of(const unsigned char *p, Py_ssize_t n)
{
    for (size_t m = 0; m < N_METHODS; m++) {
        if (n == PyUnicode_GET_LENGTH(methods_str[m]) && memcmp(p, METHODS[m], (size_t)n) == 0) {
            return Py_NewRef(methods_str[m]);
        }
    }
    return ascii_str(p, n);
}

/* The ASCII bytes of `firsts`' value under key k, or NULL if there is none (*n set). */
static const unsigned char *
first_value(Scanner *self, PyObject *firsts, int k, Py_ssize_t *n)
{
    PyObject *value = PyDict_GetItemWithError(firsts, self->keys[k]); /* borrowed; ours: compact ASCII */
    if (value == NULL) {
        return NULL;
    }
    *n = PyUnicode_GET_LENGTH(value);
    return PyUnicode_1BYTE_DATA(value);
}

/* (method, uri, content length or None) when the message is a request that message._parse_with
 * takes as it is: its request line, its required headers, its CSeq and its Content-Length all
 * as the Python checks them, with no question left (see words()). Else None, and the Python
 * reads the start line and raises what it finds. NULL on an error. */
static PyObject *
fast_request(Scanner *self, PyObject *first, PyObject *firsts)
{
    for (int k = 0; k < N_KEYS; k++) {
        if (self->keys[k] == NULL) {
            Py_RETURN_NONE;
        }
    }
    const unsigned char *line = PyUnicode_1BYTE_DATA(first);
    Py_ssize_t n = PyUnicode_GET_LENGTH(first), at[3], len[3];
    if (n >= 4 && PyOS_strnicmp((const char *)line, "SIP/", 4) == 0) {
        Py_RETURN_NONE; /* a response */
    }
    if (words(line, n, 3, at, len) != 3 || len[2] != 7 || PyOS_strnicmp((const char *)line + at[2], "SIP/2.0", 7) != 0
        || memchr(line + at[1], ':', (size_t)len[1]) == NULL) {
        Py_RETURN_NONE;
    }
    const unsigned char *method = line + at[0];
    for (Py_ssize_t i = 0; i < len[0]; i++) {
        if (!is_token_char(method[i])) {
            Py_RETURN_NONE;
        }
    }
    Py_ssize_t vn = 0;
    const unsigned char *cseq = NULL; /* the loop's last value: K_CSEQ's, the last required */
    for (int k = K_VIA; k <= K_CSEQ; k++) {
        if ((cseq = first_value(self, firsts, k, &vn)) == NULL) {
            if (PyErr_Occurred()) {
                return NULL;
            }
            Py_RETURN_NONE; /* "Missing ... header": the Python's to say */
        }
    }
    Py_ssize_t c_at[2], c_len[2];
    if (words(cseq, vn, 2, c_at, c_len) != 2) {
        Py_RETURN_NONE;
    }
    long long number = digits_value(cseq + c_at[0], c_len[0]);
    if (number < 0 || number >= 2147483648LL || c_len[1] != len[0] || memcmp(cseq + c_at[1], method, (size_t)len[0]) != 0) {
        Py_RETURN_NONE;
    }
    PyObject *length;
    const unsigned char *clen = first_value(self, firsts, K_LENGTH, &vn);
    if (clen != NULL) {
        long long v = digits_value(clen, vn);
        if (v < 0) {
            Py_RETURN_NONE;
        }
        length = PyLong_FromLongLong(v);
    }
    else if (PyErr_Occurred()) {
        return NULL;
    }
    else {
        length = Py_NewRef(Py_None);
    }
    PyObject *method_str = method_of(method, len[0]);
    PyObject *uri = ascii_str(line + at[1], len[1]);
    PyObject *out = NULL;
    if (length != NULL && method_str != NULL && uri != NULL) {
        out = PyTuple_Pack(3, method_str, uri, length);
    }
    Py_XDECREF(length);
    Py_XDECREF(method_str);
    Py_XDECREF(uri);
    return out;
}

/* The scan of data[start:]; see the top of this file. */
static PyObject *
scan_head(Scanner *self, const unsigned char *data, Py_ssize_t start, Py_ssize_t size)
{
    const unsigned char *end = data + size, *line = data + start, *a, *b;
    Py_ssize_t body_start = size;
    PyObject *first = NULL, *items = PyList_New(0);
    if (items == NULL) {
        return NULL;
    }
    for (int last = 0; !last;) {
        /* The line [line, stop), and whether the head ends after it: at the first LF followed by
         * LF or CR LF (_parse's two finds), or at the end of the data. */
        const unsigned char *nl = line < end ? memchr(line, '\n', (size_t)(end - line)) : NULL;
        const unsigned char *stop = nl != NULL ? nl : end;
        if (nl == NULL) {
            last = 1;
        }
        else if (end - nl > 1 && nl[1] == '\n') {
            last = 1, body_start = nl + 2 - data;
        }
        else if (end - nl > 2 && nl[1] == '\r' && nl[2] == '\n') {
            last = 1, body_start = nl + 3 - data;
        }
        else if (stop > line && stop[-1] == '\r') { /* a CR LF inside the head: the LF alone */
            stop--;
        }
        if (!is_ascii(line, stop - line)) {
            goto refuse;
        }
        if (first == NULL) {
            a = line, b = stop;
            strip_sp_cr(&a, &b);
            first = ascii_str(a, b - a);
            if (first == NULL) {
                goto error;
            }
        }
        else if (stop == line) {
            /* an empty line (only the data's end can make one here) */
        }
        else if (IS_SP(*line)) { /* a continuation line */
            if (PyList_GET_SIZE(items) == 0) {
                goto refuse;
            }
            a = line, b = stop;
            strip_sp_cr(&a, &b);
            if (a < b && fold(items, a, b) < 0) {
                goto error;
            }
        }
        else {
            const unsigned char *colon = memchr(line, ':', (size_t)(stop - line));
            if (colon == NULL) {
                goto refuse;
            }
            PyObject *key, *display, *pair = NULL;
            const Slot *slot = lookup(self, line, colon - line);
            if (slot != NULL) {
                key = slot->key, display = slot->display;
            }
            else {
                pair = slow_pair(self, line, colon - line);
                if (pair == NULL) {
                    if (PyErr_Occurred()) {
                        goto error;
                    }
                    goto refuse;
                }
                key = PyTuple_GET_ITEM(pair, 0), display = PyTuple_GET_ITEM(pair, 1);
            }
            a = colon + 1, b = stop;
            strip_sp_cr(&a, &b);
            PyObject *value = ascii_str(a, b - a);
            PyObject *item = value != NULL ? PyTuple_Pack(3, key, display, value) : NULL;
            Py_XDECREF(value);
            Py_XDECREF(pair);
            if (item == NULL || PyList_Append(items, item) < 0) {
                Py_XDECREF(item);
                goto error;
            }
            Py_DECREF(item);
        }
        if (!last) {
            line = nl + 1;
        }
    }
    /* Headers._index: each key's first value (after folding), made here in one pass. */
    PyObject *firsts = _PyDict_NewPresized(PyList_GET_SIZE(items)); /* no resize on the way */
    if (firsts == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0, n = PyList_GET_SIZE(items); i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (PyDict_SetDefault(firsts, PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 2)) == NULL) {
            Py_DECREF(firsts);
            goto error;
        }
    }
    PyObject *request = fast_request(self, first, firsts);
    PyObject *out = PyTuple_New(5), *body = PyLong_FromSsize_t(body_start);
    if (out == NULL || body == NULL || request == NULL) {
        Py_XDECREF(out);
        Py_XDECREF(body);
        Py_XDECREF(request);
        Py_DECREF(firsts);
        goto error;
    }
    PyTuple_SET_ITEM(out, 0, first); /* the tuple takes our references */
    PyTuple_SET_ITEM(out, 1, items);
    PyTuple_SET_ITEM(out, 2, body);
    PyTuple_SET_ITEM(out, 3, firsts);
    PyTuple_SET_ITEM(out, 4, request);
    return out;
refuse:
    Py_XDECREF(first);
    Py_DECREF(items);
    Py_RETURN_NONE;
error:
    Py_XDECREF(first);
    Py_DECREF(items);
    return NULL;
}

static PyObject *
scanner_scan(Scanner *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "scan() takes 2 arguments (data, start), %zd given", nargs);
        return NULL;
    }
    if (self->names == NULL) { /* cleared by the garbage collector */
        PyErr_SetString(PyExc_RuntimeError, "scan() of a cleared HeadScanner");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* Bytes, which nothing can change while key_and_name runs (a bytearray could be): anything
     * else with a buffer is copied first. */
    PyObject *data;
    if (PyBytes_Check(args[0])) {
        data = Py_NewRef(args[0]);
    }
    else {
        Py_buffer view;
        if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        data = PyBytes_FromStringAndSize(view.buf, view.len);
        PyBuffer_Release(&view);
        if (data == NULL) {
            return NULL;
        }
    }
    PyObject *out;
    if (start < 0 || start >= PyBytes_GET_SIZE(data)) {
        PyErr_SetString(PyExc_ValueError, "scan(): need 0 <= start < len(data)");
        out = NULL;
    }
    else {
        out = scan_head(self, (const unsigned char *)PyBytes_AS_STRING(data), start, PyBytes_GET_SIZE(data));
    }
    Py_DECREF(data);
    return out;
}

static PyObject *scanner_response(Scanner *self, PyObject *const *args, Py_ssize_t nargs);

static PyMethodDef scanner_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scanner_scan, METH_FASTCALL,
     "scan(data, start) -> (first line, [(key, name, value), ...], body start, {key: first value}, request or None) or None (see message._parse)."},
    {"response", (PyCFunction)(void (*)(void))scanner_response, METH_FASTCALL,
     "response(start_line, request_items, extra, routes) -> message._response_bytes_py's bytes, or None."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "xueliang.gb28181.sip._sipscan.HeadScanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "HeadScanner(exact, key_and_name): message._parse's header loop, its names from exact.",
    .tp_new = scanner_new,
    .tp_dealloc = (destructor)scanner_dealloc,
    .tp_traverse = (traverseproc)scanner_traverse,
    .tp_clear = (inquiry)scanner_clear,
    .tp_methods = scanner_methods,
};

/* -- digest parameter lists ------------------------------------------------------------------ */

/* Parameter names met in every Authorization and challenge, interned once: the dict then holds
 * these instead of a new lower-cased string each, and finds their hashes already made. */
static const char *const KNOWN[] = {
    "username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce", "opaque",
    "stale", "domain",
};
#define N_KNOWN (sizeof(KNOWN) / sizeof(KNOWN[0]))
static PyObject *known[N_KNOWN];
static PyObject *digest_word; /* "digest" */

static unsigned char
lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* A str of [p, p+n) lower-cased: one of `known` when it is one. */
static PyObject *
lower_str(const unsigned char *p, Py_ssize_t n)
{
    for (size_t k = 0; k < N_KNOWN; k++) {
        const char *w = KNOWN[k];
        Py_ssize_t i = 0;
        while (i < n && w[i] != '\0' && lower(p[i]) == (unsigned char)w[i]) {
            i++;
        }
        if (i == n && w[i] == '\0') {
            return Py_NewRef(known[k]);
        }
    }
    PyObject *s = PyUnicode_New(n, 127);
    if (s != NULL) {
        Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
        for (Py_ssize_t i = 0; i < n; i++) {
            out[i] = lower(p[i]);
        }
    }
    return s;
}

/* The findall loop over rest[0:n]: 1 when its matches tile it (params filled), 0 when not, -1 on
 * an error. Each match, as _PARAM reads it: [ \t,]* name [ \t]* = [ \t]* ("quoted" | bare) [ \t]*
 * (, | end). Every run below is the regex's greedy one, and nothing after it could match what it
 * gave back: a name char is not a separator, space or "="; a quoted string ends at its first
 * unescaped quote; a bare value ends at its first comma or quote. */
static int
tile_params(const unsigned char *s, Py_ssize_t n, PyObject *params)
{
    Py_ssize_t p = 0;
    while (p < n) {
        while (p < n && (IS_SP(s[p]) || s[p] == ',')) {
            p++;
        }
        Py_ssize_t name = p;
        while (p < n && !IS_SP(s[p]) && s[p] != '=' && s[p] != ',' && s[p] != '"') {
            p++;
        }
        Py_ssize_t name_len = p - name;
        if (name_len == 0) {
            return 0;
        }
        while (p < n && IS_SP(s[p])) {
            p++;
        }
        if (p == n || s[p] != '=') {
            return 0;
        }
        p++;
        while (p < n && IS_SP(s[p])) {
            p++;
        }
        PyObject *value;
        if (p < n && s[p] == '"') {
            Py_ssize_t q = ++p, escapes = 0;
            while (p < n && s[p] != '"') {
                if (s[p] == '\\') {
                    if (p + 1 == n) {
                        return 0; /* a lone backslash at the end: the string is not closed */
                    }
                    escapes++;
                    p++;
                }
                p++;
            }
            if (p == n) {
                return 0; /* no closing quote */
            }
            Py_ssize_t q_end = p++;
            while (p < n && IS_SP(s[p])) {
                p++;
            }
            if (p < n) {
                if (s[p] != ',') {
                    return 0;
                }
                p++;
            }
            if (escapes == 0) {
                value = ascii_str(s + q, q_end - q);
            }
            else { /* _ESCAPE.sub(r"\1", quoted): each backslash gives the character after it (the
                    * scan above paired every backslash with one inside the string) */
                value = PyUnicode_New(q_end - q - escapes, 127);
                if (value != NULL) {
                    Py_UCS1 *out = PyUnicode_1BYTE_DATA(value);
                    for (Py_ssize_t i = q; i < q_end; i++) {
                        if (s[i] == '\\') {
                            i++;
                        }
                        *out++ = s[i];
                    }
                }
            }
        }
        else {
            Py_ssize_t v = p;
            while (p < n && s[p] != ',' && s[p] != '"') {
                p++;
            }
            if (p < n && s[p] == '"') {
                return 0;
            }
            Py_ssize_t v_end = p;
            if (p < n) {
                p++; /* the comma */
            }
            while (v < v_end && IS_SP(s[v_end - 1])) { /* bare.strip(" \t"): the front is bare already */
                v_end--;
            }
            value = ascii_str(s + v, v_end - v);
        }
        if (value == NULL) {
            return -1;
        }
        PyObject *key = lower_str(s + name, name_len);
        int failed = key == NULL || PyDict_SetItem(params, key, value) < 0;
        Py_XDECREF(key);
        Py_DECREF(value);
        if (failed) {
            return -1;
        }
    }
    return 1;
}

static PyObject *
parse_auth_params(PyObject *module, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "parse_auth_params() wants a str, not %.80s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    if (READY(arg) < 0) {
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(arg)) {
        Py_RETURN_NONE;
    }
    const unsigned char *s = PyUnicode_1BYTE_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
            Py_RETURN_NONE;
        }
    }
    /* text = value.strip(" \t"); scheme, rest = text.split(None, 1) (or "", text: no scheme) */
    Py_ssize_t a = 0, b = n;
    while (a < b && IS_SP(s[a])) {
        a++;
    }
    while (b > a && IS_SP(s[b - 1])) {
        b--;
    }
    Py_ssize_t w = a;
    while (w < b && !IS_SP(s[w])) {
        w++;
    }
    Py_ssize_t rest = w;
    while (rest < b && IS_SP(s[rest])) {
        rest++;
    }
    Py_ssize_t scheme_len = w - a;
    if (memchr(s + a, '=', (size_t)scheme_len) != NULL) {
        scheme_len = 0;
        rest = a;
    }
    PyObject *params = PyDict_New();
    if (params == NULL) {
        return NULL;
    }
    int tiled = tile_params(s + rest, b - rest, params);
    if (tiled <= 0) {
        Py_DECREF(params);
        if (tiled < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *scheme;
    if (scheme_len == 6 && PyOS_strnicmp((const char *)s + a, "digest", 6) == 0) {
        scheme = Py_NewRef(digest_word);
    }
    else {
        scheme = PyUnicode_New(scheme_len, 127);
        if (scheme != NULL) {
            for (Py_ssize_t i = 0; i < scheme_len; i++) {
                PyUnicode_1BYTE_DATA(scheme)[i] = lower(s[a + i]);
            }
        }
    }
    if (scheme == NULL) {
        Py_DECREF(params);
        return NULL;
    }
    PyObject *out = PyTuple_Pack(2, scheme, params);
    Py_DECREF(scheme);
    Py_DECREF(params);
    return out;
}

/* -- serialising ------------------------------------------------------------------------------ */

/* The ASCII bytes and length of an exact str, or NULL if it is anything else. */
static inline const char *
ascii_of(PyObject *s, Py_ssize_t *len)
{
    if (!PyUnicode_CheckExact(s) || PyUnicode_READY(s) < 0 || !PyUnicode_IS_ASCII(s)) {
        PyErr_Clear();
        return NULL;
    }
    *len = PyUnicode_GET_LENGTH(s);
    return (const char *)PyUnicode_1BYTE_DATA(s);
}

static const char CONTENT_LENGTH_KEY[] = "content-length";
static const char CONTENT_LENGTH_LINE[] = "Content-Length: ";

static PyObject *
serialize(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "serialize(start_line, items, body) takes 3 arguments");
        return NULL;
    }
    PyObject *start = args[0], *items = args[1], *body = args[2];
    if (!PyUnicode_Check(start) || !PyList_Check(items) || !PyBytes_Check(body)) {
        PyErr_SetString(PyExc_TypeError, "serialize(start_line: str, items: list, body: bytes)");
        return NULL;
    }
    Py_ssize_t start_len, body_len = PyBytes_GET_SIZE(body);
    const char *start_s = ascii_of(start, &start_len);
    if (start_s == NULL) {
        Py_RETURN_NONE;
    }
    char length[24];
    int length_len = snprintf(length, sizeof(length), "%zd", body_len);
    Py_ssize_t n = PyList_GET_SIZE(items);
    /* First the size (and every part checked), then the writing: nothing between the two runs
     * Python code, so the list and its strings are the same in both passes. */
    Py_ssize_t total = start_len + 2, part;
    int has_length = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3) {
            Py_RETURN_NONE;
        }
        Py_ssize_t key_len = 0, name_len = 0, value_len = 0;
        const char *key = ascii_of(PyTuple_GET_ITEM(item, 0), &key_len);
        const char *name = ascii_of(PyTuple_GET_ITEM(item, 1), &name_len);
        const char *value = ascii_of(PyTuple_GET_ITEM(item, 2), &value_len);
        if (key == NULL || name == NULL || value == NULL) {
            Py_RETURN_NONE;
        }
        if (key_len == sizeof(CONTENT_LENGTH_KEY) - 1 && memcmp(key, CONTENT_LENGTH_KEY, (size_t)key_len) == 0) {
            if (has_length) {
                continue;
            }
            has_length = 1;
            value_len = length_len;
        }
        part = name_len + 2 + value_len + 2;
        if (part < 0 || total > PY_SSIZE_T_MAX - part) {
            return PyErr_NoMemory();
        }
        total += part;
    }
    part = (has_length ? 0 : (Py_ssize_t)sizeof(CONTENT_LENGTH_LINE) - 1 + length_len + 2) + 2;
    if (total > PY_SSIZE_T_MAX - part - body_len) {
        return PyErr_NoMemory();
    }
    total += part + body_len;

    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) {
        return NULL;
    }
    char *w = PyBytes_AS_STRING(out);
#define PUT(p, len)                      \
    do {                                 \
        memcpy(w, (p), (size_t)(len));   \
        w += (len);                      \
    } while (0)
    PUT(start_s, start_len);
    PUT("\r\n", 2);
    has_length = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        Py_ssize_t key_len = 0, name_len = 0, value_len = 0;
        const char *key = ascii_of(PyTuple_GET_ITEM(item, 0), &key_len);
        const char *name = ascii_of(PyTuple_GET_ITEM(item, 1), &name_len);
        const char *value = ascii_of(PyTuple_GET_ITEM(item, 2), &value_len);
        if (key_len == sizeof(CONTENT_LENGTH_KEY) - 1 && memcmp(key, CONTENT_LENGTH_KEY, (size_t)key_len) == 0) {
            if (has_length) {
                continue;
            }
            has_length = 1;
            value = length;
            value_len = length_len;
        }
        PUT(name, name_len);
        PUT(": ", 2);
        PUT(value, value_len);
        PUT("\r\n", 2);
    }
    if (!has_length) {
        PUT(CONTENT_LENGTH_LINE, sizeof(CONTENT_LENGTH_LINE) - 1);
        PUT(length, length_len);
        PUT("\r\n", 2);
    }
    PUT("\r\n", 2);
    PUT(PyBytes_AS_STRING(body), body_len);
#undef PUT
    if (w != PyBytes_AS_STRING(out) + total) { /* cannot happen: the two passes count alike */
        Py_DECREF(out);
        PyErr_SetString(PyExc_SystemError, "serialize: size mismatch");
        return NULL;
    }
    return out;
}

/* cseq(value) -> (number, method) or None: message._parse_cseq's answer for a value of two words
 * (split as words() splits), the first of 1 to 10 digits below 2**31; None for anything else,
 * which the Python reads (and most often refuses). */
static PyObject *
cseq(PyObject *module, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "cseq() wants a str, not %.80s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    if (READY(arg) < 0) {
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(arg)) {
        Py_RETURN_NONE;
    }
    const unsigned char *s = PyUnicode_1BYTE_DATA(arg);
    Py_ssize_t at[2], len[2];
    if (words(s, PyUnicode_GET_LENGTH(arg), 2, at, len) != 2) {
        Py_RETURN_NONE;
    }
    long long number = digits_value(s + at[0], len[0]);
    if (number < 0 || number >= 2147483648LL) {
        Py_RETURN_NONE;
    }
    PyObject *method = method_of(s + at[1], len[1]);
    if (method == NULL) {
        return NULL;
    }
    PyObject *n = PyLong_FromLongLong(number), *out = n != NULL ? PyTuple_Pack(2, n, method) : NULL;
    Py_XDECREF(n);
    Py_DECREF(method);
    return out;
}

/* -- a Keepalive's device ------------------------------------------------------------------- */

/* keepalive_id(body) -> str or None: the device ID of a MANSCDP Keepalive as answers.py reads it
 * on its plain path: "<CmdType>Keepalive<" within the body's first 400 bytes, and the first
 * "<DeviceID>" followed by twenty ASCII digits and "<", with no "deviceid" in any case before it.
 * None for any other body: the Python reads it (the regular expressions, the From header). */
static PyObject *
keepalive_id(PyObject *module, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "keepalive_id() wants bytes, not %.80s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    static const char CMD[] = "<CmdType>Keepalive<", TAG[] = "<DeviceID>", WORD[] = "deviceid";
    const unsigned char *body = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg);
    if (n < 0 || memmem(body, (size_t)(n < 400 ? n : 400), CMD, sizeof(CMD) - 1) == NULL) {
        Py_RETURN_NONE;
    }
    const unsigned char *tag = memmem(body, (size_t)n, TAG, sizeof(TAG) - 1);
    if (tag == NULL) {
        Py_RETURN_NONE;
    }
    Py_ssize_t i = tag - body;
    if (i + 31 > n || body[i + 30] != '<') {
        Py_RETURN_NONE;
    }
    for (Py_ssize_t k = i + 10; k < i + 30; k++) {
        if (body[k] < '0' || body[k] > '9') {
            Py_RETURN_NONE;
        }
    }
    for (Py_ssize_t k = 0; k + 8 <= i; k++) { /* body[:i].lower().find(b"deviceid") < 0 */
        if (lower(body[k]) == 'd') {
            Py_ssize_t m = 1;
            while (m < 8 && lower(body[k + m]) == (unsigned char)WORD[m]) {
                m++;
            }
            if (m == 8) {
                Py_RETURN_NONE;
            }
        }
    }
    return ascii_str(body + i + 10, 20);
}

/* -- a response to a request ------------------------------------------------------------------ */

/* Whether a request's header of this key is repeated in its response (message._response_items
 * with no To tag to add): 1 or 0, -1 for a key that is not an exact str (the Python decides). */
static int
copied(PyObject *key, int routes)
{
    if (!PyUnicode_CheckExact(key)) {
        return -1;
    }
    if (!PyUnicode_IS_ASCII(key)) {
        return 0; /* equal to none of these */
    }
    const char *k = (const char *)PyUnicode_1BYTE_DATA(key);
    switch (PyUnicode_GET_LENGTH(key)) {
    case 2:
        return memcmp(k, "to", 2) == 0;
    case 3:
        return memcmp(k, "via", 3) == 0;
    case 4:
        return memcmp(k, "from", 4) == 0 || memcmp(k, "cseq", 4) == 0;
    case 7:
        return memcmp(k, "call-id", 7) == 0;
    case 12:
        return routes && memcmp(k, "record-route", 12) == 0;
    default:
        return 0;
    }
}

#define RESPONSE_LINES 64

typedef struct {
    const char *name, *value;
    Py_ssize_t name_len, value_len;
} Line;

/* HeadScanner.response(start_line, request_items, extra, routes) -> bytes or None: what
 * message._response_bytes_py writes with no To tag to add: the start line; the request's Via,
 * From, To, Call-ID and CSeq lines (and Record-Route when `routes`), in its order; each (name,
 * value) of `extra` under _EXACT's spelling of its name; "Content-Length: 0". None (the Python
 * writes it, or raises) for a part that is not ASCII, an extra whose name is not one of `exact`'s
 * spellings or is Content-Length, a CR or LF in an extra's value, more than 64 lines. */
static PyObject *
scanner_response(Scanner *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyUnicode_Check(args[0]) || !PyList_Check(args[1]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "response(start_line: str, request_items: list, extra: list, routes)");
        return NULL;
    }
    int routes = PyObject_IsTrue(args[3]); /* before the lists are read: it may run Python code */
    if (routes < 0) {
        return NULL;
    }
    if (self->names == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "response() of a cleared HeadScanner");
        return NULL;
    }
    PyObject *items = args[1], *extra = args[2];
    Line lines[RESPONSE_LINES];
    int count = 0;
    Py_ssize_t start_len, total;
    const char *start = ascii_of(args[0], &start_len);
    if (start == NULL) {
        Py_RETURN_NONE;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3) {
            Py_RETURN_NONE;
        }
        int copy = copied(PyTuple_GET_ITEM(item, 0), routes);
        if (copy <= 0) {
            if (copy < 0) {
                Py_RETURN_NONE;
            }
            continue;
        }
        Line *line = &lines[count];
        if (count == RESPONSE_LINES || (line->name = ascii_of(PyTuple_GET_ITEM(item, 1), &line->name_len)) == NULL
            || (line->value = ascii_of(PyTuple_GET_ITEM(item, 2), &line->value_len)) == NULL) {
            Py_RETURN_NONE;
        }
        count++;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(extra); i++) {
        PyObject *pair = PyList_GET_ITEM(extra, i);
        Py_ssize_t name_len;
        const char *name;
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2
            || (name = ascii_of(PyTuple_GET_ITEM(pair, 0), &name_len)) == NULL) {
            Py_RETURN_NONE;
        }
        const Slot *slot = lookup(self, (const unsigned char *)name, name_len);
        Line *line = &lines[count];
        if (slot == NULL || count == RESPONSE_LINES || PyUnicode_CompareWithASCIIString(slot->key, CONTENT_LENGTH_KEY) == 0
            || (line->name = ascii_of(slot->display, &line->name_len)) == NULL
            || (line->value = ascii_of(PyTuple_GET_ITEM(pair, 1), &line->value_len)) == NULL
            || memchr(line->value, '\r', (size_t)line->value_len) != NULL
            || memchr(line->value, '\n', (size_t)line->value_len) != NULL) {
            Py_RETURN_NONE;
        }
        count++;
    }
    total = start_len + 2 + (Py_ssize_t)sizeof(CONTENT_LENGTH_LINE) - 1 + 1 + 2 + 2;
    for (int i = 0; i < count; i++) {
        Py_ssize_t part = lines[i].name_len + 2 + lines[i].value_len + 2;
        if (part < 0 || total > PY_SSIZE_T_MAX - part) {
            return PyErr_NoMemory();
        }
        total += part;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) {
        return NULL;
    }
    char *w = PyBytes_AS_STRING(out);
#define PUT(p, len)                      \
    do {                                 \
        memcpy(w, (p), (size_t)(len));   \
        w += (len);                      \
    } while (0)
    PUT(start, start_len);
    PUT("\r\n", 2);
    for (int i = 0; i < count; i++) {
        PUT(lines[i].name, lines[i].name_len);
        PUT(": ", 2);
        PUT(lines[i].value, lines[i].value_len);
        PUT("\r\n", 2);
    }
    PUT(CONTENT_LENGTH_LINE, sizeof(CONTENT_LENGTH_LINE) - 1);
    PUT("0\r\n\r\n", 5);
#undef PUT
    return out;
}

/* -- the top Via ---------------------------------------------------------------------------- */

/* The decimal digits of v into out (room for 21): their count. */
static int
decimal(long long v, char *out)
{
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    int len = 0;
    if (v < 0) {
        out[len++] = '-';
    }
    while (n > 0) {
        out[len++] = tmp[--n];
    }
    return len;
}

/* A Via longer than this is lower-cased on the heap (a device's is about 80 bytes). */
#define VIA_STACK 512

static const char RECEIVED[] = ";received=";

/* stamp_via(value, host, port) -> uri._stamp_via_fast_py's answer for ASCII value and host: the
 * Via with "=port" after its bare ";rport" and ";received=host" at its end, or None where that
 * takes the full path (a comma, a quote, a "received", no bare rport); False (the Python
 * decides) for a value or host that is not ASCII, or a port beyond a long long. */
static PyObject *
stamp_via(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1]) || !PyLong_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "stamp_via(value: str, host: str, port: int)");
        return NULL;
    }
    PyObject *value = args[0], *host = args[1];
    if (READY(value) < 0 || READY(host) < 0) {
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(value) || !PyUnicode_IS_ASCII(host)) {
        Py_RETURN_FALSE;
    }
    int overflow;
    long long port = PyLong_AsLongLongAndOverflow(args[2], &overflow);
    if (overflow != 0) {
        Py_RETURN_FALSE;
    }
    const unsigned char *s = PyUnicode_1BYTE_DATA(value);
    Py_ssize_t n = PyUnicode_GET_LENGTH(value);
    if (n < 0) { /* cannot be: says so to the compiler's size checks */
        Py_RETURN_FALSE;
    }
    if (memchr(s, ',', (size_t)n) != NULL || memchr(s, '"', (size_t)n) != NULL) {
        Py_RETURN_NONE;
    }
    /* value.lower(), searched for "received" and ";rport" */
    unsigned char stack[VIA_STACK], *low = n <= VIA_STACK ? stack : PyMem_Malloc((size_t)n);
    if (low == NULL) {
        return PyErr_NoMemory();
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        low[k] = lower(s[k]);
    }
    const unsigned char *received = memmem(low, (size_t)n, "received", 8);
    const unsigned char *rport = received == NULL ? memmem(low, (size_t)n, ";rport", 6) : NULL;
    Py_ssize_t end = rport == NULL ? -1 : rport - low + 6;
    if (low != stack) {
        PyMem_Free(low);
    }
    if (end < 0) {
        Py_RETURN_NONE;
    }
    if (end < n && s[end] != ';' && s[end] != ',' && s[end] != ' ' && s[end] != '\t') {
        Py_RETURN_NONE; /* ;rport=1234 or ;rportx */
    }
    char digits[24];
    int port_len = decimal(port, digits);
    Py_ssize_t host_len = PyUnicode_GET_LENGTH(host), received_len = (Py_ssize_t)sizeof(RECEIVED) - 1;
    if (host_len > PY_SSIZE_T_MAX - n - port_len - 1 - received_len) {
        return PyErr_NoMemory();
    }
    PyObject *out = PyUnicode_New(n + 1 + port_len + received_len + host_len, 127);
    if (out == NULL) {
        return NULL;
    }
    Py_UCS1 *w = PyUnicode_1BYTE_DATA(out);
    memcpy(w, s, (size_t)end);
    w += end;
    *w++ = '=';
    memcpy(w, digits, (size_t)port_len);
    w += port_len;
    memcpy(w, s + end, (size_t)(n - end));
    w += n - end;
    memcpy(w, RECEIVED, (size_t)received_len);
    memcpy(w + received_len, PyUnicode_1BYTE_DATA(host), (size_t)host_len);
    return out;
}

/* -- the module ------------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"serialize", (PyCFunction)(void (*)(void))serialize, METH_FASTCALL,
     "serialize(start_line, items, body) -> the message's bytes as message._serialize_py writes them, or None."},
    {"parse_auth_params", parse_auth_params, METH_O,
     "parse_auth_params(value) -> (scheme, params) as digest._parse_auth_params gives them, or None."},
    {"keepalive_id", keepalive_id, METH_O, "keepalive_id(body) -> a plain Keepalive's device ID (answers.py), or None."},
    {"cseq", cseq, METH_O, "cseq(value) -> message._parse_cseq's (number, method) for a well-formed value, or None."},
    {"stamp_via", (PyCFunction)(void (*)(void))stamp_via, METH_FASTCALL,
     "stamp_via(value, host, port) -> uri._stamp_via_fast_py's stamped Via, None, or False (not ASCII)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_sipscan",
    "The SIP header block and digest parameter scans, the Via stamp and the writer in C (see sip/message.py, sip/digest.py, sip/uri.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__sipscan(void)
{
    if (PyType_Ready(&ScannerType) < 0) {
        return NULL;
    }
    if (digest_word == NULL) {
        digest_word = PyUnicode_InternFromString("digest");
        if (digest_word == NULL) {
            return NULL;
        }
        for (size_t k = 0; k < N_KNOWN; k++) {
            known[k] = PyUnicode_InternFromString(KNOWN[k]);
            if (known[k] == NULL) {
                return NULL;
            }
        }
        for (size_t m = 0; m < N_METHODS; m++) {
            methods_str[m] = PyUnicode_InternFromString(METHODS[m]);
            if (methods_str[m] == NULL) {
                return NULL;
            }
        }
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "HeadScanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
