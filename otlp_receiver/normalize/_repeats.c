/* The key of a record for the normaliser's cache of repeats, in C: repeats.py documents the key; this is
 * its one implementation. In Python the walk cost about 8 us of the 14 us a repeated record took to
 * normalise.
 *
 * Every read is checked against the end of the record: bytes that are not a whole OTLP record give no key
 * (None), as does anything the walk does not expect (a group, an id twice, an id that is not an int).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "otlpwire.h"

#define TAG_ATTRIBUTE 0x32 /* LogRecord field 6 (attributes), length-delimited */
#define TAG_TIME 0x09      /* LogRecord field 1 (time_unix_nano), fixed64 */
#define TAG_OBSERVED 0x59  /* LogRecord field 11 (observed_time_unix_nano), fixed64 */
#define TAG_INT_VALUE 0x18 /* AnyValue field 3 (int_value), varint */

/* A KeyValue's key field, then its value field's tag: how each id attribute starts. */
static const char PID[] = "\n\x0bprocess.pid\x12";
static const char PARENT_PID[] = "\n\x12process.parent_pid\x12";
#define PID_LENGTH ((Py_ssize_t)sizeof(PID) - 1)
#define PARENT_PID_LENGTH ((Py_ssize_t)sizeof(PARENT_PID) - 1)
/* Field number 0 never occurs: no record has these bytes. */
static const char *const MARKS[2] = {"\x00\x01", "\x00\x02"};

/* The int of an AnyValue that holds only an int_value, its length byte at `at`, ending at `following`. */
static int int_value(const uint8_t *data, Py_ssize_t at, Py_ssize_t following, int64_t *value) {
    if (at + 1 >= following || data[at] >= 0x80 || at + 1 + data[at] != following || data[at + 1] != TAG_INT_VALUE)
        return -1;
    Py_ssize_t position = at + 2;
    uint64_t number;
    if (read_varint(data, &position, following, &number) < 0 || position != following)
        return -1;
    *value = (int64_t)number; /* int64 two's complement */
    return 0;
}

/* Which id attribute the KeyValue at `start` begins as (0 pid, 1 parent pid), or -1 for neither. One that
 * begins as an id but does not hold an int within its own bytes gives the record no key (int_value). */
static int id_attribute(const uint8_t *data, Py_ssize_t start, Py_ssize_t end) {
    if (end - start >= PID_LENGTH && memcmp(data + start, PID, PID_LENGTH) == 0)
        return 0;
    if (end - start >= PARENT_PID_LENGTH && memcmp(data + start, PARENT_PID, PARENT_PID_LENGTH) == 0)
        return 1;
    return -1;
}

/* Bytes of the key, built from runs of the record and the id marks. */
typedef struct {
    char *bytes;
    Py_ssize_t length;
} Key;

static void append(Key *key, const void *bytes, Py_ssize_t length) {
    memcpy(key->bytes + key->length, bytes, (size_t)length);
    key->length += length;
}

/* 1 with the key built, 0 when the record gives no key. `key` has room for the whole record. */
static int walk(const uint8_t *data, Py_ssize_t end, Key *key, int64_t ids[2], int found[2]) {
    Py_ssize_t position = 0, kept_from = 0; /* bytes from kept_from to position go into the key as they are */
    while (position < end) {
        uint8_t tag = data[position];
        if (tag == TAG_ATTRIBUTE) {
            Py_ssize_t start = position + 1;
            uint64_t length;
            if (read_varint(data, &start, end, &length) < 0 || length > (uint64_t)(end - start) || start + 1 >= end)
                return 0; /* cut short, or no byte after the entry's first: normalised in full */
            Py_ssize_t following = start + (Py_ssize_t)length;
            int which = id_attribute(data, start, end);
            if (which >= 0) {
                Py_ssize_t value_at = start + (which == 0 ? PID_LENGTH : PARENT_PID_LENGTH);
                if (found[which] || int_value(data, value_at, following, &ids[which]) < 0)
                    return 0; /* the id twice, or not an int: normalised in full */
                found[which] = 1;
                append(key, data + kept_from, position - kept_from);
                append(key, MARKS[which], 2);
                kept_from = following;
            }
            position = following;
        } else if (tag == TAG_TIME || tag == TAG_OBSERVED) {
            if (end - position < 9)
                return 0;
            append(key, data + kept_from, position - kept_from);
            position = kept_from = position + 9;
        } else { /* any other field, an unknown one included: kept as it is */
            position = skip_field(data, position, end);
            if (position < 0)
                return 0;
        }
    }
    append(key, data + kept_from, end - kept_from);
    return 1;
}

PyDoc_STRVAR(record_key_doc,
"record_key(data)\n"
"--\n\n"
"(key, process.pid, process.parent_pid) of a LogRecord's serialised bytes (the ids None where absent),\n"
"or None when the record is not of the shape keyed (otlp_receiver/normalize/repeats.py).");

static PyObject *record_key(PyObject *module, PyObject *data_object) {
    if (!PyBytes_Check(data_object)) {
        PyErr_SetString(PyExc_TypeError, "record_key takes bytes");
        return NULL;
    }
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(data_object);
    Py_ssize_t end = PyBytes_GET_SIZE(data_object);
    /* Each id replaced by a 2-byte mark is at least 3 bytes shorter; times are dropped: the key fits. */
    Key key = {PyMem_Malloc((size_t)end + 1), 0};
    if (key.bytes == NULL)
        return PyErr_NoMemory();
    int64_t ids[2] = {0, 0};
    int found[2] = {0, 0};
    PyObject *result;
    if (!walk(data, end, &key, ids, found)) {
        result = Py_NewRef(Py_None);
    } else {
        PyObject *pid = found[0] ? PyLong_FromLongLong(ids[0]) : Py_NewRef(Py_None);
        PyObject *parent_pid = found[1] ? PyLong_FromLongLong(ids[1]) : Py_NewRef(Py_None);
        result = pid != NULL && parent_pid != NULL
                     ? Py_BuildValue("(y#NN)", key.bytes, key.length, pid, parent_pid) : NULL;
        if (result == NULL) {
            Py_XDECREF(pid);
            Py_XDECREF(parent_pid);
        }
    }
    PyMem_Free(key.bytes);
    return result;
}

static PyMethodDef methods[] = {
    {"record_key", record_key, METH_O, record_key_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_repeats", "The normaliser's record key (see _repeats.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__repeats(void) {
    return PyModule_Create(&module);
}
