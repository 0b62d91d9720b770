/* ColumnDecoder: a batch of Confluent wire records decoded into columns, in C.
 *
 * The per-record decoder of native_codec.c builds Python objects (an Envelope, a domain
 * NamedTuple, its strings); this one writes each field of each record into a column of
 * its record type: int64 / int32 / uint8 arrays, enum codes (int8 or int16), strings as
 * Arrow-style (int64 offsets + bytes) or dictionary-encoded (int32 codes + the distinct
 * values), fixed bytes; arrays of records (journal postings) into a child level whose
 * rows carry their parent row and their index in the array. No Python object is made per
 * record, and the GIL is released while decoding.
 *
 * A program per wire schema id comes from tradex/schemas/compile_columns.py (the same
 * schema walk as the other codecs): records are flattened into their fields, so an op is
 *   (code, column, arg, checks, child)
 *   code    OP_* (the codec's numbers; no unions, no records: flattened)
 *   column  the column it fills (-1: read and dropped); ARRAY: the level of its items
 *   arg     FIXED: size; ENUM: symbol count; ARRAY: 1 if an item takes at least one byte
 *   checks  tuple of (kind, lo, hi, allowed): what the domain type's validate() checks of
 *           this value (CHECK_*); a failed check does not stop the decode, it *flags* the
 *           record (the caller re-checks flagged records with Codec.decode_domain)
 *   child   ARRAY: the ops of one item
 * and a column is (kind, level, width). Record checks compare two top-level values
 * (RCHECK_*). Every read is bounds-checked as native_codec.c's decoder checks it (same
 * varint, length, block, enum, boolean and UTF-8 rules, same end check), so a record
 * decodes here exactly when Codec.decode_domain decodes it (before validate()).
 *
 * decode(values, offsets, skip) -> (status, outputs): status per record (STATUS_*);
 * outputs per program slot: None (no record of it), or (rows, columns, levels) with rows
 * the int32 batch index of each of its records, a column as bytes (fixed width), (offsets,
 * data) for strings, (codes, offsets, data) for dictionaries, and per child level
 * (parent, index) as int32 bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "columns.h"
#include "wire_prims.h"

#define HEADER_SIZE 5
#define HASH_SIZE 32
#define ITEMS_MAX (1 << 20)  /* = native_codec.c: items of a zero-size type in one block */
#define LEVELS_MAX 8         /* a type's rows and its nested arrays */
#define COLUMNS_MAX 512      /* columns of one type */
#define OPS_MAX 1024         /* ops of one program level */
#define CHECKS_MAX 4         /* checks of one op */
#define RECORD_CHECKS_MAX 16 /* checks across fields of one type */
#define PROGRAMS_MAX 1024    /* wire ids one decoder serves or ignores */
#define BALANCE_ITEMS_MAX 64 /* items of an array whose balance is computed (more: flagged) */
#define ROWS_MAX (INT32_MAX - 1)
#define DICT_SLOTS_MIN 64

enum { OP_NULL = 0, OP_BOOLEAN = 1, OP_INT = 2, OP_LONG = 3, OP_STRING = 4, OP_BYTES = 5,
       OP_FIXED = 6, OP_ENUM = 7, OP_ARRAY = 10 };
enum { COL_I64 = 0, COL_I32 = 1, COL_U8 = 2, COL_CODE8 = 3, COL_CODE16 = 4, COL_STR = 5,
       COL_DICT = 6, COL_FIXED = 7, COL_KINDS = 8 };
enum { CHECK_RANGE = 1, CHECK_LENGTH = 2, CHECK_ENUM = 3, CHECK_COUNT = 4, CHECK_BALANCED = 5 };
enum { RCHECK_EQUAL_IF = 1, RCHECK_DIFFER = 2 };
enum { STATUS_DECODED = 0, STATUS_FLAGGED = 1, STATUS_SKIPPED = 2, STATUS_IGNORED = 3,
       STATUS_UNSERVED = 4, STATUS_CORRUPT = 5 };
enum { OK = 0, CORRUPT = -1, NO_MEMORY = -2, TOO_MANY = -3 };

/* -- growable buffers (raw allocator: used without the GIL) ------------------------------ */

typedef struct {
    char *p;
    Py_ssize_t n, cap;
} Grow;

static int grow(Grow *g, Py_ssize_t more) {
    if (g->n + more <= g->cap) return OK;
    Py_ssize_t cap = g->cap ? g->cap : 256;
    while (cap < g->n + more) {
        if (cap > PY_SSIZE_T_MAX / 2) return NO_MEMORY;
        cap *= 2;
    }
    char *p = PyMem_RawRealloc(g->p, (size_t)cap);
    if (p == NULL) return NO_MEMORY;
    g->p = p;
    g->cap = cap;
    return OK;
}

static inline int put(Grow *g, const void *data, Py_ssize_t size) {
    if (g->n + size > g->cap && grow(g, size) < 0) return NO_MEMORY;
    memcpy(g->p + g->n, data, (size_t)size);
    g->n += size;
    return OK;
}

static void grow_free(Grow *g) {
    PyMem_RawFree(g->p);
    g->p = NULL;
    g->n = g->cap = 0;
}

/* -- programs ----------------------------------------------------------------------------- */

typedef struct CProg CProg;
typedef struct {
    int kind;
    int64_t lo, hi;
    uint8_t *allowed; /* CHECK_ENUM: 1 per symbol allowed (owned) */
} Check;

typedef struct Col Col;
typedef struct {
    int code;
    int column; /* ARRAY: the items' level */
    Col *col;   /* the column (NULL: dropped, or an array) */
    int64_t arg;
    int n_checks;
    Check checks[CHECKS_MAX];
    CProg *child;
} COp;

struct CProg {
    Py_ssize_t n;
    COp *ops;
};

