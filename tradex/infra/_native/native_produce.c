/* tradex.infra._native_produce: hand a batch of records to a confluent-kafka Producer's
 * librdkafka in one C call (no Python call per record).
 *
 * A stage produces ~2-5 records per input; confluent-kafka's Producer.produce costs ~1 us
 * of the stage thread per record, most of it parsing its arguments and allocating a
 * per-message state for a delivery callback nobody set. produce(producer, outputs, start,
 * stop) walks outputs[start:stop] (tuples of (topic: str, value: bytes, key: bytes | None,
 * partition: int), tradex.infra.stage.Output) and calls rd_kafka_producev on the
 * producer's own handle for each, exactly as Producer.produce(topic, value, key,
 * partition) does without a callback: RD_KAFKA_MSG_F_COPY, partition -1 = by the
 * configured partitioner, timestamp 0 (now), no headers, no per-message opaque (its
 * delivery report is dropped by confluent-kafka's callback, as for a record produced with
 * no callback). It returns the index of the first record it did not produce: stop when it
 * produced them all, else the index of a record of another shape (a traced output, with
 * headers) or one librdkafka refused (a full queue, a fatal transactional state). The
 * caller produces that record through Producer.produce, which raises confluent-kafka's own
 * exception for it (BufferError, KafkaException) or produces it, and goes on from there.
 *
 * The handle: confluent-kafka's Producer object starts with PyObject_HEAD followed by its
 * rd_kafka_t pointer (struct Handle in its confluent_kafka.h, the same since its first
 * release); bind() is given the Producer type and the path of confluent-kafka's compiled
 * module, and takes rd_kafka_producev (and rd_kafka_type, to check the handle) from that
 * module's own librdkafka (dlsym on its handle searches its dependencies: the wheel's
 * bundled copy, or the system library when built from source). The librdkafka headers are
 * used for types and constants only; this module links no librdkafka.
 *
 * Not thread-safe with respect to closing the producer (as Producer.produce is not); the
 * GIL is held throughout (producev does not block: a full queue is refused, not waited on).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <librdkafka/rdkafka.h>

typedef rd_kafka_resp_err_t (*producev_fn)(rd_kafka_t *, ...);
typedef rd_kafka_type_t (*type_fn)(const rd_kafka_t *);

typedef struct {
    PyObject_HEAD
    rd_kafka_t *rk;
} HandleHead; /* the leading fields of confluent-kafka's Handle */

static producev_fn producev;
static type_fn kafka_type;
static PyTypeObject *producer_type;

static PyObject *bind_producer(PyObject *module, PyObject *args) {
    const char *cimpl_path;
    PyObject *type;
    (void)module;
    if (!PyArg_ParseTuple(args, "sO!", &cimpl_path, &PyType_Type, &type)) return NULL;
    void *handle = dlopen(cimpl_path, RTLD_NOW | RTLD_NOLOAD);
    if (handle == NULL) {
        PyErr_Format(PyExc_RuntimeError, "confluent-kafka's module is not loaded: %s", dlerror());
        return NULL;
    }
    producev_fn found_producev = (producev_fn)dlsym(handle, "rd_kafka_producev");
    type_fn found_type = (type_fn)dlsym(handle, "rd_kafka_type");
    dlclose(handle); /* still loaded: the interpreter holds it */
    if (found_producev == NULL || found_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no rd_kafka_producev in confluent-kafka's librdkafka");
        return NULL;
    }
    producev = found_producev;
    kafka_type = found_type;
    Py_XDECREF(producer_type);
    Py_INCREF(type);
    producer_type = (PyTypeObject *)type;
    Py_RETURN_NONE;
}

static rd_kafka_t *producer_handle(PyObject *producer) {
    if (producev == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "bind() first");
        return NULL;
    }
    if (!PyObject_TypeCheck(producer, producer_type)) {
        PyErr_Format(PyExc_TypeError, "a confluent_kafka.Producer is needed, not %.100s",
                     Py_TYPE(producer)->tp_name);
        return NULL;
    }
    rd_kafka_t *rk = ((HandleHead *)producer)->rk;
    if (rk == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the producer is closed");
        return NULL;
    }
    if (kafka_type(rk) != RD_KAFKA_PRODUCER) {
        PyErr_SetString(PyExc_RuntimeError, "the Producer's handle is not a librdkafka producer");
        return NULL;
    }
    return rk;
}

static PyObject *produce(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "produce(producer, outputs, start, stop)");
        return NULL;
    }
    rd_kafka_t *rk = producer_handle(args[0]);
    if (rk == NULL) return NULL;
    PyObject *outputs = args[1];
    if (!PyList_Check(outputs)) {
        PyErr_SetString(PyExc_TypeError, "outputs must be a list");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[2]), stop = PyLong_AsSsize_t(args[3]);
    if ((start == -1 || stop == -1) && PyErr_Occurred()) return NULL;
    if (start < 0 || stop > PyList_GET_SIZE(outputs) || start > stop) {
        PyErr_SetString(PyExc_IndexError, "start and stop must be within the outputs");
        return NULL;
    }
    Py_ssize_t i = start;
    for (; i < stop; i++) {
        PyObject *output = PyList_GET_ITEM(outputs, i);
        if (!PyTuple_Check(output) || PyTuple_GET_SIZE(output) != 4) break;
        PyObject *topic = PyTuple_GET_ITEM(output, 0), *value = PyTuple_GET_ITEM(output, 1);
        PyObject *key = PyTuple_GET_ITEM(output, 2), *partition = PyTuple_GET_ITEM(output, 3);
        if (!PyUnicode_Check(topic) || !PyBytes_Check(value) || !PyLong_Check(partition) ||
            (key != Py_None && !PyBytes_Check(key)))
            break;
        const char *topic_name = PyUnicode_AsUTF8(topic);
        long p = topic_name == NULL ? -2 : PyLong_AsLong(partition);
        if (PyErr_Occurred()) { /* the caller's produce() reports it */
            PyErr_Clear();
            break;
        }
        if (p < -1 || p > INT32_MAX) break;
        const void *key_data = NULL;
        size_t key_len = 0;
        if (key != Py_None) {
            key_data = PyBytes_AS_STRING(key);
            key_len = (size_t)PyBytes_GET_SIZE(key);
        }
        rd_kafka_resp_err_t err = producev(
            rk, RD_KAFKA_V_TOPIC(topic_name), RD_KAFKA_V_PARTITION((int32_t)p),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(PyBytes_AS_STRING(value), (size_t)PyBytes_GET_SIZE(value)),
            RD_KAFKA_V_KEY(key_data, key_len), RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) break; /* the caller's produce() reports it */
    }
    return PyLong_FromSsize_t(i);
}

static PyMethodDef methods[] = {
    {"bind", bind_producer, METH_VARARGS,
     "bind(cimpl_path, producer_type): take librdkafka's produce call from confluent-kafka's "
     "module"},
    {"produce", (PyCFunction)(void (*)(void))produce, METH_FASTCALL,
     "produce(producer, outputs, start, stop) -> the index of the first record not produced"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "tradex.infra._native_produce",
    "A batch of records to a confluent-kafka Producer's librdkafka in one call.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native_produce(void) { return PyModule_Create(&module_def); }
