/* tradex.commands._account_kernel: the account processor's compiled decision path.
 *
 * Kernel.decide(messages, start, outputs) -> index
 *
 * decides the input records messages[start:] in order, as tradex.commands.processor's
 * Python loop with tradex.domain.account.Account would, for the hot cases only: an
 * accepted Deposit or PlaceOrder (account-commands), a FillLeg settled or an OrderEnded
 * released (settlements), of an account the book already holds or creates now. It reads
 * the wire bytes (Confluent framing, Avro body, the same checks and validate() rules as
 * the codec), decides against the live Python state (the Account objects of the
 * partition's AccountBook and the ReferenceData table), applies the event to that same
 * state (balance dicts, OpenOrder objects, the idempotency window, version), encodes the
 * event and the order request with their envelopes and hash chain, and appends the
 * stage's Output tuples. It returns the index of the first record it does not decide
 * (a rejection, a duplicate, a dead letter, a rare command, anything unusual): the caller
 * decides that one with the Python domain, on the same state, and calls again after it.
 * A record the kernel hands back has changed nothing but, possibly, the creation of its
 * (empty) account, which the Python path would create first too.
 *
 * The Python domain is the twin: tests/commands/test_compiled_twin.py replays >= 100k
 * seeded records through both and compares every output byte and the state.
 *
 * What the idempotency window keeps for a command decided here is its id, with an empty
 * outcome (as after a snapshot restore): the processor never re-emits an outcome, the
 * log holds it.
 *
 * The kernel references no processor object but its ``lives`` dict (partition -> _Live),
 * so processor -> kernel makes no reference cycle (the processor freezes the collector's
 * generations: a cycle of frozen objects would never be freed).
 *
 * Record layouts are fixed here, in the order of tradex/commands/compiled.py's LAYOUTS;
 * compiled.py refuses to build a kernel when the registry's newest schemas differ.
 *
 * Safety: every read is bounds-checked against the input; inputs are at most
 * INPUT_BYTES_MAX bytes, so every output fits RECORD_BYTES_MAX (checked anyway); every
 * loop is bounded by its input or a *_MAX constant; arithmetic that could leave int64
 * hands the record to the Python path (which raises or rejects as it always did).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define HEADER_SIZE 5
#define HASH_SIZE 32
#define INPUT_BYTES_MAX 4096   /* a bigger input record goes to the Python path */
#define RECORD_BYTES_MAX 16384 /* one output record: 3 x INPUT_BYTES_MAX of copied text + ids */
#define ASSET_BYTES_MAX 512    /* an asset code written by the kernel (ID_TEXT_LENGTH_MAX x 4) */
#define PRODUCER_BYTES_MAX 256
#define ASSETS_CACHED_MAX 64 /* decoded asset codes kept as str objects */
#define PARTITIONS_MAX 4096  /* = tradex.domain.ids.PARTITION_MAX + 1 */
#define ENUM_SYMBOLS_MAX 64
#define EVENT_ID_SIZE 36
#define COMMAND_ID_BYTES_MAX 64 /* fill/<int64>/<int64> */
#define POSTINGS_MAX 5
#define INSTRUMENTS_CACHED_MAX 16 /* instruments looked up in one decide() call */
#define ACCOUNT_KEY_BYTES_MAX 24  /* an int64 in decimal */
#define DETAIL_BYTES_MAX (ASSET_BYTES_MAX + 96)
#define UNIX_MS_MAX ((INT64_C(1) << 48) - 1)
#define OFFSET_MAX ((INT64_C(1) << 48) - 1)
#define PPM INT64_C(1000000)

#include "chain_hash.h"
#include "wire_prims.h"

/* An invariant of the kernel itself: raise AssertionError (the processor stops loudly). */
#define ENSURE(cond, message)                                   \
    do {                                                        \
        if (!(cond)) {                                          \
            PyErr_SetString(PyExc_AssertionError, (message));   \
            return -1;                                          \
        }                                                       \
    } while (0)

enum { SOURCE_COMMANDS = 0, SOURCE_SETTLEMENTS = 1 };
enum { IN_NONE = 0, IN_DEPOSIT, IN_PLACE, IN_FILL, IN_ENDED };
/* results of one record */
enum { HANDED_BACK = 0, DECIDED = 1 };

static const unsigned char ZERO_HASH[HASH_SIZE] = {0};

/* -- reading the input ----------------------------------------------------------------------- */

typedef struct {
    const char *p;
    Py_ssize_t n;
} Text;

typedef struct {
    const unsigned char *d;
    Py_ssize_t n;
    Py_ssize_t p;
    int bad; /* anything the codec would refuse: the Python path decides (dead-letters) it */
} In;

static inline int64_t in_long(In *r) {
    int64_t value;
    if (tx_get_long(r->d, r->n, &r->p, &value) == TX_LONG_OK) return value;
    r->p = r->n; /* nothing more is read from a record gone bad */
    r->bad = 1;
    return 0;
}

/* strict UTF-8 as CPython decodes it: ASCII here, anything else checked by its decoder */
static int utf8_valid(const char *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((unsigned char)p[i] >= 0x80) {
            PyObject *text = PyUnicode_DecodeUTF8(p, n, NULL);
            if (text == NULL) {
                PyErr_Clear();
                return 0;
            }
            Py_DECREF(text);
            return 1;
        }
    }
    return 1;
}

static inline Text in_text(In *r) {
    Text t = {NULL, 0};
    int64_t n = in_long(r);
    if (r->bad || n < 0 || n > r->n - r->p) {
        r->bad = 1;
        return t;
    }
    t.p = (const char *)r->d + r->p;
    t.n = (Py_ssize_t)n;
    r->p += t.n;
    if (!utf8_valid(t.p, t.n)) r->bad = 1;
    return t;
}

static inline int in_enum(In *r, int count) {
    int64_t index = in_long(r);
    if (index < 0 || index >= count) {
        r->bad = 1;
        return 0;
    }
    return (int)index;
}

static inline void in_fixed(In *r, Py_ssize_t size) {
    if (size > r->n - r->p) {
        r->bad = 1;
        return;
    }
    r->p += size;
}

/* characters of valid UTF-8 text (bytes that do not continue a character) */
static Py_ssize_t text_chars(Text t) {
    Py_ssize_t chars = 0;
    for (Py_ssize_t i = 0; i < t.n; i++) chars += ((unsigned char)t.p[i] & 0xC0) != 0x80;
    return chars;
}

typedef struct {
    int type;
    Text event_id, correlation; /* envelope */
    Text command_id, asset;     /* Deposit, PlaceOrder; asset: Deposit */
    int64_t account_id, time_ns, amount, instrument_id, price, qty, protection, order_id,
        trade_id, actor; /* actor: Deposit, PlaceOrder (0: the system) */
    int side, kind, stp, liquidity, reason;
} Cmd;

/* -- writing the output ---------------------------------------------------------------------- */

typedef struct {
    unsigned char b[RECORD_BYTES_MAX];
    Py_ssize_t n;
    int overflow;
} Out;

static inline void put_raw(Out *o, const void *data, Py_ssize_t size) {
    if (o->overflow || size > RECORD_BYTES_MAX - HASH_SIZE - o->n) {
        o->overflow = 1;
        return;
    }
    memcpy(o->b + o->n, data, (size_t)size);
    o->n += size;
}

static inline void put_long(Out *o, int64_t x) {
    unsigned char bytes[TX_VARINT_BYTES_MAX];
    put_raw(o, bytes, tx_put_varint(bytes, tx_zigzag(x)));
}

static inline void put_text(Out *o, Text t) {
    put_long(o, t.n);
    put_raw(o, t.p, t.n);
}

/* -- the kernel ------------------------------------------------------------------------------ */

/* An instrument of the reference table as one decide() call saw it (the table does not
 * change during a call: the reference follower catches up between batches). */
typedef struct {
    PyObject *table;      /* the reference.instruments dict it was found in (borrowed) */
    int64_t id;
    PyObject *id_obj;     /* owned */
    PyObject *row;        /* the Instrument tuple, owned (or NULL: not in the table) */
    PyObject *key;        /* its order-requests key, owned (fetched on first use) */
    int tradable;         /* SPOT and TRADING */
    int usable;           /* every field the kernel reads is an int64 / int32 / str */
    int64_t tick, lot, min_notional, maker, taker;
    Text base, quote;
} Instr;

/* One partition's live state, loaded once per decide() call (generation), written back
 * (chain tail, events since the snapshot) when the call returns. */
typedef struct {
    uint64_t generation;
    PyObject *live;        /* the processor's _Live (new reference during a call) */
    PyObject *book;        /* AccountBook */
    PyObject *accounts;    /* book.accounts */
    PyObject *ref_accounts, *ref_assets, *ref_instruments; /* book.reference's tables */
    int64_t order_id_base;
    unsigned char last_hash[HASH_SIZE];
    int64_t events_added;
} Part;

typedef struct {
    int count;
    unsigned char valid[ENUM_SYMBOLS_MAX]; /* the symbol is in the domain's set */
} Enum;

/* Where confluent_kafka's Message keeps what its topic(), partition(), offset(), value() and
 * key() return, found by probing messages built with known values (message_layout_probe);
 * unknown: those five methods are called (~300 instructions each). */
typedef struct {
    int known;
    PyTypeObject *type; /* owned */
    Py_ssize_t topic, value, key, partition, offset;
} MessageLayout;

/* A record's fields as the kernel reads them: new references, None where absent. */
typedef struct {
    PyObject *topic, *value, *key;
    int64_t partition, offset; /* -1: absent */
} Fields;

typedef struct {
    PyObject_HEAD
    /* configuration (owned) */
    PyObject *commands_topic, *settlements_topic, *events_topic, *orders_topic;
    PyObject *output_type, *account_type, *open_order_type, *forget_oldest, *empty_outcome;
    PyObject *spot, *trading; /* InstrumentKind.SPOT, InstrumentStatus.TRADING */
    PyObject *side_symbols;   /* tuple: symbol str by index (an OpenOrder's side) */
    PyObject *stp_symbols;    /* tuple: symbol str by index (an OpenOrder's stp_mode) */
    PyObject *lives;          /* partition -> _Live (the processor's dict) */
    PyObject *minus_one; /* the partition of an order request (by key) */
    PyObject *false_, *zero, *empty;
    char producer[PRODUCER_BYTES_MAX];
    Py_ssize_t producer_n;
    uint32_t wire_deposit, wire_place, wire_fill, wire_ended;
    unsigned char h_deposited[HEADER_SIZE], h_accepted[HEADER_SIZE], h_new_order[HEADER_SIZE],
        h_fill_settled[HEADER_SIZE], h_hold_released[HEADER_SIZE], h_rejected[HEADER_SIZE];
    Enum side, kind, stp, liquidity, end_reason;
    int side_buy, liquidity_maker, reason_below_min_notional, reason_insufficient_funds;
    int64_t partitions; /* of the account topics: murmur2 routing */
    int64_t command_ids_max, open_orders_max, id_text_length_max, order_offset_max;
    int64_t external_account, fees_account, clearing_account;
    int source_commands, source_settlements; /* EventSource values */
    /* slot offsets of Account and OpenOrder */
    Py_ssize_t a_available, a_held, a_orders, a_outcomes, a_settled, a_version;
    Py_ssize_t o_amended_ns, o_amends, o_base_asset, o_cancel_requested, o_fee_micro, o_filled_qty, o_hold_asset,
        o_hold_remaining, o_instrument_id, o_lot_size, o_maker_fee_ppm, o_order_id, o_price,
        o_qty, o_quote_asset, o_side, o_stp_mode, o_taker_fee_ppm, o_tick_size;
    /* state */
    Part *parts;
    Py_ssize_t parts_n;
    uint64_t generation;
    int touched[PARTITIONS_MAX];
    int touched_n;
    struct {
        Py_ssize_t n;
        char bytes[ASSET_BYTES_MAX];
        PyObject *text;
    } assets[ASSETS_CACHED_MAX];
    int assets_n;
    Instr instruments[INSTRUMENTS_CACHED_MAX]; /* of this decide() call */
    int instruments_n;
    MessageLayout message;
    /* the event id text up to the offset, of the last (ms, partition, source) formatted */
    int64_t id_ms;
    int id_partition, id_source;
    char id_prefix[21];
    /* counts since take_counts(); rejections decided here since take_rejections() */
    int64_t decided, events, requests;
    int64_t rejected_below_min_notional, rejected_insufficient_funds;
    /* scratch records of one decision */
    Out event_out, request_out;
} Kernel;