struct Col {
    int kind, level;
    Py_ssize_t width;
    Grow items;     /* fixed-width values; STR: int64 ends (n + 1, from 0); DICT: int32 codes */
    Grow data;      /* STR: the bytes; DICT: the distinct values' bytes */
    Grow dict_ends; /* DICT: int64 ends of the distinct values (n + 1, from 0) */
    int32_t *slots; /* DICT: open addressing, value index + 1 (0: empty) */
    Py_ssize_t slots_n, values_n;
    int32_t last;   /* DICT: the code found last (-1: none) */
};

typedef struct {
    int kind;
    Py_ssize_t a, b, c;
    int64_t value;
} RCheck;

typedef struct {
    int slot;
    CProg *prog;
    Py_ssize_t n_cols;
    Col *cols;
    int n_levels;
    Py_ssize_t level_rows[LEVELS_MAX];
    Grow parent[LEVELS_MAX], index[LEVELS_MAX]; /* levels >= 1: int32 per row */
    Grow rows;                                  /* int32 batch index per record */
    int n_rchecks;
    RCheck rchecks[RECORD_CHECKS_MAX];
    int64_t *top_value; /* per top-level op of the record being decoded */
    Py_ssize_t *top_start, *top_size;
} TypeProg;

static void cprog_free(CProg *prog) {
    if (prog == NULL) return;
    for (Py_ssize_t i = 0; i < prog->n; i++) {
        for (int k = 0; k < prog->ops[i].n_checks; k++) PyMem_Free(prog->ops[i].checks[k].allowed);
        cprog_free(prog->ops[i].child);
    }
    PyMem_Free(prog->ops);
    PyMem_Free(prog);
}

static void col_free(Col *col) {
    grow_free(&col->items);
    grow_free(&col->data);
    grow_free(&col->dict_ends);
    PyMem_RawFree(col->slots);
    col->slots = NULL;
}

static void type_free(TypeProg *t) {
    if (t == NULL) return;
    cprog_free(t->prog);
    for (Py_ssize_t i = 0; i < t->n_cols && t->cols != NULL; i++) col_free(&t->cols[i]);
    PyMem_Free(t->cols);
    for (int l = 0; l < LEVELS_MAX; l++) {
        grow_free(&t->parent[l]);
        grow_free(&t->index[l]);
    }
    grow_free(&t->rows);
    PyMem_Free(t->top_value);
    PyMem_Free(t->top_start);
    PyMem_Free(t->top_size);
    PyMem_Free(t);
}

static int col_width(int kind) {
    switch (kind) {
    case COL_I64: return 8;
    case COL_I32: return 4;
    case COL_U8: case COL_CODE8: return 1;
    case COL_CODE16: return 2;
    case COL_DICT: return 4;
    default: return 0;
    }
}

/* What the builder checks, so the interpreter can rely on it: every column is filled by
 * exactly one op of its level, with a kind that fits the op; levels nest in order. */
typedef struct {
    TypeProg *t;
    char *filled;      /* per column */
    int levels_seen;   /* levels 0 .. levels_seen - 1 exist */
} Build;

static int bad(const char *what) {
    PyErr_SetString(PyExc_ValueError, what);
    return -1;
}

static CProg *cprog_build(Build *b, PyObject *ops, int level, int depth);

static int check_build(Check *check, PyObject *item, const COp *op) {
    long long lo, hi;
    int kind;
    PyObject *allowed;
    if (!PyArg_ParseTuple(item, "iLLO", &kind, &lo, &hi, &allowed)) return -1;
    check->kind = kind;
    check->lo = lo;
    check->hi = hi;
    switch (kind) {
    case CHECK_RANGE:
        if (op->code != OP_INT && op->code != OP_LONG) return bad("a range check of a non-integer");
        return lo <= hi ? 0 : bad("a range check with lo > hi");
    case CHECK_LENGTH:
        if (op->code != OP_STRING) return bad("a length check of a non-string");
        return 0 <= lo && lo <= hi ? 0 : bad("a length check needs 0 <= lo <= hi");
    case CHECK_COUNT:
        if (op->code != OP_ARRAY) return bad("a count check of a non-array");
        return 0 <= lo && lo <= hi ? 0 : bad("a count check needs 0 <= lo <= hi");
    case CHECK_ENUM: {
        if (op->code != OP_ENUM || !PyBytes_Check(allowed) || PyBytes_GET_SIZE(allowed) != op->arg)
            return bad("an enum check needs one byte per symbol");
        check->allowed = PyMem_Malloc((size_t)op->arg + 1);
        if (check->allowed == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(check->allowed, PyBytes_AS_STRING(allowed), (size_t)op->arg);
        return 0;
    }
    case CHECK_BALANCED: {
        if (op->code != OP_ARRAY || op->child == NULL) return bad("a balance check of a non-array");
        if (lo < 0 || lo >= op->child->n || hi < 0 || hi >= op->child->n)
            return bad("a balance check names item ops out of range");
        if (op->child->ops[lo].code != OP_STRING || op->child->ops[hi].code != OP_LONG)
            return bad("a balance check sums a long per string");
        return 0;
    }
    default:
        return bad("unknown check kind");
    }
}

static int op_build(Build *b, COp *op, PyObject *item, int level, int depth) {
    PyObject *checks, *child;
    long long arg;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 5) return bad("an op is a tuple of 5 items");
    if (!PyArg_ParseTuple(item, "iiLOO", &op->code, &op->column, &arg, &checks, &child)) return -1;
    op->arg = arg;
    TypeProg *t = b->t;
    switch (op->code) {
    case OP_NULL: case OP_BOOLEAN: case OP_INT: case OP_LONG: case OP_STRING: case OP_BYTES:
    case OP_FIXED: case OP_ENUM: case OP_ARRAY:
        break;
    default:
        return bad("unknown op code");
    }
    if ((op->code == OP_FIXED && (arg < 0 || arg > (1 << 20))) ||
        (op->code == OP_ENUM && (arg < 1 || arg > INT16_MAX)) ||
        (op->code == OP_ARRAY && arg != 0 && arg != 1))
        return bad("op arg out of range");
    if (op->code == OP_ARRAY) {
        if (depth >= LEVELS_MAX - 1 || !PyTuple_Check(child)) return bad("array without items or nested too deep");
        if (op->column != b->levels_seen || op->column >= LEVELS_MAX) return bad("array levels must be numbered in order");
        b->levels_seen++;
        op->child = cprog_build(b, child, op->column, depth + 1);
        if (op->child == NULL) return -1;
    } else if (child != Py_None) {
        return bad("only arrays have children");
    } else if (op->column >= 0) {
        if (op->column >= t->n_cols) return bad("column out of range");
        Col *col = &t->cols[op->column];
        if (b->filled[op->column]) return bad("a column filled twice");
        b->filled[op->column] = 1;
        if (col->level != level) return bad("a column filled at another level");
        int fits = 0;
        switch (op->code) {
        case OP_BOOLEAN: fits = col->kind == COL_U8; break;
        case OP_INT: fits = col->kind == COL_I32; break;
        case OP_LONG: fits = col->kind == COL_I64; break;
        case OP_STRING: case OP_BYTES: fits = col->kind == COL_STR || col->kind == COL_DICT; break;
        case OP_FIXED: fits = col->kind == COL_FIXED && col->width == arg; break;
        case OP_ENUM: fits = arg <= INT8_MAX + 1 ? col->kind == COL_CODE8 : col->kind == COL_CODE16; break;
        default: fits = 0;
        }
        if (!fits) return bad("a column's kind does not fit its op");
        op->col = col;
    } else if (op->column != -1) {
        return bad("column out of range");
    }
    if (!PyTuple_Check(checks) || PyTuple_GET_SIZE(checks) > CHECKS_MAX) return bad("checks: a tuple of at most CHECKS_MAX");
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(checks); k++) {
        op->n_checks = (int)k + 1;
        if (check_build(&op->checks[k], PyTuple_GET_ITEM(checks, k), op) < 0) return -1;
    }
    return 0;
}

