/* tradex.log._native_kafka: read Kafka partitions in batches of columns, in C.
 *
 * A Reader is a librdkafka consumer assigned to given (topic, partition, start offset)
 * places (no group membership, nothing committed). Reader.poll(timeout_ms, records_max)
 * waits at most timeout_ms for a first message, then takes whatever else is already
 * fetched (at most records_max messages in all) and returns the records as a few buffers:
 *
 *   values         every value, concatenated (bytes)
 *   value_offsets  int64, one per record and one more: record i's value is
 *                  values[value_offsets[i]:value_offsets[i + 1]]; keys and key_offsets
 *                  likewise (a null value or key is empty here and flagged)
 *   flags        uint8 per record: FLAG_VALUE_NULL, FLAG_KEY_NULL, FLAG_TRACED
 *   topic        int32 per record: index of its topic in the Reader's topic list
 *   partition    int32; offset int64; timestamp_ms int64 (-1: none)
 *   traceparents the W3C ``traceparent`` header (TRACEPARENT_BYTES) of each record flagged
 *                FLAG_TRACED, in record order (tradex.observability.tracing); the header
 *                of a record without one is not looked for past librdkafka's "no headers"
 *
 * No Python object is made per record. Positions follow tradex.log.source.Tail exactly:
 * reached(place) is the last returned record's offset + 1, or further once a partition's
 * end (librdkafka's partition EOF event, which stands past transaction markers) has been
 * seen; at_end(place) says whether the last poll left the place at its end. Only committed
 * records are returned when the configuration says isolation.level=read_committed (the
 * caller's): librdkafka drops aborted ones. Any error event other than a partition EOF
 * raises ReadError; the records of that poll are lost to the caller, as the reader is
 * then unusable.
 *
 * librdkafka's log lines (a broker down: FAIL, ERROR) are kept, never printed: logs() hands
 * them to Python (tradex.log.native_tail logs them as confluent-kafka's clients do), at most
 * LOG_LINES_MAX between two calls (the rest counted as dropped).
 *
 * Bounds: records_max <= RECORDS_MAX per poll; places <= PLACES_MAX; partitions of a place
 * < PARTITIONS_MAX. Not thread-safe: one thread polls a Reader (poll releases the GIL
 * while it waits and copies, so other Python threads run meanwhile).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define RECORDS_MAX 1000000
#define PLACES_MAX 65536
#define TOPICS_MAX 1024
#define PARTITIONS_MAX 100000
#define ERRSTR_SIZE 512
#define FLAG_VALUE_NULL 1
#define FLAG_KEY_NULL 2
#define FLAG_TRACED 4
#define TRACEPARENT_BYTES 55
#define OUTPUTS 10
#define LOG_LINES_MAX 64
#define LOG_TEXT_MAX 512
#define LOG_FACILITY_MAX 32

typedef struct {
    int level; /* syslog level */
    char facility[LOG_FACILITY_MAX];
    char text[LOG_TEXT_MAX];
} LogLine;

static PyObject *ReadError; /* tradex.log._native_kafka.ReadError(code, name, text) */

typedef struct {
    PyObject_HEAD
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    Py_ssize_t places_n;
    int32_t *place_topic;     /* per place: topic index */
    int32_t *place_partition; /* per place: partition */
    int64_t *reached;         /* per place: next offset read up to */
    uint8_t *at_end;          /* per place */
    int32_t topics_n;
    char **topic_names;       /* owned copies */
    int32_t *topic_partitions; /* per topic: 1 + its largest partition among the places */
    int32_t **topic_place;    /* per topic: partition -> place index (-1: not assigned) */
    const rd_kafka_topic_t *rkt_cache[TOPICS_MAX]; /* topic handle seen -> topic index */
    rd_kafka_message_t **messages; /* RECORDS_MAX pointers, allocated on first poll */
    int busy; /* a poll is running (with the GIL released): another poll or close refused */
    /* librdkafka's log lines until logs() takes them: written by its threads (log_cb) */
    pthread_mutex_t log_lock;
    int log_ready; /* log_lock initialised */
    int log_n;
    long log_dropped;
    LogLine log_lines[LOG_LINES_MAX];
} Reader;

