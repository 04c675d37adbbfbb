/* The placeholders of volatile values in an ASCII argument, in C: tokens.py's _VOLATILE regex is the
 * specification, and this is its one implementation for ASCII strings (the others still go through the
 * regex). Tokenising an event with a new command line spent about 39 us of 57 in that regex's `sub`, 5 to
 * 13 us per argument.
 *
 * It does what the regex does, position by position rather than by a cleverer tokenisation: at each
 * position the alternatives are tried in the regex's order (uuid, hex, rand, n), the first that matches is
 * replaced and the scan resumes after it; where none matches, the character is copied. Each alternative's
 * greedy runs and lookarounds reduce to "the run of some class from here", as the comments of each say, so
 * nothing backtracks. Like the regex, an argument that is one long run of letters costs time quadratic in
 * its length (tokens.py scans at most 256 characters of an argument). scoring/tests/test_tokens.py compares
 * the two on tricky and on random strings.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* ASCII classes, not <ctype.h>'s: those follow the C locale. With IGNORECASE, the regex's [0-9a-f] and
 * [0-9a-z] take upper case too. */
static int is_digit(Py_UCS1 c) {
    return c >= '0' && c <= '9';
}

static int is_letter(Py_UCS1 c) {
    c |= 0x20; /* lower case: no other ASCII character lands in a-z */
    return c >= 'a' && c <= 'z';
}

static int is_alnum(Py_UCS1 c) {
    return is_digit(c) || is_letter(c);
}

static int is_hex(Py_UCS1 c) {
    Py_UCS1 lower = c | 0x20;
    return is_digit(c) || (lower >= 'a' && lower <= 'f');
}

/* Where the run of hex digits starting at `at` ends. */
static Py_ssize_t hex_run_end(const Py_UCS1 *s, Py_ssize_t at, Py_ssize_t end) {
    while (at < end && is_hex(s[at]))
        at++;
    return at;
}

/* [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}: fixed length, no boundary checks (it can
 * start in the middle of a word). Where the match ends, or -1. */
static Py_ssize_t match_uuid(const Py_UCS1 *s, Py_ssize_t at, Py_ssize_t end) {
    if (end - at < 36)
        return -1;
    for (Py_ssize_t k = 0; k < 36; k++) {
        int dash = k == 8 || k == 13 || k == 18 || k == 23;
        if (dash ? s[at + k] != '-' : !is_hex(s[at + k]))
            return -1;
    }
    return at + 36;
}

/* (?<![0-9a-z])(?:0x)?[0-9a-f]{8,}(?![0-9a-z]). Giving back hex digits never helps: the next character
 * would be a hex digit, which the lookahead refuses; so only the whole run can match. Nor does giving back
 * the 0x: without it the run would be the lone '0' before the 'x'. */
static Py_ssize_t match_hex(const Py_UCS1 *s, Py_ssize_t at, Py_ssize_t end) {
    if (at > 0 && is_alnum(s[at - 1])) /* the lookbehind sees the string, even a replaced part of it */
        return -1;
    Py_ssize_t digits = at;
    if (end - at >= 2 && s[at] == '0' && (s[at + 1] | 0x20) == 'x')
        digits = at + 2;
    Py_ssize_t stop = hex_run_end(s, digits, end);
    if (stop - digits < 8 || (stop < end && is_alnum(s[stop])))
        return -1;
    return stop;
}

/* (?:tmp\.)?(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{6,}: the lookaheads ask for a digit and a
 * letter within the run of letters and digits, and the greedy run takes all of it. Giving back the tmp.
 * never helps: without it the run would be the "tmp" before the dot, 3 long. So a tmp. can make this match
 * in the middle of a word (xtmp.abc123), where the run alone would not. */
static Py_ssize_t match_rand(const Py_UCS1 *s, Py_ssize_t at, Py_ssize_t end) {
    Py_ssize_t run = at;
    if (end - at >= 4 && (s[at] | 0x20) == 't' && (s[at + 1] | 0x20) == 'm' && (s[at + 2] | 0x20) == 'p' &&
        s[at + 3] == '.')
        run = at + 4;
    int digit = 0, letter = 0;
    Py_ssize_t stop = run;
    for (; stop < end && is_alnum(s[stop]); stop++) {
        digit |= is_digit(s[stop]);
        letter |= is_letter(s[stop]);
    }
    return stop - run >= 6 && digit && letter ? stop : -1;
}

/* \d+ */
static Py_ssize_t match_number(const Py_UCS1 *s, Py_ssize_t at, Py_ssize_t end) {
    Py_ssize_t stop = at;
    while (stop < end && is_digit(s[stop]))
        stop++;
    return stop > at ? stop : -1;
}

/* Writes the scan of s[0:end] to `out` and returns its length. `out` has room for 3 * end characters: the
 * shortest replaced text, one digit, becomes the 3 of <n>, and nothing else grows. */
static Py_ssize_t scan(const Py_UCS1 *s, Py_ssize_t end, char *out) {
    Py_ssize_t at = 0, length = 0;
    while (at < end) {
        const char *placeholder;
        Py_ssize_t stop;
        if ((stop = match_uuid(s, at, end)) >= 0)
            placeholder = "<uuid>";
        else if ((stop = match_hex(s, at, end)) >= 0)
            placeholder = "<hex>";
        else if ((stop = match_rand(s, at, end)) >= 0)
            placeholder = "<rand>";
        else if ((stop = match_number(s, at, end)) >= 0)
            placeholder = "<n>";
        else {
            out[length++] = (char)s[at++];
            continue;
        }
        size_t size = strlen(placeholder);
        memcpy(out + length, placeholder, size);
        length += (Py_ssize_t)size;
        at = stop;
    }
    return length;
}

PyDoc_STRVAR(volatile_placeholders_doc,
"volatile_placeholders(value)\n"
"--\n\n"
"An ASCII str with its volatile values replaced by <uuid>, <hex>, <rand> and <n>: equal to\n"
"scoring.tokens._VOLATILE.sub(lambda m: f\"<{m.lastgroup}>\", value). ValueError for a str that is\n"
"not ASCII (the regex's classes take some other characters there: use the regex).");

static PyObject *volatile_placeholders(PyObject *module, PyObject *value) {
    if (!PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "volatile_placeholders takes a str");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(value)) {
        PyErr_SetString(PyExc_ValueError, "volatile_placeholders takes an ASCII str");
        return NULL;
    }
    const Py_UCS1 *s = PyUnicode_1BYTE_DATA(value);
    Py_ssize_t end = PyUnicode_GET_LENGTH(value);
    if (end > (PY_SSIZE_T_MAX - 1) / 3)
        return PyErr_NoMemory();
    char *out = PyMem_Malloc((size_t)(3 * end + 1));
    if (out == NULL)
        return PyErr_NoMemory();
    Py_ssize_t length = scan(s, end, out);
    PyObject *result;
    if (length == end && memcmp(out, s, (size_t)end) == 0) {
        result = Py_NewRef(value); /* nothing replaced (no digit, uuid or hex id in it): the value itself */
    } else {
        result = PyUnicode_New(length, 127);
        if (result != NULL)
            memcpy(PyUnicode_1BYTE_DATA(result), out, (size_t)length);
    }
    PyMem_Free(out);
    return result;
}

static PyMethodDef methods[] = {
    {"volatile_placeholders", volatile_placeholders, METH_O, volatile_placeholders_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_volatile", "tokens.py's volatile-value placeholders for ASCII (see _volatile.c).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__volatile(void) {
    return PyModule_Create(&module);
}
