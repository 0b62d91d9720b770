/* The auditor's per-record kernels in C (the extension tradex.audit._audit_native).
 *
 * chain_check: the SHA-256 hash chain of a batch of wire records (see
 * tradex/schemas/chain.py): for every record i with chain[i] >= 0, prev[i] being the
 * envelope's prev_hash (read here: the envelope is the first field of every record),
 *     ok_hash  = SHA-256(prev[i] || values[o[i] + 5 : o[i + 1] - 32]) == the last 32 bytes
 *     ok_link  = prev[i] == heads[chain[i]]   (or, for a chain whose start is not held,
 *                                              any prev at its first record)
 * and heads[chain[i]] becomes the record's own trailing hash. Returns a uint8 status per
 * record: 0 intact, CHAIN_BAD_HASH | CHAIN_BAD_LINK, CHAIN_TOO_SHORT; 0 for records with
 * chain[i] < 0 (not chained). The caller keeps heads and started between batches.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "sha256.h"
#include "wire_prims.h"

#define HEADER_SIZE 5
#define HASH_SIZE 32
#define CHAIN_BAD_HASH 1
#define CHAIN_BAD_LINK 2
#define CHAIN_TOO_SHORT 4
#define CHAIN_BAD_ENVELOPE 8
#define ENVELOPE_STRINGS_BEFORE_TIME 2 /* event_id, type */
#define ENVELOPE_STRINGS_AFTER_TIME 4  /* causation_id, correlation_id, trace_parent, producer */

/* One Avro long (zig-zag varint) at *p below end; 0 if malformed (as the codec refuses). */
static int read_long(const unsigned char **p, const unsigned char *end, int64_t *out) {
    Py_ssize_t at = 0;
    if (tx_get_long(*p, end - *p, &at, out) != TX_LONG_OK) return 0;
    *p += at;
    return 1;
}
static int skip_string(const unsigned char **p, const unsigned char *end) {
    int64_t size;
    if (!read_long(p, end, &size) || size < 0 || size > end - *p) return 0;
    *p += size;
    return 1;
}

/* Where the envelope's prev_hash is in a record's body (NULL: malformed envelope). */
static const unsigned char *envelope_prev_hash(const unsigned char *body, const unsigned char *end) {
    const unsigned char *p = body;
    int64_t ignored;
    for (int k = 0; k < ENVELOPE_STRINGS_BEFORE_TIME; k++)
        if (!skip_string(&p, end)) return NULL;
    if (!read_long(&p, end, &ignored)) return NULL;
    for (int k = 0; k < ENVELOPE_STRINGS_AFTER_TIME; k++)
        if (!skip_string(&p, end)) return NULL;
    if (!read_long(&p, end, &ignored)) return NULL;
    if (end - p < HASH_SIZE) return NULL;
    return p;
}