static void log_cb(const rd_kafka_t *rk, int level, const char *facility, const char *text) {
    Reader *self = rd_kafka_opaque(rk);
    if (self == NULL || !self->log_ready) return;
    pthread_mutex_lock(&self->log_lock);
    if (self->log_n < LOG_LINES_MAX) {
        LogLine *line = &self->log_lines[self->log_n++];
        line->level = level;
        snprintf(line->facility, sizeof line->facility, "%s", facility);
        snprintf(line->text, sizeof line->text, "%s", text);
    } else {
        self->log_dropped++;
    }
    pthread_mutex_unlock(&self->log_lock);
}

static void raise_read_error(rd_kafka_resp_err_t err, const char *text) {
    PyObject *args = Py_BuildValue("(iss)", (int)err, rd_kafka_err2name(err), text);
    if (args != NULL) {
        PyErr_SetObject(ReadError, args);
        Py_DECREF(args);
    }
}

static void reader_release(Reader *self) {
    if (self->queue != NULL) {
        rd_kafka_queue_destroy(self->queue);
        self->queue = NULL;
    }
    if (self->rk != NULL) {
        rd_kafka_t *rk = self->rk;
        self->rk = NULL;
        Py_BEGIN_ALLOW_THREADS
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        Py_END_ALLOW_THREADS
    }
}

