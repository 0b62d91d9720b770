/* tradex.matching._matcher_wire: the matcher's per-record work in C.
 *
 * Two objects, built once per partition engine by tradex/matching/batch.py:
 *
 * RequestDecoder.decode(values, keys, cmds, meta) -> fallbacks
 *     Each ``order-requests`` record (newest schema version of NewOrder, CancelOrderRequest,
 *     AmendOrder, InstrumentRules, ASCII strings, key = the instrument id) becomes its kernel
 *     command row (COMMAND_DTYPE order) and a meta row (request fields, where its envelope
 *     strings lie in its bytes; an AmendOrder is OP_AMEND_KEEP, which the kernel resolves
 *     against the book). Anything else is marked STATUS_PYTHON and left to
 *     tradex.matching.wire.parse_request, the Python path, which decides it (a dead letter
 *     with the exact reason and error text, or an older schema version decoded by fastavro).
 *     The mapping is wire.parse_request's; tests hold the two to the same rows.
 *
 * Emitter.emit(outputs, values, meta, trades, events, l2, books, book_keys, letters,
 *              engine_prev, settle_prev, settle_seen, counters)
 *     Every output of a batch of one partition, in input order: for an input that reached
 *     its book, the kernel's trades, events and L2 deltas of its command row merged by seq,
 *     each encoded as its engine record (hash-chained on engine-events), each trade followed
 *     by a FillLeg per side and each order end by an OrderEnded (hash-chained per
 *     settlements partition); for an input without a book, Rejected (UNKNOWN_INSTRUMENT) and
 *     OrderEnded; a dead letter (built in Python) where the input was one. Each output is
 *     the stage's Output(topic, value, key, partition) appended to ``outputs``; with
 *     ``outputs`` None, none is built (each record is still encoded and hashed: the chain
 *     tails and counters advance exactly the same — what the audit's re-run needs). This is
 *     PartitionEngine's Python fold (partition.py, _engine_outputs), record by record; the
 *     twin test compares the bytes of both on large seeded streams.
 *
 * Encoding goes through the C codec's Programs (codec_api.h: cells instead of Python
 * objects), so every record is what Codec.encode_domain writes for the same values.
 * Bounds: every loop runs over a buffer whose size is checked first; the merge of one input
 * advances a cursor per step; at most OUTPUTS_PER_INPUT_MAX outputs of one kind per input.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "codec_api.h"
#include "wire_prims.h"

static TxCodecApi *codec_api = NULL;

/* tradex/matching/constants.py (batch.py checks they agree) */
enum { OP_LIMIT_GTC = 1, OP_MARKET = 5, OP_CANCEL = 6, OP_AMEND = 7, OP_RULES = 8, OP_AMEND_KEEP = 9 };
enum { SIDE_BUY = 0, SIDE_SELL = 1 };
enum { STP_NONE = 0 };
#define PROTECTION_NONE (-1)
#define PROTECTION_BAD (-2) /* the kernel rejects it (bad protection) */
enum {
    EV_ACCEPTED = 1,
    EV_RESTED = 2,
    EV_FILLED = 3,
    EV_CANCELLED = 4,
    EV_EXPIRED = 5,
    EV_REJECTED = 6,
    EV_AMENDED = 7,
    EV_DECREMENTED = 8,
    EV_RULES = 9
};
/* tradex/matching/wire.py */
enum { REQ_NEW = 1, REQ_CANCEL = 2, REQ_AMEND = 3, REQ_RULES = 4, REQ_KINDS = 5 };
/* tradex/log/ids.py: EventSource, the matcher's id layout */
enum { SOURCE_ENGINE_EVENTS = 3, SOURCE_SETTLEMENTS = 4 };
#define OUTPUTS_PER_INPUT_MAX (1 << 16)
#define INPUT_OFFSET_MAX ((int64_t)1 << 40) /* exclusive */
#define UNIX_MS_MAX (((int64_t)1 << 48) - 1)
#define TRADE_ID_COUNTER_BITS 40

/* Rows of int64 (tradex/matching/dtypes.py field order). */
enum { C_OP, C_SIDE, C_ORDER_ID, C_OWNER, C_PRICE, C_QTY, C_STP, C_PROTECTION, C_BAND, C_HALTED,
       C_TIME, CMD_W };
enum { T_SEQ, T_CMD, T_MAKER_ID, T_TAKER_ID, T_MAKER_OWNER, T_TAKER_OWNER, T_TAKER_SIDE, T_PRICE,
       T_QTY, T_TIME, TRADE_W };
enum { E_SEQ, E_CMD, E_KIND, E_ORDER_ID, E_OWNER, E_SIDE, E_PRICE, E_QTY, E_FILLED, E_REASON,
       E_TIME, EVENT_W };
enum { L_SEQ, L_CMD, L_SIDE, L_PRICE, L_QTY, L_TIME, L2_W };
/* Per input (meta): filled by decode (or by Python for its fallbacks) up to M_TRACE_N, the
 * rest by the Python routing (batch.py). */
enum {
    M_STATUS,      /* STATUS_* */
    M_KIND,        /* REQ_* */
    M_INSTRUMENT,  /* instrument_id */
    M_TIME,        /* the request's event_time_ns */
    M_ORDER_KIND,  /* NewOrder: index of its kind among ORDER_KINDS; else -1 */
    M_PRICE,       /* as requested (NewOrder price, AmendOrder new_price), else 0 */
    M_ORDER_ID,    /* order_id as requested (InstrumentRules: 0) */
    M_ACCOUNT,     /* account_id (InstrumentRules: 0) */
    M_EID_AT,      /* envelope event_id, correlation_id, trace_parent: position and size of */
    M_EID_N,       /* their UTF-8 bytes in the input's value (values[i]) */
    M_CORR_AT,
    M_CORR_N,
    M_TRACE_AT,
    M_TRACE_N,
    M_OFFSET,      /* the input's offset */
    M_ROUTE,       /* ROUTE_* */
    M_ENGINE_TIME, /* ROUTE_BOOK: the engine time of the input */
    M_BOOK,        /* ROUTE_BOOK: index into books */
    M_ROW,         /* ROUTE_BOOK: its command row among the book's (the kernel's cmd_index) */
    META_W
};
enum { STATUS_DECODED = 0, STATUS_PYTHON = 1 };
enum { ROUTE_BOOK = 0, ROUTE_UNKNOWN = 1, ROUTE_DEAD = 2 };
/* books rows: the instrument, its outputs [start, end) in trades / events / l2, book_seq */
enum { B_INSTRUMENT, B_T0, B_T1, B_E0, B_E1, B_L0, B_L1, B_BOOK_SEQ, BOOK_W };

#define SYMBOLS_MAX 64
#define ID_TEXT 36

/* The domain layouts the cells follow (exported; batch.py checks the NamedTuples). */
static const char *const NEW_ORDER_FIELDS[] = {
    "order_id", "account_id", "instrument_id", "side", "kind", "price", "qty",
    "protection_ticks", "stp_mode", "maker_fee_ppm", "taker_fee_ppm", "event_time_ns", NULL};
static const char *const CANCEL_FIELDS[] = {"order_id", "account_id", "instrument_id",
                                            "event_time_ns", NULL};
static const char *const AMEND_FIELDS[] = {"order_id",  "account_id",    "instrument_id",
                                           "new_price", "new_qty",       "event_time_ns",
                                           "stp_mode",  NULL};
static const char *const RULES_FIELDS[] = {
    "instrument_id", "symbol", "kind", "status", "tick_size", "lot_size", "min_notional",
    "price_band_bps", "maker_fee_ppm", "taker_fee_ppm", "event_time_ns", NULL};
static const char *const ENVELOPE_FIELDS[] = {"event_id", "type", "event_time_ns",
                                              "causation_id", "correlation_id", "trace_parent",
                                              "producer", "seq", "prev_hash", NULL};
static const char *const ENVELOPE_FIELDS_IN[] = {"event_id", "causation_id", "correlation_id",
                                                 "producer", "seq", "trace_parent", NULL};

enum { NO_ORDER_ID, NO_ACCOUNT, NO_INSTRUMENT, NO_SIDE, NO_KIND, NO_PRICE, NO_QTY, NO_PROTECTION,
       NO_STP, NO_MAKER_FEE, NO_TAKER_FEE, NO_TIME, NO_W };
enum { CO_ORDER_ID, CO_ACCOUNT, CO_INSTRUMENT, CO_TIME, CO_W };
enum { AO_ORDER_ID, AO_ACCOUNT, AO_INSTRUMENT, AO_PRICE, AO_QTY, AO_TIME, AO_STP, AO_W };
enum { RU_INSTRUMENT, RU_SYMBOL, RU_KIND, RU_STATUS, RU_TICK, RU_LOT, RU_MIN_NOTIONAL, RU_BAND,
       RU_MAKER_FEE, RU_TAKER_FEE, RU_TIME, RU_W };
enum { EN_EVENT_ID, EN_TYPE, EN_TIME, EN_CAUSATION, EN_CORRELATION, EN_TRACE, EN_PRODUCER, EN_SEQ,
       EN_PREV_HASH, EN_W };
