// Does the AMX Q8_0 tile's work overlap its scaling? A C model of the Rust schedule
// (shared/kernels/src/x86/amx.rs: one call = one tile of 16 activation rows x one group of 16
// weight rows over all blocks; activations tile-major, 512 bytes per block, reused across the
// groups; weights streamed), 512 rows, one thread. Variants:
//   0  as the Rust form: two blocks through the tiles (tdpbssd, tilestored), then both scaled
//      in f32 as the other forms do (a += float(sum) * (d_w * d_x));
//   1  the tiles alone (no scaling);          2  the scaling alone (no tiles);
//   3  software-pipelined: the next two blocks through the tiles before this pair is scaled;
//   4  two weight groups per call sharing each activation tile;
//   5  as 0, but with one activation scale per row instead of per block (not Q8_0's numbers):
//      a += float(sum) * d_w per block, times d_x once at the end.
// docs/benchmarks.md, "Quantizing into the tiles' order; where the AMX form's time goes".
// Run (Linux, a CPU with AMX-INT8):
//   gcc -O3 -march=sapphirerapids amx_overlap.c -o /tmp/amx_overlap
//   for v in 0 1 2 3 4 5; do for s in "768 3072" "3072 768" "768 768"; do /tmp/amx_overlap $s 512 $v; done; done
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
struct cfg { uint8_t palette, start; uint8_t reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } __attribute__((packed));
static int32_t sums[4][256] __attribute__((aligned(64)));
static int V;
static inline void scale_row_scaled(__m512 acc[16], const int32_t *s, const float *dw) {
  __m512 d = _mm512_loadu_ps(dw);
  for (int r = 0; r < 16; r++) acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(s + r * 16)), d, acc[r]);
}
static inline void scale(__m512 acc[16], const int32_t *s, const float *dw, const float *dx) {
  __m512 d = _mm512_loadu_ps(dw);
  for (int r = 0; r < 16; r++)
    acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(s + r * 16)),
                                                 _mm512_mul_ps(d, _mm512_set1_ps(dx[r]))));
}
// Blocks b and b + 1 through tiles 0 and 1 (A: tile 2, B: tile 3, as in Rust), sums to `to`.
static inline void pair(const int8_t *x, const int8_t *w, int b, int32_t (*to)[256]) {
  _tile_zero(0); _tile_loadd(2, x + b * 512, 32); _tile_loadd(3, w + b * 512, 64); _tile_dpbssd(0, 2, 3);
  _tile_zero(1); _tile_loadd(2, x + (b + 1) * 512, 32); _tile_loadd(3, w + (b + 1) * 512, 64); _tile_dpbssd(1, 2, 3);
  _tile_stored(0, to[0], 64); _tile_stored(1, to[1], 64);
}
__attribute__((noinline)) void call(const int8_t *x, const float *xd, const int8_t *w, const float *ws, int kb, float *out, int n) {
  __m512 acc[16];
  for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
  if (V == 5) {
    for (int b = 0; b < kb; b += 2) {
      pair(x, w, b, sums);
      scale_row_scaled(acc, sums[0], ws + b * 16);
      scale_row_scaled(acc, sums[1], ws + (b + 1) * 16);
    }
    for (int r = 0; r < 16; r++) acc[r] = _mm512_mul_ps(acc[r], _mm512_set1_ps(xd[r]));
  } else if (V <= 2) {
    for (int b = 0; b < kb; b += 2) {
      if (V != 2) pair(x, w, b, sums);
      if (V != 1) { scale(acc, sums[0], ws + b * 16, xd + b * 16); scale(acc, sums[1], ws + (b + 1) * 16, xd + (b + 1) * 16); }
    }
  } else {
    int p = 0;
    pair(x, w, 0, sums);
    for (int b = 0; b < kb; b += 2) {
      if (b + 2 < kb) pair(x, w, b + 2, sums + 2 * (p ^ 1));
      scale(acc, sums[2 * p], ws + b * 16, xd + b * 16);
      scale(acc, sums[2 * p + 1], ws + (b + 1) * 16, xd + (b + 1) * 16);
      p ^= 1;
    }
  }
  for (int r = 0; r < 16; r++) _mm512_storeu_ps(out + r * n, acc[r]);
}
__attribute__((noinline)) void call2(const int8_t *x, const float *xd, const int8_t *w, const int8_t *w1, const float *ws,
                                     const float *ws1, int kb, float *out, int n) {
  __m512 acc[16], acc1[16];
  for (int r = 0; r < 16; r++) acc[r] = acc1[r] = _mm512_setzero_ps();
  for (int b = 0; b < kb; b += 2) {
    _tile_zero(0); _tile_zero(1); _tile_loadd(4, x + b * 512, 32);
    _tile_loadd(5, w + b * 512, 64); _tile_loadd(6, w1 + b * 512, 64);
    _tile_dpbssd(0, 4, 5); _tile_dpbssd(1, 4, 6);
    _tile_zero(2); _tile_zero(3); _tile_loadd(7, x + (b + 1) * 512, 32);
    _tile_loadd(5, w + (b + 1) * 512, 64); _tile_loadd(6, w1 + (b + 1) * 512, 64);
    _tile_dpbssd(2, 7, 5); _tile_dpbssd(3, 7, 6);
    _tile_stored(0, sums[0], 64); _tile_stored(1, sums[1], 64); _tile_stored(2, sums[2], 64); _tile_stored(3, sums[3], 64);
    scale(acc, sums[0], ws + b * 16, xd + b * 16);
    scale(acc1, sums[1], ws1 + b * 16, xd + b * 16);
    scale(acc, sums[2], ws + (b + 1) * 16, xd + (b + 1) * 16);
    scale(acc1, sums[3], ws1 + (b + 1) * 16, xd + (b + 1) * 16);
  }
  for (int r = 0; r < 16; r++) { _mm512_storeu_ps(out + r * n, acc[r]); _mm512_storeu_ps(out + r * n + 16, acc1[r]); }
}
int main(int argc, char **argv) {
  if (argc < 5) { fprintf(stderr, "usage: %s k n m variant\n", argv[0]); return 2; }
  int k = atoi(argv[1]), n = atoi(argv[2]), m = atoi(argv[3]);
  V = atoi(argv[4]);
  int kb = k / 32, groups = n / 16, tiles = m / 16;
  if (syscall(SYS_arch_prctl, 0x1023, 18)) { fprintf(stderr, "no AMX tile state\n"); return 1; }
  struct cfg c;
  memset(&c, 0, sizeof c);
  c.palette = 1;
  for (int i = 0; i < 4; i++) { c.rows[i] = 16; c.colsb[i] = 64; }  // sums
  for (int i = 4; i < 8; i++) { c.rows[i] = 8; c.colsb[i] = 64; }   // weights, 8 quads x 16 rows
  int a[3] = {2, 4, 7};                                               // activations, 16 rows x 32 bytes
  for (int i = 0; i < 3; i++) { c.rows[a[i]] = 16; c.colsb[a[i]] = 32; }
  c.rows[3] = 8; c.colsb[3] = 64;
  if (V == 4) { c.rows[2] = c.rows[3] = 16; c.colsb[2] = c.colsb[3] = 64; }  // four tiles of sums
  _tile_loadconfig(&c);
  int8_t *w = aligned_alloc(64, (size_t)n * k), *x = aligned_alloc(64, (size_t)m * k);
  float *ws = aligned_alloc(64, (size_t)n * kb * 4), *xd = aligned_alloc(64, (size_t)m * kb * 4);
  float *out = aligned_alloc(64, (size_t)m * n * 4);
  memset(w, 1, (size_t)n * k); memset(x, 1, (size_t)m * k);
  for (size_t i = 0; i < (size_t)n * kb; i++) ws[i] = 1e-9f;
  for (size_t i = 0; i < (size_t)m * kb; i++) xd[i] = 1e-9f;
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = now();
    for (int t = 0; t < tiles; t++)
      for (int g = 0; g < groups; g += V == 4 ? 2 : 1) {
        const int8_t *xt = x + (size_t)t * kb * 512, *wg = w + (size_t)g * kb * 512;
        const float *xdt = xd + (size_t)t * kb * 16, *wsg = ws + (size_t)g * kb * 16;
        float *o = out + (size_t)t * 16 * n + g * 16;
        if (V == 4) call2(xt, xdt, wg, wg + (size_t)kb * 512, wsg, wsg + kb * 16, kb, o, n);
        else call(xt, xdt, wg, wsg, kb, o, n);
      }
    double r = (double)m * n * k / (now() - t0) / 1e9;
    if (r > best) best = r;
  }
  printf("variant %d, %d -> %d, %d rows: %.1f GMAC/s\n", V, k, n, m, best);
  return 0;
}