static void reader_dealloc(Reader *self) {
    reader_release(self); /* librdkafka's threads are gone: no log_cb after this */
    if (self->log_ready) pthread_mutex_destroy(&self->log_lock);
    for (int32_t t = 0; t < self->topics_n; t++) {
        if (self->topic_names != NULL) PyMem_Free(self->topic_names[t]);
        if (self->topic_place != NULL) PyMem_Free(self->topic_place[t]);
    }
    PyMem_Free(self->topic_names);
    PyMem_Free(self->topic_place);
    PyMem_Free(self->topic_partitions);
    PyMem_Free(self->place_topic);
    PyMem_Free(self->place_partition);
    PyMem_Free(self->reached);
    PyMem_Free(self->at_end);
    PyMem_Free(self->messages);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Reader(config: dict[str, str], topics: list[str], places: list[(topic index, partition,
 * start offset)]) */
static int reader_init(Reader *self, PyObject *args, PyObject *kwargs) {
    PyObject *config, *topics, *places;
    static char *names[] = {"config", "topics", "places", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!", names, &PyDict_Type, &config,
                                     &PyList_Type, &topics, &PyList_Type, &places))
        return -1;
    if (self->rk != NULL || self->places_n != 0) {
        PyErr_SetString(PyExc_RuntimeError, "a Reader is initialised once");
        return -1;
    }
    Py_ssize_t topics_n = PyList_GET_SIZE(topics), places_n = PyList_GET_SIZE(places);
    if (topics_n < 1 || topics_n > TOPICS_MAX || places_n < 1 || places_n > PLACES_MAX) {
        PyErr_SetString(PyExc_ValueError, "1..TOPICS_MAX topics and 1..PLACES_MAX places");
        return -1;
    }
    self->topics_n = (int32_t)topics_n;
    self->topic_names = PyMem_Calloc((size_t)topics_n, sizeof(char *));
    self->topic_partitions = PyMem_Calloc((size_t)topics_n, sizeof(int32_t));
    self->topic_place = PyMem_Calloc((size_t)topics_n, sizeof(int32_t *));
    self->place_topic = PyMem_Calloc((size_t)places_n, sizeof(int32_t));
    self->place_partition = PyMem_Calloc((size_t)places_n, sizeof(int32_t));
    self->reached = PyMem_Calloc((size_t)places_n, sizeof(int64_t));
    self->at_end = PyMem_Calloc((size_t)places_n, sizeof(uint8_t));
    if (!self->topic_names || !self->topic_partitions || !self->topic_place ||
        !self->place_topic || !self->place_partition || !self->reached || !self->at_end) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t t = 0; t < topics_n; t++) {
        const char *name = PyUnicode_AsUTF8(PyList_GET_ITEM(topics, t));
        if (name == NULL) return -1;
        size_t size = strlen(name) + 1;
        self->topic_names[t] = PyMem_Malloc(size);
        if (self->topic_names[t] == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(self->topic_names[t], name, size);
    }
    for (Py_ssize_t i = 0; i < places_n; i++) {
        int topic, partition;
        long long start;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(places, i), "iiL", &topic, &partition, &start))
            return -1;
        if (topic < 0 || topic >= topics_n || partition < 0 || partition >= PARTITIONS_MAX ||
            start < 0) {
            PyErr_SetString(PyExc_ValueError, "a place is (topic index, partition, start >= 0)");
            return -1;
        }
        self->place_topic[i] = topic;
        self->place_partition[i] = partition;
        self->reached[i] = start;
        if (partition + 1 > self->topic_partitions[topic]) self->topic_partitions[topic] = partition + 1;
    }
    self->places_n = places_n;
    for (Py_ssize_t t = 0; t < topics_n; t++) {
        int32_t n = self->topic_partitions[t];
        self->topic_place[t] = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
        if (self->topic_place[t] == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (int32_t p = 0; p < n; p++) self->topic_place[t][p] = -1;
    }
    for (Py_ssize_t i = 0; i < places_n; i++) {
        int32_t *slot = &self->topic_place[self->place_topic[i]][self->place_partition[i]];
        if (*slot >= 0) {
            PyErr_SetString(PyExc_ValueError, "a place is given twice");
            return -1;
        }
        *slot = (int32_t)i;
    }

    char errstr[ERRSTR_SIZE];
    if (pthread_mutex_init(&self->log_lock, NULL) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "log lock");
        return -1;
    }
    self->log_ready = 1;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(conf, self);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(config, &pos, &key, &value)) {
        const char *k = PyUnicode_AsUTF8(key), *v = PyUnicode_AsUTF8(value);
        if (k == NULL || v == NULL) {
            rd_kafka_conf_destroy(conf);
            return -1;
        }
        if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            PyErr_Format(PyExc_ValueError, "librdkafka configuration %s=%s: %s", k, v, errstr);
            return -1;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (rk == NULL) { /* rd_kafka_new frees conf only when it succeeds */
        rd_kafka_conf_destroy(conf);
        PyErr_Format(PyExc_RuntimeError, "librdkafka consumer: %s", errstr);
        return -1;
    }
    self->rk = rk; /* owns conf now */
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)places_n);
    for (Py_ssize_t i = 0; i < places_n; i++) {
        rd_kafka_topic_partition_list_add(list, self->topic_names[self->place_topic[i]],
                                          self->place_partition[i])
            ->offset = self->reached[i];
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        raise_read_error(err, "assign");
        return -1;
    }
    /* errors and logs of the main queue come through the consumer queue too (as with
     * confluent-kafka's Consumer): an error event stops a poll like any other */
    err = rd_kafka_poll_set_consumer(rk);
    if (err) {
        raise_read_error(err, "poll_set_consumer");
        return -1;
    }
    self->queue = rd_kafka_queue_get_consumer(rk);
    if (self->queue == NULL) {
        PyErr_SetString(PyExc_ValueError, "the configuration needs a group.id (never joined)");
        return -1;
    }
    return 0;
}

static int topic_index(Reader *self, const rd_kafka_topic_t *rkt) {
    if (rkt == NULL) return -1;
    for (int32_t t = 0; t < self->topics_n; t++) {
        if (self->rkt_cache[t] == rkt) return t;
    }
    const char *name = rd_kafka_topic_name(rkt);
    for (int32_t t = 0; t < self->topics_n; t++) {
        if (strcmp(self->topic_names[t], name) == 0) {
            self->rkt_cache[t] = rkt;
            return t;
        }
    }
    return -1;
}