enum { EF_EVENT_ID, EF_CAUSATION, EF_CORRELATION, EF_PRODUCER, EF_SEQ, EF_TRACE, EF_W };
#define PAYLOAD_W_MAX 12
/* The columns of the rows above, by name (exported; batch.py checks the dtypes). */
static const char *const CMD_FIELDS[] = {"op", "side", "order_id", "owner", "price", "qty",
                                         "stp_mode", "protection_ticks", "band_bps", "halted",
                                         "timestamp_ns", NULL};
static const char *const TRADE_FIELDS[] = {"seq", "cmd_index", "maker_id", "taker_id",
                                           "maker_owner", "taker_owner", "taker_side", "price",
                                           "qty", "timestamp_ns", NULL};
static const char *const EVENT_FIELDS[] = {"seq", "cmd_index", "kind", "order_id", "owner",
                                           "side", "price", "qty", "filled", "reason",
                                           "timestamp_ns", NULL};
static const char *const L2_FIELDS[] = {"seq", "cmd_index", "side", "price", "qty",
                                        "timestamp_ns", NULL};

/* Output records (encoder Programs, in this order) and their domain layouts. */
enum { R_ACCEPTED, R_RESTED, R_TRADE, R_FILLED, R_CANCELLED, R_EXPIRED, R_REJECTED,
       R_AMEND_APPLIED, R_L2_DELTA, R_RULES_APPLIED, R_FILL_LEG, R_ORDER_ENDED,
       R_AMEND_CONFIRMED, R_TYPES };
static const char *const RECORD_NAMES[] = {
    "Accepted", "Rested", "Trade", "Filled", "Cancelled", "Expired", "Rejected",
    "AmendApplied", "L2Delta", "RulesApplied", "FillLeg", "OrderEnded", "AmendConfirmed", NULL};
static const char *const RECORD_FIELDS[R_TYPES][11] = {
    {"instrument_id", "order_id", "account_id", "side", "kind", "price", "qty", "event_time_ns"},
    {"instrument_id", "order_id", "account_id", "side", "price", "qty", "event_time_ns"},
    {"instrument_id", "trade_id", "price", "qty", "taker_side", "maker_order_id",
     "maker_account_id", "taker_order_id", "taker_account_id", "event_time_ns"},
    {"instrument_id", "order_id", "account_id", "side", "filled_qty", "event_time_ns"},
    {"instrument_id", "order_id", "account_id", "remaining_qty", "reason", "detail",
     "event_time_ns"},
    {"instrument_id", "order_id", "account_id", "remaining_qty", "reason", "detail",
     "event_time_ns"},
    {"instrument_id", "order_id", "account_id", "reason", "request", "detail", "event_time_ns"},
    {"instrument_id", "order_id", "account_id", "new_price", "new_qty", "lost_priority",
     "event_time_ns"},
    {"instrument_id", "side", "price", "qty", "book_seq", "event_time_ns"},
    {"instrument_id", "price_band_bps", "halted", "event_time_ns"},
    {"account_id", "order_id", "trade_id", "instrument_id", "side", "price", "qty", "liquidity",
     "event_time_ns"},
    {"account_id", "order_id", "instrument_id", "reason", "event_time_ns"},
    {"account_id", "order_id", "instrument_id", "price", "qty", "amend_time_ns", "event_time_ns"},
};
static Py_ssize_t record_width(int type) {
    Py_ssize_t n = 0;
    while (n < 11 && RECORD_FIELDS[type][n] != NULL) n++;
    return n;
}

/* -- helpers -------------------------------------------------------------------------------- */

static inline void cell_i(TxCell *c, int64_t i) {
    c->i = i;
    c->o = NULL;
    c->s = NULL;
    c->n = 0;
}
static inline void cell_o(TxCell *c, PyObject *o) {
    c->i = 0;
    c->o = o;
    c->s = NULL;
    c->n = 0;
}
static inline void cell_s(TxCell *c, const char *s, Py_ssize_t n) {
    c->i = 0;
    c->o = NULL;
    c->s = s;
    c->n = n;
}

/* A writable, C-contiguous buffer of int64 (or bytes when itemsize is 1) of ``width``
 * columns; its rows in *rows. */
static int get_rows(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t width,
                    int writable, Py_ssize_t *rows, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    if (view->itemsize != itemsize || view->len % (itemsize * width) != 0) {
        PyErr_Format(PyExc_ValueError, "%s: a buffer of %zd-byte items, %zd per row", what,
                     itemsize, width);
        PyBuffer_Release(view);
        return -1;
    }
    *rows = view->len / (itemsize * width);
    return 0;
}

static PyObject *str_tuple(const char *const *names) {
    Py_ssize_t n = 0;
    while (names[n] != NULL) n++;
    PyObject *tuple = PyTuple_New(n);
    if (tuple == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyUnicode_FromString(names[i]);
        if (name == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, name);
    }
    return tuple;
}

/* int64 table from a tuple of ints (at most SYMBOLS_MAX); its size in *n. */
static int int_table(PyObject *tuple, int64_t *table, Py_ssize_t *n, const char *what) {
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) > SYMBOLS_MAX) {
        PyErr_Format(PyExc_TypeError, "%s: a tuple of at most %d ints", what, SYMBOLS_MAX);
        return -1;
    }
    *n = PyTuple_GET_SIZE(tuple);
    for (Py_ssize_t i = 0; i < *n; i++) {
        table[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(tuple, i));
        if (table[i] == -1 && PyErr_Occurred()) return -1;
    }
    return 0;
}

/* -- RequestDecoder --------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *programs[REQ_KINDS]; /* decoder Programs by REQ_* (0 unused) */
    uint32_t wire_ids[REQ_KINDS];
    Py_ssize_t widths[REQ_KINDS]; /* payload fields */
    int64_t side_map[SYMBOLS_MAX], kind_map[SYMBOLS_MAX], stp_map[SYMBOLS_MAX];
    int64_t halted_map[SYMBOLS_MAX];
    Py_ssize_t n_side, n_kind, n_stp, n_status;
} RequestDecoder;

static void decoder_dealloc(RequestDecoder *self) {
    for (int k = 0; k < REQ_KINDS; k++) Py_XDECREF(self->programs[k]);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* RequestDecoder(programs, side_map, kind_map, stp_map, halted_map)
 *   programs: 4 tuples (REQ kind, wire id, decoder Program, payload fields)
 *   maps: enum symbol index (NewOrder side / kind / stp_mode, InstrumentRules status) ->
 *         kernel side, op (0: bad op), stp mode (-1: bad), halted 0/1 */
static PyObject *decoder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *programs, *side_map, *kind_map, *stp_map, *halted_map;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "RequestDecoder takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!", &PyTuple_Type, &programs, &PyTuple_Type, &side_map,
                          &PyTuple_Type, &kind_map, &PyTuple_Type, &stp_map, &PyTuple_Type,
                          &halted_map))
        return NULL;
    RequestDecoder *self = (RequestDecoder *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    if (PyTuple_GET_SIZE(programs) != REQ_KINDS - 1) {
        PyErr_SetString(PyExc_ValueError, "one decoder per request kind");
        goto fail;
    }
    for (Py_ssize_t i = 0; i < REQ_KINDS - 1; i++) {
        long kind;
        unsigned long wire_id;
        PyObject *program;
        Py_ssize_t width;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(programs, i), "lkOn", &kind, &wire_id, &program,
                              &width))
            goto fail;
        if (kind < REQ_NEW || kind > REQ_RULES || self->programs[kind] != NULL ||
            width > PAYLOAD_W_MAX || width < 0) {
            PyErr_SetString(PyExc_ValueError, "bad or repeated request kind, or too many fields");
            goto fail;
        }
        Py_INCREF(program);
        self->programs[kind] = program;
        self->wire_ids[kind] = (uint32_t)wire_id;
        self->widths[kind] = width;
    }
    if (self->widths[REQ_NEW] != NO_W || self->widths[REQ_CANCEL] != CO_W ||
        self->widths[REQ_AMEND] != AO_W || self->widths[REQ_RULES] != RU_W) {
        PyErr_SetString(PyExc_ValueError, "request layouts differ from the decoder's");
        goto fail;
    }
    if (int_table(side_map, self->side_map, &self->n_side, "side_map") < 0 ||
        int_table(kind_map, self->kind_map, &self->n_kind, "kind_map") < 0 ||
        int_table(stp_map, self->stp_map, &self->n_stp, "stp_map") < 0 ||
        int_table(halted_map, self->halted_map, &self->n_status, "halted_map") < 0)
        goto fail;
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

