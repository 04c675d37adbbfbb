/* The protobuf wire format read in C, for procsight's C extensions (setup.py): core/otlpwire.py's
 * `read_varint` and `skip_field`, and `read_field`, each bounded by the end of the message it reads in. */
#ifndef PROCSIGHT_OTLPWIRE_H
#define PROCSIGHT_OTLPWIRE_H

#include <Python.h>
#include <stdint.h>

/* The varint at *position, at most 10 bytes and all before `end`; *position moves past it. 0, or -1 (no error
 * set) when it is cut short or too long. */
static inline int read_varint(const uint8_t *data, Py_ssize_t *position, Py_ssize_t end, uint64_t *value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*position >= end)
            return -1;
        uint8_t byte = data[(*position)++];
        result |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *value = result;
            return 0;
        }
    }
    return -1;
}

/* A fixed64 or fixed32 value: little-endian bytes, whatever the host's order. */
static inline uint64_t little_endian(const uint8_t *bytes, int size) {
    uint64_t value = 0;
    for (int i = size - 1; i >= 0; i--)
        value = value << 8 | bytes[i];
    return value;
}

/* One field of a message, as read_field finds it. */
typedef struct {
    uint64_t number;
    int wire;                 /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    Py_ssize_t start, length; /* wire type 2: where its bytes are */
    uint64_t value;           /* wire types 0, 1 and 5: its value */
} Field;

/* The field at *position, which moves past it; 0, or -1 (no error set) for a group (not in OTLP) or a field that
 * runs past `end`. */
static inline int read_field(const uint8_t *data, Py_ssize_t *position, Py_ssize_t end, Field *field) {
    uint64_t tag;
    if (read_varint(data, position, end, &tag) < 0)
        return -1;
    field->number = tag >> 3;
    field->wire = (int)(tag & 7);
    switch (field->wire) {
    case 0:
        return read_varint(data, position, end, &field->value);
    case 1:
    case 5: {
        int size = field->wire == 1 ? 8 : 4;
        if (end - *position < size)
            return -1;
        field->value = little_endian(data + *position, size);
        *position += size;
        return 0;
    }
    case 2: {
        uint64_t length;
        if (read_varint(data, position, end, &length) < 0 || length > (uint64_t)(end - *position))
            return -1;
        field->start = *position;
        field->length = (Py_ssize_t)length;
        *position += (Py_ssize_t)length;
        return 0;
    }
    default:
        return -1;
    }
}

/* The position after the field whose tag is at `position`, or -1 as read_field. */
static inline Py_ssize_t skip_field(const uint8_t *data, Py_ssize_t position, Py_ssize_t end) {
    Field field;
    return read_field(data, &position, end, &field) < 0 ? -1 : position;
}

#endif
