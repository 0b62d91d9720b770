/* tradex.schemas._native_codec: the Avro domain codec in C.
 *
 * A Program is built once per (schema, domain type) from a tree of op tuples that
 * tradex/schemas/compile_native.py generates from the .avsc schema; it then encodes a
 * domain NamedTuple (+ EnvelopeFields + prev_hash) into Confluent wire bytes with the
 * SHA-256 chain hash appended, or decodes wire bytes back into (Envelope, record, end).
 * The output is byte-identical to the pure-Python compiled twin (compile_writer.py /
 * compile_reader.py) and to fastavro; tests/schemas/test_native.py checks both.
 *
 * Op tuple: (code, src, index, arg, flag, obj, child, slots)
 *   code  OP_*                      src   SRC_* (encode: where the value comes from)
 *   index encode: item of the source tuple; decode: slot to fill (-1: read and drop)
 *   arg   FIXED: size; UNION: index of the null branch; ENUM: symbol count;
 *         ARRAY (decode): 1 if an item takes at least one byte
 *   flag  ARRAY (decode): 1 to return a tuple (rows), 0 a list
 *   obj   ENUM: dict symbol -> index (encode) / tuple of symbols (decode);
 *         RECORD: the NamedTuple type; SRC_CONST: the value
 *   child RECORD: the fields' ops; UNION/ARRAY: one op (the branch / the item)
 *   slots RECORD: fields of the NamedTuple
 *
 * Safety: every read is bounds-checked against the input; every loop over the input is
 * bounded by its size; records never exceed RECORD_SIZE_MAX; nesting of the program is
 * bounded by NESTING_MAX. Bad input raises ValueError / IndexError / TypeError /
 * OverflowError (the codec turns them into CodecError); nothing here aborts.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "columns.h"
#include "sha256.h"


#define RECORD_SIZE_MAX (1 << 20) /* = tradex.schemas.envelope.RECORD_SIZE_MAX */
#define HEADER_SIZE 5
#define HASH_SIZE 32
#define NESTING_MAX 32
#define ITEMS_MAX (1 << 20) /* items of a zero-size type in one block (compile_reader) */
#define BUF_INLINE 1024
#define OPS_MAX 4096 /* ops in one program level */

#include "chain_hash.h"
#include "wire_prims.h"

enum {
    OP_NULL = 0,
    OP_BOOLEAN = 1,
    OP_INT = 2,
    OP_LONG = 3,
    OP_STRING = 4,
    OP_BYTES = 5,
    OP_FIXED = 6,
    OP_ENUM = 7,
    OP_UNION = 8,
    OP_RECORD = 9,
    OP_ARRAY = 10,
    OP_CODES = 11
};
enum { SRC_ROW = 0, SRC_FIELDS = 1, SRC_PREV_HASH = 2, SRC_CONST = 3, SRC_SELF = 4, SRC_KINDS = 5 };

typedef struct Prog Prog;
typedef struct {
    int code;
    int src;
    Py_ssize_t index;
    Py_ssize_t arg;
    int flag;
    PyObject *obj; /* owned, may be NULL */
    Prog *child;   /* owned, may be NULL */
    PyObject *last; /* decode, OP_STRING: the ASCII str this op decoded last (owned, or NULL) */
} Op;

struct Prog {
    Py_ssize_t n;
    Py_ssize_t slots;
    Op *ops;
};

static void prog_free(Prog *prog) {
    if (prog == NULL) return;
    for (Py_ssize_t i = 0; i < prog->n; i++) {
        Py_XDECREF(prog->ops[i].obj);
        Py_XDECREF(prog->ops[i].last);
        prog_free(prog->ops[i].child);
    }
    PyMem_Free(prog->ops);
    PyMem_Free(prog);
}

/* -- building a program from op tuples ---------------------------------------------------- */

static Prog *prog_build(PyObject *ops, Py_ssize_t slots, int decode, int depth);

static int op_build(Op *op, PyObject *item, int decode, int depth) {
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 8) {
        PyErr_SetString(PyExc_ValueError, "an op is a tuple of 8 items");
        return -1;
    }
    long code = PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
    long src = PyLong_AsLong(PyTuple_GET_ITEM(item, 1));
    Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 2));
    Py_ssize_t arg = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 3));
    long flag = PyLong_AsLong(PyTuple_GET_ITEM(item, 4));
    Py_ssize_t slots = PyLong_AsSsize_t(PyTuple_GET_ITEM(item, 7));
    if (PyErr_Occurred()) return -1;
    if (code < 0 || code >= OP_CODES || src < 0 || src >= SRC_KINDS || arg < 0 || slots < 0) {
        PyErr_SetString(PyExc_ValueError, "op code, source, arg or slots out of range");
        return -1;
    }
    op->code = (int)code;
    op->src = (int)src;
    op->index = index;
    op->arg = arg;
    op->flag = flag != 0;
    PyObject *obj = PyTuple_GET_ITEM(item, 5);
    PyObject *child = PyTuple_GET_ITEM(item, 6);
    if (obj != Py_None) {
        Py_INCREF(obj);
        op->obj = obj;
    }
    if (code == OP_ENUM) {
        if (decode ? !(PyTuple_Check(obj) && PyTuple_GET_SIZE(obj) == arg) : !PyDict_Check(obj)) {
            PyErr_SetString(PyExc_ValueError, "an enum op needs its symbols");
            return -1;
        }
        if (decode) {
            for (Py_ssize_t i = 0; i < arg; i++) {
                if (!PyUnicode_Check(PyTuple_GET_ITEM(obj, i))) {
                    PyErr_SetString(PyExc_ValueError, "enum symbols are str");
                    return -1;
                }
            }
        }
    }
    if (code == OP_UNION && arg > 1) {
        PyErr_SetString(PyExc_ValueError, "a union's null branch is 0 or 1");
        return -1;
    }
    if (code == OP_RECORD && decode) {
        if (!(PyType_Check(obj) && PyType_IsSubtype((PyTypeObject *)obj, &PyTuple_Type))) {
            PyErr_SetString(PyExc_ValueError, "a record op needs a NamedTuple type");
            return -1;
        }
    }
    if (!decode && src == SRC_CONST && op->obj == NULL && code != OP_UNION && code != OP_NULL) {
        PyErr_SetString(PyExc_ValueError, "a constant op needs its value");
        return -1;
    }
    if (code == OP_RECORD || code == OP_UNION || code == OP_ARRAY) {
        if (!PyTuple_Check(child)) {
            PyErr_SetString(PyExc_ValueError, "record, union and array ops need children");
            return -1;
        }
        if (depth >= NESTING_MAX) {
            PyErr_SetString(PyExc_ValueError, "program nested too deep");
            return -1;
        }
        if (code != OP_RECORD && PyTuple_GET_SIZE(child) != 1) {
            PyErr_SetString(PyExc_ValueError, "union and array ops have one child");
            return -1;
        }
        Py_ssize_t child_slots = code == OP_RECORD ? slots : 1;
        op->child = prog_build(child, child_slots, decode, depth + 1);
        if (op->child == NULL) return -1;
        if (code != OP_RECORD) {
            Op *inner = &op->child->ops[0];
            if ((!decode && inner->src != SRC_SELF) || (decode && inner->index != 0)) {
                PyErr_SetString(PyExc_ValueError, "a union or array child reads its value");
                return -1;
            }
        }
    }
    return 0;
}

/* ``slots``: encode: size of the row the ops read (SRC_ROW index bound); decode: slots the
 * ops fill, each exactly once (checked here, so decoding never leaves a hole). */
