/* The exporter's hot loop in C: the log records of one ScopeLogs, read from its wire bytes into the row
 * columns of `columns._Rows` (columns.py says what each column holds and how a value is rendered).
 *
 * Python walked the records at about 20 us each, most of it per attribute. This walk reads the fields
 * columns.py's docstring lists and nothing else. An attribute entry whose bytes were seen before is taken
 * from the reader's cache (`known`); a new one of a key and a scalar value (text, int, double, bool) is
 * decoded here; any other shape (a list, a map, bytes, an unknown field) goes to the reader's
 * `any_attribute`, and a body that is not a plain string to its `render_body`: those render values through
 * the protobuf runtime, in Python (columns.value_to_text, the one rendering of a value).
 *
 * Every read is checked against the end of its message: bytes that are not a serialized
 * ExportLogsServiceRequest raise ValueError, never read past the buffer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "otlpwire.h"

#define MAX_TIME_NS ((uint64_t)INT64_MAX) /* DateTime64(9) holds nanoseconds in an Int64 */

/* Slots of the attributes that fill their own columns (columns._READER.slots gives each key its slot). */
enum { SLOT_RECORD_ID, SLOT_SCORE, SLOT_INCIDENT_SCORE, SLOT_INCIDENT, SLOT_TECHNIQUES, SLOT_SEVERITY,
       SLOT_WORKLOAD, SLOT_EVENT_NAME };

static PyObject *empty_text;

static int malformed(const char *what) {
    PyErr_Format(PyExc_ValueError, "%s: not a serialized ExportLogsServiceRequest", what);
    return -1;
}

/* The field at *position, as read_field, with a ValueError for bytes that are not a message. */
static int next_field(const uint8_t *data, Py_ssize_t *position, Py_ssize_t end, Field *field) {
    return read_field(data, position, end, field) < 0 ? malformed("a field runs past its message, or is a group") : 0;
}

static PyObject *text_of(const uint8_t *data, Py_ssize_t start, Py_ssize_t length) {
    if (length == 0)
        return Py_NewRef(empty_text);
    return PyUnicode_DecodeUTF8((const char *)data + start, length, "strict");
}