static CProg *cprog_build(Build *b, PyObject *ops, int level, int depth) {
    if (!PyTuple_Check(ops) || PyTuple_GET_SIZE(ops) > OPS_MAX) {
        bad("ops: a tuple of at most OPS_MAX ops");
        return NULL;
    }
    CProg *prog = PyMem_Calloc(1, sizeof(CProg));
    if (prog == NULL) return (CProg *)PyErr_NoMemory();
    Py_ssize_t n = PyTuple_GET_SIZE(ops);
    prog->ops = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(COp));
    if (prog->ops == NULL) {
        PyMem_Free(prog);
        return (CProg *)PyErr_NoMemory();
    }
    prog->n = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (op_build(b, &prog->ops[i], PyTuple_GET_ITEM(ops, i), level, depth) < 0) {
            cprog_free(prog);
            return NULL;
        }
    }
    return prog;
}

/* -- decoding one record -------------------------------------------------------------------- */

typedef struct {
    const uint8_t *d;
    Py_ssize_t n, p;
    int flagged;
    Py_ssize_t cur[LEVELS_MAX]; /* the row being filled at each level */
} CReader;

static inline int get_varint(CReader *r, int64_t *out) {
    return tx_get_long(r->d, r->n, &r->p, out) == TX_LONG_OK ? OK : CORRUPT;
}

static inline int get_length(CReader *r, Py_ssize_t *out) {
    int64_t length;
    if (get_varint(r, &length) < 0 || length < 0 || length > r->n - r->p) return CORRUPT;
    *out = (Py_ssize_t)length;
    return OK;
}

/* Well-formed UTF-8 (Unicode table 3-7, what Python's strict decoder accepts): the number
 * of code points, or -1. */
static Py_ssize_t utf8_points(const uint8_t *s, Py_ssize_t n) {
    Py_ssize_t i = 0, points = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t word;
            memcpy(&word, s + i, 8);
            if (!(word & 0x8080808080808080ULL)) {
                i += 8;
                points += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return -1;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n) return -1;
            uint8_t c1 = s[i + 1];
            uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
            if (c1 < lo || c1 > hi || (s[i + 2] & 0xC0) != 0x80) return -1;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n) return -1;
            uint8_t c1 = s[i + 1];
            uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
            if (c1 < lo || c1 > hi || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return -1;
            i += 4;
        } else {
            return -1;
        }
        points++;
    }
    return points;
}