static Prog *prog_build(PyObject *ops, Py_ssize_t slots, int decode, int depth) {
    if (!PyTuple_Check(ops) || PyTuple_GET_SIZE(ops) > OPS_MAX) {
        PyErr_SetString(PyExc_ValueError, "ops must be a tuple of at most OPS_MAX ops");
        return NULL;
    }
    Prog *prog = PyMem_Calloc(1, sizeof(Prog));
    if (prog == NULL) return (Prog *)PyErr_NoMemory();
    Py_ssize_t n = PyTuple_GET_SIZE(ops);
    prog->slots = slots;
    prog->ops = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(Op));
    if (prog->ops == NULL) {
        PyMem_Free(prog);
        return (Prog *)PyErr_NoMemory();
    }
    prog->n = n;
    char *filled = NULL;
    if (decode) {
        filled = PyMem_Calloc(slots > 0 ? (size_t)slots : 1, 1);
        if (filled == NULL) goto fail_memory;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Op *op = &prog->ops[i];
        if (op_build(op, PyTuple_GET_ITEM(ops, i), decode, depth) < 0) goto fail;
        if (decode) {
            if (op->index < -1 || op->index >= slots || (op->index >= 0 && filled[op->index])) {
                PyErr_SetString(PyExc_ValueError, "decode slot out of range or filled twice");
                goto fail;
            }
            if (op->index >= 0) filled[op->index] = 1;
        } else if (op->src == SRC_ROW && (op->index < 0 || op->index >= slots)) {
            PyErr_SetString(PyExc_ValueError, "encode source index out of the row");
            goto fail;
        }
    }
    if (decode) {
        for (Py_ssize_t i = 0; i < slots; i++) {
            if (!filled[i]) {
                PyErr_SetString(PyExc_ValueError, "a decode slot is never filled");
                goto fail;
            }
        }
        PyMem_Free(filled);
    }
    return prog;
fail_memory:
    PyErr_NoMemory();
fail:
    PyMem_Free(filled);
    prog_free(prog);
    return NULL;
}

/* -- encoding ------------------------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    Py_ssize_t n;
    Py_ssize_t cap;
    unsigned char inline_[BUF_INLINE];
} Buf;

typedef struct {
    PyObject *const *fields; /* EnvelopeFields items */
    Py_ssize_t fields_size;
    PyObject *prev_hash;
} Ctx;

static int buf_grow(Buf *b, Py_ssize_t need) {
    if (b->n + need <= b->cap) return 0;
    if (need > RECORD_SIZE_MAX || b->n + need > RECORD_SIZE_MAX + HEADER_SIZE + TX_VARINT_BYTES_MAX) {
        PyErr_SetString(PyExc_ValueError, "record exceeds RECORD_SIZE_MAX");
        return -1;
    }
    Py_ssize_t cap = b->cap * 2;
    if (cap < b->n + need) cap = b->n + need;
    unsigned char *p;
    if (b->p == b->inline_) {
        p = PyMem_Malloc((size_t)cap);
        if (p != NULL) memcpy(p, b->p, (size_t)b->n);
    } else {
        p = PyMem_Realloc(b->p, (size_t)cap);
    }
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int put_varint(Buf *b, uint64_t z) {
    if (b->n + TX_VARINT_BYTES_MAX > b->cap && buf_grow(b, TX_VARINT_BYTES_MAX) < 0) return -1;
    b->n += tx_put_varint(b->p + b->n, z);
    return 0;
}

static inline int put_bytes(Buf *b, const void *data, Py_ssize_t size) {
    if (b->n + size > b->cap && buf_grow(b, size) < 0) return -1;
    memcpy(b->p + b->n, data, (size_t)size);
    b->n += size;
    return 0;
}

/* The value of an exact int of one internal digit (|x| < 2**30: prices, quantities, ids,
 * fees ...) read in place; 0 for any other int (then PyLong_AsLongLongAndOverflow). */
static inline int compact_long(PyObject *v, long long *x) {
    if (!PyLong_CheckExact(v)) return 0;
#if PY_VERSION_HEX >= 0x030C0000
    if (!PyUnstable_Long_IsCompact((PyLongObject *)v)) return 0;
    *x = (long long)PyUnstable_Long_CompactValue((PyLongObject *)v);
#else
    Py_ssize_t size = Py_SIZE(v);
    if (size < -1 || size > 1) return 0;
    *x = (long long)size * (long long)((PyLongObject *)v)->ob_digit[0];
#endif
    return 1;
}

static int put_long(Buf *b, PyObject *v, int is_int) {
    long long x;
    if (compact_long(v, &x)) return put_varint(b, tx_zigzag((int64_t)x)); /* fits an int too */
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "expected an int, got %.100s", Py_TYPE(v)->tp_name);
        return -1;
    }
    int overflow = 0;
    x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "value does not fit an Avro long (int64)");
        return -1;
    }
    if (x == -1 && PyErr_Occurred()) return -1;
    if (is_int && (x < INT32_MIN || x > INT32_MAX)) {
        PyErr_SetString(PyExc_OverflowError, "value does not fit an Avro int (int32)");
        return -1;
    }
    return put_varint(b, tx_zigzag((int64_t)x));
}

/* bytes or fixed: any contiguous buffer; ``size`` >= 0: a fixed of that size */
static int put_buffer(Buf *b, PyObject *v, Py_ssize_t size) {
    const char *data;
    Py_ssize_t length;
    Py_buffer view;
    int has_view = 0;
    if (PyBytes_Check(v)) {
        data = PyBytes_AS_STRING(v);
        length = PyBytes_GET_SIZE(v);
    } else {
        if (PyObject_GetBuffer(v, &view, PyBUF_SIMPLE) < 0) return -1;
        has_view = 1;
        data = view.buf;
        length = view.len;
    }
    int status = 0;
    if (size >= 0 && length != size) {
        PyErr_Format(PyExc_ValueError, "fixed needs %zd bytes, got %zd", size, length);
        status = -1;
    } else if (size < 0) {
        status = put_varint(b, tx_zigzag(length));
    }
    if (status == 0) status = put_bytes(b, data, length);
    if (has_view) PyBuffer_Release(&view);
    return status;
}

static int enc_ops(Buf *b, const Prog *prog, PyObject *const *row, const Ctx *ctx, int depth);

/* A new reference to ``v`` as a tuple: itself when it is one (NamedTuple rows), else a
 * copy (a list could be resized by Python code that encoding calls, e.g. __bool__). */
static PyObject *as_tuple(PyObject *v, const char *what) {
    if (PyTuple_Check(v)) {
        Py_INCREF(v);
        return v;
    }
    if (!PySequence_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s must be a sequence, got %.100s", what,
                     Py_TYPE(v)->tp_name);
        return NULL;
    }
    return PySequence_Tuple(v);
}

static int enc_value(Buf *b, const Op *op, PyObject *v, const Ctx *ctx, int depth) {
    switch (op->code) {
    case OP_NULL:
        return 0;
    case OP_BOOLEAN: {
        int truth = PyObject_IsTrue(v);
        if (truth < 0) return -1;
        unsigned char byte = (unsigned char)truth;
        return put_bytes(b, &byte, 1);
    }
    case OP_INT:
        return put_long(b, v, 1);
    case OP_LONG:
        return put_long(b, v, 0);
    case OP_STRING: {
        if (!PyUnicode_Check(v)) {
            PyErr_Format(PyExc_TypeError, "expected a str, got %.100s", Py_TYPE(v)->tp_name);
            return -1;
        }
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(v, &size);
        if (text == NULL) return -1;
        if (put_varint(b, tx_zigzag(size)) < 0) return -1;
        return put_bytes(b, text, size);
    }
    case OP_BYTES:
        return put_buffer(b, v, -1);
    case OP_FIXED:
        return put_buffer(b, v, op->arg);
    case OP_ENUM: {
        PyObject *index = PyDict_GetItemWithError(op->obj, v); /* borrowed */
        if (index == NULL) {
            if (PyErr_Occurred()) return -1;
            if (PyUnicode_Check(v) && !PyUnicode_CheckExact(v)) {
                /* a str subclass whose hash is not its value's: look up its value */
                PyObject *text = PyUnicode_FromObject(v);
                if (text == NULL) return -1;
                index = PyDict_GetItemWithError(op->obj, text);
                Py_DECREF(text);
                if (index == NULL && PyErr_Occurred()) return -1;
            }
            if (index == NULL) {
                PyErr_SetObject(PyExc_KeyError, v);
                return -1;
            }
        }
        Py_ssize_t i = PyLong_AsSsize_t(index);
        if (i < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "negative enum index");
            return -1;
        }
        return put_varint(b, tx_zigzag(i));
    }
    case OP_UNION: {
        int is_null = v == Py_None;
        int branch = is_null ? (int)op->arg : 1 - (int)op->arg;
        if (put_varint(b, tx_zigzag(branch)) < 0) return -1;
        if (is_null) return 0;
        return enc_value(b, &op->child->ops[0], v, ctx, depth + 1);
    }
    case OP_RECORD: {
        PyObject *seq = as_tuple(v, "a record value (NamedTuple)");
        if (seq == NULL) return -1;
        int status = -1;
        if (PyTuple_GET_SIZE(seq) != op->child->slots) {
            PyErr_Format(PyExc_ValueError, "a row of %zd fields, expected %zd",
                         PyTuple_GET_SIZE(seq), op->child->slots);
        } else {
            status = enc_ops(b, op->child, ((PyTupleObject *)seq)->ob_item, ctx, depth + 1);
        }
        Py_DECREF(seq);
        return status;
    }
    case OP_ARRAY: {
        PyObject *seq = as_tuple(v, "an array value");
        if (seq == NULL) return -1;
        Py_ssize_t n = PyTuple_GET_SIZE(seq);
        int status = 0;
        if (n > 0) {
            status = put_varint(b, tx_zigzag(n));
            PyObject **items = ((PyTupleObject *)seq)->ob_item;
            const Op *item_op = &op->child->ops[0];
            for (Py_ssize_t i = 0; i < n && status == 0; i++) {
                status = enc_value(b, item_op, items[i], ctx, depth + 1);
            }
        }
        if (status == 0) {
            unsigned char end = 0;
            status = put_bytes(b, &end, 1);
        }
        Py_DECREF(seq);
        return status;
    }
    default:
        PyErr_SetString(PyExc_SystemError, "bad op code");
        return -1;
    }
}

