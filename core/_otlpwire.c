/* core/otlpwire.py's readers that must be fast on hostile input, in C (built by setup.py).
 *
 * count_log_records: how many log records an ExportLogsServiceRequest's bytes hold, read without parsing
 * them. Parsing builds an object per record (about 140 bytes for an empty one), so a 20 MiB body of empty
 * records, which gzip sends as 20 KiB, would take 1.4 GB and seconds before anyone could count them.
 *
 * count_parts: the records and the messages of any kind the request holds (resource and scope lists, records,
 * their attributes and the values nested in those), in one walk, for the same reason: ten million empty
 * attributes or empty ResourceLogs cost as much to parse as records do, and hold none.
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

typedef struct {
    Py_ssize_t records, messages;
} Parts;

/* Adds the records and messages inside data[start:end], a message of `kind`, to `parts`, down to `depth` levels
 * (below that the parser refuses the request anyway); -1 for bytes that are not a message. */
static int parts_in(const uint8_t *data, Py_ssize_t start, Py_ssize_t end, enum kind kind, int depth, Parts *parts) {
    Py_ssize_t position = start;
    while (position < end) {
        Field field;
        if (read_field(data, &position, end, &field) < 0)
            return -1;
        if (field.wire != 2)
            continue;
        enum kind inner = field_kind(kind, field.number);
        if (inner == LEAF)
            continue;
        parts->messages += 1;
        parts->records += inner == LOG_RECORD;
        if (depth > 0 && parts_in(data, field.start, field.start + field.length, inner, depth - 1, parts) < 0)
            return -1;
    }
    return 0;
}

/* The bytes of `data`, or NULL with a TypeError naming `function`. */
static const uint8_t *bytes_of(PyObject *data, const char *function) {
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "%s takes bytes", function);
        return NULL;
    }
    return (const uint8_t *)PyBytes_AS_STRING(data);
}

PyDoc_STRVAR(count_parts_doc,
"count_parts(data)\n"
"--\n\n"
"(records, messages) the serialized ExportLogsServiceRequest `data` holds (messages: lists, records,\n"
"attributes, nested values), or None when it is not one.");

static PyObject *count_parts(PyObject *module, PyObject *data) {
    const uint8_t *bytes = bytes_of(data, "count_parts");
    if (bytes == NULL)
        return NULL;
    Parts parts = {0, 0};
    if (parts_in(bytes, 0, PyBytes_GET_SIZE(data), REQUEST, 100, &parts) < 0) /* 100: the parser's own limit */
        return Py_NewRef(Py_None);
    return Py_BuildValue("(nn)", parts.records, parts.messages);
}

PyDoc_STRVAR(count_log_records_doc,
"count_log_records(data)\n"
"--\n\n"
"How many log records the serialized ExportLogsServiceRequest `data` holds, or None when it is not one.");

static PyObject *count_log_records(PyObject *module, PyObject *data) {
    const uint8_t *bytes = bytes_of(data, "count_log_records");
    if (bytes == NULL)
        return NULL;
    Py_ssize_t found = each_field(bytes, 0, PyBytes_GET_SIZE(data), 1,
                                  resource_records); /* ExportLogsServiceRequest.resource_logs */
    return found < 0 ? Py_NewRef(Py_None) : PyLong_FromSsize_t(found);
}

static PyMethodDef methods[] = {
    {"count_log_records", count_log_records, METH_O, count_log_records_doc},
    {"count_parts", count_parts, METH_O, count_parts_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_otlpwire", "core/otlpwire.py's readers in C (see _otlpwire.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__otlpwire(void) {
    return PyModule_Create(&module);
}
