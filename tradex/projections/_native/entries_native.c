/* The redis read model's account channel entries packed in C (the extension
 * tradex.projections._entries_native; its Python side and contract:
 * tradex/projections/entry_kernel.py, tested against msgpack's Packer in
 * tests/projections/test_entry_kernel.py).
 *
 * pack_entries: msgpack arrays [type, field..., [[asset, available, held], ...]] written
 * from int64 columns, byte for byte what msgpack.Packer().pack writes for the same Python
 * ints and str (str8 allowed). pack_stream_ops: the batch script's xadd ops around them,
 * ["xadd", key, trim, "<seq>-0", entry, ...] per stream, strings as msgpack raw (no str8:
 * what Packer(use_bin_type=False) writes, as the rest of the payload).
 *
 * Every argument is a contiguous buffer of int64 (or bytes for pools and entries); the
 * Python side checks dtypes and shapes, the C side every index against its buffer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define FIELD_NONE 0
#define FIELD_INT 1
#define FIELD_STR 2

typedef struct {
    unsigned char *p;
    Py_ssize_t at;
} out_t;

static Py_ssize_t int_size(int64_t x) {
    if (x < -32) {
        if (x < -32768) return x >= INT32_MIN ? 5 : 9;
        return x >= -128 ? 2 : 3;
    }
    if (x < 128) return 1;
    if (x < 65536) return x < 256 ? 2 : 3;
    return x < 4294967296LL ? 5 : 9;
}
static Py_ssize_t str_size(Py_ssize_t n) {
    if (n < 32) return 1 + n;
    if (n < 256) return 2 + n;
    if (n < 65536) return 3 + n;
    return 5 + n;
}
static Py_ssize_t raw_size(Py_ssize_t n) { return (n < 32 ? 1 : n < 65536 ? 3 : 5) + n; }
static Py_ssize_t array_size(Py_ssize_t n) { return n < 16 ? 1 : n < 65536 ? 3 : 5; }

static void put_be(out_t *o, uint64_t x, int width) {
    /* big-endian, one store per width (a byte loop costs most of an entry) */
    unsigned char *p = o->p + o->at;
    if (width == 8) { uint64_t v = __builtin_bswap64(x); memcpy(p, &v, 8); }
    else if (width == 4) { uint32_t v = __builtin_bswap32((uint32_t)x); memcpy(p, &v, 4); }
    else if (width == 2) { uint16_t v = __builtin_bswap16((uint16_t)x); memcpy(p, &v, 2); }
    else p[0] = (unsigned char)x;
    o->at += width;
}
static void put_int(out_t *o, int64_t x) {
    if (x < -32) {
        if (x < -32768) {
            if (x >= INT32_MIN) { o->p[o->at++] = 0xd2; put_be(o, (uint64_t)x, 4); }
            else { o->p[o->at++] = 0xd3; put_be(o, (uint64_t)x, 8); }
        } else if (x >= -128) { o->p[o->at++] = 0xd0; put_be(o, (uint64_t)x, 1); }
        else { o->p[o->at++] = 0xd1; put_be(o, (uint64_t)x, 2); }
    } else if (x < 128) {
        o->p[o->at++] = (unsigned char)x; /* positive or negative fixint */
    } else if (x < 256) { o->p[o->at++] = 0xcc; put_be(o, (uint64_t)x, 1); }
    else if (x < 65536) { o->p[o->at++] = 0xcd; put_be(o, (uint64_t)x, 2); }
    else if (x < 4294967296LL) { o->p[o->at++] = 0xce; put_be(o, (uint64_t)x, 4); }
    else { o->p[o->at++] = 0xcf; put_be(o, (uint64_t)x, 8); }
}
static void put_bytes(out_t *o, const unsigned char *s, Py_ssize_t n) {
    memcpy(o->p + o->at, s, (size_t)n);
    o->at += n;
}
static void put_str(out_t *o, const unsigned char *s, Py_ssize_t n) {
    if (n < 32) o->p[o->at++] = (unsigned char)(0xa0 | n);
    else if (n < 256) { o->p[o->at++] = 0xd9; put_be(o, (uint64_t)n, 1); }
    else if (n < 65536) { o->p[o->at++] = 0xda; put_be(o, (uint64_t)n, 2); }
    else { o->p[o->at++] = 0xdb; put_be(o, (uint64_t)n, 4); }
    put_bytes(o, s, n);
}
static void put_raw(out_t *o, const unsigned char *s, Py_ssize_t n) {
    if (n < 32) o->p[o->at++] = (unsigned char)(0xa0 | n);
    else if (n < 65536) { o->p[o->at++] = 0xda; put_be(o, (uint64_t)n, 2); }
    else { o->p[o->at++] = 0xdb; put_be(o, (uint64_t)n, 4); }
    put_bytes(o, s, n);
}
static void put_array(out_t *o, Py_ssize_t n) {
    if (n < 16) o->p[o->at++] = (unsigned char)(0x90 | n);
    else if (n < 65536) { o->p[o->at++] = 0xdc; put_be(o, (uint64_t)n, 2); }
    else { o->p[o->at++] = 0xdd; put_be(o, (uint64_t)n, 4); }
}

