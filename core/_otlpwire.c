/* core/otlpwire.py's readers that must be fast on hostile input, in C (built by setup.py).
 *
 * count_log_records: how many log records an ExportLogsServiceRequest's bytes hold, read without parsing
 * them. Parsing builds an object per record (about 140 bytes for an empty one), so a 20 MiB body of empty
 * records, which gzip sends as 20 KiB, would take 1.4 GB and seconds before anyone could count them.
 *
 * count_messages: how many messages of any kind the request holds (resource and scope lists, records, their
 * attributes and the values nested in those), for the same reason: ten million empty attributes or empty
 * ResourceLogs cost as much to parse as records do, and hold none.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "otlpwire.h"

/* Length-delimited fields numbered `wanted` in data[start:end], each passed to `each` (or counted when `each` is
 * NULL); -1 for bytes that are not a message. */
static Py_ssize_t each_field(const uint8_t *data, Py_ssize_t start, Py_ssize_t end, uint64_t wanted,
                             Py_ssize_t (*each)(const uint8_t *, Py_ssize_t, Py_ssize_t)) {
    Py_ssize_t position = start, found = 0;
    while (position < end) {
        Field field;
        if (read_field(data, &position, end, &field) < 0)
            return -1;
        if (field.wire != 2 || field.number != wanted)
            continue;
        Py_ssize_t inner = each != NULL ? each(data, field.start, field.start + field.length) : 1;
        if (inner < 0)
            return -1;
        found += inner;
    }
    return found;
}

static Py_ssize_t scope_records(const uint8_t *data, Py_ssize_t start, Py_ssize_t end) {
    return each_field(data, start, end, 2, NULL); /* ScopeLogs.log_records */
}

static Py_ssize_t resource_records(const uint8_t *data, Py_ssize_t start, Py_ssize_t end) {
    return each_field(data, start, end, 2, scope_records); /* ResourceLogs.scope_logs */
}

/* The messages of an ExportLogsServiceRequest that hold other messages, and which of their fields do. */
enum kind { REQUEST, RESOURCE_LOGS, RESOURCE, SCOPE_LOGS, SCOPE, LOG_RECORD, KEY_VALUE, ANY_VALUE, ARRAY, KVLIST,
            LEAF };

static enum kind field_kind(enum kind parent, uint64_t number) {
    switch (parent) {
    case REQUEST: return number == 1 ? RESOURCE_LOGS : LEAF;
    case RESOURCE_LOGS: return number == 1 ? RESOURCE : number == 2 ? SCOPE_LOGS : LEAF;
    case RESOURCE: return number == 1 ? KEY_VALUE : LEAF;
    case SCOPE_LOGS: return number == 1 ? SCOPE : number == 2 ? LOG_RECORD : LEAF;
    case SCOPE: return number == 3 ? KEY_VALUE : LEAF;
    case LOG_RECORD: return number == 5 ? ANY_VALUE : number == 6 ? KEY_VALUE : LEAF;
    case KEY_VALUE: return number == 2 ? ANY_VALUE : LEAF;
    case ANY_VALUE: return number == 5 ? ARRAY : number == 6 ? KVLIST : LEAF;
    case ARRAY: return number == 1 ? ANY_VALUE : LEAF;
    case KVLIST: return number == 1 ? KEY_VALUE : LEAF;
    default: return LEAF;
    }
}

/* The messages inside data[start:end], a message of `kind`, counted down to `depth` levels (below that the parser
 * refuses the request anyway); -1 for bytes that are not a message. */
static Py_ssize_t messages_in(const uint8_t *data, Py_ssize_t start, Py_ssize_t end, enum kind kind, int depth) {
    Py_ssize_t position = start, found = 0;
    while (position < end) {
        Field field;
        if (read_field(data, &position, end, &field) < 0)
            return -1;
        if (field.wire != 2)
            continue;
        enum kind inner = field_kind(kind, field.number);
        if (inner == LEAF)
            continue;
        found += 1;
        if (depth > 0) {
            Py_ssize_t nested = messages_in(data, field.start, field.start + field.length, inner, depth - 1);
            if (nested < 0)
                return -1;
            found += nested;
        }
    }
    return found;
}

PyDoc_STRVAR(count_messages_doc,
"count_messages(data)\n"
"--\n\n"
"How many messages (lists, records, attributes, nested values) the serialized ExportLogsServiceRequest `data`\n"
"holds, or None when it is not one.");

static PyObject *count_messages(PyObject *module, PyObject *data) {
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "count_messages takes bytes");
        return NULL;
    }
    Py_ssize_t found = messages_in((const uint8_t *)PyBytes_AS_STRING(data), 0, PyBytes_GET_SIZE(data), REQUEST,
                                   100); /* the parser's own recursion limit */
    return found < 0 ? Py_NewRef(Py_None) : PyLong_FromSsize_t(found);
}

PyDoc_STRVAR(count_log_records_doc,
"count_log_records(data)\n"
"--\n\n"
"How many log records the serialized ExportLogsServiceRequest `data` holds, or None when it is not one.");

static PyObject *count_log_records(PyObject *module, PyObject *data) {
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "count_log_records takes bytes");
        return NULL;
    }
    Py_ssize_t found = each_field((const uint8_t *)PyBytes_AS_STRING(data), 0, PyBytes_GET_SIZE(data), 1,
                                  resource_records); /* ExportLogsServiceRequest.resource_logs */
    return found < 0 ? Py_NewRef(Py_None) : PyLong_FromSsize_t(found);
}

static PyMethodDef methods[] = {
    {"count_log_records", count_log_records, METH_O, count_log_records_doc},
    {"count_messages", count_messages, METH_O, count_messages_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_otlpwire", "core/otlpwire.py's readers in C (see _otlpwire.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__otlpwire(void) {
    return PyModule_Create(&module);
}
