/*
 * BLAKE3's hash_many for WebAssembly SIMD (simd128), four inputs at a time.
 *
 * The official C sources have SIMD paths for x86 and Arm NEON only. This file
 * is snapbundle's own: one v128 holds the same state word of four inputs
 * (lane i = input i), so the compression function runs unchanged on whole
 * vectors. Each 64-byte block of the four inputs is loaded as four rows per
 * input and transposed so that vector w holds message word w of every input.
 * scripts/build-wasm.mjs routes blake3_dispatch.c's blake3_hash_many here when
 * compiling with -msimd128; fewer than four inputs left go to the portable code.
 */

#include <wasm_simd128.h>

#include "blake3_impl.h"

#define LANES 4

static inline v128_t add(v128_t a, v128_t b) { return wasm_i32x4_add(a, b); }
static inline v128_t xor(v128_t a, v128_t b) { return wasm_v128_xor(a, b); }

/* Rotations right: by 16 and by 8 move whole bytes of each 32-bit lane. */
static inline v128_t ror16(v128_t x) {
  return wasm_i8x16_shuffle(x, x, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
}
static inline v128_t ror8(v128_t x) {
  return wasm_i8x16_shuffle(x, x, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
}
static inline v128_t ror12(v128_t x) { return wasm_v128_or(wasm_u32x4_shr(x, 12), wasm_i32x4_shl(x, 20)); }
static inline v128_t ror7(v128_t x) { return wasm_v128_or(wasm_u32x4_shr(x, 7), wasm_i32x4_shl(x, 25)); }

/* The quarter-round on state words a, b, c, d with message words x, y. */
#define G(v, a, b, c, d, x, y)        \
  do {                                \
    v[a] = add(add(v[a], v[b]), (x)); \
    v[d] = ror16(xor(v[d], v[a]));    \
    v[c] = add(v[c], v[d]);           \
    v[b] = ror12(xor(v[b], v[c]));    \
    v[a] = add(add(v[a], v[b]), (y)); \
    v[d] = ror8(xor(v[d], v[a]));     \
    v[c] = add(v[c], v[d]);           \
    v[b] = ror7(xor(v[b], v[c]));     \
  } while (0)

static inline void one_round(v128_t v[16], const v128_t m[16], const uint8_t s[16]) {
  /* columns */
  G(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
  G(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
  G(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
  G(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
  /* diagonals */
  G(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
  G(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
  G(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
  G(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
}

/* Rows r[0..3] (four words each) become columns: r[j] lane i = old r[i] lane j. */
static inline void transpose(v128_t r[4]) {
  v128_t lo01 = wasm_i32x4_shuffle(r[0], r[1], 0, 4, 1, 5);
  v128_t hi01 = wasm_i32x4_shuffle(r[0], r[1], 2, 6, 3, 7);
  v128_t lo23 = wasm_i32x4_shuffle(r[2], r[3], 0, 4, 1, 5);
  v128_t hi23 = wasm_i32x4_shuffle(r[2], r[3], 2, 6, 3, 7);
  r[0] = wasm_i32x4_shuffle(lo01, lo23, 0, 1, 4, 5);
  r[1] = wasm_i32x4_shuffle(lo01, lo23, 2, 3, 6, 7);
  r[2] = wasm_i32x4_shuffle(hi01, hi23, 0, 1, 4, 5);
  r[3] = wasm_i32x4_shuffle(hi01, hi23, 2, 3, 6, 7);
}

/* Message word w of block `at` of each of the four inputs, in m[w]. */
static inline void load_message(const uint8_t *const *in, size_t at, v128_t m[16]) {
  for (int quarter = 0; quarter < 4; quarter++) {
    v128_t *q = &m[quarter * 4];
    for (int i = 0; i < LANES; i++) q[i] = wasm_v128_load(in[i] + at + quarter * 16);
    transpose(q);
  }
}

/* The four inputs' counters: low and high halves, each input's own when `step`. */
static inline void counters(uint64_t counter, bool step, v128_t *lo, v128_t *hi) {
  uint64_t c[LANES];
  for (int i = 0; i < LANES; i++) c[i] = counter + (step ? (uint64_t)i : 0);
  *lo = wasm_i32x4_make((uint32_t)c[0], (uint32_t)c[1], (uint32_t)c[2], (uint32_t)c[3]);
  *hi = wasm_i32x4_make((uint32_t)(c[0] >> 32), (uint32_t)(c[1] >> 32), (uint32_t)(c[2] >> 32), (uint32_t)(c[3] >> 32));
}

/* Four inputs of `blocks` blocks each, chained; 32 bytes of output per input. */
static void hash4(const uint8_t *const *in, size_t blocks, const uint32_t key[8], uint64_t counter, bool step,
                  uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out) {
  v128_t h[8];
  for (int i = 0; i < 8; i++) h[i] = wasm_i32x4_splat(key[i]);
  v128_t ctr_lo, ctr_hi;
  counters(counter, step, &ctr_lo, &ctr_hi);
  const v128_t len = wasm_i32x4_splat(BLAKE3_BLOCK_LEN);
  for (size_t b = 0; b < blocks; b++) {
    uint8_t f = flags;
    if (b == 0) f |= flags_start;
    if (b + 1 == blocks) f |= flags_end;
    v128_t m[16];
    load_message(in, b * BLAKE3_BLOCK_LEN, m);
    v128_t v[16] = {
        h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
        wasm_i32x4_splat(IV[0]), wasm_i32x4_splat(IV[1]), wasm_i32x4_splat(IV[2]), wasm_i32x4_splat(IV[3]),
        ctr_lo, ctr_hi, len, wasm_i32x4_splat(f),
    };
    for (int r = 0; r < 7; r++) one_round(v, m, MSG_SCHEDULE[r]);
    for (int i = 0; i < 8; i++) h[i] = xor(v[i], v[i + 8]);
  }
  /* h[w] lane i is word w of input i's chaining value: transpose back to rows. */
  v128_t lo[4] = {h[0], h[1], h[2], h[3]};
  v128_t hi[4] = {h[4], h[5], h[6], h[7]};
  transpose(lo);
  transpose(hi);
  for (int i = 0; i < LANES; i++) {
    wasm_v128_store(out + i * BLAKE3_OUT_LEN, lo[i]);
    wasm_v128_store(out + i * BLAKE3_OUT_LEN + 16, hi[i]);
  }
}

void blake3_hash_many_simd128(const uint8_t *const *inputs, size_t num_inputs, size_t blocks, const uint32_t key[8],
                              uint64_t counter, bool increment_counter, uint8_t flags, uint8_t flags_start,
                              uint8_t flags_end, uint8_t *out) {
  while (num_inputs >= LANES) {
    hash4(inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end, out);
    if (increment_counter) counter += LANES;
    inputs += LANES;
    num_inputs -= LANES;
    out += LANES * BLAKE3_OUT_LEN;
  }
  if (num_inputs > 0) {
    blake3_hash_many_portable(inputs, num_inputs, blocks, key, counter, increment_counter, flags, flags_start,
                              flags_end, out);
  }
}