/* A string range [start, end) of a pool: checked. */
static int range_ok(int64_t start, int64_t end, Py_ssize_t pool_len) {
    return 0 <= start && start <= end && end <= pool_len;
}

#define N64(b) ((b).len / (Py_ssize_t)sizeof(int64_t))
#define I64(b) ((const int64_t *)(b).buf)

static PyObject *fail(const char *what) {
    PyErr_SetString(PyExc_ValueError, what);
    return NULL;
}

static PyObject *pack_entries(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer pool, kinds, names, kind_row, value_a, value_b, after_begin, after_end,
        after_start, after_end_at, after_available, after_held;
    Py_ssize_t fields_max;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*y*y*n", &pool, &kinds, &names,
                          &kind_row, &value_a, &value_b, &after_begin, &after_end,
                          &after_start, &after_end_at, &after_available, &after_held,
                          &fields_max))
        return NULL;
    Py_buffer *all[] = {&pool, &kinds, &names, &kind_row, &value_a, &value_b, &after_begin,
                        &after_end, &after_start, &after_end_at, &after_available, &after_held};
    PyObject *result = NULL, *data = NULL, *offsets_obj = NULL;
    const unsigned char *s = (const unsigned char *)pool.buf;
    Py_ssize_t n = N64(kind_row), types = N64(names) / 2, afters = N64(after_start);
    const int64_t *K = I64(kinds), *NM = I64(names), *T = I64(kind_row), *A = I64(value_a),
                  *B = I64(value_b), *AB = I64(after_begin), *AE = I64(after_end),
                  *AS = I64(after_start), *AZ = I64(after_end_at), *AV = I64(after_available),
                  *AH = I64(after_held);
    if (fields_max < 0 || N64(kinds) != types * fields_max || N64(value_a) != n * fields_max ||
        N64(value_b) != n * fields_max || N64(after_begin) != n || N64(after_end) != n ||
        N64(after_end_at) != afters || N64(after_available) != afters ||
        N64(after_held) != afters) {
        fail("pack_entries: shapes do not agree");
        goto done;
    }
    offsets_obj = PyBytes_FromStringAndSize(NULL, (n + 1) * (Py_ssize_t)sizeof(int64_t));
    if (offsets_obj == NULL) goto done;
    int64_t *offsets = (int64_t *)PyBytes_AS_STRING(offsets_obj);
    offsets[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) { /* sizes, every index checked */
        int64_t t = T[i];
        if (t < 0 || t >= types || !range_ok(NM[2 * t], NM[2 * t + 1], pool.len)) {
            fail("pack_entries: a type out of range");
            goto done;
        }
        Py_ssize_t count = 2, size = str_size(NM[2 * t + 1] - NM[2 * t]);
        for (Py_ssize_t f = 0; f < fields_max; f++) {
            int64_t kind = K[t * fields_max + f], a = A[i * fields_max + f];
            if (kind == FIELD_INT) { size += int_size(a); count++; }
            else if (kind == FIELD_STR) {
                int64_t b = B[i * fields_max + f];
                if (!range_ok(a, b, pool.len)) { fail("pack_entries: a string out of range"); goto done; }
                size += str_size(b - a);
                count++;
            } else if (kind != FIELD_NONE) { fail("pack_entries: a field kind"); goto done; }
        }
        if (AB[i] < 0 || AB[i] > AE[i] || AE[i] > afters) {
            fail("pack_entries: balances out of range");
            goto done;
        }
        size += array_size(count) + array_size(AE[i] - AB[i]);
        for (int64_t j = AB[i]; j < AE[i]; j++) {
            if (!range_ok(AS[j], AZ[j], pool.len)) { fail("pack_entries: an asset out of range"); goto done; }
            size += 1 + str_size(AZ[j] - AS[j]) + int_size(AV[j]) + int_size(AH[j]);
        }
        offsets[i + 1] = offsets[i] + size;
    }
    data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)offsets[n]);
    if (data == NULL) goto done;
    out_t o = {(unsigned char *)PyBytes_AS_STRING(data), 0};
    for (Py_ssize_t i = 0; i < n; i++) { /* bytes */
        int64_t t = T[i];
        Py_ssize_t count = 2;
        for (Py_ssize_t f = 0; f < fields_max; f++) count += K[t * fields_max + f] != FIELD_NONE;
        put_array(&o, count);
        put_str(&o, s + NM[2 * t], NM[2 * t + 1] - NM[2 * t]);
        for (Py_ssize_t f = 0; f < fields_max; f++) {
            int64_t kind = K[t * fields_max + f], a = A[i * fields_max + f];
            if (kind == FIELD_INT) put_int(&o, a);
            else if (kind == FIELD_STR) put_str(&o, s + a, B[i * fields_max + f] - a);
        }
        put_array(&o, AE[i] - AB[i]);
        for (int64_t j = AB[i]; j < AE[i]; j++) {
            o.p[o.at++] = 0x93;
            put_str(&o, s + AS[j], AZ[j] - AS[j]);
            put_int(&o, AV[j]);
            put_int(&o, AH[j]);
        }
        if (o.at != offsets[i + 1]) { fail("pack_entries: an entry's size"); goto done; }
    }
    result = PyTuple_Pack(2, data, offsets_obj);