static uint64_t hash_bytes(const uint8_t *s, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static int dict_rehash(Col *col, Py_ssize_t slots_n) {
    int32_t *slots = PyMem_RawCalloc((size_t)slots_n, sizeof(int32_t));
    if (slots == NULL) return NO_MEMORY;
    const int64_t *ends = (const int64_t *)col->dict_ends.p;
    for (Py_ssize_t v = 0; v < col->values_n; v++) {
        uint64_t h = hash_bytes((const uint8_t *)col->data.p + ends[v], ends[v + 1] - ends[v]);
        Py_ssize_t s = (Py_ssize_t)(h & (uint64_t)(slots_n - 1));
        while (slots[s]) s = (s + 1) & (slots_n - 1);
        slots[s] = (int32_t)v + 1;
    }
    PyMem_RawFree(col->slots);
    col->slots = slots;
    col->slots_n = slots_n;
    return OK;
}

/* The code of ``s`` in the column's dictionary (added when new). */
static int dict_code(Col *col, const uint8_t *s, Py_ssize_t size, int32_t *code) {
    const int64_t *ends = (const int64_t *)col->dict_ends.p;
    if (col->last >= 0 && ends[col->last + 1] - ends[col->last] == size &&
        memcmp(col->data.p + ends[col->last], s, (size_t)size) == 0) {
        *code = col->last;
        return OK;
    }
    if (2 * (col->values_n + 1) > col->slots_n) {
        Py_ssize_t slots_n = col->slots_n ? 2 * col->slots_n : DICT_SLOTS_MIN;
        if (dict_rehash(col, slots_n) < 0) return NO_MEMORY;
    }
    uint64_t h = hash_bytes(s, size);
    Py_ssize_t mask = col->slots_n - 1, at = (Py_ssize_t)(h & (uint64_t)mask);
    for (;;) { /* ends: at most half the slots are taken */
        int32_t v = col->slots[at];
        if (v == 0) break;
        v -= 1;
        if (ends[v + 1] - ends[v] == size && memcmp(col->data.p + ends[v], s, (size_t)size) == 0) {
            *code = col->last = v;
            return OK;
        }
        at = (at + 1) & mask;
    }
    if (col->values_n >= ROWS_MAX) return TOO_MANY;
    if (put(&col->data, s, size) < 0 || grow(&col->dict_ends, 8) < 0) return NO_MEMORY;
    int64_t end = col->data.n;
    memcpy(col->dict_ends.p + col->dict_ends.n, &end, 8);
    col->dict_ends.n += 8;
    int32_t v = (int32_t)col->values_n++;
    col->slots[at] = v + 1;
    *code = col->last = v;
    return OK;
}

static int put_string(Col *col, const uint8_t *s, Py_ssize_t size) {
    if (col->kind == COL_DICT) {
        int32_t code;
        int status = dict_code(col, s, size, &code);
        if (status < 0) return status;
        return put(&col->items, &code, 4);
    }
    if (put(&col->data, s, size) < 0) return NO_MEMORY;
    int64_t end = col->data.n;
    return put(&col->items, &end, 8);
}

static inline int check_value(CReader *r, const COp *op, int64_t value) {
    for (int k = 0; k < op->n_checks; k++) {
        const Check *c = &op->checks[k];
        if (c->kind == CHECK_RANGE || c->kind == CHECK_COUNT || c->kind == CHECK_LENGTH) {
            if (value < c->lo || value > c->hi) r->flagged = 1;
        } else if (c->kind == CHECK_ENUM) {
            if (!c->allowed[value]) r->flagged = 1;
        }
    }
    return OK;
}

typedef struct {
    Py_ssize_t start, size;
    int64_t value;
} Entry;

/* Whether the entries' values sum to zero per key (exactly: overflow counts as not). */
static int balanced(const uint8_t *d, const Entry *entries, int n) {
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            seen = entries[j].size == entries[i].size &&
                   memcmp(d + entries[j].start, d + entries[i].start, (size_t)entries[i].size) == 0;
        }
        if (seen) continue;
        __int128 sum = 0;
        for (int j = i; j < n; j++) {
            if (entries[j].size == entries[i].size &&
                memcmp(d + entries[j].start, d + entries[i].start, (size_t)entries[i].size) == 0)
                sum += entries[j].value;
        }
        if (sum != 0) return 0;
    }
    return 1;
}

/* What dec_ops keeps of the values it reads: every top-level op's (record checks), or the
 * key and value of one array item (balance checks). */
typedef struct {
    int64_t *value;
    Py_ssize_t *start, *size; /* per op, or NULL */
    Py_ssize_t key_op, value_op;
    Entry *entry; /* or NULL */
} Keep;

static int dec_ops(TypeProg *t, const CProg *prog, CReader *r, int level, const Keep *keep);

static int dec_array(TypeProg *t, const COp *op, CReader *r, int level) {
    int items_level = op->column;
    Keep keep = {NULL, NULL, NULL, -1, -1, NULL};
    for (int k = 0; k < op->n_checks; k++) {
        if (op->checks[k].kind == CHECK_BALANCED) {
            keep.key_op = (Py_ssize_t)op->checks[k].lo;
            keep.value_op = (Py_ssize_t)op->checks[k].hi;
        }
    }
    Entry entries[BALANCE_ITEMS_MAX];
    int64_t count_total = 0;
    Py_ssize_t blocks_max = r->n; /* every block takes at least one byte */
    for (Py_ssize_t block = 0; block <= blocks_max; block++) {
        int64_t count;
        if (get_varint(r, &count) < 0) return CORRUPT;
        if (count < 0) {
            int64_t size;
            if (count == INT64_MIN) return CORRUPT;
            count = -count;
            if (get_varint(r, &size) < 0) return CORRUPT;
        }
        if (count == 0) {
            check_value(r, op, count_total);
            if (keep.key_op >= 0 &&
                (count_total > BALANCE_ITEMS_MAX || !balanced(r->d, entries, (int)count_total)))
                r->flagged = 1;
            return OK;
        }
        int64_t bound = op->arg ? (int64_t)(r->n - r->p) : ITEMS_MAX;
        if (count > bound) return CORRUPT;
        for (int64_t i = 0; i < count; i++) {
            Py_ssize_t row = t->level_rows[items_level];
            if (row >= ROWS_MAX || count_total >= ROWS_MAX) return TOO_MANY;
            int32_t parent = (int32_t)r->cur[level], index = (int32_t)count_total;
            if (put(&t->parent[items_level], &parent, 4) < 0 ||
                put(&t->index[items_level], &index, 4) < 0)
                return NO_MEMORY;
            t->level_rows[items_level] = row + 1;
            r->cur[items_level] = row;
            keep.entry = count_total < BALANCE_ITEMS_MAX ? &entries[count_total] : NULL;
            int status = dec_ops(t, op->child, r, items_level, keep.key_op >= 0 ? &keep : NULL);
            if (status < 0) return status;
            count_total++;
        }
    }
    return CORRUPT; /* an array without its end */
}