#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

/* Replace a slot's value (steals ``value``). */
static inline void slot_set(PyObject *obj, Py_ssize_t offset, PyObject *value) {
    PyObject *old = SLOT(obj, offset);
    SLOT(obj, offset) = value;
    Py_XDECREF(old);
}

static PyObject *interned[16];
enum {
    N_TOPIC, N_PARTITION, N_OFFSET, N_VALUE, N_BOOK, N_ACCOUNTS, N_REFERENCE, N_ASSETS,
    N_INSTRUMENTS, N_ORDER_ID_BASE, N_LAST_HASH, N_SINCE_SNAPSHOT, N_ACCOUNT, N_KEY, N_COUNT
};
static const char *interned_text[N_COUNT] = {
    "topic", "partition", "offset", "value", "book", "accounts", "reference", "assets",
    "instruments", "order_id_base", "last_hash", "since_snapshot", "account", "key",
};

static int kernel_traverse(Kernel *self, visitproc visit, void *arg) {
    Py_VISIT(self->commands_topic);
    Py_VISIT(self->settlements_topic);
    Py_VISIT(self->events_topic);
    Py_VISIT(self->orders_topic);
    Py_VISIT(self->output_type);
    Py_VISIT(self->account_type);
    Py_VISIT(self->open_order_type);
    Py_VISIT(self->forget_oldest);
    Py_VISIT(self->empty_outcome);
    Py_VISIT(self->spot);
    Py_VISIT(self->trading);
    Py_VISIT(self->side_symbols);
    Py_VISIT(self->stp_symbols);
    Py_VISIT(self->lives);
    Py_VISIT(self->message.type);
    for (int i = 0; i < self->assets_n; i++) Py_VISIT(self->assets[i].text);
    return 0;
}

static int kernel_clear(Kernel *self) {
    Py_CLEAR(self->commands_topic);
    Py_CLEAR(self->settlements_topic);
    Py_CLEAR(self->events_topic);
    Py_CLEAR(self->orders_topic);
    Py_CLEAR(self->output_type);
    Py_CLEAR(self->account_type);
    Py_CLEAR(self->open_order_type);
    Py_CLEAR(self->forget_oldest);
    Py_CLEAR(self->empty_outcome);
    Py_CLEAR(self->spot);
    Py_CLEAR(self->trading);
    Py_CLEAR(self->side_symbols);
    Py_CLEAR(self->stp_symbols);
    Py_CLEAR(self->lives);
    Py_CLEAR(self->message.type);
    self->message.known = 0;
    Py_CLEAR(self->minus_one);
    Py_CLEAR(self->false_);
    Py_CLEAR(self->zero);
    Py_CLEAR(self->empty);
    for (int i = 0; i < self->assets_n; i++) Py_CLEAR(self->assets[i].text);
    self->assets_n = 0;
    return 0;
}

static void kernel_dealloc(Kernel *self) {
    PyObject_GC_UnTrack(self);
    kernel_clear(self);
    PyMem_Free(self->parts);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -- configuration --------------------------------------------------------------------------- */

static PyObject *spec_item(PyObject *spec, const char *key) {
    PyObject *value = PyDict_GetItemString(spec, key); /* borrowed */
    if (value == NULL) PyErr_Format(PyExc_KeyError, "kernel spec needs %s", key);
    return value;
}

static int spec_object(PyObject *spec, const char *key, PyObject **out) {
    PyObject *value = spec_item(spec, key);
    if (value == NULL) return -1;
    Py_INCREF(value);
    Py_XSETREF(*out, value);
    return 0;
}

static int spec_int(PyObject *spec, const char *key, int64_t *out) {
    PyObject *value = spec_item(spec, key);
    if (value == NULL) return -1;
    long long x = PyLong_AsLongLong(value);
    if (x == -1 && PyErr_Occurred()) return -1;
    *out = (int64_t)x;
    return 0;
}

static int spec_header(PyObject *spec, const char *key, unsigned char *out) {
    PyObject *value = spec_item(spec, key);
    if (value == NULL) return -1;
    if (!PyBytes_Check(value) || PyBytes_GET_SIZE(value) != HEADER_SIZE ||
        PyBytes_AS_STRING(value)[0] != 0) {
        PyErr_Format(PyExc_ValueError, "%s must be a 5-byte wire header", key);
        return -1;
    }
    memcpy(out, PyBytes_AS_STRING(value), HEADER_SIZE);
    return 0;
}

static int spec_wire_id(PyObject *spec, const char *key, uint32_t *out) {
    int64_t id;
    if (spec_int(spec, key, &id) < 0) return -1;
    if (id < 0 || id > (int64_t)UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s out of range", key);
        return -1;
    }
    *out = (uint32_t)id;
    return 0;
}

/* ``key`` -> bytes of 0/1 per symbol (1: the domain accepts it) */
static int spec_enum(PyObject *spec, const char *key, Enum *out) {
    PyObject *value = spec_item(spec, key);
    if (value == NULL) return -1;
    if (!PyBytes_Check(value) || PyBytes_GET_SIZE(value) < 1 ||
        PyBytes_GET_SIZE(value) > ENUM_SYMBOLS_MAX) {
        PyErr_Format(PyExc_ValueError, "%s must be 1..%d bytes", key, ENUM_SYMBOLS_MAX);
        return -1;
    }
    out->count = (int)PyBytes_GET_SIZE(value);
    for (int i = 0; i < out->count; i++) {
        unsigned char flag = (unsigned char)PyBytes_AS_STRING(value)[i];
        if (flag > 1) {
            PyErr_Format(PyExc_ValueError, "%s flags are 0 or 1", key);
            return -1;
        }
        out->valid[i] = flag;
    }
    return 0;
}

static int slot_offset(PyObject *type, const char *name, Py_ssize_t *out) {
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "slot owner must be a type");
        return -1;
    }
    PyObject *dict = ((PyTypeObject *)type)->tp_dict;
    PyObject *descr = dict != NULL ? PyDict_GetItemString(dict, name) : NULL; /* borrowed */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a __slots__ member",
                     ((PyTypeObject *)type)->tp_name, name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY) || member->offset <= 0) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a writable object slot",
                     ((PyTypeObject *)type)->tp_name, name);
        return -1;
    }
    *out = member->offset;
    return 0;
}

static int message_layout_probe(Kernel *k, PyObject *probes);