done:
    Py_XDECREF(data);
    Py_XDECREF(offsets_obj);
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) PyBuffer_Release(all[k]);
    return result;
}

static Py_ssize_t digits(int64_t x) {
    Py_ssize_t count = 1;
    while (x >= 10) { x /= 10; count++; }
    return count;
}

static PyObject *pack_stream_ops(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer entries, entry_offsets, seq, pool, op_name, stream_key, stream_trim, stream_count;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*", &entries, &entry_offsets, &seq, &pool,
                          &op_name, &stream_key, &stream_trim, &stream_count))
        return NULL;
    Py_buffer *all[] = {&entries, &entry_offsets, &seq, &pool, &op_name, &stream_key,
                        &stream_trim, &stream_count};
    PyObject *data = NULL;
    const unsigned char *e = (const unsigned char *)entries.buf, *s = (const unsigned char *)pool.buf;
    const int64_t *EO = I64(entry_offsets), *SQ = I64(seq), *OP = I64(op_name),
                  *KY = I64(stream_key), *TR = I64(stream_trim), *CN = I64(stream_count);
    Py_ssize_t n = N64(seq), streams = N64(stream_count), size = 0, total = 0;
    if (N64(entry_offsets) != n + 1 || N64(op_name) != 2 || N64(stream_key) != 2 * streams ||
        N64(stream_trim) != 2 * streams || !range_ok(OP[0], OP[1], pool.len)) {
        fail("pack_stream_ops: shapes do not agree");
        goto done;
    }
    if (n && (EO[0] != 0 || EO[n] > entries.len)) { fail("pack_stream_ops: entries"); goto done; }
    for (Py_ssize_t k = 0; k < streams; k++) {
        if (CN[k] <= 0 || !range_ok(KY[2 * k], KY[2 * k + 1], pool.len) ||
            !range_ok(TR[2 * k], TR[2 * k + 1], pool.len)) {
            fail("pack_stream_ops: a stream out of range");
            goto done;
        }
        total += CN[k];
        size += array_size(3 + 2 * CN[k]) + raw_size(OP[1] - OP[0]) +
                raw_size(KY[2 * k + 1] - KY[2 * k]) + raw_size(TR[2 * k + 1] - TR[2 * k]);
    }
    if (total != n) { fail("pack_stream_ops: entries and streams do not agree"); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (SQ[i] <= 0 || EO[i] > EO[i + 1]) { fail("pack_stream_ops: an entry"); goto done; }
        size += raw_size(digits(SQ[i]) + 2) + raw_size(EO[i + 1] - EO[i]);
    }
    data = PyBytes_FromStringAndSize(NULL, size);
    if (data == NULL) goto done;
    out_t o = {(unsigned char *)PyBytes_AS_STRING(data), 0};
    char id[32];
    Py_ssize_t i = 0;
    for (Py_ssize_t k = 0; k < streams; k++) {
        put_array(&o, 3 + 2 * CN[k]);
        put_raw(&o, s + OP[0], OP[1] - OP[0]);
        put_raw(&o, s + KY[2 * k], KY[2 * k + 1] - KY[2 * k]);
        put_raw(&o, s + TR[2 * k], TR[2 * k + 1] - TR[2 * k]);
        for (int64_t c = 0; c < CN[k]; c++, i++) {
            int length = snprintf(id, sizeof(id), "%lld-0", (long long)SQ[i]);
            put_raw(&o, (const unsigned char *)id, length);
            put_raw(&o, e + EO[i], EO[i + 1] - EO[i]);
        }
    }
    if (o.at != size) {
        Py_CLEAR(data);
        fail("pack_stream_ops: the ops' size");
    }
done:
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) PyBuffer_Release(all[k]);
    return data;
}

static PyMethodDef methods[] = {
    {"pack_entries", pack_entries, METH_VARARGS, "Account channel entries (see the module)."},
    {"pack_stream_ops", pack_stream_ops, METH_VARARGS, "The xadd ops around them."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_entries_native", "Account channel entries packed in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__entries_native(void) { return PyModule_Create(&module); }