/* Decodes ``prog``'s ops at ``level`` into their columns; ``keep``: values to keep. */
static int dec_ops(TypeProg *t, const CProg *prog, CReader *r, int level, const Keep *keep) {
    for (Py_ssize_t i = 0; i < prog->n; i++) {
        const COp *op = &prog->ops[i];
        Col *col = op->col;
        int64_t value = 0;
        Py_ssize_t start = r->p, size = 0;
        switch (op->code) {
        case OP_NULL:
            break;
        case OP_BOOLEAN: {
            if (r->p >= r->n) return CORRUPT;
            uint8_t byte = r->d[r->p++];
            if (byte > 1) return CORRUPT;
            value = byte;
            if (col != NULL && put(&col->items, &byte, 1) < 0) return NO_MEMORY;
            break;
        }
        case OP_INT:
        case OP_LONG: {
            if (get_varint(r, &value) < 0) return CORRUPT;
            if (op->code == OP_INT) {
                if (value < INT32_MIN || value > INT32_MAX) return CORRUPT;
                int32_t v32 = (int32_t)value;
                if (col != NULL && put(&col->items, &v32, 4) < 0) return NO_MEMORY;
            } else if (col != NULL && put(&col->items, &value, 8) < 0) {
                return NO_MEMORY;
            }
            check_value(r, op, value);
            break;
        }
        case OP_STRING:
        case OP_BYTES: {
            if (get_length(r, &size) < 0) return CORRUPT;
            start = r->p;
            r->p += size;
            if (op->code == OP_STRING) {
                Py_ssize_t points = utf8_points(r->d + start, size);
                if (points < 0) return CORRUPT;
                check_value(r, op, points);
            }
            if (col != NULL) {
                int status = put_string(col, r->d + start, size);
                if (status < 0) return status;
            }
            break;
        }
        case OP_FIXED: {
            if (op->arg > r->n - r->p) return CORRUPT;
            start = r->p;
            size = (Py_ssize_t)op->arg;
            r->p += size;
            if (col != NULL && put(&col->items, r->d + start, size) < 0) return NO_MEMORY;
            break;
        }
        case OP_ENUM: {
            if (r->p < r->n && r->d[r->p] < 0x80 && !(r->d[r->p] & 1)) {
                value = r->d[r->p++] >> 1; /* one byte, non-negative: the common case */
            } else if (get_varint(r, &value) < 0) {
                return CORRUPT;
            }
            if (value < 0 || value >= op->arg) return CORRUPT;
            if (col != NULL) {
                if (col->kind == COL_CODE8) {
                    int8_t code = (int8_t)value;
                    if (put(&col->items, &code, 1) < 0) return NO_MEMORY;
                } else {
                    int16_t code = (int16_t)value;
                    if (put(&col->items, &code, 2) < 0) return NO_MEMORY;
                }
            }
            check_value(r, op, value);
            break;
        }
        case OP_ARRAY: {
            int status = dec_array(t, op, r, level);
            if (status < 0) return status;
            break;
        }
        default:
            return CORRUPT;
        }
        if (keep != NULL) {
            if (keep->start != NULL) {
                keep->value[i] = value;
                keep->start[i] = start;
                keep->size[i] = size;
            } else if (keep->entry != NULL) {
                if (i == keep->key_op) {
                    keep->entry->start = start;
                    keep->entry->size = size;
                } else if (i == keep->value_op) {
                    keep->entry->value = value;
                }
            }
        }
    }
    return OK;
}

/* -- one record: decode, or roll its columns back ------------------------------------------- */

static void type_reset(TypeProg *t) {
    for (int l = 0; l < LEVELS_MAX; l++) {
        t->level_rows[l] = 0;
        t->parent[l].n = 0;
        t->index[l].n = 0;
    }
    t->rows.n = 0;
    for (Py_ssize_t c = 0; c < t->n_cols; c++) {
        Col *col = &t->cols[c];
        int64_t zero = 0;
        col->items.n = 0;
        col->data.n = 0;
        col->dict_ends.n = 0;
        col->values_n = 0;
        col->last = -1;
        if (col->slots != NULL) memset(col->slots, 0, (size_t)col->slots_n * sizeof(int32_t));
        /* room for the first end was reserved when the column was made */
        if (col->kind == COL_STR) put(&col->items, &zero, 8);
        if (col->kind == COL_DICT) put(&col->dict_ends, &zero, 8);
    }
}

static void type_rollback(TypeProg *t, const Py_ssize_t *rows) {
    for (Py_ssize_t c = 0; c < t->n_cols; c++) {
        Col *col = &t->cols[c];
        Py_ssize_t k = rows[col->level];
        if (col->kind == COL_STR) {
            col->items.n = (k + 1) * 8;
            col->data.n = (Py_ssize_t)((const int64_t *)col->items.p)[k];
        } else if (col->kind == COL_FIXED) {
            col->items.n = k * col->width;
        } else {
            col->items.n = k * col_width(col->kind);
        }
    }
    for (int l = 0; l < t->n_levels; l++) {
        t->level_rows[l] = rows[l];
        t->parent[l].n = rows[l] * 4;
        t->index[l].n = rows[l] * 4;
    }
}

static int record_checks_pass(const TypeProg *t, const uint8_t *d) {
    for (int k = 0; k < t->n_rchecks; k++) {
        const RCheck *c = &t->rchecks[k];
        int same = t->top_size[c->a] == t->top_size[c->b] &&
                   memcmp(d + t->top_start[c->a], d + t->top_start[c->b],
                          (size_t)t->top_size[c->a]) == 0;
        if (c->kind == RCHECK_EQUAL_IF && t->top_value[c->c] == c->value && !same) return 0;
        if (c->kind == RCHECK_DIFFER && same) return 0;
    }
    return 1;
}