static PyObject *hex_of(const uint8_t *data, Py_ssize_t start, Py_ssize_t length) {
    static const char digits[] = "0123456789abcdef";
    PyObject *hex = PyUnicode_New(length * 2, 127);
    if (hex == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(hex);
    for (Py_ssize_t i = 0; i < length; i++) {
        out[2 * i] = digits[data[start + i] >> 4];
        out[2 * i + 1] = digits[data[start + i] & 15];
    }
    return hex;
}

/* A score: the double the attribute holds, else its text as a number, else 0. */
static double number_of(PyObject *value, PyObject *text) {
    if (PyFloat_Check(value))
        return PyFloat_AS_DOUBLE(value);
    PyObject *parsed = PyFloat_FromString(text);
    if (parsed == NULL) {
        PyErr_Clear(); /* not a number: 0 */
        return 0.0;
    }
    double number = PyFloat_AS_DOUBLE(parsed);
    Py_DECREF(parsed);
    return number;
}

/* A string-array attribute (techniques) as a list: a lone string becomes one item. */
static PyObject *strings_of(PyObject *value, PyObject *text) {
    if (PyList_Check(value))
        return Py_NewRef(value);
    if (PyUnicode_GET_LENGTH(text) == 0)
        return PyList_New(0);
    PyObject *list = PyList_New(1);
    if (list != NULL)
        PyList_SET_ITEM(list, 0, Py_NewRef(text));
    return list;
}

/* What one record's fields hold while it is read. References are owned. */
typedef struct {
    uint64_t time_ns, observed_ns, severity_number, flags;
    double score, incident_score;
    PyObject *severity_text, *event_name, *named_by_attribute, *severity, *workload, *incident, *techniques;
    PyObject *body, *trace_id, *span_id;
} Record;

static void record_clear(Record *record) {
    Py_CLEAR(record->severity_text);
    Py_CLEAR(record->event_name);
    Py_CLEAR(record->named_by_attribute);
    Py_CLEAR(record->severity);
    Py_CLEAR(record->workload);
    Py_CLEAR(record->incident);
    Py_CLEAR(record->techniques);
    Py_CLEAR(record->body);
    Py_CLEAR(record->trace_id);
    Py_CLEAR(record->span_id);
}

static void replace(PyObject **slot, PyObject *value) {
    Py_XSETREF(*slot, Py_NewRef(value));
}

/* The row columns of a `columns._Rows`, by the names below, in this order. */
enum { RECORD_IDS, TIMESTAMPS, TRACE_IDS, SPAN_IDS, FLAGS, SEVERITY_TEXTS, SEVERITY_NUMBERS, BODIES, EVENT_NAMES,
       SCORES, SEVERITIES, WORKLOADS, INCIDENTS, INCIDENT_SCORES, TECHNIQUES, COLUMN_COUNT };
static const char *const COLUMN_NAMES[COLUMN_COUNT] = {
    "record_ids", "timestamps", "trace_ids", "span_ids", "flags", "severity_texts", "severity_numbers", "bodies",
    "event_names", "scores", "severities", "workloads", "incidents", "incident_scores", "techniques"};

typedef struct {
    PyObject *lists[COLUMN_COUNT];                         /* owned */
    PyObject *log_keys, *log_values, *log_offsets, *record_id; /* owned: the LogAttributes map, rows.record_id */
    /* borrowed, from the reader (columns._Reader): */
    PyObject *known, *unique_keys, *any_attribute, *render_body, *slots, *record_id_key;
    Py_ssize_t max_known;
} Columns;

static void columns_clear(Columns *columns) {
    for (int i = 0; i < COLUMN_COUNT; i++)
        Py_CLEAR(columns->lists[i]);
    Py_CLEAR(columns->log_keys);
    Py_CLEAR(columns->log_values);
    Py_CLEAR(columns->log_offsets);
    Py_CLEAR(columns->record_id);
}

static PyObject *list_attribute(PyObject *owner, const char *name) {
    PyObject *value = PyObject_GetAttrString(owner, name);
    if (value != NULL && !PyList_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s is not a list", name);
        Py_CLEAR(value);
    }
    return value;
}

static int columns_open(Columns *columns, PyObject *rows) {
    for (int i = 0; i < COLUMN_COUNT; i++)
        if ((columns->lists[i] = list_attribute(rows, COLUMN_NAMES[i])) == NULL)
            return -1;
    PyObject *log_maps = PyObject_GetAttrString(rows, "log_maps");
    if (log_maps == NULL)
        return -1;
    columns->log_keys = list_attribute(log_maps, "keys");
    columns->log_values = list_attribute(log_maps, "values");
    columns->log_offsets = list_attribute(log_maps, "offsets");
    Py_DECREF(log_maps);
    if (columns->log_keys == NULL || columns->log_values == NULL || columns->log_offsets == NULL)
        return -1;
    columns->record_id = PyObject_GetAttrString(rows, "record_id");
    return columns->record_id == NULL ? -1 : 0;
}

static int append_owned(PyObject *list, PyObject *value) {
    if (value == NULL)
        return -1;
    int failed = PyList_Append(list, value);
    Py_DECREF(value);
    return failed;
}

/* (key, text, value) of a KeyValue of a key and a scalar value, read from its bytes: the text as
 * columns.value_to_text renders the value, `value` the double for a double, else None. NULL without an error
 * for any other shape. */
static PyObject *scalar_attribute(const uint8_t *entry, Py_ssize_t size) {
    Py_ssize_t position = 1;
    uint64_t length, number;
    if (size < 1 || entry[0] != 0x0A || read_varint(entry, &position, size, &length) < 0
        || length > (uint64_t)(size - position))
        return NULL;
    Py_ssize_t key_end = position + (Py_ssize_t)length;
    PyObject *key = text_of(entry, position, (Py_ssize_t)length), *text = NULL;
    if (key == NULL)
        return NULL;
    if (key_end == size)
        return Py_BuildValue("(NOO)", key, empty_text, Py_None); /* no value */
    position = key_end + 1;
    if (entry[key_end] != 0x12 || read_varint(entry, &position, size, &length) < 0
        || length != (uint64_t)(size - position))
        goto other_shape;
    if (length == 0)
        return Py_BuildValue("(NOO)", key, empty_text, Py_None); /* an empty AnyValue */
    uint8_t tag = entry[position++];
    if (tag == 0x0A) { /* string_value */
        if (read_varint(entry, &position, size, &length) < 0 || length != (uint64_t)(size - position))
            goto other_shape;
        text = text_of(entry, position, (Py_ssize_t)length);
    } else if (tag == 0x18 || tag == 0x10) { /* int_value (int64), bool_value */
        if (read_varint(entry, &position, size, &number) < 0 || position != size)
            goto other_shape;
        if (tag == 0x10) {
            text = PyUnicode_FromString(number ? "true" : "false");
        } else {
            PyObject *integer = PyLong_FromLongLong((long long)(int64_t)number);
            text = integer != NULL ? PyObject_Str(integer) : NULL;
            Py_XDECREF(integer);
        }
    } else if (tag == 0x21 && size - position == 8) { /* double_value */
        uint64_t bits = little_endian(entry + position, 8);
        double fraction;
        memcpy(&fraction, &bits, 8); /* IEEE 754, as protobuf's double */
        PyObject *value = PyFloat_FromDouble(fraction);
        text = value != NULL ? PyObject_Repr(value) : NULL;
        if (text == NULL) {
            Py_XDECREF(value);
            Py_DECREF(key);
            return NULL;
        }
        return Py_BuildValue("(NNN)", key, text, value);
    } else {
        goto other_shape;
    }
    if (text == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    return Py_BuildValue("(NNO)", key, text, Py_None);
other_shape:
    Py_DECREF(key);
    return NULL;
}

#define MAX_KNOWN_ENTRY 4096 /* bytes of an attribute entry the cache keeps */

/* The decoded attribute entry: from the cache, else decoded here or by any_attribute and cached (unless its key
 * is one of the unique keys, whose values differ from record to record). */
static PyObject *decoded_attribute(Columns *columns, const uint8_t *data, Py_ssize_t start, Py_ssize_t length) {
    PyObject *entry = PyBytes_FromStringAndSize((const char *)data + start, length);
    if (entry == NULL)
        return NULL;
    PyObject *decoded = PyDict_GetItemWithError(columns->known, entry);
    if (decoded != NULL || PyErr_Occurred()) {
        Py_XINCREF(decoded);
        Py_DECREF(entry);
        return decoded;
    }
    decoded = scalar_attribute(data + start, length);
    if (decoded == NULL && !PyErr_Occurred())
        decoded = PyObject_CallOneArg(columns->any_attribute, entry);
    if (decoded != NULL && (!PyTuple_Check(decoded) || PyTuple_GET_SIZE(decoded) != 3)) {
        PyErr_SetString(PyExc_TypeError, "any_attribute must return (key, text, value)");
        Py_CLEAR(decoded);
    }
    if (decoded != NULL) {
        int unique = PySet_Contains(columns->unique_keys, PyTuple_GET_ITEM(decoded, 0));
        /* A large entry is decoded each time: kept, 16,384 of 15 MB values would hold gigabytes. */
        int keep = unique == 0 && length <= MAX_KNOWN_ENTRY;
        if (keep && PyDict_GET_SIZE(columns->known) >= columns->max_known)
            PyDict_Clear(columns->known); /* full: start over */
        if (unique < 0 || (keep && PyDict_SetItem(columns->known, entry, decoded) < 0))
            Py_CLEAR(decoded);
    }
    Py_DECREF(entry);
    return decoded;
}

/* One attribute entry (a KeyValue's bytes): its key and text into the LogAttributes map, and the value into the
 * record when its key has a column. */
static int read_attribute(Columns *columns, Record *record, const uint8_t *data, Py_ssize_t start,
                          Py_ssize_t length) {
    PyObject *decoded = decoded_attribute(columns, data, start, length);
    if (decoded == NULL)
        return -1;
    PyObject *key = PyTuple_GET_ITEM(decoded, 0), *text = PyTuple_GET_ITEM(decoded, 1);
    PyObject *value = PyTuple_GET_ITEM(decoded, 2);
    int failed = 0;
    PyObject *slot = PyDict_GetItemWithError(columns->slots, key);
    if (slot == NULL && PyErr_Occurred()) {
        failed = -1;
    } else if (slot != NULL) {
        switch (PyLong_AsLong(slot)) {
        case SLOT_RECORD_ID: /* ours to set: a sender's value would break the exactly-once key */
            Py_DECREF(decoded);
            return 0;
        case SLOT_SCORE:
            record->score = number_of(value, text);
            break;
        case SLOT_INCIDENT_SCORE:
            record->incident_score = number_of(value, text);
            break;
        case SLOT_INCIDENT:
            replace(&record->incident, text);
            break;
        case SLOT_TECHNIQUES: {
            PyObject *techniques = strings_of(value, text);
            if (techniques == NULL)
                failed = -1;
            else
                Py_XSETREF(record->techniques, techniques);
            break;
        }
        case SLOT_SEVERITY:
            replace(&record->severity, text);
            break;
        case SLOT_WORKLOAD:
            replace(&record->workload, text);
            break;
        default: /* SLOT_EVENT_NAME: the first non-empty one names a record without event_name */
            if (record->named_by_attribute == NULL || PyUnicode_GET_LENGTH(record->named_by_attribute) == 0)
                replace(&record->named_by_attribute, text);
        }
    }
    if (!failed)
        failed = PyList_Append(columns->log_keys, key) || PyList_Append(columns->log_values, text);
    Py_DECREF(decoded);
    return failed ? -1 : 0;
}

static PyObject *body_text(Columns *columns, const uint8_t *data, Py_ssize_t start, Py_ssize_t length) {
    if (length > 0 && data[start] == 0x0A) { /* AnyValue.string_value, alone: read it here */
        Py_ssize_t position = start + 1;
        uint64_t text_length;
        if (read_varint(data, &position, start + length, &text_length) < 0) {
            malformed("a body's length is cut short");
            return NULL;
        }
        if ((uint64_t)(start + length - position) == text_length)
            return text_of(data, position, (Py_ssize_t)text_length);
    }
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)data + start, length);
    if (bytes == NULL)
        return NULL;
    PyObject *text = PyObject_CallOneArg(columns->render_body, bytes);
    Py_DECREF(bytes);
    return text;
}

