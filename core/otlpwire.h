/* The protobuf wire format read in C, for procsight's C extensions (setup.py): core/otlpwire.py's
 * `read_varint` and `skip_field`, bounded by the end of the message they are in. */
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

/* The position after the field whose tag is at `position`, or -1 for a group (not in OTLP) or a field cut short. */
static inline Py_ssize_t skip_field(const uint8_t *data, Py_ssize_t position, Py_ssize_t end) {
    uint64_t tag, value;
    if (read_varint(data, &position, end, &tag) < 0)
        return -1;
    switch (tag & 7) {
    case 0:
        return read_varint(data, &position, end, &value) < 0 ? -1 : position;
    case 1:
        return end - position < 8 ? -1 : position + 8;
    case 2:
        if (read_varint(data, &position, end, &value) < 0 || value > (uint64_t)(end - position))
            return -1;
        return position + (Py_ssize_t)value;
    case 5:
        return end - position < 4 ? -1 : position + 4;
    default:
        return -1;
    }
}

#endif
