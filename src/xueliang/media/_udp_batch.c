/* Read a UDP socket a batch of datagrams at a time with recvmmsg (Linux), for the shared RTP port
 * and the SIP port; and write a batch with sendmmsg, for the SIP port's answers.
 *
 * Python has no recvmmsg, and reading one datagram per socket.recvfrom call costs, per packet, a
 * method call, a 64 KiB allocation shrunk to the datagram's size, and the sender's address
 * formatted by sprintf. Here one system call takes up to MAX_BATCH datagrams, each becomes a
 * bytes object of its own size, and the sender's (host, port) tuple is taken from a small cache
 * keyed by the raw address (a camera sends thousands of packets from one address).
 *
 * recv_batch(fd, count) -> list of (data, address), address as socket.recvfrom gives it
 * ((host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6; ("", 0) if it cannot be
 * told). [] when nothing is queued
 * (or on EINTR); OSError for any other error with nothing read. Non-blocking whatever the socket's
 * mode (MSG_DONTWAIT). The GIL stays held: the call never blocks, and the buffers are static.
 *
 * send_batch(fd, family, items, start) -> (next, status, errno): sends items[start:], each a
 * (data, (host, port, ...)) with host a numeric address of the socket's family, in sendmmsg calls
 * of up to MAX_BATCH. It stops at the first item it cannot send: status 0 all sent (next ==
 * len(items)); 1 the socket's buffer is full at items[next] (EAGAIN: the caller queues the rest);
 * 2 items[next]'s address is not a numeric one of the family (the caller sends that one itself,
 * as socket.sendto would resolve it, then goes on from next + 1); 3 items[next] failed with errno
 * (as a datagram lost: the caller goes on from next + 1). One wake-up of a reader per batch
 * instead of one per datagram on loopback, and one system call.
 *
 * Pure Python does the same (media/udp_batch.py); this module is built by scripts/build_native.py
 * and loaded only when its source is unchanged since the build (src/xueliang/_native.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_BATCH 64
/* Larger than any UDP payload (65,507 bytes over IPv4): nothing is ever truncated. */
#define SLOT_SIZE 65536
#define CACHE_SLOTS 1024 /* a power of two */

static char buffers[MAX_BATCH][SLOT_SIZE];
static struct mmsghdr messages[MAX_BATCH];
static struct iovec vectors[MAX_BATCH];
static struct sockaddr_storage names[MAX_BATCH];

typedef struct {
    socklen_t len;
    struct sockaddr_storage name;
    PyObject *address; /* strong reference; NULL when the slot is empty */
} cache_slot;

static cache_slot cache[CACHE_SLOTS];

static unsigned int
hash_name(const struct sockaddr_storage *name, socklen_t len)
{
    /* FNV-1a over the raw address: the kernel zeroes the padding, so equal addresses hash alike. */
    const unsigned char *p = (const unsigned char *)name;
    unsigned int h = 2166136261u;
    for (socklen_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h & (CACHE_SLOTS - 1);
}

static PyObject *
make_address(const struct sockaddr_storage *name, socklen_t len)
{
    char host[NI_MAXHOST];
    if (name->ss_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)name;
        if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) != NULL) {
            return Py_BuildValue("(si)", host, (int)ntohs(in->sin_port));
        }
    }
    if (name->ss_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)name;
        /* As the socket module formats it: numeric, with %scope for a link-local address. */
        if (getnameinfo((const struct sockaddr *)name, len, host, sizeof(host), NULL, 0, NI_NUMERICHOST) == 0) {
            return Py_BuildValue("(siII)", host, (int)ntohs(in6->sin6_port),
                                 (unsigned int)ntohl(in6->sin6_flowinfo), (unsigned int)in6->sin6_scope_id);
        }
    }
    /* Not seen on an AF_INET or AF_INET6 datagram socket; rather than drop the datagrams already
     * read, an address that cannot be told is ("", 0). */
    return Py_BuildValue("(si)", "", 0);
}