/* The status of one record, or NO_MEMORY / TOO_MANY. */
static int decode_record(TypeProg *t, const uint8_t *d, Py_ssize_t size, int32_t batch_row) {
    Py_ssize_t rows[LEVELS_MAX];
    for (int l = 0; l < t->n_levels; l++) rows[l] = t->level_rows[l];
    if (rows[0] >= ROWS_MAX) return TOO_MANY;
    CReader r;
    r.d = d;
    r.n = size;
    r.p = HEADER_SIZE;
    r.flagged = 0;
    r.cur[0] = rows[0];
    t->level_rows[0] = rows[0] + 1;
    Keep top = {t->top_value, t->top_start, t->top_size, -1, -1, NULL};
    int status = dec_ops(t, t->prog, &r, 0, t->n_rchecks ? &top : NULL);
    if (status == OK && r.p != size) status = CORRUPT; /* trailing bytes */
    if (status == CORRUPT) {
        type_rollback(t, rows);
        return STATUS_CORRUPT;
    }
    if (status < 0) return status;
    if (put(&t->rows, &batch_row, 4) < 0) return NO_MEMORY;
    if (r.flagged || !record_checks_pass(t, d)) return STATUS_FLAGGED;
    return STATUS_DECODED;
}

/* -- the ColumnDecoder type ------------------------------------------------------------------ */

typedef struct {
    uint32_t wire_id;
    int action; /* -1: ignored; else the index of its TypeProg */
} IdEntry;

typedef struct {
    PyObject_HEAD
    int n_types;
    TypeProg **types;
    int n_ids;
    IdEntry *ids; /* sorted by wire id */
    int busy;     /* a decode is running (GIL released): add, ignore, decode refused */
} ColumnDecoder;

static void decoder_dealloc(ColumnDecoder *self) {
    for (int i = 0; i < self->n_types; i++) type_free(self->types[i]);
    PyMem_Free(self->types);
    PyMem_Free(self->ids);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *decoder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "ColumnDecoder() takes no arguments");
        return NULL;
    }
    ColumnDecoder *self = (ColumnDecoder *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->types = PyMem_Calloc(PROGRAMS_MAX, sizeof(TypeProg *));
    self->ids = PyMem_Calloc(PROGRAMS_MAX, sizeof(IdEntry));
    if (self->types == NULL || self->ids == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static int find_id(const ColumnDecoder *self, uint32_t wire_id) {
    int lo = 0, hi = self->n_ids - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (self->ids[mid].wire_id == wire_id) return mid;
        if (self->ids[mid].wire_id < wire_id) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static int refuse_busy(const ColumnDecoder *self) {
    if (!self->busy) return 0;
    PyErr_SetString(PyExc_RuntimeError, "a ColumnDecoder is used by one thread at a time");
    return -1;
}

static int add_id(ColumnDecoder *self, PyObject *wire_id_obj, int action) {
    if (refuse_busy(self) < 0) return -1;
    unsigned long wire_id = PyLong_AsUnsignedLong(wire_id_obj);
    if (PyErr_Occurred()) return -1;
    if (wire_id > UINT32_MAX) return bad("a wire id is 4 bytes");
    if (find_id(self, (uint32_t)wire_id) >= 0) return bad("a wire id added twice");
    if (self->n_ids >= PROGRAMS_MAX) return bad("more than PROGRAMS_MAX wire ids");
    int at = self->n_ids;
    while (at > 0 && self->ids[at - 1].wire_id > wire_id) {
        self->ids[at] = self->ids[at - 1];
        at--;
    }
    self->ids[at].wire_id = (uint32_t)wire_id;
    self->ids[at].action = action;
    self->n_ids++;
    return 0;
}

/* ignore(wire_id): records of this id get STATUS_IGNORED, undecoded */
static PyObject *decoder_ignore(ColumnDecoder *self, PyObject *wire_id) {
    if (!PyLong_Check(wire_id)) {
        PyErr_SetString(PyExc_TypeError, "ignore(wire_id: int)");
        return NULL;
    }
    if (add_id(self, wire_id, -1) < 0) return NULL;
    Py_RETURN_NONE;
}

/* add(wire_ids, ops, columns, record_checks) -> slot: one program for these wire ids */
static PyObject *decoder_add(ColumnDecoder *self, PyObject *args) {
    PyObject *wire_ids, *ops, *columns, *rchecks;
    if (!PyArg_ParseTuple(args, "O!O!O!O!", &PyTuple_Type, &wire_ids, &PyTuple_Type, &ops,
                          &PyTuple_Type, &columns, &PyTuple_Type, &rchecks))
        return NULL;
    if (refuse_busy(self) < 0) return NULL;
    if (self->n_types >= PROGRAMS_MAX) return bad("more than PROGRAMS_MAX programs"), NULL;
    Py_ssize_t n_cols = PyTuple_GET_SIZE(columns);
    if (n_cols > COLUMNS_MAX || PyTuple_GET_SIZE(ops) > OPS_MAX ||
        PyTuple_GET_SIZE(rchecks) > RECORD_CHECKS_MAX || PyTuple_GET_SIZE(wire_ids) < 1)
        return bad("too many columns, ops or record checks, or no wire id"), NULL;
    TypeProg *t = PyMem_Calloc(1, sizeof(TypeProg));
    if (t == NULL) return PyErr_NoMemory();
    Build b = {t, NULL, 1};
    t->n_cols = n_cols;
    t->cols = PyMem_Calloc(n_cols > 0 ? (size_t)n_cols : 1, sizeof(Col));
    b.filled = PyMem_Calloc(n_cols > 0 ? (size_t)n_cols : 1, 1);
    Py_ssize_t n_top = PyTuple_GET_SIZE(ops) > 0 ? PyTuple_GET_SIZE(ops) : 1;
    t->top_value = PyMem_Calloc((size_t)n_top, sizeof(int64_t));
    t->top_start = PyMem_Calloc((size_t)n_top, sizeof(Py_ssize_t));
    t->top_size = PyMem_Calloc((size_t)n_top, sizeof(Py_ssize_t));
    if (t->cols == NULL || b.filled == NULL || !t->top_value || !t->top_start || !t->top_size) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t c = 0; c < n_cols; c++) {
        int kind, level;
        Py_ssize_t width;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(columns, c), "iin", &kind, &level, &width)) goto fail;
        if (kind < 0 || kind >= COL_KINDS || level < 0 || level >= LEVELS_MAX ||
            (kind == COL_FIXED ? width < 0 || width > (1 << 20) : width != col_width(kind))) {
            bad("a column is (kind, level, width) with the kind's width");
            goto fail;
        }
        t->cols[c].kind = kind;
        t->cols[c].level = level;
        t->cols[c].width = width;
        t->cols[c].last = -1;
    }
    t->prog = cprog_build(&b, ops, 0, 0);
    if (t->prog == NULL) goto fail;
    t->n_levels = b.levels_seen;
    for (Py_ssize_t c = 0; c < n_cols; c++) {
        if (!b.filled[c] || t->cols[c].level >= t->n_levels) {
            bad("a column no op fills");
            goto fail;
        }
    }
    t->n_rchecks = (int)PyTuple_GET_SIZE(rchecks);
    for (int k = 0; k < t->n_rchecks; k++) {
        RCheck *c = &t->rchecks[k];
        long long value;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(rchecks, k), "innnL", &c->kind, &c->a, &c->b, &c->c,
                              &value))
            goto fail;
        c->value = value;
        Py_ssize_t n = t->prog->n;
        if (c->a < 0 || c->a >= n || c->b < 0 || c->b >= n || c->c < 0 || c->c >= n ||
            t->prog->ops[c->a].code != OP_STRING || t->prog->ops[c->b].code != OP_STRING ||
            (c->kind == RCHECK_EQUAL_IF && t->prog->ops[c->c].code != OP_ENUM) ||
            (c->kind != RCHECK_EQUAL_IF && c->kind != RCHECK_DIFFER)) {
            bad("a record check compares two top-level strings (if a top-level enum is a value)");
            goto fail;
        }
    }
    for (Py_ssize_t c = 0; c < n_cols; c++) { /* the first end of strings and dictionaries */
        if (grow(&t->cols[c].items, 8) < 0 || grow(&t->cols[c].dict_ends, 8) < 0) {
            PyErr_NoMemory();
            goto fail;
        }
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(wire_ids); i++) {
        if (add_id(self, PyTuple_GET_ITEM(wire_ids, i), self->n_types) < 0) goto fail;
    }
    t->slot = self->n_types;
    self->types[self->n_types++] = t;
    PyMem_Free(b.filled);
    return PyLong_FromLong(t->slot);