static int read_fields(Columns *columns, Record *record, const uint8_t *data, Py_ssize_t position, Py_ssize_t end) {
    while (position < end) {
        Field field;
        if (next_field(data, &position, end, &field) < 0)
            return -1;
        Py_ssize_t start = field.start, length = field.length;
        PyObject **text_slot = NULL;
        if (field.wire == 2) {
            switch (field.number) {
            case 6:
                if (read_attribute(columns, record, data, start, length) < 0)
                    return -1;
                continue;
            case 5:
                Py_XSETREF(record->body, body_text(columns, data, start, length));
                if (record->body == NULL)
                    return -1;
                continue;
            case 9:
                Py_XSETREF(record->trace_id, hex_of(data, start, length));
                if (record->trace_id == NULL)
                    return -1;
                continue;
            case 10:
                Py_XSETREF(record->span_id, hex_of(data, start, length));
                if (record->span_id == NULL)
                    return -1;
                continue;
            case 3:
                text_slot = &record->severity_text;
                break;
            case 12:
                text_slot = &record->event_name;
                break;
            default:
                continue; /* a field this schema does not know */
            }
            Py_XSETREF(*text_slot, text_of(data, start, length));
            if (*text_slot == NULL)
                return -1;
        } else if (field.wire == 1 && field.number == 1) {
            record->time_ns = field.value;
        } else if (field.wire == 1 && field.number == 11) {
            record->observed_ns = field.value;
        } else if (field.wire == 0 && field.number == 2) {
            record->severity_number = field.value;
        } else if (field.wire == 5 && field.number == 8) {
            record->flags = field.value;
        } /* dropped_attributes_count, or a field this schema does not know: skipped */
    }
    return 0;
}