/* A new reference to the sender's address tuple, from the cache when the same address was seen. */
static PyObject *
address_of(const struct sockaddr_storage *name, socklen_t len)
{
    if (len > (socklen_t)sizeof(struct sockaddr_storage)) {
        len = sizeof(struct sockaddr_storage);
    }
    cache_slot *slot = &cache[hash_name(name, len)];
    if (slot->address != NULL && slot->len == len && memcmp(&slot->name, name, len) == 0) {
        Py_INCREF(slot->address);
        return slot->address;
    }
    PyObject *address = make_address(name, len);
    if (address == NULL) {
        return NULL;
    }
    Py_INCREF(address);
    Py_XSETREF(slot->address, address);
    slot->len = len;
    memcpy(&slot->name, name, len);
    return address;
}

/* A file descriptor argument of ``function``: its value, or -1 with an exception set. */
static int
fd_of(PyObject *arg, const char *function)
{
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (fd < 0 || fd > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: not a file descriptor", function);
        return -1;
    }
    return (int)fd;
}

static PyObject *
recv_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "recv_batch(fd, count) takes 2 arguments");
        return NULL;
    }
    int fd = fd_of(args[0], "recv_batch");
    if (fd < 0) {
        return NULL;
    }
    long count = PyLong_AsLong(args[1]);
    if (count == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (count < 1 || count > MAX_BATCH) {
        PyErr_Format(PyExc_ValueError, "recv_batch: count must be 1..%d", MAX_BATCH);
        return NULL;
    }
    for (long i = 0; i < count; i++) {
        vectors[i].iov_base = buffers[i];
        vectors[i].iov_len = SLOT_SIZE;
        memset(&messages[i].msg_hdr, 0, sizeof(struct msghdr));
        messages[i].msg_hdr.msg_name = &names[i];
        messages[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_len = 0;
    }
    int got = recvmmsg(fd, messages, (unsigned int)count, MSG_DONTWAIT, NULL);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return PyList_New(0);
        }
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *out = PyList_New(got);
    if (out == NULL) {
        return NULL;
    }
    for (int i = 0; i < got; i++) {
        PyObject *data = PyBytes_FromStringAndSize(buffers[i], (Py_ssize_t)messages[i].msg_len);
        if (data == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *address = address_of(&names[i], messages[i].msg_hdr.msg_namelen);
        if (address == NULL) {
            Py_DECREF(data);
            Py_DECREF(out);
            return NULL;
        }
        PyObject *item = PyTuple_New(2);
        if (item == NULL) {
            Py_DECREF(data);
            Py_DECREF(address);
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(item, 0, data);
        PyTuple_SET_ITEM(item, 1, address);
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

static struct mmsghdr out_messages[MAX_BATCH];
static struct iovec out_vectors[MAX_BATCH];
static struct sockaddr_storage out_names[MAX_BATCH];

/* The destination of an item as a sockaddr of ``family``; 0 when its host is not a numeric address
 * of that family (or the item is not a (bytes, (str, int, ...)) pair), -1 with an exception set. */
static int
fill_item(PyObject *item, int family, struct iovec *vec, struct sockaddr_storage *name, socklen_t *len)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        return 0;
    }
    PyObject *data = PyTuple_GET_ITEM(item, 0);
    PyObject *address = PyTuple_GET_ITEM(item, 1);
    if (!PyBytes_Check(data) || !PyTuple_Check(address) || PyTuple_GET_SIZE(address) < 2) {
        return 0;
    }
    PyObject *host = PyTuple_GET_ITEM(address, 0);
    PyObject *port_obj = PyTuple_GET_ITEM(address, 1);
    if (!PyUnicode_Check(host) || !PyLong_Check(port_obj)) {
        return 0;
    }
    long port = PyLong_AsLong(port_obj);
    if (port == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (port < 0 || port > 65535) {
        return 0;
    }
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(host, &size);
    if (text == NULL) {
        PyErr_Clear();
        return 0;
    }
    if ((Py_ssize_t)strlen(text) != size) {
        return 0; /* an embedded NUL: not an address */
    }
    memset(name, 0, sizeof(*name));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)name;
        if (inet_pton(AF_INET, text, &in->sin_addr) != 1) {
            return 0;
        }
        in->sin_family = AF_INET;
        in->sin_port = htons((unsigned short)port);
        *len = sizeof(struct sockaddr_in);
    } else if (family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)name;
        if (PyTuple_GET_SIZE(address) != 2 || inet_pton(AF_INET6, text, &in6->sin6_addr) != 1) {
            return 0; /* flow info and scope: left to socket.sendto */
        }
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)port);
        *len = sizeof(struct sockaddr_in6);
    } else {
        return 0;
    }
    vec->iov_base = PyBytes_AS_STRING(data);
    vec->iov_len = (size_t)PyBytes_GET_SIZE(data);
    return 1;
}