/* The record's traceparent header (TRACEPARENT_BYTES long), or NULL. */
static const void *traceparent_of(rd_kafka_message_t *m) {
    rd_kafka_headers_t *headers;
    const void *value;
    size_t size;
    if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return NULL;
    if (rd_kafka_header_get_last(headers, "traceparent", &value, &size) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) return NULL;
    return value != NULL && size == TRACEPARENT_BYTES ? value : NULL;
}

static int32_t place_of(Reader *self, const rd_kafka_message_t *m, int32_t *topic_out) {
    int topic = topic_index(self, m->rkt);
    if (topic < 0 || m->partition < 0 || m->partition >= self->topic_partitions[topic]) return -1;
    *topic_out = topic;
    return self->topic_place[topic][m->partition];
}

static PyObject *new_bytes(Py_ssize_t size, char **data) {
    PyObject *b = PyBytes_FromStringAndSize(NULL, size);
    if (b != NULL) *data = PyBytes_AS_STRING(b);
    return b;
}

/* poll(timeout_ms, records_max) -> (values, value_offsets, keys, key_offsets, flags, topic,
 * partition, offset, timestamp_ms): see the module doc. */
static PyObject *reader_poll(Reader *self, PyObject *args) {
    int timeout_ms;
    Py_ssize_t records_max;
    if (!PyArg_ParseTuple(args, "in", &timeout_ms, &records_max)) return NULL;
    if (self->rk == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the reader is closed");
        return NULL;
    }
    if (records_max < 1 || records_max > RECORDS_MAX || timeout_ms < 0) {
        PyErr_SetString(PyExc_ValueError, "1 <= records_max <= RECORDS_MAX, timeout_ms >= 0");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "a Reader is polled by one thread at a time");
        return NULL;
    }
    if (self->messages == NULL) {
        self->messages = PyMem_Malloc(RECORDS_MAX * sizeof(rd_kafka_message_t *));
        if (self->messages == NULL) return PyErr_NoMemory();
    }
    rd_kafka_message_t **messages = self->messages;
    ssize_t got, more = 0;
    Py_ssize_t n = 0;
    /* the first error stops the poll: every message is destroyed, the error raised */
    Py_ssize_t records = 0, values_size = 0, keys_size = 0, traced = 0;
    const rd_kafka_message_t *failed = NULL;
    rd_kafka_resp_err_t consume_error = RD_KAFKA_RESP_ERR_NO_ERROR;
    self->busy = 1;
    /* The sizes are summed without the GIL too: holding it here made every other thread
     * (the audit's decoder and re-run) wait for a loop over up to RECORDS_MAX messages. */
    Py_BEGIN_ALLOW_THREADS
    got = rd_kafka_consume_batch_queue(self->queue, timeout_ms, messages, 1);
    if (got == 1 && records_max > 1) {
        more = rd_kafka_consume_batch_queue(self->queue, 0, messages + 1, (size_t)records_max - 1);
    }
    if (got < 0 || more < 0) consume_error = rd_kafka_last_error();
    n = got >= 0 && more >= 0 ? got + more : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = messages[i];
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            records++;
            values_size += m->payload != NULL ? (Py_ssize_t)m->len : 0;
            keys_size += m->key != NULL ? (Py_ssize_t)m->key_len : 0;
            traced += traceparent_of(m) != NULL;
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && failed == NULL) {
            failed = m;
        }
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (got < 0 || more < 0) {
        for (Py_ssize_t i = 0; i < (got > 0 ? got : 0); i++) rd_kafka_message_destroy(messages[i]);
        raise_read_error(consume_error, "consume");
        return NULL;
    }
    PyObject *out[OUTPUTS] = {NULL};
    char *data[OUTPUTS];
    Py_ssize_t sizes[OUTPUTS] = {values_size, 8 * (records + 1), keys_size, 8 * (records + 1),
                                 records, 4 * records, 4 * records, 8 * records, 8 * records,
                                 TRACEPARENT_BYTES * traced};
    if (failed != NULL) {
        char text[ERRSTR_SIZE];
        snprintf(text, sizeof text, "%s [%d] @%lld: %s",
                 failed->rkt != NULL ? rd_kafka_topic_name(failed->rkt) : "-",
                 (int)failed->partition, (long long)failed->offset,
                 rd_kafka_message_errstr(failed));
        raise_read_error(failed->err, text);
        goto fail;
    }
    for (int k = 0; k < OUTPUTS; k++) {
        out[k] = new_bytes(sizes[k], &data[k]);
        if (out[k] == NULL) goto fail;
    }
    int64_t *value_offsets = (int64_t *)data[1], *key_offsets = (int64_t *)data[3];
    value_offsets[0] = 0;
    key_offsets[0] = 0;
    uint8_t *flags = (uint8_t *)data[4];
    int32_t *topics = (int32_t *)data[5], *partitions = (int32_t *)data[6];
    int64_t *offsets = (int64_t *)data[7], *timestamps = (int64_t *)data[8];
    int back = 0; /* a record at or below the place's position: a read that went back */
    int stray = 0; /* a message of a place not assigned */
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t r = 0, v = 0, k = 0, t = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = messages[i];
        int32_t topic = -1;
        int32_t place = place_of(self, m, &topic);
        if (place < 0) {
            stray = 1;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->offset > self->reached[place]) self->reached[place] = m->offset;
            self->at_end[place] = 1;
            continue;
        }
        if (m->offset < self->reached[place]) back = 1;
        self->reached[place] = m->offset + 1;
        self->at_end[place] = 0;
        uint8_t flag = 0;
        if (m->payload != NULL) {
            memcpy(data[0] + v, m->payload, m->len);
            v += (Py_ssize_t)m->len;
        } else {
            flag |= FLAG_VALUE_NULL;
        }
        if (m->key != NULL) {
            memcpy(data[2] + k, m->key, m->key_len);
            k += (Py_ssize_t)m->key_len;
        } else {
            flag |= FLAG_KEY_NULL;
        }
        const void *trace = traceparent_of(m);
        if (trace != NULL && t < traced) {
            memcpy(data[9] + TRACEPARENT_BYTES * t, trace, TRACEPARENT_BYTES);
            t++;
            flag |= FLAG_TRACED;
        }
        rd_kafka_timestamp_type_t kind;
        value_offsets[r + 1] = v;
        key_offsets[r + 1] = k;
        flags[r] = flag;
        topics[r] = topic;
        partitions[r] = m->partition;
        offsets[r] = m->offset;
        timestamps[r] = rd_kafka_message_timestamp(m, &kind);
        r++;
    }
    for (Py_ssize_t i = 0; i < n; i++) rd_kafka_message_destroy(messages[i]);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (back || stray) {
        for (int j = 0; j < OUTPUTS; j++) Py_DECREF(out[j]);
        PyErr_SetString(PyExc_RuntimeError, back ? "a read went back in a partition"
                                                 : "a message of a partition not assigned");
        return NULL;
    }
    PyObject *result = PyTuple_New(OUTPUTS);
    if (result == NULL) {
        for (int j = 0; j < OUTPUTS; j++) Py_DECREF(out[j]);
        return NULL;
    }
    for (int j = 0; j < OUTPUTS; j++) PyTuple_SET_ITEM(result, j, out[j]);
    return result;