static uint64_t event_time(const Record *record) {
    /* The record's time; the observed time when it has none or one DateTime64(9) cannot hold (OTLP times are
     * unsigned 64-bit): one bad time never fails the batch it came in. */
    if (record->time_ns > 0 && record->time_ns <= MAX_TIME_NS)
        return record->time_ns;
    return record->observed_ns <= MAX_TIME_NS ? record->observed_ns : 0;
}

static PyObject *or_empty(PyObject *value) {
    return Py_NewRef(value != NULL ? value : empty_text);
}

static int append_row(Columns *columns, Record *record) {
    PyObject **lists = columns->lists;
    PyObject *record_id = PyObject_CallFunction(columns->record_id, "n", PyList_GET_SIZE(lists[RECORD_IDS]));
    if (record_id == NULL)
        return -1;
    int failed = PyList_Append(lists[RECORD_IDS], record_id) || PyList_Append(columns->log_keys, columns->record_id_key)
                 || PyList_Append(columns->log_values, record_id);
    Py_DECREF(record_id);
    if (failed)
        return -1;
    PyObject *event_name = record->event_name != NULL && PyUnicode_GET_LENGTH(record->event_name) > 0
                               ? record->event_name : record->named_by_attribute;
    return append_owned(columns->log_offsets, PyLong_FromSsize_t(PyList_GET_SIZE(columns->log_keys)))
           || append_owned(lists[TIMESTAMPS], PyLong_FromUnsignedLongLong(event_time(record)))
           || append_owned(lists[TRACE_IDS], or_empty(record->trace_id))
           || append_owned(lists[SPAN_IDS], or_empty(record->span_id))
           || append_owned(lists[FLAGS], PyLong_FromUnsignedLongLong(record->flags & 0xFF))
           || append_owned(lists[SEVERITY_TEXTS], or_empty(record->severity_text))
           || append_owned(lists[SEVERITY_NUMBERS], PyLong_FromUnsignedLongLong(record->severity_number & 0xFF))
           || append_owned(lists[BODIES], or_empty(record->body))
           || append_owned(lists[EVENT_NAMES], or_empty(event_name))
           || append_owned(lists[SCORES], PyFloat_FromDouble(record->score))
           || append_owned(lists[SEVERITIES], or_empty(record->severity))
           || append_owned(lists[WORKLOADS], or_empty(record->workload))
           || append_owned(lists[INCIDENTS], or_empty(record->incident))
           || append_owned(lists[INCIDENT_SCORES], PyFloat_FromDouble(record->incident_score))
           || append_owned(lists[TECHNIQUES], record->techniques != NULL ? Py_NewRef(record->techniques)
                                                                          : PyList_New(0))
               ? -1 : 0;
}