static int enc_ops(Buf *b, const Prog *prog, PyObject *const *row, const Ctx *ctx, int depth) {
    if (depth > NESTING_MAX) {
        PyErr_SetString(PyExc_ValueError, "nested too deep");
        return -1;
    }
    for (Py_ssize_t i = 0; i < prog->n; i++) {
        const Op *op = &prog->ops[i];
        PyObject *v;
        switch (op->src) {
        case SRC_ROW:
            v = row[op->index];
            break;
        case SRC_FIELDS:
            if (op->index < 0 || op->index >= ctx->fields_size) {
                PyErr_SetString(PyExc_SystemError, "envelope field index out of range");
                return -1;
            }
            v = ctx->fields[op->index];
            break;
        case SRC_PREV_HASH:
            v = ctx->prev_hash;
            break;
        case SRC_CONST:
            v = op->obj != NULL ? op->obj : Py_None;
            break;
        default:
            PyErr_SetString(PyExc_SystemError, "bad op source");
            return -1;
        }
        if (enc_value(b, op, v, ctx, depth) < 0) return -1;
    }
    return 0;
}

/* -- decoding ------------------------------------------------------------------------------- */

#define RECENT_MAX 4 /* strings of one record a later field may repeat (command id ...) */

typedef struct {
    const unsigned char *d;
    Py_ssize_t n;
    Py_ssize_t p;
    int recent_n;
    struct {
        Py_ssize_t at, size;
        PyObject *text; /* owned until reader_release */
    } recent[RECENT_MAX];
} Reader;

static void reader_release(Reader *r) {
    for (int i = 0; i < r->recent_n; i++) Py_DECREF(r->recent[i].text);
    r->recent_n = 0;
}

/* A str of the ``size`` UTF-8 bytes at ``start``. Strings repeat: an envelope's type and
 * producer from one record to the next (``op->last``), a command id as causation,
 * correlation and command_id of one record (``r->recent``); a repeat is the same object
 * again (immutable, equal value) instead of a new one decoded and later freed. */
static PyObject *dec_string(Reader *r, Op *op, const char *start, Py_ssize_t size) {
    if (size == 0) return PyUnicode_DecodeUTF8(start, 0, NULL); /* the shared empty str */
    PyObject *text = op->last;
    if (text != NULL && PyUnicode_GET_LENGTH(text) == size &&
        memcmp(PyUnicode_DATA(text), start, (size_t)size) == 0) {
        Py_INCREF(text);
        return text;
    }
    for (int i = 0; i < r->recent_n; i++) {
        if (r->recent[i].size == size &&
            memcmp(r->d + r->recent[i].at, start, (size_t)size) == 0) {
            text = r->recent[i].text;
            Py_INCREF(text);
            return text;
        }
    }
    text = PyUnicode_DecodeUTF8(start, size, NULL);
    if (text == NULL) return NULL;
    if (r->recent_n < RECENT_MAX) {
        r->recent[r->recent_n].at = (const unsigned char *)start - r->d;
        r->recent[r->recent_n].size = size;
        Py_INCREF(text);
        r->recent[r->recent_n].text = text;
        r->recent_n++;
    }
    if (PyUnicode_IS_ASCII(text)) { /* its UTF-8 bytes are its data: comparable above */
        Py_INCREF(text);
        Py_XSETREF(op->last, text);
    }
    return text;
}

static int truncated(void) {
    PyErr_SetString(PyExc_IndexError, "data ends inside a value (truncated)");
    return -1;
}

static inline int get_varint(Reader *r, int64_t *out) {
    switch (tx_get_long(r->d, r->n, &r->p, out)) {
    case TX_LONG_OK:
        return 0;
    case TX_LONG_TRUNCATED:
        return truncated();
    default:
        PyErr_SetString(PyExc_ValueError, "varint longer than 10 bytes or beyond 64 bits");
        return -1;
    }
}

static int get_length(Reader *r, Py_ssize_t *out) {
    int64_t length;
    if (get_varint(r, &length) < 0) return -1;
    if (length < 0) {
        PyErr_Format(PyExc_ValueError, "negative length %lld", (long long)length);
        return -1;
    }
    if (length > r->n - r->p) return truncated();
    *out = (Py_ssize_t)length;
    return 0;
}

static PyObject *dec_value(Reader *r, const Op *op, int depth);

static PyObject *dec_record(Reader *r, const Op *op, int depth) {
    const Prog *prog = op->child;
    PyTypeObject *type = (PyTypeObject *)op->obj;
    PyObject *row = type->tp_alloc(type, prog->slots);
    if (row == NULL) return NULL;
    for (Py_ssize_t i = 0; i < prog->n; i++) {
        const Op *field = &prog->ops[i];
        PyObject *v = dec_value(r, field, depth + 1);
        if (v == NULL) {
            Py_DECREF(row);
            return NULL;
        }
        if (field->index >= 0) {
            PyTuple_SET_ITEM(row, field->index, v);
        } else {
            Py_DECREF(v);
        }
    }
    return row;
}

static PyObject *dec_array(Reader *r, const Op *op, int depth) {
    PyObject *list = PyList_New(0);
    if (list == NULL) return NULL;
    const Op *item_op = &op->child->ops[0];
    Py_ssize_t blocks_max = r->n; /* every block takes at least one byte */
    for (Py_ssize_t block = 0; block <= blocks_max; block++) {
        int64_t count;
        if (get_varint(r, &count) < 0) goto fail;
        if (count < 0) {
            int64_t size;
            if (count == INT64_MIN) {
                PyErr_SetString(PyExc_ValueError, "block count out of range");
                goto fail;
            }
            count = -count;
            if (get_varint(r, &size) < 0) goto fail;
        }
        if (count == 0) {
            if (op->flag) {
                PyObject *tuple = PyList_AsTuple(list);
                Py_DECREF(list);
                return tuple;
            }
            return list;
        }
        int64_t bound = op->arg ? (int64_t)(r->n - r->p) : ITEMS_MAX;
        if (count > bound) {
            PyErr_Format(PyExc_ValueError, "block of %lld items exceeds the data", (long long)count);
            goto fail;
        }
        for (int64_t i = 0; i < count; i++) {
            PyObject *item = dec_value(r, item_op, depth + 1);
            if (item == NULL) goto fail;
            int status = PyList_Append(list, item);
            Py_DECREF(item);
            if (status < 0) goto fail;
        }
    }
    PyErr_SetString(PyExc_ValueError, "array without its end");
fail:
    Py_DECREF(list);
    return NULL;
}

