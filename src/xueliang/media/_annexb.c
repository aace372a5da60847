/* Where the Annex B start codes (00 00 01) of a video frame are: the scan every muxer makes of
 * every frame of every watched stream (media/_bitstream.py's split_annexb).
 *
 * start_codes(data) -> list of int: the offset of each 00 00 01 in data, in order; the same list
 * as [m.start() for m in re.finditer(b"\x00\x00\x01", data)] (two matches cannot overlap).
 *
 * memchr finds each 0x01 (vectorised by the C library; in compressed video about one byte in 256),
 * and only those are checked for the two zeros before. Built by scripts/build_native.py and loaded
 * only when its source is unchanged since the build (src/xueliang/_native.py); _bitstream.py keeps
 * the re scan for when it is not.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

static PyObject *
start_codes(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    Py_ssize_t i = 2; /* the earliest place a start code's 0x01 can be */
    while (i < n) {
        const unsigned char *one = memchr(data + i, 0x01, (size_t)(n - i));
        if (one == NULL) {
            break;
        }
        Py_ssize_t k = one - data;
        if (data[k - 1] == 0 && data[k - 2] == 0) {
            PyObject *pos = PyLong_FromSsize_t(k - 2);
            if (pos == NULL || PyList_Append(out, pos) < 0) {
                Py_XDECREF(pos);
                Py_DECREF(out);
                PyBuffer_Release(&view);
                return NULL;
            }
            Py_DECREF(pos);
        }
        i = k + 1;
    }
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"start_codes", start_codes, METH_O, "start_codes(data) -> offsets of every 00 00 01 in data, in order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_annexb", "Annex B start codes found with memchr (see media/_bitstream.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__annexb(void)
{
    return PyModule_Create(&module_def);
}
