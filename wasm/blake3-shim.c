/*
 * snapbundle's shim over the official BLAKE3 C library, compiled with it into
 * dist/wasm/blake3.wasm by scripts/build-wasm.mjs.
 *
 * JavaScript owns buffers in the module's memory (b3_malloc) and calls:
 * - a streaming hasher: b3_new / b3_update / b3_final / b3_reset / b3_free;
 * - b3_prefixed_many: many hashes in one call, each BLAKE3(prefix ‖ piece)
 *   over consecutive `unit`-byte pieces of one buffer (the last piece
 *   zero-filled to `unit`), written as consecutive 32-byte digests. With a
 *   Merkle tree's leaf domain and 64 KiB it hashes a batch of leaves; with its
 *   parent domain and 64 it hashes a level of parents from their children.
 * Nothing here does I/O: the module imports nothing.
 */

#include <stdlib.h>
#include <string.h>

#include "blake3.h"

#define EXPORT(name) __attribute__((export_name(#name)))

EXPORT(b3_malloc) void *b3_malloc(size_t n) { return malloc(n); }
EXPORT(b3_free) void b3_free(void *p) { free(p); }

EXPORT(b3_new) blake3_hasher *b3_new(void) {
  blake3_hasher *h = malloc(sizeof(blake3_hasher));
  if (h != NULL) blake3_hasher_init(h);
  return h;
}
EXPORT(b3_reset) void b3_reset(blake3_hasher *h) { blake3_hasher_init(h); }
EXPORT(b3_update) void b3_update(blake3_hasher *h, const uint8_t *data, size_t len) { blake3_hasher_update(h, data, len); }
EXPORT(b3_final) void b3_final(const blake3_hasher *h, uint8_t *out) { blake3_hasher_finalize(h, out, BLAKE3_OUT_LEN); }

static const uint8_t zeros[1024];

/*
 * BLAKE3(prefix ‖ piece) of each `unit`-byte piece of data[0, len), the last
 * piece zero-filled to `unit`, into out[32 * i]. Returns the number of pieces.
 */
EXPORT(b3_prefixed_many)
size_t b3_prefixed_many(const uint8_t *prefix, size_t prefix_len, const uint8_t *data, size_t len, size_t unit,
                        uint8_t *out) {
  if (unit == 0) return 0;
  blake3_hasher h;
  size_t n = 0;
  for (size_t at = 0; at < len; at += unit, n++) {
    size_t take = len - at < unit ? len - at : unit;
    blake3_hasher_init(&h);
    blake3_hasher_update(&h, prefix, prefix_len);
    blake3_hasher_update(&h, data + at, take);
    for (size_t pad = unit - take; pad > 0;) {
      size_t z = pad < sizeof zeros ? pad : sizeof zeros;
      blake3_hasher_update(&h, zeros, z);
      pad -= z;
    }
    blake3_hasher_finalize(&h, out + BLAKE3_OUT_LEN * n, BLAKE3_OUT_LEN);
  }
  return n;
}