static int kernel_configure(Kernel *self, PyObject *spec) {
    if (!PyDict_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "Kernel(spec: dict)");
        return -1;
    }
    if (spec_object(spec, "commands_topic", &self->commands_topic) < 0 ||
        spec_object(spec, "settlements_topic", &self->settlements_topic) < 0 ||
        spec_object(spec, "events_topic", &self->events_topic) < 0 ||
        spec_object(spec, "orders_topic", &self->orders_topic) < 0 ||
        spec_object(spec, "output_type", &self->output_type) < 0 ||
        spec_object(spec, "account_type", &self->account_type) < 0 ||
        spec_object(spec, "open_order_type", &self->open_order_type) < 0 ||
        spec_object(spec, "forget_oldest", &self->forget_oldest) < 0 ||
        spec_object(spec, "empty_outcome", &self->empty_outcome) < 0 ||
        spec_object(spec, "spot", &self->spot) < 0 ||
        spec_object(spec, "trading", &self->trading) < 0 ||
        spec_object(spec, "side_symbols", &self->side_symbols) < 0 ||
        spec_object(spec, "stp_symbols", &self->stp_symbols) < 0 ||
        spec_object(spec, "lives", &self->lives) < 0)
        return -1;
    PyObject *topics[4] = {self->commands_topic, self->settlements_topic, self->events_topic,
                           self->orders_topic};
    for (int i = 0; i < 4; i++) {
        if (!PyUnicode_CheckExact(topics[i])) {
            PyErr_SetString(PyExc_TypeError, "topics are str");
            return -1;
        }
    }
    if (!PyDict_CheckExact(self->lives) || !PyCallable_Check(self->forget_oldest)) {
        PyErr_SetString(PyExc_TypeError, "lives: a dict; forget_oldest: a callable");
        return -1;
    }
    if (!PyType_Check(self->output_type) || !PyType_Check(self->account_type) ||
        !PyType_Check(self->open_order_type) ||
        !PyType_IsSubtype((PyTypeObject *)self->output_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "output_type: a NamedTuple; account/open order: types");
        return -1;
    }
    if (!PyTuple_CheckExact(self->empty_outcome) || PyTuple_GET_SIZE(self->empty_outcome) != 0) {
        PyErr_SetString(PyExc_TypeError, "empty_outcome must be ()");
        return -1;
    }
    PyObject *producer = spec_item(spec, "producer");
    if (producer == NULL) return -1;
    Py_ssize_t size;
    const char *text = PyUnicode_Check(producer) ? PyUnicode_AsUTF8AndSize(producer, &size) : NULL;
    if (text == NULL || size > PRODUCER_BYTES_MAX) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "producer: str of <= 256 bytes");
        return -1;
    }
    memcpy(self->producer, text, (size_t)size);
    self->producer_n = size;
    int64_t side_buy, liquidity_maker, partitions, source_commands, source_settlements,
        below_min_notional, insufficient_funds;
    Enum reason;
    if (spec_wire_id(spec, "wire_deposit", &self->wire_deposit) < 0 ||
        spec_wire_id(spec, "wire_place_order", &self->wire_place) < 0 ||
        spec_wire_id(spec, "wire_fill_leg", &self->wire_fill) < 0 ||
        spec_wire_id(spec, "wire_order_ended", &self->wire_ended) < 0 ||
        spec_header(spec, "header_deposited", self->h_deposited) < 0 ||
        spec_header(spec, "header_order_accepted", self->h_accepted) < 0 ||
        spec_header(spec, "header_new_order", self->h_new_order) < 0 ||
        spec_header(spec, "header_fill_settled", self->h_fill_settled) < 0 ||
        spec_header(spec, "header_hold_released", self->h_hold_released) < 0 ||
        spec_header(spec, "header_order_rejected", self->h_rejected) < 0 ||
        spec_enum(spec, "reason_valid", &reason) < 0 ||
        spec_int(spec, "reason_below_min_notional", &below_min_notional) < 0 ||
        spec_int(spec, "reason_insufficient_funds", &insufficient_funds) < 0 ||
        spec_enum(spec, "side_valid", &self->side) < 0 ||
        spec_enum(spec, "kind_valid", &self->kind) < 0 ||
        spec_enum(spec, "stp_valid", &self->stp) < 0 ||
        spec_enum(spec, "liquidity_valid", &self->liquidity) < 0 ||
        spec_enum(spec, "end_reason_valid", &self->end_reason) < 0 ||
        spec_int(spec, "side_buy", &side_buy) < 0 ||
        spec_int(spec, "liquidity_maker", &liquidity_maker) < 0 ||
        spec_int(spec, "command_ids_max", &self->command_ids_max) < 0 ||
        spec_int(spec, "open_orders_max", &self->open_orders_max) < 0 ||
        spec_int(spec, "id_text_length_max", &self->id_text_length_max) < 0 ||
        spec_int(spec, "order_offset_max", &self->order_offset_max) < 0 ||
        spec_int(spec, "external_account", &self->external_account) < 0 ||
        spec_int(spec, "fees_account", &self->fees_account) < 0 ||
        spec_int(spec, "clearing_account", &self->clearing_account) < 0 ||
        spec_int(spec, "source_commands", &source_commands) < 0 ||
        spec_int(spec, "source_settlements", &source_settlements) < 0 ||
        spec_int(spec, "partitions", &partitions) < 0)
        return -1;
    if (side_buy < 0 || side_buy >= self->side.count || liquidity_maker < 0 ||
        below_min_notional < 0 || below_min_notional >= reason.count ||
        insufficient_funds < 0 || insufficient_funds >= reason.count ||
        liquidity_maker >= self->liquidity.count || partitions < 1 ||
        partitions > PARTITIONS_MAX || self->command_ids_max < 1 || self->open_orders_max < 1 ||
        self->id_text_length_max < 1 || self->order_offset_max < 0 ||
        self->order_offset_max > OFFSET_MAX || source_commands < 0 || source_commands > 63 ||
        source_settlements < 0 || source_settlements > 63) {
        PyErr_SetString(PyExc_ValueError, "kernel spec: a value out of range");
        return -1;
    }
    if (!PyTuple_CheckExact(self->side_symbols) ||
        PyTuple_GET_SIZE(self->side_symbols) != self->side.count) {
        PyErr_SetString(PyExc_ValueError, "side_symbols: one str per Side symbol");
        return -1;
    }
    if (!PyTuple_CheckExact(self->stp_symbols) ||
        PyTuple_GET_SIZE(self->stp_symbols) != self->stp.count) {
        PyErr_SetString(PyExc_ValueError, "stp_symbols: one str per StpMode symbol");
        return -1;
    }
    self->side_buy = (int)side_buy;
    self->reason_below_min_notional = (int)below_min_notional;
    self->reason_insufficient_funds = (int)insufficient_funds;
    self->partitions = partitions;
    self->liquidity_maker = (int)liquidity_maker;
    self->source_commands = (int)source_commands;
    self->source_settlements = (int)source_settlements;
    PyObject *a = self->account_type, *o = self->open_order_type;
    if (slot_offset(a, "available", &self->a_available) < 0 ||
        slot_offset(a, "held", &self->a_held) < 0 ||
        slot_offset(a, "orders", &self->a_orders) < 0 ||
        slot_offset(a, "outcomes", &self->a_outcomes) < 0 ||
        slot_offset(a, "settled", &self->a_settled) < 0 ||
        slot_offset(a, "version", &self->a_version) < 0 ||
        slot_offset(o, "base_asset", &self->o_base_asset) < 0 ||
        slot_offset(o, "cancel_requested", &self->o_cancel_requested) < 0 ||
        slot_offset(o, "amended_ns", &self->o_amended_ns) < 0 ||
        slot_offset(o, "amends", &self->o_amends) < 0 ||
        slot_offset(o, "fee_micro", &self->o_fee_micro) < 0 ||
        slot_offset(o, "filled_qty", &self->o_filled_qty) < 0 ||
        slot_offset(o, "hold_asset", &self->o_hold_asset) < 0 ||
        slot_offset(o, "hold_remaining", &self->o_hold_remaining) < 0 ||
        slot_offset(o, "instrument_id", &self->o_instrument_id) < 0 ||
        slot_offset(o, "lot_size", &self->o_lot_size) < 0 ||
        slot_offset(o, "maker_fee_ppm", &self->o_maker_fee_ppm) < 0 ||
        slot_offset(o, "order_id", &self->o_order_id) < 0 ||
        slot_offset(o, "price", &self->o_price) < 0 ||
        slot_offset(o, "qty", &self->o_qty) < 0 ||
        slot_offset(o, "quote_asset", &self->o_quote_asset) < 0 ||
        slot_offset(o, "side", &self->o_side) < 0 ||
        slot_offset(o, "stp_mode", &self->o_stp_mode) < 0 ||
        slot_offset(o, "taker_fee_ppm", &self->o_taker_fee_ppm) < 0 ||
        slot_offset(o, "tick_size", &self->o_tick_size) < 0)
        return -1;
    PyObject *probes = spec_item(spec, "message_probes");
    if (probes == NULL || message_layout_probe(self, probes) < 0) return -1;
    self->id_ms = -1;
    self->minus_one = PyLong_FromLong(-1);
    self->zero = PyLong_FromLong(0);
    self->false_ = Py_NewRef(Py_False);
    self->empty = PyTuple_New(0);
    if (self->minus_one == NULL || self->zero == NULL || self->empty == NULL) return -1;
    self->parts = PyMem_Calloc((size_t)partitions, sizeof(Part));
    if (self->parts == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->parts_n = (Py_ssize_t)partitions;
    return 0;
}

