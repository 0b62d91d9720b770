/* The chain hash SHA-256(prev_hash || body), shared by the codec, the account kernel and
 * the audit: OpenSSL's SHA-256 when built with it (setup.py: when its headers are there;
 * it uses the CPU's SHA instructions, ~4x the portable code), else sha256.h. */
#ifndef TRADEX_CHAIN_HASH_H
#define TRADEX_CHAIN_HASH_H

#include <stddef.h>

#define CHAIN_HASH_SIZE 32

#ifdef TRADEX_OPENSSL
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co: the fastest one-shot path */
#include <openssl/sha.h>
#define SHA256_BACKEND "openssl"
static void chain_hash(const unsigned char *prev, const unsigned char *body, size_t size,
                       unsigned char *out) {
    SHA256_CTX sha;
    SHA256_Init(&sha);
    SHA256_Update(&sha, prev, CHAIN_HASH_SIZE);
    SHA256_Update(&sha, body, size);
    SHA256_Final(out, &sha);
}
#else
#include "sha256.h"
#define SHA256_BACKEND "portable"
static void chain_hash(const unsigned char *prev, const unsigned char *body, size_t size,
                       unsigned char *out) {
    sha256_ctx sha;
    sha256_init(&sha);
    sha256_update(&sha, prev, CHAIN_HASH_SIZE);
    sha256_update(&sha, body, size);
    sha256_final(&sha, out);
}
#endif

#endif