static PyObject *dec_value(Reader *r, const Op *op, int depth) {
    if (depth > NESTING_MAX) {
        PyErr_SetString(PyExc_ValueError, "nested too deep");
        return NULL;
    }
    switch (op->code) {
    case OP_NULL:
        Py_RETURN_NONE;
    case OP_BOOLEAN: {
        if (r->p >= r->n) return truncated(), NULL;
        unsigned char byte = r->d[r->p++];
        if (byte > 1) {
            PyErr_Format(PyExc_ValueError, "boolean byte %d", (int)byte);
            return NULL;
        }
        return PyBool_FromLong(byte);
    }
    case OP_INT:
    case OP_LONG: {
        int64_t value;
        if (get_varint(r, &value) < 0) return NULL;
        if (op->code == OP_INT && (value < INT32_MIN || value > INT32_MAX)) {
            PyErr_Format(PyExc_ValueError, "%lld does not fit an Avro int (int32)",
                         (long long)value);
            return NULL;
        }
        return PyLong_FromLongLong(value);
    }
    case OP_STRING:
    case OP_BYTES: {
        Py_ssize_t size;
        if (get_length(r, &size) < 0) return NULL;
        const char *start = (const char *)r->d + r->p;
        r->p += size;
        if (op->code == OP_STRING) return dec_string(r, (Op *)op, start, size); /* op->last */
        return PyBytes_FromStringAndSize(start, size);
    }
    case OP_FIXED: {
        if (op->arg > r->n - r->p) return truncated(), NULL;
        const char *start = (const char *)r->d + r->p;
        r->p += op->arg;
        if (op->index < 0) Py_RETURN_NONE; /* dropped: no copy */
        return PyBytes_FromStringAndSize(start, op->arg);
    }
    case OP_ENUM: {
        int64_t index;
        if (r->p < r->n && r->d[r->p] < 0x80 && !(r->d[r->p] & 1)) {
            index = r->d[r->p++] >> 1; /* one byte, non-negative: the common case */
        } else if (get_varint(r, &index) < 0) {
            return NULL;
        }
        if (index < 0 || index >= op->arg) {
            PyErr_Format(PyExc_ValueError, "enum index %lld out of range", (long long)index);
            return NULL;
        }
        PyObject *symbol = PyTuple_GET_ITEM(op->obj, index);
        Py_INCREF(symbol);
        return symbol;
    }
    case OP_UNION: {
        int64_t branch;
        if (get_varint(r, &branch) < 0) return NULL;
        if (branch == op->arg) Py_RETURN_NONE;
        if (branch != 1 - op->arg) {
            PyErr_Format(PyExc_ValueError, "union branch %lld out of range", (long long)branch);
            return NULL;
        }
        return dec_value(r, &op->child->ops[0], depth + 1);
    }
    case OP_RECORD:
        return dec_record(r, op, depth);
    case OP_ARRAY:
        return dec_array(r, op, depth);
    default:
        PyErr_SetString(PyExc_SystemError, "bad op code");
        return NULL;
    }
}

/* -- the Program type ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    Prog *prog;
    int decode;
    Py_ssize_t obj_size;    /* encode: fields of the domain type */
    Py_ssize_t fields_size; /* encode: fields of EnvelopeFields */
    unsigned char header[HEADER_SIZE];
    PyTypeObject *result_type; /* encode: Sealed; decode: the domain type */
} Program;

static void program_dealloc(Program *self) {
    prog_free(self->prog);
    Py_XDECREF(self->result_type);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_tuple_type(PyObject *type, const char *what) {
    if (!(PyType_Check(type) && PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type))) {
        PyErr_Format(PyExc_TypeError, "%s must be a NamedTuple type", what);
        return -1;
    }
    return 0;
}

/* Program.encoder(ops, obj_size, fields_size, header, sealed_type)
 * Program.decoder(ops, fields, domain_type): slot 0 is the envelope, 1.. the fields */