static PyObject *kernel_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *spec;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "Kernel takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!", &PyDict_Type, &spec)) return NULL;
    Kernel *self = (Kernel *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    if (kernel_configure(self, spec) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* -- the Message layout ---------------------------------------------------------------------- */

/* The one offset in ``obj`` (past its header, aligned to ``align``) holding ``size`` bytes
 * equal to ``*want``: >= 0; -1 if none or several. */
static Py_ssize_t find_field(PyObject *obj, const void *want, size_t size, size_t align) {
    Py_ssize_t found = -1;
    Py_ssize_t end = Py_TYPE(obj)->tp_basicsize - (Py_ssize_t)size;
    for (Py_ssize_t at = sizeof(PyObject); at <= end; at += (Py_ssize_t)align) {
        if (memcmp((char *)obj + at, want, size) == 0) {
            if (found >= 0) return -1;
            found = at;
        }
    }
    return found;
}

/* probes: a tuple of (message, topic, value, key, partition, offset), each message built
 * with those values (distinct objects, distinct numbers). The layout is known when every
 * probe finds every field once, at the same offsets, none overlapping. */
static int message_layout_probe(Kernel *k, PyObject *probes) {
    k->message.known = 0;
    if (!PyTuple_Check(probes) || PyTuple_GET_SIZE(probes) < 2) {
        PyErr_SetString(PyExc_TypeError, "message_probes: a tuple of at least two probes");
        return -1;
    }
    Py_ssize_t at[5] = {-1, -1, -1, -1, -1};
    PyTypeObject *type = NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(probes); i++) {
        PyObject *probe = PyTuple_GET_ITEM(probes, i);
        if (!PyTuple_Check(probe) || PyTuple_GET_SIZE(probe) != 6) {
            PyErr_SetString(PyExc_TypeError, "a message probe: (message, topic, value, key, "
                                             "partition, offset)");
            return -1;
        }
        PyObject *message = PyTuple_GET_ITEM(probe, 0);
        if (type == NULL) type = Py_TYPE(message);
        if (Py_TYPE(message) != type) return 0;
        long long partition = PyLong_AsLongLong(PyTuple_GET_ITEM(probe, 4));
        long long offset = PyLong_AsLongLong(PyTuple_GET_ITEM(probe, 5));
        if (PyErr_Occurred()) return -1;
        int32_t partition32 = (int32_t)partition;
        int64_t offset64 = (int64_t)offset;
        Py_ssize_t here[5];
        for (int f = 0; f < 3; f++) {
            PyObject *want = PyTuple_GET_ITEM(probe, 1 + f);
            here[f] = find_field(message, &want, sizeof want, sizeof want);
        }
        here[3] = find_field(message, &partition32, sizeof partition32, sizeof partition32);
        here[4] = find_field(message, &offset64, sizeof offset64, sizeof offset64);
        for (int f = 0; f < 5; f++) {
            if (here[f] < 0 || (i > 0 && here[f] != at[f])) return 0;
            at[f] = here[f];
        }
    }
    Py_ssize_t sizes[5] = {sizeof(PyObject *), sizeof(PyObject *), sizeof(PyObject *), 4, 8};
    for (int f = 0; f < 5; f++) {
        for (int g = 0; g < 5; g++) {
            if (f != g && at[f] < at[g] + sizes[g] && at[g] < at[f] + sizes[f]) return 0;
        }
    }
    k->message.type = (PyTypeObject *)Py_NewRef((PyObject *)type);
    k->message.topic = at[0];
    k->message.value = at[1];
    k->message.key = at[2];
    k->message.partition = at[3];
    k->message.offset = at[4];
    k->message.known = 1;
    return 0;
}

static inline PyObject *field_object(PyObject *message, Py_ssize_t at) {
    PyObject *v = *(PyObject **)((char *)message + at);
    return Py_NewRef(v != NULL ? v : Py_None);
}

static PyObject *call_method0(PyObject *obj, PyObject *name);

/* A record's topic, value, key, partition and offset (as its methods return them). */
static int message_fields(Kernel *k, PyObject *message, Fields *out) {
    if (k->message.known && Py_TYPE(message) == k->message.type) {
        out->topic = field_object(message, k->message.topic);
        out->value = field_object(message, k->message.value);
        out->key = field_object(message, k->message.key);
        out->partition = *(int32_t *)((char *)message + k->message.partition);
        out->offset = *(int64_t *)((char *)message + k->message.offset);
        return 0;
    }
    PyObject *partition = call_method0(message, interned[N_PARTITION]);
    PyObject *offset = partition ? call_method0(message, interned[N_OFFSET]) : NULL;
    out->topic = offset ? call_method0(message, interned[N_TOPIC]) : NULL;
    out->value = out->topic ? call_method0(message, interned[N_VALUE]) : NULL;
    out->key = out->value ? call_method0(message, interned[N_KEY]) : NULL;
    int status = out->key != NULL ? 0 : -1;
    out->partition = out->offset = -1;
    if (status == 0 && PyLong_CheckExact(partition)) {
        out->partition = PyLong_AsLongLong(partition);
        if (out->partition < 0 || out->partition > INT32_MAX) out->partition = -1;
    }
    if (status == 0 && PyLong_CheckExact(offset)) {
        int overflow = 0;
        out->offset = PyLong_AsLongLongAndOverflow(offset, &overflow);
        if (overflow || out->offset < 0) out->offset = -1;
    }
    Py_XDECREF(partition);
    Py_XDECREF(offset);
    if (PyErr_Occurred()) status = -1;
    if (status < 0) {
        Py_CLEAR(out->topic);
        Py_CLEAR(out->value);
        Py_CLEAR(out->key);
    }
    return status;
}

static void fields_release(Fields *f) {
    Py_CLEAR(f->topic);
    Py_CLEAR(f->value);
    Py_CLEAR(f->key);
}

/* -- helpers on Python state ------------------------------------------------------------------ */

/* An exact int within int64 into *out: 1; anything else (or beyond int64): 0. */
static inline int as_i64(PyObject *v, int64_t *out) {
    if (v == NULL || !PyLong_CheckExact(v)) return 0;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = (int64_t)x;
    return 1;
}

/* d.get(key, 0) as int64: 1 (found or 0), 0 (not an int64: hand back), -1 (error) */
static inline int dict_i64(PyObject *d, PyObject *key, int64_t *out) {
    PyObject *v = PyDict_GetItemWithError(d, key); /* borrowed */
    if (v == NULL) {
        if (PyErr_Occurred()) return -1;
        *out = 0;
        return 1;
    }
    return as_i64(v, out);
}

static inline int dict_set_i64(PyObject *d, PyObject *key, int64_t value) {
    PyObject *v = PyLong_FromLongLong(value);
    if (v == NULL) return -1;
    int status = PyDict_SetItem(d, key, v);
    Py_DECREF(v);
    return status;
}

static inline int slot_set_i64(PyObject *obj, Py_ssize_t offset, int64_t value) {
    PyObject *v = PyLong_FromLongLong(value);
    if (v == NULL) return -1;
    slot_set(obj, offset, v);
    return 0;
}

static PyObject *call_method0(PyObject *obj, PyObject *name) {
    PyObject *args[1] = {obj};
    return PyObject_VectorcallMethod(name, args, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* The str of an asset code (cached: a handful of assets repeat). */
static PyObject *asset_text(Kernel *k, Text t) {
    for (int i = 0; i < k->assets_n; i++) {
        if (k->assets[i].n == t.n && memcmp(k->assets[i].bytes, t.p, (size_t)t.n) == 0) {
            return Py_NewRef(k->assets[i].text);
        }
    }
    PyObject *text = PyUnicode_DecodeUTF8(t.p, t.n, NULL);
    if (text == NULL) return NULL;
    if (k->assets_n < ASSETS_CACHED_MAX && t.n <= ASSET_BYTES_MAX) {
        int i = k->assets_n++;
        k->assets[i].n = t.n;
        memcpy(k->assets[i].bytes, t.p, (size_t)t.n);
        k->assets[i].text = Py_NewRef(text);
    }
    return text;
}

/* The UTF-8 of an asset str held in the state (1), or 0 when the kernel does not write it. */
static inline int asset_utf8(PyObject *asset, Text *out) {
    if (asset == NULL || !PyUnicode_Check(asset)) return 0;
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(asset, &n);
    if (p == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (n > ASSET_BYTES_MAX) return 0;
    out->p = p;
    out->n = n;
    return 1;
}

static inline int text_equal(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    return PyUnicode_Check(a) && PyUnicode_Check(b) && PyUnicode_Compare(a, b) == 0;
}

/* -- instruments ------------------------------------------------------------------------------ */

static void instruments_release(Kernel *k) {
    for (int i = 0; i < k->instruments_n; i++) {
        Py_CLEAR(k->instruments[i].id_obj);
        Py_CLEAR(k->instruments[i].row);
        Py_CLEAR(k->instruments[i].key);
    }
    k->instruments_n = 0;
}

/* The instrument ``id`` of ``table`` as this call sees it: 1 (*out), 0 (hand back: not
 * cached and the cache is full), -1 (error). A missing instrument is an entry too. */
static int instrument_get(Kernel *k, PyObject *table, int64_t id, Instr **out) {
    for (int i = 0; i < k->instruments_n; i++) {
        if (k->instruments[i].id == id && k->instruments[i].table == table) {
            *out = &k->instruments[i];
            return 1;
        }
    }
    if (k->instruments_n >= INSTRUMENTS_CACHED_MAX) return HANDED_BACK;
    Instr *e = &k->instruments[k->instruments_n];
    memset(e, 0, sizeof *e);
    e->id_obj = PyLong_FromLongLong(id);
    if (e->id_obj == NULL) return -1;
    PyObject *row = PyDict_GetItemWithError(table, e->id_obj); /* borrowed */
    if (row == NULL && PyErr_Occurred()) {
        Py_CLEAR(e->id_obj);
        return -1;
    }
    k->instruments_n++;
    e->table = table;
    e->id = id;
    *out = e;
    if (row == NULL) return 1;
    e->row = Py_NewRef(row);
    /* Instrument(instrument_id, symbol, kind, base, quote, tick_size, lot_size, min_notional,
     * price_band_bps, maker_fee_ppm, taker_fee_ppm, status) */
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 12) return 1;
    PyObject *const *f = ((PyTupleObject *)row)->ob_item;
    int spot = PyObject_RichCompareBool(f[2], k->spot, Py_EQ);
    if (spot < 0) return -1;
    int trading = PyObject_RichCompareBool(f[11], k->trading, Py_EQ);
    if (trading < 0) return -1;
    e->tradable = spot && trading;
    e->usable = as_i64(f[5], &e->tick) && as_i64(f[6], &e->lot) &&
                as_i64(f[7], &e->min_notional) && as_i64(f[9], &e->maker) &&
                as_i64(f[10], &e->taker) && e->maker >= INT32_MIN && e->maker <= INT32_MAX &&
                e->taker >= INT32_MIN && e->taker <= INT32_MAX && asset_utf8(f[3], &e->base) &&
                asset_utf8(f[4], &e->quote) && !text_equal(f[3], f[4]);
    return 1;
}

/* The instrument's order-requests key (tradex.log.keys.instrument_key: the id in decimal),
 * made once per call: a new reference. */
static PyObject *instrument_key(Instr *e) {
    if (e->key == NULL) {
        char decimal[ACCOUNT_KEY_BYTES_MAX];
        int n = tx_decimal(decimal, e->id);
        e->key = PyBytes_FromStringAndSize(decimal, n);
        if (e->key == NULL) return NULL;
    }
    return Py_NewRef(e->key);
}

/* -- partitions ------------------------------------------------------------------------------ */

static void part_release(Part *part) {
    Py_CLEAR(part->live);
    Py_CLEAR(part->book);
    Py_CLEAR(part->accounts);
    Py_CLEAR(part->ref_accounts);
    Py_CLEAR(part->ref_assets);
    Py_CLEAR(part->ref_instruments);
}

static PyObject *attr(PyObject *obj, int name) { return PyObject_GetAttr(obj, interned[name]); }

/* The partition's state for this call: 1 and *out, 0 (not live here: hand back), -1 error. */
static int part_load(Kernel *k, PyObject *partition_obj, long partition, Part **out) {
    if (partition < 0 || partition >= k->parts_n) return 0;
    Part *part = &k->parts[partition];
    if (part->generation == k->generation) {
        *out = part;
        return 1;
    }
    PyObject *live = PyDict_GetItemWithError(k->lives, partition_obj); /* borrowed */
    if (live == NULL) return PyErr_Occurred() ? -1 : 0;
    ENSURE(k->touched_n < PARTITIONS_MAX, "more partitions touched than PARTITIONS_MAX");
    part->live = Py_NewRef(live);
    part->generation = k->generation;
    part->events_added = 0;
    k->touched[k->touched_n++] = (int)partition;
    PyObject *reference = NULL, *base = NULL, *hash = NULL;
    part->book = attr(live, N_BOOK);
    if (part->book == NULL) goto fail;
    part->accounts = attr(part->book, N_ACCOUNTS);
    reference = attr(part->book, N_REFERENCE);
    if (part->accounts == NULL || reference == NULL) goto fail;
    part->ref_accounts = attr(reference, N_ACCOUNTS);
    part->ref_assets = attr(reference, N_ASSETS);
    part->ref_instruments = attr(reference, N_INSTRUMENTS);
    base = attr(live, N_ORDER_ID_BASE);
    hash = attr(live, N_LAST_HASH);
    if (part->ref_accounts == NULL || part->ref_assets == NULL || part->ref_instruments == NULL ||
        base == NULL || hash == NULL)
        goto fail;
    if (!PyDict_CheckExact(part->accounts) || !PyDict_Check(part->ref_accounts) ||
        !PyDict_Check(part->ref_assets) || !PyDict_Check(part->ref_instruments) ||
        !as_i64(base, &part->order_id_base) || !PyBytes_Check(hash) ||
        PyBytes_GET_SIZE(hash) != HASH_SIZE) {
        PyErr_SetString(PyExc_TypeError, "a live partition: dict tables, int base, 32-byte hash");
        goto fail;
    }
    memcpy(part->last_hash, PyBytes_AS_STRING(hash), HASH_SIZE);
    Py_DECREF(reference);
    Py_DECREF(base);
    Py_DECREF(hash);
    *out = part;
    return 1;
fail:
    Py_XDECREF(reference);
    Py_XDECREF(base);
    Py_XDECREF(hash);
    return -1;
}

/* Write every touched partition's chain tail and event count back to its _Live; release. */
static int parts_flush(Kernel *k) {
    int status = 0;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback); /* flush even when an error is on its way out */
    for (int i = 0; i < k->touched_n; i++) {
        Part *part = &k->parts[k->touched[i]];
        if (status == 0 && part->live != NULL && part->book != NULL) {
            PyObject *hash = PyBytes_FromStringAndSize((const char *)part->last_hash, HASH_SIZE);
            if (hash == NULL || PyObject_SetAttr(part->live, interned[N_LAST_HASH], hash) < 0) {
                status = -1;
            }
            Py_XDECREF(hash);
            if (status == 0 && part->events_added > 0) {
                PyObject *since = attr(part->live, N_SINCE_SNAPSHOT);
                PyObject *added = PyLong_FromLongLong(part->events_added);
                PyObject *sum = since && added ? PyNumber_Add(since, added) : NULL;
                if (sum == NULL || PyObject_SetAttr(part->live, interned[N_SINCE_SNAPSHOT], sum) < 0) {
                    status = -1;
                }
                Py_XDECREF(since);
                Py_XDECREF(added);
                Py_XDECREF(sum);
            }
        }
        part->generation = 0;
        part_release(part);
    }
    k->touched_n = 0;
    instruments_release(k);
    if (type != NULL) {
        if (status < 0) PyErr_Clear();
        PyErr_Restore(type, value, traceback);
        return -1;
    }
    return status;
}

/* -- event ids and envelopes ------------------------------------------------------------------- */

static const char HEX[] = "0123456789abcdef";

static inline void hex_into(char *dst, uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; i--) {
        dst[i] = HEX[v & 15];
        v >>= 4;
    }
}

/* tradex.domain.ids.event_id as text: tttttttt-tttt-7ppp-ssoo-ooooooooooii */
static void event_id_text(char out[EVENT_ID_SIZE], int64_t ms, int partition, int source,
                          int64_t offset, int index) {
    uint64_t hi = ((uint64_t)ms << 16) | (UINT64_C(7) << 12) | (uint64_t)partition;
    uint64_t lo = (UINT64_C(2) << 62) | ((uint64_t)source << 56) | ((uint64_t)offset << 8) |
                  (uint64_t)index;
    hex_into(out, hi >> 32, 8);
    out[8] = '-';
    hex_into(out + 9, (hi >> 16) & 0xFFFF, 4);
    out[13] = '-';
    hex_into(out + 14, hi & 0xFFFF, 4);
    out[18] = '-';
    hex_into(out + 19, lo >> 48, 4);
    out[23] = '-';
    hex_into(out + 24, lo & UINT64_C(0xFFFFFFFFFFFF), 12);
}

typedef struct {
    char event_id[EVENT_ID_SIZE];
    int64_t time_ns;
    Text causation, correlation;
    char command_id[COMMAND_ID_BYTES_MAX]; /* a settlement's: fill/<trade>/<order>, end/<order> */
    int command_id_n;
} Env;

/* A settlement's command id (FillLeg.command_id / OrderEnded.command_id) into ``out``. */
static int settlement_id(char *out, const Cmd *c) {
    int n;
    if (c->type == IN_FILL) {
        memcpy(out, "fill/", 5);
        n = 5 + tx_decimal(out + 5, c->trade_id);
        out[n++] = '/';
    } else {
        memcpy(out, "end/", 4);
        n = 4;
    }
    return n + tx_decimal(out + n, c->order_id);
}

/* The event id text of output 0 of the input at ``offset`` (put_envelope sets the index);
 * the part before the offset is kept for the next input of the same ms and partition. */
static void event_id_head(Kernel *k, char out[EVENT_ID_SIZE], int64_t ms, int partition,
                          int source, int64_t offset) {
    if (ms != k->id_ms || partition != k->id_partition || source != k->id_source) {
        char full[EVENT_ID_SIZE];
        event_id_text(full, ms, partition, source, 0, 0);
        memcpy(k->id_prefix, full, sizeof k->id_prefix);
        k->id_ms = ms;
        k->id_partition = partition;
        k->id_source = source;
    }
    memcpy(out, k->id_prefix, sizeof k->id_prefix);
    /* "oo-oooooooooo" + "00": offset bits 47..40, then 39..0 and the index */
    hex_into(out + 21, ((uint64_t)offset >> 40) & 0xFF, 2);
    out[23] = '-';
    hex_into(out + 24, ((uint64_t)offset & UINT64_C(0xFFFFFFFFFF)) << 8, 12);
}

static void put_envelope(Out *o, const Kernel *k, const Env *env, int index, const char *type,
                         int64_t seq, const unsigned char *prev_hash) {
    char event_id[EVENT_ID_SIZE];
    memcpy(event_id, env->event_id, EVENT_ID_SIZE);
    event_id[EVENT_ID_SIZE - 2] = HEX[(index >> 4) & 15];
    event_id[EVENT_ID_SIZE - 1] = HEX[index & 15];
    Text id = {event_id, EVENT_ID_SIZE};
    Text type_text = {type, (Py_ssize_t)strlen(type)};
    Text empty = {"", 0};
    Text producer = {k->producer, k->producer_n};
    put_text(o, id);
    put_text(o, type_text);
    put_long(o, env->time_ns);
    put_text(o, env->causation);
    put_text(o, env->correlation);
    put_text(o, empty); /* trace_parent */
    put_text(o, producer);
    put_long(o, seq);
    put_raw(o, prev_hash, HASH_SIZE);
}

static void out_start(Out *o, const unsigned char header[HEADER_SIZE]) {
    o->n = 0;
    o->overflow = 0;
    put_raw(o, header, HEADER_SIZE);
}

/* The record's hash (SHA-256(prev_hash || body)) appended after it. */
static void out_seal(Out *o, const unsigned char *prev_hash) {
    if (o->overflow) return;
    chain_hash(prev_hash, o->b + HEADER_SIZE, (size_t)(o->n - HEADER_SIZE), o->b + o->n);
}

/* Output(topic, value, key, partition) appended to ``outputs``. */
static int emit(Kernel *k, PyObject *outputs, PyObject *topic, const Out *o, PyObject *key,
                PyObject *partition) {
    ENSURE(!o->overflow, "an output record beyond RECORD_BYTES_MAX");
    PyObject *value = PyBytes_FromStringAndSize((const char *)o->b, o->n + HASH_SIZE);
    if (value == NULL) return -1;
    PyTypeObject *type = (PyTypeObject *)k->output_type;
    PyObject *output = type->tp_alloc(type, 4);
    if (output == NULL) {
        Py_DECREF(value);
        return -1;
    }
    PyTuple_SET_ITEM(output, 0, Py_NewRef(topic));
    PyTuple_SET_ITEM(output, 1, value);
    PyTuple_SET_ITEM(output, 2, Py_NewRef(key));
    PyTuple_SET_ITEM(output, 3, Py_NewRef(partition));
    int status = PyList_Append(outputs, output);
    Py_DECREF(output);
    return status;
}

/* -- parsing one input record -------------------------------------------------------------------- */

static int parse(const Kernel *k, const unsigned char *d, Py_ssize_t n, int source, Cmd *c) {
    if (n < HEADER_SIZE + HASH_SIZE || n > INPUT_BYTES_MAX || d[0] != 0) return 0;
    uint32_t wire_id = (uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 8 | d[4];
    c->type = IN_NONE;
    if (source == SOURCE_COMMANDS) {
        if (wire_id == k->wire_deposit) c->type = IN_DEPOSIT;
        else if (wire_id == k->wire_place) c->type = IN_PLACE;
    } else {
        if (wire_id == k->wire_fill) c->type = IN_FILL;
        else if (wire_id == k->wire_ended) c->type = IN_ENDED;
    }
    if (c->type == IN_NONE) return 0;
    In r = {d, n, HEADER_SIZE, 0};
    /* envelope: event_id, type, event_time_ns, causation_id, correlation_id, trace_parent,
     * producer, seq, prev_hash */
    c->event_id = in_text(&r);
    in_text(&r);
    in_long(&r);
    in_text(&r);
    c->correlation = in_text(&r);
    in_text(&r);
    in_text(&r);
    in_long(&r);
    in_fixed(&r, HASH_SIZE);
    switch (c->type) {
    case IN_DEPOSIT:
        c->command_id = in_text(&r);
        c->account_id = in_long(&r);
        c->time_ns = in_long(&r);
        c->asset = in_text(&r);
        c->amount = in_long(&r);
        c->actor = in_long(&r);
        break;
    case IN_PLACE:
        c->command_id = in_text(&r);
        c->account_id = in_long(&r);
        c->time_ns = in_long(&r);
        c->instrument_id = in_long(&r);
        c->side = in_enum(&r, k->side.count);
        c->kind = in_enum(&r, k->kind.count);
        c->price = in_long(&r);
        c->qty = in_long(&r);
        c->protection = in_long(&r);
        c->stp = in_enum(&r, k->stp.count);
        c->actor = in_long(&r);
        break;
    case IN_FILL:
        c->account_id = in_long(&r);
        c->order_id = in_long(&r);
        c->trade_id = in_long(&r);
        c->instrument_id = in_long(&r);
        c->side = in_enum(&r, k->side.count);
        c->price = in_long(&r);
        c->qty = in_long(&r);
        c->liquidity = in_enum(&r, k->liquidity.count);
        c->time_ns = in_long(&r);
        break;
    default: /* IN_ENDED */
        c->account_id = in_long(&r);
        c->order_id = in_long(&r);
        c->instrument_id = in_long(&r);
        c->reason = in_enum(&r, k->end_reason.count);
        c->time_ns = in_long(&r);
        break;
    }
    in_fixed(&r, HASH_SIZE);
    if (r.bad || r.p != n) return 0;
    /* validate(), as the domain types define it */
    if (c->type == IN_DEPOSIT || c->type == IN_PLACE) {
        Py_ssize_t chars = text_chars(c->command_id);
        if (chars < 1 || chars > k->id_text_length_max) return 0;
    }
    if (c->type == IN_PLACE) {
        if (!k->side.valid[c->side] || !k->kind.valid[c->kind] || !k->stp.valid[c->stp]) return 0;
        if (c->protection < 0) return 0;
    } else if (c->type == IN_FILL) {
        if (!k->side.valid[c->side] || !k->liquidity.valid[c->liquidity]) return 0;
        if (c->price <= 0 || c->qty <= 0) return 0;
    } else if (c->type == IN_ENDED) {
        if (!k->end_reason.valid[c->reason]) return 0;
    }
    return 1;
}

/* -- one record ------------------------------------------------------------------------------ */

/* Everything of one decision, computed before anything changes. */
typedef struct {
    PyObject *account;    /* borrowed from the book */
    PyObject *available, *held, *orders, *outcomes; /* borrowed from the account */
    Py_ssize_t outcomes_slot; /* a_outcomes (client command ids) or a_settled (settlements) */
    int64_t version;
    PyObject *command_id; /* owned */
    PyObject *account_obj, *key, *partition_obj; /* owned */
    PyObject *order_id_obj;                      /* owned, may be NULL */
} Ctx;

static void ctx_release(Ctx *x) {
    Py_CLEAR(x->command_id);
    Py_CLEAR(x->account_obj);
    Py_CLEAR(x->key);
    Py_CLEAR(x->order_id_obj);
}

/* The input's idempotency window (client commands' or settlements') remembers
 * ``command_id``; the version counts the event. */
static int remember(Kernel *k, Ctx *x) {
    PyObject *outcomes = x->outcomes;
    int status = PyDict_CheckExact(outcomes)
                     ? PyDict_SetItem(outcomes, x->command_id, k->empty_outcome)
                     : PyObject_SetItem(outcomes, x->command_id, k->empty_outcome);
    if (status < 0) return -1;
    if (slot_set_i64(x->account, k->a_version, x->version + 1) < 0) return -1;
    if (PyDict_GET_SIZE(outcomes) > k->command_ids_max) {
        PyObject *kept = PyObject_CallOneArg(k->forget_oldest, outcomes);
        if (kept == NULL) return -1;
        ENSURE(PyDict_Check(kept), "forget_oldest returns a dict");
        slot_set(x->account, x->outcomes_slot, kept);
    }
    return 0;
}

static int decide_deposit(Kernel *k, Part *part, Ctx *x, const Cmd *c, Env *env,
                          PyObject *outputs) {
    /* an admin's deposit: the roles check (check_actor) is the Python path's */
    if (c->amount <= 0 || c->actor != 0) return HANDED_BACK;
    int open = PyDict_Contains(part->ref_accounts, x->account_obj);
    if (open <= 0) return open;
    PyObject *asset = asset_text(k, c->asset);
    if (asset == NULL) return -1;
    int result = -1;
    int64_t available, held, total, after;
    int known = PyDict_Contains(part->ref_assets, asset);
    if (known <= 0) {
        result = known;
        goto done;
    }
    int got = dict_i64(x->available, asset, &available);
    if (got <= 0) {
        result = got;
        goto done;
    }
    got = dict_i64(x->held, asset, &held);
    if (got <= 0) {
        result = got;
        goto done;
    }
    if (__builtin_add_overflow(available, held, &total) ||
        __builtin_add_overflow(total, c->amount, &after)) {
        result = HANDED_BACK; /* AMOUNT_OVERFLOW (or beyond): the Python path */
        goto done;
    }
    /* Deposited(command_id, account_id, event_time_ns, asset, amount, postings, actor) */
    Out *o = &k->event_out;
    out_start(o, k->h_deposited);
    put_envelope(o, k, env, 0, "Deposited", x->version + 1, part->last_hash);
    put_text(o, c->command_id);
    put_long(o, c->account_id);
    put_long(o, c->time_ns);
    put_text(o, c->asset);
    put_long(o, c->amount);
    put_long(o, 2);
    put_long(o, c->account_id);
    put_text(o, c->asset);
    put_long(o, c->amount);
    put_long(o, k->external_account);
    put_text(o, c->asset);
    put_long(o, -c->amount);
    put_long(o, 0);
    put_long(o, c->actor);
    out_seal(o, part->last_hash);
    if (o->overflow) {
        result = HANDED_BACK;
        goto done;
    }
    /* apply */
    if (dict_set_i64(x->available, asset, available + c->amount) < 0 || remember(k, x) < 0)
        goto done;
    if (emit(k, outputs, k->events_topic, o, x->key, x->partition_obj) < 0) goto done;
    memcpy(part->last_hash, o->b + o->n, HASH_SIZE);
    part->events_added += 1;
    k->events += 1;
    result = DECIDED;
done:
    Py_DECREF(asset);
    return result;
}

/* OrderRejected of a PlaceOrder: the two rejections an order stream makes most, decided
 * here exactly as Account._place_order words them (every other one: the Python path). */
static int reject_order(Kernel *k, Part *part, Ctx *x, const Cmd *c, Env *env, int64_t order_id,
                        int reason, Text detail, PyObject *outputs) {
    /* OrderRejected(command_id, account_id, event_time_ns, instrument_id, side, kind, price,
     * qty, reason, detail, order_id, actor) */
    Out *o = &k->event_out;
    out_start(o, k->h_rejected);
    put_envelope(o, k, env, 0, "OrderRejected", x->version + 1, part->last_hash);
    put_text(o, c->command_id);
    put_long(o, c->account_id);
    put_long(o, c->time_ns);
    put_long(o, c->instrument_id);
    put_long(o, c->side);
    put_long(o, c->kind);
    put_long(o, c->price);
    put_long(o, c->qty);
    put_long(o, reason);
    put_text(o, detail);
    put_long(o, order_id);
    put_long(o, c->actor);
    out_seal(o, part->last_hash);
    if (o->overflow) return HANDED_BACK;
    if (remember(k, x) < 0) return -1;
    if (emit(k, outputs, k->events_topic, o, x->key, x->partition_obj) < 0) return -1;
    memcpy(part->last_hash, o->b + o->n, HASH_SIZE);
    part->events_added += 1;
    k->events += 1;
    if (reason == k->reason_insufficient_funds) {
        k->rejected_insufficient_funds += 1;
    } else {
        k->rejected_below_min_notional += 1;
    }
    return DECIDED;
}

static int decide_place(Kernel *k, Part *part, Ctx *x, const Cmd *c, Env *env,
                        int64_t order_id, PyObject *outputs) {
    PyObject *ref = PyDict_GetItemWithError(part->ref_accounts, x->account_obj);
    if (ref == NULL) return PyErr_Occurred() ? -1 : 0;
    if (c->actor != 0) { /* check_actor: the owner places orders (else: the Python path) */
        int64_t owner;
        if (!PyTuple_Check(ref) || PyTuple_GET_SIZE(ref) < 2 ||
            !as_i64(PyTuple_GET_ITEM(ref, 1), &owner) || owner != c->actor)
            return HANDED_BACK;
    }
    Instr *e;
    int found = instrument_get(k, part->ref_instruments, c->instrument_id, &e);
    if (found <= 0) return found;
    /* Account._place_order's checks, in its order; the first failing one decides */
    if (e->row == NULL || !e->usable || !e->tradable || c->price <= 0 || c->qty <= 0)
        return HANDED_BACK;
    int64_t notional, hold, available, held, held_after;
    if (__builtin_mul_overflow(c->price, c->qty, &notional) ||
        __builtin_mul_overflow(notional, e->tick, &notional))
        return HANDED_BACK;
    char detail[DETAIL_BYTES_MAX];
    if (notional < e->min_notional) {
        int n = snprintf(detail, sizeof detail, "%lld < %lld", (long long)notional,
                         (long long)e->min_notional);
        ENSURE(n > 0 && n < (int)sizeof detail, "detail beyond DETAIL_BYTES_MAX");
        Text text = {detail, n};
        return reject_order(k, part, x, c, env, order_id, k->reason_below_min_notional, text,
                            outputs);
    }
    int buy = c->side == k->side_buy;
    PyObject *const *f = ((PyTupleObject *)e->row)->ob_item;
    PyObject *hold_asset = buy ? f[4] : f[3];
    Text hold_text = buy ? e->quote : e->base;
    if (buy) {
        int64_t rate = e->maker > e->taker ? e->maker : e->taker;
        if (notional < 0 || rate < 0) return HANDED_BACK; /* the domain asserts both */
        __int128 total = (__int128)notional + ((__int128)notional * rate + (PPM - 1)) / PPM;
        if (total > INT64_MAX) return HANDED_BACK;
        hold = (int64_t)total;
    } else if (__builtin_mul_overflow(c->qty, e->lot, &hold)) {
        return HANDED_BACK;
    }
    if (PyDict_GET_SIZE(x->orders) >= k->open_orders_max) return HANDED_BACK;
    x->order_id_obj = PyLong_FromLongLong(order_id);
    if (x->order_id_obj == NULL) return -1;
    int exists = PyDict_Contains(x->orders, x->order_id_obj);
    if (exists != 0) return exists < 0 ? -1 : HANDED_BACK;
    int got = dict_i64(x->available, hold_asset, &available);
    if (got <= 0) return got;
    if (available < hold) {
        int n = snprintf(detail, sizeof detail, "%lld %.*s available, %lld needed",
                         (long long)available, (int)hold_text.n, hold_text.p, (long long)hold);
        ENSURE(n > 0 && n < (int)sizeof detail, "detail beyond DETAIL_BYTES_MAX");
        Text text = {detail, n};
        return reject_order(k, part, x, c, env, order_id, k->reason_insufficient_funds, text,
                            outputs);
    }
    got = dict_i64(x->held, hold_asset, &held);
    if (got <= 0) return got;
    if (__builtin_add_overflow(held, hold, &held_after)) return HANDED_BACK;
    /* OrderAccepted(command_id, account_id, event_time_ns, order_id, instrument_id, side,
     * kind, price, qty, protection_ticks, stp_mode, base_asset, quote_asset, tick_size,
     * lot_size, maker_fee_ppm, taker_fee_ppm, hold_asset, hold_amount, actor) */
    Out *o = &k->event_out;
    out_start(o, k->h_accepted);
    put_envelope(o, k, env, 0, "OrderAccepted", x->version + 1, part->last_hash);
    put_text(o, c->command_id);
    put_long(o, c->account_id);
    put_long(o, c->time_ns);
    put_long(o, order_id);
    put_long(o, c->instrument_id);
    put_long(o, c->side);
    put_long(o, c->kind);
    put_long(o, c->price);
    put_long(o, c->qty);
    put_long(o, c->protection);
    put_long(o, c->stp);
    put_text(o, e->base);
    put_text(o, e->quote);
    put_long(o, e->tick);
    put_long(o, e->lot);
    put_long(o, e->maker);
    put_long(o, e->taker);
    put_text(o, hold_text);
    put_long(o, hold);
    put_long(o, c->actor);
    out_seal(o, part->last_hash);
    /* NewOrder(order_id, account_id, instrument_id, side, kind, price, qty, protection_ticks,
     * stp_mode, maker_fee_ppm, taker_fee_ppm, event_time_ns): unchained, seq 0 */
    Out *q = &k->request_out;
    out_start(q, k->h_new_order);
    put_envelope(q, k, env, 1, "NewOrder", 0, ZERO_HASH);
    put_long(q, order_id);
    put_long(q, c->account_id);
    put_long(q, c->instrument_id);
    put_long(q, c->side);
    put_long(q, c->kind);
    put_long(q, c->price);
    put_long(q, c->qty);
    put_long(q, c->protection);
    put_long(q, c->stp);
    put_long(q, e->maker);
    put_long(q, e->taker);
    put_long(q, c->time_ns);
    out_seal(q, ZERO_HASH);
    if (o->overflow || q->overflow) return HANDED_BACK;
    PyObject *key = instrument_key(e);
    if (key == NULL) return -1;
    /* apply: the OpenOrder (as OpenOrder(accepted) builds it), the hold, the order */
    PyTypeObject *order_type = (PyTypeObject *)k->open_order_type;
    PyObject *order = order_type->tp_alloc(order_type, 0);
    PyObject *price_obj = PyLong_FromLongLong(c->price);
    PyObject *qty_obj = PyLong_FromLongLong(c->qty);
    PyObject *hold_obj = PyLong_FromLongLong(hold);
    if (order == NULL || price_obj == NULL || qty_obj == NULL || hold_obj == NULL) {
        Py_XDECREF(order);
        Py_XDECREF(price_obj);
        Py_XDECREF(qty_obj);
        Py_XDECREF(hold_obj);
        Py_DECREF(key);
        return -1;
    }
    SLOT(order, k->o_order_id) = Py_NewRef(x->order_id_obj);
    SLOT(order, k->o_instrument_id) = Py_NewRef(e->id_obj);
    SLOT(order, k->o_side) = Py_NewRef(PyTuple_GET_ITEM(k->side_symbols, c->side));
    SLOT(order, k->o_stp_mode) = Py_NewRef(PyTuple_GET_ITEM(k->stp_symbols, c->stp));
    SLOT(order, k->o_price) = price_obj;
    SLOT(order, k->o_qty) = qty_obj;
    SLOT(order, k->o_base_asset) = Py_NewRef(f[3]);
    SLOT(order, k->o_quote_asset) = Py_NewRef(f[4]);
    SLOT(order, k->o_tick_size) = Py_NewRef(f[5]);
    SLOT(order, k->o_lot_size) = Py_NewRef(f[6]);
    SLOT(order, k->o_maker_fee_ppm) = Py_NewRef(f[9]);
    SLOT(order, k->o_taker_fee_ppm) = Py_NewRef(f[10]);
    SLOT(order, k->o_hold_asset) = Py_NewRef(hold_asset);
    SLOT(order, k->o_hold_remaining) = hold_obj;
    SLOT(order, k->o_filled_qty) = Py_NewRef(k->zero);
    SLOT(order, k->o_fee_micro) = Py_NewRef(k->zero);
    SLOT(order, k->o_cancel_requested) = Py_NewRef(k->false_);
    SLOT(order, k->o_amended_ns) = Py_NewRef(k->zero);
    SLOT(order, k->o_amends) = Py_NewRef(k->empty);
    int status = dict_set_i64(x->available, hold_asset, available - hold);
    if (status == 0) status = dict_set_i64(x->held, hold_asset, held_after);
    if (status == 0) status = PyDict_SetItem(x->orders, x->order_id_obj, order);
    Py_DECREF(order);
    if (status == 0) status = remember(k, x);
    if (status == 0) status = emit(k, outputs, k->events_topic, o, x->key, x->partition_obj);
    if (status == 0) status = emit(k, outputs, k->orders_topic, q, key, k->minus_one);
    Py_DECREF(key);
    if (status < 0) return -1;
    memcpy(part->last_hash, o->b + o->n, HASH_SIZE);
    part->events_added += 1;
    k->events += 1;
    k->requests += 1;
    return DECIDED;
}

/* One posting of a fill's journal entry (asset: the order's base or quote str). */
typedef struct {
    int64_t account;
    PyObject *asset;
    int64_t delta;
} Leg;

/* The OpenOrder of ``order_id`` in the account: 1 (*out borrowed), 0 (none: hand back), -1. */
static int open_order(Kernel *k, Ctx *x, int64_t order_id, PyObject **out) {
    x->order_id_obj = PyLong_FromLongLong(order_id);
    if (x->order_id_obj == NULL) return -1;
    PyObject *order = PyDict_GetItemWithError(x->orders, x->order_id_obj);
    if (order == NULL) return PyErr_Occurred() ? -1 : HANDED_BACK;
    if (Py_TYPE(order) != (PyTypeObject *)k->open_order_type) return HANDED_BACK;
    /* an amended order's settlements are stamped max(input time, amend time): Python */
    if (SLOT(order, k->o_amended_ns) != k->zero) return HANDED_BACK;
    *out = order;
    return 1;
}

static int decide_fill(Kernel *k, Part *part, Ctx *x, const Cmd *c, Env *env,
                       PyObject *outputs) {
    PyObject *order;
    int found = open_order(k, x, c->order_id, &order);
    if (found <= 0) return found;
    Py_INCREF(order); /* the dicts below may run Python code (__eq__ of keys) */
    int result = HANDED_BACK;
    PyObject *side = SLOT(order, k->o_side), *base = SLOT(order, k->o_base_asset),
             *quote = SLOT(order, k->o_quote_asset), *hold_asset = SLOT(order, k->o_hold_asset);
    int64_t instrument_id, qty, filled, price, tick, lot, maker, taker, fee_micro, remaining;
    if (side == NULL || base == NULL || quote == NULL || hold_asset == NULL ||
        !as_i64(SLOT(order, k->o_instrument_id), &instrument_id) ||
        !as_i64(SLOT(order, k->o_qty), &qty) || !as_i64(SLOT(order, k->o_filled_qty), &filled) ||
        !as_i64(SLOT(order, k->o_price), &price) ||
        !as_i64(SLOT(order, k->o_tick_size), &tick) ||
        !as_i64(SLOT(order, k->o_lot_size), &lot) ||
        !as_i64(SLOT(order, k->o_maker_fee_ppm), &maker) ||
        !as_i64(SLOT(order, k->o_taker_fee_ppm), &taker) ||
        !as_i64(SLOT(order, k->o_fee_micro), &fee_micro) ||
        !as_i64(SLOT(order, k->o_hold_remaining), &remaining))
        goto done;
    /* the decision's checks (each failure is the Python path's rejection or assertion) */
    if (!text_equal(PyTuple_GET_ITEM(k->side_symbols, c->side), side)) goto done;
    if (c->instrument_id != instrument_id) goto done;
    if (c->qty > qty - filled) goto done; /* overfill */
    int buy = c->side == k->side_buy;
    if (buy ? c->price > price : c->price < price) goto done;
    if (text_equal(base, quote)) goto done; /* never created; keep the general path */
    int64_t n, q;
    if (__builtin_mul_overflow(c->price, c->qty, &n) || __builtin_mul_overflow(n, tick, &n) ||
        __builtin_mul_overflow(c->qty, lot, &q))
        goto done;
    int64_t rate = c->liquidity == k->liquidity_maker ? maker : taker;
    if (fee_micro < 0 || n < 0 || rate < 0) goto done; /* fee_step asserts */
    __int128 after = (__int128)fee_micro + (__int128)n * rate;
    if (after > INT64_MAX) goto done; /* an Avro long: the Python path raises */
    __int128 fee128 = (after + PPM - 1) / PPM - ((__int128)fee_micro + PPM - 1) / PPM;
    if (fee128 < 0 || (fee128 > n && rate <= PPM)) goto done; /* fee_step asserts */
    int64_t fee = (int64_t)fee128;
    int64_t consumed;
    Leg postings[POSTINGS_MAX];
    int count = 0;
    if (buy) {
        if (__builtin_add_overflow(n, fee, &consumed)) goto done;
        postings[count++] = (Leg){c->account_id, quote, -consumed};
        postings[count++] = (Leg){k->clearing_account, quote, n};
        postings[count++] = (Leg){c->account_id, base, q};
        postings[count++] = (Leg){k->clearing_account, base, -q};
    } else {
        consumed = q;
        postings[count++] = (Leg){c->account_id, base, -q};
        postings[count++] = (Leg){k->clearing_account, base, q};
        postings[count++] = (Leg){c->account_id, quote, n - fee};
        postings[count++] = (Leg){k->clearing_account, quote, -n};
    }
    if (fee) postings[count++] = (Leg){k->fees_account, quote, fee};
    if (consumed > remaining) goto done; /* the domain asserts */
    /* the state after, checked before anything changes */
    int64_t held, held_after, own_after[2];
    PyObject *own_asset[2];
    int own = 0;
    int got = dict_i64(x->held, hold_asset, &held);
    if (got <= 0) {
        result = got;
        goto done;
    }
    int held_present = PyDict_Contains(x->held, hold_asset);
    if (held_present <= 0) { /* held[hold_asset] -= ...: a KeyError in the domain */
        result = held_present;
        goto done;
    }
    held_after = held - consumed;
    if (held_after < 0) goto done; /* the domain asserts */
    for (int i = 0; i < count; i++) {
        if (postings[i].account != c->account_id) continue;
        int64_t delta = postings[i].delta, balance;
        if (text_equal(postings[i].asset, hold_asset) &&
            __builtin_add_overflow(delta, consumed, &delta))
            goto done;
        got = dict_i64(x->available, postings[i].asset, &balance);
        if (got <= 0) {
            result = got;
            goto done;
        }
        ENSURE(own < 2, "a fill leg has two postings of its own account");
        if (__builtin_add_overflow(balance, delta, &own_after[own])) goto done;
        own_asset[own++] = postings[i].asset;
    }
    ENSURE(own == 2, "a fill leg has two postings of its own account");
    Text hold_text, asset_texts[2];
    if (!asset_utf8(hold_asset, &hold_text) || !asset_utf8(base, &asset_texts[0]) ||
        !asset_utf8(quote, &asset_texts[1]))
        goto done;
    Text id = {env->command_id, env->command_id_n};
    /* FillSettled(command_id, account_id, event_time_ns, order_id, trade_id, instrument_id,
     * side, liquidity, price, qty, notional, fee, fee_micro, hold_asset, hold_consumed,
     * postings) */
    Out *o = &k->event_out;
    out_start(o, k->h_fill_settled);
    put_envelope(o, k, env, 0, "FillSettled", x->version + 1, part->last_hash);
    put_text(o, id);
    put_long(o, c->account_id);
    put_long(o, c->time_ns);
    put_long(o, c->order_id);
    put_long(o, c->trade_id);
    put_long(o, c->instrument_id);
    put_long(o, c->side);
    put_long(o, c->liquidity);
    put_long(o, c->price);
    put_long(o, c->qty);
    put_long(o, n);
    put_long(o, fee);
    put_long(o, (int64_t)after);
    put_text(o, hold_text);
    put_long(o, consumed);
    put_long(o, count);
    for (int i = 0; i < count; i++) {
        put_long(o, postings[i].account);
        put_text(o, postings[i].asset == base ? asset_texts[0] : asset_texts[1]);
        put_long(o, postings[i].delta);
    }
    put_long(o, 0);
    out_seal(o, part->last_hash);
    if (o->overflow) goto done;
    result = -1;
    /* apply (Account._apply_fill) */
    if (slot_set_i64(order, k->o_filled_qty, filled + c->qty) < 0 ||
        slot_set_i64(order, k->o_fee_micro, (int64_t)after) < 0 ||
        slot_set_i64(order, k->o_hold_remaining, remaining - consumed) < 0 ||
        dict_set_i64(x->held, hold_asset, held_after) < 0)
        goto done;
    for (int i = 0; i < own; i++) {
        if (dict_set_i64(x->available, own_asset[i], own_after[i]) < 0) goto done;
    }
    if (remember(k, x) < 0) goto done;
    if (emit(k, outputs, k->events_topic, o, x->key, x->partition_obj) < 0) goto done;
    memcpy(part->last_hash, o->b + o->n, HASH_SIZE);
    part->events_added += 1;
    k->events += 1;
    result = DECIDED;
done:
    Py_DECREF(order);
    return result;
}

static int decide_ended(Kernel *k, Part *part, Ctx *x, const Cmd *c, Env *env,
                        PyObject *outputs) {
    PyObject *order;
    int found = open_order(k, x, c->order_id, &order);
    if (found <= 0) return found;
    Py_INCREF(order);
    int result = HANDED_BACK;
    PyObject *hold_asset = SLOT(order, k->o_hold_asset);
    int64_t remaining, held, available, held_after, available_after;
    Text hold_text;
    if (hold_asset == NULL || !as_i64(SLOT(order, k->o_hold_remaining), &remaining) ||
        !asset_utf8(hold_asset, &hold_text))
        goto done;
    /* held[asset] -= rest; available[asset] += rest: KeyErrors in the domain when absent */
    int present = PyDict_Contains(x->held, hold_asset);
    if (present > 0) present = PyDict_Contains(x->available, hold_asset);
    if (present <= 0) {
        result = present;
        goto done;
    }
    int got = dict_i64(x->held, hold_asset, &held);
    if (got > 0) got = dict_i64(x->available, hold_asset, &available);
    if (got <= 0) {
        result = got;
        goto done;
    }
    if (__builtin_sub_overflow(held, remaining, &held_after) || held_after < 0 ||
        __builtin_add_overflow(available, remaining, &available_after))
        goto done;
    Text id = {env->command_id, env->command_id_n};
    /* HoldReleased(command_id, account_id, event_time_ns, order_id, asset, amount, end_reason) */
    Out *o = &k->event_out;
    out_start(o, k->h_hold_released);
    put_envelope(o, k, env, 0, "HoldReleased", x->version + 1, part->last_hash);
    put_text(o, id);
    put_long(o, c->account_id);
    put_long(o, c->time_ns);
    put_long(o, c->order_id);
    put_text(o, hold_text);
    put_long(o, remaining);
    put_long(o, c->reason);
    out_seal(o, part->last_hash);
    if (o->overflow) goto done;
    result = -1;
    /* apply: the order leaves, its hold goes back to available */
    if (PyDict_DelItem(x->orders, x->order_id_obj) < 0 ||
        dict_set_i64(x->held, hold_asset, held_after) < 0 ||
        dict_set_i64(x->available, hold_asset, available_after) < 0 || remember(k, x) < 0)
        goto done;
    if (emit(k, outputs, k->events_topic, o, x->key, x->partition_obj) < 0) goto done;
    memcpy(part->last_hash, o->b + o->n, HASH_SIZE);
    part->events_added += 1;
    k->events += 1;
    result = DECIDED;
done:
    Py_DECREF(order);
    return result;
}

/* One record: DECIDED, HANDED_BACK, or -1 (an exception is set). */
static int decide_one(Kernel *k, PyObject *message, PyObject *outputs) {
    Fields m = {NULL, NULL, NULL, -1, -1};
    Ctx x = {0};
    if (message_fields(k, message, &m) < 0) return -1;
    int result = HANDED_BACK;
    int source;
    PyObject *topic = m.topic;
    if (topic == k->commands_topic ||
        (PyUnicode_CheckExact(topic) && PyUnicode_Compare(topic, k->commands_topic) == 0)) {
        source = SOURCE_COMMANDS;
    } else if (topic == k->settlements_topic ||
               (PyUnicode_CheckExact(topic) &&
                PyUnicode_Compare(topic, k->settlements_topic) == 0)) {
        source = SOURCE_SETTLEMENTS;
    } else {
        goto done;
    }
    int64_t offset = m.offset;
    long partition = (long)m.partition;
    if (!PyBytes_CheckExact(m.value) || offset < 0 || offset > k->order_offset_max ||
        partition < 0)
        goto done;
    Cmd c;
    if (!parse(k, (const unsigned char *)PyBytes_AS_STRING(m.value), PyBytes_GET_SIZE(m.value),
               source, &c))
        goto done;
    if (c.account_id <= 0 || c.time_ns < 0 || c.time_ns / 1000000 > UNIX_MS_MAX) goto done;
    x.partition_obj = PyLong_FromLong(partition);
    if (x.partition_obj == NULL) {
        result = -1;
        goto done;
    }
    Part *part;
    int loaded = part_load(k, x.partition_obj, partition, &part);
    if (loaded <= 0) {
        result = loaded;
        goto done;
    }
    /* the route: misrouted records are dead letters (the Python path) */
    char decimal[ACCOUNT_KEY_BYTES_MAX];
    int decimal_n = tx_decimal(decimal, c.account_id);
    long home = (long)((tx_murmur2((const unsigned char *)decimal, decimal_n) & 0x7FFFFFFF) %
                       (uint32_t)k->partitions);
    if (home != partition) goto done; /* misrouted: a dead letter */
    x.account_obj = PyLong_FromLongLong(c.account_id);
    if (x.account_obj == NULL) {
        result = -1;
        goto done;
    }
    /* the key of its events: the record's own key when it is the account key (as it is when
     * a client or the matcher wrote it), else a new one */
    if (PyBytes_CheckExact(m.key) && PyBytes_GET_SIZE(m.key) == decimal_n &&
        memcmp(PyBytes_AS_STRING(m.key), decimal, (size_t)decimal_n) == 0) {
        x.key = Py_NewRef(m.key);
    } else {
        x.key = PyBytes_FromStringAndSize(decimal, decimal_n);
        if (x.key == NULL) {
            result = -1;
            goto done;
        }
    }
    /* the account: created empty on first use, as AccountBook.handle does */
    PyObject *account = PyDict_GetItemWithError(part->accounts, x.account_obj);
    if (account == NULL) {
        if (PyErr_Occurred()) {
            result = -1;
            goto done;
        }
        PyObject *args[2] = {part->book, x.account_obj};
        PyObject *created = PyObject_VectorcallMethod(
            interned[N_ACCOUNT], args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (created == NULL) {
            result = -1;
            goto done;
        }
        Py_DECREF(created); /* the book holds it */
        account = PyDict_GetItemWithError(part->accounts, x.account_obj);
        if (account == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_AssertionError, "book.account did not keep the account");
            }
            result = -1;
            goto done;
        }
    }
    if (Py_TYPE(account) != (PyTypeObject *)k->account_type) goto done;
    x.account = account;
    x.available = SLOT(account, k->a_available);
    x.held = SLOT(account, k->a_held);
    x.orders = SLOT(account, k->a_orders);
    /* two windows, two namespaces: a client's command id never shadows a settlement's */
    x.outcomes_slot = c.type == IN_DEPOSIT || c.type == IN_PLACE ? k->a_outcomes : k->a_settled;
    x.outcomes = SLOT(account, x.outcomes_slot);
    if (x.available == NULL || !PyDict_CheckExact(x.available) || x.held == NULL ||
        !PyDict_CheckExact(x.held) || x.orders == NULL || !PyDict_CheckExact(x.orders) ||
        x.outcomes == NULL || !PyDict_Check(x.outcomes) ||
        !as_i64(SLOT(account, k->a_version), &x.version) || x.version >= INT64_MAX)
        goto done;
    /* the command id, and the idempotency window */
    Env env;
    env.time_ns = c.time_ns;
    event_id_head(k, env.event_id, c.time_ns / 1000000, (int)partition,
                  source == SOURCE_COMMANDS ? k->source_commands : k->source_settlements, offset);
    if (c.type == IN_DEPOSIT || c.type == IN_PLACE) {
        x.command_id = PyUnicode_DecodeUTF8(c.command_id.p, c.command_id.n, NULL);
        env.causation = c.command_id;
        env.correlation = c.correlation.n > 0 ? c.correlation : c.command_id;
    } else {
        env.command_id_n = settlement_id(env.command_id, &c);
        env.causation = c.event_id;
        env.correlation = c.correlation;
        if (env.correlation.n == 0) env.correlation = (Text){env.command_id, env.command_id_n};
        x.command_id = PyUnicode_FromStringAndSize(env.command_id, env.command_id_n);
    }
    if (x.command_id == NULL) {
        result = -1;
        goto done;
    }
    int duplicate = PyDict_Contains(x.outcomes, x.command_id);
    if (duplicate != 0) {
        result = duplicate < 0 ? -1 : HANDED_BACK;
        goto done;
    }
    switch (c.type) {
    case IN_DEPOSIT:
        result = decide_deposit(k, part, &x, &c, &env, outputs);
        break;
    case IN_PLACE:
        result = decide_place(k, part, &x, &c, &env, part->order_id_base | offset, outputs);
        break;
    case IN_FILL:
        result = decide_fill(k, part, &x, &c, &env, outputs);
        break;
    default:
        result = decide_ended(k, part, &x, &c, &env, outputs);
        break;
    }
    if (result == DECIDED) k->decided += 1;
done:
    fields_release(&m);
    Py_XDECREF(x.partition_obj);
    ctx_release(&x);
    return result;
}

/* decide(messages, start, outputs) -> index of the first record not decided (len: all) */
static PyObject *kernel_decide(Kernel *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyList_CheckExact(args[0]) || !PyLong_CheckExact(args[1]) ||
        !PyList_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "decide(messages: list, start: int, outputs: list)");
        return NULL;
    }
    PyObject *messages = args[0], *outputs = args[2];
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(messages);
    if (start < 0 || start > n) {
        PyErr_SetString(PyExc_IndexError, "start out of the messages");
        return NULL;
    }
    self->generation += 1;
    Py_ssize_t i = start;
    int status = 0;
    for (; i < n; i++) { /* bounded by the batch; the list is not resized meanwhile */
        PyObject *message = PyList_GET_ITEM(messages, i);
        Py_INCREF(message);
        status = decide_one(self, message, outputs);
        Py_DECREF(message);
        if (status != DECIDED) break;
        n = PyList_GET_SIZE(messages);
    }
    if (parts_flush(self) < 0 || status < 0) return NULL;
    return PyLong_FromSsize_t(i);
}

