/*
 * snapbundle's shim over zstd's streaming decoder and its job compressor, compiled with zstd's own C
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
  ZSTD_DCtx *d;
  ZSTD_inBuffer in;
  ZSTD_outBuffer out;
} sb_stream;

EXPORT(sb_malloc) void *sb_malloc(size_t n) { return malloc(n); }
EXPORT(sb_free) void sb_free(void *p) { free(p); }

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

/*
 * Parallel compression of one frame, the way zstd's multithreaded mode cuts
 * it (lib/compress/zstdmt_compress.c): the input is cut into jobs of a size
 * that follows from the level's window (not from the number of threads), and
 * each job is compressed on its own context, seeded with the last bytes of
 * the job before it as raw content it may refer back to. A job's blocks are
 * then simply the next blocks of the frame. Job 0 writes the frame header;
 * a later job's context writes a header too, which is dropped, and forgets
 * the repeat offsets its prefix left, since the decoder arrives with those of
 * the previous job's last block instead. The frame's XXH64 covers all input
 * in order and is computed by the caller (sb_xxh64_*), except for a frame of
 * a single job, whose context computes and writes it itself.
 *
 * One sb_mt per thread that compresses jobs; each job is sb_mt_begin, then
 * sb_mt_chunk over consecutive pieces of the job laid out right after its
 * prefix in memory (prefix and job contiguous, so the window never splits).
 */
#include "compress/zstd_compress_internal.h"
#include "common/xxhash.h"

typedef struct {
  ZSTD_CCtx *c;
  ZSTD_CCtx_params params; /* resolved as ZSTD_compressStream2 resolves them for an input of unknown size */
} sb_mt;

/* A level's parameters for an input of unknown size (a stream's). */
static ZSTD_compressionParameters sb_mt_cparams(int level) { return ZSTD_getCParams(level, ZSTD_CONTENTSIZE_UNKNOWN, 0); }

/* The job size zstdmt picks at `level` when none is set: four windows, at least 1 MiB. */
EXPORT(sb_mt_job_size) size_t sb_mt_job_size(int level) {
  unsigned log = sb_mt_cparams(level).windowLog + 2;
  if (log < 20) log = 20;
  if (log > 29) log = 29;
  return (size_t)1 << log;
}

/* The prefix zstdmt carries from job to job at `level`: a fraction of the window set by the strategy. */
EXPORT(sb_mt_overlap) size_t sb_mt_overlap(int level) {
  ZSTD_compressionParameters cp = sb_mt_cparams(level);
  int fraction_log;
  switch (cp.strategy) {
    case ZSTD_btultra2: fraction_log = 0; break; /* the whole window */
    case ZSTD_btultra:
    case ZSTD_btopt: fraction_log = 1; break;
    case ZSTD_btlazy2:
    case ZSTD_lazy2: fraction_log = 2; break;
    default: fraction_log = 3; break; /* fast, dfast, greedy, lazy: an eighth */
  }
  return (size_t)1 << (cp.windowLog - fraction_log);
}

/* A job compressor at `level`; 0 on failure. */
EXPORT(sb_mt_new) sb_mt *sb_mt_new(int level) {
  sb_mt *m = calloc(1, sizeof(sb_mt));
  if (m == NULL) return NULL;
  /*
   * Let zstd resolve every parameter the level implies (block splitter,
   * row match finder, ...) by starting a stream of unknown size on a
   * scratch context, and keep what it applied.
   */
  ZSTD_CCtx *scratch = ZSTD_createCCtx();
  int ok = scratch != NULL && !ZSTD_isError(ZSTD_CCtx_setParameter(scratch, ZSTD_c_compressionLevel, level)) &&
           !ZSTD_isError(ZSTD_CCtx_setParameter(scratch, ZSTD_c_checksumFlag, 1));
  if (ok) {
    char none = 0;
    ZSTD_outBuffer out = {&none, 0, 0};
    ZSTD_inBuffer in = {&none, 0, 0};
    ok = !ZSTD_isError(ZSTD_compressStream2(scratch, &out, &in, ZSTD_e_continue));
  }
  if (ok) m->params = scratch->appliedParams;
  ZSTD_freeCCtx(scratch);
  m->c = ok ? ZSTD_createCCtx() : NULL;
  if (m->c == NULL) {
    free(m);
    return NULL;
  }
  m->params.nbWorkers = 0;
  return m;
}