static PyObject *program_new_encoder(PyTypeObject *cls, PyObject *args) {
    PyObject *ops, *sealed;
    Py_ssize_t obj_size, fields_size;
    const char *header;
    Py_ssize_t header_size;
    if (!PyArg_ParseTuple(args, "O!nny#O", &PyTuple_Type, &ops, &obj_size, &fields_size,
                          &header, &header_size, &sealed))
        return NULL;
    if (header_size != HEADER_SIZE || obj_size < 0 || fields_size < 0) {
        PyErr_SetString(PyExc_ValueError, "header is 5 bytes; sizes are >= 0");
        return NULL;
    }
    if (check_tuple_type(sealed, "sealed_type") < 0) return NULL;
    Program *self = (Program *)cls->tp_alloc(cls, 0);
    if (self == NULL) return NULL;
    self->decode = 0;
    self->obj_size = obj_size;
    self->fields_size = fields_size;
    memcpy(self->header, header, HEADER_SIZE);
    Py_INCREF(sealed);
    self->result_type = (PyTypeObject *)sealed;
    self->prog = prog_build(ops, obj_size, 0, 0);
    if (self->prog == NULL) goto fail;
    for (Py_ssize_t i = 0; i < self->prog->n; i++) {
        const Op *op = &self->prog->ops[i];
        if (op->src == SRC_SELF || (op->src == SRC_FIELDS && (op->index < 0 || op->index >= fields_size))) {
            PyErr_SetString(PyExc_ValueError, "a top-level op reads outside its sources");
            goto fail;
        }
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static PyObject *program_new_decoder(PyTypeObject *cls, PyObject *args) {
    PyObject *ops, *domain_type;
    Py_ssize_t fields;
    if (!PyArg_ParseTuple(args, "O!nO", &PyTuple_Type, &ops, &fields, &domain_type)) return NULL;
    if (check_tuple_type(domain_type, "domain_type") < 0) return NULL;
    if (fields < 0) {
        PyErr_SetString(PyExc_ValueError, "fields >= 0");
        return NULL;
    }
    Program *self = (Program *)cls->tp_alloc(cls, 0);
    if (self == NULL) return NULL;
    self->decode = 1;
    self->obj_size = fields;
    Py_INCREF(domain_type);
    self->result_type = (PyTypeObject *)domain_type;
    self->prog = prog_build(ops, fields + 1, 1, 0);
    if (self->prog == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *program_encoder(PyObject *cls, PyObject *args) {
    return program_new_encoder((PyTypeObject *)cls, args);
}

static PyObject *program_decoder(PyObject *cls, PyObject *args) {
    return program_new_decoder((PyTypeObject *)cls, args);
}

/* encode_domain(obj, fields, prev_hash) -> Sealed(data, hash) */
/* The wire bytes of ``obj`` with envelope ``fields`` (EnvelopeFields items) after
 * ``prev_hash`` in its chain: *data (header, body, hash) and *digest (the hash). */
static int encode_core(Program *self, PyObject *obj, PyObject *const *fields, PyObject *prev_hash,
                       PyObject **data_out, PyObject **digest_out) {
    if (self->decode) {
        PyErr_SetString(PyExc_TypeError, "a decoder cannot encode");
        return -1;
    }
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != self->obj_size) {
        PyErr_Format(PyExc_ValueError, "expected a record of %zd fields", self->obj_size);
        return -1;
    }
    if (!PyBytes_Check(prev_hash)) {
        PyErr_SetString(PyExc_TypeError, "prev_hash must be bytes");
        return -1;
    }
    if (PyBytes_GET_SIZE(prev_hash) != HASH_SIZE) {
        PyErr_SetString(PyExc_ValueError, "prev_hash must be 32 bytes");
        return -1;
    }
    Buf b;
    b.p = b.inline_;
    b.cap = BUF_INLINE;
    b.n = HEADER_SIZE;
    memcpy(b.p, self->header, HEADER_SIZE);
    Ctx ctx = {fields, self->fields_size, prev_hash};
    int status = -1;
    if (enc_ops(&b, self->prog, ((PyTupleObject *)obj)->ob_item, &ctx, 0) < 0) goto done;
    if (b.n > RECORD_SIZE_MAX) {
        PyErr_Format(PyExc_ValueError, "%zd bytes exceeds RECORD_SIZE_MAX", b.n);
        goto done;
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, b.n + HASH_SIZE);
    if (data == NULL) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
    memcpy(out, b.p, (size_t)b.n);
    chain_hash((const unsigned char *)PyBytes_AS_STRING(prev_hash), b.p + HEADER_SIZE,
               (size_t)(b.n - HEADER_SIZE), out + b.n);
    PyObject *digest = PyBytes_FromStringAndSize((const char *)out + b.n, HASH_SIZE);
    if (digest == NULL) {
        Py_DECREF(data);
        goto done;
    }
    *data_out = data;
    *digest_out = digest;
    status = 0;
done:
    if (b.p != b.inline_) PyMem_Free(b.p);
    return status;
}

/* encode_domain(obj, fields, prev_hash) -> Sealed(data, hash) */
static PyObject *program_encode_domain(Program *self, PyObject *const *args, Py_ssize_t nargs) {
    if (self->decode) {
        PyErr_SetString(PyExc_TypeError, "a decoder cannot encode");
        return NULL;
    }
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "encode_domain(obj, fields, prev_hash)");
        return NULL;
    }
    PyObject *fields = args[1];
    if (!PyTuple_Check(fields) || PyTuple_GET_SIZE(fields) != self->fields_size) {
        PyErr_Format(PyExc_ValueError, "expected envelope fields of %zd items", self->fields_size);
        return NULL;
    }
    PyObject *data, *digest;
    if (encode_core(self, args[0], ((PyTupleObject *)fields)->ob_item, args[2], &data, &digest) < 0)
        return NULL;
    PyObject *result = self->result_type->tp_alloc(self->result_type, 2);
    if (result == NULL) {
        Py_DECREF(data);
        Py_DECREF(digest);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, data);
    PyTuple_SET_ITEM(result, 1, digest);
    return result;
}

#define APPEND_FIXED_ARGS 7 /* outputs, output_type, topic, key, partition, obj, prev_hash */

/* encode_append(outputs, output_type, topic, key, partition, obj, prev_hash, *fields) -> hash
 * Appends output_type(topic, data, key, partition) to the list ``outputs`` (a stage's
 * Output) and returns the record's hash: the processor's hot path without building the
 * EnvelopeFields, Sealed and Output tuples in Python. */
static PyObject *program_encode_append(Program *self, PyObject *const *args, Py_ssize_t nargs) {
    if (self->decode) {
        PyErr_SetString(PyExc_TypeError, "a decoder cannot encode");
        return NULL;
    }
    if (nargs != APPEND_FIXED_ARGS + self->fields_size) {
        PyErr_Format(PyExc_TypeError,
                     "encode_append(outputs, output_type, topic, key, partition, obj, prev_hash, "
                     "%zd envelope fields)", self->fields_size);
        return NULL;
    }
    PyObject *outputs = args[0], *output_type = args[1];
    if (!PyList_Check(outputs)) {
        PyErr_SetString(PyExc_TypeError, "outputs must be a list");
        return NULL;
    }
    if (check_tuple_type(output_type, "output_type") < 0) return NULL;
    PyObject *data, *digest;
    if (encode_core(self, args[5], args + APPEND_FIXED_ARGS, args[6], &data, &digest) < 0)
        return NULL;
    PyTypeObject *type = (PyTypeObject *)output_type;
    PyObject *output = type->tp_alloc(type, 4);
    if (output == NULL) {
        Py_DECREF(data);
        Py_DECREF(digest);
        return NULL;
    }
    Py_INCREF(args[2]);
    Py_INCREF(args[3]);
    Py_INCREF(args[4]);
    PyTuple_SET_ITEM(output, 0, args[2]);
    PyTuple_SET_ITEM(output, 1, data);
    PyTuple_SET_ITEM(output, 2, args[3]);
    PyTuple_SET_ITEM(output, 3, args[4]);
    int status = PyList_Append(outputs, output);
    Py_DECREF(output);
    if (status < 0) {
        Py_DECREF(digest);
        return NULL;
    }
    return digest;
}

/* The envelope and the record of the wire bytes ``data`` (header not checked: the caller
 * chose this program by it) and the position after them. */
static int decode_core(Program *self, PyObject *data, PyObject **envelope_out, PyObject **obj_out,
                       Py_ssize_t *end_out) {
    if (!self->decode) {
        PyErr_SetString(PyExc_TypeError, "an encoder cannot decode");
        return -1;
    }
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "decode_domain needs bytes");
        return -1;
    }
    Reader r = {.d = (const unsigned char *)PyBytes_AS_STRING(data),
                .n = PyBytes_GET_SIZE(data),
                .p = HEADER_SIZE,
                .recent_n = 0};
    if (r.n < HEADER_SIZE) return truncated();
    PyTypeObject *type = self->result_type;
    PyObject *obj = type->tp_alloc(type, self->obj_size);
    if (obj == NULL) return -1;
    PyObject *envelope = NULL;
    for (Py_ssize_t i = 0; i < self->prog->n; i++) {
        const Op *op = &self->prog->ops[i];
        PyObject *v = dec_value(&r, op, 0);
        if (v == NULL) goto fail;
        if (op->index == 0) {
            envelope = v;
        } else if (op->index > 0) {
            PyTuple_SET_ITEM(obj, op->index - 1, v);
        } else {
            Py_DECREF(v);
        }
    }
    reader_release(&r);
    *envelope_out = envelope;
    *obj_out = obj;
    *end_out = r.p;
    return 0;
fail:
    reader_release(&r);
    Py_XDECREF(envelope);
    Py_DECREF(obj);
    return -1;
}

/* decode_domain(data: bytes) -> (Envelope, record, end) */
static PyObject *program_decode_domain(Program *self, PyObject *data) {
    PyObject *envelope, *obj;
    Py_ssize_t end;
    if (decode_core(self, data, &envelope, &obj, &end) < 0) return NULL;
    PyObject *end_obj = PyLong_FromSsize_t(end);
    if (end_obj == NULL) goto fail;
    PyObject *result = PyTuple_New(3);
    if (result == NULL) {
        Py_DECREF(end_obj);
        goto fail;
    }
    PyTuple_SET_ITEM(result, 0, envelope);
    PyTuple_SET_ITEM(result, 1, obj);
    PyTuple_SET_ITEM(result, 2, end_obj);
    return result;
fail:
    Py_DECREF(envelope);
    Py_DECREF(obj);
    return NULL;
}