#include "chain_hash.h"

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, const char *what,
                      Py_ssize_t itemsize) {
    if (PyObject_GetBuffer(obj, view, writable ? PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS
                                               : PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len % itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes is not a whole number of items", what,
                     view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* chain_check(values, value_offsets int64[n + 1], chain int32[n],
 *             heads uint8[g * 32] (updated), started uint8[g] (updated: 0 = its start is
 *             held, link to zeros; 2 = start not held, accept the first prev; 1 = going))
 *   -> bytes: uint8 status per record */
static PyObject *chain_check(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *o_values, *o_offsets, *o_chain, *o_heads, *o_started;
    if (!PyArg_ParseTuple(args, "OOOOO", &o_values, &o_offsets, &o_chain, &o_heads, &o_started))
        return NULL;
    Py_buffer values, offsets, chain, heads, started;
    int got = 0;
    PyObject *result = NULL;
    if (get_buffer(o_values, &values, 0, "values", 1) < 0) goto done;
    got = 1;
    if (get_buffer(o_offsets, &offsets, 0, "value_offsets", 8) < 0) goto done;
    got = 2;
    got = 3;
    if (get_buffer(o_chain, &chain, 0, "chain", 4) < 0) goto done;
    got = 4;
    if (get_buffer(o_heads, &heads, 1, "heads", HASH_SIZE) < 0) goto done;
    got = 5;
    if (get_buffer(o_started, &started, 1, "started", 1) < 0) goto done;
    got = 6;
    Py_ssize_t n = offsets.len / 8 - 1;
    Py_ssize_t g = heads.len / HASH_SIZE;
    if (n < 0 || chain.len / 4 != n || started.len != g) {
        PyErr_SetString(PyExc_ValueError, "chain_check: arrays of different lengths");
        goto done;
    }
    const int64_t *o = (const int64_t *)offsets.buf;
    const int32_t *c = (const int32_t *)chain.buf;
    const unsigned char *v = (const unsigned char *)values.buf;
    unsigned char *h = (unsigned char *)heads.buf;
    unsigned char *s = (unsigned char *)started.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t k = c[i];
        if (k >= g) {
            PyErr_Format(PyExc_ValueError, "chain_check: chain %d of record %zd >= %zd", k, i, g);
            goto done;
        }
        if (o[i] < 0 || o[i] > o[i + 1] || o[i + 1] > values.len) {
            PyErr_Format(PyExc_ValueError, "chain_check: bad value offsets at record %zd", i);
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize(NULL, n);
    if (result == NULL) goto done;
    unsigned char *status = (unsigned char *)PyBytes_AS_STRING(result);
    memset(status, 0, (size_t)n);
    Py_BEGIN_ALLOW_THREADS
    unsigned char digest[HASH_SIZE];
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t k = c[i];
        if (k < 0) continue;
        const unsigned char *wire = v + o[i];
        int64_t size = o[i + 1] - o[i];
        unsigned char *head = h + (size_t)k * HASH_SIZE;
        if (size < HEADER_SIZE + HASH_SIZE) {
            status[i] = CHAIN_TOO_SHORT;
            continue; /* the head stays: the next record is checked against it */
        }
        const unsigned char *mine =
            envelope_prev_hash(wire + HEADER_SIZE, wire + size - HASH_SIZE);
        if (mine == NULL) {
            status[i] = CHAIN_BAD_ENVELOPE;
            /* as verify_chain: the next record links to this one's trailing hash, so one
             * damaged envelope does not flag the intact record after it */
            memcpy(head, wire + size - HASH_SIZE, HASH_SIZE);
            s[k] = 1;
            continue;
        }
        unsigned char st = 0;
        if (s[k] == 2) {
            s[k] = 1;
        } else {
            s[k] = 1;
            if (memcmp(mine, head, HASH_SIZE) != 0) st |= CHAIN_BAD_LINK;
        }
        chain_hash(mine, wire + HEADER_SIZE, (size_t)(size - HEADER_SIZE - HASH_SIZE), digest);
        if (memcmp(digest, wire + size - HASH_SIZE, HASH_SIZE) != 0) st |= CHAIN_BAD_HASH;
        memcpy(head, wire + size - HASH_SIZE, HASH_SIZE);
        status[i] = st;
    }
    Py_END_ALLOW_THREADS
done:
    if (got >= 6) PyBuffer_Release(&started);
    if (got >= 5) PyBuffer_Release(&heads);
    if (got >= 4) PyBuffer_Release(&chain);
    if (got >= 2) PyBuffer_Release(&offsets);
    if (got >= 1) PyBuffer_Release(&values);
    return result;
}

static PyMethodDef methods[] = {
    {"chain_check", chain_check, METH_VARARGS,
     "chain_check(values, value_offsets, chain, heads, started) -> status per record"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tradex.audit._audit_native", "The auditor's kernels in C.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__audit_native(void) {
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    if (PyModule_AddIntConstant(module, "CHAIN_BAD_HASH", CHAIN_BAD_HASH) < 0 ||
        PyModule_AddIntConstant(module, "CHAIN_BAD_LINK", CHAIN_BAD_LINK) < 0 ||
        PyModule_AddIntConstant(module, "CHAIN_TOO_SHORT", CHAIN_TOO_SHORT) < 0 ||
        PyModule_AddIntConstant(module, "CHAIN_BAD_ENVELOPE", CHAIN_BAD_ENVELOPE) < 0 ||
        PyModule_AddStringConstant(module, "SHA256_BACKEND", SHA256_BACKEND) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