static PyObject *
send_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "send_batch(fd, family, items, start) takes 4 arguments");
        return NULL;
    }
    int fd = fd_of(args[0], "send_batch");
    if (fd < 0) {
        return NULL;
    }
    long family = PyLong_AsLong(args[1]);
    if (family == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *items = args[2];
    if (!PyList_Check(items)) {
        PyErr_SetString(PyExc_TypeError, "send_batch: items must be a list");
        return NULL;
    }
    Py_ssize_t next = PyLong_AsSsize_t(args[3]);
    if (next == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (next < 0) {
        PyErr_SetString(PyExc_ValueError, "send_batch: start must not be negative");
        return NULL;
    }
    /* The GIL is held throughout: nothing can change the list or free its bytes under us. */
    while (next < PyList_GET_SIZE(items)) {
        Py_ssize_t total = PyList_GET_SIZE(items);
        unsigned int n = 0;
        int unfit = 0;
        while (n < MAX_BATCH && next + (Py_ssize_t)n < total) {
            socklen_t len = 0;
            int ok = fill_item(PyList_GET_ITEM(items, next + (Py_ssize_t)n), (int)family, &out_vectors[n],
                               &out_names[n], &len);
            if (ok < 0) {
                return NULL;
            }
            if (ok == 0) {
                unfit = 1;
                break;
            }
            memset(&out_messages[n].msg_hdr, 0, sizeof(struct msghdr));
            out_messages[n].msg_hdr.msg_name = &out_names[n];
            out_messages[n].msg_hdr.msg_namelen = len;
            out_messages[n].msg_hdr.msg_iov = &out_vectors[n];
            out_messages[n].msg_hdr.msg_iovlen = 1;
            out_messages[n].msg_len = 0;
            n++;
        }
        if (n == 0 && unfit) {
            return Py_BuildValue("(nii)", next, 2, 0);
        }
        unsigned int done = 0;
        while (done < n) {
            int sent = sendmmsg(fd, out_messages + done, n - done, MSG_DONTWAIT);
            if (sent < 0) {
                if (errno == EINTR) {
                    continue;
                }
                int err = errno;
                next += (Py_ssize_t)done;
                if (err == EAGAIN || err == EWOULDBLOCK) {
                    return Py_BuildValue("(nii)", next, 1, 0);
                }
                return Py_BuildValue("(nii)", next, 3, err);
            }
            /* Fewer than asked: the next one failed; the call again tells why (or sends it). */
            done += (unsigned int)sent;
        }
        next += (Py_ssize_t)n;
    }
    return Py_BuildValue("(nii)", next, 0, 0);
}

static PyMethodDef methods[] = {
    {"recv_batch", (PyCFunction)(void (*)(void))recv_batch, METH_FASTCALL,
     "recv_batch(fd, count) -> list of (data, address): up to count datagrams in one recvmmsg."},
    {"send_batch", (PyCFunction)(void (*)(void))send_batch, METH_FASTCALL,
     "send_batch(fd, family, items, start) -> (next, status, errno): items[start:] in sendmmsg calls."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_udp_batch", "recvmmsg and sendmmsg for the RTP and SIP ports (see media/udp_batch.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__udp_batch(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module != NULL && PyModule_AddIntConstant(module, "MAX_BATCH", MAX_BATCH) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