static PyMethodDef program_methods[] = {
    {"encoder", (PyCFunction)program_encoder, METH_VARARGS | METH_CLASS,
     "encoder(ops, obj_size, fields_size, header, sealed_type) -> Program"},
    {"decoder", (PyCFunction)program_decoder, METH_VARARGS | METH_CLASS,
     "decoder(ops, fields, domain_type) -> Program"},
    {"encode_domain", (PyCFunction)(void (*)(void))program_encode_domain, METH_FASTCALL,
     "encode_domain(obj, fields, prev_hash) -> Sealed"},
    {"encode_append", (PyCFunction)(void (*)(void))program_encode_append, METH_FASTCALL,
     "encode_append(outputs, output_type, topic, key, partition, obj, prev_hash, *fields) -> hash"},
    {"decode_domain", (PyCFunction)program_decode_domain, METH_O,
     "decode_domain(data) -> (Envelope, record, end)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ProgramType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tradex.schemas._native_codec.Program",
    .tp_basicsize = sizeof(Program),
    .tp_dealloc = (destructor)program_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A compiled Avro program for one domain type (see the module docstring).",
    .tp_methods = program_methods,
};

/* -- Readers: the codec's decode_domain ------------------------------------------------------ */

/* Readers(codec_error, validate_errors, fallback): wire id -> decoder Program of the newest
 * version of a subject, with the subject, the record name and the domain type's validate.
 * decode_domain(data) -> (Envelope, record) is tradex.schemas.codec.Codec.decode_domain for
 * well-framed bytes of those ids: header, body, end and validate() checked, every failure a
 * codec_error with the message of the Python path; anything else (not bytes, too short, bad
 * magic, an id without a C decoder) goes to fallback(data), the Python path, unchanged. */
typedef struct {
    PyObject_HEAD
    PyObject *table;           /* dict: wire id -> (Program, subject, name, validate or None) */
    PyObject *error;           /* CodecError */
    PyObject *validate_errors; /* exception types validate() may raise for bad content */
    PyObject *fallback;        /* callable(data) -> (Envelope, record) */
} Readers;

static int readers_traverse(Readers *self, visitproc visit, void *arg) {
    Py_VISIT(self->table);
    Py_VISIT(self->error);
    Py_VISIT(self->validate_errors);
    Py_VISIT(self->fallback);
    return 0;
}

static int readers_clear(Readers *self) {
    Py_CLEAR(self->table);
    Py_CLEAR(self->error);
    Py_CLEAR(self->validate_errors);
    Py_CLEAR(self->fallback);
    return 0;
}

static void readers_dealloc(Readers *self) {
    PyObject_GC_UnTrack(self);
    readers_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *readers_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *error, *validate_errors, *fallback;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "Readers takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OO!O", &error, &PyTuple_Type, &validate_errors, &fallback))
        return NULL;
    if (!PyExceptionClass_Check(error) || !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "Readers(exception type, tuple of types, callable)");
        return NULL;
    }
    Readers *self = (Readers *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->table = PyDict_New();
    if (self->table == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(error);
    self->error = error;
    Py_INCREF(validate_errors);
    self->validate_errors = validate_errors;
    Py_INCREF(fallback);
    self->fallback = fallback;
    return (PyObject *)self;
}

/* add(wire_id, program, subject, name, validate) */
static PyObject *readers_add(Readers *self, PyObject *args) {
    PyObject *wire_id, *program, *subject, *name, *validate;
    if (!PyArg_ParseTuple(args, "O!O!UUO", &PyLong_Type, &wire_id, &ProgramType, &program,
                          &subject, &name, &validate))
        return NULL;
    if (!((Program *)program)->decode) {
        PyErr_SetString(PyExc_TypeError, "an encoder cannot decode");
        return NULL;
    }
    if (validate != Py_None && !PyCallable_Check(validate)) {
        PyErr_SetString(PyExc_TypeError, "validate must be callable or None");
        return NULL;
    }
    PyObject *entry = PyTuple_Pack(4, program, subject, name, validate);
    if (entry == NULL) return NULL;
    int status = PyDict_SetItem(self->table, wire_id, entry);
    Py_DECREF(entry);
    if (status < 0) return NULL;
    Py_RETURN_NONE;
}

/* Raise error_type(message) from the exception being raised (``raise ... from exc``), with
 * ``what`` formatting the message from that exception: "<what> <repr or str of exc>". */
static void raise_from(PyObject *error_type, PyObject *what, int use_repr) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (value == NULL) { /* cannot happen after a failed call; keep a clear error anyway */
        Py_XDECREF(type);
        Py_XDECREF(traceback);
        PyErr_SetString(PyExc_SystemError, "raise_from without an exception");
        return;
    }
    if (traceback != NULL) PyException_SetTraceback(value, traceback);
    PyObject *message = PyUnicode_FromFormat(use_repr ? "%U%R" : "%U%S", what, value);
    PyObject *error = message != NULL ? PyObject_CallOneArg(error_type, message) : NULL;
    Py_XDECREF(message);
    if (error != NULL) {
        Py_INCREF(value);
        PyException_SetCause(error, value); /* steals */
        Py_INCREF(value);
        PyException_SetContext(error, value); /* steals */
        PyErr_SetObject((PyObject *)Py_TYPE(error), error);
        Py_DECREF(error);
    }
    Py_XDECREF(type);
    Py_DECREF(value);
    Py_XDECREF(traceback);
}

static PyObject *readers_decode_domain(Readers *self, PyObject *data) {
    if (!PyBytes_CheckExact(data)) return PyObject_CallOneArg(self->fallback, data);
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (size < HEADER_SIZE + HASH_SIZE || d[0] != 0) return PyObject_CallOneArg(self->fallback, data);
    unsigned long wire_id = (unsigned long)d[1] << 24 | (unsigned long)d[2] << 16 |
                            (unsigned long)d[3] << 8 | (unsigned long)d[4];
    PyObject *key = PyLong_FromUnsignedLong(wire_id);
    if (key == NULL) return NULL;
    PyObject *entry = PyDict_GetItemWithError(self->table, key); /* borrowed */
    Py_DECREF(key);
    if (entry == NULL) {
        if (PyErr_Occurred()) return NULL;
        return PyObject_CallOneArg(self->fallback, data);
    }
    Program *program = (Program *)PyTuple_GET_ITEM(entry, 0);
    PyObject *subject = PyTuple_GET_ITEM(entry, 1);
    PyObject *envelope, *obj;
    Py_ssize_t end;
    if (decode_core(program, data, &envelope, &obj, &end) < 0) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyObject *what = PyUnicode_FromFormat("corrupt %U body (schema id %lu): ", subject,
                                                  wire_id);
            if (what != NULL) {
                raise_from(self->error, what, 1);
                Py_DECREF(what);
            }
        }
        return NULL;
    }
    if (end != size) {
        if (end < size) {
            PyErr_Format(self->error, "%zd trailing bytes after a %U", size - end, subject);
        } else {
            PyErr_Format(self->error, "corrupt %U body (schema id %lu): truncated", subject, wire_id);
        }
        goto fail;
    }
    PyObject *validate = PyTuple_GET_ITEM(entry, 3);
    if (validate != Py_None) {
        PyObject *none = PyObject_CallOneArg(validate, obj);
        if (none == NULL) {
            if (PyErr_ExceptionMatches(self->validate_errors)) {
                PyObject *what = PyUnicode_FromFormat("invalid %U: ", PyTuple_GET_ITEM(entry, 2));
                if (what != NULL) {
                    raise_from(self->error, what, 0);
                    Py_DECREF(what);
                }
            }
            goto fail;
        }
        Py_DECREF(none);
    }
    PyObject *result = PyTuple_New(2);
    if (result == NULL) goto fail;
    PyTuple_SET_ITEM(result, 0, envelope);
    PyTuple_SET_ITEM(result, 1, obj);
    return result;
fail:
    Py_DECREF(envelope);
    Py_DECREF(obj);
    return NULL;
}

static PyMethodDef readers_methods[] = {
    {"add", (PyCFunction)readers_add, METH_VARARGS,
     "add(wire_id, program, subject, name, validate): serve wire_id with a decoder Program"},
    {"decode_domain", (PyCFunction)readers_decode_domain, METH_O,
     "decode_domain(data) -> (Envelope, record): decoded, checked, validated (see the type)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReadersType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tradex.schemas._native_codec.Readers",
    .tp_basicsize = sizeof(Readers),
    .tp_dealloc = (destructor)readers_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Readers(codec_error, validate_errors, fallback): the codec's decode_domain in C.",
    .tp_traverse = (traverseproc)readers_traverse,
    .tp_clear = (inquiry)readers_clear,
    .tp_methods = readers_methods,
    .tp_new = readers_new,
};

/* -- cells: the batch API of codec_api.h (the matcher's batch encode and scan) ------------- */

#include "codec_api.h"

/* One value from a cell: a Python object exactly as encode_domain writes it, else the raw
 * integer or bytes (the same bytes enc_value writes for the equal Python value). */
static int enc_cell(Buf *b, const Op *op, const TxCell *cell, const Ctx *ctx) {
    if (cell->o != NULL) return enc_value(b, op, cell->o, ctx, 0);
    switch (op->code) {
    case OP_NULL:
        return 0;
    case OP_BOOLEAN: {
        unsigned char byte = cell->i != 0;
        return put_bytes(b, &byte, 1);
    }
    case OP_INT:
        if (cell->i < INT32_MIN || cell->i > INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "value does not fit an Avro int (int32)");
            return -1;
        }
        return put_varint(b, tx_zigzag(cell->i));
    case OP_LONG:
        return put_varint(b, tx_zigzag(cell->i));
    case OP_STRING:
    case OP_BYTES:
        if (cell->n < 0 || (cell->s == NULL && cell->n > 0)) {
            PyErr_SetString(PyExc_ValueError, "a raw string cell without its bytes");
            return -1;
        }
        if (put_varint(b, tx_zigzag(cell->n)) < 0) return -1;
        return put_bytes(b, cell->s, cell->n);
    case OP_FIXED:
        if (cell->s == NULL || cell->n != op->arg) {
            PyErr_Format(PyExc_ValueError, "fixed needs %zd bytes, got %zd", op->arg, cell->n);
            return -1;
        }
        return put_bytes(b, cell->s, cell->n);
    case OP_ENUM: { /* the symbol's UTF-8 (an extension's fast path passes the str: cell->o) */
        if (cell->s == NULL) {
            PyErr_SetString(PyExc_TypeError, "an enum cell needs its symbol");
            return -1;
        }
        PyObject *symbol = PyUnicode_DecodeUTF8(cell->s, cell->n, NULL);
        if (symbol == NULL) return -1;
        int status = enc_value(b, op, symbol, ctx, 0);
        Py_DECREF(symbol);
        return status;
    }
    default:
        PyErr_Format(PyExc_TypeError, "an op of code %d takes a Python value, not a raw cell",
                     op->code);
        return -1;
    }
}

