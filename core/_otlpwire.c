/* core/otlpwire.py's readers that must be fast on hostile input, in C (built by setup.py).
 *
 * count_log_records: how many log records an ExportLogsServiceRequest's bytes hold, read without parsing
 * them. Parsing builds an object per record (about 140 bytes for an empty one), so a 20 MiB body of empty
 * records, which gzip sends as 20 KiB, would take 1.4 GB and seconds before anyone could count them.
 *
 * count_parts: the records and the messages of any kind the request holds (resource and scope lists, records,
 * their attributes and the values nested in those), in one walk, for the same reason: ten million empty
 * attributes or empty ResourceLogs cost as much to parse as records do, and hold none.
 *
 * mend: the request copied with invalid UTF-8 in its string fields replaced (U+FFFD, as Python's "replace"),
 * values nested too deep cut, and attributes past a bound left out (otlp_receiver/receivers/otlp/repair.py says
 * why). In C because a hostile request of a million attributes and one bad byte cost 4 CPU-seconds walked in
 * Python, and a million attributes 1.2 parsed before they could be cut.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

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
enum kind { REQUEST, RESOURCE_LOGS, RESOURCE, ENTITY_REF, SCOPE_LOGS, SCOPE, LOG_RECORD, KEY_VALUE, ANY_VALUE,
            ARRAY, KVLIST, LEAF };

static enum kind field_kind(enum kind parent, uint64_t number) {
    switch (parent) {
    case REQUEST: return number == 1 ? RESOURCE_LOGS : LEAF;
    case RESOURCE_LOGS: return number == 1 ? RESOURCE : number == 2 ? SCOPE_LOGS : LEAF;
    case RESOURCE: return number == 1 ? KEY_VALUE : number == 3 ? ENTITY_REF : LEAF;
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

/* Whether field `number` of a `kind` message is a string (protobuf's parser refuses invalid UTF-8 in those). */
static int string_field(enum kind kind, uint64_t number) {
    switch (kind) {
    case RESOURCE_LOGS: case SCOPE_LOGS: return number == 3; /* schema_url */
    case ENTITY_REF: return number >= 1 && number <= 4; /* schema_url, type, id_keys, description_keys */
    case SCOPE: return number == 1 || number == 2; /* name, version */
    case LOG_RECORD: return number == 3 || number == 12; /* severity_text, event_name */
    case KEY_VALUE: case ANY_VALUE: return number == 1; /* key; string_value */
    default: return 0;
    }
}

typedef struct {
    Py_ssize_t records, messages;
    Py_ssize_t widest; /* the most attributes of one resource, scope or record */
} Parts;

/* Adds the records and messages inside data[start:end], a message of `kind`, to `parts`, down to `depth` levels
 * (below that the parser refuses the request anyway); -1 for bytes that are not a message. */
static int parts_in(const uint8_t *data, Py_ssize_t start, Py_ssize_t end, enum kind kind, int depth, Parts *parts) {
    Py_ssize_t position = start, attributes = 0;
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
        attributes += inner == KEY_VALUE && kind != KVLIST;
        if (depth > 0 && parts_in(data, field.start, field.start + field.length, inner, depth - 1, parts) < 0)
            return -1;
    }
    if (attributes > parts->widest)
        parts->widest = attributes;
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
"(records, messages, widest) the serialized ExportLogsServiceRequest `data` holds (messages: lists, records,\n"
"attributes, nested values; widest: the most attributes of one resource, scope or record), or None when it\n"
"is not one.");