fail:
    PyMem_Free(b.filled);
    type_free(t);
    return NULL;
}

static PyObject *bytes_of(const Grow *g) { return PyBytes_FromStringAndSize(g->p, g->n); }

static PyObject *type_output(const TypeProg *t) {
    PyObject *columns = PyTuple_New(t->n_cols), *levels = PyTuple_New(t->n_levels - 1);
    PyObject *rows = bytes_of(&t->rows);
    if (columns == NULL || levels == NULL || rows == NULL) goto fail;
    for (Py_ssize_t c = 0; c < t->n_cols; c++) {
        const Col *col = &t->cols[c];
        PyObject *out;
        if (col->kind == COL_STR) {
            out = Py_BuildValue("(NN)", bytes_of(&col->items), bytes_of(&col->data));
        } else if (col->kind == COL_DICT) {
            out = Py_BuildValue("(NNN)", bytes_of(&col->items), bytes_of(&col->dict_ends),
                                bytes_of(&col->data));
        } else {
            out = bytes_of(&col->items);
        }
        if (out == NULL) goto fail;
        PyTuple_SET_ITEM(columns, c, out);
    }
    for (int l = 1; l < t->n_levels; l++) {
        PyObject *out = Py_BuildValue("(NN)", bytes_of(&t->parent[l]), bytes_of(&t->index[l]));
        if (out == NULL) goto fail;
        PyTuple_SET_ITEM(levels, l - 1, out);
    }
    return Py_BuildValue("(NNN)", rows, columns, levels);
fail:
    Py_XDECREF(columns);
    Py_XDECREF(levels);
    Py_XDECREF(rows);
    return NULL;
}