static PyObject *cells_encode(PyObject *program, const TxCell *row, Py_ssize_t row_n,
                              const TxCell *env, Py_ssize_t env_n, const unsigned char *prev_hash,
                              unsigned char *digest) {
    if (!PyObject_TypeCheck(program, &ProgramType)) {
        PyErr_SetString(PyExc_TypeError, "encode_cells needs a Program");
        return NULL;
    }
    Program *self = (Program *)program;
    if (self->decode || row_n != self->obj_size || env_n != self->fields_size) {
        PyErr_Format(PyExc_ValueError, "encode_cells: an encoder of %zd fields and %zd envelope "
                     "fields, got %zd and %zd cells", self->obj_size, self->fields_size, row_n,
                     env_n);
        return NULL;
    }
    Buf b;
    b.p = b.inline_;
    b.cap = BUF_INLINE;
    b.n = HEADER_SIZE;
    memcpy(b.p, self->header, HEADER_SIZE);
    Ctx ctx = {NULL, 0, Py_None}; /* only top-level ops read the envelope and the chain */
    PyObject *data = NULL;
    for (Py_ssize_t i = 0; i < self->prog->n; i++) {
        const Op *op = &self->prog->ops[i];
        int status;
        switch (op->src) {
        case SRC_ROW:
            status = enc_cell(&b, op, &row[op->index], &ctx);
            break;
        case SRC_FIELDS:
            status = enc_cell(&b, op, &env[op->index], &ctx);
            break;
        case SRC_PREV_HASH:
            if (op->code != OP_FIXED || op->arg != HASH_SIZE) {
                PyErr_SetString(PyExc_ValueError, "prev_hash is not a fixed of HASH_SIZE bytes");
                status = -1;
            } else {
                status = put_bytes(&b, prev_hash, HASH_SIZE);
            }
            break;
        case SRC_CONST:
            status = enc_value(&b, op, op->obj != NULL ? op->obj : Py_None, &ctx, 0);
            break;
        default:
            PyErr_SetString(PyExc_SystemError, "bad op source");
            status = -1;
        }
        if (status < 0) goto done;
    }
    if (b.n > RECORD_SIZE_MAX) {
        PyErr_Format(PyExc_ValueError, "%zd bytes exceeds RECORD_SIZE_MAX", b.n);
        goto done;
    }
    data = PyBytes_FromStringAndSize(NULL, b.n + HASH_SIZE);
    if (data == NULL) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
    memcpy(out, b.p, (size_t)b.n);
    chain_hash(prev_hash, b.p + HEADER_SIZE, (size_t)(b.n - HEADER_SIZE), out + b.n);
    memcpy(digest, out + b.n, HASH_SIZE);
done:
    if (b.p != b.inline_) PyMem_Free(b.p);
    return data;
}

typedef struct {
    const unsigned char *d;
    Py_ssize_t n;
    Py_ssize_t p;
} Scan;

/* A varint as get_varint reads it; 0 on success, -1 when malformed (no exception). */
static inline int scan_varint(Scan *r, int64_t *out) {
    return tx_get_long(r->d, r->n, &r->p, out) == TX_LONG_OK ? 0 : -1;
}

/* One value of ``op`` into ``cell``: TX_SCAN_OK or TX_SCAN_FALLBACK. */
static int scan_value(Scan *r, const Op *op, TxCell *cell, int depth) {
    if (depth > NESTING_MAX) return TX_SCAN_FALLBACK;
    switch (op->code) {
    case OP_NULL:
        cell->o = Py_None;
        return TX_SCAN_OK;
    case OP_BOOLEAN:
        if (r->p >= r->n || r->d[r->p] > 1) return TX_SCAN_FALLBACK;
        cell->i = r->d[r->p++];
        return TX_SCAN_OK;
    case OP_INT:
    case OP_LONG: {
        int64_t value;
        if (scan_varint(r, &value) < 0) return TX_SCAN_FALLBACK;
        if (op->code == OP_INT && (value < INT32_MIN || value > INT32_MAX)) return TX_SCAN_FALLBACK;
        cell->i = value;
        return TX_SCAN_OK;
    }
    case OP_STRING:
    case OP_BYTES: {
        int64_t size;
        if (scan_varint(r, &size) < 0 || size < 0 || size > r->n - r->p) return TX_SCAN_FALLBACK;
        const unsigned char *start = r->d + r->p;
        if (op->code == OP_STRING) {
            for (int64_t k = 0; k < size; k++) {
                if (start[k] >= 0x80) return TX_SCAN_FALLBACK; /* UTF-8 left to Python */
            }
        }
        cell->s = (const char *)start;
        cell->n = (Py_ssize_t)size;
        r->p += (Py_ssize_t)size;
        return TX_SCAN_OK;
    }
    case OP_FIXED:
        if (op->arg > r->n - r->p) return TX_SCAN_FALLBACK;
        cell->s = (const char *)r->d + r->p;
        cell->n = op->arg;
        r->p += op->arg;
        return TX_SCAN_OK;
    case OP_ENUM: {
        int64_t index;
        if (scan_varint(r, &index) < 0 || index < 0 || index >= op->arg) return TX_SCAN_FALLBACK;
        cell->i = index;
        return TX_SCAN_OK;
    }
    case OP_UNION: {
        int64_t branch;
        if (scan_varint(r, &branch) < 0) return TX_SCAN_FALLBACK;
        if (branch == op->arg) {
            cell->o = Py_None;
            return TX_SCAN_OK;
        }
        if (branch != 1 - op->arg) return TX_SCAN_FALLBACK;
        return scan_value(r, &op->child->ops[0], cell, depth + 1);
    }
    default: /* nested rows and arrays: left to the Python path */
        return TX_SCAN_FALLBACK;
    }
}

static int cells_scan(PyObject *program, const unsigned char *data, Py_ssize_t n, TxCell *env,
                      Py_ssize_t env_n, TxCell *row, Py_ssize_t row_n) {
    if (!PyObject_TypeCheck(program, &ProgramType) || !((Program *)program)->decode) {
        PyErr_SetString(PyExc_TypeError, "scan_cells needs a decoder Program");
        return -1;
    }
    const Prog *prog = ((Program *)program)->prog;
    if (row_n != ((Program *)program)->obj_size) {
        PyErr_Format(PyExc_ValueError, "scan_cells: %zd payload cells for %zd fields", row_n,
                     ((Program *)program)->obj_size);
        return -1;
    }
    memset(env, 0, sizeof(TxCell) * (size_t)env_n);
    memset(row, 0, sizeof(TxCell) * (size_t)row_n);
    Scan r = {data, n, HEADER_SIZE};
    if (n < HEADER_SIZE) return TX_SCAN_FALLBACK;
    TxCell dropped;
    for (Py_ssize_t i = 0; i < prog->n; i++) {
        const Op *op = &prog->ops[i];
        if (op->index == 0) { /* the envelope: one level of named fields */
            if (op->code != OP_RECORD || op->child->slots != env_n) {
                PyErr_SetString(PyExc_ValueError, "scan_cells: envelope of another shape");
                return -1;
            }
            const Prog *fields = op->child;
            for (Py_ssize_t k = 0; k < fields->n; k++) {
                const Op *field = &fields->ops[k];
                TxCell *cell = field->index >= 0 ? &env[field->index] : &dropped;
                if (scan_value(&r, field, cell, 1) != TX_SCAN_OK) return TX_SCAN_FALLBACK;
            }
            continue;
        }
        TxCell *cell = op->index > 0 ? &row[op->index - 1] : &dropped;
        if (scan_value(&r, op, cell, 0) != TX_SCAN_OK) return TX_SCAN_FALLBACK;
    }
    return r.p == n ? TX_SCAN_OK : TX_SCAN_FALLBACK;
}

static TxCodecApi codec_api = {TX_CODEC_API_VERSION, cells_encode, cells_scan};