/* Decode one record into its rows; STATUS_DECODED or STATUS_PYTHON (-1: a Python error). */
static int decode_one(RequestDecoder *self, PyObject *value, PyObject *key, int64_t *row,
                      int64_t *m) {
    if (!PyBytes_CheckExact(value)) return STATUS_PYTHON;
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(value);
    Py_ssize_t n = PyBytes_GET_SIZE(value);
    if (n < 5 || d[0] != 0) return STATUS_PYTHON;
    uint32_t wire_id = (uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 8 | d[4];
    int kind = 0;
    for (int k = REQ_NEW; k <= REQ_RULES; k++) {
        if (self->wire_ids[k] == wire_id) kind = k;
    }
    if (kind == 0) return STATUS_PYTHON; /* another type, or an older version */
    TxCell env[EN_W], f[PAYLOAD_W_MAX];
    int status = codec_api->scan_cells(self->programs[kind], d, n, env, EN_W, f, self->widths[kind]);
    if (status != TX_SCAN_OK) return status < 0 ? -1 : STATUS_PYTHON;
    int64_t instrument = kind == REQ_RULES ? f[RU_INSTRUMENT].i : f[NO_INSTRUMENT].i;
    /* instrument, order and account ids sit at the same place in the three order requests */
    char text[TX_DECIMAL_MAX];
    int length = tx_decimal(text, instrument);
    if (!PyBytes_CheckExact(key) || PyBytes_GET_SIZE(key) != length ||
        memcmp(PyBytes_AS_STRING(key), text, (size_t)length) != 0)
        return STATUS_PYTHON; /* misrouted: the Python path says so */
    int64_t time_ns;
    m[M_KIND] = kind;
    m[M_INSTRUMENT] = instrument;
    m[M_ORDER_KIND] = -1;
    if (kind == REQ_NEW) {
        int64_t side = f[NO_SIDE].i, order_kind = f[NO_KIND].i, stp = f[NO_STP].i;
        if (side >= self->n_side || order_kind >= self->n_kind || stp >= self->n_stp)
            return STATUS_PYTHON;
        int64_t op = self->kind_map[order_kind], price = f[NO_PRICE].i;
        int64_t protection = f[NO_PROTECTION].i;
        if (op == OP_MARKET) { /* wire.market_row */
            price = price != 0 ? price : -1;
            protection = protection > 0 ? protection : protection == 0 ? PROTECTION_NONE
                                                                      : PROTECTION_BAD;
        }
        time_ns = f[NO_TIME].i;
        row[C_OP] = op;
        row[C_SIDE] = self->side_map[side];
        row[C_ORDER_ID] = f[NO_ORDER_ID].i;
        row[C_OWNER] = f[NO_ACCOUNT].i;
        row[C_PRICE] = price;
        row[C_QTY] = f[NO_QTY].i;
        row[C_STP] = self->stp_map[stp];
        row[C_PROTECTION] = protection;
        m[M_ORDER_KIND] = order_kind;
        m[M_PRICE] = f[NO_PRICE].i;
        m[M_ORDER_ID] = f[NO_ORDER_ID].i;
        m[M_ACCOUNT] = f[NO_ACCOUNT].i;
    } else if (kind == REQ_CANCEL) {
        time_ns = f[CO_TIME].i;
        row[C_OP] = OP_CANCEL;
        row[C_ORDER_ID] = f[CO_ORDER_ID].i;
        row[C_OWNER] = f[CO_ACCOUNT].i;
        m[M_ORDER_ID] = f[CO_ORDER_ID].i;
        m[M_ACCOUNT] = f[CO_ACCOUNT].i;
    } else if (kind == REQ_AMEND) { /* the kernel takes kept fields and side from the order */
        if (f[AO_STP].i >= self->n_stp) return STATUS_PYTHON;
        time_ns = f[AO_TIME].i;
        row[C_STP] = self->stp_map[f[AO_STP].i]; /* the order's self-trade prevention */
        row[C_OP] = OP_AMEND_KEEP;
        row[C_ORDER_ID] = f[AO_ORDER_ID].i;
        row[C_OWNER] = f[AO_ACCOUNT].i;
        row[C_PRICE] = f[AO_PRICE].i;
        row[C_QTY] = f[AO_QTY].i;
        m[M_PRICE] = f[AO_PRICE].i;
        m[M_ORDER_ID] = f[AO_ORDER_ID].i;
        m[M_ACCOUNT] = f[AO_ACCOUNT].i;
    } else {
        if (f[RU_STATUS].i >= self->n_status) return STATUS_PYTHON;
        time_ns = f[RU_TIME].i;
        row[C_OP] = OP_RULES;
        row[C_BAND] = f[RU_BAND].i;
        row[C_HALTED] = self->halted_map[f[RU_STATUS].i];
    }
    row[C_TIME] = time_ns;
    m[M_TIME] = time_ns;
    m[M_EID_AT] = (const unsigned char *)env[EN_EVENT_ID].s - d;
    m[M_EID_N] = env[EN_EVENT_ID].n;
    m[M_CORR_AT] = (const unsigned char *)env[EN_CORRELATION].s - d;
    m[M_CORR_N] = env[EN_CORRELATION].n;
    m[M_TRACE_AT] = env[EN_TRACE].n > 0 ? (const unsigned char *)env[EN_TRACE].s - d : 0;
    m[M_TRACE_N] = env[EN_TRACE].n;
    return STATUS_DECODED;
}

/* decode(values, keys, cmds, meta) -> number of inputs left to the Python path */
static PyObject *decoder_decode(RequestDecoder *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "decode(values: list, keys: list, cmds, meta)");
        return NULL;
    }
    PyObject *values = args[0], *keys = args[1];
    Py_ssize_t n = PyList_GET_SIZE(values);
    Py_buffer cmds_view, meta_view;
    Py_ssize_t cmd_rows, meta_rows;
    if (get_rows(args[2], &cmds_view, 8, CMD_W, 1, &cmd_rows, "cmds") < 0) return NULL;
    if (get_rows(args[3], &meta_view, 8, META_W, 1, &meta_rows, "meta") < 0) {
        PyBuffer_Release(&cmds_view);
        return NULL;
    }
    PyObject *result = NULL;
    if (PyList_GET_SIZE(keys) != n || cmd_rows != n || meta_rows != n) {
        PyErr_SetString(PyExc_ValueError, "decode: values, keys, cmds and meta differ in length");
        goto done;
    }
    Py_ssize_t fallbacks = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t *row = (int64_t *)cmds_view.buf + i * CMD_W;
        int64_t *m = (int64_t *)meta_view.buf + i * META_W;
        memset(row, 0, sizeof(int64_t) * CMD_W);
        memset(m, 0, sizeof(int64_t) * META_W);
        int status = decode_one(self, PyList_GET_ITEM(values, i), PyList_GET_ITEM(keys, i), row, m);
        if (status < 0) goto done;
        if (status == STATUS_PYTHON) {
            memset(row, 0, sizeof(int64_t) * CMD_W);
            memset(m, 0, sizeof(int64_t) * META_W);
            m[M_STATUS] = STATUS_PYTHON;
            fallbacks++;
        }
    }
    result = PyLong_FromSsize_t(fallbacks);
done:
    PyBuffer_Release(&cmds_view);
    PyBuffer_Release(&meta_view);
    return result;
}

static PyMethodDef decoder_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))decoder_decode, METH_FASTCALL,
     "decode(values, keys, cmds, meta) -> inputs left to the Python path"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RequestDecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tradex.matching._matcher_wire.RequestDecoder",
    .tp_basicsize = sizeof(RequestDecoder),
    .tp_dealloc = (destructor)decoder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "order-requests records -> kernel command rows (see the module docstring)",
    .tp_methods = decoder_methods,
    .tp_new = decoder_new,
};

/* -- Emitter ------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *programs[R_TYPES]; /* encoder Programs */
    PyObject *output_type, *topic_engine, *topic_settle, *producer, *partition_obj;
    PyObject *overflow_error;
    PyObject *sides[2];      /* by kernel side: "BUY", "SELL" */
    PyObject *order_kinds;   /* by NewOrder kind index: the symbol */
    PyObject *requests;      /* by REQ_*: the request name */
    PyObject *reasons;       /* by engine reason code: the wire Reason */
    PyObject *details;       /* by engine reason code: its name */
    PyObject *liquidity[2];  /* MAKER, TAKER */
    PyObject *ends[4];       /* EndReason FILLED, CANCELLED, EXPIRED, REJECTED */
    PyObject *unknown_reason, *unknown_detail, *unknown_text;
    int64_t partition, settle_partitions;
    uint64_t not_ending;     /* reason codes (< 64) whose rejection leaves the order alive */
    uint64_t amend_live;     /* reason codes (< 64) of an amend refused with the order kept:
                                the rejection row carries its terms, confirmed to the account */
} Emitter;