static int read_record(Columns *columns, const uint8_t *data, Py_ssize_t start, Py_ssize_t end) {
    Record record;
    memset(&record, 0, sizeof(record));
    int failed = read_fields(columns, &record, data, start, end) < 0 || append_row(columns, &record) < 0;
    record_clear(&record);
    return failed ? -1 : 0;
}

PyDoc_STRVAR(read_scope_logs_doc,
"read_scope_logs(data, start, end, rows, reader)\n"
"--\n\n"
"Appends the rows of the log records in data[start:end], one ScopeLogs message, to the columns of `rows`\n"
"(a columns._Rows), reading attributes and bodies with `reader` (a columns._Reader). Returns (the scope's\n"
"bytes or None, the scope's schema url, how many records).");

static int open_reader(Columns *columns, PyObject *reader) {
    if (!PyTuple_Check(reader) || PyTuple_GET_SIZE(reader) != 7) {
        PyErr_SetString(PyExc_TypeError, "reader must be a columns._Reader");
        return -1;
    }
    columns->known = PyTuple_GET_ITEM(reader, 0);
    columns->max_known = PyLong_AsSsize_t(PyTuple_GET_ITEM(reader, 1));
    columns->unique_keys = PyTuple_GET_ITEM(reader, 2);
    columns->any_attribute = PyTuple_GET_ITEM(reader, 3);
    columns->render_body = PyTuple_GET_ITEM(reader, 4);
    columns->slots = PyTuple_GET_ITEM(reader, 5);
    columns->record_id_key = PyTuple_GET_ITEM(reader, 6);
    if (columns->max_known < 0 && PyErr_Occurred())
        return -1;
    if (!PyDict_Check(columns->known) || !PyAnySet_Check(columns->unique_keys) || !PyDict_Check(columns->slots)
        || !PyUnicode_Check(columns->record_id_key)) {
        PyErr_SetString(PyExc_TypeError, "reader must be a columns._Reader");
        return -1;
    }
    return 0;
}