/* take_counts() -> (decided, events, order_requests) since the last call */
static PyObject *kernel_take_counts(Kernel *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *counts = Py_BuildValue("(LLL)", (long long)self->decided, (long long)self->events,
                                     (long long)self->requests);
    if (counts != NULL) self->decided = self->events = self->requests = 0;
    return counts;
}

/* take_rejections() -> (below_min_notional, insufficient_funds): the OrderRejected decided
 * here since the last call (of take_counts()'s decided; the metrics' reject reasons) */
static PyObject *kernel_take_rejections(Kernel *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *counts = Py_BuildValue("(LL)", (long long)self->rejected_below_min_notional,
                                     (long long)self->rejected_insufficient_funds);
    if (counts != NULL) self->rejected_below_min_notional = self->rejected_insufficient_funds = 0;
    return counts;
}

/* message_layout() -> (topic, value, key, partition, offset) byte offsets, or None (the
 * kernel calls the Message methods) */
static PyObject *kernel_message_layout(Kernel *self, PyObject *Py_UNUSED(ignored)) {
    if (!self->message.known) Py_RETURN_NONE;
    return Py_BuildValue("(nnnnn)", self->message.topic, self->message.value, self->message.key,
                         self->message.partition, self->message.offset);
}

static PyMethodDef kernel_methods[] = {
    {"message_layout", (PyCFunction)kernel_message_layout, METH_NOARGS,
     "message_layout() -> where a Message keeps topic, value, key, partition, offset, or None"},
    {"decide", (PyCFunction)(void (*)(void))kernel_decide, METH_FASTCALL,
     "decide(messages, start, outputs) -> index of the first record not decided here"},
    {"take_counts", (PyCFunction)kernel_take_counts, METH_NOARGS,
     "take_counts() -> (decided, events, order_requests) since the last call"},
    {"take_rejections", (PyCFunction)kernel_take_rejections, METH_NOARGS,
     "take_rejections() -> (below_min_notional, insufficient_funds) since the last call"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tradex.commands._account_kernel.Kernel",
    .tp_basicsize = sizeof(Kernel),
    .tp_dealloc = (destructor)kernel_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Kernel(spec): the account processor's compiled decision path (module doc).",
    .tp_traverse = (traverseproc)kernel_traverse,
    .tp_clear = (inquiry)kernel_clear,
    .tp_methods = kernel_methods,
    .tp_new = kernel_new,
};

/* -- module ---------------------------------------------------------------------------------- */

/* event_id(event_time_ns, source, partition, offset, index) -> str: the kernel's id text
 * (tested against tradex.domain.ids.event_id) */
static PyObject *module_event_id(PyObject *module, PyObject *args) {
    (void)module;
    long long time_ns, offset;
    int source, partition, index;
    if (!PyArg_ParseTuple(args, "LiiLi", &time_ns, &source, &partition, &offset, &index))
        return NULL;
    if (time_ns < 0 || time_ns / 1000000 > UNIX_MS_MAX || source < 0 || source > 63 ||
        partition < 0 || partition >= PARTITIONS_MAX || offset < 0 || offset > OFFSET_MAX ||
        index < 0 || index > 255) {
        PyErr_SetString(PyExc_ValueError, "event id field out of range");
        return NULL;
    }
    char text[EVENT_ID_SIZE];
    event_id_text(text, time_ns / 1000000, partition, source, offset, 0);
    text[EVENT_ID_SIZE - 2] = HEX[(index >> 4) & 15];
    text[EVENT_ID_SIZE - 1] = HEX[index & 15];
    return PyUnicode_FromStringAndSize(text, EVENT_ID_SIZE);
}

/* account_partition(account_id, partitions) -> int: where the kernel routes an account
 * (tested against tradex.log.keys.account_partition) */
static PyObject *module_account_partition(PyObject *module, PyObject *args) {
    (void)module;
    long long account_id, partitions;
    if (!PyArg_ParseTuple(args, "LL", &account_id, &partitions)) return NULL;
    if (partitions < 1 || partitions > PARTITIONS_MAX) {
        PyErr_SetString(PyExc_ValueError, "partitions out of range");
        return NULL;
    }
    char decimal[ACCOUNT_KEY_BYTES_MAX];
    int n = tx_decimal(decimal, account_id);
    uint32_t hash = tx_murmur2((const unsigned char *)decimal, n);
    return PyLong_FromLong((long)((hash & 0x7FFFFFFF) % (uint32_t)partitions));
}

static PyMethodDef module_methods[] = {
    {"account_partition", module_account_partition, METH_VARARGS,
     "account_partition(account_id, partitions) -> the partition the kernel routes it to"},
    {"event_id", module_event_id, METH_VARARGS,
     "event_id(event_time_ns, source, partition, offset, index) -> the id text the kernel writes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tradex.commands._account_kernel",
    "The account processor's compiled decision path (see tradex/commands/compiled.py).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__account_kernel(void) {
    for (int i = 0; i < N_COUNT; i++) {
        if (interned[i] == NULL) {
            interned[i] = PyUnicode_InternFromString(interned_text[i]);
            if (interned[i] == NULL) return NULL;
        }
    }
    if (PyType_Ready(&KernelType) < 0) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(module, "Kernel", (PyObject *)&KernelType) < 0 ||
        PyModule_AddIntConstant(module, "INPUT_BYTES_MAX", INPUT_BYTES_MAX) < 0 ||
        PyModule_AddIntConstant(module, "RECORD_BYTES_MAX", RECORD_BYTES_MAX) < 0 ||
        PyModule_AddIntConstant(module, "PARTITIONS_MAX", PARTITIONS_MAX) < 0 ||
        PyModule_AddStringConstant(module, "SHA256_BACKEND", SHA256_BACKEND) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
