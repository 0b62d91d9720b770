/* The small pieces of the wire every TradeX C extension needs, written once:
 *
 * - Avro's long: a zig-zag varint of at most ten bytes (the codec's get/put, the columnar
 *   decoder, the account kernel's reader and writer, the audit's envelope scan);
 * - an int64 in ASCII decimal, as Python's str(int) writes it (record keys, command ids);
 * - Kafka's murmur2 partitioner hash (tradex/infra/partitioner.py), to route a key.
 *
 * Header-only and static inline: each extension is its own shared object, and these sit on
 * hot paths where a call across objects would cost more than the code.
 */
#ifndef TRADEX_WIRE_PRIMS_H
#define TRADEX_WIRE_PRIMS_H

#include <Python.h>
#include <stdint.h>

#define TX_VARINT_BYTES_MAX 10 /* a 64-bit zig-zag varint */
#define TX_DECIMAL_MAX 20      /* chars of an int64 in decimal, sign included (no NUL) */

enum { TX_LONG_OK = 0, TX_LONG_TRUNCATED = -1, TX_LONG_OVERLONG = -2 };

static inline int64_t tx_unzigzag(uint64_t z) { return (int64_t)(z >> 1) ^ -(int64_t)(z & 1); }

static inline uint64_t tx_zigzag(int64_t x) { return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63); }

/* The Avro long at d[*p] (d holds n bytes) into *out, *p moved past it: TX_LONG_OK; else
 * TX_LONG_TRUNCATED (the data ends inside it) or TX_LONG_OVERLONG (more than ten bytes, or
 * beyond 64 bits), *p then unspecified. What fastavro and the Python codec accept. */
static inline int tx_get_long(const uint8_t *d, Py_ssize_t n, Py_ssize_t *p, int64_t *out) {
    uint64_t z = 0;
    Py_ssize_t at = *p;
    if (n - at >= TX_VARINT_BYTES_MAX) { /* room for the longest: no bounds check per byte */
        const uint8_t *q = d + at;
        for (int i = 0; i < TX_VARINT_BYTES_MAX - 1; i++) {
            z |= (uint64_t)(q[i] & 0x7F) << (7 * i);
            if (q[i] < 0x80) {
                *p = at + i + 1;
                *out = tx_unzigzag(z);
                return TX_LONG_OK;
            }
        }
        if (q[TX_VARINT_BYTES_MAX - 1] > 1) return TX_LONG_OVERLONG;
        *p = at + TX_VARINT_BYTES_MAX;
        *out = tx_unzigzag(z | (uint64_t)q[TX_VARINT_BYTES_MAX - 1] << 63);
        return TX_LONG_OK;
    }
    for (int i = 0; i < TX_VARINT_BYTES_MAX; i++) {
        if (at >= n) return TX_LONG_TRUNCATED;
        uint8_t byte = d[at++];
        if (i == TX_VARINT_BYTES_MAX - 1 && byte > 1) return TX_LONG_OVERLONG;
        z |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (byte < 0x80) {
            *p = at;
            *out = tx_unzigzag(z);
            return TX_LONG_OK;
        }
    }
    return TX_LONG_OVERLONG; /* not reached: the tenth byte either ends or is overlong */
}

/* The varint of ``z`` (already zig-zagged) into ``out`` (TX_VARINT_BYTES_MAX bytes of room):
 * its length. */
static inline int tx_put_varint(unsigned char *out, uint64_t z) {
    int n = 0;
    while (z > 0x7F) {
        out[n++] = (unsigned char)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    out[n++] = (unsigned char)z;
    return n;
}

/* ``v`` in decimal, as Python's str(int) writes it, into ``out`` (TX_DECIMAL_MAX bytes of
 * room; no NUL written): its length. */
static inline int tx_decimal(char *out, int64_t v) {
    char digits[TX_DECIMAL_MAX];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int n = 0;
    do { /* at most 19 digits */
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    int length = 0;
    if (v < 0) out[length++] = '-';
    while (n > 0) out[length++] = digits[--n];
    return length;
}

/* Kafka's murmur2 of ``data`` (tradex/infra/partitioner.py; the partition of a key is
 * (murmur2(key) & 0x7FFFFFFF) % partitions). */
static inline uint32_t tx_murmur2(const unsigned char *data, Py_ssize_t length) {
    const uint32_t m = 0x5BD1E995u;
    uint32_t h = 0x9747B28Cu ^ (uint32_t)length;
    Py_ssize_t full = length - (length % 4);
    for (Py_ssize_t i = 0; i < full; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
                     (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length % 4) {
    case 3:
        h ^= (uint32_t)data[full + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[full + 1] << 8;
        /* fall through */
    case 1:
        h ^= data[full];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

#endif