static void emitter_dealloc(Emitter *self) {
    for (int k = 0; k < R_TYPES; k++) Py_XDECREF(self->programs[k]);
    Py_XDECREF(self->output_type);
    Py_XDECREF(self->topic_engine);
    Py_XDECREF(self->topic_settle);
    Py_XDECREF(self->producer);
    Py_XDECREF(self->partition_obj);
    Py_XDECREF(self->overflow_error);
    for (int k = 0; k < 2; k++) Py_XDECREF(self->sides[k]);
    for (int k = 0; k < 2; k++) Py_XDECREF(self->liquidity[k]);
    for (int k = 0; k < 4; k++) Py_XDECREF(self->ends[k]);
    Py_XDECREF(self->order_kinds);
    Py_XDECREF(self->requests);
    Py_XDECREF(self->reasons);
    Py_XDECREF(self->details);
    Py_XDECREF(self->unknown_reason);
    Py_XDECREF(self->unknown_detail);
    Py_XDECREF(self->unknown_text);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int str_items(PyObject *tuple, PyObject **out, Py_ssize_t n, const char *what) {
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != n) {
        PyErr_Format(PyExc_TypeError, "%s: a tuple of %zd str", what, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s: a tuple of str", what);
            return -1;
        }
        Py_INCREF(item);
        out[i] = item;
    }
    return 0;
}

static int str_tuple_arg(PyObject *tuple, PyObject **out, const char *what) {
    if (!PyTuple_Check(tuple)) {
        PyErr_Format(PyExc_TypeError, "%s: a tuple of str", what);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(tuple, i))) {
            PyErr_Format(PyExc_TypeError, "%s: a tuple of str", what);
            return -1;
        }
    }
    Py_INCREF(tuple);
    *out = tuple;
    return 0;
}

/* A tuple of reason codes (< 64) as a bit mask. */
static int reason_mask(PyObject *codes, const char *name, uint64_t *mask) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(codes); i++) {
        long code = PyLong_AsLong(PyTuple_GET_ITEM(codes, i));
        if (code == -1 && PyErr_Occurred()) return -1;
        if (code < 0 || code >= 64) {
            PyErr_Format(PyExc_ValueError, "%s: reason codes below 64", name);
            return -1;
        }
        *mask |= (uint64_t)1 << code;
    }
    return 0;
}

/* Emitter(programs, output_type, topic_engine, topic_settle, producer, partition,
 *         settle_partitions, overflow_error, sides, order_kinds, requests, reasons, details,
 *         liquidity, ends, unknown, not_ending, amend_live) */
