/* The protobuf wire format read in C, for procsight's C extensions (setup.py): the varint reader of
 * core/otlpwire.py (`read_varint`), bounded by the end of the message it is in. */
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

#endif