static PyObject *count_parts(PyObject *module, PyObject *data) {
    const uint8_t *bytes = bytes_of(data, "count_parts");
    if (bytes == NULL)
        return NULL;
    Parts parts = {0, 0, 0};
    if (parts_in(bytes, 0, PyBytes_GET_SIZE(data), REQUEST, 100, &parts) < 0) /* 100: the parser's own limit */
        return Py_NewRef(Py_None);
    return Py_BuildValue("(nnn)", parts.records, parts.messages, parts.widest);
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

/* Whether s[0:length] is UTF-8 as protobuf and Python's strict decoder take it: no overlong forms, no
 * surrogates, nothing past U+10FFFF (the Unicode Standard's table 3-7). */
static int valid_utf8(const uint8_t *s, Py_ssize_t length) {
    Py_ssize_t i = 0;
    while (i < length) {
        uint8_t byte = s[i];
        if (byte < 0x80) {
            i++;
            continue;
        }
        int more;
        uint8_t low = 0x80, high = 0xBF; /* the second byte's range */
        if (byte >= 0xC2 && byte <= 0xDF)
            more = 1;
        else if (byte >= 0xE0 && byte <= 0xEF) {
            more = 2;
            if (byte == 0xE0) low = 0xA0;
            if (byte == 0xED) high = 0x9F;
        } else if (byte >= 0xF0 && byte <= 0xF4) {
            more = 3;
            if (byte == 0xF0) low = 0x90;
            if (byte == 0xF4) high = 0x8F;
        } else
            return 0;
        if (length - i <= more || s[i + 1] < low || s[i + 1] > high)
            return 0;
        for (int k = 2; k <= more; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += more + 1;
    }
    return 1;
}

/* A growing output buffer; `failed` once memory ran out (a MemoryError is then set). */
typedef struct {
    uint8_t *data;
    Py_ssize_t size, capacity;
    int failed;
} Buffer;

static int reserve(Buffer *out, Py_ssize_t more) {
    if (out->failed)
        return -1;
    if (out->size + more <= out->capacity)
        return 0;
    Py_ssize_t capacity = out->capacity * 2 > out->size + more ? out->capacity * 2 : out->size + more + 64;
    uint8_t *grown = PyMem_Realloc(out->data, (size_t)capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        out->failed = 1;
        return -1;
    }
    out->data = grown;
    out->capacity = capacity;
    return 0;
}

static int append(Buffer *out, const void *bytes, Py_ssize_t length) {
    if (reserve(out, length) < 0)
        return -1;
    memcpy(out->data + out->size, bytes, (size_t)length);
    out->size += length;
    return 0;
}

static int write_varint(uint8_t *to, uint64_t value) {
    int size = 0;
    while (value > 0x7F) {
        to[size++] = (uint8_t)(value & 0x7F) | 0x80;
        value >>= 7;
    }
    to[size++] = (uint8_t)value;
    return size;
}

typedef struct {
    int max_depth;          /* AnyValue levels kept */
    const char *cut;        /* an AnyValue saying it was cut, serialized */
    Py_ssize_t cut_length;
    Py_ssize_t max_attributes, keep_past_cut; /* per resource, scope or record */
    PyObject *keep_prefixes; /* a tuple of bytes: keys of attributes kept past the cut */
    Py_ssize_t mended;      /* values changed */
    Py_ssize_t attributes_cut;
} Mending;

/* Whether the KeyValue data[start:end] has a key (its last, as the parser reads it) starting with one of
 * `prefixes`. */
static int key_kept(const uint8_t *data, Py_ssize_t start, Py_ssize_t end, PyObject *prefixes) {
    Py_ssize_t position = start, key_start = 0, key_length = -1;
    Field field;
    while (position < end && read_field(data, &position, end, &field) == 0)
        if (field.wire == 2 && field.number == 1) {
            key_start = field.start;
            key_length = field.length;
        }
    for (Py_ssize_t i = 0; key_length >= 0 && i < PyTuple_GET_SIZE(prefixes); i++) {
        PyObject *prefix = PyTuple_GET_ITEM(prefixes, i);
        Py_ssize_t size = PyBytes_GET_SIZE(prefix);
        if (size <= key_length && memcmp(data + key_start, PyBytes_AS_STRING(prefix), (size_t)size) == 0)
            return 1;
    }
    return 0;
}

/* Which attributes of a resource, scope or record data[start:end] are kept: the first max_attributes, or past
 * that many the first (max_attributes - kept) and up to keep_past_cut of the rest whose keys are named. */
typedef struct {
    Py_ssize_t total, room, kept_past; /* kept_past: how many past the cut are kept */
} Cut;

static int plan_cut(const uint8_t *data, Py_ssize_t start, Py_ssize_t end, enum kind kind, Mending *mending,
                    Cut *cut) {
    Py_ssize_t position = start;
    cut->total = cut->kept_past = 0;
    while (position < end) {
        Field field;
        if (read_field(data, &position, end, &field) < 0)
            return -1;
        if (field.wire != 2 || field_kind(kind, field.number) != KEY_VALUE)
            continue;
        if (cut->total++ >= mending->max_attributes && cut->kept_past < mending->keep_past_cut)
            cut->kept_past += key_kept(data, field.start, field.start + field.length, mending->keep_prefixes);
    }
    cut->room = cut->total > mending->max_attributes ? mending->max_attributes - cut->kept_past : cut->total;
    return 0;
}

static int mend_message(const uint8_t *data, Py_ssize_t start, Py_ssize_t end, enum kind kind, int depth,
                        Mending *mending, Buffer *out);

/* A string field's bytes, replaced where they are not UTF-8. */
static int mend_string(const uint8_t *data, Py_ssize_t start, Py_ssize_t length, Mending *mending, Buffer *out) {
    if (valid_utf8(data + start, length))
        return append(out, data + start, length);
    mending->mended += 1;
    PyObject *text = PyUnicode_DecodeUTF8((const char *)data + start, length, "replace");
    if (text == NULL) {
        out->failed = 1;
        return -1;
    }
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    int result = utf8 == NULL ? (out->failed = 1, -1) : append(out, utf8, size);
    Py_DECREF(text);
    return result;
}

/* The length-delimited field (`number`, data[start:start+length]) of a `kind` message, mended, written as tag,
 * length, payload: the payload is written 10 bytes on (a varint's most) and moved back once its length is known. */
static int mend_field(const uint8_t *data, uint64_t number, Py_ssize_t start, Py_ssize_t length, enum kind kind,
                      int depth, Mending *mending, Buffer *out) {
    uint8_t tag[10];
    if (append(out, tag, write_varint(tag, number << 3 | 2)) < 0 || reserve(out, 10) < 0)
        return -1;
    Py_ssize_t head = out->size;
    out->size += 10;
    enum kind inner = field_kind(kind, number);
    int result;
    if (inner == ANY_VALUE && depth >= mending->max_depth) {
        mending->mended += 1;
        result = append(out, mending->cut, mending->cut_length);
    } else if (inner != LEAF)
        result = mend_message(data, start, start + length, inner, depth + (inner == ANY_VALUE), mending, out);
    else
        result = mend_string(data, start, length, mending, out);
    if (result < 0)
        return result;
    Py_ssize_t payload = out->size - head - 10;
    int prefix = write_varint(out->data + head, (uint64_t)payload); /* before the payload: no overlap */
    memmove(out->data + head + prefix, out->data + head + 10, (size_t)payload);
    out->size = head + prefix + payload;
    return 0;
}

/* data[start:end], a `kind` message, mended into `out`: fields that are neither strings nor messages copied as
 * they came, attributes past the cut left out. -1 with no error set for bytes that are not a message, -1 with
 * `out->failed` for a Python error. */
static int mend_message(const uint8_t *data, Py_ssize_t start, Py_ssize_t end, enum kind kind, int depth,
                        Mending *mending, Buffer *out) {
    Cut cut = {0, 0, 0};
    int holder = kind == RESOURCE || kind == SCOPE || kind == LOG_RECORD;
    if (holder && plan_cut(data, start, end, kind, mending, &cut) < 0)
        return -1;
    Py_ssize_t position = start, attribute = 0, kept_past = 0;
    while (position < end) {
        Py_ssize_t field_start = position;
        Field field;
        if (read_field(data, &position, end, &field) < 0)
            return -1;
        enum kind inner = field.wire == 2 ? field_kind(kind, field.number) : LEAF;
        if (holder && inner == KEY_VALUE && attribute++ >= cut.room) {
            int kept = attribute > mending->max_attributes && kept_past < cut.kept_past
                && key_kept(data, field.start, field.start + field.length, mending->keep_prefixes);
            kept_past += kept;
            if (!kept) {
                mending->attributes_cut += 1;
                continue;
            }
        }
        if (inner == LEAF && !(field.wire == 2 && string_field(kind, field.number))) {
            if (append(out, data + field_start, position - field_start) < 0)
                return -1;
        } else if (mend_field(data, field.number, field.start, field.length, kind, depth, mending, out) < 0)
            return -1;
    }
    return 0;
}

PyDoc_STRVAR(mend_doc,
"mend(data, max_depth, cut, max_attributes, keep_past_cut, keep_prefixes)\n"
"--\n\n"
"(the serialized ExportLogsServiceRequest `data` mended, values changed, attributes cut): invalid UTF-8 in\n"
"its strings replaced with U+FFFD, AnyValues nested deeper than `max_depth` levels replaced with `cut` (a\n"
"serialized AnyValue), and of a resource, scope or record with more than `max_attributes` attributes, the\n"
"first kept with up to `keep_past_cut` of the rest whose keys start with one of `keep_prefixes` (a tuple of\n"
"bytes), max_attributes in all. None when `data` is not such a request.");

static PyObject *mend(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Mending mending = {0, NULL, 0, 0, 0, NULL, 0, 0};
    if (nargs != 6 || bytes_of(args[0], "mend") == NULL || !PyArg_Parse(args[1], "i", &mending.max_depth)
            || !PyArg_Parse(args[2], "y#", &mending.cut, &mending.cut_length)
            || !PyArg_Parse(args[3], "n", &mending.max_attributes) || !PyArg_Parse(args[4], "n", &mending.keep_past_cut)
            || !PyArg_Parse(args[5], "O!", &PyTuple_Type, &mending.keep_prefixes)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "mend takes (data: bytes, max_depth: int, cut: bytes, max_attributes: "
                                             "int, keep_past_cut: int, keep_prefixes: tuple[bytes, ...])");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mending.keep_prefixes); i++)
        if (bytes_of(PyTuple_GET_ITEM(mending.keep_prefixes, i), "mend's keep_prefixes") == NULL)
            return NULL;
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Buffer out = {NULL, 0, 0, 0};
    PyObject *result = NULL;
    if (reserve(&out, size + 64) == 0) {
        if (mend_message(data, 0, size, REQUEST, 0, &mending, &out) == 0)
            result = Py_BuildValue("(y#nn)", (const char *)out.data, out.size, mending.mended, mending.attributes_cut);
        else if (!out.failed)
            result = Py_NewRef(Py_None);
    }
    PyMem_Free(out.data);
    return result;
}

static PyMethodDef methods[] = {
    {"count_log_records", count_log_records, METH_O, count_log_records_doc},
    {"count_parts", count_parts, METH_O, count_parts_doc},
    {"mend", (PyCFunction)(void (*)(void))mend, METH_FASTCALL, mend_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_otlpwire", "core/otlpwire.py's readers in C (see _otlpwire.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__otlpwire(void) {
    return PyModule_Create(&module);
}
