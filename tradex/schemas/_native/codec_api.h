/* The C codec's API for other extensions (tradex/schemas/_native/native_codec.c).
 *
 * A stage that encodes or decodes many records of a few known types in one C call (the
 * matcher: tradex/matching/_native/matcher_wire.c) takes these functions from the capsule
 * ``tradex.schemas._native_codec._C_API`` instead of building a Python object per field.
 * They run the same Programs as ``encode_domain`` / ``decode_domain`` (built by
 * tradex/schemas/compile_native.py from the schemas), so the bytes are the same.
 *
 * Values travel as cells, one per field of the domain NamedTuple (encode: the row and the
 * EnvelopeFields in their field order; scan: the envelope and the payload in their field
 * order):
 *   o != NULL   a Python object, encoded exactly as encode_domain encodes it (a str for a
 *               string or an enum symbol, None for a null branch ...);
 *   else        long / int / boolean: ``i``; string / bytes / fixed: the ``n`` raw bytes at
 *               ``s`` (a string's UTF-8); enum (encode): its symbol's UTF-8 at ``s``, enum
 *               (scan): its index in ``i``.
 */
#ifndef TRADEX_CODEC_API_H
#define TRADEX_CODEC_API_H

#include <Python.h>
#include <stdint.h>

#define TX_CODEC_API_CAPSULE "tradex.schemas._native_codec._C_API"
#define TX_CODEC_API_VERSION 1
#define TX_HASH_SIZE 32

typedef struct {
    int64_t i;
    PyObject *o; /* borrowed */
    const char *s;
    Py_ssize_t n;
} TxCell;

/* scan_cells results */
#define TX_SCAN_OK 0
#define TX_SCAN_FALLBACK 1 /* malformed, or a feature scan leaves to the Python path */

typedef struct {
    int version;
    /* One record of an encoder ``program`` (a Program built by Program.encoder): ``row``
     * (row_n cells = the domain type's fields), ``env`` (env_n cells = EnvelopeFields),
     * ``prev_hash`` (32 bytes). Returns new wire bytes (header | body | hash) and writes
     * the hash to ``digest`` (32 bytes); NULL with an exception set on error. */
    PyObject *(*encode_cells)(PyObject *program, const TxCell *row, Py_ssize_t row_n,
                              const TxCell *env, Py_ssize_t env_n,
                              const unsigned char *prev_hash, unsigned char *digest);
    /* The fields of wire bytes ``data`` (header included, not checked) read by a decoder
     * ``program`` (Program.decoder): envelope field k into env[k] (env_n cells), payload
     * field k into row[k] (row_n cells); strings point into ``data``. TX_SCAN_OK when the
     * record is well formed to its last byte with ASCII strings only; TX_SCAN_FALLBACK
     * for anything else (corrupt, trailing bytes, non-ASCII text, nested rows, arrays):
     * the caller decodes that record the ordinary way. -1 with an exception: a bad call. */
    int (*scan_cells)(PyObject *program, const unsigned char *data, Py_ssize_t n, TxCell *env,
                      Py_ssize_t env_n, TxCell *row, Py_ssize_t row_n);
} TxCodecApi;

#endif