fail:
    for (int j = 0; j < OUTPUTS; j++) Py_XDECREF(out[j]);
    for (Py_ssize_t i = 0; i < n; i++) rd_kafka_message_destroy(messages[i]);
    return NULL;
}

/* positions() -> (reached: bytes of int64 per place, at_end: bytes of uint8 per place) */
static PyObject *reader_positions(Reader *self, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("(y#y#)", (const char *)self->reached,
                         (Py_ssize_t)(self->places_n * (Py_ssize_t)sizeof(int64_t)),
                         (const char *)self->at_end, self->places_n);
}

/* logs() -> [(syslog level, facility, text)]: the lines kept since the last call, then one
 * ("dropped" count) line if some did not fit */
static PyObject *reader_logs(Reader *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(0);
    if (out == NULL || !self->log_ready) return out;
    LogLine *lines = PyMem_Malloc(sizeof(LogLine) * LOG_LINES_MAX);
    if (lines == NULL) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    pthread_mutex_lock(&self->log_lock);
    int n = self->log_n;
    long dropped = self->log_dropped;
    memcpy(lines, self->log_lines, sizeof(LogLine) * (size_t)n);
    self->log_n = 0;
    self->log_dropped = 0;
    pthread_mutex_unlock(&self->log_lock);
    for (int i = 0; i <= n; i++) {
        PyObject *item;
        if (i < n) {
            item = Py_BuildValue("(iss)", lines[i].level, lines[i].facility, lines[i].text);
        } else if (dropped > 0) {
            item = Py_BuildValue("(isN)", 4, "DROPPED",
                                 PyUnicode_FromFormat("%ld log lines dropped", dropped));
        } else {
            break;
        }
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            PyMem_Free(lines);
            return NULL;
        }
        Py_DECREF(item);
    }
    PyMem_Free(lines);
    return out;
}