static PyObject *read_scope_logs(PyObject *module, PyObject *args) {
    PyObject *payload, *rows, *reader;
    Py_ssize_t start, end;
    Columns columns;
    memset(&columns, 0, sizeof(columns));
    if (!PyArg_ParseTuple(args, "SnnOO", &payload, &start, &end, &rows, &reader) || open_reader(&columns, reader) < 0)
        return NULL;
    if (start < 0 || end < start || end > PyBytes_GET_SIZE(payload)) {
        PyErr_SetString(PyExc_ValueError, "start and end must lie within data");
        return NULL;
    }
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(payload);
    PyObject *scope = NULL, *schema_url = NULL;
    Py_ssize_t count = 0, position = start;
    if (columns_open(&columns, rows) < 0)
        goto failed;
    while (position < end) {
        Field field;
        if (next_field(data, &position, end, &field) < 0)
            goto failed;
        if (field.wire != 2)
            continue;
        if (field.number == 2) {
            if (read_record(&columns, data, field.start, field.start + field.length) < 0)
                goto failed;
            count++;
        } else if (field.number == 1) {
            Py_XSETREF(scope, PyBytes_FromStringAndSize((const char *)data + field.start, field.length));
            if (scope == NULL)
                goto failed;
        } else if (field.number == 3) {
            Py_XSETREF(schema_url, text_of(data, field.start, field.length));
            if (schema_url == NULL)
                goto failed;
        }
    }
    columns_clear(&columns);
    return Py_BuildValue("(NNn)", scope != NULL ? scope : Py_NewRef(Py_None),
                         schema_url != NULL ? schema_url : Py_NewRef(empty_text), count);
failed:
    columns_clear(&columns);
    Py_XDECREF(scope);
    Py_XDECREF(schema_url);
    return NULL;
}

static PyMethodDef methods[] = {
    {"read_scope_logs", read_scope_logs, METH_VARARGS, read_scope_logs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_records", "The clickhouse exporter's record reader (see _records.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__records(void) {
    empty_text = PyUnicode_FromStringAndSize("", 0);
    if (empty_text == NULL)
        return NULL;
    return PyModule_Create(&module);
}
