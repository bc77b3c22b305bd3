/*
 * snapbundle's shim over zstd's streaming API, compiled with zstd's own C
 * library into dist/wasm/zstd.wasm by scripts/build-wasm.mjs.
 *
 * JavaScript owns two buffers in the module's memory (input and output) and
 * calls one step at a time; a step's positions are read back with
 * sb_in_pos / sb_out_pos. Nothing here does I/O: the module imports nothing.
 */

#define ZSTD_STATIC_LINKING_ONLY
#include <stdlib.h>
#include "zstd.h"
#include "zstd_errors.h"
#include "decompress/zstd_decompress_internal.h" /* ZSTD_DCtx's fParams */

#define EXPORT(name) __attribute__((export_name(#name)))

typedef struct {
  ZSTD_CCtx *c;
  ZSTD_DCtx *d;
  ZSTD_inBuffer in;
  ZSTD_outBuffer out;
} sb_stream;

EXPORT(sb_malloc) void *sb_malloc(size_t n) { return malloc(n); }
EXPORT(sb_free) void sb_free(void *p) { free(p); }

/* A compressor writing one frame with a content checksum at `level`; 0 on failure. */
EXPORT(sb_cstream_new) sb_stream *sb_cstream_new(int level) {
  sb_stream *s = calloc(1, sizeof(sb_stream));
  if (s == NULL) return NULL;
  s->c = ZSTD_createCCtx();
  if (s->c == NULL || ZSTD_isError(ZSTD_CCtx_setParameter(s->c, ZSTD_c_compressionLevel, level)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(s->c, ZSTD_c_checksumFlag, 1))) {
    ZSTD_freeCCtx(s->c);
    free(s);
    return NULL;
  }
  return s;
}

/*
 * The decoder's allocator. malloc (dlmalloc over sbrk) never asks for 2 GiB
 * or more at once, since sbrk's increment is signed; a `zstd --long=31`
 * frame's window buffer is 2 GiB and a little more. Such a request is served
 * by growing the memory itself, once: the region is kept for reuse by a later
 * request that fits (a following frame) and never given back to malloc; the
 * module's memory goes with its instance when the stream ends.
 */
#define SB_PAGE 65536u
static void *sb_big = NULL;
static size_t sb_big_size = 0;
static int sb_big_used = 0;

static void *sb_dalloc(void *opaque, size_t n) {
  (void)opaque;
  void *p = malloc(n);
  if (p != NULL || n < ((size_t)1 << 30)) return p;
  if (sb_big != NULL) {
    if (sb_big_used || n > sb_big_size) return NULL;
    sb_big_used = 1;
    return sb_big;
  }
  size_t pages = n / SB_PAGE + (n % SB_PAGE != 0);
  size_t old = __builtin_wasm_memory_grow(0, pages);
  if (old == (size_t)-1) return NULL;
  sb_big = (void *)(old * SB_PAGE);
  sb_big_size = pages * SB_PAGE;
  sb_big_used = 1;
  return sb_big;
}

static void sb_dfree(void *opaque, void *p) {
  (void)opaque;
  if (p != NULL && p == sb_big) sb_big_used = 0;
  else free(p);
}

static const ZSTD_customMem sb_dmem = {sb_dalloc, sb_dfree, NULL};

/* A decompressor refusing frames whose window exceeds `max_window` bytes; 0 on failure. */
EXPORT(sb_dstream_new) sb_stream *sb_dstream_new(size_t max_window) {
  sb_stream *s = calloc(1, sizeof(sb_stream));
  if (s == NULL) return NULL;
  s->d = ZSTD_createDCtx_advanced(sb_dmem);
  if (s->d == NULL || ZSTD_isError(ZSTD_DCtx_setMaxWindowSize(s->d, max_window))) {
    ZSTD_freeDCtx(s->d);
    free(s);
    return NULL;
  }
  return s;
}