static PyObject *reader_close(Reader *self, PyObject *Py_UNUSED(ignored)) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "close while another thread polls");
        return NULL;
    }
    reader_release(self);
    Py_RETURN_NONE;
}

static PyMethodDef reader_methods[] = {
    {"poll", (PyCFunction)reader_poll, METH_VARARGS,
     "poll(timeout_ms, records_max) -> (values, value_offsets, keys, key_offsets, flags, topic, "
     "partition, offset, timestamp_ms)"},
    {"positions", (PyCFunction)reader_positions, METH_NOARGS,
     "positions() -> (reached int64 per place, at_end uint8 per place) as bytes"},
    {"close", (PyCFunction)reader_close, METH_NOARGS, "close the consumer (idempotent)"},
    {"logs", (PyCFunction)reader_logs, METH_NOARGS,
     "logs() -> [(syslog level, facility, text)] kept since the last call"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tradex.log._native_kafka.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Reader(config, topics, places): a batch reader of Kafka partitions (see the module).",
    .tp_methods = reader_methods,
    .tp_init = (initproc)reader_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tradex.log._native_kafka",
    "Kafka partitions read in batches of columns by librdkafka (see tradex/log/columns.py).", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native_kafka(void) {
    if (PyType_Ready(&ReaderType) < 0) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    ReadError = PyErr_NewException("tradex.log._native_kafka.ReadError", PyExc_RuntimeError, NULL);
    if (ReadError == NULL) goto fail;
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(module, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(&ReaderType);
        goto fail;
    }
    Py_INCREF(ReadError);
    if (PyModule_AddObject(module, "ReadError", ReadError) < 0) {
        Py_DECREF(ReadError);
        goto fail;
    }
    if (PyModule_AddIntConstant(module, "RECORDS_MAX", RECORDS_MAX) < 0 ||
        PyModule_AddIntConstant(module, "PLACES_MAX", PLACES_MAX) < 0 ||
        PyModule_AddIntConstant(module, "FLAG_VALUE_NULL", FLAG_VALUE_NULL) < 0 ||
        PyModule_AddIntConstant(module, "FLAG_KEY_NULL", FLAG_KEY_NULL) < 0 ||
        PyModule_AddIntConstant(module, "FLAG_TRACED", FLAG_TRACED) < 0 ||
        PyModule_AddStringConstant(module, "LIBRDKAFKA_VERSION", rd_kafka_version_str()) < 0)
        goto fail;
    return module;
fail:
    Py_DECREF(module);
    return NULL;
}