static PyObject *emitter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *programs, *output_type, *topic_engine, *topic_settle, *producer, *overflow;
    PyObject *sides, *order_kinds, *requests, *reasons, *details, *liquidity, *ends, *unknown;
    PyObject *not_ending, *amend_live;
    long long partition, settle_partitions;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "Emitter takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!OUUULLOO!O!O!O!O!O!O!O!O!O!", &PyTuple_Type, &programs,
                          &output_type, &topic_engine, &topic_settle, &producer, &partition,
                          &settle_partitions, &overflow, &PyTuple_Type, &sides, &PyTuple_Type,
                          &order_kinds, &PyTuple_Type, &requests, &PyTuple_Type, &reasons,
                          &PyTuple_Type, &details, &PyTuple_Type, &liquidity, &PyTuple_Type,
                          &ends, &PyTuple_Type, &unknown, &PyTuple_Type, &not_ending,
                          &PyTuple_Type, &amend_live))
        return NULL;
    if (!(PyType_Check(output_type) &&
          PyType_IsSubtype((PyTypeObject *)output_type, &PyTuple_Type)) ||
        !PyExceptionClass_Check(overflow)) {
        PyErr_SetString(PyExc_TypeError, "output_type: a NamedTuple type; overflow: an exception");
        return NULL;
    }
    if (partition < 0 || partition > 0xFFF || settle_partitions <= 0 ||
        PyTuple_GET_SIZE(programs) != R_TYPES || PyTuple_GET_SIZE(requests) != REQ_KINDS ||
        PyTuple_GET_SIZE(reasons) != PyTuple_GET_SIZE(details)) {
        PyErr_SetString(PyExc_ValueError, "Emitter: bad partition or table sizes");
        return NULL;
    }
    Emitter *self = (Emitter *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    for (int k = 0; k < R_TYPES; k++) {
        PyObject *program = PyTuple_GET_ITEM(programs, k);
        Py_INCREF(program);
        self->programs[k] = program;
    }
    Py_INCREF(output_type);
    self->output_type = output_type;
    Py_INCREF(topic_engine);
    self->topic_engine = topic_engine;
    Py_INCREF(topic_settle);
    self->topic_settle = topic_settle;
    Py_INCREF(producer);
    self->producer = producer;
    Py_INCREF(overflow);
    self->overflow_error = overflow;
    self->partition = partition;
    self->settle_partitions = settle_partitions;
    self->partition_obj = PyLong_FromLongLong(partition);
    if (self->partition_obj == NULL) goto fail;
    if (str_items(sides, self->sides, 2, "sides") < 0 ||
        str_items(liquidity, self->liquidity, 2, "liquidity") < 0 ||
        str_items(ends, self->ends, 4, "ends") < 0 ||
        str_tuple_arg(order_kinds, &self->order_kinds, "order_kinds") < 0 ||
        str_tuple_arg(requests, &self->requests, "requests") < 0 ||
        str_tuple_arg(reasons, &self->reasons, "reasons") < 0 ||
        str_tuple_arg(details, &self->details, "details") < 0)
        goto fail;
    PyObject *unknown_items[3];
    if (str_items(unknown, unknown_items, 3, "unknown") < 0) goto fail;
    self->unknown_reason = unknown_items[0];
    self->unknown_detail = unknown_items[1];
    self->unknown_text = unknown_items[2];
    if (reason_mask(not_ending, "not_ending", &self->not_ending) < 0 ||
        reason_mask(amend_live, "amend_live", &self->amend_live) < 0)
        goto fail;
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

/* What one emit() call works with. */
typedef struct {
    Emitter *self;
    PyObject *outputs;           /* NULL: encode and hash only (emit's outputs is None) */
    unsigned char *engine_prev;  /* 32 bytes */
    unsigned char *settle_prev;  /* settle_partitions x 32 */
    unsigned char *settle_seen;  /* settle_partitions */
    int64_t *counters;           /* trades_total, engine_events, settlements, trades */
    /* the input being emitted */
    const char *value;           /* its bytes (envelope strings) */
    const int64_t *m;
    int64_t time_ns;             /* of its records */
    uint64_t id_hi;              /* event ids: high 64 bits (time, version, partition) */
    uint64_t id_lo_base;         /* low 64 bits without source and index */
    int64_t engine_index, settle_index;
    char eid[ID_TEXT];           /* the id of the last engine record (settlements' causation) */
} Emit;

enum { K_TRADES_TOTAL, K_ENGINE_EVENTS, K_SETTLEMENTS, K_TRADES, K_W };

static const char HEX[] = "0123456789abcdef";

/* The event id text (tradex.domain.ids.uuid_text of tradex.log.ids.event_id_base + index). */
static int event_id(Emit *e, int source, int64_t index, char *out) {
    if (index < 0 || index >= OUTPUTS_PER_INPUT_MAX) {
        PyErr_Format(e->self->overflow_error, "one input caused more than %d outputs",
                     OUTPUTS_PER_INPUT_MAX);
        return -1;
    }
    uint64_t lo = e->id_lo_base | (uint64_t)source << 56 | (uint64_t)index;
    char h[32];
    for (int k = 0; k < 16; k++) {
        h[k] = HEX[(e->id_hi >> (60 - 4 * k)) & 0xF];
        h[16 + k] = HEX[(lo >> (60 - 4 * k)) & 0xF];
    }
    memcpy(out, h, 8);
    out[8] = '-';
    memcpy(out + 9, h + 8, 4);
    out[13] = '-';
    memcpy(out + 14, h + 12, 4);
    out[18] = '-';
    memcpy(out + 19, h + 16, 4);
    out[23] = '-';
    memcpy(out + 24, h + 20, 12);
    return 0;
}

/* Start the ids of an input at ``time_ns`` (tradex.log.ids.event_id_base). */
static int start_input(Emit *e, const int64_t *m, const char *value, int64_t time_ns) {
    int64_t offset = m[M_OFFSET];
    int64_t unix_ms = (time_ns > 0 ? time_ns : 0) / 1000000;
    if (offset < 0 || offset >= INPUT_OFFSET_MAX) {
        PyErr_SetString(PyExc_AssertionError, "order-requests offset beyond 40 bits");
        return -1;
    }
    if (unix_ms > UNIX_MS_MAX) {
        PyErr_SetString(PyExc_AssertionError, "event time out of the UUIDv7 range");
        return -1;
    }
    e->m = m;
    e->value = value;
    e->time_ns = time_ns;
    e->id_hi = (uint64_t)unix_ms << 16 | (uint64_t)0x7 << 12 | (uint64_t)e->self->partition;
    e->id_lo_base = (uint64_t)0x2 << 62 | (uint64_t)offset << 16;
    e->engine_index = 0;
    e->settle_index = 0;
    return 0;
}

static int append_output(Emit *e, PyObject *topic, PyObject *data, PyObject *key,
                         PyObject *partition) {
    if (e->outputs == NULL) { /* its hash is in the chain tail already */
        Py_DECREF(data);
        return 0;
    }
    PyTypeObject *type = (PyTypeObject *)e->self->output_type;
    PyObject *output = type->tp_alloc(type, 4);
    if (output == NULL) {
        Py_DECREF(data);
        return -1;
    }
    Py_INCREF(topic);
    Py_INCREF(key);
    Py_INCREF(partition);
    PyTuple_SET_ITEM(output, 0, topic);
    PyTuple_SET_ITEM(output, 1, data); /* stolen */
    PyTuple_SET_ITEM(output, 2, key);
    PyTuple_SET_ITEM(output, 3, partition);
    /* str, bytes and int only: it can be in no reference cycle, so the cyclic GC need not
     * track it (tens of thousands per batch; tracked, they made the collector's passes cost
     * more than the encoding) */
    PyObject_GC_UnTrack(output);
    int status = PyList_Append(e->outputs, output);
    Py_DECREF(output);
    return status;
}

/* The envelope cells of a record caused by the current input: ``id``, ``causation``. */
static void envelope(Emit *e, TxCell *env, const char *id, const char *causation,
                     Py_ssize_t causation_n, int64_t seq) {
    const int64_t *m = e->m;
    cell_s(&env[EF_EVENT_ID], id, ID_TEXT);
    cell_s(&env[EF_CAUSATION], causation, causation_n);
    cell_s(&env[EF_CORRELATION], e->value + m[M_CORR_AT], m[M_CORR_N]);
    cell_o(&env[EF_PRODUCER], e->self->producer);
    cell_i(&env[EF_SEQ], seq);
    cell_s(&env[EF_TRACE], e->value + m[M_TRACE_AT], m[M_TRACE_N]);
}

/* An engine record of type ``type`` (cells ``row``) for the current input, the next link of
 * the engine-events chain; its id is left in e->eid. */
static int put_engine(Emit *e, int type, const TxCell *row, int64_t seq, PyObject *key) {
    TxCell env[EF_W];
    if (event_id(e, SOURCE_ENGINE_EVENTS, e->engine_index, e->eid) < 0) return -1;
    e->engine_index++;
    const int64_t *m = e->m;
    envelope(e, env, e->eid, e->value + m[M_EID_AT], m[M_EID_N], seq);
    unsigned char digest[TX_HASH_SIZE];
    PyObject *data = codec_api->encode_cells(e->self->programs[type], row, record_width(type), env,
                                             EF_W, e->engine_prev, digest);
    if (data == NULL) return -1;
    memcpy(e->engine_prev, digest, TX_HASH_SIZE);
    e->counters[K_ENGINE_EVENTS]++;
    return append_output(e, e->self->topic_engine, data, key, e->self->partition_obj);
}

/* A settlement (FillLeg / OrderEnded / AmendConfirmed) of ``account`` caused by the engine record e->eid. */
static int put_settlement(Emit *e, int type, const TxCell *row, int64_t account, int64_t seq) {
    char id[ID_TEXT], text[TX_DECIMAL_MAX];
    TxCell env[EF_W];
    if (event_id(e, SOURCE_SETTLEMENTS, e->settle_index, id) < 0) return -1;
    e->settle_index++;
    envelope(e, env, id, e->eid, ID_TEXT, seq);
    int length = tx_decimal(text, account);
    int64_t target = (int64_t)((tx_murmur2((const unsigned char *)text, length) & 0x7FFFFFFFu) %
                               (uint64_t)e->self->settle_partitions);
    static const unsigned char zero[TX_HASH_SIZE] = {0};
    unsigned char *prev = e->settle_prev + target * TX_HASH_SIZE;
    unsigned char digest[TX_HASH_SIZE];
    PyObject *data = codec_api->encode_cells(e->self->programs[type], row, record_width(type), env,
                                             EF_W, e->settle_seen[target] ? prev : zero, digest);
    if (data == NULL) return -1;
    memcpy(prev, digest, TX_HASH_SIZE);
    e->settle_seen[target] = 1;
    e->counters[K_SETTLEMENTS]++;
    if (e->outputs == NULL) return append_output(e, NULL, data, NULL, NULL);
    PyObject *key = PyBytes_FromStringAndSize(text, length);
    PyObject *partition = key != NULL ? PyLong_FromLongLong(target) : NULL;
    if (partition == NULL) {
        Py_XDECREF(key);
        Py_DECREF(data);
        return -1;
    }
    int status = append_output(e, e->self->topic_settle, data, key, partition);
    Py_DECREF(key);
    Py_DECREF(partition);
    return status;
}

static PyObject *side_name(Emit *e, int64_t side) {
    if (side != SIDE_BUY && side != SIDE_SELL) {
        PyObject *value = PyLong_FromLongLong(side);
        if (value != NULL) {
            PyErr_SetObject(PyExc_KeyError, value);
            Py_DECREF(value);
        }
        return NULL;
    }
    return e->self->sides[side];
}

/* reason_of / detail_of (wire.py): new references (a code outside the tables: UNKNOWN and
 * its number). */
static int reason_texts(Emit *e, int64_t code, PyObject **reason, PyObject **detail) {
    if (code >= 0 && code < PyTuple_GET_SIZE(e->self->reasons)) {
        *reason = PyTuple_GET_ITEM(e->self->reasons, code);
        *detail = PyTuple_GET_ITEM(e->self->details, code);
        Py_INCREF(*reason);
        Py_INCREF(*detail);
        return 0;
    }
    *detail = PyUnicode_FromFormat("%lld", (long long)code);
    if (*detail == NULL) return -1;
    *reason = PyTuple_GET_ITEM(e->self->reasons, 0); /* REASON_NONE: UNKNOWN */
    Py_INCREF(*reason);
    return 0;
}

static int put_trade(Emit *e, const int64_t *t, int64_t instrument, PyObject *key) {
    if (t[T_TIME] != e->time_ns) {
        PyErr_SetString(PyExc_AssertionError, "a kernel output not at its input's engine time");
        return -1;
    }
    int64_t *counters = e->counters;
    counters[K_TRADES_TOTAL]++;
    counters[K_TRADES]++;
    int64_t trade_id = e->self->partition << TRADE_ID_COUNTER_BITS | counters[K_TRADES_TOTAL];
    PyObject *taker_side = side_name(e, t[T_TAKER_SIDE]);
    if (taker_side == NULL) return -1;
    PyObject *maker_side = e->self->sides[t[T_TAKER_SIDE] == SIDE_BUY ? SIDE_SELL : SIDE_BUY];
    TxCell row[10];
    cell_i(&row[0], instrument);
    cell_i(&row[1], trade_id);
    cell_i(&row[2], t[T_PRICE]);
    cell_i(&row[3], t[T_QTY]);
    cell_o(&row[4], taker_side);
    cell_i(&row[5], t[T_MAKER_ID]);
    cell_i(&row[6], t[T_MAKER_OWNER]);
    cell_i(&row[7], t[T_TAKER_ID]);
    cell_i(&row[8], t[T_TAKER_OWNER]);
    cell_i(&row[9], e->time_ns);
    if (put_engine(e, R_TRADE, row, t[T_SEQ], key) < 0) return -1;
    for (int leg = 0; leg < 2; leg++) { /* maker, then taker */
        int64_t account = leg == 0 ? t[T_MAKER_OWNER] : t[T_TAKER_OWNER];
        TxCell fill[9];
        cell_i(&fill[0], account);
        cell_i(&fill[1], leg == 0 ? t[T_MAKER_ID] : t[T_TAKER_ID]);
        cell_i(&fill[2], trade_id);
        cell_i(&fill[3], instrument);
        cell_o(&fill[4], leg == 0 ? maker_side : taker_side);
        cell_i(&fill[5], t[T_PRICE]);
        cell_i(&fill[6], t[T_QTY]);
        cell_o(&fill[7], e->self->liquidity[leg]);
        cell_i(&fill[8], e->time_ns);
        if (put_settlement(e, R_FILL_LEG, fill, account, t[T_SEQ]) < 0) return -1;
    }
    return 0;
}

static int put_l2(Emit *e, const int64_t *d, int64_t instrument, int64_t book_seq,
                  PyObject *key) {
    if (d[L_TIME] != e->time_ns) {
        PyErr_SetString(PyExc_AssertionError, "a kernel output not at its input's engine time");
        return -1;
    }
    PyObject *side = side_name(e, d[L_SIDE]);
    if (side == NULL) return -1;
    TxCell row[6];
    cell_i(&row[0], instrument);
    cell_o(&row[1], side);
    cell_i(&row[2], d[L_PRICE]);
    cell_i(&row[3], d[L_QTY]);
    cell_i(&row[4], book_seq);
    cell_i(&row[5], e->time_ns);
    return put_engine(e, R_L2_DELTA, row, d[L_SEQ], key);
}

/* The engine record of one event row, then its OrderEnded when it ends an order
 * (wire.event_record, wire.end_reason). */
static int put_event(Emit *e, const int64_t *ev, int64_t instrument, int lost_priority,
                     PyObject *key) {
    if (ev[E_TIME] != e->time_ns) {
        PyErr_SetString(PyExc_AssertionError, "a kernel output not at its input's engine time");
        return -1;
    }
    const int64_t *m = e->m;
    int64_t kind = ev[E_KIND], code = ev[E_REASON];
    TxCell row[8];
    PyObject *reason = NULL, *detail = NULL, *side;
    int type, status = -1;
    cell_i(&row[0], instrument);
    cell_i(&row[1], ev[E_ORDER_ID]);
    cell_i(&row[2], ev[E_OWNER]);
    switch (kind) {
    case EV_ACCEPTED: {
        int64_t order_kind = m[M_ORDER_KIND];
        if (order_kind < 0 || order_kind >= PyTuple_GET_SIZE(e->self->order_kinds)) {
            PyErr_SetString(PyExc_AssertionError, "Accepted without its order kind");
            return -1;
        }
        if ((side = side_name(e, ev[E_SIDE])) == NULL) return -1;
        type = R_ACCEPTED;
        cell_o(&row[3], side);
        cell_o(&row[4], PyTuple_GET_ITEM(e->self->order_kinds, order_kind));
        cell_i(&row[5], m[M_PRICE]);
        cell_i(&row[6], ev[E_QTY]);
        cell_i(&row[7], e->time_ns);
        break;
    }
    case EV_RESTED:
        if ((side = side_name(e, ev[E_SIDE])) == NULL) return -1;
        type = R_RESTED;
        cell_o(&row[3], side);
        cell_i(&row[4], ev[E_PRICE]);
        cell_i(&row[5], ev[E_QTY]);
        cell_i(&row[6], e->time_ns);
        break;
    case EV_FILLED:
        if ((side = side_name(e, ev[E_SIDE])) == NULL) return -1;
        type = R_FILLED;
        cell_o(&row[3], side);
        cell_i(&row[4], ev[E_FILLED]);
        cell_i(&row[5], e->time_ns);
        break;
    case EV_CANCELLED:
    case EV_EXPIRED:
        if (reason_texts(e, code, &reason, &detail) < 0) return -1;
        type = kind == EV_CANCELLED ? R_CANCELLED : R_EXPIRED;
        cell_i(&row[3], ev[E_QTY]);
        cell_o(&row[4], reason);
        cell_o(&row[5], detail);
        cell_i(&row[6], e->time_ns);
        break;
    case EV_REJECTED:
        if (reason_texts(e, code, &reason, &detail) < 0) return -1;
        type = R_REJECTED;
        cell_o(&row[3], reason);
        cell_o(&row[4], PyTuple_GET_ITEM(e->self->requests, m[M_KIND]));
        cell_o(&row[5], detail);
        cell_i(&row[6], e->time_ns);
        break;
    case EV_AMENDED:
    case EV_DECREMENTED:
        type = R_AMEND_APPLIED;
        cell_i(&row[3], ev[E_PRICE]);
        cell_i(&row[4], ev[E_QTY] + ev[E_FILLED]); /* the new total over the order's life */
        cell_i(&row[5], lost_priority && kind == EV_AMENDED);
        cell_i(&row[6], e->time_ns);
        break;
    case EV_RULES:
        type = R_RULES_APPLIED;
        cell_i(&row[1], ev[E_QTY]); /* band */
        cell_i(&row[2], ev[E_SIDE] == 1); /* halted */
        cell_i(&row[3], e->time_ns);
        break;
    default:
        PyErr_Format(PyExc_AssertionError, "unknown engine event kind %lld", (long long)kind);
        return -1;
    }
    if (put_engine(e, type, row, ev[E_SEQ], key) < 0) goto done;
    int decrement = kind == EV_DECREMENTED; /* self-trade prevention */
    if (decrement ||
        (m[M_KIND] == REQ_AMEND && ev[E_ORDER_ID] == m[M_ORDER_ID] &&
         (kind == EV_AMENDED ||
          (kind == EV_REJECTED && code >= 0 && code < 64 && (e->self->amend_live >> code & 1))))) {
        /* the engine's terms after the amend (applied, or refused with the order left as it
         * was) or after a decrement (amend time < 0: it answers no amend): the account
         * releases what they no longer need at once (docs/ledger.md) */
        TxCell confirmed[7];
        cell_i(&confirmed[0], ev[E_OWNER]);
        cell_i(&confirmed[1], ev[E_ORDER_ID]);
        cell_i(&confirmed[2], instrument);
        cell_i(&confirmed[3], ev[E_PRICE]);
        cell_i(&confirmed[4], ev[E_QTY] + ev[E_FILLED]);
        cell_i(&confirmed[5], decrement ? -ev[E_SEQ] : m[M_TIME]); /* decrement_amend_time */
        cell_i(&confirmed[6], e->time_ns);
        if (put_settlement(e, R_AMEND_CONFIRMED, confirmed, ev[E_OWNER], ev[E_SEQ]) < 0) goto done;
    }
    PyObject *end = NULL;
    if (kind == EV_FILLED) {
        end = e->self->ends[0];
    } else if (kind == EV_CANCELLED) {
        end = e->self->ends[1];
    } else if (kind == EV_EXPIRED) {
        end = e->self->ends[2];
    } else if (kind == EV_REJECTED && m[M_KIND] == REQ_NEW && ev[E_ORDER_ID] > 0 &&
               !(code >= 0 && code < 64 && (e->self->not_ending >> code & 1))) {
        end = e->self->ends[3];
    }
    if (end != NULL) {
        TxCell ended[5];
        cell_i(&ended[0], ev[E_OWNER]);
        cell_i(&ended[1], ev[E_ORDER_ID]);
        cell_i(&ended[2], instrument);
        cell_o(&ended[3], end);
        cell_i(&ended[4], e->time_ns);
        if (put_settlement(e, R_ORDER_ENDED, ended, ev[E_OWNER], ev[E_SEQ]) < 0) goto done;
    }
    status = 0;
done:
    Py_XDECREF(reason);
    Py_XDECREF(detail);
    return status;
}

/* An input for an instrument without a book: Rejected (UNKNOWN_INSTRUMENT, seq 0) at the
 * request's time, and OrderEnded (REJECTED) for a NewOrder with an id. */
static int put_unknown(Emit *e) {
    const int64_t *m = e->m;
    char text[TX_DECIMAL_MAX];
    int length = tx_decimal(text, m[M_INSTRUMENT]);
    PyObject *key = PyBytes_FromStringAndSize(text, length);
    if (key == NULL) return -1;
    TxCell row[7];
    cell_i(&row[0], m[M_INSTRUMENT]);
    cell_i(&row[1], m[M_ORDER_ID]);
    cell_i(&row[2], m[M_ACCOUNT]);
    cell_o(&row[3], e->self->unknown_reason);
    cell_o(&row[4], PyTuple_GET_ITEM(e->self->requests, m[M_KIND]));
    cell_o(&row[5], e->self->unknown_detail);
    cell_i(&row[6], e->time_ns);
    int status = put_engine(e, R_REJECTED, row, 0, key);
    Py_DECREF(key);
    if (status < 0) return -1;
    if (m[M_KIND] == REQ_NEW && m[M_ORDER_ID] > 0) {
        TxCell ended[5];
        cell_i(&ended[0], m[M_ACCOUNT]);
        cell_i(&ended[1], m[M_ORDER_ID]);
        cell_i(&ended[2], m[M_INSTRUMENT]);
        cell_o(&ended[3], e->self->ends[3]);
        cell_i(&ended[4], e->time_ns);
        if (put_settlement(e, R_ORDER_ENDED, ended, m[M_ACCOUNT], 0) < 0) return -1;
    }
    return 0;
}

typedef struct {
    const int64_t *trades, *events, *l2;
    Py_ssize_t n_trades, n_events, n_l2;
} Outs;

/* The kernel outputs of command ``row`` of book ``b`` (cursors at its first ones), merged by
 * seq, each encoded with what it causes. */
static int put_book_input(Emit *e, const Outs *o, int64_t *book, Py_ssize_t *cur,
                          PyObject *key) {
    const int64_t *m = e->m;
    int64_t row = m[M_ROW], instrument = book[B_INSTRUMENT];
    Py_ssize_t *tc = &cur[0], *ec = &cur[1], *lc = &cur[2];
    if ((*tc < book[B_T1] && o->trades[*tc * TRADE_W + T_CMD] < row) ||
        (*ec < book[B_E1] && o->events[*ec * EVENT_W + E_CMD] < row) ||
        (*lc < book[B_L1] && o->l2[*lc * L2_W + L_CMD] < row)) {
        PyErr_SetString(PyExc_AssertionError, "kernel outputs of an earlier command left over");
        return -1;
    }
    int lost_priority = 0; /* an amend that left its level (re-queued or gone) */
    if (m[M_KIND] == REQ_AMEND) {
        for (Py_ssize_t k = *ec; k < book[B_E1] && o->events[k * EVENT_W + E_CMD] == row; k++) {
            int64_t kind = o->events[k * EVENT_W + E_KIND];
            if (kind == EV_RESTED || kind == EV_FILLED || kind == EV_CANCELLED) lost_priority = 1;
        }
    }
    for (;;) { /* each step consumes one output: bounded by the book's outputs */
        const int64_t *t = *tc < book[B_T1] ? o->trades + *tc * TRADE_W : NULL;
        const int64_t *ev = *ec < book[B_E1] ? o->events + *ec * EVENT_W : NULL;
        const int64_t *d = *lc < book[B_L1] ? o->l2 + *lc * L2_W : NULL;
        if (t != NULL && t[T_CMD] != row) t = NULL;
        if (ev != NULL && ev[E_CMD] != row) ev = NULL;
        if (d != NULL && d[L_CMD] != row) d = NULL;
        if (t != NULL && ((ev != NULL && ev[E_SEQ] < t[T_SEQ]) || (d != NULL && d[L_SEQ] < t[T_SEQ])))
            t = NULL;
        if (t != NULL) {
            (*tc)++;
            if (put_trade(e, t, instrument, key) < 0) return -1;
            continue;
        }
        if (ev != NULL && (d == NULL || ev[E_SEQ] < d[L_SEQ])) {
            (*ec)++;
            if (put_event(e, ev, instrument, lost_priority, key) < 0) return -1;
            continue;
        }
        if (d == NULL) return 0;
        (*lc)++;
        book[B_BOOK_SEQ]++;
        if (put_l2(e, d, instrument, book[B_BOOK_SEQ], key) < 0) return -1;
    }
}

/* emit(outputs, values, meta, trades, events, l2, books, book_keys, letters, engine_prev,
 *      settle_prev, settle_seen, counters) */
static PyObject *emitter_emit(Emitter *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 13 || !(PyList_CheckExact(args[0]) || args[0] == Py_None) ||
        !PyList_CheckExact(args[1]) ||
        !PyList_CheckExact(args[7]) || !PyList_CheckExact(args[8])) {
        PyErr_SetString(PyExc_TypeError,
                        "emit(outputs, values, meta, trades, events, l2, books, book_keys, "
                        "letters, engine_prev, settle_prev, settle_seen, counters)");
        return NULL;
    }
    PyObject *values = args[1], *book_keys = args[7], *letters = args[8];
    Py_buffer views[9];
    int held = 0;
    Py_ssize_t n, n_trades, n_events, n_l2, n_books, n_prev, n_seen, n_counters, n_engine;
    static const struct {
        int arg;
        Py_ssize_t itemsize, width;
        int writable;
        const char *what;
    } specs[9] = {
        {2, 8, META_W, 0, "meta"},         {3, 8, TRADE_W, 0, "trades"},
        {4, 8, EVENT_W, 0, "events"},      {5, 8, L2_W, 0, "l2"},
        {6, 8, BOOK_W, 1, "books"},        {9, 1, TX_HASH_SIZE, 1, "engine_prev"},
        {10, 1, TX_HASH_SIZE, 1, "settle_prev"}, {11, 1, 1, 1, "settle_seen"},
        {12, 8, K_W, 1, "counters"},
    };
    Py_ssize_t *rows[9] = {&n, &n_trades, &n_events, &n_l2, &n_books, &n_engine, &n_prev,
                           &n_seen, &n_counters};
    Py_ssize_t *cursors = NULL;
    PyObject *result = NULL;
    for (; held < 9; held++) {
        if (get_rows(args[specs[held].arg], &views[held], specs[held].itemsize, specs[held].width,
                     specs[held].writable, rows[held], specs[held].what) < 0)
            goto done;
    }
    if (PyList_GET_SIZE(values) != n || PyList_GET_SIZE(book_keys) != n_books || n_engine != 1 ||
        n_prev != self->settle_partitions || n_seen != self->settle_partitions ||
        n_counters != 1) {
        PyErr_SetString(PyExc_ValueError, "emit: inputs, books or chain state of another size");
        goto done;
    }
    Outs o = {views[1].buf, views[2].buf, views[3].buf, n_trades, n_events, n_l2};
    int64_t *books = views[4].buf;
    for (Py_ssize_t b = 0; b < n_books; b++) {
        int64_t *book = books + b * BOOK_W;
        if (!(0 <= book[B_T0] && book[B_T0] <= book[B_T1] && book[B_T1] <= n_trades &&
              0 <= book[B_E0] && book[B_E0] <= book[B_E1] && book[B_E1] <= n_events &&
              0 <= book[B_L0] && book[B_L0] <= book[B_L1] && book[B_L1] <= n_l2) ||
            !PyBytes_CheckExact(PyList_GET_ITEM(book_keys, b))) {
            PyErr_SetString(PyExc_ValueError, "emit: a book's output range or key is bad");
            goto done;
        }
    }
    cursors = PyMem_Calloc(n_books > 0 ? (size_t)n_books * 3 : 1, sizeof(Py_ssize_t));
    if (cursors == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t b = 0; b < n_books; b++) {
        cursors[3 * b] = books[b * BOOK_W + B_T0];
        cursors[3 * b + 1] = books[b * BOOK_W + B_E0];
        cursors[3 * b + 2] = books[b * BOOK_W + B_L0];
    }
    Emit e = {.self = self, .outputs = args[0] == Py_None ? NULL : args[0], .engine_prev = views[5].buf,
              .settle_prev = views[6].buf, .settle_seen = views[7].buf, .counters = views[8].buf};
    Py_ssize_t letter = 0;
    const int64_t *meta = views[0].buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        const int64_t *m = meta + i * META_W;
        if (m[M_ROUTE] == ROUTE_DEAD) {
            if (letter >= PyList_GET_SIZE(letters)) {
                PyErr_SetString(PyExc_ValueError, "emit: fewer dead letters than dead inputs");
                goto done;
            }
            PyObject *dead = PyList_GET_ITEM(letters, letter++);
            if (e.outputs != NULL && PyList_Append(e.outputs, dead) < 0) goto done;
            continue;
        }
        PyObject *value = PyList_GET_ITEM(values, i);
        if (!PyBytes_CheckExact(value) || m[M_KIND] < REQ_NEW || m[M_KIND] > REQ_RULES ||
            m[M_EID_AT] < 0 || m[M_CORR_AT] < 0 || m[M_TRACE_AT] < 0 || m[M_EID_N] < 0 ||
            m[M_CORR_N] < 0 || m[M_TRACE_N] < 0 ||
            m[M_EID_AT] + m[M_EID_N] > PyBytes_GET_SIZE(value) ||
            m[M_CORR_AT] + m[M_CORR_N] > PyBytes_GET_SIZE(value) ||
            m[M_TRACE_AT] + m[M_TRACE_N] > PyBytes_GET_SIZE(value)) {
            PyErr_SetString(PyExc_ValueError, "emit: an input's strings lie outside its bytes");
            goto done;
        }
        const char *bytes = PyBytes_AS_STRING(value);
        if (m[M_ROUTE] == ROUTE_UNKNOWN) {
            if (start_input(&e, m, bytes, m[M_TIME]) < 0 || put_unknown(&e) < 0) goto done;
            continue;
        }
        int64_t b = m[M_BOOK];
        if (m[M_ROUTE] != ROUTE_BOOK || b < 0 || b >= n_books) {
            PyErr_SetString(PyExc_ValueError, "emit: an input without its route or book");
            goto done;
        }
        if (start_input(&e, m, bytes, m[M_ENGINE_TIME]) < 0 ||
            put_book_input(&e, &o, books + b * BOOK_W, cursors + 3 * b,
                           PyList_GET_ITEM(book_keys, b)) < 0)
            goto done;
    }
    if (letter != PyList_GET_SIZE(letters)) {
        PyErr_SetString(PyExc_ValueError, "emit: more dead letters than dead inputs");
        goto done;
    }
    for (Py_ssize_t b = 0; b < n_books; b++) {
        const int64_t *book = books + b * BOOK_W;
        if (cursors[3 * b] != book[B_T1] || cursors[3 * b + 1] != book[B_E1] ||
            cursors[3 * b + 2] != book[B_L1]) {
            PyErr_SetString(PyExc_AssertionError, "kernel outputs of no input were left over");
            goto done;
        }
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(cursors);
    for (int k = 0; k < held; k++) PyBuffer_Release(&views[k]);
    return result;
}