EXPORT(sb_mt_free) void sb_mt_free(sb_mt *m) {
  if (m == NULL) return;
  ZSTD_freeCCtx(m->c);
  free(m);
}

/* The largest output of sb_mt_chunk for `n` bytes of input (a header included). */
EXPORT(sb_mt_bound) size_t sb_mt_bound(size_t n) { return ZSTD_compressBound(n) + ZSTD_FRAMEHEADERSIZE_MAX; }

/*
 * Start a job of `src_size` bytes whose `prefix_size` bytes of prefix lie
 * just before it at `prefix`. For job 0 (`first`), nothing is written yet;
 * for a later one the context's frame header is written to `scratch` (at
 * least ZSTD_FRAMEHEADERSIZE_MAX bytes) and dropped. 0, or an error code.
 */
EXPORT(sb_mt_begin) size_t sb_mt_begin(sb_mt *m, const void *prefix, size_t prefix_size, size_t src_size, int first,
                                       void *scratch, size_t scratch_cap) {
  ZSTD_CCtx_params p = m->params;
  if (!first) p.fParams.checksumFlag = 0; /* the frame's checksum is the caller's */
  size_t err = ZSTD_CCtxParams_setParameter(&p, ZSTD_c_forceMaxWindow, !first);
  if (!first && !ZSTD_isError(err)) err = ZSTD_CCtxParams_setParameter(&p, ZSTD_c_deterministicRefPrefix, 0);
  if (ZSTD_isError(err)) return err;
  err = ZSTD_compressBegin_advanced_internal(m->c, prefix, prefix_size, ZSTD_dct_rawContent, ZSTD_dtlm_fast, NULL, &p,
                                             first ? ZSTD_CONTENTSIZE_UNKNOWN : (unsigned long long)src_size);
  if (ZSTD_isError(err) || first) return err;
  err = ZSTD_compressContinue_public(m->c, scratch, scratch_cap, (const char *)prefix + prefix_size, 0);
  if (ZSTD_isError(err)) return err;
  ZSTD_invalidateRepCodes(m->c);
  return 0;
}

/*
 * Compress the job's next `n` bytes at `src` into `dst`; `end` closes the
 * frame (the job is the last). Returns the bytes written, or an error code.
 */
EXPORT(sb_mt_chunk) size_t sb_mt_chunk(sb_mt *m, void *dst, size_t cap, const void *src, size_t n, int end) {
  return end ? ZSTD_compressEnd_public(m->c, dst, cap, src, n) : ZSTD_compressContinue_public(m->c, dst, cap, src, n);
}

/* The frame's last block when its last job has no input: an empty block marked last. */
EXPORT(sb_mt_last_empty_block) size_t sb_mt_last_empty_block(void *dst, size_t cap) { return ZSTD_writeLastEmptyBlock(dst, cap); }

/* XXH64 over a stream, seed 0, as a zstd frame's content checksum (its low 32 bits). */
EXPORT(sb_xxh64_new) XXH64_state_t *sb_xxh64_new(void) {
  XXH64_state_t *s = malloc(sizeof(XXH64_state_t));
  if (s != NULL) XXH64_reset(s, 0);
  return s;
}
EXPORT(sb_xxh64_update) void sb_xxh64_update(XXH64_state_t *s, const void *p, size_t n) { XXH64_update(s, p, n); }
EXPORT(sb_xxh64_low32) unsigned sb_xxh64_low32(const XXH64_state_t *s) { return (unsigned)XXH64_digest(s); }