/* decode(values, offsets, skip=None) -> (status, outputs): see the file's doc */
static PyObject *decoder_decode(ColumnDecoder *self, PyObject *args) {
    PyObject *values_obj, *offsets_obj, *skip_obj = Py_None;
    if (!PyArg_ParseTuple(args, "OO|O", &values_obj, &offsets_obj, &skip_obj)) return NULL;
    if (refuse_busy(self) < 0) return NULL;
    Py_buffer values, offsets, skip;
    int have_skip = skip_obj != Py_None;
    if (PyObject_GetBuffer(values_obj, &values, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(offsets_obj, &offsets, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&values);
        return NULL;
    }
    if (have_skip && PyObject_GetBuffer(skip_obj, &skip, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&values);
        PyBuffer_Release(&offsets);
        return NULL;
    }
    PyObject *status_obj = NULL, *result = NULL;
    Py_ssize_t n = offsets.len / 8 - 1;
    if (offsets.len % 8 != 0 || n < 0 || n > ROWS_MAX || (have_skip && skip.len != n)) {
        bad("offsets: int64, one per record and one more; skip: one byte per record");
        goto done;
    }
    status_obj = PyBytes_FromStringAndSize(NULL, n);
    if (status_obj == NULL) goto done;
    uint8_t *status = (uint8_t *)PyBytes_AS_STRING(status_obj);
    const int64_t *off = (const int64_t *)offsets.buf;
    const uint8_t *data = (const uint8_t *)values.buf, *skips = have_skip ? skip.buf : NULL;
    for (int k = 0; k < self->n_types; k++) type_reset(self->types[k]);
    int failure = OK, bad_offsets = 0;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    int last = -1;
    uint32_t last_id = 0;
    for (Py_ssize_t i = 0; i < n && failure == OK; i++) {
        int64_t start = off[i], end = off[i + 1];
        if (start < 0 || start > end || end > values.len) {
            bad_offsets = 1;
            break;
        }
        const uint8_t *d = data + start;
        Py_ssize_t size = (Py_ssize_t)(end - start);
        if (skips != NULL && skips[i]) {
            status[i] = STATUS_SKIPPED;
            continue;
        }
        if (size < HEADER_SIZE + HASH_SIZE || d[0] != 0) {
            status[i] = STATUS_UNSERVED;
            continue;
        }
        uint32_t wire_id = (uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 8 | d[4];
        if (last < 0 || wire_id != last_id) {
            last = find_id(self, wire_id);
            last_id = wire_id;
        }
        if (last < 0) {
            status[i] = STATUS_UNSERVED;
            continue;
        }
        int action = self->ids[last].action;
        if (action < 0) {
            status[i] = STATUS_IGNORED;
            continue;
        }
        int got = decode_record(self->types[action], d, size, (int32_t)i);
        if (got < 0) failure = got;
        else status[i] = (uint8_t)got;
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (bad_offsets) {
        bad("offsets out of order or beyond the values");
        goto done;
    }
    if (failure == NO_MEMORY) {
        PyErr_NoMemory();
        goto done;
    }
    if (failure == TOO_MANY) {
        PyErr_SetString(PyExc_OverflowError, "more than ROWS_MAX rows in one column");
        goto done;
    }
    PyObject *outputs = PyTuple_New(self->n_types);
    if (outputs == NULL) goto done;
    for (int k = 0; k < self->n_types; k++) {
        PyObject *out;
        if (self->types[k]->level_rows[0] == 0) {
            out = Py_NewRef(Py_None);
        } else {
            out = type_output(self->types[k]);
            if (out == NULL) {
                Py_DECREF(outputs);
                goto done;
            }
        }
        PyTuple_SET_ITEM(outputs, k, out);
    }
    result = PyTuple_Pack(2, status_obj, outputs);
    Py_DECREF(outputs);
done:
    Py_XDECREF(status_obj);
    PyBuffer_Release(&values);
    PyBuffer_Release(&offsets);
    if (have_skip) PyBuffer_Release(&skip);
    return result;
}

static PyMethodDef decoder_methods[] = {
    {"add", (PyCFunction)decoder_add, METH_VARARGS,
     "add(wire_ids, ops, columns, record_checks) -> slot"},
    {"ignore", (PyCFunction)decoder_ignore, METH_O, "ignore(wire_id): such records are skipped"},
    {"decode", (PyCFunction)decoder_decode, METH_VARARGS,
     "decode(values, offsets, skip=None) -> (status per record, outputs per slot)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ColumnDecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tradex.schemas._native_codec.ColumnDecoder",
    .tp_basicsize = sizeof(ColumnDecoder),
    .tp_dealloc = (destructor)decoder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ColumnDecoder(): wire records decoded into columns (see columns.c).",
    .tp_methods = decoder_methods,
    .tp_new = decoder_new,
};

int columns_register(PyObject *module) {
    if (PyType_Ready(&ColumnDecoderType) < 0) return -1;
    Py_INCREF(&ColumnDecoderType);
    if (PyModule_AddObject(module, "ColumnDecoder", (PyObject *)&ColumnDecoderType) < 0) {
        Py_DECREF(&ColumnDecoderType);
        return -1;
    }
    static const struct { const char *name; long value; } constants[] = {
        {"COL_I64", COL_I64}, {"COL_I32", COL_I32}, {"COL_U8", COL_U8},
        {"COL_CODE8", COL_CODE8}, {"COL_CODE16", COL_CODE16}, {"COL_STR", COL_STR},
        {"COL_DICT", COL_DICT}, {"COL_FIXED", COL_FIXED},
        {"CHECK_RANGE", CHECK_RANGE}, {"CHECK_LENGTH", CHECK_LENGTH}, {"CHECK_ENUM", CHECK_ENUM},
        {"CHECK_COUNT", CHECK_COUNT}, {"CHECK_BALANCED", CHECK_BALANCED},
        {"RCHECK_EQUAL_IF", RCHECK_EQUAL_IF}, {"RCHECK_DIFFER", RCHECK_DIFFER},
        {"STATUS_DECODED", STATUS_DECODED}, {"STATUS_FLAGGED", STATUS_FLAGGED},
        {"STATUS_SKIPPED", STATUS_SKIPPED}, {"STATUS_IGNORED", STATUS_IGNORED},
        {"STATUS_UNSERVED", STATUS_UNSERVED}, {"STATUS_CORRUPT", STATUS_CORRUPT},
        {"COLUMN_LEVELS_MAX", LEVELS_MAX}, {"BALANCE_ITEMS_MAX", BALANCE_ITEMS_MAX},
        {"COLUMN_PROGRAMS_MAX", PROGRAMS_MAX},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
        if (PyModule_AddIntConstant(module, constants[i].name, constants[i].value) < 0) return -1;
    }
    return 0;
}