EXPORT(sb_stream_free) void sb_stream_free(sb_stream *s) {
  if (s == NULL) return;
  ZSTD_freeCCtx(s->c);
  ZSTD_freeDCtx(s->d);
  free(s);
}

static void sb_set(sb_stream *s, const void *src, size_t src_size, size_t src_pos, void *dst, size_t dst_cap,
                   size_t dst_pos) {
  s->in.src = src;
  s->in.size = src_size;
  s->in.pos = src_pos;
  s->out.dst = dst;
  s->out.size = dst_cap;
  s->out.pos = dst_pos;
}

/* One ZSTD_compressStream2 call; `end` is a ZSTD_EndDirective (0 continue, 2 end). */
EXPORT(sb_compress) size_t sb_compress(sb_stream *s, const void *src, size_t src_size, size_t src_pos, void *dst,
                                       size_t dst_cap, size_t dst_pos, int end) {
  sb_set(s, src, src_size, src_pos, dst, dst_cap, dst_pos);
  return ZSTD_compressStream2(s->c, &s->out, &s->in, (ZSTD_EndDirective)end);
}

/* One ZSTD_decompressStream call: 0 when a frame was completely decoded and flushed. */
EXPORT(sb_decompress) size_t sb_decompress(sb_stream *s, const void *src, size_t src_size, size_t src_pos,
                                           void *dst, size_t dst_cap, size_t dst_pos) {
  sb_set(s, src, src_size, src_pos, dst, dst_cap, dst_pos);
  return ZSTD_decompressStream(s->d, &s->out, &s->in);
}

EXPORT(sb_in_pos) size_t sb_in_pos(const sb_stream *s) { return s->in.pos; }
EXPORT(sb_out_pos) size_t sb_out_pos(const sb_stream *s) { return s->out.pos; }

/* 0 for a success code, else the ZSTD_ErrorCode. */
EXPORT(sb_error_code) int sb_error_code(size_t code) { return ZSTD_isError(code) ? (int)ZSTD_getErrorCode(code) : 0; }
EXPORT(sb_error_name) const char *sb_error_name(size_t code) { return ZSTD_getErrorName(code); }

/* The window the decoder's current (or just refused) frame header declares, in bytes, as a double. */
EXPORT(sb_frame_window) double sb_frame_window(const sb_stream *s) { return (double)s->d->fParams.windowSize; }

/*
 * Compressed bytes of the current frame the decoder has taken in (header,
 * blocks, checksum), as a double: after a checksum error, the frame's size.
 */
EXPORT(sb_frame_consumed) double sb_frame_consumed(const sb_stream *s) { return (double)s->d->processedCSize; }

/* ZSTD_findFrameCompressedSize of the frame at `src` (the decoder's single-pass path keeps no count). */
EXPORT(sb_find_frame_size) size_t sb_find_frame_size(const void *src, size_t size) {
  return ZSTD_findFrameCompressedSize(src, size);
}

EXPORT(sb_version) unsigned sb_version(void) { return ZSTD_versionNumber(); }
EXPORT(sb_max_clevel) int sb_max_clevel(void) { return ZSTD_maxCLevel(); }

/*
 * 1 when the `n` bytes at `p` are all zero, else 0. A decoder's output is
 * mostly zeros for a dense disk image; JavaScript then hands out one shared
 * zero view instead of copying (and later collecting) a buffer per chunk.
 * Reads 4 KiB at a time, OR-ing 64-bit words (vectorised with -msimd128),
 * and stops at the first block holding a non-zero byte.
 */
EXPORT(sb_all_zero) int sb_all_zero(const unsigned char *p, size_t n) {
  size_t i = 0;
  for (; i + 4096 <= n; i += 4096) {
    const unsigned long long *w = (const unsigned long long *)(p + i);
    unsigned long long acc = 0;
    for (int k = 0; k < 512; k++) acc |= w[k];
    if (acc != 0) return 0;
  }
  for (; i < n; i++)
    if (p[i] != 0) return 0;
  return 1;
}