#define CELLS_TEST_MAX 64
#define ENVELOPE_SLOTS_TEST 9 /* tradex.schemas.envelope.Envelope's fields */

/* The cell of a Python value as an extension would fill it: exact ints (in int64) and
 * bools as ``i``, str and bytes as raw bytes, anything else as the object itself. */
static int cell_of(PyObject *v, TxCell *cell) {
    memset(cell, 0, sizeof(*cell));
    if (PyBool_Check(v) || PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred()) return -1;
        if (!overflow) {
            cell->i = x;
            return 0;
        }
    } else if (PyUnicode_CheckExact(v)) {
        cell->s = PyUnicode_AsUTF8AndSize(v, &cell->n);
        return cell->s == NULL ? -1 : 0;
    } else if (PyBytes_CheckExact(v)) {
        cell->s = PyBytes_AS_STRING(v);
        cell->n = PyBytes_GET_SIZE(v);
        return 0;
    }
    cell->o = v;
    return 0;
}

static PyObject *cell_value(const TxCell *cell) {
    if (cell->o != NULL) return Py_NewRef(cell->o);
    if (cell->s != NULL) return PyBytes_FromStringAndSize(cell->s, cell->n);
    return PyLong_FromLongLong(cell->i);
}

/* _cells_encode(encoder, obj, fields, prev_hash) -> data: obj and fields (EnvelopeFields)
 * as cells through encode_cells. For tests of codec_api.h (tests/schemas/test_codec_api.py). */
static PyObject *module_cells_encode(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *encoder, *obj, *fields;
    Py_buffer prev;
    if (!PyArg_ParseTuple(args, "O!O!O!y*", &ProgramType, &encoder, &PyTuple_Type, &obj,
                          &PyTuple_Type, &fields, &prev))
        return NULL;
    PyObject *data = NULL;
    Py_ssize_t n_row = PyTuple_GET_SIZE(obj), n_env = PyTuple_GET_SIZE(fields);
    TxCell row[CELLS_TEST_MAX], env[CELLS_TEST_MAX];
    if (prev.len != HASH_SIZE || n_row > CELLS_TEST_MAX || n_env > CELLS_TEST_MAX) {
        PyErr_SetString(PyExc_ValueError, "32-byte prev_hash, at most 64 fields");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n_row; i++) {
        if (cell_of(PyTuple_GET_ITEM(obj, i), &row[i]) < 0) goto done;
    }
    for (Py_ssize_t i = 0; i < n_env; i++) {
        if (cell_of(PyTuple_GET_ITEM(fields, i), &env[i]) < 0) goto done;
    }
    unsigned char digest[HASH_SIZE];
    data = cells_encode(encoder, row, n_row, env, n_env, prev.buf, digest);
    if (data != NULL &&
        memcmp(digest, PyBytes_AS_STRING(data) + PyBytes_GET_SIZE(data) - HASH_SIZE, HASH_SIZE)) {
        PyErr_SetString(PyExc_AssertionError, "encode_cells: digest is not the record's hash");
        Py_CLEAR(data);
    }
done:
    PyBuffer_Release(&prev);
    return data;
}

/* _cells_scan(decoder, data) -> (envelope cells, payload cells) or None (TX_SCAN_FALLBACK);
 * cells as ints, bytes or objects. For tests of codec_api.h. */
static PyObject *module_cells_scan(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *decoder, *data;
    if (!PyArg_ParseTuple(args, "O!O!", &ProgramType, &decoder, &PyBytes_Type, &data)) return NULL;
    Py_ssize_t n_row = ((Program *)decoder)->obj_size;
    TxCell row[CELLS_TEST_MAX], env[ENVELOPE_SLOTS_TEST];
    if (n_row > CELLS_TEST_MAX) {
        PyErr_SetString(PyExc_ValueError, "at most 64 fields");
        return NULL;
    }
    int status = cells_scan(decoder, (const unsigned char *)PyBytes_AS_STRING(data),
                            PyBytes_GET_SIZE(data), env, ENVELOPE_SLOTS_TEST, row, n_row);
    if (status < 0) return NULL;
    if (status != TX_SCAN_OK) Py_RETURN_NONE;
    PyObject *env_out = PyTuple_New(ENVELOPE_SLOTS_TEST), *row_out = PyTuple_New(n_row);
    PyObject *result = NULL;
    if (env_out == NULL || row_out == NULL) goto done;
    for (Py_ssize_t i = 0; i < ENVELOPE_SLOTS_TEST; i++) {
        PyObject *v = cell_value(&env[i]);
        if (v == NULL) goto done;
        PyTuple_SET_ITEM(env_out, i, v);
    }
    for (Py_ssize_t i = 0; i < n_row; i++) {
        PyObject *v = cell_value(&row[i]);
        if (v == NULL) goto done;
        PyTuple_SET_ITEM(row_out, i, v);
    }
    result = PyTuple_Pack(2, env_out, row_out);
done:
    Py_XDECREF(env_out);
    Py_XDECREF(row_out);
    return result;
}

static int add_codec_api(PyObject *module) {
    PyObject *capsule = PyCapsule_New(&codec_api, TX_CODEC_API_CAPSULE, NULL);
    if (capsule == NULL) return -1;
    if (PyModule_AddObject(module, "_C_API", capsule) < 0) {
        Py_DECREF(capsule);
        return -1;
    }
    return 0;
}

/* -- module ---------------------------------------------------------------------------------- */

static PyObject *module_sha256_portable(PyObject *module, PyObject *arg) {
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    unsigned char digest[SHA256_DIGEST_SIZE];
    sha256_ctx sha;
    sha256_init(&sha);
    sha256_update(&sha, view.buf, (size_t)view.len);
    sha256_final(&sha, digest);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)digest, SHA256_DIGEST_SIZE);
}

static PyObject *module_chain_hash(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0]) || PyBytes_GET_SIZE(args[0]) != HASH_SIZE ||
        !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "chain_hash(prev_hash: 32 bytes, body: bytes)");
        return NULL;
    }
    unsigned char digest[HASH_SIZE];
    chain_hash((const unsigned char *)PyBytes_AS_STRING(args[0]),
               (const unsigned char *)PyBytes_AS_STRING(args[1]), (size_t)PyBytes_GET_SIZE(args[1]),
               digest);
    return PyBytes_FromStringAndSize((const char *)digest, HASH_SIZE);
}

static PyMethodDef module_methods[] = {
    {"sha256_portable", module_sha256_portable, METH_O,
     "sha256_portable(data) -> digest by the portable C code (sha256.h)"},
    {"chain_hash", (PyCFunction)(void (*)(void))module_chain_hash, METH_FASTCALL,
     "chain_hash(prev_hash, body) -> SHA-256(prev_hash || body) by the backend in use"},
    {"_cells_encode", module_cells_encode, METH_VARARGS,
     "_cells_encode(encoder, obj, fields, prev_hash) -> data: codec_api.h's encode_cells, "
     "for tests"},
    {"_cells_scan", module_cells_scan, METH_VARARGS,
     "_cells_scan(decoder, data) -> (envelope, payload) cells or None: codec_api.h's "
     "scan_cells, for tests"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tradex.schemas._native_codec",
    "The Avro domain codec in C (see tradex/schemas/compile_native.py).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native_codec(void) {
    if (PyType_Ready(&ProgramType) < 0 || PyType_Ready(&ReadersType) < 0) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    Py_INCREF(&ProgramType);
    Py_INCREF(&ReadersType);
    if (PyModule_AddObject(module, "Program", (PyObject *)&ProgramType) < 0 ||
        PyModule_AddObject(module, "Readers", (PyObject *)&ReadersType) < 0 ||
        PyModule_AddIntConstant(module, "RECORD_SIZE_MAX", RECORD_SIZE_MAX) < 0 ||
        PyModule_AddIntConstant(module, "NESTING_MAX", NESTING_MAX) < 0 ||
        PyModule_AddIntConstant(module, "ITEMS_MAX", ITEMS_MAX) < 0 ||
        PyModule_AddStringConstant(module, "SHA256_BACKEND", SHA256_BACKEND) < 0 ||
        add_codec_api(module) < 0 ||
        columns_register(module) < 0) {
        Py_DECREF(&ProgramType);
        Py_DECREF(&ReadersType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