static PyMethodDef emitter_methods[] = {
    {"emit", (PyCFunction)(void (*)(void))emitter_emit, METH_FASTCALL,
     "emit(outputs, values, meta, trades, events, l2, books, book_keys, letters, engine_prev, "
     "settle_prev, settle_seen, counters): append a batch's outputs (outputs None: only the "
     "chain tails and counters advance; see the module docstring)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EmitterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tradex.matching._matcher_wire.Emitter",
    .tp_basicsize = sizeof(Emitter),
    .tp_dealloc = (destructor)emitter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "kernel outputs -> engine-events and settlements records (see the module docstring)",
    .tp_methods = emitter_methods,
    .tp_new = emitter_new,
};

/* -- module ---------------------------------------------------------------------------------- */

static PyObject *module_murmur2(PyObject *module, PyObject *arg) {
    (void)module;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "murmur2(bytes)");
        return NULL;
    }
    return PyLong_FromUnsignedLong(
        tx_murmur2((const unsigned char *)PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg)));
}

static PyMethodDef module_methods[] = {
    {"murmur2", module_murmur2, METH_O, "murmur2(data) -> Kafka's murmur2 (as the emitter routes)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tradex.matching._matcher_wire",
    "The matcher's per-record work in C (see tradex/matching/batch.py).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

static int add_int(PyObject *module, const char *name, long value) {
    return PyModule_AddIntConstant(module, name, value);
}

static int add_names(PyObject *module, const char *name, const char *const *names) {
    PyObject *tuple = str_tuple(names);
    if (tuple == NULL) return -1;
    if (PyModule_AddObject(module, name, tuple) < 0) {
        Py_DECREF(tuple);
        return -1;
    }
    return 0;
}

static int add_record_fields(PyObject *module) {
    PyObject *dict = PyDict_New();
    if (dict == NULL) return -1;
    for (int k = 0; k < R_TYPES; k++) {
        const char *names[12];
        Py_ssize_t width = record_width(k);
        for (Py_ssize_t i = 0; i < width; i++) names[i] = RECORD_FIELDS[k][i];
        names[width] = NULL;
        PyObject *tuple = str_tuple(names);
        if (tuple == NULL || PyDict_SetItemString(dict, RECORD_NAMES[k], tuple) < 0) {
            Py_XDECREF(tuple);
            Py_DECREF(dict);
            return -1;
        }
        Py_DECREF(tuple);
    }
    if (PyModule_AddObject(module, "RECORD_FIELDS", dict) < 0) {
        Py_DECREF(dict);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__matcher_wire(void) {
    PyObject *codec_module = PyImport_ImportModule("tradex.schemas._native_codec");
    if (codec_module == NULL) return NULL; /* PyCapsule_Import walks attributes: import first */
    Py_DECREF(codec_module);
    codec_api = (TxCodecApi *)PyCapsule_Import(TX_CODEC_API_CAPSULE, 0);
    if (codec_api == NULL) return NULL;
    if (codec_api->version != TX_CODEC_API_VERSION) {
        PyErr_SetString(PyExc_ImportError, "the C codec's API has another version");
        return NULL;
    }
    if (PyType_Ready(&RequestDecoderType) < 0 || PyType_Ready(&EmitterType) < 0) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    Py_INCREF(&RequestDecoderType);
    Py_INCREF(&EmitterType);
    if (PyModule_AddObject(module, "RequestDecoder", (PyObject *)&RequestDecoderType) < 0 ||
        PyModule_AddObject(module, "Emitter", (PyObject *)&EmitterType) < 0 ||
        add_names(module, "RECORD_TYPES", RECORD_NAMES) < 0 || add_record_fields(module) < 0 ||
        add_names(module, "NEW_ORDER_FIELDS", NEW_ORDER_FIELDS) < 0 ||
        add_names(module, "CANCEL_FIELDS", CANCEL_FIELDS) < 0 ||
        add_names(module, "AMEND_FIELDS", AMEND_FIELDS) < 0 ||
        add_names(module, "RULES_FIELDS", RULES_FIELDS) < 0 ||
        add_names(module, "ENVELOPE_FIELDS", ENVELOPE_FIELDS) < 0 ||
        add_names(module, "ENVELOPE_FIELDS_IN", ENVELOPE_FIELDS_IN) < 0 ||
        add_names(module, "CMD_FIELDS", CMD_FIELDS) < 0 ||
        add_names(module, "TRADE_FIELDS", TRADE_FIELDS) < 0 ||
        add_names(module, "EVENT_FIELDS", EVENT_FIELDS) < 0 ||
        add_names(module, "L2_FIELDS", L2_FIELDS) < 0 ||
        add_int(module, "CMD_W", CMD_W) < 0 || add_int(module, "TRADE_W", TRADE_W) < 0 ||
        add_int(module, "EVENT_W", EVENT_W) < 0 || add_int(module, "L2_W", L2_W) < 0 ||
        add_int(module, "META_W", META_W) < 0 || add_int(module, "BOOK_W", BOOK_W) < 0 ||
        add_int(module, "K_W", K_W) < 0 || add_int(module, "M_STATUS", M_STATUS) < 0 ||
        add_int(module, "M_KIND", M_KIND) < 0 || add_int(module, "M_INSTRUMENT", M_INSTRUMENT) < 0 ||
        add_int(module, "M_TIME", M_TIME) < 0 || add_int(module, "M_ORDER_KIND", M_ORDER_KIND) < 0 ||
        add_int(module, "M_PRICE", M_PRICE) < 0 || add_int(module, "M_ORDER_ID", M_ORDER_ID) < 0 ||
        add_int(module, "M_ACCOUNT", M_ACCOUNT) < 0 || add_int(module, "M_EID_AT", M_EID_AT) < 0 ||
        add_int(module, "M_EID_N", M_EID_N) < 0 || add_int(module, "M_CORR_AT", M_CORR_AT) < 0 ||
        add_int(module, "M_CORR_N", M_CORR_N) < 0 || add_int(module, "M_TRACE_AT", M_TRACE_AT) < 0 ||
        add_int(module, "M_TRACE_N", M_TRACE_N) < 0 || add_int(module, "M_OFFSET", M_OFFSET) < 0 ||
        add_int(module, "M_ROUTE", M_ROUTE) < 0 ||
        add_int(module, "M_ENGINE_TIME", M_ENGINE_TIME) < 0 ||
        add_int(module, "M_BOOK", M_BOOK) < 0 || add_int(module, "M_ROW", M_ROW) < 0 ||
        add_int(module, "STATUS_DECODED", STATUS_DECODED) < 0 ||
        add_int(module, "STATUS_PYTHON", STATUS_PYTHON) < 0 ||
        add_int(module, "ROUTE_BOOK", ROUTE_BOOK) < 0 ||
        add_int(module, "ROUTE_UNKNOWN", ROUTE_UNKNOWN) < 0 ||
        add_int(module, "ROUTE_DEAD", ROUTE_DEAD) < 0 ||
        add_int(module, "B_INSTRUMENT", B_INSTRUMENT) < 0 || add_int(module, "B_T0", B_T0) < 0 ||
        add_int(module, "B_T1", B_T1) < 0 || add_int(module, "B_E0", B_E0) < 0 ||
        add_int(module, "B_E1", B_E1) < 0 || add_int(module, "B_L0", B_L0) < 0 ||
        add_int(module, "B_L1", B_L1) < 0 || add_int(module, "B_BOOK_SEQ", B_BOOK_SEQ) < 0 ||
        add_int(module, "K_TRADES_TOTAL", K_TRADES_TOTAL) < 0 ||
        add_int(module, "K_ENGINE_EVENTS", K_ENGINE_EVENTS) < 0 ||
        add_int(module, "K_SETTLEMENTS", K_SETTLEMENTS) < 0 ||
        add_int(module, "K_TRADES", K_TRADES) < 0 || add_int(module, "OP_MARKET", OP_MARKET) < 0 ||
        add_int(module, "OP_CANCEL", OP_CANCEL) < 0 || add_int(module, "OP_AMEND", OP_AMEND) < 0 ||
        add_int(module, "OP_AMEND_KEEP", OP_AMEND_KEEP) < 0 ||
        add_int(module, "OP_RULES", OP_RULES) < 0 || add_int(module, "STP_NONE", STP_NONE) < 0 ||
        add_int(module, "PROTECTION_NONE", PROTECTION_NONE) < 0 ||
        add_int(module, "PROTECTION_BAD", PROTECTION_BAD) < 0 ||
        add_int(module, "SIDE_BUY", SIDE_BUY) < 0 || add_int(module, "SIDE_SELL", SIDE_SELL) < 0 ||
        add_int(module, "EV_ACCEPTED", EV_ACCEPTED) < 0 || add_int(module, "EV_RESTED", EV_RESTED) < 0 ||
        add_int(module, "EV_FILLED", EV_FILLED) < 0 ||
        add_int(module, "EV_CANCELLED", EV_CANCELLED) < 0 ||
        add_int(module, "EV_EXPIRED", EV_EXPIRED) < 0 ||
        add_int(module, "EV_REJECTED", EV_REJECTED) < 0 ||
        add_int(module, "EV_AMENDED", EV_AMENDED) < 0 ||
        add_int(module, "EV_DECREMENTED", EV_DECREMENTED) < 0 ||
        add_int(module, "EV_RULES", EV_RULES) < 0 || add_int(module, "REQ_NEW", REQ_NEW) < 0 ||
        add_int(module, "REQ_CANCEL", REQ_CANCEL) < 0 || add_int(module, "REQ_AMEND", REQ_AMEND) < 0 ||
        add_int(module, "REQ_RULES", REQ_RULES) < 0 ||
        add_int(module, "SOURCE_ENGINE_EVENTS", SOURCE_ENGINE_EVENTS) < 0 ||
        add_int(module, "SOURCE_SETTLEMENTS", SOURCE_SETTLEMENTS) < 0 ||
        add_int(module, "OUTPUTS_PER_INPUT_MAX", OUTPUTS_PER_INPUT_MAX) < 0 ||
        add_int(module, "TRADE_ID_COUNTER_BITS", TRADE_ID_COUNTER_BITS) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
